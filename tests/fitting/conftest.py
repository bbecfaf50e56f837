"""Fit tests run torch single-threaded: tiny tensors gain nothing from threads, and on a busy shared machine
spinning OpenMP workers make them several times slower. The previous thread count is restored afterwards."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
