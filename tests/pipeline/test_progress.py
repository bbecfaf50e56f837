"""The progress display: counts, rate, ETA, means; one redrawn line on a TTY, periodic lines otherwise."""
from __future__ import annotations

import io

from smartsplat_dist.pipeline.progress import Progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


class TTY(io.StringIO):
    def isatty(self):
        return True


def test_counts_rate_eta_and_means():
    clock = Clock()
    p = Progress(10, already=2, stream=io.StringIO(), clock=clock, interval=1e9)
    clock.t = 1800.0  # half an hour for the 3 below
    p.update({"status": "ok", "real_cr": 100.0, "psnr": 30.0})
    p.update({"status": "ok", "real_cr": 50.0, "psnr": 32.0})
    p.update({"status": "failed", "error": "bad"})
    assert (p.done, p.failed, p.finished) == (2, 1, 5)
    assert p.rate_per_hour() == 6.0
    assert p.eta_seconds() == 3000.0  # 5 left at 6/h
    line = p.line()
    assert "images 4/10 done, 1 failed" in line and "6.0/h" in line and "ETA 50m00s" in line
    assert "CR 75.0" in line and "PSNR 31.00 dB" in line


def test_non_tty_prints_at_most_every_interval_and_at_close():
    clock, out = Clock(), io.StringIO()
    p = Progress(3, stream=out, clock=clock, interval=60.0)
    p.update({"status": "ok"})  # first draw
    clock.t = 10.0
    p.update({"status": "ok"})  # too soon: no line
    assert out.getvalue().count("\n") == 1
    p.message("  failed: x: reason")
    clock.t = 100.0
    p.update({"status": "ok"})
    p.close()
    lines = out.getvalue().splitlines()
    assert lines[1] == "  failed: x: reason"
    assert len(lines) == 4 and lines[-1].startswith("images 3/3 done, 0 failed") and "ETA 0m00s" in lines[-1]
    assert "\r" not in out.getvalue()


def test_tty_redraws_one_line():
    out = TTY()
    p = Progress(2, stream=out, clock=Clock())
    p.update({"status": "ok"})
    p.update({"status": "ok"})
    p.close()
    text = out.getvalue()
    assert text.count("\r") >= 2 and text.endswith("\n") and text.count("\n") == 1


def test_disabled_draws_nothing():
    out = io.StringIO()
    p = Progress(1, stream=out, enabled=False)
    p.update({"status": "ok"})
    p.message("x")
    p.close()
    assert out.getvalue() == "" and p.done == 1
