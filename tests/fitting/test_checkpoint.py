"""Fit checkpoints: a fit interrupted after a checkpoint and resumed ends where a straight fit ends, redoing only
the later steps; SIGTERM saves one; damaged or foreign checkpoints are ignored with a warning."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from smartsplat_dist.fitting import FitConfig, fit
from smartsplat_dist.fitting.checkpoint import Checkpointer, from_bytes
from smartsplat_dist.model import Gaussians

STEPS = 12
CONFIG = replace(FitConfig(), steps=STEPS, log_every=1)


def _image(h=32, w=40):
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / 5.0), 40 + 5 * yy, 90 + 60 * np.cos((xx + yy) / 6.0)], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _gaussians(n=24, h=32, w=40):
    gen = torch.Generator().manual_seed(3)
    return Gaussians(torch.rand(n, 2, generator=gen) * torch.tensor([w, h], dtype=torch.float32),
                     2.0 + 3.0 * torch.rand(n, 2, generator=gen), torch.rand(n, generator=gen) * 3.0,
                     0.2 + 0.3 * torch.rand(n, 3, generator=gen))


class MemoryStore:
    def __init__(self):
        self.data: bytes | None = None

    def read(self) -> bytes:
        if self.data is None:
            raise FileNotFoundError("no checkpoint")
        return self.data

    def write(self, b: bytes) -> None:
        self.data = bytes(b)

    def delete(self) -> None:
        self.data = None

    def checkpointer(self, fingerprint="img-a", every=0.0) -> Checkpointer:
        return Checkpointer(self.read, self.write, self.delete, fingerprint, every_seconds=every, label="img")


class Killed(Exception):
    pass


def _close(a: Gaussians, b: Gaussians) -> None:
    for x, y in zip(a.tensors(), b.tensors()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-5)


def test_killed_fit_resumes_from_checkpoint_and_matches_straight_fit():
    image = _image()
    straight, stats = fit(_gaussians(), image, CONFIG, backend="cpu")
    assert stats["steps_run"] == STEPS

    store = MemoryStore()

    def die_at_7(step, info):
        if step == 7:
            raise Killed  # the process "dies" after step 7 (its checkpoint was saved at the end of the step)

    with pytest.raises(Killed):
        fit(_gaussians(), image, CONFIG, backend="cpu", progress=die_at_7, checkpoint=store.checkpointer())
    assert from_bytes(store.data, "img-a").step == 7

    seen = []
    ckpt = store.checkpointer()
    resumed, rstats = fit(_gaussians(), image, CONFIG, backend="cpu", progress=lambda s, i: seen.append(s),
                          checkpoint=ckpt)
    assert ckpt.resumed_from == 7
    assert seen == list(range(8, STEPS + 1))  # only the steps after the checkpoint are done again
    assert rstats["steps_run"] == STEPS - 7
    _close(resumed, straight)


def test_periodic_checkpoints_follow_the_clock():
    now = [0.0]
    store = MemoryStore()
    ckpt = Checkpointer(store.read, store.write, store.delete, "x", every_seconds=10.0, clock=lambda: now[0])

    def tick(step, info):
        now[0] += 4.0  # each step "takes" 4 s

    fit(_gaussians(), _image(), CONFIG, backend="cpu", progress=tick, checkpoint=ckpt)
    # a save is due once 10 s passed since the last one: after steps 4 (12 s), 7 (24 s) and 10 (36 s)
    assert ckpt.saved == 3 and ckpt.last_step == 10
    assert from_bytes(store.data, "x").step == 10


@pytest.mark.parametrize("damage", ["flip", "truncate", "fingerprint", "shape", "garbage"])
def test_damaged_or_foreign_checkpoint_is_ignored_with_a_warning(damage):
    store = MemoryStore()
    fit(_gaussians(), _image(), replace(CONFIG, steps=4), backend="cpu", checkpoint=store.checkpointer())
    fingerprint, g = "img-a", _gaussians()
    if damage == "flip":
        b = bytearray(store.data)
        b[-5] ^= 0x40
        store.data = bytes(b)
    elif damage == "truncate":
        store.data = store.data[: len(store.data) // 2]
    elif damage == "fingerprint":
        fingerprint = "img-b"
    elif damage == "shape":
        g = _gaussians(n=10)
    else:
        store.data = b"\x80\x04\x95" + os.urandom(64)  # e.g. a pickle: never loaded
    ckpt = store.checkpointer(fingerprint)
    seen = []
    with pytest.warns(UserWarning, match="ignoring its checkpoint"):
        fit(g, _image(), CONFIG, backend="cpu", progress=lambda s, i: seen.append(s), checkpoint=ckpt)
    assert ckpt.resumed_from == 0 and seen[0] == 1


_CHILD = textwrap.dedent("""
    import sys, time
    from dataclasses import replace
    sys.path.insert(0, {tests!r})
    from fitting.test_checkpoint import _gaussians, _image, CONFIG
    from smartsplat_dist.fitting import fit
    from smartsplat_dist.fitting.checkpoint import Checkpointer, install_sigterm_handler
    import pathlib
    path = pathlib.Path({path!r})
    install_sigterm_handler()
    ckpt = Checkpointer(path.read_bytes, path.write_bytes, path.unlink, "img-a", every_seconds=3600)
    def slow(step, info):
        if step == 3:
            pathlib.Path({flag!r}).write_text("3")
        time.sleep(0.3)
    fit(_gaussians(), _image(), replace(CONFIG, steps=400), backend="cpu", progress=slow, checkpoint=ckpt)
    print("finished")
""")


def test_sigterm_saves_a_checkpoint_then_terminates(tmp_path):
    path, flag = tmp_path / "img.safetensors", tmp_path / "flag"
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = _CHILD.format(tests=tests, path=str(path), flag=str(flag))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGTERM, err.decode()[-2000:]
    assert b"finished" not in out
    state = from_bytes(path.read_bytes(), "img-a")
    assert 3 <= state.step < 400  # saved at the end of the step that was running when the signal came
