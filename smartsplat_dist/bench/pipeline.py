"""End-to-end pipeline throughput (images/hour) with 1 and 2 workers, and the per-image overhead outside the fit.

For each worker count a fresh archive is compressed on one local Ray cluster (started once). From the run:
- ``wall_s``: the whole ``compress_dataset`` call (listing, archive, actor start, every image, commits, manifest);
- ``images_per_hour`` = images / wall (actor start-up included: it is part of every real run);
- per image, in worker-seconds: ``fit_s`` (the fit loop, from the encode stats), ``actor_other_s`` (read the
  source, init, encode the record, quality metrics, stage in the archive: actor time outside the fit; split into
  ``read_s``, ``init_s``, ``record_s`` (quantise + entropy code), ``finetune_s`` (the colour fine-tune),
  ``decode_s``, ``metrics_s``, ``stage_s``) and
  ``driver_ray_s`` (``wall·workers/images`` minus the actor's time: actor start-up, scheduling, idle actors at
  the end, the driver's shard commits). ``overhead_pct`` = (actor_other + driver_ray) / fit.
A discarded one-image warm-up run comes first (kernel compilation is cached on disk after it).
Images: real photos (``photos-768/`` of ``--data`` or ``$SMARTSPLAT_BENCH_DATA``, or that folder's own images)
cropped to ``--size``;
without them, crops of the shipped examples (also real photos).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from .common import EXAMPLES, add_data_argument, data_root, format_table, photo_folders

DESCRIPTION = "pipeline: end-to-end images/hour with 1 and 2 Ray workers, per-image overhead outside the fit"



def add_arguments(p) -> None:
    p.add_argument("--images", type=int, default=None, help="images per run (default: 6 quick, 12 full)")
    p.add_argument("--size", default=None, help="WxH crop of each photo (default: 128x96 quick, 384x256 full)")
    p.add_argument("--steps", type=int, default=None, help="fit steps (default: 30 quick, 150 full)")
    p.add_argument("--cr", type=float, default=50.0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    add_data_argument(p)
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray cluster (default: all)")


def _sources(args, out: Path, n: int, size: tuple[int, int]) -> tuple[list[Path], str]:
    root = data_root(args.data)
    folder = photo_folders(root, ["photos-768"])[0] if root else EXAMPLES
    files = sorted(folder.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG images in {folder}")
    w, h = size
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        with Image.open(files[k % len(files)]) as im:
            im = im.convert("RGB")
            if im.width < w or im.height < h:
                im = im.resize((max(w, im.width), max(h, im.height)))
            x = (k // len(files) * 37) % (im.width - w + 1)
            p = out / f"img{k:03d}.png"
            im.crop((x, 0, x + w, h)).save(p)
            paths.append(p)
    return paths, f"real photos ({folder.name}), {w}x{h} crops"


def run(args) -> dict:
    import ray  # lazy: ray is slow to import

    from ..config import EncodeConfig  # lazy: config pulls in fitting and init (numba); keeps --help fast
    from ..pipeline.driver import compress_dataset, connect  # lazy: pulls in the encode config (numba); keeps --help fast

    n = args.images or (6 if args.quick else 12)
    w, h = (int(v) for v in (args.size or ("128x96" if args.quick else "384x256")).lower().split("x"))
    steps = args.steps or (30 if args.quick else 150)
    config = EncodeConfig().with_overrides(cr=args.cr, steps=steps)
    tmp = Path(tempfile.mkdtemp(prefix="smartsplat-bench-pipeline-"))
    rows = []
    try:
        _, images_label = _sources(args, tmp / "src", n, (w, h))
        started = connect(None, num_cpus=args.num_cpus)
        cpus = ray.cluster_resources().get("CPU", 0)
        try:
            # warm-up (discarded): compiles/caches the kernels once, so neither measured run pays for it
            with open(os.devnull, "w") as quiet:
                compress_dataset(str(tmp / "src" / "img000.png"), str(tmp / "archive-warmup"), config, workers=1,
                                 progress=False, stream=quiet)
            for workers in args.workers:
                t0 = time.perf_counter()
                with open(os.devnull, "w") as quiet:
                    res = compress_dataset(str(tmp / "src"), str(tmp / f"archive-w{workers}"), config,
                                           workers=workers, images_per_shard=4, progress=False, stream=quiet)
                wall = time.perf_counter() - t0
                t = list(res.timings.values())
                fit = sum(x.get("fit_seconds", 0.0) for x in t) / len(t)
                actor = sum(x.get("seconds", 0.0) for x in t) / len(t)
                read = sum(x.get("read_seconds", 0.0) for x in t) / len(t)
                stage = sum(x.get("stage_seconds", 0.0) for x in t) / len(t)
                split = {f"{k}_s": sum(x.get(f"{k}_seconds", 0.0) for x in t) / len(t)
                         for k in ("init", "record", "finetune", "decode", "metrics")}
                share = wall * workers / n
                psnr = [r["psnr"] for r in res.rows if r.get("psnr") is not None]
                rows.append({
                    "workers": workers, "images": n, "ok": res.ok, "wall_s": wall,
                    "images_per_hour": 3600.0 * n / wall,
                    "fit_s": fit, "actor_other_s": actor - fit, "read_s": read, **split, "stage_s": stage,
                    "driver_ray_s": share - actor, "commit_s_total": res.commit_seconds,
                    "overhead_pct": 100.0 * (share - fit) / fit if fit > 0 else float("nan"),
                    "mean_psnr": sum(psnr) / len(psnr) if psnr else float("nan"),
                })
        finally:
            if started:
                ray.shutdown()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"pipeline: {n} images ({images_label}), CR {args.cr:g}, {steps} steps, local Ray cluster "
          f"with {cpus:g} CPUs")
    print(format_table(rows))
    if len(rows) >= 2:
        print(f"speed-up {rows[-1]['workers']} vs {rows[0]['workers']} workers: "
              f"{rows[-1]['images_per_hour'] / rows[0]['images_per_hour']:.2f}x")
    return {"images": images_label, "n_images": n, "size": [w, h], "steps": steps, "cr": args.cr,
            "ray_cpus": cpus, "rows": rows}
