"""Archive test helpers: small real records (through the codec) and a
ready-made archive. (A uniquely named module, imported by the tests and by conftest.py.)"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from smartsplat_dist.archive import ArchiveWriter, image_ids_for, plan_shards
from smartsplat_dist.codec import RecordMeta, encode_record
from smartsplat_dist.io.storage import Folder
from smartsplat_dist.model import Gaussians

RUN_CONFIG = {"cr": 100, "fit": {"steps": 500, "lr": 0.01}, "images_per_shard": 2}


@functools.lru_cache(maxsize=64)
def make_record(seed: int, height: int = 16, width: int = 24, n: int = 40) -> bytes:
    """A valid codec record of random Gaussians."""
    g = torch.Generator().manual_seed(seed)
    gs = Gaussians(
        torch.rand(n, 2, generator=g) * torch.tensor([float(width), float(height)]),
        torch.rand(n, 2, generator=g) * 3 + 0.5,
        torch.rand(n, generator=g) * 3,
        torch.rand(n, 3, generator=g),
    )
    return encode_record(gs, RecordMeta(height, width))


@dataclass
class Built:
    folder: Folder
    writer: ArchiveWriter
    listing: list
    ids: list
    plan: list
    records: dict  # id -> bytes (ok images)
    failed: dict  # id -> error

    @property
    def url(self) -> str:
        return self.folder.url

    @property
    def opts(self):
        return self.folder.storage_options


def build_archive(url: str, opts=None, n: int = 5, per_shard: int = 2, fail=(3,), commit=True,
                  manifest=True) -> Built:
    """An archive of ``n`` images (indices in ``fail`` failed), ``per_shard`` per shard, all committed."""
    folder = Folder(url, opts)
    listing = sorted(f"s3://data/set/img.{i:03d}.png" for i in range(n))
    ids = image_ids_for(listing)
    writer = ArchiveWriter(folder, RUN_CONFIG, listing, check_records=True)
    writer.open()
    records, failed = {}, {}
    for i, (image_id, uri) in enumerate(zip(ids, listing)):
        if i in fail:
            failed[image_id] = f"ImageError: {uri}: truncated"
            writer.stage_failure(image_id, {"source": uri, "error": failed[image_id], "seconds": 0.5})
        else:
            records[image_id] = make_record(i)
            writer.stage(image_id, records[image_id], {"source": uri, "height": 16, "width": 24, "n_gaussians": 40,
                                                       "psnr": 30.0 + i, "ssim": 0.9, "seconds": 2.0})
    plan = plan_shards(ids, per_shard)
    if commit:
        for k, shard_ids in enumerate(plan):
            writer.commit_shard(k, shard_ids)
        if manifest:
            writer.write_manifest()
    return Built(folder, writer, listing, ids, plan, records, failed)
