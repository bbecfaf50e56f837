"""The Ray driver: compress a dataset into an archive, or decode an archive back to images (DESIGN §7).

Compress:
1. list SRC (:func:`~.sources.list_sources`), give each image an id and a shard (deterministic from the
   sorted listing), open the archive (a different config or listing is refused);
2. resume: committed shards are skipped, staged images (ok or failed) are not refitted, shards whose images are
   all staged are committed straight away;
3. start one long-lived actor per GPU (``num_gpus=gpus_per_worker``), or CPU actors with a share of the CPUs;
   keep one task in flight per actor (``ray.wait``), passing ids and URIs only; rows come back as small dicts;
4. commit each shard *in the driver* as soon as its images are all staged or finally failed (the driver is
   the only committer, so no two processes race for a marker; actors keep fitting meanwhile because their
   next task was submitted before the commit);
5. write the manifest from the markers.

Failures: an expected per-image problem is a ``failed`` row staged by the actor. A crashed actor
(``RayActorError``: process exit, OOM kill, node loss) or an unexpected exception costs the image one attempt:
the actor is replaced by a fresh one and the image re-queued, up to ``max_retries`` retries, then it is staged
as failed with the reason. Task retries inside Ray are off (``max_task_retries=0``) so every crash reaches this
bookkeeping; ``max_restarts`` lets Ray bring back an actor that dies between tasks.
A dead driver kills its actors; everything durable is in the archive, so running the same command resumes.
Actors' own output (warnings, tracebacks of crashes) goes to Ray's logs (``/tmp/ray/session_latest/logs`` on
each node), not to the driver's screen, which shows the progress line and one line per failure.
"""
from __future__ import annotations

import os
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Any, Callable, Iterable

from ..archive.layout import image_ids_for, plan_shards
from ..archive.writer import ArchiveWriter, StagingError
from ..errors import EXIT_DAMAGED, EXIT_OK, EXIT_PARTIAL, ArchiveError, ConfigError
from ..io.storage import Folder
from . import faults
from .progress import Progress
from .sources import list_sources
from .worker import FORMATS, CompressWorker, DecodeWorker

#: Environment variables forwarded to every actor (storage endpoint and credentials, fault injection).
#: On a cloud cluster use instance roles instead of keys: then there is nothing secret to forward.
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "FSSPEC_S3_ENDPOINT_URL", "SMARTSPLAT_FAULT", "SMARTSPLAT_FAULT_DIR", "NUMBA_CACHE_DIR",
    "SMARTSPLAT_TORCH_THREADS",
)
#: Object store of a local cluster started here: only small dicts travel through it.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20
ACTOR_MAX_RESTARTS = 2
_TIMING_KEYS = ("read_seconds", "encode_seconds", "fit_seconds", "stage_seconds", "seconds",
                "decode_seconds", "write_seconds", "init_seconds", "metrics_seconds", "record_seconds")


@dataclass
class Result:
    """What a run did. ``rows``: the final row of every image of the run (from the markers / this run);
    ``failures``: [(id, reason)]; ``exit_code``: EXIT_OK, EXIT_PARTIAL (some failed) or EXIT_DAMAGED."""

    total: int
    ok: int
    failed: int
    failures: list[tuple[str, str]]
    seconds: float
    exit_code: int
    processed: int = 0  # images worked on in this run (fitted or decoded)
    skipped: int = 0  # already done before this run (committed/staged; or existing outputs for decode)
    shards_committed: int = 0
    actor_restarts: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    archive: str = ""
    #: per image worked on in this run: the actor's timings (read/encode/fit/stage/total seconds)
    timings: dict[str, dict[str, float]] = field(default_factory=dict)
    commit_seconds: float = 0.0  # driver time spent committing shards

    def summary(self) -> dict[str, Any]:
        """The counts as a JSON-able dict (no rows, no per-image timings)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("rows", "timings")}


# -- Ray plumbing ---------------------------------------------------------------------------------------------
def _forwarded_env() -> dict[str, str]:
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}


def connect(address: str | None = None, *, num_cpus: int | None = None,
            object_store_memory: int | None = None) -> bool:
    """Make sure Ray is initialised; True if this call started it (the caller then shuts it down).

    No ``address`` (and no ``RAY_ADDRESS``): start a local cluster (token auth off unless RAY_AUTH_MODE is set,
    no dashboard, a small object store). ``address`` (``auto``, ``host:port``, ``ray://...``): join it.
    Already initialised (e.g. inside a test or a notebook): reuse it.
    """
    import ray

    if ray.is_initialized():
        return False
    common = dict(log_to_driver=False, logging_level="WARNING", configure_logging=True)
    if address or os.environ.get("RAY_ADDRESS"):
        ray.init(address=address or os.environ["RAY_ADDRESS"], **common)
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        ray.init(num_cpus=num_cpus, include_dashboard=False,
                 object_store_memory=object_store_memory or LOCAL_OBJECT_STORE_BYTES, **common)
    return True


@dataclass(frozen=True)
class ActorPlan:
    """How many actors and what each reserves."""

    workers: int
    num_cpus: float
    num_gpus: float
    threads: int


def plan_actors(n_items: int, workers: int | None, gpus_per_worker: float | None,
                cpus_per_worker: float | None = None) -> ActorPlan:
    """One actor per ``gpus_per_worker`` GPUs when the cluster has GPUs, else CPU actors sharing the CPUs.

    CPU actors: default ``workers = max(1, CPUs // 4)``; each reserves ``CPUs / workers`` (fractional when there
    are more workers than CPUs; at most the largest node's CPUs) and runs that many torch/numba threads."""
    import ray

    res = ray.cluster_resources()
    total_cpus = float(res.get("CPU", 0.0))
    total_gpus = float(res.get("GPU", 0.0))
    node_cpus = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
    max_node_cpus = max(node_cpus or [total_cpus]) or 1.0
    gpw = 1.0 if gpus_per_worker is None else float(gpus_per_worker)
    if total_gpus > 0 and gpw > 0:
        n = workers or max(1, int(total_gpus // gpw))
        cpus = cpus_per_worker if cpus_per_worker is not None else min(1.0, max(total_cpus, 0.01) / n)
        plan = ActorPlan(n, cpus, gpw, max(1, int(cpus)))
    else:
        n = workers or max(1, int(total_cpus // 4))
        share = total_cpus / n if total_cpus > 0 else 1.0
        cpus = cpus_per_worker if cpus_per_worker is not None else min(share, max_node_cpus)
        cpus = max(0.01, round(cpus, 2))
        plan = ActorPlan(n, cpus, 0.0, max(1, int(cpus)))
    return ActorPlan(max(1, min(plan.workers, max(1, n_items))), plan.num_cpus, plan.num_gpus, plan.threads)


class _Pool:
    """Long-lived actors, one task in flight each, replaced when they die."""

    def __init__(self, cls: type, args: tuple, plan: ActorPlan, method: str):
        import ray

        self.ray = ray
        self.remote_cls = ray.remote(cls)
        self.args = args
        self.plan = plan
        self.method = method
        self.opts = dict(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_restarts=ACTOR_MAX_RESTARTS,
                         max_task_retries=0, runtime_env={"env_vars": _forwarded_env()})
        self.idle: list[Any] = []
        self.inflight: dict[Any, tuple[Any, tuple]] = {}  # object ref -> (actor, task args)
        self.restarts = 0
        for _ in range(plan.workers):
            self.idle.append(self._new())

    def _new(self):
        return self.remote_cls.options(**self.opts).remote(*self.args)

    def submit(self, *task_args) -> None:
        actor = self.idle.pop()
        ref = getattr(actor, self.method).remote(*task_args)
        self.inflight[ref] = (actor, task_args)

    def wait(self, timeout: float):
        """Finished tasks: [(task args, row | None, error | None, actor_died)]."""
        ray = self.ray
        ready, _ = ray.wait(list(self.inflight), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            actor, task_args = self.inflight.pop(ref)
            try:
                out.append((task_args, ray.get(ref), None, False))
                self.idle.append(actor)
            except ray.exceptions.RayActorError as err:
                self.replace(actor)
                out.append((task_args, None, err, True))
            except ray.exceptions.RayTaskError as err:  # an unexpected exception; the actor lives on
                self.idle.append(actor)
                out.append((task_args, None, err, False))
        return out

    def replace(self, actor) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.restarts += 1
        self.idle.append(self._new())

    def retire_idle(self) -> None:
        """Stop actors with nothing left to do (frees their GPU/CPUs, e.g. for a replacement still pending)."""
        while self.idle:
            actor = self.idle.pop()
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass

    def shutdown(self) -> None:
        self.retire_idle()
        for actor, _ in self.inflight.values():
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001
                pass
        self.inflight.clear()


def _reason(err: BaseException) -> str:
    """One line for a task failure: the cause of a RayTaskError, or the actor's death."""
    import ray

    if isinstance(err, ray.exceptions.RayActorError):
        text = str(err).strip().splitlines()
        first = next((t for t in text if "died" in t.lower() or "exit" in t.lower()), text[0] if text else "")
        return f"worker died while processing this image ({type(err).__name__}: {first.strip()[:300]})"
    cause = getattr(err, "cause", None)
    if cause is not None:
        return f"{type(cause).__name__}: {str(cause).strip()[:300]}"
    return f"{type(err).__name__}: {str(err).strip().splitlines()[-1][:300] if str(err).strip() else ''}"


def _run_queue(pool: _Pool, queue: deque, max_retries: int, on_done: Callable[[tuple, dict], None],
               on_give_up: Callable[[tuple, str], None], prog: Progress,
               on_retry: Callable[[tuple, str, int], None]) -> None:
    """Feed ``queue`` (task-args tuples) to ``pool``; retries on crashes/exceptions up to ``max_retries``."""
    attempts: dict[tuple, int] = {}
    while queue or pool.inflight:
        while queue and pool.idle:
            pool.submit(*queue.popleft())
        if not queue:
            pool.retire_idle()
        done = []
        for task_args, row, err, _died in pool.wait(timeout=min(5.0, prog.interval)):
            if err is None:
                done.append((task_args, row))
                continue
            attempts[task_args] = attempts.get(task_args, 0) + 1
            reason = _reason(err)
            if attempts[task_args] > max_retries:
                on_give_up(task_args, f"{reason} (gave up after {attempts[task_args]} attempts)")
            else:
                on_retry(task_args, reason, attempts[task_args])
                queue.appendleft(task_args)
        # keep the actors busy before the driver's own work (shard commits) on the finished rows
        while queue and pool.idle:
            pool.submit(*queue.popleft())
        for task_args, row in done:
            on_done(task_args, row)
        prog.draw()


def _config_dict(config) -> dict[str, Any]:
    from ..config import EncodeConfig

    if config is None:
        return EncodeConfig().to_dict()
    if isinstance(config, dict):
        return EncodeConfig.from_dict(config).to_dict()
    return config.to_dict()


# -- compress -------------------------------------------------------------------------------------------------
def compress_dataset(
    src: str,
    dst: str,
    config=None,
    *,
    workers: int | None = None,
    gpus_per_worker: float | None = 1.0,
    cpus_per_worker: float | None = None,
    images_per_shard: int = 16,
    address: str | None = None,
    storage_options: dict[str, Any] | None = None,
    max_retries: int = 3,
    backend: str = "auto",
    progress: bool = True,
    stream: IO[str] | None = None,
    num_cpus: int | None = None,
) -> Result:
    """Compress every image of ``src`` into the archive ``dst`` on a Ray cluster; resumes an unfinished archive.

    Args:
        src: folder, glob, ``s3://`` prefix or listing file (see :func:`~.sources.list_sources`).
        dst: archive folder, local or ``s3://``.
        config: :class:`~smartsplat_dist.config.EncodeConfig` (or its dict); recorded in run.json, so
            resuming with another config is refused.
        workers: number of actors (default: one per GPU; without GPUs ``CPUs // 4``).
        gpus_per_worker / cpus_per_worker: what each actor reserves (see :func:`plan_actors`).
        images_per_shard: images per tar shard (part of the archive's settings).
        address: Ray cluster to join (``auto``, ``host:port``); None starts a local one.
        storage_options: fsspec options (e.g. an S3 endpoint) for SRC, the archive and the workers.
        max_retries: retries of an image whose actor crashed (or raised unexpectedly) before it is failed.
        backend: render backend for the fit (``auto``: cuda on GPU actors, else cpu).
        progress: draw the progress display on ``stream`` (default stderr).
        num_cpus: CPUs of a local cluster started here (default: all).
    Returns:
        :class:`Result`; ``exit_code`` is EXIT_OK when every image is archived, EXIT_PARTIAL when some failed.
    """
    import ray

    t0 = time.perf_counter()
    stream = stream if stream is not None else sys.stderr
    if max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
    enc = _config_dict(config)
    listing = list_sources(src, storage_options)
    ids = image_ids_for(listing)
    source_of = dict(zip(ids, listing))
    shards = plan_shards(ids, images_per_shard)
    shard_of = {i: k for k, members in enumerate(shards) for i in members}
    folder = Folder(dst, storage_options)
    writer = ArchiveWriter(folder, {"encode": enc, "images_per_shard": images_per_shard}, listing)
    writer.open()

    markers = writer.committed()
    for k in markers:
        if k >= len(shards):
            raise ArchiveError(f"{folder.url}: shard {k} is committed but this run plans only {len(shards)} shards")
    staged = {i: r for i, r in writer.staged().items() if i in shard_of and shard_of[i] not in markers}
    rows: dict[str, dict[str, Any]] = {}
    for k, m in markers.items():
        for r in m["rows"]:
            rows[r["id"]] = r
    rows.update(staged)
    todo = [i for i in ids if i not in rows]
    prog = Progress(len(ids), already=len(rows), stream=stream, enabled=progress)
    prog.message(f"smartsplat compress: {len(ids)} images in {len(shards)} shards -> {folder.url}; "
                 f"{sum(len(shards[k]) for k in markers)} in {len(markers)} committed shards, "
                 f"{len(staged)} staged, {len(todo)} to fit")

    n_commits = [0]
    commit_seconds = [0.0]
    timings: dict[str, dict[str, float]] = {}
    remaining = {k: sum(1 for i in members if i not in rows) for k, members in enumerate(shards)
                 if k not in markers}

    queue = deque((i, source_of[i]) for i in todo)
    refits: dict[str, int] = {}

    def commit(k: int) -> None:
        tc = time.perf_counter()
        try:
            marker = writer.commit_shard(k, shards[k])
        except StagingError as err:
            # A staged record that disagrees with its row (two attempts at one image interleaved) or went
            # missing: forget those images and fit them again, a bounded number of times.
            commit_seconds[0] += time.perf_counter() - tc
            for image_id in err.image_ids:
                writer.unstage(image_id)
                rows.pop(image_id, None)
                remaining[k] += 1
            for image_id in err.image_ids:
                refits[image_id] = refits.get(image_id, 0) + 1
                if refits[image_id] > max_retries:
                    finished(image_id, writer.stage_failure(
                        image_id, {"source": source_of[image_id], "error": f"staging kept failing: {err}"}))
                else:
                    prog.message(f"  refit {image_id}: {err}")
                    queue.append((image_id, source_of[image_id]))
            return
        commit_seconds[0] += time.perf_counter() - tc
        for r in marker["rows"]:
            rows[r["id"]] = r
        n_commits[0] += 1
        faults.after_commit(n_commits[0], folder.url)

    def finished(image_id: str, row: dict[str, Any]) -> None:
        rows[image_id] = row
        timings[image_id] = {k: float(row[k]) for k in _TIMING_KEYS if isinstance(row.get(k), (int, float))}
        prog.update(row)
        if row.get("status") != "ok":
            prog.message(f"  failed: {image_id} ({source_of[image_id]}): {row.get('error')}")
        k = shard_of[image_id]
        remaining[k] -= 1
        if remaining[k] == 0:
            commit(k)

    for k in sorted(remaining):
        if remaining[k] == 0:
            commit(k)

    pool = None
    started = False
    try:
        if queue:
            started = connect(address, num_cpus=num_cpus)
            plan = plan_actors(len(queue), workers, gpus_per_worker, cpus_per_worker)
            prog.message(f"  {plan.workers} actor(s), each {plan.num_gpus:g} GPU / {plan.num_cpus:g} CPU, "
                         f"{plan.threads} thread(s); Ray {ray.__version__}")
            pool = _Pool(CompressWorker, (folder.url, storage_options, enc, backend, plan.threads), plan, "compress")
            _run_queue(
                pool, queue, max_retries,
                on_done=lambda a, row: finished(a[0], row),
                on_give_up=lambda a, why: finished(
                    a[0], writer.stage_failure(a[0], {"source": a[1], "error": why})),
                prog=prog,
                on_retry=lambda a, why, n: prog.message(f"  retry {n}/{max_retries}: {a[0]}: {why}"),
            )
        writer.write_manifest()
    finally:
        if pool is not None:
            pool.shutdown()
        if started:
            ray.shutdown()
        prog.close()

    final = [rows[i] for i in ids]
    failures = [(r["id"], str(r.get("error"))) for r in final if r.get("status") != "ok"]
    result = Result(total=len(ids), ok=len(ids) - len(failures), failed=len(failures), failures=failures,
                    seconds=time.perf_counter() - t0, exit_code=EXIT_PARTIAL if failures else EXIT_OK,
                    processed=len(todo), skipped=len(ids) - len(todo), shards_committed=n_commits[0],
                    actor_restarts=pool.restarts if pool else 0, rows=final, archive=folder.url,
                    timings=timings, commit_seconds=commit_seconds[0])
    _report(result, "archived", stream, source_of)
    return result


def _report(result: Result, verb: str, stream: IO[str], source_of: dict[str, str] | None = None) -> None:
    print(f"smartsplat: {result.ok}/{result.total} images {verb}, {result.failed} failed "
          f"({result.processed} processed in this run, {result.seconds:.1f} s) -> {result.archive}",
          file=stream, flush=True)
    for image_id, reason in result.failures:
        src = f" ({source_of[image_id]})" if source_of and image_id in source_of else ""
        print(f"  FAILED {image_id}{src}: {reason}", file=stream, flush=True)


# -- decode ---------------------------------------------------------------------------------------------------
def decode_archive(
    archive: str,
    dst: str,
    ids: Iterable[str] | None = None,
    fmt: str = "png",
    scale: float = 1.0,
    *,
    workers: int | None = None,
    gpus_per_worker: float | None = 1.0,
    cpus_per_worker: float | None = None,
    address: str | None = None,
    storage_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    max_retries: int = 1,
    backend: str = "auto",
    progress: bool = True,
    stream: IO[str] | None = None,
    num_cpus: int | None = None,
) -> Result:
    """Decode records of ``archive`` to ``dst/<id>.<ext>`` on a Ray cluster (local or S3 outputs).

    ``ids``: only these (default: every archived image). Existing outputs are skipped unless ``overwrite``.
    A damaged record (checksum, truncation) is refused and listed; the others are decoded.
    ``exit_code``: EXIT_OK, EXIT_DAMAGED when a record was damaged, else EXIT_PARTIAL when some failed."""
    import ray

    from ..archive import open_archive

    t0 = time.perf_counter()
    stream = stream if stream is not None else sys.stderr
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if not scale > 0:
        raise ConfigError(f"scale must be > 0, got {scale}")
    arc = open_archive(archive, storage_options=storage_options)
    have = list(arc.ids())
    wanted = list(dict.fromkeys(ids)) if ids else have
    out = Folder(dst, storage_options)
    rows: dict[str, dict[str, Any]] = {}
    have_set = set(have)
    for i in wanted:
        if i not in have_set:
            rows[i] = {"id": i, "status": "failed", "error": f"{i}: not in the archive"}
    if not overwrite:  # outputs already there are skipped here, without starting any actor
        existing = set(out.list())
        ext = FORMATS[fmt]
        for i in wanted:
            if i not in rows and f"{i}.{ext}" in existing:
                rows[i] = {"id": i, "status": "skipped", "error": None, "output": out.uri(f"{i}.{ext}")}
    todo = [i for i in wanted if i not in rows]
    n_skipped = sum(1 for r in rows.values() if r["status"] == "skipped")
    prog = Progress(len(wanted), already=n_skipped, stream=stream, enabled=progress)
    prog.failed = len(rows) - n_skipped  # asked for but not in the archive
    prog.message(f"smartsplat decode: {len(todo)} records of {arc_url(archive, storage_options)} -> {out.url} "
                 f"({fmt}, scale {scale:g})")

    def finished(image_id: str, row: dict[str, Any]) -> None:
        rows[image_id] = row
        prog.update({**row, "status": "ok" if row.get("status") in ("ok", "skipped") else "failed"})
        timings[image_id] = {k: float(row[k]) for k in _TIMING_KEYS if isinstance(row.get(k), (int, float))}
        if row.get("status") in ("damaged", "failed"):
            prog.message(f"  {row['status']}: {image_id}: {row.get('error')}")

    timings: dict[str, dict[str, float]] = {}
    pool = None
    started = False
    try:
        if todo:
            started = connect(address, num_cpus=num_cpus)
            plan = plan_actors(len(todo), workers, gpus_per_worker, cpus_per_worker)
            pool = _Pool(DecodeWorker, (archive, dst, storage_options, fmt, scale, overwrite, backend, plan.threads),
                         plan, "decode")
            _run_queue(
                pool, deque((i,) for i in todo), max_retries,
                on_done=lambda a, row: finished(a[0], row),
                on_give_up=lambda a, why: finished(a[0], {"id": a[0], "status": "failed", "error": why}),
                prog=prog,
                on_retry=lambda a, why, n: prog.message(f"  retry {n}/{max_retries}: {a[0]}: {why}"),
            )
    finally:
        if pool is not None:
            pool.shutdown()
        if started:
            ray.shutdown()
        prog.close()

    final = [rows[i] for i in wanted]
    bad = [r for r in final if r.get("status") not in ("ok", "skipped")]
    damaged = any(r.get("status") == "damaged" for r in bad)
    code = EXIT_DAMAGED if damaged else (EXIT_PARTIAL if bad else EXIT_OK)
    result = Result(total=len(wanted), ok=len(wanted) - len(bad), failed=len(bad),
                    failures=[(r["id"], f"{r['status']}: {r.get('error')}") for r in bad],
                    seconds=time.perf_counter() - t0, exit_code=code, processed=len(todo),
                    skipped=sum(1 for r in final if r.get("status") == "skipped"),
                    actor_restarts=pool.restarts if pool else 0, rows=final, archive=out.url, timings=timings)
    _report(result, "decoded", stream)
    return result


def arc_url(archive: str, storage_options: dict[str, Any] | None) -> str:
    return Folder(archive, storage_options).url
