"""Where one image's time and memory go: wall seconds and peak resident memory per named stage.

``with stages("decode"): ...`` adds the stage's wall time to ``stages.seconds["decode"]`` and, on Linux, records
its peak resident set (``VmHWM``, reset at the stage's start through ``/proc/self/clear_refs``) in
``stages.peak_rss_mb``. Where the reset is not allowed, ``peak_rss_mb`` holds the process's peak so far at the
end of each stage (monotonic, still an upper bound).
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterator


def _vm_hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Stages:
    """Per-stage wall seconds and peak RSS (MB) of the current process, in the order the stages ran."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.peak_rss_mb: dict[str, float] = {}
        self._t0 = time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        _reset_hwm()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
            peak = _vm_hwm_mb()
            if peak is not None:
                self.peak_rss_mb[name] = max(self.peak_rss_mb.get(name, 0.0), round(peak, 1))

    def total(self) -> float:
        """Wall seconds since this object was made."""
        return time.perf_counter() - self._t0


__all__ = ["Stages"]
