"""One server-wide queue for long work: a fair share of the machine for every user.

Solves and matrix builds of every session go through one :class:`JobQueue`:

- at most ``max_jobs`` run at once (``$PLANNER_MAX_JOBS``, default the number of cores), so
  ten users pressing Run on a two-core server do not slow every page down together;
- at most one job runs per user; the others wait in line, first come first served among the
  users who have nothing running, and a waiting job knows its place (:meth:`JobQueue.position`);
- a job whose estimated memory exceeds what the machine has free is refused at once with
  :class:`JobRefused`, instead of taking the server down;
- a job whose page was closed (its ``alive`` callback says False for ``grace_s`` seconds) is
  stopped and dropped, so its slot is free again within seconds (the abandoned work ends at
  its next progress report or stop check);
- job threads run at a lower CPU priority than the pages' script threads (``nice`` 10 by
  default, ``$PLANNER_JOB_NICE``; Linux, per thread), so a page switch is answered first when
  the solves keep every core busy.

Jobs run in threads of their own, never in Streamlit's script thread; no Streamlit here.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from planner.errors import PlannerError
from planner.hosting.jobs import Job, JobStopped, Progress, StopCallback

__all__ = [
    "MAX_JOBS_ENV_VAR",
    "NICE_ENV_VAR",
    "JobQueue",
    "JobRefused",
    "JobStopped",
    "available_memory_bytes",
    "default_job_nice",
    "default_max_jobs",
    "estimate_job_bytes",
    "lower_thread_priority",
]

logger = logging.getLogger(__name__)

#: Environment variable: how many jobs may run at once on this server.
MAX_JOBS_ENV_VAR = "PLANNER_MAX_JOBS"
#: Environment variable: the niceness of job threads (0-19; higher yields more to the pages).
NICE_ENV_VAR = "PLANNER_JOB_NICE"
#: Niceness of job threads when ``$PLANNER_JOB_NICE`` is not set.
DEFAULT_JOB_NICE = 10
#: Diagnostics: when set, every start and end of a job appends one line (time, event, user,
#: kind, jobs running) to this file (used by benchmarks/bench_hosted.py).
QUEUE_LOG_ENV_VAR = "PLANNER_QUEUE_LOG"
#: Memory a solve needs per customer-site pair (travel time, cost and model coefficients).
BYTES_PER_PAIR = 200
#: Memory a prepared instance needs besides its matrix (graph views, tables).
BASE_JOB_BYTES = 50 * 1024 * 1024

Work = Callable[[Progress, StopCallback], Any]


class JobRefused(PlannerError, MemoryError):
    """A job the server cannot take (it would need more memory than is free)."""


def default_max_jobs() -> int:
    """``$PLANNER_MAX_JOBS`` when set (a whole number of at least 1), else the number of cores.

    Raises
    ------
    ValueError
        When the variable is set but is not a whole number of at least 1.
    """
    raw = os.environ.get(MAX_JOBS_ENV_VAR, "").strip()
    if not raw:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{MAX_JOBS_ENV_VAR}={raw!r}: give a whole number of at least 1")
    return value


def default_job_nice() -> int:
    """``$PLANNER_JOB_NICE`` when set (a whole number from 0 to 19), else 10.

    Raises
    ------
    ValueError
        When the variable is set but is not a whole number from 0 to 19.
    """
    raw = os.environ.get(NICE_ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_JOB_NICE
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= 19:
        raise ValueError(f"{NICE_ENV_VAR}={raw!r}: give a whole number from 0 to 19")
    return value


def lower_thread_priority(nice: int) -> bool:
    """Give the calling thread the niceness ``nice`` (Linux; elsewhere nothing happens).

    Linux schedules threads one by one, so this lowers only the calling thread (and threads it
    starts later), not the pages' script threads of the same process. An unprivileged process
    cannot go back to a lower niceness, so a value below the thread's current one is left as is.

    Returns
    -------
    bool
        Whether the thread now runs at ``nice`` or lower priority.
    """
    if not sys.platform.startswith("linux") or not hasattr(os, "setpriority"):
        return False
    tid = threading.get_native_id()
    try:
        if os.getpriority(os.PRIO_PROCESS, tid) >= nice:
            return True
        os.setpriority(os.PRIO_PROCESS, tid, nice)
    except OSError as exc:  # e.g. a sandbox that forbids it: run at normal priority
        logger.warning("could not lower the priority of a job thread: %s", exc)
        return False
    return True


def available_memory_bytes() -> int:
    """Memory the machine has free for new work (``MemAvailable`` on Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    pages = os.sysconf("SC_AVPHYS_PAGES") if hasattr(os, "sysconf") else 0
    return int(pages) * int(os.sysconf("SC_PAGE_SIZE")) if pages else 1 << 62


def estimate_job_bytes(n_customers: int, n_sites: int, n_layouts: int = 1) -> int:
    """Memory a solve of ``n_customers`` x ``n_sites`` needs, roughly, for ``n_layouts``."""
    pairs = max(int(n_customers), 0) * max(int(n_sites), 0)
    return BASE_JOB_BYTES + BYTES_PER_PAIR * pairs * max(int(n_layouts), 1)


def _mb(n: int) -> str:
    return f"{n / 1024**2:,.0f} MB"


class JobQueue:
    """The server-wide queue (one per process; see the module docstring).

    Parameters
    ----------
    max_jobs
        Jobs that may run at once (default :func:`default_max_jobs`).
    available_bytes
        Free memory now (default :func:`available_memory_bytes`).
    grace_s
        Seconds a job's ``alive()`` may say False before the job is stopped.
    watch_s
        Seconds between two looks at the jobs' pages.
    nice
        Niceness of the job threads (default :func:`default_job_nice`; 0 keeps the priority of
        the pages' script threads).
    """

    def __init__(
        self,
        max_jobs: int | None = None,
        *,
        available_bytes: Callable[[], int] = available_memory_bytes,
        grace_s: float = 3.0,
        watch_s: float = 0.5,
        nice: int | None = None,
    ) -> None:
        self.max_jobs = default_max_jobs() if max_jobs is None else int(max_jobs)
        if self.max_jobs < 1:
            raise ValueError("max_jobs must be at least 1")
        self._available = available_bytes
        self.grace_s = float(grace_s)
        self.watch_s = float(watch_s)
        self.nice = default_job_nice() if nice is None else int(nice)
        self._lock = threading.Lock()
        self._waiting: list[tuple[Job, Work]] = []
        self._running: list[Job] = []
        self._dead_since: dict[int, float] = {}
        self._watcher: threading.Thread | None = None
        #: The most jobs that ever ran at once (for tests and benchmarks).
        self.peak_running = 0
        #: Jobs of closed pages still winding down after their slot was given away.
        self.abandoned_running = 0

    # -- what pages ask ------------------------------------------------------------------

    def start(
        self,
        kind: str,
        work: Work,
        finish: Callable[[Any], Any],
        *,
        user: str,
        estimated_bytes: int = 0,
        alive: Callable[[], bool] | None = None,
    ) -> Job:
        """A new :class:`Job` of ``user`` for ``work``, queued; one the server cannot take
        (:class:`JobRefused`) is returned already ended, with that error.

        Parameters
        ----------
        kind
            What the job computes (``"plan"``, ``"compare"``, ``"roads"``...).
        work
            ``work(progress, should_stop)``, run in a thread of the queue.
        finish
            Turns the answer into what the page keeps (run by the page, not here).
        user
            Whose turn it takes (one running job per user).
        estimated_bytes
            Memory the work needs, roughly (:func:`estimate_job_bytes`).
        alive
            Whether the page that asked is still open (None: always).
        """
        job = Job(
            kind=kind,
            stop=threading.Event(),
            finish=finish,
            user=user,
            estimated_bytes=int(estimated_bytes),
            alive=alive,
        )
        try:
            self.submit(job, work)
        except JobRefused as exc:
            self._end(job, exc)
        return job

    def submit(self, job: Job, work: Work) -> Job:
        """Queue ``work(progress, should_stop)`` as ``job``; it starts as soon as it may.

        Raises
        ------
        JobRefused
            When the job's ``estimated_bytes`` exceed the memory free now.
        """
        free = self._available()
        if job.estimated_bytes > free:
            raise JobRefused(
                f"This job would need about {_mb(job.estimated_bytes)} of memory, but the "
                f"server has {_mb(free)} free. Use fewer customers or candidate sites, or run "
                "it on a bigger machine with `planner run`."
            )
        with self._lock:
            job.state = "waiting"
            self._waiting.append((job, work))
            self._dispatch()
        self._ensure_watcher()
        return job

    def position(self, job: Job) -> int:
        """Place of a waiting job in line (1: next to start); 0 when it is not waiting."""
        with self._lock:
            for i, (queued, _work) in enumerate(self._waiting, start=1):
                if queued is job:
                    return i
        return 0

    def cancel(self, job: Job) -> None:
        """Stop ``job``: a waiting one leaves the line at once; a running one is asked to stop
        (the engine keeps the best answer so far, and the slot is free when it returns)."""
        job.stop.set()
        with self._lock:
            for i, (queued, _work) in enumerate(self._waiting):
                if queued is job:
                    del self._waiting[i]
                    self._end(job, JobStopped("Stopped while waiting in line; nothing was run."))
                    self._dispatch()
                    break

    @property
    def running(self) -> list[Job]:
        """The jobs running now."""
        with self._lock:
            return list(self._running)

    @property
    def waiting(self) -> list[Job]:
        """The jobs waiting, first in line first."""
        with self._lock:
            return [job for job, _work in self._waiting]

    # -- inside ---------------------------------------------------------------------------

    def _end(self, job: Job, error: BaseException | None = None) -> None:
        if error is not None:
            job.error = error
        job.state = "done"
        self._dead_since.pop(id(job), None)
        job.finished.set()

    def _log(self, event: str, job: Job) -> None:
        """One diagnostics line (call with the lock held); see :data:`QUEUE_LOG_ENV_VAR`."""
        if path := os.environ.get(QUEUE_LOG_ENV_VAR):
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(
                    f"{time.time():.3f}\t{event}\t{job.user}\t{job.kind}\t{len(self._running)}\n"
                )

    def _dispatch(self) -> None:
        """Start waiting jobs while slots are free (call with the lock held)."""
        busy_users = {job.user for job in self._running}
        i = 0
        while i < len(self._waiting) and len(self._running) < self.max_jobs:
            job, work = self._waiting[i]
            if job.user in busy_users:
                i += 1
                continue
            reserved = sum(r.estimated_bytes for r in self._running)
            if self._running and job.estimated_bytes > self._available() - reserved:
                i += 1  # waits until running work has freed memory
                continue
            del self._waiting[i]
            busy_users.add(job.user)
            self._running.append(job)
            self.peak_running = max(self.peak_running, len(self._running))
            job.state = "running"
            job.started = time.monotonic()
            self._log("start", job)
            threading.Thread(
                target=self._run, args=(job, work), name=f"planner-{job.kind}", daemon=True
            ).start()

    def _run(self, job: Job, work: Work) -> None:
        error: BaseException | None = None
        if self.nice > 0:
            lower_thread_priority(self.nice)
        try:
            job.value = work(job.progress, job.stop.is_set)
        except Exception as exc:  # the page shows it
            error = exc
        finally:
            with self._lock:
                if any(r is job for r in self._running):
                    self._running = [r for r in self._running if r is not job]
                    self._log("end", job)
                    self._end(job, error)
                    self._dispatch()
                else:  # abandoned: its slot was given away already
                    self.abandoned_running -= 1
                    self._log("end-abandoned", job)

    def _abandon(self, job: Job) -> None:
        """The page of ``job`` was closed: stop it and free its place or slot now.

        A running job is asked to stop (``should_stop``) and ends at its next progress report
        (:attr:`Job.abandoned`); its slot goes to the next job at once, so a step that reports
        nothing for a while (snapping thousands of points) cannot hold the slot.
        """
        job.abandoned.set()
        job.stop.set()
        stopped = JobStopped("stopped: the page that asked for it was closed")
        with self._lock:
            self._log("abandon", job)
            if any(r is job for r in self._running):
                self._running = [r for r in self._running if r is not job]
                self.abandoned_running += 1
                self._end(job, stopped)
                self._dispatch()
                return
        self.cancel(job)

    def _ensure_watcher(self) -> None:
        with self._lock:
            if self._watcher is not None and self._watcher.is_alive():
                return
            self._watcher = threading.Thread(
                target=self._watch, name="planner-queue-watch", daemon=True
            )
            self._watcher.start()

    def _watch(self) -> None:
        """Stop the jobs of closed pages; ends when nothing is queued or running."""
        while True:
            time.sleep(self.watch_s)
            with self._lock:
                jobs = [job for job, _work in self._waiting] + list(self._running)
                if not jobs:
                    self._watcher = None
                    return
            now = time.monotonic()
            for job in jobs:
                if job.alive is None:
                    continue
                try:
                    alive = bool(job.alive())
                except Exception:  # a session that is gone cannot be asked
                    alive = False
                if alive:
                    self._dead_since.pop(id(job), None)
                    continue
                since = self._dead_since.setdefault(id(job), now)
                if now - since >= self.grace_s and not job.stop.is_set():
                    logger.info("stopping %s's %s job: its page was closed", job.user, job.kind)
                    self._abandon(job)
