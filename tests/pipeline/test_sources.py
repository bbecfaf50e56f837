"""SRC listing: folders, globs, single images, listing files; sorted, deduplicated, clear errors."""
from __future__ import annotations

import os

import pytest

from smartsplat_dist.errors import ConfigError
from smartsplat_dist.pipeline.sources import list_sources


@pytest.fixture
def tree(tmp_path):
    for rel in ("b.png", "a.JPG", "sub/c.tif", "sub/deep/d.webp", "notes.txt", ".hidden.png", ".cache/e.png"):
        p = tmp_path / "imgs" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return tmp_path / "imgs"


def test_folder_is_recursive_sorted_by_extension_and_skips_hidden(tree):
    got = list_sources(str(tree))
    rel = [os.path.relpath(u, tree) for u in got]
    assert rel == ["a.JPG", "b.png", "sub/c.tif", "sub/deep/d.webp"]
    assert all(os.path.isabs(u) for u in got)


def test_glob_matches_files_whatever_the_extension(tree):
    got = list_sources(str(tree / "*"))
    assert [os.path.basename(u) for u in got] == ["a.JPG", "b.png", "notes.txt"]  # the folder 'sub' is not a file
    assert [os.path.basename(u) for u in list_sources(str(tree / "**" / "*.tif"))] == ["c.tif"]


def test_single_image_file(tree):
    assert list_sources(str(tree / "b.png")) == [str(tree / "b.png")]


def test_listing_file_comments_relative_and_duplicates(tree, tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# my images\n\nimgs/b.png\n  {tree / 'sub' / 'c.tif'}  \nimgs/b.png\n"
                       "s3://bucket/x/y.png\nfile://" + str(tree / "a.JPG") + "\n")
    got = list_sources(str(listing))
    assert got == sorted({str(tree / "b.png"), str(tree / "sub" / "c.tif"), "s3://bucket/x/y.png",
                          str(tree / "a.JPG")})


def test_errors_are_clear(tmp_path, tree):
    with pytest.raises(ConfigError, match="no such file"):
        list_sources(str(tmp_path / "missing"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no images found"):
        list_sources(str(empty))
    binary = tmp_path / "weird.dat"
    binary.write_bytes(b"\x89PNG\x00\x00\x00garbage")
    with pytest.raises(ConfigError, match="not a text listing"):
        list_sources(str(binary))
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9.png\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        list_sources(str(latin))
    comments = tmp_path / "only-comments.txt"
    comments.write_text("# nothing\n\n")
    with pytest.raises(ConfigError, match="no images"):
        list_sources(str(comments))


def test_skipped_entries_are_counted(tmp_path):
    from smartsplat_dist.pipeline.sources import list_sources

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "a.png").write_bytes(b"x")
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "noext").write_bytes(b"x")
    listing = list_sources(str(tmp_path))
    assert listing == [str(tmp_path / "real" / "a.png")]
    assert listing.skipped == {"symlinked folders": 1, "files without an image extension": 2}
    assert listing.describe_skipped() == "; skipped 1 symlinked folder, 2 files without an image extension"
