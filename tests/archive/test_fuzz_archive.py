"""Fuzzing the archive reader (Hypothesis, bounded): mutated markers, tars and JSON either open and read, or
raise ArchiveError / RecordError naming the damage; verify always ends with a report."""
import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smartsplat_dist.archive import open_archive, verify_archive
from smartsplat_dist.errors import ArchiveError, RecordError

from .archive_helpers import build_archive

#: Examples per fuzz test (3 tests here); an archive on local disk is rebuilt for each one.
FUZZ_EXAMPLES = 60
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=8),
                           lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids,
                                                                                   max_size=3), max_leaves=12)


def _read_everything(url: str) -> None:
    try:
        arc = open_archive(url)
    except ArchiveError as err:
        assert str(err)
        return
    for image_id in arc.ids():
        try:
            arc.get(image_id)
        except (ArchiveError, RecordError) as err:
            assert str(err)
    rep = verify_archive(url)
    assert rep.ok or rep.damaged


@FUZZ
@given(st.sampled_from(["index", "rows", "size", "sha256", "tar", "shard"]), json_values)
def test_marker_field_replaced(tmp_path_factory, field, value):
    b = build_archive(str(tmp_path_factory.mktemp("a") / "arch"), n=3, per_shard=2, fail=())
    path = os.path.join(b.url, "shards/shard-00000.json")
    marker = json.load(open(path))
    marker[field] = value
    with open(path, "w") as f:
        json.dump(marker, f)
    _read_everything(b.url)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=6))
def test_tar_bytes_mutated(tmp_path_factory, edits):
    b = build_archive(str(tmp_path_factory.mktemp("a") / "arch"), n=3, per_shard=2, fail=())
    path = os.path.join(b.url, "shards/shard-00000.tar")
    data = bytearray(open(path, "rb").read())
    for pos, value in edits:
        data[pos % len(data)] = value
    open(path, "wb").write(bytes(data))
    _read_everything(b.url)


@FUZZ
@given(st.sampled_from(["run.json", "manifest.jsonl", "shards/shard-00001.json"]), st.binary(max_size=300))
def test_json_files_replaced_by_garbage(tmp_path_factory, name, data):
    b = build_archive(str(tmp_path_factory.mktemp("a") / "arch"), n=3, per_shard=2, fail=())
    open(os.path.join(b.url, name), "wb").write(data)
    _read_everything(b.url)
