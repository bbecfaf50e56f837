"""A folder on local disk or S3 through fsspec, with atomic writes and paths that cannot escape it.

``Folder("s3://bucket/prefix", {"client_kwargs": {"endpoint_url": ...}})`` and ``Folder("/data/out")`` behave
the same. Every name given to a folder is *relative* and checked by :func:`check_relpath`: no absolute paths,
``..``, ``.``, empty parts, backslashes or NUL, so nothing read from an archive can address a file outside it.

Writes are atomic: a reader sees the old object, or the whole new one, never a part.
- local: the bytes go to a temp file in the same directory (``.tmp-<random>-<name>``, never listed), are
  fsynced, then ``os.replace``-d (or ``os.link``-ed for :meth:`Folder.write_if_absent`);
- S3: one ``PutObject`` of the whole bytes (``pipe_file``; a multipart upload above 100 MB, which S3 also
  publishes atomically on completion and aborts on error). Never ``fs.open(path, "wb")``: on an exception
  inside the ``with`` block s3fs still publishes the partial object.
S3 listings are never cached (``use_listings_cache=False`` plus an explicit invalidation before each listing).
S3 endpoint and credentials come from ``storage_options`` or the standard AWS variables
(``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``), which botocore reads itself. Ray
workers get the non-secret ones as env vars and the secret ones in memory, as storage options (the driver's
``_worker_storage_options``): Ray logs env vars.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
import uuid
from typing import Any, BinaryIO, Iterable, Iterator

import fsspec
from fsspec.implementations.local import LocalFileSystem

from ..errors import ArchiveError, ConfigError

#: Basename prefix of in-flight temp files of local atomic writes; :meth:`Folder.list` never returns them.
TEMP_PREFIX = ".tmp-"
_BAD_CHARS = re.compile(r"[\\\x00]")


class UnsafePathError(ArchiveError, ValueError):
    """A relative name that would escape its folder (absolute, ``..``, backslash, NUL, empty part)."""


def check_relpath(rel: str) -> str:
    """Return ``rel`` if it is a safe relative name (``a/b.rec``), else raise :class:`UnsafePathError`."""
    if not isinstance(rel, str) or not rel:
        raise UnsafePathError(f"unsafe path {rel!r}: not a non-empty string")
    if _BAD_CHARS.search(rel):
        raise UnsafePathError(f"unsafe path {rel!r}: backslash or NUL character")
    if rel.startswith("/") or "://" in rel or re.match(r"^[A-Za-z]:", rel):
        raise UnsafePathError(f"unsafe path {rel!r}: absolute path or URL")
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            raise UnsafePathError(f"unsafe path {rel!r}: empty, '.' or '..' part")
    return rel


def _normalise_options(protocol: str, storage_options: dict[str, Any] | None) -> dict[str, Any]:
    opts = dict(storage_options or {})
    if protocol in ("s3", "s3a"):
        opts.setdefault("use_listings_cache", False)
    return opts


def _protocol(url: str) -> str:
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", url)
    return m.group(1).lower() if m else "file"


class Folder:
    """A directory (local path or ``s3://bucket/prefix``) holding files addressed by safe relative names.

    Attributes: ``url`` (as given, local paths made absolute), ``fs`` (the fsspec filesystem), ``root`` (the
    folder's path inside ``fs``: ``/abs/dir`` or ``bucket/prefix``), ``storage_options``, ``is_local``.
    Picklable (re-created from ``url`` and ``storage_options``), so it can be passed to Ray tasks.
    """

    def __init__(self, url: str | os.PathLike, storage_options: dict[str, Any] | None = None):
        url = os.fspath(url)
        if not url:
            raise ArchiveError("empty folder URL")
        protocol = _protocol(url)
        if protocol == "file":
            if url.startswith("file://"):
                url = url[len("file://"):]
            url = os.path.abspath(os.path.expanduser(url))
        else:
            url = url.rstrip("/")
        self.url = url
        self.protocol = protocol
        self.storage_options = _normalise_options(protocol, storage_options)
        self.fs, root = fsspec.core.url_to_fs(url, **self.storage_options)
        self.root = root.rstrip("/") if root != "/" else root
        self.is_local = isinstance(self.fs, LocalFileSystem)
        self.is_s3 = protocol in ("s3", "s3a")

    def __reduce__(self):
        return (Folder, (self.url, self.storage_options))

    def __repr__(self) -> str:
        return f"Folder({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Folder) and (self.url, self.storage_options) == (other.url, other.storage_options)

    def __hash__(self) -> int:
        return hash(self.url)

    # -- names ------------------------------------------------------------------------------------------------
    def resolve(self, rel: str) -> str:
        """Full path of ``rel`` inside ``fs`` (``/abs/dir/rel`` or ``bucket/prefix/rel``); rejects escapes."""
        check_relpath(rel)
        return f"{self.root}/{rel}" if self.root != "/" else f"/{rel}"

    def uri(self, rel: str) -> str:
        """Full URI of ``rel`` (``s3://bucket/prefix/rel`` or an absolute local path)."""
        check_relpath(rel)
        return f"{self.url}/{rel}"

    def sub(self, rel: str) -> "Folder":
        """The sub-folder ``rel`` (same storage options)."""
        return Folder(self.uri(rel), self.storage_options)

    # -- reads ------------------------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        path = self.resolve(rel)
        if self.is_local:
            return os.path.isfile(path)
        return bool(self.fs.isfile(path))

    def size(self, rel: str) -> int:
        """Size in bytes; FileNotFoundError if absent."""
        path = self.resolve(rel)
        if self.is_local:
            return os.path.getsize(path)
        return int(self.fs.size(path))

    def read_bytes(self, rel: str) -> bytes:
        """The whole file; FileNotFoundError if absent."""
        path = self.resolve(rel)
        if self.is_local:
            with open(path, "rb") as f:
                return f.read()
        return self.fs.cat_file(path)

    def read_range(self, rel: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of ``rel`` in one ranged read (fewer if the file is shorter)."""
        if not (isinstance(start, int) and isinstance(end, int)) or start < 0 or end < start:
            raise ValueError(f"bad byte range [{start}, {end})")
        path = self.resolve(rel)
        if end == start:
            return b""
        if self.is_local:
            with open(path, "rb") as f:
                end = min(end, os.fstat(f.fileno()).st_size)  # never allocate more than the file holds
                if end <= start:
                    return b""
                f.seek(start)
                return f.read(end - start)
        return self.fs.cat_file(path, start=start, end=end)

    def open_read(self, rel: str, block_size: int | None = None) -> BinaryIO:
        """A seekable binary file object for streaming reads of ``rel`` (use as a context manager); on S3 each
        read fetches at least ``block_size`` bytes (default: s3fs's). Reading only: never open for writing."""
        path = self.resolve(rel)
        if self.is_local:
            return open(path, "rb")
        kwargs = {"block_size": block_size} if block_size else {}
        return self.fs.open(path, "rb", **kwargs)

    def read_many(self, rels: Iterable[str]) -> dict[str, bytes]:
        """Several whole files at once (concurrent GETs on S3); missing files are left out of the result."""
        rels = list(rels)
        if not rels:
            return {}
        paths = {self.resolve(r): r for r in rels}
        if self.is_local:
            out = {}
            for path, rel in paths.items():
                try:
                    with open(path, "rb") as f:
                        out[rel] = f.read()
                except FileNotFoundError:
                    pass
            return out
        if any(c in p for p in paths for c in "*?["):  # fs.cat would glob these: read one by one
            got = {}
            for p in paths:
                try:
                    got[p] = self.fs.cat_file(p)
                except FileNotFoundError as err:
                    got[p] = err
        else:
            got = self.fs.cat(list(paths), on_error="return")
        out = {}
        for path, data in got.items():
            rel = paths.get(path) or paths.get(path.lstrip("/"))
            if rel is None:
                continue
            if isinstance(data, FileNotFoundError):
                continue
            if isinstance(data, BaseException):
                raise data
            out[rel] = data
        return out

    def list(self, prefix_rel: str = "", suffix: str | None = None) -> list[str]:
        """Files under the sub-folder ``prefix_rel`` (recursive), as sorted names relative to THIS folder
        (``list("staging", ".json") -> ["staging/a.json", ...]``). Fresh: never a cached S3 listing."""
        base = self.resolve(prefix_rel) if prefix_rel else self.root
        if self.is_local:
            found = []
            for dirpath, _dirs, files in os.walk(base):
                found.extend(os.path.join(dirpath, f) for f in files)
        else:
            self.fs.invalidate_cache(base)
            try:
                found = self.fs.find(base, withdirs=False)
            except FileNotFoundError:
                found = []
        root = self.root.rstrip("/") + "/"
        out = []
        for path in found:
            path = path.replace(os.sep, "/") if self.is_local else path
            if not path.startswith(root):
                continue
            rel = path[len(root):]
            name = rel.rsplit("/", 1)[-1]
            if name.startswith(TEMP_PREFIX) or (suffix is not None and not rel.endswith(suffix)):
                continue
            out.append(rel)
        return sorted(out)

    # -- writes -----------------------------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write ``data`` to ``rel`` atomically (replacing any existing file)."""
        data = bytes(data)
        path = self.resolve(rel)
        if self.is_local:
            atomic_write(path, data)
            return
        self.fs.pipe_file(path, data)

    @contextlib.contextmanager
    def writing_path(self, rel: str) -> Iterator[str]:
        """Write a big file through a local temp path, published atomically as ``rel`` when the block exits
        without an exception (discarded otherwise): ``with f.writing_path("shards/x.tar") as p: build(p)``.

        local: the temp file is in the target's directory, fsynced, then ``os.replace``-d; S3: a temp file
        in the system temp dir uploaded by ``put_file`` (one PUT, or a multipart upload that S3 publishes only
        on completion and that is aborted on error)."""
        path = self.resolve(rel)
        if self.is_local:
            directory, name = os.path.split(path)
            os.makedirs(directory, exist_ok=True)
            tmp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")
        else:
            fd, tmp = tempfile.mkstemp(prefix="smartsplat-upload-")
            os.close(fd)
        try:
            yield tmp
            if self.is_local:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            else:
                self.fs.put_file(tmp, path)
                self.fs.invalidate_cache(path)
        finally:
            _unlink_quiet(tmp)

    def write_if_absent(self, rel: str, data: bytes) -> bool:
        """Create ``rel`` with ``data`` atomically unless it exists; True if this call created it.

        local: ``os.link`` of a fsynced temp file (atomic and exclusive); S3: ``PutObject`` with
        ``IfNoneMatch="*"`` (AWS, MinIO, moto), falling back to check-then-put where the store answers
        "not implemented" (then two racing writers can both succeed: the last one wins).
        """
        data = bytes(data)
        path = self.resolve(rel)
        if self.is_local:
            tmp = _local_temp(path, data)
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            except OSError as err:  # a filesystem without hard links: exclusive-ish fallback
                if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                    raise
                if os.path.exists(path):
                    return False
                os.replace(tmp, path)
                return True
            finally:
                _unlink_quiet(tmp)
        if self.is_s3:
            if self.fs.isfile(path):
                return False
            try:
                self.fs.pipe_file(path, data, mode="create")
                return True
            except FileExistsError:
                return False
            except OSError as err:
                if err.errno != errno.ENOSYS:  # NotImplemented: conditional writes unsupported here
                    raise
            self.fs.pipe_file(path, data)
            return True
        if self.fs.isfile(path):
            return False
        self.fs.pipe_file(path, data)
        return True

    def delete(self, rel: str, missing_ok: bool = True) -> None:
        """Remove ``rel``; FileNotFoundError if absent and not ``missing_ok``."""
        path = self.resolve(rel)
        if self.is_local:
            try:
                os.unlink(path)
            except FileNotFoundError:
                if not missing_ok:
                    raise
            return
        if not missing_ok and not self.fs.isfile(path):
            raise FileNotFoundError(path)
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            if not missing_ok:
                raise
        self.fs.invalidate_cache(path)



def _local_temp(path: str, data: bytes) -> str:
    """``data`` in a fsynced temp file beside ``path`` (``.tmp-<random>-<name>``, mode 0666 less the umask, as
    ``open`` gives), created with its directory; the caller publishes it."""
    directory, name = os.path.split(path)
    os.makedirs(directory or ".", exist_ok=True)
    tmp = os.path.join(directory, f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _unlink_quiet(tmp)
        raise
    return tmp


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write a local file so that it either appears whole or not at all (replacing any existing file; parent
    folders are created), with the usual mode (0666 less the umask)."""
    path = os.fspath(path)
    tmp = _local_temp(path, bytes(data))
    try:
        os.replace(tmp, path)
    except BaseException:
        _unlink_quiet(tmp)
        raise


def _unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


# -- single URIs (input images) -------------------------------------------------------------------------------
def split_uri(uri: str | os.PathLike) -> tuple[str, str]:
    """(parent URL, basename) of a file URI: ``s3://b/k/x.png -> ("s3://b/k", "x.png")``."""
    uri = os.fspath(uri)
    if _protocol(uri) == "file":
        uri = os.path.abspath(os.path.expanduser(uri[len("file://"):] if uri.startswith("file://") else uri))
    parent, _, name = uri.rstrip("/").rpartition("/")
    if not name or not parent:
        raise ArchiveError(f"not a file URI: {uri!r}")
    return parent, name


def _fs_path(uri: str | os.PathLike, storage_options: dict[str, Any] | None):
    uri = os.fspath(uri)
    protocol = _protocol(uri)
    if protocol == "file" and uri.startswith("file://"):
        uri = uri[len("file://"):]
    return fsspec.core.url_to_fs(uri, **_normalise_options(protocol, storage_options))


def read_uri(uri: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> bytes:
    """All bytes of one file given by a local path or ``s3://bucket/key``; FileNotFoundError if absent."""
    fs, path = _fs_path(uri, storage_options)
    if isinstance(fs, LocalFileSystem):
        with open(path, "rb") as f:
            return f.read()
    return fs.cat_file(path)


def open_source(uri: str | os.PathLike, storage_options: dict[str, Any] | None = None):
    """A binary read-only file object for a local path or ``s3://bucket/key`` (streams; use as a context
    manager). Good for ``load_image(open_source(uri))`` on 150–300 MB PNGs."""
    fs, path = _fs_path(uri, storage_options)
    return fs.open(path, "rb")


def uri_size(uri: str | os.PathLike, storage_options: dict[str, Any] | None = None) -> int:
    """Size in bytes of one file (local path or ``s3://bucket/key``)."""
    fs, path = _fs_path(uri, storage_options)
    return int(fs.size(path))


def write_uri(uri: str | os.PathLike, data: bytes, storage_options: dict[str, Any] | None = None) -> None:
    """Write one file atomically, given its full URI (e.g. a decoded image's output path)."""
    parent, name = split_uri(uri)
    Folder(parent, storage_options).write_bytes(name, data)


def list_uris(
    url: str | os.PathLike, storage_options: dict[str, Any] | None = None, suffixes: Iterable[str] | None = None
) -> list[str]:
    """Sorted full URIs of the files under ``url`` (recursive) whose names end with one of ``suffixes``
    (case-insensitive; all files if None). ``url`` naming a single file gives ``[url]``.
    Local results are absolute paths; S3 results are ``s3://bucket/key``."""
    url = os.fspath(url)
    fs, path = _fs_path(url, storage_options)
    sfx = tuple(s.lower() for s in suffixes) if suffixes is not None else None
    if fs.isfile(path):
        return [Folder(url, storage_options).url if _protocol(url) != "file" else os.path.abspath(path)]
    folder = Folder(url, storage_options)
    names = folder.list()
    return [f"{folder.url}/{n}" for n in names if sfx is None or n.lower().endswith(sfx)]


def parse_storage_options(text: str | None) -> dict[str, Any] | None:
    """``--storage-options`` value: a JSON object, or ``@path`` to a JSON file; None/empty → None.
    ConfigError on anything else (the message never echoes the value: it may hold secrets)."""
    if not text:
        return None
    source = "--storage-options"
    if text.startswith("@"):
        source = text[1:]
        try:
            with open(source, encoding="utf-8") as f:
                text = f.read()
        except OSError as err:
            raise ConfigError(f"cannot read storage options file {source}: {err.strerror}") from None
    try:
        opts = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{source}: not valid JSON (line {err.lineno}, column {err.colno})") from None
    if not isinstance(opts, dict):
        raise ConfigError(f"{source}: must be a JSON object")
    return opts
