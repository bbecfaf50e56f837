"""Names inside an archive, image ids, shard planning and manifest rows (docs/design.md §6).

```
ARCHIVE/run.json                  config, code version, input listing digest
        staging/<id>.rec          a finished image's record
        staging/<id>.json         its manifest row (written after the .rec; the row's presence = staged)
        shards/shard-00042.tar    POSIX tar: <id>.rec members, then __index__.json
        shards/shard-00042.json   commit marker (written last): the shard exists once this exists
        shards/shard-00042.g1.tar / .g1.json   a later generation of shard 42 (``--retry-failed``): the
                                  highest generation with a marker is the shard; lower ones are superseded
        checkpoints/<id>.safetensors   an unfinished fit's state (deleted once the image is staged)
        manifest.jsonl            one row per image, rebuilt from the markers
```
"""
from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from typing import Any, Iterable

from ..errors import ArchiveError, ConfigError

RUN_JSON = "run.json"
MANIFEST = "manifest.jsonl"
STAGING = "staging"
CHECKPOINTS = "checkpoints"
SHARDS = "shards"
INDEX_MEMBER = "__index__.json"
RECORD_EXT = ".rec"

RUN_FORMAT = "smartsplat-archive"
MARKER_FORMAT = "smartsplat-shard"
FORMAT_VERSION = 1

#: Manifest columns, in order; rows may carry extra keys after these.
MANIFEST_FIELDS = (
    "id", "source", "shard", "offset", "length", "height", "width", "n_gaussians",
    "real_cr", "psnr", "ssim", "seconds", "status", "error", "sha256",
)
STATUSES = ("ok", "failed")

MAX_ID_LEN = 200  # characters, and UTF-8 bytes: "<id>.<ext>" must fit a 255-byte file name
_SHARD_NAME_RE = re.compile(r"^shards/shard-(\d{5,9})(?:\.g([1-9]\d{0,5}))?\.(tar|json)$")
_STEM_MAX = 64
_STEM_MAX_BYTES = 120
_PUNCT = "._-"


def _id_char(ch: str) -> bool:
    """Letters, digits and combining marks of any script (Unicode categories L, N, M), and ``._-``: never a
    separator, space, control, format (e.g. bidi override) or punctuation character."""
    return ch in _PUNCT or unicodedata.category(ch)[0] in "LNM"


def check_id(image_id: Any) -> str:
    """Return ``image_id`` if it is a safe image id, else raise ArchiveError.

    Safe: 1–200 characters (and at most 200 UTF-8 bytes) of letters, digits and marks of any script and
    ``._-``, NFC-normalised, starting with a letter, digit or ``_``, not ``__index__``. Ids become member and
    output file names, so they can never be paths (no ``/``, ``\\``, ``..``, control characters).
    """
    if not isinstance(image_id, str) or not image_id or len(image_id) > MAX_ID_LEN \
            or len(image_id.encode("utf-8", "surrogatepass")) > MAX_ID_LEN:
        raise ArchiveError(f"invalid image id {image_id!r}: must be a string of 1-{MAX_ID_LEN} characters "
                           f"(and UTF-8 bytes)")
    first = image_id[0]
    if (not all(_id_char(c) for c in image_id) or first in ".-" or unicodedata.category(first)[0] == "M"
            or image_id == "__index__" or unicodedata.normalize("NFC", image_id) != image_id):
        raise ArchiveError(
            f"invalid image id {image_id!r}: only letters, digits, '.', '_', '-', not starting with '.' or '-'"
        )
    return image_id


def _clip_bytes(stem: str, limit: int) -> str:
    while len(stem.encode("utf-8")) > limit:
        stem = stem[:-1]
    return stem


def image_id_for(source_uri: str, taken: set) -> str:
    """A readable, safe, unique id for ``source_uri``, e.g. ``s3://b/DIV16K/0001.png -> "0001"``,
    ``日本語.png -> "日本語"``.

    The file stem is NFC-normalised and sanitised (letters, digits and marks of any script, ``_`` and ``-`` are
    kept; anything else becomes ``_``; dots too, so WebDataset tools, which split a member name at its first
    dot, see ``<id>`` + ``.rec``), cut to 64 characters / 120 UTF-8 bytes; a clash gets a short hash of the URI
    appended (``0001-3fa2b1c9``). Clashes are case-insensitive (``casefold``: ids are file names on
    case-insensitive disks too). ``taken`` is the caller's bookkeeping set of case-folded ids already handed
    out; it is updated in place. Assign ids in sorted-listing order so every run gets the same ids.
    """
    name = str(source_uri).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    name = name.split("?", 1)[0]
    stem = name.rsplit(".", 1)[0] if "." in name.lstrip(".") else name
    stem = unicodedata.normalize("NFC", stem)
    stem = "".join(c if c != "." and _id_char(c) else "_" for c in stem)
    stem = re.sub(r"_+", "_", stem).strip("_-")
    stem = _clip_bytes(stem[:_STEM_MAX], _STEM_MAX_BYTES).rstrip("_-")
    while stem and unicodedata.category(stem[0])[0] == "M":
        stem = stem[1:]
    stem = stem or "image"
    if stem.casefold() == "__index__":
        stem = "index"
    candidate = stem
    digest = hashlib.sha256(str(source_uri).encode("utf-8", "surrogatepass")).hexdigest()
    n = 8
    counter = 0
    while candidate.casefold() in taken or candidate.lower() in taken or candidate in taken:
        if n < len(digest):
            candidate = f"{stem}-{digest[:n]}"
            n += 4
        else:
            counter += 1
            candidate = f"{stem}-{digest[:8]}-{counter}"
    taken.add(candidate.casefold())
    return check_id(candidate)


def image_ids_for(listing: Iterable[str]) -> list[str]:
    """Ids for a whole listing, in its order (``image_id_for`` with one shared ``taken`` set)."""
    taken: set = set()
    return [image_id_for(uri, taken) for uri in listing]


def plan_shards(ids: list[str], images_per_shard: int) -> list[list[str]]:
    """Shard k holds ``ids[k*K:(k+1)*K]`` (K = images_per_shard): deterministic from the sorted listing."""
    if not isinstance(images_per_shard, int) or images_per_shard < 1:
        raise ConfigError(f"images_per_shard must be a positive integer, got {images_per_shard!r}")
    ids = list(ids)
    return [ids[k: k + images_per_shard] for k in range(0, len(ids), images_per_shard)]


def listing_digest(listing: Iterable[str]) -> str:
    """sha256 of the input listing (URIs joined by newlines, in the given order)."""
    h = hashlib.sha256()
    for uri in listing:
        h.update(str(uri).encode("utf-8", "surrogatepass"))
        h.update(b"\n")
    return h.hexdigest()


# -- names ----------------------------------------------------------------------------------------------------
def staged_record_name(image_id: str) -> str:
    return f"{STAGING}/{check_id(image_id)}{RECORD_EXT}"


def staged_row_name(image_id: str) -> str:
    return f"{STAGING}/{check_id(image_id)}.json"


def checkpoint_name(image_id: str) -> str:
    """Where an unfinished fit of ``image_id`` keeps its checkpoint (a safetensors file)."""
    return f"{CHECKPOINTS}/{check_id(image_id)}.safetensors"


def _gen(generation: int) -> str:
    if isinstance(generation, bool) or not isinstance(generation, int) or not 0 <= generation < 10**6:
        raise ArchiveError(f"invalid shard generation {generation!r}")
    return f".g{generation}" if generation else ""


def shard_tar_name(index: int, generation: int = 0) -> str:
    """``shards/shard-00042.tar`` (generation 0) or ``shards/shard-00042.g<generation>.tar``."""
    return f"{SHARDS}/shard-{_check_index(index):05d}{_gen(generation)}.tar"


def shard_marker_name(index: int, generation: int = 0) -> str:
    """``shards/shard-00042.json`` (generation 0) or ``shards/shard-00042.g<generation>.json``."""
    return f"{SHARDS}/shard-{_check_index(index):05d}{_gen(generation)}.json"


def parse_shard_name(rel: str) -> tuple[int, str, int] | None:
    """``"shards/shard-00042.json" -> (42, "json", 0)``, ``"shards/shard-00042.g2.tar" -> (42, "tar", 2)``;
    None for other names."""
    m = _SHARD_NAME_RE.match(rel)
    return (int(m.group(1)), m.group(3), int(m.group(2) or 0)) if m else None


def current_markers(names: Iterable[str]) -> dict[int, tuple[int, str]]:
    """shard index -> (generation, marker name) of the highest generation that has a marker, from a listing."""
    out: dict[int, tuple[int, str]] = {}
    for name in names:
        parsed = parse_shard_name(name)
        if parsed is not None and parsed[1] == "json" and parsed[2] >= out.get(parsed[0], (-1, ""))[0]:
            out[parsed[0]] = (parsed[2], name)
    return out


def superseded_shard_files(names: Iterable[str]) -> list[str]:
    """Shard files (tars and markers) of a generation below the current one of their shard: left behind by a
    replacement that was interrupted after the new generation's marker was written; safe to delete."""
    names = list(names)
    current = current_markers(names)
    out = []
    for name in names:
        parsed = parse_shard_name(name)
        if parsed is not None and parsed[0] in current and parsed[2] < current[parsed[0]][0]:
            out.append(name)
    return sorted(out)


def _check_index(index: Any) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 10**9:
        raise ArchiveError(f"invalid shard index {index!r}")
    return index


# -- JSON -----------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """JSON-safe copy: numpy scalars → Python, non-finite floats → None, tuples → lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ArchiveError(f"value {value!r} of type {type(value).__name__} cannot be stored as JSON")


def dumps(obj: Any, *, indent: int | None = None) -> bytes:
    return json.dumps(_plain(obj), indent=indent, sort_keys=indent is not None, allow_nan=False).encode()


#: Deepest nesting accepted in an archive's JSON (markers, run.json, rows nest 4 levels at most).
MAX_JSON_DEPTH = 64


def _depth_ok(obj: Any, limit: int) -> bool:
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (dict, list)):
            if depth > limit:
                return False
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value))
    return True


def loads(data: bytes, what: str) -> Any:
    """Parse untrusted JSON: ArchiveError (never RecursionError) for invalid or too deeply nested documents."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArchiveError(f"{what}: not valid JSON ({err})") from None
    except RecursionError:
        doc = None
    else:
        if _depth_ok(doc, MAX_JSON_DEPTH):
            return doc
    raise ArchiveError(f"{what}: JSON nested deeper than {MAX_JSON_DEPTH} levels (damaged or hostile)")


def order_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with the manifest columns first (missing ones as None), then any extra keys sorted."""
    out = {k: row.get(k) for k in MANIFEST_FIELDS}
    for k in sorted(row):
        if k not in out:
            out[k] = row[k]
    return out
