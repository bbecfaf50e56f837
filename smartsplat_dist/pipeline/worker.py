"""The work one actor does, as plain classes (testable without Ray; wrapped with ``ray.remote`` at submit time).

Pixels never travel through Ray's object store: a worker is given URIs and ids, reads the image or record from
storage itself, writes its result to storage itself, and returns a small dict (a manifest row).
An *expected* problem (a bad image, an unreadable object, a damaged record) becomes a ``failed`` row and the
worker lives on; anything else raises (the driver counts it against the image's retries).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from typing import Any

import torch

from ..api import decode_image, encode_image
from ..archive import open_archive
from ..archive.layout import check_id, checkpoint_name
from ..archive.writer import stage, stage_failure
from ..config import EncodeConfig
from ..errors import ImageError, RecordError, SmartsplatError
from ..fitting.checkpoint import Checkpointer, install_sigterm_handler
from ..io.images import OUTPUT_FORMATS, encode_image_bytes, load_image
from ..io.retry import RetryPolicy, with_retries
from ..io.storage import Folder, read_uri
from ..threads import apply
from . import faults

#: Default time between two fit checkpoints (``smartsplat compress --checkpoint-minutes``).
CHECKPOINT_MINUTES = 10.0



def set_threads(threads: int | None) -> None:
    """Set this actor's torch / numba / BLAS threads (:func:`smartsplat_dist.threads.apply`): ``threads`` when
    given, else the actor's Ray ``num_cpus`` (or its affinity mask)."""
    apply(threads if threads and threads >= 1 else None)


def _short(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if isinstance(err, SmartsplatError) else f"{type(err).__name__}: {text}"


def _oom_types() -> tuple[type[BaseException], ...]:
    return (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))


class CompressWorker:
    """Fits images and stages their records in the archive.

    Args:
        archive_url: the archive folder (local path or ``s3://...``).
        storage_options: fsspec options for the archive and the sources (JSON-able dict or None).
        encode_config_dict: ``EncodeConfig.to_dict()``.
        backend: render backend for fitting (``auto`` picks ``cuda`` on a GPU actor).
        threads: torch/numba threads for this actor (None: leave as is).
        checkpoint_minutes: save the fit state to ``ARCHIVE/checkpoints/<id>.safetensors`` this often (and on
            SIGTERM); a retried image continues from it; it is deleted once the image is staged. 0: never.
        retry: how transient storage errors (reads and staging writes) are retried within one attempt.
    """

    def __init__(self, archive_url: str, storage_options: dict[str, Any] | None, encode_config_dict: dict[str, Any],
                 backend: str = "auto", threads: int | None = None, checkpoint_minutes: float = CHECKPOINT_MINUTES,
                 retry: RetryPolicy = RetryPolicy()):
        set_threads(threads)
        self.checkpoint_minutes = float(checkpoint_minutes)
        self.retry = retry
        if self.checkpoint_minutes > 0:
            install_sigterm_handler()
        self.archive_url = archive_url
        self.storage_options = storage_options
        self.folder = Folder(archive_url, storage_options)
        self.config = EncodeConfig.from_dict(encode_config_dict)
        self.backend = backend
        self.pid = os.getpid()

    def ping(self) -> int:
        """The actor's process id (used to wait until an actor is up)."""
        return self.pid

    def compress(self, image_id: str, source_uri: str) -> dict[str, Any]:
        """Read, fit, encode and stage one image; returns its manifest row (status ``ok`` or ``failed``).

        Extra row keys: ``read_seconds`` (storage read), ``encode_seconds`` (init + fit + encode + metrics),
        ``fit_seconds`` (the fit loop alone), ``stage_seconds`` (writing to the archive), ``conversions``,
        ``pid`` (of the actor)."""
        check_id(image_id)
        t0 = time.perf_counter()
        base = {"source": source_uri, "pid": self.pid}
        try:
            data = with_retries(lambda: read_uri(source_uri, self.storage_options), self.retry,
                                on_retry=self._warn_retry(f"reading {source_uri}"))
        except (OSError, ValueError) as err:
            return self._fail(image_id, base, f"cannot read {source_uri}: {_short(err)}", t0)
        t_read = time.perf_counter()
        ckpt = self._checkpointer(image_id, data)
        fired = []

        def progress(step: int, info: dict) -> None:
            if not fired:
                fired.append(step)
                faults.mid_image(image_id, self.archive_url)

        try:
            loaded = load_image(data, max_pixels=self.config.max_pixels, name=source_uri)
            del data
            record, stats = encode_image(loaded.pixels, config=self.config, backend=self.backend, progress=progress,
                                         checkpoint=ckpt)
        except (ImageError, RecordError) as err:
            return self._fail(image_id, base, _short(err), t0, read_seconds=t_read - t0)
        except _oom_types() as err:
            return self._fail(image_id, base, f"out of memory while fitting ({_short(err)})", t0,
                              read_seconds=t_read - t0)
        finally:
            if ckpt is not None:
                ckpt.finish()
        if not fired:
            faults.mid_image(image_id, self.archive_url)
        t_enc = time.perf_counter()
        row = {
            **base,
            "height": stats["height"], "width": stats["width"], "n_gaussians": stats["n_gaussians"],
            "psnr": stats.get("psnr"), "ssim": stats.get("ssim"), "nominal_cr": stats.get("nominal_cr"),
            "psnr_unquantized": stats.get("psnr_unquantized"), "steps": stats.get("steps"),
            "backend": stats.get("backend"), "conversions": list(loaded.conversions) + list(stats.get("conversions", [])),
            "mode": loaded.mode, "read_seconds": t_read - t0, "encode_seconds": t_enc - t_read,
            "fit_seconds": stats.get("fit_seconds", stats.get("seconds")),
            "steps_run": stats.get("steps_run"), "resumed_from_step": ckpt.resumed_from if ckpt else 0,
            # the split of encode_seconds: init, fit, record (quantise + entropy code), decode, metrics
            **{f"{k}_seconds": stats[f"{k}_seconds"] for k in ("init", "finetune", "decode", "metrics")
               if f"{k}_seconds" in stats},
            "record_seconds": stats.get("encode_seconds"),
        }
        row["seconds"] = time.perf_counter() - t0
        out = with_retries(lambda: stage(self.folder, image_id, record, row), self.retry,
                           on_retry=self._warn_retry(f"staging {image_id}"))
        self._drop_checkpoint(image_id)
        out["stage_seconds"] = time.perf_counter() - t_enc
        out["seconds"] = time.perf_counter() - t0
        return out

    def _fail(self, image_id: str, base: dict[str, Any], reason: str, t0: float, **extra: Any) -> dict[str, Any]:
        row = {**base, **extra, "error": reason, "seconds": time.perf_counter() - t0}
        out = with_retries(lambda: stage_failure(self.folder, image_id, row), self.retry,
                           on_retry=self._warn_retry(f"staging {image_id}"))
        self._drop_checkpoint(image_id)
        return out

    @staticmethod
    def _warn_retry(what: str):
        def warn(attempt: int, err: BaseException, wait: float) -> None:
            warnings.warn(f"{what}: transient error ({_short(err)}); try {attempt + 1} in {wait:.1f} s", stacklevel=2)
        return warn

    def fingerprint(self, data: bytes) -> str:
        """What a checkpoint must have been made from: the image's bytes and the encode settings."""
        h = hashlib.sha256(data)
        h.update(json.dumps(self.config.to_dict(), sort_keys=True).encode())
        return h.hexdigest()

    def _checkpointer(self, image_id: str, data: bytes):
        """The image's :class:`~smartsplat_dist.fitting.checkpoint.Checkpointer` (None when checkpoints are off)."""
        if self.checkpoint_minutes <= 0:
            return None

        name = checkpoint_name(image_id)
        return Checkpointer(
            read=lambda: self.folder.read_bytes(name),
            write=lambda b: with_retries(lambda: self.folder.write_bytes(name, b), self.retry,
                                         on_retry=self._warn_retry(f"checkpointing {image_id}")),
            delete=lambda: self.folder.delete(name), fingerprint=self.fingerprint(data),
            every_seconds=60.0 * self.checkpoint_minutes, label=image_id)

    def _drop_checkpoint(self, image_id: str) -> None:
        try:
            self.folder.delete(checkpoint_name(image_id))
        except OSError as err:  # a leftover checkpoint only costs space; the next attempt ignores a stale one
            warnings.warn(f"{image_id}: could not delete its checkpoint ({_short(err)})", stacklevel=2)


class DecodeWorker:
    """Decodes records of an archive to image files ``DST/<id>.<ext>``.

    Args:
        archive_url: the archive (local path or ``s3://...``).
        dst_url: output folder (local path or ``s3://...``).
        storage_options: fsspec options for both.
        fmt: ``png`` | ``jpeg`` | ``webp`` | ``tiff``.
        scale: output size factor (round(H·scale) × round(W·scale)).
        overwrite: rewrite outputs that exist (default: skip them, so a rerun only does what is missing).
        backend: render backend; threads: as for :class:`CompressWorker`.
    """

    def __init__(self, archive_url: str, dst_url: str, storage_options: dict[str, Any] | None, fmt: str = "png",
                 scale: float = 1.0, overwrite: bool = False, backend: str = "auto", threads: int | None = None):
        if fmt not in OUTPUT_FORMATS:
            raise SmartsplatError(f"unknown output format {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}")
        set_threads(threads)
        self.archive = open_archive(archive_url, storage_options=storage_options)
        self.out = Folder(dst_url, storage_options)
        self.fmt, self.scale, self.overwrite, self.backend = fmt, float(scale), bool(overwrite), backend
        self.pid = os.getpid()

    def ping(self) -> int:
        return self.pid

    def output_name(self, image_id: str) -> str:
        """``<id>.<ext>``: ids are checked (letters, digits, ``._-``), so a name can never leave DST."""
        return f"{check_id(image_id)}.{OUTPUT_FORMATS[self.fmt][0]}"

    def decode(self, image_id: str) -> dict[str, Any]:
        """Decode one image; row: id, status (``ok`` | ``skipped`` | ``damaged`` | ``failed``), output, seconds,
        error, plus read/decode/write seconds."""
        t0 = time.perf_counter()
        row: dict[str, Any] = {"id": image_id, "pid": self.pid}
        try:
            name = self.output_name(image_id)
        except SmartsplatError as err:
            return {**row, "status": "failed", "error": _short(err), "seconds": 0.0}
        row["output"] = self.out.uri(name)
        if not self.overwrite and self.out.exists(name):
            return {**row, "status": "skipped", "error": None, "seconds": time.perf_counter() - t0}
        try:
            record = self.archive.get(image_id)
        except KeyError as err:  # MissingImageError: unknown id, or an image that failed to encode
            return {**row, "status": "failed", "error": f"{image_id}: not in the archive ({err})",
                    "seconds": time.perf_counter() - t0}
        except (RecordError, SmartsplatError) as err:
            return {**row, "status": "damaged", "error": _short(err), "seconds": time.perf_counter() - t0}
        except OSError as err:
            return {**row, "status": "failed", "error": f"cannot read the record: {_short(err)}",
                    "seconds": time.perf_counter() - t0}
        t_read = time.perf_counter()
        try:
            pixels = decode_image(record, scale=self.scale, backend=self.backend)
        except RecordError as err:
            return {**row, "status": "damaged", "error": _short(err), "seconds": time.perf_counter() - t0}
        t_dec = time.perf_counter()
        data = encode_image_bytes(pixels, self.fmt)
        self.out.write_bytes(name, data)
        t_end = time.perf_counter()
        return {**row, "status": "ok", "error": None, "height": int(pixels.shape[0]), "width": int(pixels.shape[1]),
                "bytes": len(data), "read_seconds": t_read - t0, "decode_seconds": t_dec - t_read,
                "write_seconds": t_end - t_dec, "seconds": t_end - t0}
