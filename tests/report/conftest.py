"""A small real archive for the report tests: records from encode_image at a few steps, through the archive API.

Two images committed in shard 0 (plus one failed image whose error text is hostile HTML), one image staged but
not committed (a running job)."""
from pathlib import Path

import numpy as np
import pytest

import smartsplat_dist
from smartsplat_dist.io.images import load_image, save_image

EXAMPLES = Path(smartsplat_dist.__file__).parent / "examples"
HOSTILE = "<script>alert('pwned')</script> & \"quoted\""


def _make_archive(root: Path) -> dict:
    from smartsplat_dist.api import encode_image
    from smartsplat_dist.archive import ArchiveWriter
    from smartsplat_dist.config import EncodeConfig

    src = root / "src"
    src.mkdir()
    sources = []
    crops = (("Bamboo.png", (0, 0)), ("Mountain.png", (40, 100)), ("seeding_by_Clements_Engelhardt.png", (20, 40)))
    for name, (y, x) in crops:
        px = np.ascontiguousarray(load_image(EXAMPLES / name).pixels[y:y + 160, x:x + 240])
        save_image(px, src / name)
        sources.append(str(src / name))
    sources.append(str(src / "broken.png"))
    (src / "broken.png").write_bytes(b"not an image")
    config = EncodeConfig(cr=40).to_dict()
    writer = ArchiveWriter(str(root / "archive"), {**config, "images_per_shard": 3}, sorted(sources))
    writer.open()
    ids = ["bamboo", "mountain", "seeding"]
    records = {}
    for image_id, source in zip(ids, sources):
        record, stats = encode_image(source, cr=40, steps=4, backend="cpu")
        records[image_id] = record
        writer.stage(image_id, record, {"source": source, "height": stats["height"], "width": stats["width"],
                                        "n_gaussians": stats["n_gaussians"], "psnr": stats["psnr"],
                                        "ssim": stats["ssim"], "seconds": stats["seconds"]})
    writer.stage_failure("broken", {"source": sources[3], "error": HOSTILE, "seconds": 0.01})
    writer.commit_shard(0, ["bamboo", "mountain", "broken"])
    writer.write_manifest()
    return {"url": str(root / "archive"), "src": src, "records": records, "sources": sources}


@pytest.fixture(scope="session")
def small_archive(tmp_path_factory):
    return _make_archive(tmp_path_factory.mktemp("report-archive"))
