"""``smartsplat doctor``: honest findings on a machine without CUDA, one line per problem, exit 1 when any."""
from __future__ import annotations

from smartsplat_dist.cli import main

from .conftest import write_tiny_photos


def test_doctor_reports_problems_and_exits_nonzero(ray_local, tmp_path, capsys):
    src = tmp_path / "src"
    write_tiny_photos(src, 3)
    code = main(["doctor", str(src), str(tmp_path / "arch"), "--steps", "10", "--fit-steps", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert "PROBLEM: ray: no GPU node" in out
    assert "no CUDA" in out and "3 images" in out and "write, read and delete work" in out
    assert "s/step" in out
    assert not list((tmp_path / "arch").glob(".doctor-probe-*"))

    code = main(["doctor", str(src), str(tmp_path / "arch"), "--gpus-per-worker", "0", "--no-fit"])
    out = capsys.readouterr().out
    assert code == 0 and "PROBLEM" not in out


def test_doctor_names_an_unwritable_archive_and_a_missing_source(ray_local, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code = main(["doctor", str(tmp_path / "nothing"), str(blocker / "arch"), "--gpus-per-worker", "0", "--no-fit"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("PROBLEM:") == 2 and "source" in out and "probe failed" in out
