"""How many threads this process may use, and setting torch, numba and BLAS to it (one owner for all three).

A process gets a CPU budget — a Ray actor's ``num_cpus``, else the CPUs it may run on
(``os.sched_getaffinity``), never the machine's core count — and every thread pool follows it. Two processes
that each ran one thread per core on a shared 2-core machine slowed a fit step about 10x (0.15 s -> 1.6 s).

* :func:`cpu_budget` — the budget: ``SMARTSPLAT_THREADS`` when set, else the Ray actor's CPU reservation
  (rounded down, at least 1), else the affinity mask.
* :func:`apply` — sets numba's and torch's intra-op thread counts and, when ``threadpoolctl`` is importable,
  the BLAS/OpenMP pools of already loaded libraries; the env vars ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` are set too (for libraries loaded later and child
  processes). Idempotent; returns the :class:`ThreadPlan` it applied.
* :func:`numba_threads` — what the numba kernels launch with (the applied plan, capped by numba's pool).

The fit loop alternates numba kernels (rasterizer, fused loss) with small torch ops; torch's OpenMP pool
spin-waits after each parallel region and then competes with numba's workers, so during a fit torch gets
``torch_threads`` (1 by default, ``SMARTSPLAT_TORCH_THREADS`` overrides) and numba the whole budget. Work that
is torch alone (the quality metrics) runs inside :func:`torch_threads` ``(budget)``.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Iterator

import torch

_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class ThreadPlan:
    """Thread counts of one process.

    Attributes:
        cpus: the CPU budget (see :func:`cpu_budget`).
        numba: threads of the numba kernels; torch: torch intra-op threads during a fit; blas: BLAS threads.
        source: where the budget came from (``env``, ``ray``, ``affinity``, ``given``).
    """

    cpus: int
    numba: int
    torch: int
    blas: int
    source: str


def _ray_cpus() -> float | None:
    """CPUs reserved by the Ray actor/task this process runs, or None outside Ray (never imports Ray)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    try:
        ctx = ray.get_runtime_context()
        if ctx.worker.mode != ray.WORKER_MODE:  # the driver owns no reservation
            return None
        cpus = ctx.get_assigned_resources().get("CPU")
    except Exception:  # noqa: BLE001 - any Ray-internal failure means "not in an actor"
        return None
    return float(cpus) if cpus else None


def affinity_cpus() -> int:
    """CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cpu_budget() -> tuple[int, str]:
    """(CPU budget, its source): ``SMARTSPLAT_THREADS``, else the Ray actor's num_cpus, else the affinity mask.

    A fractional Ray reservation rounds down (at least 1); the budget never exceeds the affinity mask.
    """
    aff = affinity_cpus()
    env = os.environ.get("SMARTSPLAT_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"SMARTSPLAT_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"SMARTSPLAT_THREADS must be a positive integer, got {env!r}")
        return min(n, aff), "env"
    ray_cpus = _ray_cpus()
    if ray_cpus is not None:
        return max(1, min(int(ray_cpus), aff)), "ray"
    return aff, "affinity"


def plan(cpus: int | None = None) -> ThreadPlan:
    """The thread plan for a budget of ``cpus`` (None: :func:`cpu_budget`)."""
    if cpus is None:
        cpus, source = cpu_budget()
    else:
        if int(cpus) < 1:
            raise ValueError(f"a thread budget must be >= 1, got {cpus}")
        cpus, source = int(cpus), "given"
    torch_n = os.environ.get("SMARTSPLAT_TORCH_THREADS", "").strip()
    torch_threads = max(1, min(cpus, int(torch_n))) if torch_n else 1
    return ThreadPlan(cpus=cpus, numba=cpus, torch=torch_threads, blas=cpus, source=source)


_APPLIED: ThreadPlan | None = None


def apply(cpus: int | None = None) -> ThreadPlan:
    """Set every thread pool of this process from :func:`plan` ``(cpus)``; returns the plan."""
    global _APPLIED
    p = plan(cpus)
    for var in _ENV_VARS:
        os.environ[var] = str(p.blas if var != "NUMBA_NUM_THREADS" else p.numba)

    try:
        import numba  # lazy: numba reads NUMBA_NUM_THREADS, set just above, when it is first imported

        numba.set_num_threads(max(1, min(p.numba, numba.config.NUMBA_NUM_THREADS)))
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits  # lazy: threadpoolctl is optional (not a dependency)

        threadpool_limits(p.blas)
    except ImportError:
        pass
    torch.set_num_threads(p.torch)  # last: starting numba's or a BLAS pool can reset torch's count
    _APPLIED = p
    return p


def applied() -> ThreadPlan:
    """The plan last applied in this process, else the default plan (not applied: nothing is changed)."""
    return _APPLIED if _APPLIED is not None else plan()


def numba_threads() -> int:
    """Threads a numba kernel launch uses: the applied plan's, capped by numba's pool size."""
    import numba  # lazy: numba reads NUMBA_NUM_THREADS when it is first imported: apply() sets it first

    return max(1, min(applied().numba, numba.config.NUMBA_NUM_THREADS))


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[int]:
    """Run a torch-only section with ``n`` intra-op threads (default: the whole budget), then restore."""
    n = applied().cpus if n is None else max(1, int(n))
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


__all__ = ["ThreadPlan", "cpu_budget", "affinity_cpus", "plan", "apply", "applied", "numba_threads",
           "torch_threads"]
