"""Progress reporting of long work (internal)."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger("planner.engine")

#: ``progress(message, fraction)``: ``fraction`` runs from 0 to 1.
ProgressCallback = Callable[[str, float], None]


def log_progress(message: str, fraction: float) -> None:
    """The default progress callback: log at INFO level."""
    logger.info("%3.0f%% %s", 100 * fraction, message)


def scaled(report: ProgressCallback, lo: float, hi: float) -> ProgressCallback:
    """A progress callback that maps 0..1 onto ``lo..hi`` of ``report``."""

    def inner(message: str, fraction: float) -> None:
        report(message, lo + (hi - lo) * fraction)

    return inner
