"""The GPU check's dry mode says what it would run (no CUDA needed)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_dry_run_prints_the_plan(tmp_path):
    out = tmp_path / "gpu.json"
    res = subprocess.run(
            [sys.executable, "-c", "import sys; from smartsplat_dist.cli import main; sys.exit(main())", "bench",
             "gpu", "--dry-run", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "dry run" in res.stdout and "16320x9184" in res.stdout and "50000" in res.stdout
    doc = json.loads(out.read_text())
    assert doc["dry_run"] is True and len(doc["plan"]) == 5


def test_gpu_check_script_exists_and_is_executable():
    script = Path(__file__).resolve().parents[2] / "pipelines" / "gpu-check.sh"
    assert script.is_file() and script.stat().st_mode & 0o111
