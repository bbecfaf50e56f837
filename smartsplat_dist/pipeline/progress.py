"""The driver's progress display: done/failed/total, images per hour, ETA, mean real CR and PSNR.

On a terminal it redraws one line (``\\r``); elsewhere (CI logs, files) it prints a full line at most every
``interval`` seconds and once at the end, so logs stay short. Plain code, no dependency.
"""
from __future__ import annotations

import math
import sys
import time
from typing import IO, Any


def _fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    """Counts finished images and shows the state of the run.

    ``total``: images in the run (including ones already in the archive); ``already``: how many of them were
    done before this run started (committed or staged): they count as done but not towards the rate.
    ``stream``: where to draw (default stderr); ``enabled=False`` draws nothing but still counts.
    """

    def __init__(self, total: int, *, already: int = 0, label: str = "images", stream: IO[str] | None = None,
                 enabled: bool = True, interval: float = 30.0, clock=time.monotonic):
        self.total = int(total)
        self.already = int(already)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.interval = float(interval)
        self.clock = clock
        self.start = clock()
        self.done = 0  # finished in this run, successfully
        self.failed = 0
        self._cr_sum = self._psnr_sum = 0.0
        self._cr_n = self._psnr_n = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_draw = -math.inf
        self._width = 0

    # --- counting -------------------------------------------------------------------------------------
    def update(self, row: dict[str, Any]) -> None:
        """Account one finished image: ``row`` has ``status`` ("ok"/"failed") and, when ok, ``real_cr``, ``psnr``."""
        if row.get("status") == "ok":
            self.done += 1
            for key, attr in (("real_cr", "_cr"), ("psnr", "_psnr")):
                v = row.get(key)
                if isinstance(v, (int, float)) and math.isfinite(v):
                    setattr(self, attr + "_sum", getattr(self, attr + "_sum") + float(v))
                    setattr(self, attr + "_n", getattr(self, attr + "_n") + 1)
        else:
            self.failed += 1
        self.draw()

    @property
    def finished(self) -> int:
        return self.already + self.done + self.failed

    def rate_per_hour(self) -> float:
        """Images finished per hour in this run (0 before the first)."""
        elapsed = self.clock() - self.start
        n = self.done + self.failed
        return 3600.0 * n / elapsed if n and elapsed > 0 else 0.0

    def eta_seconds(self) -> float:
        rate = self.rate_per_hour()
        left = max(0, self.total - self.finished)
        return 0.0 if left == 0 else (3600.0 * left / rate if rate > 0 else math.inf)

    def line(self) -> str:
        """The status line, e.g. ``images 12/40 done, 1 failed | 310/h | ETA 5m25s | CR 101.2 | PSNR 31.05 dB``."""
        parts = [f"{self.label} {self.already + self.done}/{self.total} done, {self.failed} failed",
                 f"{self.rate_per_hour():.1f}/h", f"ETA {_fmt_duration(self.eta_seconds())}"]
        if self._cr_n:
            parts.append(f"CR {self._cr_sum / self._cr_n:.1f}")
        if self._psnr_n:
            parts.append(f"PSNR {self._psnr_sum / self._psnr_n:.2f} dB")
        parts.append(f"elapsed {_fmt_duration(self.clock() - self.start)}")
        return " | ".join(parts)

    # --- drawing --------------------------------------------------------------------------------------
    def draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self.clock()
        if self._tty:
            text = self.line()
            pad = max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write("\r" + text + " " * pad)
            self.stream.flush()
        elif force or now - self._last_draw >= self.interval:
            self._last_draw = now
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line (a failure, a resumed shard) without garbling the TTY status line."""
        if not self.enabled:
            return
        if self._tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.stream.write(text + "\n")
        self.stream.flush()
        if self._tty:
            self.draw()

    def close(self) -> None:
        """Final state, always printed once (ends the TTY line)."""
        if not self.enabled:
            return
        if self._tty:
            self.draw()
            self.stream.write("\n")
            self.stream.flush()
        else:
            self.draw(force=True)
