"""Fit checkpoints: the state of an unfinished fit, saved so a retried or resumed image continues from it.

A checkpoint holds everything the next step depends on: the optimised parameters, Adam's moments and step
counts, each parameter group's learning rate, the step number and torch's RNG state (CPU, and CUDA when the fit
runs there). It is a safetensors file (a documented, pickle-free tensor format: an 8-byte little-endian header
length, a JSON header, raw little-endian tensor bytes), so loading it never runs code. Its string metadata:

- ``format`` = ``smartsplat-fit-checkpoint``, ``version`` = ``1``;
- ``step``: the last completed step (the fit continues at ``step + 1``);
- ``fingerprint``: what the fit was of (the caller's digest of image bytes and settings); a checkpoint with
  another fingerprint belongs to another fit and is ignored;
- ``lr``: JSON object, parameter-group name → learning rate at that step;
- ``sha256``: of the tensors (for each tensor in name order: name, dtype, shape, then its bytes).

Tensor names: ``param.<group>.<j>`` (the j-th parameter of an Adam group), ``adam.<group>.<j>.exp_avg``,
``.exp_avg_sq``, ``.step``, ``rng.cpu``, ``rng.cuda``. A damaged, truncated or mismatched checkpoint is never
trusted: :meth:`Checkpointer.resume` warns and starts the fit from scratch.

:class:`Checkpointer` is what :func:`~smartsplat_dist.fitting.optimize.fit` is given: ``resume(optimizer)``
before the first step, ``after_step(step, optimizer)`` after each; it saves every ``every_seconds`` and at the
end of the step during which the process got SIGTERM (a spot-instance notice), then lets the signal go on.
"""
from __future__ import annotations

import hashlib
import json
import signal
import struct
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import torch
from safetensors.torch import load, save

FORMAT = "smartsplat-fit-checkpoint"
VERSION = "1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used (damaged, another fit's, another shape)."""


@dataclass(frozen=True)
class FitState:
    """One fit's state after ``step`` completed steps. ``tensors``: name → CPU tensor (see the module doc);
    ``lr``: group name → learning rate."""

    step: int
    tensors: dict[str, torch.Tensor]
    lr: dict[str, float]


def _groups(opt: torch.optim.Optimizer):
    for k, group in enumerate(opt.param_groups):
        yield str(group.get("name", k)), group


def capture(step: int, opt: torch.optim.Optimizer) -> FitState:
    """The state of a fit whose optimiser is ``opt`` after ``step`` steps (copies on CPU)."""
    tensors: dict[str, torch.Tensor] = {}
    lr: dict[str, float] = {}
    for name, group in _groups(opt):
        lr[name] = float(group["lr"])
        for j, p in enumerate(group["params"]):
            tensors[f"param.{name}.{j}"] = p.detach().to("cpu", copy=True).contiguous()
            for key, value in opt.state.get(p, {}).items():
                if torch.is_tensor(value):
                    tensors[f"adam.{name}.{j}.{key}"] = value.detach().to("cpu", copy=True).contiguous().reshape(
                        value.shape)
    tensors["rng.cpu"] = torch.get_rng_state()
    devices = {p.device for _, g in _groups(opt) for p in g["params"]}
    if any(d.type == "cuda" for d in devices) and torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    return FitState(int(step), tensors, lr)


def restore(state: FitState, opt: torch.optim.Optimizer) -> int:
    """Put ``state`` into ``opt``'s parameters and Adam state; returns the step to continue after.

    CheckpointError (and nothing changed) when a parameter is missing or has another shape."""
    plan = []
    for name, group in _groups(opt):
        for j, p in enumerate(group["params"]):
            t = state.tensors.get(f"param.{name}.{j}")
            if t is None or tuple(t.shape) != tuple(p.shape) or t.dtype != p.dtype:
                raise CheckpointError(f"parameter {name}.{j}: checkpoint has "
                                      f"{None if t is None else list(t.shape)}, the fit {list(p.shape)}")
            moments = {k.rsplit(".", 1)[1]: v for k, v in state.tensors.items()
                       if k.startswith(f"adam.{name}.{j}.")}
            for key in ("exp_avg", "exp_avg_sq"):
                if key in moments and tuple(moments[key].shape) != tuple(p.shape):
                    raise CheckpointError(f"Adam {key} of {name}.{j} has another shape")
            plan.append((name, group, p, t, moments))
    with torch.no_grad():
        for name, group, p, t, moments in plan:
            p.copy_(t.to(p.device))
            if moments:
                opt.state[p] = {k: (v.to(p.device) if k != "step" else v.clone()) for k, v in moments.items()}
            if name in state.lr:
                group["lr"] = state.lr[name]
    torch.set_rng_state(state.tensors["rng.cpu"])
    if "rng.cuda" in state.tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(state.tensors["rng.cuda"])
    return state.step


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{str(t.dtype)}|{list(t.shape)}\n".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def to_bytes(state: FitState, fingerprint: str) -> bytes:
    """The checkpoint file's bytes (safetensors with the metadata of the module doc)."""
    meta = {"format": FORMAT, "version": VERSION, "step": str(int(state.step)), "fingerprint": str(fingerprint),
            "lr": json.dumps(state.lr, sort_keys=True), "sha256": _digest(state.tensors)}
    return save(state.tensors, metadata=meta)


def _metadata(data: bytes) -> dict[str, str]:
    if len(data) < 8:
        raise CheckpointError("truncated (no header)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100 * 2**20:
        raise CheckpointError("truncated header")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"header is not JSON ({err})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise CheckpointError("no metadata")
    return meta


def from_bytes(data: bytes, fingerprint: str) -> FitState:
    """Parse and check a checkpoint; CheckpointError when it is damaged or belongs to another fit."""
    meta = _metadata(data)
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"not a fit checkpoint (format {meta.get('format')!r} {meta.get('version')!r})")
    if meta.get("fingerprint") != fingerprint:
        raise CheckpointError("made for another image or other settings (fingerprint differs)")
    try:
        tensors = load(bytes(data))
    except Exception as err:  # noqa: BLE001 - safetensors raises its own error type for every malformation
        raise CheckpointError(f"unreadable tensors ({type(err).__name__}: {err})") from None
    if _digest(tensors) != meta.get("sha256"):
        raise CheckpointError("checksum mismatch (damaged)")
    try:
        step = int(meta["step"])
        lr = {str(k): float(v) for k, v in json.loads(meta.get("lr", "{}")).items()}
    except (KeyError, ValueError, TypeError, AttributeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"bad metadata ({err})") from None
    if step < 0 or "rng.cpu" not in tensors:
        raise CheckpointError("bad step or no RNG state")
    return FitState(step, tensors, lr)


# -- SIGTERM ----------------------------------------------------------------------------------------------------
_term = threading.Event()
_previous: dict[str, Any] = {}


def _on_sigterm(signum, frame) -> None:  # pragma: no cover - exercised in a subprocess test
    _term.set()
    if not _previous.get("fitting"):
        _chain()


def _chain() -> None:
    """Hand SIGTERM to whoever handled it before us (default: terminate)."""
    prev = _previous.get("handler", signal.SIG_DFL)
    signal.signal(signal.SIGTERM, prev if prev is not None else signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)


def install_sigterm_handler() -> bool:
    """Catch SIGTERM so a running fit saves a checkpoint at the end of its step before the process goes.
    Outside a fit the previous handler runs at once. False when not possible (not the main thread)."""
    if "handler" in _previous:
        return True
    try:
        _previous["handler"] = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        return False
    return True


class Checkpointer:
    """Saves and restores one fit's checkpoints through ``store`` (``read() -> bytes``, ``write(bytes)``,
    ``delete()``; read raises FileNotFoundError when there is none).

    Args:
        fingerprint: digest of what is being fitted (image bytes, settings): another fit's checkpoint is ignored.
        every_seconds: save after the first step that ends this long after the last save (or the start);
            0 saves after every step.
        label: name used in warnings.
    Attributes: ``resumed_from`` (step a fit continued after, 0 if none), ``saved`` (checkpoints written),
    ``last_step`` (the last step saved)."""

    def __init__(self, read: Callable[[], bytes], write: Callable[[bytes], None], delete: Callable[[], None],
                 fingerprint: str, every_seconds: float = 600.0, label: str = "fit",
                 clock: Callable[[], float] = time.monotonic):
        self._read, self._write, self._delete = read, write, delete
        self.fingerprint = str(fingerprint)
        self.every_seconds = float(every_seconds)
        self.label = label
        self.clock = clock
        self.resumed_from = 0
        self.saved = 0
        self.last_step = 0
        self._last_save = clock()

    def load(self) -> FitState | None:
        """The stored state, or None (none, or one that is damaged / another fit's: then with a warning)."""
        try:
            data = self._read()
        except FileNotFoundError:
            return None
        except OSError as err:
            warnings.warn(f"{self.label}: cannot read its checkpoint ({err}); fitting from the start", stacklevel=2)
            return None
        try:
            return from_bytes(data, self.fingerprint)
        except CheckpointError as err:
            warnings.warn(f"{self.label}: ignoring its checkpoint: {err}; fitting from the start", stacklevel=2)
            return None

    def resume(self, opt: torch.optim.Optimizer) -> int:
        """Restore the newest usable checkpoint into ``opt``; returns the last completed step (0: none)."""
        _previous["fitting"] = True
        self._last_save = self.clock()
        state = self.load()
        if state is None:
            return 0
        try:
            self.resumed_from = restore(state, opt)
        except CheckpointError as err:
            warnings.warn(f"{self.label}: ignoring its checkpoint: {err}; fitting from the start", stacklevel=2)
            return 0
        self.last_step = self.resumed_from
        return self.resumed_from

    def after_step(self, step: int, opt: torch.optim.Optimizer) -> None:
        """Save when due or when SIGTERM arrived (then pass the signal on)."""
        terminating = _term.is_set()
        if terminating or self.clock() - self._last_save >= self.every_seconds:
            self.save(capture(step, opt))
        if terminating:
            _previous["fitting"] = False
            _chain()

    def save(self, state: FitState) -> None:
        self._write(to_bytes(state, self.fingerprint))
        self.saved += 1
        self.last_step = state.step
        self._last_save = self.clock()

    def finish(self) -> None:
        """The fit is over (its result is about to be staged): no SIGTERM deferral any more."""
        _previous["fitting"] = False

    def delete(self) -> None:
        self._delete()


__all__ = ["Checkpointer", "CheckpointError", "FitState", "capture", "restore", "to_bytes", "from_bytes",
           "install_sigterm_handler"]
