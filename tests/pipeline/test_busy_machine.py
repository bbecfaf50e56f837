"""A busy machine: a stale (or live) Ray head's address file must not make plain ``compress`` crash."""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .conftest import FAST, write_tiny_photos

ROOT = Path(__file__).resolve().parents[2]


def test_compress_starts_its_own_cluster_and_says_so(tmp_path):
    ray_tmp = tempfile.mkdtemp(prefix="/tmp/rbusy-")  # short: Ray's socket paths must stay short
    try:
        (Path(ray_tmp) / "ray").mkdir()
        (Path(ray_tmp) / "ray" / "ray_current_cluster").write_text("127.0.0.1:6399")  # a dead head's file
        write_tiny_photos(tmp_path / "src", 1)
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(RAY_TMPDIR=ray_tmp, RAY_AUTH_MODE="disabled", PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "smartsplat_dist", "compress", str(tmp_path / "src"),
                               str(tmp_path / "arch"), *FAST, "--workers", "1"],
                              capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "started a private local Ray cluster" in proc.stderr
        assert "127.0.0.1:6399" in proc.stderr and "--address auto" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:  # the cluster compress started is shut down by compress itself
        shutil.rmtree(ray_tmp, ignore_errors=True)
