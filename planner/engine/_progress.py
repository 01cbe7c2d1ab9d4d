"""Progress reporting of long work, and stopping a solve (internal)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from planner.models import SolveProgress

logger = logging.getLogger("planner.engine")

#: ``progress(message, fraction)``: ``fraction`` runs from 0 to 1.
ProgressCallback = Callable[[str, float], None]

#: ``solve_progress(report)``: every :class:`~planner.models.SolveProgress` of a running solve
#: (incumbent, proven bound, gap), as the model sends it.
SolveProgressCallback = Callable[[SolveProgress], None]

#: ``should_stop()``: polled during a solve; True ends it with the best answer found so far.
StopCallback = Callable[[], bool]

#: Seconds between two bound/gap lines sent to a ``progress(message, fraction)`` callback.
BOUND_LINE_INTERVAL_S = 0.5


def log_progress(message: str, fraction: float) -> None:
    """The default progress callback: log at INFO level."""
    logger.info("%3.0f%% %s", 100 * fraction, message)


def scaled(report: ProgressCallback, lo: float, hi: float) -> ProgressCallback:
    """A progress callback that maps 0..1 onto ``lo..hi`` of ``report``."""

    def inner(message: str, fraction: float) -> None:
        report(message, lo + (hi - lo) * fraction)

    return inner


def bound_line(update: SolveProgress, describe: Callable[[float], str]) -> str:
    """``"bound X, best Y, gap Z %"`` of a solve's progress, values written by ``describe``."""
    best = describe(update.objective) if math.isfinite(update.objective) else "none yet"
    bound = describe(update.bound) if math.isfinite(update.bound) else "not yet known"
    gap = f"{100 * update.gap:.2f} %" if math.isfinite(update.gap) else "unknown"
    return f"bound {bound}, best {best}, gap {gap}"


class SolveWatch:
    """Turns a model's :class:`~planner.models.SolveProgress` reports into progress lines.

    Every report goes to ``solve_progress``; a ``"<what>: bound X, best Y, gap Z %"`` line goes
    to ``report`` at most every :data:`BOUND_LINE_INTERVAL_S` seconds (and whenever the gap
    closes), with a fraction from 0 to 1 that follows the time limit. The last report is kept
    in :attr:`last`.

    Parameters
    ----------
    report
        ``progress(message, fraction)`` callback.
    what
        What is being solved, e.g. ``"Solving the in-house layout"``.
    describe
        Writes an objective value for people, e.g. ``"12.4 min average drive"``.
    time_limit_s
        The solve's time limit (for the fraction).
    solve_progress
        Also receives every raw report, or None.
    """

    def __init__(
        self,
        report: ProgressCallback,
        what: str,
        describe: Callable[[float], str],
        time_limit_s: float,
        solve_progress: SolveProgressCallback | None = None,
    ) -> None:
        self.report = report
        self.what = what
        self.describe = describe
        self.time_limit_s = time_limit_s
        self.solve_progress = solve_progress
        self.last: SolveProgress | None = None
        self._sent = -math.inf

    def __call__(self, update: SolveProgress) -> None:
        self.last = update
        if self.solve_progress is not None:
            self.solve_progress(update)
        now = time.monotonic()
        if now - self._sent < BOUND_LINE_INTERVAL_S and update.gap > 0:
            return
        self._sent = now
        fraction = min(1.0, update.elapsed_s / self.time_limit_s) if self.time_limit_s else 0.0
        self.report(f"{self.what}: {bound_line(update, self.describe)}", fraction)
