"""``smartsplat bench rd``: rate–distortion of our records against classic codecs at matched file size.

For each real photograph and nominal CR: encode with :func:`smartsplat_dist.api.encode_image` (real record
bytes), decode with :func:`~smartsplat_dist.api.decode_image`, measure; then JPEG, WebP, AVIF, JPEG 2000 and
JPEG XL each at the largest file no larger than our record (:mod:`.classic`). Per dataset, every codec's curve is
the mean over images of bpp and of each metric at each CR (a classic codec's point is kept only where it matched
the size on every image of the dataset). Outputs, next to ``--out``:

* ``<out stem>-results/<dataset>/<codec>.json`` — CompressAI layout
  ``{name, description, results: {bpp, psnr-rgb, ms-ssim, ssim, encoding_time, decoding_time}}``;
* ``<out stem>-results/bdrate.json`` and a printed BD-rate table (ours against each codec; negative = we need
  fewer bits for the same quality), then BD-rate image by image (mean, median, how many at or below 0);
* ``<out stem>.png`` — the rate–distortion plot.
"""
from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import SmartsplatError
from ..io.images import load_image
from . import classic
from .bdrate import bd_quality, bd_rate
from .common import DATA_ENV, EXAMPLES, add_data_argument, data_root, format_table, machine, photo_folders
from .plots import rd_figure_png

DESCRIPTION = ("rate-distortion on real photographs against JPEG, WebP, AVIF, JPEG 2000 and JPEG XL at matched "
               "file size (PSNR, SSIM, MS-SSIM, bpp, encode/decode time, BD-rate, RD plot)")

OURS = "SmartSplat"
FULL_CRS = (20, 50, 100, 200, 500)
QUICK_CRS = (50, 100, 200)
QUICK_IMAGES = 2
QUICK_STEPS = 200
FULL_STEPS = 1000
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")


def add_arguments(p) -> None:
    add_data_argument(p, repeatable=True)
    p.add_argument("--cr", type=float, nargs="+", help=f"nominal CRs (default {FULL_CRS}; quick {QUICK_CRS})")
    p.add_argument("--steps", type=int, help=f"fit steps (default {FULL_STEPS}; quick {QUICK_STEPS})")
    p.add_argument("--images", type=int, help=f"at most this many images per folder (quick default {QUICK_IMAGES})")
    p.add_argument("--codecs", nargs="+", choices=classic.CODECS, default=list(classic.CODECS))
    p.add_argument("--backend", default="auto", help="render backend for our codec (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", choices=("budget", "paper"), default="budget",
                   help="how our records follow the budget (see `smartsplat encode --help`; default: %(default)s)")


def list_images(folder: Path, limit: int | None = None) -> list[Path]:
    """Image files of ``folder``, sorted by name, at most ``limit``."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return files[:limit] if limit else files


def resolve_datasets(dirs: Sequence[str] | None, quick: bool) -> tuple[list[Path], str | None]:
    """The folders to run on and a note when falling back to the bundled examples: each data folder's photos-768/
    and photos-2k/ (quick: photos-768/ only) where it has them, else the folder itself."""
    wanted = ["photos-768"] if quick else ["photos-768", "photos-2k"]
    roots = [Path(d) for d in dirs] if dirs else [r for r in [data_root(None)] if r is not None]
    if not roots:
        return [EXAMPLES], (f"no data folder (--data, ${DATA_ENV}): using the bundled example photographs "
                            f"({EXAMPLES}, 384x256) instead")
    found, missing = [], []
    for root in roots:
        folders = photo_folders(root, wanted)
        found += folders
        if folders != [root]:
            missing += [str(root / w) for w in wanted if root / w not in folders]
    return found, (f"{', '.join(missing)} not found" if missing else None)


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals and len(vals) == len(values) else None


def _clean(x: Any) -> Any:
    """NaN/inf -> None so that the JSON is standard."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def measure_ours(pixels: np.ndarray, cr: float, steps: int, backend: str, seed: int,
                 metrics: dict[str, Callable], encode_fn=None, decode_fn=None, label: str = "",
                 rate: str = "budget") -> dict[str, Any]:
    """Encode + decode one image with our codec; a row with bytes, bpp, metrics and times.

    ``encode_seconds`` is the whole :func:`encode_image` call (read, init, fit, quantise + encode; it also
    decodes once to report its PSNR); ``decode_seconds`` is one :func:`decode_image`.
    """
    kwargs: dict[str, Any] = {}
    if encode_fn is None or decode_fn is None:
        from ..api import decode_image, encode_image  # lazy: api pulls in fitting and init (numba); keeps --help fast
        from ..config import EncodeConfig  # lazy: config pulls in fitting and init (numba); keeps --help fast

        encode_fn, decode_fn = encode_fn or encode_image, decode_fn or decode_image
        kwargs["config"] = EncodeConfig(rate=rate)
        if label:
            start = time.perf_counter()
            kwargs["progress"] = lambda step, info: print(
                f"[rd]   {label}: step {step}/{steps}, PSNR {info.get('psnr', float('nan')):.2f} dB, "
                f"{time.perf_counter() - start:.0f}s", file=sys.stderr, flush=True)
    h, w = pixels.shape[:2]
    t0 = time.perf_counter()
    record, stats = encode_fn(pixels, cr=cr, steps=steps, seed=seed, backend=backend, **kwargs)
    t1 = time.perf_counter()
    decoded = decode_fn(record, backend=backend)
    t2 = time.perf_counter()
    row = {"codec": OURS, "status": "ok", "target_bytes": len(record), "bytes": len(record),
           "bpp": 8.0 * len(record) / (h * w), "real_cr": 3.0 * h * w / len(record),
           "n_gaussians": stats.get("n_gaussians"), "steps": stats.get("steps", steps), "rate": stats.get("rate"),
           "encode_seconds": t1 - t0, "decode_seconds": t2 - t1,
           # the fit before quantisation, side by side with the record, and the codec settings the record used
           "psnr_unquantized": stats.get("psnr_unquantized"), "codec_settings": stats.get("codec"),
           "record_version": stats.get("record_version"), "prune": stats.get("prune")}  # N and PSNR of each try
    row.update({name: float(fn(decoded, pixels)) for name, fn in metrics.items()})
    return {"row": row, "record_bytes": len(record)}


def aggregate(rows: list[dict[str, Any]], crs: Sequence[float], n_images: dict[str, int]) -> dict[str, dict]:
    """Per dataset and codec label: mean bpp / metrics / times over images at each CR (complete points only).

    Returns: {dataset: {label: {"cr": [...], "bpp": [...], "psnr": [...], "ssim": [...], "ms_ssim": [...],
    "encode_seconds": [...], "decode_seconds": [...], "missing": [notes]}}}.
    """
    keys = ("bpp", "psnr", "ssim", "ms_ssim", "encode_seconds", "decode_seconds")
    out: dict[str, dict] = {}
    for dataset, count in n_images.items():
        out[dataset] = {}
        labels = [OURS] + [classic.SPECS[c].label for c in classic.CODECS]
        for label in labels:
            curve: dict[str, list] = {"cr": [], **{k: [] for k in keys}, "missing": []}
            for cr in crs:
                pts = [r for r in rows if r["dataset"] == dataset and r["label"] == label and r["cr"] == cr]
                ok = [r for r in pts if r["status"] == "ok"]
                if not pts:
                    continue
                if len(ok) < count:
                    reasons = sorted({r.get("reason") or r["status"] for r in pts if r["status"] != "ok"})
                    curve["missing"].append(f"CR {cr:g}: {len(ok)}/{count} images matched ({'; '.join(reasons)})")
                    continue
                curve["cr"].append(cr)
                for k in keys:
                    curve[k].append(_mean([r.get(k) for r in ok]))
            if curve["cr"] or curve["missing"]:
                out[dataset][label] = curve
    return out


def _db(ms_ssim: float) -> float:
    """MS-SSIM in dB, ``-10 log10(1 - x)``: the scale BD-rate integrates it on."""
    return -10 * math.log10(max(1e-12, 1 - ms_ssim))


def bd_table(curves: dict[str, dict]) -> list[dict[str, Any]]:
    """BD-rate (PSNR and MS-SSIM in dB) and BD-PSNR of ours against each classic codec, per dataset."""
    table = []
    for dataset, per_codec in curves.items():
        ours = per_codec.get(OURS)
        for label, ref in per_codec.items():
            if label == OURS:
                continue
            row: dict[str, Any] = {"dataset": dataset, "codec": label, "points_ours": len(ours["cr"]) if ours else 0,
                                   "points_codec": len(ref["cr"]), "bd_rate_psnr_pct": None,
                                   "bd_rate_msssim_pct": None, "bd_psnr_db": None, "note": ""}
            if not ours or len(ours["cr"]) < 2 or len(ref["cr"]) < 2:
                row["note"] = "needs >= 2 matched points on both curves"
                table.append(row)
                continue
            v = bd_rate(ref["bpp"], ref["psnr"], ours["bpp"], ours["psnr"])
            row["bd_rate_psnr_pct"] = None if math.isnan(v) else v
            row["bd_psnr_db"] = _nan_none(bd_quality(ref["bpp"], ref["psnr"], ours["bpp"], ours["psnr"]))
            if all(x is not None for x in ref["ms_ssim"] + ours["ms_ssim"]):
                row["bd_rate_msssim_pct"] = _nan_none(bd_rate(ref["bpp"], [_db(x) for x in ref["ms_ssim"]],
                                                              ours["bpp"], [_db(x) for x in ours["ms_ssim"]]))
            if row["bd_rate_psnr_pct"] is None:
                row["note"] = "PSNR ranges do not overlap"
            table.append(row)
    return table


def per_image_bd(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BD-rate of ours against each classic codec image by image, over the CRs that codec matched on that image
    (at least 2), summarised per dataset and codec: {dataset, codec, images, mean / median BD-rate (PSNR and
    MS-SSIM in dB, percent), at_or_below_zero (images where ours needs no more bits), per_image {image: pct}}.
    The mean-curve BD-rate (:func:`bd_table`) drops a CR where a codec missed it on any image; this does not."""
    by: dict[tuple[str, str], dict[str, dict[float, dict]]] = {}
    for r in rows:
        if r["status"] == "ok":
            by.setdefault((r["dataset"], r["image"]), {}).setdefault(r["label"], {})[r["cr"]] = r
    found: dict[tuple[str, str], dict[str, dict[str, float]]] = {}
    for (dataset, image), per_label in by.items():
        ours = per_label.get(OURS, {})
        for label, theirs in per_label.items():
            crs = sorted(cr for cr in theirs if cr in ours)
            if label == OURS or len(crs) < 2:
                continue
            cell = found.setdefault((dataset, label), {"psnr": {}, "ms_ssim": {}})
            a, b = [theirs[c] for c in crs], [ours[c] for c in crs]
            cell["psnr"][image] = bd_rate([r["bpp"] for r in a], [r["psnr"] for r in a],
                                          [r["bpp"] for r in b], [r["psnr"] for r in b])
            if all(r.get("ms_ssim") is not None for r in a + b):
                cell["ms_ssim"][image] = bd_rate([r["bpp"] for r in a], [_db(r["ms_ssim"]) for r in a],
                                                 [r["bpp"] for r in b], [_db(r["ms_ssim"]) for r in b])
    table = []
    for (dataset, label), cell in found.items():
        row: dict[str, Any] = {"dataset": dataset, "codec": label}
        for metric, values in cell.items():
            v = np.array([x for x in values.values() if not math.isnan(x)])
            row[metric] = {"images": int(v.size), "mean_pct": float(v.mean()) if v.size else None,
                           "median_pct": float(np.median(v)) if v.size else None,
                           "at_or_below_zero": int((v <= 0).sum()), "per_image": values}
        table.append(row)
    return table


def print_per_image_bd(table: list[dict[str, Any]]) -> None:
    fmt = lambda m, k: "n/a" if not m or m[k] is None else f"{m[k]:+.1f}%"  # noqa: E731
    print("\nBD-rate of SmartSplat image by image (each codec over the CRs it matched on that image):")
    print(format_table([{"dataset": r["dataset"], "codec": r["codec"], "images": r["psnr"]["images"],
                         "PSNR mean": fmt(r["psnr"], "mean_pct"), "PSNR median": fmt(r["psnr"], "median_pct"),
                         "PSNR <= 0": r["psnr"]["at_or_below_zero"],
                         "MS-SSIM mean": fmt(r.get("ms_ssim"), "mean_pct"),
                         "MS-SSIM median": fmt(r.get("ms_ssim"), "median_pct")} for r in table]))


def _nan_none(v: float) -> float | None:
    return None if math.isnan(v) else v


def compressai_docs(curves: dict[str, dict], description: str) -> dict[str, dict[str, dict]]:
    """{dataset: {codec label: CompressAI-layout dict}} from :func:`aggregate`'s curves."""
    docs: dict[str, dict[str, dict]] = {}
    for dataset, per_codec in curves.items():
        docs[dataset] = {}
        for label, c in per_codec.items():
            docs[dataset][label] = {
                "name": label,
                "description": f"{description}; dataset {dataset}; mean over images at nominal CR {c['cr']}",
                "results": {"bpp": c["bpp"], "psnr-rgb": c["psnr"], "ms-ssim": c["ms_ssim"], "ssim": c["ssim"],
                            "encoding_time": c["encode_seconds"], "decoding_time": c["decode_seconds"]},
                "nominal_cr": c["cr"],
                "missing": c["missing"],
            }
    return docs


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-") or "x"


def run_rd(
    datasets: dict[str, list[Path]],
    crs: Sequence[float],
    steps: int,
    codecs: Sequence[str] = classic.CODECS,
    backend: str = "auto",
    seed: int = 0,
    metrics: dict[str, Callable] | None = None,
    encode_fn=None,
    decode_fn=None,
    log=print,
    rate: str = "budget",
) -> tuple[list[dict[str, Any]], dict[str, dict], dict[str, str | None]]:
    """Measure every (dataset, image, CR): ours, then each classic codec at matched size.

    Returns: (rows, curves from :func:`aggregate`, codec availability).
    """
    metrics = classic.default_metrics() if metrics is None else metrics
    available = classic.availability()
    rows: list[dict[str, Any]] = []
    for dataset, files in datasets.items():
        for path in files:
            pixels = load_image(path).pixels
            for cr in crs:
                t0 = time.perf_counter()
                base = {"dataset": dataset, "image": path.name, "cr": cr,
                        "height": int(pixels.shape[0]), "width": int(pixels.shape[1])}
                try:
                    ours = measure_ours(pixels, cr, steps, backend, seed, metrics, encode_fn, decode_fn,
                                        label=f"{dataset}/{path.name} CR {cr:g}", rate=rate)
                except SmartsplatError as err:  # one record's failure is a row; the run goes on
                    rows.append({**base, "label": OURS, "codec": OURS, "status": "failed", "reason": str(err)})
                    log(f"[rd] {dataset}/{path.name} CR {cr:g}: FAILED: {err}", file=sys.stderr, flush=True)
                    continue
                rows.append({**base, "label": OURS, **ours["row"]})
                for res in classic.compare_at_size(pixels, ours["record_bytes"], tuple(codecs), metrics, available):
                    rows.append({**base, "label": classic.SPECS[res.codec].label, **res.to_dict()})
                o = ours["row"]
                log(f"[rd] {dataset}/{path.name} CR {cr:g}: {o['bytes']} B, {o['bpp']:.4f} bpp, "
                    f"PSNR {o.get('psnr', float('nan')):.2f} dB ({time.perf_counter() - t0:.1f}s)",
                    file=sys.stderr, flush=True)
    counts = {d: len(f) for d, f in datasets.items()}
    return rows, aggregate(rows, crs, counts), available


def run(args) -> dict[str, Any]:
    quick = bool(getattr(args, "quick", False))
    folders, note = resolve_datasets(args.data, quick)
    limit = args.images if args.images else (QUICK_IMAGES if quick else None)
    crs = tuple(args.cr) if args.cr else (QUICK_CRS if quick else FULL_CRS)
    steps = args.steps if args.steps else (QUICK_STEPS if quick else FULL_STEPS)
    datasets = {}
    for folder in folders:
        name = folder.name
        while name in datasets:
            name += "'"
        datasets[name] = list_images(folder, limit)
    info = machine()
    kind = "real photographs" + (" (bundled examples)" if note and EXAMPLES in folders else "")
    print(f"rd: {info['label']} machine {info['host']} ({info['cores']} cores, torch {info['torch']}); "
          f"{kind}: " + ", ".join(f"{d} ({len(f)} images)" for d, f in datasets.items()))
    if note:
        print(f"rd: note: {note}")
    print(f"rd: nominal CR {', '.join(f'{c:g}' for c in crs)}; {steps} fit steps; rate {args.rate}; "
          f"backend {args.backend}")

    rows, curves, available = run_rd(datasets, crs, steps, args.codecs, args.backend, args.seed, rate=args.rate)
    columns = ["dataset", "image", "cr", "label", "status", "bytes", "bpp", "psnr", "psnr_unquantized", "ssim",
               "ms_ssim", "encode_seconds", "decode_seconds"]
    print(format_table([{c: r.get(c, "") if r.get(c) is not None else "-" for c in columns} for r in rows], columns))

    summary = []
    for dataset, per_codec in curves.items():
        for label, c in per_codec.items():
            for i, cr in enumerate(c["cr"]):
                summary.append({"dataset": dataset, "codec": label, "cr": cr, "bpp": c["bpp"][i],
                                "psnr": c["psnr"][i], "ssim": c["ssim"][i], "ms_ssim": c["ms_ssim"][i],
                                "enc_s": c["encode_seconds"][i], "dec_s": c["decode_seconds"][i]})
    print("\nmean over images per CR (our CR is nominal; each codec matched to our bytes, never larger):")
    print(format_table([{k: ("-" if v is None else v) for k, v in r.items()} for r in summary]))
    for dataset, per_codec in curves.items():
        for label, c in per_codec.items():
            for m in c["missing"]:
                print(f"  {dataset} {label}: left out {m}")

    table = bd_table(curves)
    print("\nBD-rate of SmartSplat against each codec (negative = SmartSplat needs fewer bits for equal quality):")
    fmt = lambda v, unit: "n/a" if v is None else f"{v:+.1f}{unit}"  # noqa: E731
    print(format_table([{"dataset": r["dataset"], "codec": r["codec"],
                         "BD-rate (PSNR)": fmt(r["bd_rate_psnr_pct"], "%"),
                         "BD-rate (MS-SSIM)": fmt(r["bd_rate_msssim_pct"], "%"),
                         "BD-PSNR": fmt(r["bd_psnr_db"], " dB"), "note": r["note"]} for r in table]))
    per_image = per_image_bd(rows)
    print_per_image_bd(per_image)

    out = Path(args.out)
    results_dir = out.parent / f"{out.stem}-results"
    description = (f"{kind}; nominal CR {list(crs)}; {steps} fit steps; rate {args.rate}; "
                   f"{info['label']} {info['host']}")
    docs = compressai_docs(curves, description)
    written = []
    for dataset, per_codec in docs.items():
        for label, doc in per_codec.items():
            path = results_dir / _slug(dataset) / f"{_slug(label)}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_clean(doc), indent=2) + "\n")
            written.append(str(path))
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "bdrate.json").write_text(json.dumps(_clean(table), indent=2) + "\n")

    title = f"{kind} — {info['label']} ({info['host']}), {steps} steps"
    plot_path = out.with_suffix(".png")
    plot_path.parent.mkdir(parents=True, exist_ok=True)
    plot_path.write_bytes(rd_figure_png({d: {k: v for k, v in pc.items()} for d, pc in curves.items()}, title))
    print(f"wrote {plot_path} and {len(written)} CompressAI result files under {results_dir}")
    return _clean({
        "images": kind,
        "note": note,
        "datasets": {d: [p.name for p in f] for d, f in datasets.items()},
        "crs": list(crs),
        "steps": steps,
        "rate": args.rate,
        "backend": args.backend,
        "codec_settings": {c: classic.SPECS[c].settings for c in args.codecs},
        "codec_availability": {c: available.get(c) for c in args.codecs},
        "rows": rows,
        "curves": curves,
        "bd_rate": table,
        "bd_rate_per_image": per_image,
        "plot": str(plot_path),
        "results_dir": str(results_dir),
    })


__all__ = ["DESCRIPTION", "add_arguments", "run", "run_rd", "aggregate", "bd_table", "per_image_bd", "compressai_docs",
           "resolve_datasets", "list_images"]
