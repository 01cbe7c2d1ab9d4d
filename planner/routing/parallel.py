"""Where chunks of work run: in this process (default), or on Dask.

The travel-time matrix is computed in chunks of Dijkstra sources (:mod:`planner.routing.matrix`).
:func:`run_chunks` runs such chunks:

* in this process, one after the other, when no cluster is asked for (the default: Dask is not
  even imported);
* on a local Dask cluster of ``workers`` processes bound to 127.0.0.1 (``planner run
  --workers N``, ``$PLANNER_WORKERS``), started on first use and reused by every later call of
  the process (matrix chunks, sweep cases) until :func:`close_clients` or the process exits;
* on an existing Dask cluster (``planner run --scheduler tcp://HOST:8786``,
  ``$PLANNER_SCHEDULER``).

On Dask, the shared input (the road graph's CSR arrays) is scattered once to every worker
(``broadcast=True``), each chunk is a task with ``retries``, and finished chunks are gathered
into this process as they complete, so a worker lost mid-run costs only the chunks it was
computing: they are retried on another worker. Chunk functions are pure, so results are
identical to the in-process run.

Every run reports progress with an estimated time to completion.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, TypeVar

from planner.errors import InputError
from planner.settings import dask_scheduler, dask_workers

logger = logging.getLogger(__name__)

#: ``progress(message, fraction)`` with ``fraction`` in 0..1.
Progress = Callable[[str, float], None]

T = TypeVar("T")

_INSTALL_HINT = (
    "running on Dask needs the optional dependency dask[distributed]: "
    "pip install 'service-site-planner[dask]' (or pip install 'dask[distributed]')"
)

#: Retries of a chunk whose worker died.
CHUNK_RETRIES = 3


@dataclass(frozen=True)
class Backend:
    """Where chunks run.

    Attributes
    ----------
    scheduler
        Address of a running Dask scheduler (``tcp://host:8786``), or None.
    workers
        Processes of a local Dask cluster to start when ``scheduler`` is None; 0 runs in
        this process.
    """

    scheduler: str | None = None
    workers: int = 0

    def __post_init__(self) -> None:
        if self.scheduler is not None and "://" not in self.scheduler:
            msg = (
                f"scheduler must be a Dask scheduler address like tcp://10.0.0.5:8786, "
                f"got {self.scheduler!r}"
            )
            raise InputError(msg, field="scheduler")
        if self.workers < 0:
            raise InputError(f"workers must be 0 or more, got {self.workers}", field="workers")

    @property
    def uses_dask(self) -> bool:
        """True when chunks run on Dask."""
        return self.scheduler is not None or self.workers > 0

    def describe(self) -> str:
        """Human-readable description for logs and reports."""
        if self.scheduler is not None:
            return f"Dask cluster at {self.scheduler}"
        if self.workers > 0:
            return f"local Dask cluster of {self.workers} worker(s)"
        return "this process"


def backend_from_settings(*, scheduler: str | None = None, workers: int | None = None) -> Backend:
    """The backend asked for explicitly, else by ``$PLANNER_SCHEDULER``/``$PLANNER_WORKERS``.

    Parameters
    ----------
    scheduler, workers
        Explicit choices (the CLI flags); None reads the settings.

    Returns
    -------
    Backend
    """
    return Backend(
        scheduler=scheduler if scheduler is not None else dask_scheduler(),
        workers=workers if workers is not None else dask_workers(),
    )


def cpu_threads() -> int:
    """Threads for in-process chunks that release the GIL (``$PLANNER_THREADS``, default: cores).

    Returns
    -------
    int
    """
    raw = os.environ.get("PLANNER_THREADS", "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            msg = f"PLANNER_THREADS must be a whole number, got {raw!r}"
            raise InputError(msg, field="PLANNER_THREADS") from None
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(_INSTALL_HINT) from exc
    return distributed


_clients: dict[Backend, tuple[Any, Any]] = {}
_clients_lock = threading.Lock()


def _client_for(backend: Backend) -> Any:
    """The Dask client of ``backend``: one per backend and process, started on first use."""
    distributed = _import_distributed()
    with _clients_lock:
        known = _clients.get(backend)
        if known is not None and known[0].status == "running":
            return known[0]
        cluster = None
        if backend.scheduler is not None:
            client = distributed.Client(backend.scheduler, set_as_default=False)
        else:
            cluster = distributed.LocalCluster(
                n_workers=backend.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            )
            client = distributed.Client(cluster, set_as_default=False)
        if not _clients:
            atexit.register(close_clients)
        _clients[backend] = (client, cluster)
        logger.info("connected to %s", backend.describe())
        return client


def close_clients() -> None:
    """Close the Dask clients and local clusters this process started (safe to call twice)."""
    with _clients_lock:
        items = list(_clients.values())
        _clients.clear()
    for client, cluster in items:
        client.close()
        if cluster is not None:
            cluster.close()


class _Eta:
    """Progress messages with an estimated time to completion."""

    def __init__(self, what: str, total: int, progress: Progress | None) -> None:
        self.what, self.total, self.progress = what, total, progress
        self.started = time.perf_counter()
        self.last = 0.0

    def done(self, k: int) -> None:
        if self.progress is None:
            return
        now = time.perf_counter()
        elapsed = now - self.started
        if k < self.total and now - self.last < 1.0:
            return
        self.last = now
        eta = elapsed / k * (self.total - k) if k else float("nan")
        self.progress(
            f"{self.what}: {k:,}/{self.total:,} chunks, {elapsed:.0f} s elapsed, ETA {eta:.0f} s",
            k / self.total,
        )


def _run_threads(
    fn: Callable[[Any, Any], T],
    shared: Any,
    chunks: Sequence[Any],
    threads: int,
    eta: _Eta,
    *,
    sink: Callable[[int, T], None] | None,
) -> list[T]:
    """``[fn(shared, c) for c in chunks]`` on a pool of threads, in order (or into ``sink``)."""
    results: list[Any] = [None] * len(chunks) if sink is None else []
    with ThreadPoolExecutor(max_workers=min(threads, len(chunks))) as pool:
        futures = {pool.submit(fn, shared, chunk): i for i, chunk in enumerate(chunks)}
        for k, future in enumerate(as_completed(futures), 1):
            i = futures.pop(future)
            if sink is None:
                results[i] = future.result()
            else:
                sink(i, future.result())
            eta.done(k)
    return results


def run_chunks(
    fn: Callable[[Any, Any], T],
    shared: Any,
    chunks: Sequence[Any],
    *,
    backend: Backend | None = None,
    progress: Progress | None = None,
    what: str = "chunks",
    threads: int = 1,
    sink: Callable[[int, T], None] | None = None,
) -> list[T]:
    """Return ``[fn(shared, c) for c in chunks]``, computed where ``backend`` says.

    Parameters
    ----------
    fn
        A pure, module-level function (it is pickled to Dask workers).
    shared
        The large read-only input every chunk needs (shipped once per worker on Dask).
    chunks
        Per-chunk inputs.
    backend
        Where to run; default :func:`backend_from_settings`.
    progress
        ``progress(message, fraction)`` after chunks complete (at most once a second).
    what
        Name of the work in progress messages.
    threads
        In this process, run chunks on this many threads (only for functions that release
        the GIL); on Dask every worker runs one chunk at a time.
    sink
        ``sink(i, result)`` receives each chunk's result as it completes (for example to copy
        it into a preallocated matrix); the results are then not kept and the returned list
        is empty, so memory holds only the chunks in flight.

    Returns
    -------
    list
        Results in the order of ``chunks``.
    """
    backend = backend or backend_from_settings()
    eta = _Eta(what, len(chunks), progress)
    if not backend.uses_dask or len(chunks) == 0:
        if threads > 1 and len(chunks) > 1:
            return _run_threads(fn, shared, chunks, threads, eta, sink=sink)
        out = []
        for k, chunk in enumerate(chunks, 1):
            result = fn(shared, chunk)
            if sink is None:
                out.append(result)
            else:
                sink(k - 1, result)
            eta.done(k)
        return out
    distributed = _import_distributed()
    client = _client_for(backend)
    logger.info("running %d %s on %s", len(chunks), what, backend.describe())
    shared_future = client.scatter(shared, broadcast=True, hash=False)
    token = uuid.uuid4().hex[:12]
    futures = [
        client.submit(
            fn,
            shared_future,
            chunk,
            key=f"{what}-{token}-{i}",
            retries=CHUNK_RETRIES,
            pure=False,
        )
        for i, chunk in enumerate(chunks)
    ]
    index = {f.key: i for i, f in enumerate(futures)}
    results: list[Any] = [None] * len(chunks) if sink is None else []
    try:
        for k, future in enumerate(distributed.as_completed(futures, loop=client.loop), 1):
            if sink is None:
                results[index[future.key]] = future.result()
            else:
                sink(index[future.key], future.result())
            future.release()  # finished chunks live here now, not on a worker that may die
            eta.done(k)
    finally:
        # the cluster outlives this call: leave no task of it behind on error
        client.cancel([f for f in futures if not f.done()])
        # scatter gives one future per element of a tuple or list
        scattered = shared_future if isinstance(shared_future, list | tuple) else [shared_future]
        for f in scattered:
            f.release()
    return results
