"""Fault injection for tests and drills, switched on by an environment variable (never by editing code).

``SMARTSPLAT_FAULT`` holds one or more faults separated by ``;``:

- ``kill-actor:<id-glob>:<times>`` — the actor compressing an image whose id matches the glob ``os._exit``\\ s
  in the middle of that image (from the fit's progress callback, or just before staging if the fit reports no
  progress), the first ``<times>`` times across all actor restarts;
- ``slow-actor:<id-glob>:<seconds>`` — the actor sleeps that long in the middle of every matching image
  (keeps actors busy so a test can remove a node while they work);
- ``pause-driver-after-commits:<n>[:<seconds>]`` — after its ``n``-th shard commit, the driver writes
  ``driver-paused`` in the fault folder and sleeps (default 3600 s): a test can SIGKILL it at that moment,
  while shards are still being committed;
- ``kill-driver-after-commits:<n>`` — the driver SIGKILLs itself after its ``n``-th commit.

Counts survive process deaths through marker files in ``SMARTSPLAT_FAULT_DIR`` (default: a folder in the
system temp dir named after the archive URL), created with ``O_EXCL`` so concurrent actors count exactly.
The driver forwards both variables to its workers. With ``SMARTSPLAT_FAULT`` unset everything here is a no-op.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import signal
import tempfile
import time
from dataclasses import dataclass

from ..errors import ConfigError

ENV_FAULT = "SMARTSPLAT_FAULT"
ENV_FAULT_DIR = "SMARTSPLAT_FAULT_DIR"
#: Exit status of an actor killed by ``kill-actor`` (visible in Ray's logs).
KILLED_STATUS = 91


@dataclass(frozen=True)
class Fault:
    kind: str  # "kill-actor" | "slow-actor" | "pause-driver-after-commits" | "kill-driver-after-commits"
    pattern: str = "*"
    count: int = 1
    seconds: float = 3600.0


def parse_faults(text: str | None) -> tuple[Fault, ...]:
    """Parse a ``SMARTSPLAT_FAULT`` value; raises :class:`ConfigError` on a malformed one."""
    faults = []
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        kind, _, rest = item.partition(":")
        try:
            if kind == "kill-actor":
                pattern, _, times = rest.rpartition(":")
                if not pattern:
                    raise ValueError("needs <id-glob>:<times>")
                faults.append(Fault(kind, pattern=pattern, count=int(times)))
            elif kind == "slow-actor":
                pattern, _, secs = rest.rpartition(":")
                if not pattern:
                    raise ValueError("needs <id-glob>:<seconds>")
                faults.append(Fault(kind, pattern=pattern, seconds=float(secs)))
            elif kind == "pause-driver-after-commits":
                n, _, secs = rest.partition(":")
                faults.append(Fault(kind, count=int(n), seconds=float(secs) if secs else 3600.0))
            elif kind == "kill-driver-after-commits":
                faults.append(Fault(kind, count=int(rest)))
            else:
                raise ValueError("unknown fault")
        except ValueError as err:
            raise ConfigError(f"{ENV_FAULT}: cannot parse {item!r} ({err})") from err
    return tuple(faults)


def active_faults() -> tuple[Fault, ...]:
    return parse_faults(os.environ.get(ENV_FAULT))


def fault_dir(archive_url: str) -> str:
    """Where fault counters live: ``$SMARTSPLAT_FAULT_DIR`` or ``<tmp>/smartsplat-faults-<hash(archive)>``."""
    d = os.environ.get(ENV_FAULT_DIR)
    if not d:
        digest = hashlib.sha256(archive_url.encode()).hexdigest()[:16]
        d = os.path.join(tempfile.gettempdir(), f"smartsplat-faults-{digest}")
    os.makedirs(d, exist_ok=True)
    return d


def _take(directory: str, name: str, limit: int) -> bool:
    """Claim one of ``limit`` numbered markers ``name.<k>``; False when all are taken."""
    safe = hashlib.sha256(name.encode()).hexdigest()[:24]
    for k in range(limit):
        try:
            fd = os.open(os.path.join(directory, f"{safe}.{k}"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        os.write(fd, name.encode())
        os.close(fd)
        return True
    return False


def mid_image(image_id: str, archive_url: str) -> None:
    """Actor hook, called once in the middle of each image: ``kill-actor`` exits this process now (if it has
    kills left for ``image_id``), ``slow-actor`` sleeps."""
    for f in active_faults():
        if not fnmatch.fnmatchcase(image_id, f.pattern):
            continue
        if f.kind == "kill-actor" and _take(fault_dir(archive_url), f"kill-actor:{image_id}", f.count):
            os._exit(KILLED_STATUS)
        if f.kind == "slow-actor":
            time.sleep(f.seconds)


def after_commit(n_commits: int, archive_url: str) -> None:
    """Driver hook called after each shard commit (``n_commits`` so far in this run)."""
    for f in active_faults():
        if f.kind == "kill-driver-after-commits" and n_commits >= f.count:
            if _take(fault_dir(archive_url), "kill-driver", 1):
                os.kill(os.getpid(), signal.SIGKILL)
        elif f.kind == "pause-driver-after-commits" and n_commits >= f.count:
            d = fault_dir(archive_url)
            if _take(d, "pause-driver", 1):
                with open(os.path.join(d, "driver-paused"), "w") as fh:
                    fh.write(str(os.getpid()))
                time.sleep(f.seconds)


def forwarded_env() -> dict[str, str]:
    """The fault variables to pass on to workers (empty when none is set)."""
    return {k: os.environ[k] for k in (ENV_FAULT, ENV_FAULT_DIR) if os.environ.get(k)}
