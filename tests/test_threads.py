"""Thread counts follow the CPUs a process was given."""
from __future__ import annotations

import os

import pytest

from smartsplat_dist import threads


def test_plan_follows_given_cpu_count(monkeypatch):
    monkeypatch.delenv("SMARTSPLAT_TORCH_THREADS", raising=False)
    p = threads.plan(3)
    assert (p.cpus, p.numba, p.blas, p.torch, p.source) == (3, 3, 3, 1, "given")
    monkeypatch.setenv("SMARTSPLAT_TORCH_THREADS", "2")
    assert threads.plan(3).torch == 2
    with pytest.raises(ValueError):
        threads.plan(0)


def test_budget_is_the_affinity_mask_or_the_env_never_more(monkeypatch):
    monkeypatch.delenv("SMARTSPLAT_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert threads.cpu_budget() == (3, "affinity")
    monkeypatch.setenv("SMARTSPLAT_THREADS", "2")
    assert threads.cpu_budget() == (2, "env")
    monkeypatch.setenv("SMARTSPLAT_THREADS", "64")
    assert threads.cpu_budget() == (3, "env")
    monkeypatch.setenv("SMARTSPLAT_THREADS", "many")
    with pytest.raises(ValueError, match="SMARTSPLAT_THREADS"):
        threads.cpu_budget()


def test_ray_actor_num_cpus_sets_the_budget(monkeypatch):
    monkeypatch.delenv("SMARTSPLAT_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)))
    monkeypatch.setattr(threads, "_ray_cpus", lambda: 2.5)
    assert threads.cpu_budget() == (2, "ray")
    monkeypatch.setattr(threads, "_ray_cpus", lambda: 0.5)
    assert threads.cpu_budget() == (1, "ray")


def test_apply_sets_torch_and_numba():
    import numba
    import torch

    before = torch.get_num_threads()
    try:
        p = threads.apply(1)
        assert torch.get_num_threads() == 1 and numba.get_num_threads() == 1
        assert threads.numba_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
        with threads.torch_threads(2) as n:
            assert n == 2 and torch.get_num_threads() == 2
        assert torch.get_num_threads() == p.torch
    finally:
        torch.set_num_threads(before)
