"""Checks of a record's own structure through the codec (``smartsplat_dist.codec``).

The archive stores records as opaque bytes; commits check each record's header (``read_meta``: cheap) and
``verify`` decodes each one fully (``decode_record``: checks its checksum and the decode limits).
"""
from __future__ import annotations

from ..codec import RecordMeta, decode_record, read_meta
from ..codec.limits import UNLIMITED, check_render
from ..errors import RecordError


def check_record(data: bytes, full: bool = False) -> RecordMeta:
    """The record's ``RecordMeta`` (``full``: after decoding it entirely, which verifies its checksum). Raises
    RecordError if the record is malformed."""
    try:
        if full:  # what ``decode`` would do: limits included, so verify flags what decode would refuse
            g, meta = decode_record(data)
            check_render(g, meta.height, meta.width)
            return meta
        return read_meta(data, UNLIMITED)  # structure only: the writer checks records it was given
    except RecordError:
        raise
    except Exception as err:  # a codec bug on garbage input is still a bad record, named as such
        raise RecordError(f"record cannot be parsed ({type(err).__name__}: {err})") from None
