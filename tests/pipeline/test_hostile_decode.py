"""decode/verify of hostile archives: an over-limit record or a damaged marker stops only itself (exit 4)."""
import json
import os

from smartsplat_dist.archive import ArchiveWriter
from smartsplat_dist.cli import main
from smartsplat_dist.errors import EXIT_DAMAGED
from tests.archive.archive_helpers import make_record
from tests.codec.forge import forge_record


def _archive(path):
    w = ArchiveWriter(str(path), {"k": 1}, ["a", "b", "c"], check_records=False)
    w.open()
    records = {"good1": make_record(1), "bomb": forge_record(2**20, 2**20, 0), "good2": make_record(2)}
    for i, rec in records.items():
        w.stage(i, rec, {"source": i})
    w.commit_shard(0, ["good1", "bomb"])
    w.commit_shard(1, ["good2"])
    w.write_manifest()
    return str(path)


def test_over_limit_record_is_refused_the_rest_decoded(ray_local, tmp_path, capsys):
    arch = _archive(tmp_path / "arch")
    assert main(["verify", arch]) == EXIT_DAMAGED
    assert "'bomb' does not decode: record asks for a 1048576x1048576 image" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["decode", arch, str(out), "--workers", "1", "--address", ray_local, "--quiet"]) == EXIT_DAMAGED
    assert sorted(os.listdir(out)) == ["good1.png", "good2.png"]
    assert "max_pixels" in capsys.readouterr().err


def test_damaged_marker_is_named_the_rest_decoded(ray_local, tmp_path, capsys):
    arch = _archive(tmp_path / "arch")
    with open(os.path.join(arch, "shards/shard-00000.json"), "w") as f:
        f.write(json.dumps([[[[1]]]]))
    out = tmp_path / "out"
    assert main(["decode", arch, str(out), "--workers", "1", "--address", ray_local, "--quiet"]) == EXIT_DAMAGED
    assert os.listdir(out) == ["good2.png"]
    assert "DAMAGED shards/shard-00000.json" in capsys.readouterr().err
