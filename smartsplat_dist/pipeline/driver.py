"""The Ray driver: compress a dataset into an archive, or decode an archive back to images (docs/design.md §7).

Compress:
1. list SRC (:func:`~.sources.list_sources`), give each image an id and a shard (deterministic from the
   sorted listing), open the archive (a different config or listing is refused);
2. resume: committed shards are skipped, staged images (ok or failed) are not refitted, shards whose images are
   all staged are committed straight away; with ``retry_failed`` failed images are fitted again, and committed
   shards holding one are reopened, to be committed as their next generation;
3. a pool of long-lived actors that follows the cluster (:class:`_Pool`): one per GPU (``num_gpus=
   gpus_per_worker``) as GPU nodes join, asking the autoscaler for what the pending images could use, or CPU
   actors with a share of the CPUs; one task in flight per actor (``ray.wait``), passing ids and URIs only;
   rows come back as small dicts; actors checkpoint their fits (see :mod:`~smartsplat_dist.fitting.checkpoint`);
4. commit each shard *in the driver* as soon as its images are all staged or finally failed (the driver is
   the only committer, so no two processes race for a marker; actors keep fitting meanwhile because their
   next task was submitted before the commit), then rewrite the manifest, so it is current while the job runs.

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

from ..archive import open_archive
from ..archive.layout import image_ids_for, plan_shards
from ..archive.markers import marker_generation
from ..archive.reader import Archive
from ..archive.writer import ArchiveWriter, StagingError
from ..config import EncodeConfig
from ..errors import EXIT_DAMAGED, EXIT_OK, EXIT_PARTIAL, ArchiveError, ConfigError
from ..io.images import OUTPUT_FORMATS
from ..io.storage import Folder
from . import faults
from .progress import Progress
from .sources import list_sources
from .worker import CHECKPOINT_MINUTES, CompressWorker, DecodeWorker

#: Environment variables forwarded to every actor through ``runtime_env`` (storage endpoint, region, profile,
#: fault injection, decode limits). Ray writes these to its logs (``runtime_env_agent.log``), so no secret is
#: ever among them: see :data:`SECRET_ENV`.
FORWARDED_ENV = (
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
    "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
    "FSSPEC_S3_ENDPOINT_URL", "SMARTSPLAT_FAULT", "SMARTSPLAT_FAULT_DIR", "NUMBA_CACHE_DIR",
    "SMARTSPLAT_TORCH_THREADS", "SMARTSPLAT_DECODE_LIMITS",
)
#: Credentials in the driver's environment: never forwarded as env vars. They reach the actors in memory only,
#: as s3fs storage options in the actors' constructor arguments (:func:`_worker_storage_options`), like
#: ``--storage-options``. On a cluster, prefer instance roles or a credentials file on every node.
SECRET_ENV = {"AWS_ACCESS_KEY_ID": "key", "AWS_SECRET_ACCESS_KEY": "secret", "AWS_SESSION_TOKEN": "token"}
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
    commit_seconds: float = 0.0  # driver time spent committing shards (and writing the manifest)
    actors_started: int = 0
    #: per actor started: seconds from its start to its first answer (a node joining -> its actors taking work)
    actor_ready_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The counts as a JSON-able dict (no rows, no per-image timings)."""
        return {k: v for k, v in self.__dict__.items() if k not in ("rows", "timings", "actor_ready_seconds")}


# -- Ray plumbing ---------------------------------------------------------------------------------------------
def _forwarded_env() -> dict[str, str]:
    """The non-secret variables of :data:`FORWARDED_ENV` that are set (Ray logs them: never a secret)."""
    return {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k) and k not in SECRET_ENV}


def _worker_storage_options(storage_options: dict[str, Any] | None) -> dict[str, Any] | None:
    """The storage options the actors get: ``storage_options`` plus the driver's AWS key / secret / token from
    its environment (when set and not given explicitly, and no AWS_PROFILE picks other credentials). They
    travel in memory with the actors' constructor arguments, never in an env var, a log or the archive."""
    found = {opt: os.environ[var] for var, opt in SECRET_ENV.items() if os.environ.get(var)}
    opts = dict(storage_options or {})
    if not {"key", "secret"} <= set(found) or os.environ.get("AWS_PROFILE") or {"key", "secret", "profile"} & set(opts):
        return storage_options
    for k, v in found.items():
        opts.setdefault(k, v)
    return opts


def connect(address: str | None = None, *, num_cpus: int | None = None,
            object_store_memory: int | None = None, log: Callable[[str], None] | None = None) -> bool:
    """Make sure Ray is initialised; True if this call started it (the caller then shuts it down).

    No ``address`` (and no ``RAY_ADDRESS``): always start a private local cluster (``address="local"``: token
    auth off unless RAY_AUTH_MODE is set, no dashboard, a small object store), even when another Ray head
    runs on this machine or a stale ``ray_current_cluster`` file is left by a dead one; ``log`` says so, and
    that ``--address auto`` joins the running one instead. ``address`` (``auto``, ``host:port``,
    ``ray://...``): join it, deliberately. Already initialised (e.g. inside a test or a notebook): reuse it.
    """
    import ray  # lazy: ray is slow to import

    say = log or (lambda m: None)
    if ray.is_initialized():
        return False
    common = dict(log_to_driver=False, logging_level="WARNING", configure_logging=True)
    target = address or os.environ.get("RAY_ADDRESS")
    if target and target != "local":
        ray.init(address=target, **common)
        say(f"  joined the Ray cluster at {target} ({ray.get_runtime_context().gcs_address})")
        return True
    running = None
    try:
        from ray._private.services import find_bootstrap_address  # lazy: ray is slow to import

        running = find_bootstrap_address(None)
    except Exception:  # noqa: BLE001 - only used for the message
        running = None
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
             object_store_memory=object_store_memory or LOCAL_OBJECT_STORE_BYTES, **common)
    note = (f"; a Ray cluster was started on this machine at {running} (it may be gone): "
            "pass --address auto to use it instead") if running else ""
    say(f"  started a private local Ray cluster ({int(ray.cluster_resources().get('CPU', 0))} CPUs){note}")
    return True


@dataclass(frozen=True)
class ActorPlan:
    """What each actor reserves and how many there may be at most.

    ``workers``: upper bound on live actors; ``num_gpus`` 0 means CPU actors; ``elastic``: wait for GPUs the
    cluster does not have yet (ask the autoscaler for them) instead of taking what is there."""

    workers: int
    num_cpus: float
    num_gpus: float
    threads: int
    elastic: bool = False


def plan_actors(n_items: int, workers: int | None, gpus_per_worker: float | None,
                cpus_per_worker: float | None = None, *, local: bool = True) -> ActorPlan:
    """GPU actors (``gpus_per_worker`` GPUs each) or CPU actors sharing the CPUs.

    CPU actors only when asked (``gpus_per_worker`` 0) or on a ``local`` cluster (started here, or the one this
    process already runs) that has no GPU. GPU actors on a joined cluster are *elastic*: one per
    ``gpus_per_worker`` GPUs as nodes come and go, at most ``workers`` (default: as many as there is work for).
    CPU actors: default ``workers = max(1, CPUs // 4)``; each reserves ``CPUs / workers`` (fractional when there
    are more workers than CPUs; at most the largest node's CPUs) and runs that many torch/numba threads."""
    import ray  # lazy: ray is slow to import

    res = ray.cluster_resources()
    total_cpus = float(res.get("CPU", 0.0))
    total_gpus = float(res.get("GPU", 0.0))
    node_cpus = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
    max_node_cpus = max(node_cpus or [total_cpus]) or 1.0
    gpw = 1.0 if gpus_per_worker is None else float(gpus_per_worker)
    n_items = max(1, n_items)
    if gpw > 0 and (total_gpus > 0 or not local):
        n = min(workers or n_items, n_items)
        cpus = cpus_per_worker if cpus_per_worker is not None else 1.0
        return ActorPlan(n, cpus, gpw, max(1, int(cpus)), elastic=not local or total_gpus > 0)
    n = workers or max(1, int(total_cpus // 4))
    share = total_cpus / n if total_cpus > 0 else 1.0
    cpus = cpus_per_worker if cpus_per_worker is not None else min(share, max_node_cpus)
    cpus = max(0.01, round(cpus, 2))
    return ActorPlan(max(1, min(n, n_items)), cpus, 0.0, max(1, int(cpus)), elastic=False)


def node_slots(nodes: list[dict[str, Any]], plan: ActorPlan) -> int:
    """How many actors of ``plan`` the alive ``nodes`` (``ray.nodes()``) can hold in all."""
    total = 0
    for node in nodes:
        if not node.get("Alive"):
            continue
        res = node.get("Resources", {})
        fits = []
        if plan.num_gpus > 0:
            fits.append(int(float(res.get("GPU", 0.0)) // plan.num_gpus + 1e-9))
        if plan.num_cpus > 0:
            fits.append(int(float(res.get("CPU", 0.0)) / plan.num_cpus + 1e-9))
        total += min(fits) if fits else 0
    return total


class _Pool:
    """Long-lived actors, one task in flight each, following the cluster.

    Each :meth:`sync` (every loop turn, at most every ``SYNC_SECONDS``) sizes the pool to
    ``min(plan.workers, work left, what the alive nodes can hold)``: it starts actors for new capacity (a node
    joined), forgets dead ones (their node left; their image is retried) and, for elastic GPU plans, asks the
    autoscaler for one bundle per actor the work could use (``request_resources``). A new actor gets work only
    once it answers a ping, so no image waits on an actor that cannot be placed."""

    SYNC_SECONDS = 1.0

    def __init__(self, cls: type, args: tuple, plan: ActorPlan, method: str,
                 on_message: Callable[[str], None] | None = None):
        import ray  # lazy: ray is slow to import

        self.ray = ray
        self.remote_cls = ray.remote(cls)
        self.args = args
        self.plan = plan
        self.method = method
        self.opts = dict(num_cpus=plan.num_cpus, num_gpus=plan.num_gpus, max_restarts=ACTOR_MAX_RESTARTS,
                         max_task_retries=0, runtime_env={"env_vars": _forwarded_env()})
        self.idle: list[Any] = []
        self.starting: dict[Any, tuple[Any, float]] = {}  # ping ref -> (actor, start time)
        self.inflight: dict[Any, tuple[Any, tuple]] = {}  # object ref -> (actor, task args)
        self.restarts = 0
        self.started = 0
        self.ready_delays: list[float] = []  # seconds from an actor's start to its first ping answer
        self.on_message = on_message or (lambda text: None)
        self._last_sync = -1e9
        self._requested = -1
        self._waiting: tuple[int, int] | None = None

    def _new(self) -> None:
        actor = self.remote_cls.options(**self.opts).remote(*self.args)
        self.starting[actor.ping.remote()] = (actor, time.monotonic())
        self.started += 1

    @property
    def live(self) -> int:
        return len(self.idle) + len(self.inflight) + len(self.starting)

    def sync(self, work_left: int, force: bool = False) -> None:
        """Size the pool for ``work_left`` images (queued + in flight); see the class doc."""
        ray = self.ray
        if self.starting:
            ready, _ = ray.wait(list(self.starting), num_returns=len(self.starting), timeout=0)
            for ref in ready:
                actor, t_start = self.starting.pop(ref)
                try:
                    ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError):
                    self._kill(actor)
                    continue
                self.ready_delays.append(time.monotonic() - t_start)
                self.idle.append(actor)
        now = time.monotonic()
        if not force and now - self._last_sync < self.SYNC_SECONDS:
            return
        self._last_sync = now
        want = min(self.plan.workers, work_left)
        slots = node_slots(ray.nodes(), self.plan)
        target = min(want, slots)
        if self.plan.elastic and want != self._requested:
            self._request(want)
        while self.live < target:
            self._new()
        while self.live > max(target, len(self.inflight)) and self.starting:  # capacity went away
            ref = next(iter(self.starting))
            actor, _ = self.starting.pop(ref)
            self._kill(actor)
        ready = len(self.idle) + len(self.inflight)
        if self.plan.num_gpus > 0 and ready < want:
            if self._waiting != (ready, want):
                self.on_message(f"  waiting for GPUs ({ready}/{want}): actors of {self.plan.num_gpus:g} GPU each "
                                f"start as nodes join ({slots} place(s) on the cluster now)")
            self._waiting = (ready, want)
        elif self._waiting is not None and ready >= want:
            self.on_message(f"  {ready} GPU actor(s) working")
            self._waiting = None

    def _request(self, n: int) -> None:
        """Ask the autoscaler for ``n`` actors' worth of GPUs (0 withdraws the request)."""
        try:
            from ray.autoscaler.sdk import request_resources  # lazy: ray is slow to import

            bundle = {"GPU": self.plan.num_gpus}
            if self.plan.num_cpus > 0:
                bundle["CPU"] = self.plan.num_cpus
            request_resources(bundles=[dict(bundle) for _ in range(n)])
            self._requested = n
        except Exception as err:  # noqa: BLE001 - no autoscaler API here: the pool still follows the nodes
            if self._requested != -2:
                self.on_message(f"  cannot ask the autoscaler for GPUs ({type(err).__name__}: {err})")
            self._requested = -2

    def submit(self, *task_args) -> None:
        actor = self.idle.pop()
        ref = getattr(actor, self.method).remote(*task_args)
        self.inflight[ref] = (actor, task_args)

    def wait(self, timeout: float):
        """Finished tasks: [(task args, row | None, error | None, actor_died)]."""
        ray = self.ray
        refs = list(self.inflight)
        if not refs:
            time.sleep(min(timeout, 0.5) if not self.starting else 0)
            if self.starting:
                ray.wait(list(self.starting), num_returns=1, timeout=min(timeout, 0.5))
            return []
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout if not self.starting else min(timeout, 0.5))
        out = []
        for ref in ready:
            actor, task_args = self.inflight.pop(ref)
            try:
                out.append((task_args, ray.get(ref), None, False))
                self.idle.append(actor)
            except ray.exceptions.RayActorError as err:
                self._kill(actor)
                self.restarts += 1  # sync() starts a replacement where there is room for one
                out.append((task_args, None, err, True))
            except ray.exceptions.RayTaskError as err:  # an unexpected exception; the actor lives on
                self.idle.append(actor)
                out.append((task_args, None, err, False))
        return out

    def _kill(self, actor) -> None:
        try:
            self.ray.kill(actor, no_restart=True)
        except Exception:  # noqa: BLE001 - already gone
            pass

    def retire_idle(self) -> None:
        """Stop actors with nothing left to do (frees their GPU/CPUs, e.g. for a replacement still pending)."""
        while self.idle:
            self._kill(self.idle.pop())

    def shutdown(self) -> None:
        self.retire_idle()
        for actor, _ in list(self.starting.values()) + [a for a, _ in self.inflight.values()]:
            self._kill(actor)
        self.starting.clear()
        self.inflight.clear()
        if self.plan.elastic and self._requested > 0:
            self._request(0)


def _reason(err: BaseException) -> str:
    """One line for a task failure: the cause of a RayTaskError, or the actor's death."""
    import ray  # lazy: ray is slow to import

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
    pool.sync(len(queue), force=True)
    while queue or pool.inflight:
        pool.sync(len(queue) + len(pool.inflight))
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
    checkpoint_minutes: float = CHECKPOINT_MINUTES,
    retry_failed: bool = False,
) -> Result:
    """Compress every image of ``src`` into the archive ``dst`` on a Ray cluster; resumes an unfinished archive.

    Args:
        src: folder, glob, ``s3://`` prefix or listing file (see :func:`~.sources.list_sources`).
        dst: archive folder, local or ``s3://``.
        config: :class:`~smartsplat_dist.config.EncodeConfig` (or its dict); recorded in run.json, so
            resuming with another config is refused.
        workers: most actors at once (default: one per GPU the cluster has or gets; without GPUs ``CPUs // 4``).
        gpus_per_worker / cpus_per_worker: what each actor reserves (see :func:`plan_actors`); 0 GPUs: CPU actors.
        images_per_shard: images per tar shard (part of the archive's settings).
        address: Ray cluster to join (``auto``, ``host:port``); None starts a local one (or uses the one this
            process already runs). On a joined cluster the actors follow the GPU nodes as they come and go.
        storage_options: fsspec options (e.g. an S3 endpoint) for SRC, the archive and the workers.
        max_retries: retries of an image whose actor crashed (or raised unexpectedly) before it is failed.
        backend: render backend for the fit (``auto``: cuda on GPU actors, else cpu).
        progress: draw the progress display on ``stream`` (default stderr).
        num_cpus: CPUs of a local cluster started here (default: all).
        checkpoint_minutes: actors save each fit's state this often (and on SIGTERM) next to the staging area;
            a retried image continues from it. 0: no checkpoints.
        retry_failed: fit again the images earlier runs left failed, also inside committed shards (each such
            shard is replaced by a new generation once its images are done).
    Returns:
        :class:`Result`; ``exit_code`` is EXIT_OK when every image is archived, EXIT_PARTIAL when some failed.
    """
    import ray  # lazy: ray is slow to import

    t0 = time.perf_counter()
    stream = stream if stream is not None else sys.stderr
    if max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
    if not checkpoint_minutes >= 0:
        raise ConfigError(f"checkpoint_minutes must be >= 0, got {checkpoint_minutes}")
    enc = _config_dict(config)
    listing = list_sources(src, storage_options)
    ids = image_ids_for(listing)
    source_of = dict(zip(ids, listing))
    shards = plan_shards(ids, images_per_shard)
    shard_of = {i: k for k, members in enumerate(shards) for i in members}
    folder = Folder(dst, storage_options)
    writer = ArchiveWriter(folder, {"encode": enc, "images_per_shard": images_per_shard}, listing)
    writer.open()

    # -- plan and resume: what is committed, staged, to fit (and, with retry_failed, to fit again) --------------
    markers = writer.committed()
    for k in markers:
        if k >= len(shards):
            raise ArchiveError(f"{folder.url}: shard {k} is committed but this run plans only {len(shards)} shards")
    generation_of: dict[int, int] = {}  # shards to commit as a new generation (replacing a committed one)
    if retry_failed:
        reopened = _reopen_failed(writer, markers, generation_of)
    staged = {i: r for i, r in writer.staged().items() if i in shard_of and shard_of[i] not in markers}
    if retry_failed:
        for i in [i for i, r in staged.items() if r.get("status") != "ok"]:
            writer.unstage(i)
            del staged[i]
    rows: dict[str, dict[str, Any]] = {}
    for k, m in markers.items():
        for r in m["rows"]:
            rows[r["id"]] = r
    rows.update(staged)
    todo = [i for i in ids if i not in rows]
    prog = Progress(len(ids), already=len(rows), stream=stream, enabled=progress)
    prog.message(f"smartsplat compress: {len(ids)} images in {len(shards)} shards -> {folder.url}; "
                 f"{sum(len(shards[k]) for k in markers)} in {len(markers)} committed shards, "
                 f"{len(staged)} staged, {len(todo)} to fit{listing.describe_skipped()}"
                 + (f" ({reopened} failed image(s) to fit again)" if retry_failed else ""))

    n_commits = [0]
    commit_seconds = [0.0]
    timings: dict[str, dict[str, float]] = {}
    remaining = {k: sum(1 for i in members if i not in rows) for k, members in enumerate(shards)
                 if k not in markers}

    queue = deque((i, source_of[i]) for i in todo)
    refits: dict[str, int] = {}

    # -- commit: a shard as soon as its images are all staged; the manifest after every commit -----------------
    def commit(k: int) -> None:
        tc = time.perf_counter()
        try:
            marker = writer.commit_shard(k, shards[k], generation=generation_of.get(k, 0))
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
        markers[k] = marker
        writer.write_manifest(markers)
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

    # -- schedule: the actor pool works through the queue -----------------------------------------------------
    pool = None
    started = False
    try:
        if queue:
            started = connect(address, num_cpus=num_cpus, log=prog.message)
            local = started or not (address or os.environ.get("RAY_ADDRESS"))
            plan = plan_actors(len(queue), workers, gpus_per_worker, cpus_per_worker, local=local)
            _describe_plan(plan, prog, local, gpus_per_worker)
            pool = _Pool(CompressWorker, (folder.url, _worker_storage_options(storage_options), enc, backend,
                                          plan.threads, checkpoint_minutes), plan, "compress",
                         on_message=prog.message)
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
                    timings=timings, commit_seconds=commit_seconds[0],
                    actors_started=pool.started if pool else 0,
                    actor_ready_seconds=list(pool.ready_delays) if pool else [])
    _report(result, "archived", stream, source_of)
    return result


def _reopen_failed(writer: ArchiveWriter, markers: dict[int, dict[str, Any]], generation_of: dict[int, int]) -> int:
    """For ``--retry-failed``: every committed shard with a failed image is reopened. Its ok images are staged
    again from the committed tar (so the new generation holds them unchanged), its failed images are left
    unstaged (to be fitted), and it is dropped from ``markers`` and entered in ``generation_of`` (index → the
    generation to commit). The committed shard stays the shard until the new generation's marker exists.
    Returns the number of failed images reopened."""
    reopened = 0
    bad = [k for k, m in markers.items() if any(r.get("status") != "ok" for r in m["rows"])]
    if not bad:
        return 0
    arc = Archive(writer.folder)
    for k in bad:
        marker = markers.pop(k)
        generation_of[k] = marker_generation(marker) + 1
        for row in marker["rows"]:
            if row.get("status") == "ok":
                keep = {key: v for key, v in row.items() if key not in ("shard", "offset", "length", "sha256")}
                writer.stage(row["id"], arc.get(row["id"]), keep)
            else:
                writer.unstage(row["id"])
                reopened += 1
    return reopened


def _describe_plan(plan: ActorPlan, prog: Progress, local: bool, gpus_per_worker: float | None) -> None:
    import ray  # lazy: ray is slow to import

    if plan.num_gpus > 0:
        prog.message(f"  up to {plan.workers} GPU actor(s), each {plan.num_gpus:g} GPU / {plan.num_cpus:g} CPU; "
                     f"{'following the cluster' if plan.elastic else 'fixed'}; Ray {ray.__version__}")
    else:
        why = "asked for (--gpus-per-worker 0)" if gpus_per_worker is not None and float(gpus_per_worker) == 0 \
            else "a local cluster without GPUs"
        prog.message(f"  {plan.workers} CPU actor(s), each {plan.num_cpus:g} CPU, {plan.threads} thread(s) "
                     f"({why}); Ray {ray.__version__}")


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
    import ray  # lazy: ray is slow to import

    t0 = time.perf_counter()
    stream = stream if stream is not None else sys.stderr
    if fmt not in OUTPUT_FORMATS:
        raise ConfigError(f"unknown format {fmt!r}; choose from {', '.join(OUTPUT_FORMATS)}")
    if not scale > 0:
        raise ConfigError(f"scale must be > 0, got {scale}")
    arc = open_archive(archive, storage_options=storage_options)
    for line in arc.damaged:  # a damaged marker stops only its own shard
        print(f"smartsplat decode: DAMAGED {line}", file=stream, flush=True)
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
        ext = OUTPUT_FORMATS[fmt][0]
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
            started = connect(address, num_cpus=num_cpus, log=prog.message)
            # Decoding never waits for GPUs: it uses those the cluster has now, else its CPUs.
            plan = plan_actors(len(todo), workers, gpus_per_worker, cpus_per_worker, local=True)
            pool = _Pool(DecodeWorker, (archive, dst, _worker_storage_options(storage_options), fmt, scale,
                                        overwrite, backend, plan.threads), plan, "decode", on_message=prog.message)
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
    damaged = any(r.get("status") == "damaged" for r in bad) or bool(arc.damaged)
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
