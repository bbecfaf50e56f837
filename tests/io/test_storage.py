"""Folder (local and S3 through moto): safe names, atomic writes, write_if_absent, fresh listings, ranged reads."""
from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
import threading

import pytest

from smartsplat_dist.errors import ArchiveError
from smartsplat_dist.io.storage import (
    TEMP_PREFIX, Folder, UnsafePathError, check_relpath, list_uris, open_source, read_uri, uri_size, write_uri,
)

BAD_NAMES = ["", "/etc/passwd", "../x", "a/../../b", "a/..", "a//b", "a/./b", ".", "a/", "/", "a\\b",
             "..\\x", "a\x00b", "s3://other/x", "C:/x", "file:///etc/passwd"]


@pytest.fixture
def folder(folder_url) -> Folder:
    url, opts = folder_url
    return Folder(url, opts)


@pytest.mark.parametrize("name", BAD_NAMES)
def test_escaping_names_are_rejected(name, tmp_path):
    f = Folder(tmp_path)
    with pytest.raises(UnsafePathError):
        f.resolve(name)
    for op in (f.read_bytes, f.exists, f.size, f.delete, f.sub):
        with pytest.raises(ArchiveError):
            op(name)
    with pytest.raises(ArchiveError):
        f.write_bytes(name, b"x")
    with pytest.raises(ArchiveError):
        f.write_if_absent(name, b"x")
    assert list(tmp_path.iterdir()) == []


def test_check_relpath_accepts_plain_names():
    for name in ("a", "a/b.rec", "shards/shard-00001.tar", "x..y", ".hidden/a"):
        assert check_relpath(name) == name


def test_resolve_and_sub(folder):
    assert folder.resolve("a/b.rec") == folder.root + "/a/b.rec"
    sub = folder.sub("inner")
    sub.write_bytes("x.bin", b"12345")
    assert folder.read_bytes("inner/x.bin") == b"12345"
    assert sub.list() == ["x.bin"]
    assert sub.url == folder.url + "/inner"


def test_roundtrip_size_exists_delete(folder):
    assert not folder.exists("a/b.bin")
    folder.write_bytes("a/b.bin", b"hello world")
    assert folder.exists("a/b.bin")
    assert folder.size("a/b.bin") == 11
    assert folder.read_bytes("a/b.bin") == b"hello world"
    folder.write_bytes("a/b.bin", b"replaced")
    assert folder.read_bytes("a/b.bin") == b"replaced"
    folder.delete("a/b.bin")
    assert not folder.exists("a/b.bin")
    folder.delete("a/b.bin")  # missing_ok
    with pytest.raises(FileNotFoundError):
        folder.delete("a/b.bin", missing_ok=False)
    with pytest.raises(FileNotFoundError):
        folder.read_bytes("a/b.bin")


def test_ranged_reads(folder):
    data = bytes(range(256)) * 40
    folder.write_bytes("r.bin", data)
    for start, end in [(0, 1), (5, 17), (512, 1536), (len(data) - 3, len(data)), (100, 100)]:
        assert folder.read_range("r.bin", start, end) == data[start:end]
    assert folder.read_range("r.bin", len(data) - 2, len(data) + 50) == data[-2:]
    with pytest.raises(ValueError):
        folder.read_range("r.bin", 10, 5)


def test_list_sorted_relative_with_prefix_and_suffix(folder):
    for name in ("b/2.json", "b/1.json", "b/1.rec", "a.json", "b/deep/3.json"):
        folder.write_bytes(name, b"{}")
    assert folder.list() == ["a.json", "b/1.json", "b/1.rec", "b/2.json", "b/deep/3.json"]
    assert folder.list("b", suffix=".json") == ["b/1.json", "b/2.json", "b/deep/3.json"]
    assert folder.list("missing") == []
    assert set(folder.read_many(["b/1.json", "a.json", "nope.json"])) == {"b/1.json", "a.json"}


def test_listing_is_fresh_after_writes_and_deletes(folder):
    assert folder.list("d") == []
    folder.write_bytes("d/1", b"1")
    assert folder.list("d") == ["d/1"]
    folder.write_bytes("d/2", b"2")
    assert folder.list("d") == ["d/1", "d/2"]
    folder.delete("d/1")
    assert folder.list("d") == ["d/2"]
    other = Folder(folder.url, folder.storage_options)  # another writer (same process: shared fs instance)
    other.write_bytes("d/3", b"3")
    assert folder.list("d") == ["d/2", "d/3"]


def test_s3_listing_fresh_even_with_listings_cache_and_outside_writer(s3):
    url = s3.url()
    folder = Folder(url, dict(s3.storage_options, use_listings_cache=True))
    folder.write_bytes("k/a", b"a")
    assert folder.list("k") == ["k/a"]
    bucket, prefix = url[len("s3://"):].split("/", 1)
    s3.client().put_object(Bucket=bucket, Key=f"{prefix}/k/b", Body=b"b")  # not through fsspec: no invalidation
    assert folder.list("k") == ["k/a", "k/b"]
    s3.client().delete_object(Bucket=bucket, Key=f"{prefix}/k/a")
    assert folder.list("k") == ["k/b"]
    assert not folder.exists("k/a")


def test_write_if_absent(folder):
    assert folder.write_if_absent("m/marker.json", b"first") is True
    assert folder.write_if_absent("m/marker.json", b"second") is False
    assert folder.read_bytes("m/marker.json") == b"first"
    assert folder.list() == ["m/marker.json"]


def test_write_if_absent_local_race_has_one_winner(tmp_path):
    f = Folder(tmp_path)
    results = []
    barrier = threading.Barrier(6)

    def go(i):
        barrier.wait()
        results.append((f.write_if_absent("x", f"w{i}".encode()), i))

    threads = [threading.Thread(target=go, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for won, i in results if won]
    assert len(winners) == 1
    assert f.read_bytes("x") == f"w{winners[0]}".encode()
    assert os.listdir(tmp_path) == ["x"]  # no temp files left


def test_s3_write_if_absent_uses_conditional_put(s3, monkeypatch):
    folder = Folder(s3.url(), s3.storage_options)
    calls = []
    real = folder.fs.pipe_file

    def spy(path, data, **kw):
        calls.append(kw.get("mode"))
        return real(path, data, **kw)

    monkeypatch.setattr(folder.fs, "pipe_file", spy)
    assert folder.write_if_absent("c", b"1")
    # someone else wins between our existence check and our PUT: the conditional PUT must refuse
    monkeypatch.setattr(folder.fs, "isfile", lambda path: False)
    assert folder.write_if_absent("c", b"2") is False
    monkeypatch.undo()
    assert calls == ["create", "create"]
    assert folder.read_bytes("c") == b"1"


def test_s3_write_if_absent_falls_back_where_unsupported(s3, monkeypatch):
    folder = Folder(s3.url(), s3.storage_options)
    real = folder.fs.pipe_file

    def no_conditional(path, data, mode="overwrite", **kw):
        if mode == "create":
            raise OSError(errno.ENOSYS, "NotImplemented")
        return real(path, data, **kw)

    monkeypatch.setattr(folder.fs, "pipe_file", no_conditional)
    assert folder.write_if_absent("f", b"1") is True
    assert folder.write_if_absent("f", b"2") is False
    assert folder.read_bytes("f") == b"1"


def test_local_write_failure_leaves_no_file(tmp_path, monkeypatch):
    f = Folder(tmp_path)
    f.write_bytes("keep.bin", b"old")

    def boom(fd):
        raise OSError(errno.EIO, "disk on fire")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError):
        f.write_bytes("new.bin", b"x" * 100000)
    with pytest.raises(OSError):
        f.write_bytes("keep.bin", b"new contents")
    with pytest.raises(OSError):
        f.write_if_absent("marker", b"m")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["keep.bin"]
    assert f.read_bytes("keep.bin") == b"old"


def test_temp_files_are_never_listed(tmp_path):
    f = Folder(tmp_path)
    f.write_bytes("a", b"1")
    (tmp_path / f"{TEMP_PREFIX}abc-b").write_bytes(b"partial")
    assert f.list() == ["a"]


class _ExplodingBytes:
    def __bytes__(self):
        raise RuntimeError("encoder crashed while producing the data")


def test_s3_failed_write_publishes_nothing(s3, monkeypatch):
    folder = Folder(s3.url(), s3.storage_options)
    folder.write_bytes("keep", b"old")
    with pytest.raises(RuntimeError):
        folder.write_bytes("new", _ExplodingBytes())

    async def dropped(*args, **kwargs):
        raise ConnectionError("connection dropped during PUT")

    monkeypatch.setattr(folder.fs, "_call_s3", dropped)
    with pytest.raises(ConnectionError):
        folder.write_bytes("keep", b"new")
    monkeypatch.undo()
    assert folder.list() == ["keep"]
    assert folder.read_bytes("keep") == b"old"


def test_folder_pickles(folder):
    folder.write_bytes("p", b"q")
    clone = pickle.loads(pickle.dumps(folder))
    assert clone == folder and clone.read_bytes("p") == b"q"


def test_single_uri_helpers(folder):
    folder.write_bytes("img/a.png", b"A" * 10)
    folder.write_bytes("img/sub/b.PNG", b"B" * 20)
    folder.write_bytes("img/c.txt", b"C")
    opts = folder.storage_options
    uris = list_uris(folder.uri("img"), opts, suffixes=[".png"])
    assert uris == [folder.uri("img/a.png"), folder.uri("img/sub/b.PNG")]
    assert list_uris(uris[0], opts) == [uris[0]]
    assert read_uri(uris[1], opts) == b"B" * 20
    assert uri_size(uris[0], opts) == 10
    with open_source(uris[0], opts) as fh:
        assert fh.read(3) == b"AAA"
    write_uri(folder.uri("out/x.png"), b"xyz", opts)
    assert folder.read_bytes("out/x.png") == b"xyz"
    with pytest.raises(FileNotFoundError):
        read_uri(folder.uri("img/none.png"), opts)


def test_endpoint_from_environment_reaches_subprocess(s3):
    """Ray workers get the endpoint as AWS_* env vars (runtime_env); a bare Folder(url) must then work."""
    url = s3.url()
    Folder(url, s3.storage_options).write_bytes("hello.txt", b"from parent")
    code = (
        "import sys, json; from smartsplat_dist.io.storage import Folder; f = Folder(sys.argv[1]); "
        "f.write_bytes('child.txt', b'from child'); print(json.dumps([f.read_bytes('hello.txt').decode(), f.list()]))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(s3.env)
    out = subprocess.run([sys.executable, "-c", code, url], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == ["from parent", ["child.txt", "hello.txt"]]


def test_writing_path_publishes_whole_or_nothing(folder):
    with folder.writing_path("big/x.tar") as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"a" * 5000)
    assert folder.read_bytes("big/x.tar") == b"a" * 5000
    with pytest.raises(RuntimeError):
        with folder.writing_path("big/x.tar") as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"partial")
            raise RuntimeError("crashed while building")
    with pytest.raises(RuntimeError):
        with folder.writing_path("big/y.tar") as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"partial")
            raise RuntimeError("crashed while building")
    assert folder.list() == ["big/x.tar"]
    assert folder.read_bytes("big/x.tar") == b"a" * 5000
    assert not os.path.exists(tmp)
    with folder.open_read("big/x.tar", block_size=1024) as fh:
        fh.seek(4990)
        assert fh.read() == b"a" * 10


def test_read_many_with_glob_characters_in_the_folder_name(s3):
    folder = Folder(s3.url("run[1]*?"), s3.storage_options)
    folder.write_bytes("a", b"1")
    folder.write_bytes("b", b"2")
    assert folder.read_many(["a", "b", "c"]) == {"a": b"1", "b": b"2"}
    assert folder.list() == ["a", "b"]
