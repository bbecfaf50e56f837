"""Gather what the report shows from an archive: settings, rows (committed and staged), samples, RD results."""
from __future__ import annotations

import json
import math
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..api import decode_image
from ..archive import open_archive
from ..archive.layout import staged_record_name
from ..bench.plots import rd_figure_png
from ..codec import read_meta
from ..errors import ConfigError, SmartsplatError
from ..fitting.metrics import psnr
from ..io.images import DEFAULT_MAX_PIXELS, load_image
from ..io.storage import read_uri
from .crops import decode_window, detail_window, png_bytes_data_uri, png_data_uri

#: Side of the 100% crops, pixels.
CROP = 256


@dataclass
class Sample:
    """One image shown as side-by-side 100% crops. ``original``/``decoded`` are data: URIs or None (``note``)."""

    row: dict[str, Any]
    window: tuple[int, int, int, int] | None = None
    original: str | None = None
    decoded: str | None = None
    crop_psnr: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything the page is built from (see :func:`collect`)."""

    url: str
    run: dict[str, Any]
    rows: list[dict[str, Any]]  # committed rows, then staged rows (``_state`` = committed | staged)
    listing_size: int | None
    samples: list[Sample]
    rd: dict[str, Any] | None
    rd_png: str | None
    notes: list[str]


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pick_samples(rows: list[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """``k`` rows of status ok spread over the PSNR distribution (lowest, ..., median, ..., highest)."""
    ok = [r for r in rows if r.get("status") == "ok"]
    if k <= 0 or not ok:
        return []
    ok.sort(key=lambda r: (r["psnr"] if _finite(r.get("psnr")) else -math.inf, str(r.get("id"))))
    if k >= len(ok):
        return ok
    idx = sorted({round(i * (len(ok) - 1) / (k - 1)) for i in range(k)}) if k > 1 else [len(ok) // 2]
    return [ok[i] for i in idx]


def _safe_rel(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and "\\" not in rel and "\x00" not in rel and not any(p in ("", ".", "..") for p in parts)


def source_candidates(source: str, source_root: str | None, common_root: str | None) -> list[str]:
    """Where an original may be read: only under ``source_root``, the folder (or ``s3://`` prefix) the user
    vouches for: the same relative path below the sources' common folder, then just the file name. Never the
    manifest's own URI (an archive is untrusted: it could name any local file or URL); nothing without a root.
    Relative parts that could leave the root (``..``, ``.``, empty, backslash, NUL) are not tried."""
    if not source_root:
        return []
    tail = source.split("://", 1)[-1]
    rels = []
    if common_root and tail.startswith(common_root.rstrip("/") + "/"):
        rels.append(tail[len(common_root.rstrip("/")) + 1:])
    rels.append(posixpath.basename(tail))
    root = source_root.rstrip("/") or "/"
    return list(dict.fromkeys(posixpath.join(root, r) for r in rels if _safe_rel(r)))


def _common_root(rows: list[dict[str, Any]]) -> str | None:
    tails = [str(r["source"]).split("://", 1)[-1] for r in rows if isinstance(r.get("source"), str)]
    if not tails:
        return None


def _inside_root(uri: str, source_root: str) -> bool:
    """A local candidate must stay inside the root once symbolic links are resolved."""
    if "://" in source_root and not source_root.startswith("file://"):
        return True  # object stores have no links; the name was checked by source_candidates
    root = os.path.realpath(source_root.removeprefix("file://"))
    return os.path.realpath(uri.removeprefix("file://")).startswith(root.rstrip(os.sep) + os.sep)


def load_original(row: dict[str, Any], source_root: str | None, common_root: str | None,
                  storage_options: dict[str, Any] | None, max_pixels: int | None) -> tuple[np.ndarray | None, str]:
    """(pixels uint8 [H, W, 3] or None, where it came from or why not). Reads only under ``source_root``."""
    source = row.get("source")
    if not isinstance(source, str) or not source:
        return None, "the manifest row has no source"
    if not source_root:
        return None, SKIPPED_NO_ROOT
    why = []
    for uri in source_candidates(source, source_root, common_root):
        if not _inside_root(uri, source_root):
            why.append(f"{uri}: leads outside --source-root (a link): not read")
            continue
        try:
            data = read_uri(uri, storage_options)
        except (OSError, ValueError, SmartsplatError) as err:
            why.append(f"{uri}: {type(err).__name__}: {err}" if str(err) else f"{uri}: {type(err).__name__}")
            continue
        try:
            pixels = load_image(data, max_pixels=max_pixels or DEFAULT_MAX_PIXELS, name=uri).pixels
        except SmartsplatError as err:
            why.append(str(err))
            continue
        return pixels, uri
    return None, "original not available (" + ("; ".join(why) or "no safe path under --source-root") + ")"


#: Why a sample has no original when no --source-root was given.
SKIPPED_NO_ROOT = "original not read: the report reads originals only under --source-root"


def make_sample(archive, row: dict[str, Any], *, source_root: str | None, common_root: str | None,
                storage_options: dict[str, Any] | None, backend: str, max_pixels: int | None) -> Sample:
    """Crop the most detailed 256x256 window of the original and the same window of the decoded image."""
    sample = Sample(row=row)
    try:
        record = _record_of(archive, row)
    except SmartsplatError as err:
        sample.notes.append(f"record not readable: {err}")
        return sample
    original, where = load_original(row, source_root, common_root, storage_options, max_pixels)
    try:
        if original is not None:
            h, w = original.shape[:2]
            if (row.get("height"), row.get("width")) not in ((h, w), (None, None)):
                sample.notes.append(f"original at {where} is {w}x{h}, the record {row.get('width')}x"
                                    f"{row.get('height')}: not the same image")
                original = None
            else:
                sample.window = detail_window(original, CROP)
        if original is None:
            if where and not sample.notes:
                sample.notes.append(where)
            # Find detail on a small decode instead.

            meta = read_meta(record)
            scale = min(1.0, 512.0 / max(meta.height, meta.width))
            preview = decode_image(record, scale=scale, backend=backend)
            sample.window = detail_window(preview, CROP, scale=preview.shape[0] / meta.height)
        x0, y0, cw, ch = sample.window
        crop = None
        if original is not None:
            crop = np.ascontiguousarray(original[y0:y0 + ch, x0:x0 + cw])
            sample.original = png_data_uri(crop)
        dec = decode_window(record, x0, y0, cw, ch, backend)
        sample.decoded = png_data_uri(dec)
        if crop is not None:
            sample.crop_psnr = float(psnr(dec, crop))
    except SmartsplatError as err:
        sample.notes.append(f"cannot decode: {err}")
    return sample


def _record_of(archive, row: dict[str, Any]) -> bytes:
    if row.get("_state") == "staged":
        try:
            return archive.folder.read_bytes(staged_record_name(row["id"]))
        except FileNotFoundError:
            raise SmartsplatError(f"staged record of {row['id']!r} is gone (committed meanwhile?)") from None
    return archive.get(row["id"])


def load_rd(path: str) -> dict[str, Any]:
    """The ``smartsplat bench rd`` JSON (with ``curves``), or one CompressAI-layout file."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read())
    except OSError as err:
        raise ConfigError(f"--rd {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise ConfigError(f"--rd {path}: not JSON ({err})") from None
    if isinstance(doc, dict) and isinstance(doc.get("curves"), dict):
        return doc
    if isinstance(doc, dict) and isinstance(doc.get("results"), dict) and "bpp" in doc["results"]:
        res = doc["results"]
        curve = {"bpp": res.get("bpp", []), "psnr": res.get("psnr-rgb", res.get("psnr", [])),
                 "ms_ssim": res.get("ms-ssim", [])}
        return {"curves": {"results": {str(doc.get("name", "codec")): curve}}, "bd_rate": [],
                "description": doc.get("description")}
    raise ConfigError(f"--rd {path}: neither a 'smartsplat bench rd' result nor a CompressAI results file")


def collect(url: str, *, rd_path: str | None = None, samples: int = 4, source_root: str | None = None,
            storage_options: dict[str, Any] | None = None, backend: str = "auto", log=None) -> ReportData:
    """Read the archive (committed rows, then staged rows of a running job) and prepare the samples."""
    archive = open_archive(url, storage_options)
    committed = [dict(r, _state="committed") for r in archive.rows()]
    staged = [dict(r, _state="staged") for _i, r in sorted(archive.staged().items())]
    rows = committed + staged
    notes = []
    listing_size = archive.run.get("listing_size")
    if staged:
        verb = "images are" if len(staged) != 1 else "image is"
        notes.append(f"{len(staged)} {verb} staged but not yet in a committed shard (a running or interrupted "
                     f"job); included below and marked 'staged'")
    if isinstance(listing_size, int) and len(rows) < listing_size:
        notes.append(f"{len(rows)} of {listing_size} input images are done so far")
    max_pixels = archive.run_config.get("max_pixels") if isinstance(archive.run_config, dict) else None
    common = _common_root(rows)
    chosen = []
    for i, row in enumerate(pick_samples(rows, samples)):
        if log:
            log(f"report: sample {i + 1}: {row['id']}")
        chosen.append(make_sample(archive, row, source_root=source_root, common_root=common,
                                  storage_options=storage_options, backend=backend,
                                  max_pixels=max_pixels if isinstance(max_pixels, int) else None))
    skipped = [s.row for s in chosen if SKIPPED_NO_ROOT in s.notes]
    if skipped:
        notes.append(f"originals not read for {len(skipped)} sample(s) ({', '.join(str(r.get('id')) for r in skipped)}): "
                     "an archive's source URIs are not trusted; pass --source-root DIR (or an s3:// prefix) to "
                     "compare with the originals found under it")
    outside = [s.row for s in chosen if any("outside --source-root" in n for n in s.notes)]
    if outside:
        notes.append(f"{len(outside)} sample(s) skipped sources leading outside --source-root: "
                     f"{', '.join(str(r.get('id')) for r in outside)}")
    rd, rd_png = None, None
    if rd_path:
        rd = load_rd(rd_path)
        rd_png = png_bytes_data_uri(rd_figure_png(rd["curves"], title=rd.get("images")))
    return ReportData(url=str(archive.url), run=archive.run, rows=rows, listing_size=listing_size,
                      samples=chosen, rd=rd, rd_png=rd_png, notes=notes)


__all__ = ["ReportData", "Sample", "collect", "pick_samples", "make_sample", "load_original", "load_rd",
           "source_candidates", "CROP"]
