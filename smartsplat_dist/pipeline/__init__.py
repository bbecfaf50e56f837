"""Datasets on Ray: list the sources, fit images on long-lived actors, commit shards, decode in bulk.

``compress_dataset(src, dst, config, ...)`` and ``decode_archive(archive, dst, ...)`` (see :mod:`.driver`);
the actors' work is in :mod:`.worker` (plain classes), SRC listing in :mod:`.sources`, fault injection for
tests in :mod:`.faults`, the progress line in :mod:`.progress`.
"""
from __future__ import annotations

from .driver import Result, compress_dataset, decode_archive
from .sources import list_sources

__all__ = ["Result", "compress_dataset", "decode_archive", "list_sources"]
