"""The result of a phased plan: which sites open in which year, who moves, at what price.

:func:`planner.engine.phases.plan_phases` returns a :class:`PhasedPlan`; ``planner phases``
writes its tables as ``phases.csv``, ``moves.csv`` and ``phases_summary.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from planner.models.multi_period import MultiPeriodSolution

__all__ = ["PHASES_COLUMNS", "SUMMARY_COLUMNS", "PhasedPlan"]

PHASES_COLUMNS: tuple[str, ...] = ("year", "site_id", "lat", "lon", "action", "name")
SUMMARY_COLUMNS: tuple[str, ...] = (
    "year",
    "workshops",
    "mean_travel_min",
    "objective",
    "gap",
    "objective_if_replanned",
    "jobs",
    "moves",
    "optimal",
    "fixed_cost_eur",
)


@dataclass(frozen=True)
class PhasedPlan:
    """A plan over years 1..N whose sites, once opened, stay open.

    Attributes
    ----------
    phases
        :data:`PHASES_COLUMNS`: every open site in every year, ``action`` ``open`` in the year
        it opens and ``keep`` afterwards.
    moves
        Customers that change site (see :mod:`planner.register.stability`): ``year``,
        ``customer_id``, ``from_site``, ``to_site``, ``minutes_before``, ``minutes_after``,
        ``gain_min``, ``reason``.
    summary
        :data:`SUMMARY_COLUMNS` per year. ``objective`` and ``objective_if_replanned`` are
        forecast jobs x travel minutes (nearest open site); ``gap`` is the proven relative gap
        of the whole multi-year plan; ``mean_travel_min`` is job-weighted over the stable
        assignments actually made.
    assignments
        ``year``, ``customer_id``, ``site_id``, ``travel_min``, ``jobs`` per customer and year.
    forecast
        The forecast whose yearly jobs are the demand weights.
    solution
        The multi-period model's solution (proven gap, per-year objectives).
    warnings
        Input warnings the user must see with the plan.
    """

    phases: pd.DataFrame
    moves: pd.DataFrame
    summary: pd.DataFrame
    assignments: pd.DataFrame
    forecast: pd.DataFrame
    solution: MultiPeriodSolution
    warnings: tuple[str, ...] = ()

    @property
    def price_of_consistency(self) -> float:
        """Extra job-minutes of keeping sites open against re-planning every year, as a share."""
        replanned = float(self.summary["objective_if_replanned"].sum())
        total = float(self.summary["objective"].sum())
        return (total - replanned) / replanned if replanned > 0 else 0.0
