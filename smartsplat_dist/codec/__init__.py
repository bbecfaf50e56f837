"""The per-image record codec (docs/design.md §5): quantiser + entropy coder + versioned byte layout (FORMAT.md)."""
from .config import MAX_GAUSSIANS, MAX_SIDE, CodecConfig
from .limits import DecodeLimits
from .quantize import FrozenQuantizer, QuantParams, canonicalize, compute_params, fake_quantize_v1
from .record import FORMAT_VERSION, MAGIC, RecordMeta, decode_record, encode_record, fake_quantize, read_meta

__all__ = [
    "CodecConfig", "DecodeLimits", "RecordMeta", "QuantParams", "encode_record", "decode_record", "read_meta", "fake_quantize",
    "fake_quantize_v1",
    "FrozenQuantizer", "compute_params", "canonicalize", "FORMAT_VERSION", "MAGIC", "MAX_GAUSSIANS", "MAX_SIDE",
]
