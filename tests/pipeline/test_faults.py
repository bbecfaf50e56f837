"""Fault injection parsing and its cross-process counters (the Ray behaviour is in test_compress.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from smartsplat_dist.errors import ConfigError
from smartsplat_dist.pipeline import faults


def test_parse():
    got = faults.parse_faults("kill-actor:img-*:2; pause-driver-after-commits:1:5;kill-driver-after-commits:3")
    assert got == (faults.Fault("kill-actor", "img-*", 2), faults.Fault("pause-driver-after-commits", count=1,
                                                                        seconds=5.0),
                   faults.Fault("kill-driver-after-commits", count=3))
    assert faults.parse_faults("slow-actor:*:0.5") == (faults.Fault("slow-actor", "*", seconds=0.5),)
    assert faults.parse_faults("") == () and faults.parse_faults(None) == ()
    for bad in ("explode:1", "kill-actor:3", "slow-actor:x", "kill-actor:x:y", "pause-driver-after-commits:z"):
        with pytest.raises(ConfigError, match="SMARTSPLAT_FAULT"):
            faults.parse_faults(bad)


def test_kill_actor_exits_the_process_the_first_times_only(tmp_path):
    env = {**os.environ, faults.ENV_FAULT: "kill-actor:a*:2", faults.ENV_FAULT_DIR: str(tmp_path)}
    code = "from smartsplat_dist.pipeline import faults; faults.mid_image({!r}, 'arch'); print('alive')"
    runs = [subprocess.run([sys.executable, "-c", code.format("abc")], env=env, capture_output=True, text=True)
            for _ in range(3)]
    assert [r.returncode for r in runs] == [faults.KILLED_STATUS, faults.KILLED_STATUS, 0]
    assert runs[2].stdout.strip() == "alive"
    other = subprocess.run([sys.executable, "-c", code.format("zzz")], env=env, capture_output=True, text=True)
    assert other.returncode == 0


#: One spec of each fault kind, every one of which would fire on the calls below.
EVERY_KIND = ("kill-actor:*:1", "slow-actor:*:5", "pause-driver-after-commits:1:0", "kill-driver-after-commits:1")


@pytest.mark.parametrize("spec", EVERY_KIND)
def test_no_fault_is_a_no_op(monkeypatch, tmp_path, spec):
    """Unset, no kind fires (no exit, kill, sleep or marker file); set, the same calls fire it once."""
    fired = []
    monkeypatch.setattr(faults.os, "_exit", lambda status: fired.append(("exit", status)))
    monkeypatch.setattr(faults.os, "kill", lambda pid, sig: fired.append(("kill", sig)))
    monkeypatch.setattr(faults.time, "sleep", lambda s: fired.append(("sleep", s)))
    monkeypatch.setenv(faults.ENV_FAULT_DIR, str(tmp_path))

    def hooks():
        faults.mid_image("abc", "arch")
        faults.after_commit(100, "arch")

    monkeypatch.delenv(faults.ENV_FAULT, raising=False)
    hooks()
    assert fired == [] and list(tmp_path.iterdir()) == []
    monkeypatch.setenv(faults.ENV_FAULT, spec)
    hooks()
    assert len(fired) == 1, fired
    if spec.startswith("pause"):
        assert (tmp_path / "driver-paused").read_text() == str(os.getpid())
