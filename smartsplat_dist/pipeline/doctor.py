"""Preflight of a dataset run (``smartsplat doctor``): what the run would get, before it spends GPU hours.

Checks, each giving info lines and problem lines:

- Ray: the nodes with their CPUs, GPUs and object store; on each GPU node (a task pinned to it) whether torch
  sees CUDA, the GPU model and memory, whether gsplat's CUDA extension and Triton load;
- storage: SRC's image count and total pixels (image headers only), a write–read–delete probe in DST;
- a short timed fit at the largest image's size (where the actors would run: a GPU node, else here on the CPU
  backend), and the projected GPU-hours of the fit for the whole dataset at the chosen steps.
"""
from __future__ import annotations

import dataclasses
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from ..config import EncodeConfig
from ..fitting import fit
from ..init import initialize
from ..io.storage import Folder, open_source
from ..model import n_gaussians_for_cr
from .driver import connect
from .sources import list_sources


@dataclass
class Findings:
    info: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def gpu_probe() -> dict[str, Any]:
    """What this process sees of CUDA: torch, device name and memory, gsplat's CUDA extension, Triton."""
    out: dict[str, Any] = {"host": os.uname().nodename}
    try:
        out["cuda"] = bool(torch.cuda.is_available())
        if out["cuda"]:
            p = torch.cuda.get_device_properties(0)
            out["gpu"], out["gpu_memory_gib"] = p.name, round(p.total_memory / 2**30, 1)
    except Exception as err:  # noqa: BLE001 - reported, not raised
        out["cuda"], out["torch_error"] = False, f"{type(err).__name__}: {err}"
    try:
        from gsplat.cuda._backend import _C  # noqa: F401  # lazy: gsplat is optional (its compiled CUDA extension)

        out["gsplat_cuda"] = _C is not None
    except Exception as err:  # noqa: BLE001
        out["gsplat_cuda"], out["gsplat_error"] = False, f"{type(err).__name__}: {str(err)[:200]}"
    try:
        import triton  # noqa: F401  # lazy: triton is optional (CUDA only)

        out["triton"] = True
    except Exception as err:  # noqa: BLE001
        out["triton"], out["triton_error"] = False, f"{type(err).__name__}: {str(err)[:200]}"
    return out


def timed_fit(height: int, width: int, steps: int, cr: float, backend: str) -> dict[str, float]:
    """Seconds per fit step on a synthetic image of this size (after one warm-up step)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack([(xx * 7 + yy) % 256, (yy * 5) % 256, rng.integers(0, 256, (height, width))], -1).astype(np.uint8)
    config = EncodeConfig().with_overrides(cr=cr)
    g = initialize(img, n_gaussians_for_cr(height, width, cr), config.init, seed=0)
    fc = dataclasses.replace(config.fit, steps=1)
    fit(g, img, fc, backend=backend)
    t0 = time.perf_counter()
    _, stats = fit(g, img, dataclasses.replace(fc, steps=max(1, steps)), backend=backend)
    return {"seconds_per_step": (time.perf_counter() - t0) / max(1, steps), "steps": max(1, steps)}


def _image_sizes(listing: list[str], storage_options) -> list[tuple[str, int, int]]:
    Image.MAX_IMAGE_PIXELS = None  # headers only: no pixels are decoded here
    out = []
    for uri in listing:
        with open_source(uri, storage_options) as f, Image.open(f) as im:
            out.append((uri, im.height, im.width))
    return out


def run_doctor(src: str | None, dst: str | None, *, address: str | None = None, storage_options=None,
               steps: int = 2000, cr: float = 100.0, fit_steps: int = 2, gpus_per_worker: float = 1.0,
               backend: str = "auto", fit: bool = True) -> Findings:
    """All the checks of the module doc; ``fit=False`` skips the timed fit."""
    import ray  # lazy: ray is slow to import

    f = Findings()
    started = connect(address)
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        gpu_nodes = []
        for n in nodes:
            r = n.get("Resources", {})
            f.info.append(f"node {n.get('NodeManagerAddress')}: {r.get('CPU', 0):g} CPU, {r.get('GPU', 0):g} GPU, "
                          f"object store {r.get('object_store_memory', 0) / 2**30:.1f} GiB")
            if r.get("GPU", 0) > 0:
                gpu_nodes.append(n)
        if gpus_per_worker > 0 and not gpu_nodes:
            f.problems.append("ray: no GPU node in the cluster now (an autoscaling cluster adds them when the run "
                              "asks; a local one never will: use --gpus-per-worker 0)")
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # lazy: ray is slow to import

        probe = ray.remote(gpu_probe)
        for n in gpu_nodes:
            try:
                res = ray.get(probe.options(num_gpus=min(1, n["Resources"]["GPU"]), num_cpus=0,
                                            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                                            ).remote(), timeout=300)
            except Exception as err:  # noqa: BLE001
                f.problems.append(f"gpu node {n.get('NodeManagerAddress')}: probe failed ({type(err).__name__}: {err})")
                continue
            where = f"gpu node {n.get('NodeManagerAddress')}"
            if not res.get("cuda"):
                f.problems.append(f"{where}: torch sees no CUDA {res.get('torch_error', '')}".rstrip())
            else:
                f.info.append(f"{where}: {res['gpu']}, {res['gpu_memory_gib']} GiB")
            if not res.get("gsplat_cuda"):
                f.problems.append(f"{where}: gsplat's CUDA extension does not load ({res.get('gsplat_error')})")
            if not res.get("triton"):
                f.problems.append(f"{where}: Triton does not load ({res.get('triton_error')})")
        here = gpu_probe()
        if not here.get("cuda"):
            f.info.append(f"this machine ({here['host']}): no CUDA (torch {'error: ' + here['torch_error'] if 'torch_error' in here else 'CPU only'})")

        sizes: list[tuple[str, int, int]] = []
        if src:
            try:
                sizes = _image_sizes(list_sources(src, storage_options), storage_options)
                total = sum(h * w for _, h, w in sizes)
                f.info.append(f"source {src}: {len(sizes)} images, {total / 1e6:.1f} MP in all, largest "
                              f"{max(sizes, key=lambda s: s[1] * s[2])[1:] if sizes else '-'} (H, W)")
            except Exception as err:  # noqa: BLE001
                f.problems.append(f"source {src}: {type(err).__name__}: {err}")
        if dst:
            name = f".doctor-probe-{uuid.uuid4().hex}"
            try:
                folder = Folder(dst, storage_options)
                payload = os.urandom(1024)
                folder.write_bytes(name, payload)
                ok = folder.read_bytes(name) == payload
                folder.delete(name)
                if ok and not folder.exists(name):
                    f.info.append(f"archive {folder.url}: write, read and delete work")
                else:
                    f.problems.append(f"archive {folder.url}: the probe read back other bytes or was not deleted")
            except Exception as err:  # noqa: BLE001
                f.problems.append(f"archive {dst}: write-read-delete probe failed ({type(err).__name__}: {err})")

        if fit and sizes:
            _, h, w = max(sizes, key=lambda s: s[1] * s[2])
            try:
                if gpu_nodes:
                    n = gpu_nodes[0]
                    timing = ray.get(ray.remote(timed_fit).options(
                        num_gpus=min(1, n["Resources"]["GPU"]), num_cpus=0,
                        scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                    ).remote(h, w, fit_steps, cr, backend), timeout=3600)
                    where = f"gpu node {n.get('NodeManagerAddress')}"
                else:
                    timing = timed_fit(h, w, fit_steps, cr, "cpu" if backend == "auto" else backend)
                    where = "this machine's CPU (no GPU node)"
                sps = timing["seconds_per_step"]
                total_mp = sum(hh * ww for _, hh, ww in sizes)
                hours = sps * steps * (total_mp / (h * w)) / 3600.0
                f.info.append(f"timed fit on {where}: {h}x{w}, {sps:.3f} s/step; {len(sizes)} images x {steps} "
                              f"steps ~ {hours:.1f} {'GPU' if gpu_nodes else 'CPU-process'}-hours of fitting "
                              "(scaled by pixels; init and encoding not included)")
            except Exception as err:  # noqa: BLE001
                f.problems.append(f"timed fit: {type(err).__name__}: {err}")
    finally:
        if started:
            ray.shutdown()
    return f
