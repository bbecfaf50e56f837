"""SRC of ``smartsplat compress``: which images a run covers, as a sorted list of URIs.

SRC may be

- a local folder or an ``s3://`` prefix: every file below it (recursively) whose name ends in an image extension
  (:data:`IMAGE_EXTENSIONS`, case-insensitive); names starting with ``.`` (files or folders) are skipped;
  symlinked folders are not followed; both kinds of skipped entry are counted in the summary line;
- a glob (``photos/*.png``, ``s3://bucket/set/**/*.tif``): every *file* it matches, whatever its extension
  (the user said exactly what they want); as in a shell, ``*`` does not match names starting with ``.``;
- a single image file (it has an image extension): just that image;
- any other file (local or ``s3://``): a listing, UTF-8 text, one URI per line; blank lines and lines starting
  with ``#`` are ignored; relative entries are relative to the listing's own folder.

Local entries come back as absolute paths, remote ones as full URLs (``s3://bucket/key``). The result is sorted
and deduplicated so that the same SRC always gives the same listing (the archive records its digest).
Listing only names files; reading them is the workers' job, so an unreadable image fails that image only.
"""
from __future__ import annotations

import os
import posixpath
from typing import Any

import fsspec

from ..errors import ConfigError

#: File name endings taken for images when listing a folder or prefix.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".ppm", ".pgm", ".pnm", ".gif")

_GLOB_CHARS = "*?["


def is_remote(uri: str) -> bool:
    """True for ``scheme://...`` URIs other than ``file://``."""
    return "://" in uri and not uri.startswith("file://")


def is_image_name(name: str) -> bool:
    """True when ``name`` ends in one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def _fs(uri: str, storage_options: dict[str, Any] | None):
    try:
        return fsspec.core.url_to_fs(uri, **(storage_options or {}))
    except (ValueError, ImportError) as err:
        raise ConfigError(f"SRC {uri}: unsupported location ({err})") from err


def _join(fs, path: str, uri: str) -> str:
    """The URI of ``path`` (as ``fs`` names it) in the style of the SRC ``uri``."""
    if not is_remote(uri):
        return os.path.abspath(path)
    return fs.unstrip_protocol(path)


def _hidden(rel: str) -> bool:
    return any(part.startswith(".") for part in rel.split("/") if part)


class Listing(list):
    """The sorted image URIs of SRC (a list), and ``skipped``: what a folder listing passed over, by reason
    (``{"symlinked folders": 1, "files without an image extension": 2}``), for the summary line."""

    skipped: dict[str, int]

    def __init__(self, uris=(), skipped: dict[str, int] | None = None):
        super().__init__(uris)
        self.skipped = {k: v for k, v in (skipped or {}).items() if v}

    def describe_skipped(self) -> str:
        """``"; skipped 1 symlinked folder, 2 files without an image extension"`` or ``""``."""
        if not self.skipped:
            return ""
        return "; skipped " + ", ".join(f"{n} {k if n != 1 else k.replace('folders', 'folder').replace('files', 'file')}"
                                        for k, n in sorted(self.skipped.items(), reverse=True))


def _list_tree(fs, root: str, uri: str, skipped: dict[str, int]) -> list[str]:
    out = []
    root = root.rstrip("/")
    for path in fs.find(root, withdirs=False):
        rel = posixpath.relpath(path, root) if path != root else posixpath.basename(path)
        if _hidden(rel):
            continue
        if not is_remote(uri) and os.path.islink(path) and os.path.isdir(path):
            skipped["symlinked folders"] = skipped.get("symlinked folders", 0) + 1  # not followed: no loops
            continue
        if not is_image_name(path):
            skipped["files without an image extension"] = skipped.get("files without an image extension", 0) + 1
            continue
        out.append(_join(fs, path, uri))
    return out


def _read_listing(fs, path: str, uri: str, storage_options: dict[str, Any] | None) -> list[str]:
    try:
        data = fs.cat_file(path)
    except (OSError, ValueError) as err:
        raise ConfigError(f"SRC {uri}: cannot read the listing ({err})") from err
    if b"\x00" in data[:4096]:
        raise ConfigError(f"SRC {uri}: not a text listing of image URIs (binary data; "
                          f"is it an image with an unknown extension?)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"SRC {uri}: the listing is not UTF-8 text ({err})") from err
    base = posixpath.dirname(path)
    out = []
    for line in text.splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        if entry.startswith("file://"):
            entry = entry[len("file://"):]
        if is_remote(entry):
            out.append(entry)
        elif is_remote(uri):
            out.append(fs.unstrip_protocol(posixpath.normpath(posixpath.join(base, entry))))
        else:
            out.append(os.path.normpath(os.path.join(os.path.abspath(base), os.path.expanduser(entry))))
    return out


def list_sources(src: str, storage_options: dict[str, Any] | None = None) -> Listing:
    """The sorted, deduplicated image URIs that SRC names (see the module doc for the forms of SRC), as a
    :class:`Listing` that also counts what a folder listing skipped (symlinked folders are not followed).

    Raises :class:`ConfigError` when SRC does not exist, a listing cannot be read, or nothing is found.
    """
    if not src:
        raise ConfigError("SRC is empty")
    uri = src[len("file://"):] if src.startswith("file://") else src
    if not is_remote(uri):
        uri = os.path.expanduser(uri)
    fs, path = _fs(uri, storage_options)
    fs.invalidate_cache()  # fsspec reuses instances; a stale listing cache would hide new images
    skipped: dict[str, int] = {}
    try:
        if any(c in path for c in _GLOB_CHARS) and not fs.exists(path):
            dotted = posixpath.basename(path).startswith(".")  # like a shell: '*' does not match dotfiles
            found = [_join(fs, p, uri) for p in fs.glob(path)
                     if (dotted or not posixpath.basename(p).startswith(".")) and fs.isfile(p)]
            kind = "glob"
        elif fs.isdir(path):
            found = _list_tree(fs, path, uri, skipped)
            kind = "folder"
        elif fs.isfile(path):
            if is_image_name(path):
                found, kind = [_join(fs, path, uri)], "image"
            else:
                found, kind = _read_listing(fs, path, uri, storage_options), "listing"
        else:
            raise ConfigError(f"SRC {src}: no such file, folder or prefix")
    except ConfigError:
        raise
    except (OSError, ValueError) as err:
        raise ConfigError(f"SRC {src}: cannot list ({type(err).__name__}: {err})") from err
    uris = Listing(sorted(set(found)), skipped)
    if not uris:
        raise ConfigError(f"SRC {src}: no images found in this {kind}"
                          + (f" (looked for {', '.join(IMAGE_EXTENSIONS)})" if kind == "folder" else "")
                          + uris.describe_skipped())
    return uris
