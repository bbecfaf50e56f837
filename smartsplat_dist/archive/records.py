"""Optional checks of a record's own structure through the codec (``smartsplat_dist.codec``).

The archive stores records as opaque bytes; where the codec is importable, commits check each record's header
(``read_meta``: cheap) and ``verify`` decodes each one fully (``decode_record``: checks its checksum).
"""
from __future__ import annotations

from typing import Any

from ..errors import RecordError


def _codec():
    try:
        from .. import codec
    except ImportError:
        return None
    if not (hasattr(codec, "read_meta") and hasattr(codec, "decode_record")):
        return None
    return codec


def codec_available() -> bool:
    """True when ``smartsplat_dist.codec`` provides ``read_meta`` and ``decode_record``."""
    return _codec() is not None


def check_record(data: bytes, full: bool = False) -> Any | None:
    """The record's ``RecordMeta`` (``full``: after decoding it entirely, which verifies its checksum), or None
    when the codec is not available. Raises RecordError if the record is malformed."""
    codec = _codec()
    if codec is None:
        return None
    from ..codec.limits import UNLIMITED, check_render

    try:
        if full:  # what ``decode`` would do: limits included, so verify flags what decode would refuse
            g, meta = codec.decode_record(data)
            check_render(g, meta.height, meta.width)
            return meta
        return codec.read_meta(data, UNLIMITED)  # structure only: the writer checks records it was given
    except RecordError:
        raise
    except Exception as err:  # a codec bug on garbage input is still a bad record, named as such
        raise RecordError(f"record cannot be parsed ({type(err).__name__}: {err})") from None
