"""Long work of one user running outside the page script: progress, Stop, answer or error.

A :class:`Job` is what a page polls: its latest progress line, a ``stop`` event the engine
polls as ``should_stop``, and, once ``finished`` is set, its ``value`` or ``error``. The job
never calls Streamlit; the page turns its answer into session state. No Streamlit here.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from planner.errors import PlannerError

__all__ = [
    "Job",
    "JobStopped",
    "Progress",
    "StopCallback",
    "error_text",
    "stop_at_progress",
    "waiting_text",
]

#: ``progress(message, fraction)``; ``fraction`` runs from 0 to 1.
Progress = Callable[[str, float], None]
#: ``should_stop()``: True ends a solve with the best answer found so far.
StopCallback = Callable[[], bool]


class JobStopped(PlannerError, RuntimeError):
    """A job ended before its answer: stopped while waiting, or its page was closed."""


@dataclasses.dataclass
class Job:
    """Work of one session running in a background thread (the app starts it with ``start_job``).

    Attributes
    ----------
    kind
        ``"plan"`` or ``"compare"``: the session-state key its answer goes to.
    stop
        Set by the Stop button; the engine polls it as ``should_stop``.
    finish
        Builds the session-state entry from the answer (run in the script thread).
    message, fraction
        The latest progress line (with bound, best and gap while solving) and how far.
    value, error
        The answer, or the error it ended with.
    user
        Who asked (a signed-in user's id, or the session's); the queue runs at most one job
        per user at a time.
    estimated_bytes
        Memory the work is expected to need (see ``planner.hosting.queue.estimate_job_bytes``).
    alive
        Whether the page that asked is still open (None: always); the queue stops the job of
        a closed tab.
    state
        ``"waiting"``, ``"running"`` or ``"done"`` (set by the queue).
    abandoned
        Set by the queue when the page was closed: the job ends at its next progress report.
    """

    kind: str
    stop: threading.Event
    finish: Callable[[Any], dict[str, Any]]
    message: str = "Starting…"
    fraction: float = 0.0
    value: Any = None
    error: BaseException | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)
    finished: threading.Event = dataclasses.field(default_factory=threading.Event)
    user: str = ""
    estimated_bytes: int = 0
    alive: Callable[[], bool] | None = None
    state: str = "waiting"
    abandoned: threading.Event = dataclasses.field(default_factory=threading.Event)

    def progress(self, message: str, fraction: float) -> None:
        """The ``progress(message, fraction)`` callback given to the engine.

        Raises
        ------
        JobStopped
            Once the job is ``abandoned`` (its page was closed): work that does not poll
            ``should_stop`` (a travel-time matrix being built) ends at its next report.
        """
        if self.abandoned.is_set():
            raise JobStopped("stopped: the page that asked for it was closed")
        self.message = message
        self.fraction = min(max(float(fraction), 0.0), 1.0)

    @property
    def done(self) -> bool:
        """Whether the work has ended (with an answer or an error)."""
        return self.finished.is_set()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the job started (or was created, while it waits)."""
        return time.monotonic() - self.started

    def status_text(self) -> str:
        """The line under a running job's progress bar: stopping, or working for how long."""
        if self.stop.is_set():
            return f"Stopping… keeping the best answer found so far ({self.elapsed_s:.0f} s)"
        return f"Working for {self.elapsed_s:.0f} s"


def stop_at_progress(
    compute: Callable[[Progress], Any],
) -> Callable[[Progress, StopCallback], Any]:
    """Queue work from an engine call that reports progress but takes no ``should_stop`` (a
    K-curve, robustness cases, phases): Stop, or a closed tab, ends it at its next progress
    report with :class:`JobStopped`, without an answer.

    Parameters
    ----------
    compute
        ``compute(progress)``: the engine call.

    Returns
    -------
    Callable
        ``work(progress, should_stop)`` for :meth:`planner.hosting.queue.JobQueue.submit`.
    """

    def work(progress: Progress, should_stop: StopCallback) -> Any:
        def report(message: str, fraction: float) -> None:
            if should_stop():
                raise JobStopped("Stopped; nothing was kept (press the button again to redo).")
            progress(message, fraction)

        return compute(report)

    return work


def error_text(error: BaseException) -> str:
    """What a page says about a job that ended with ``error``: a planner error in its own
    words (they say what to do), anything else with the name of its type."""
    if isinstance(error, PlannerError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def waiting_text(place: int) -> str:
    """The progress line of a job waiting in line (``place`` 0: about to start)."""
    return f"Waiting, number {place} in line" if place else "Starting…"
