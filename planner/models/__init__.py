"""Location models built from a cost matrix (customers x candidates, seconds, inf = unreachable).

Every model returns a frozen :class:`Solution` saying which candidates open, how customers are
assigned, the objective, a proven lower bound and gap, whether it is proven optimal, the solve
time and the solver used. Every entry point takes keyword-only ``required`` (existing sites that
stay open), ``excluded`` (never open) and ``time_limit`` (seconds, default 60), and raises
:class:`~planner.errors.InfeasibleError` before solving when the specification cannot have a
solution, with a message that says why.

==========================  ==========================================================
:func:`p_median`            p sites, least demand-weighted travel time
:func:`max_coverage`        p sites, most demand within T (minimises uncovered demand)
:func:`set_cover`           fewest sites with all demand (or a share) within T
:func:`p_center`            p sites, least worst travel time (ties: least weighted time)
:func:`fixed_charge`        fixed costs + value of travel time; optional capacities
:func:`capacitated_p_median`  p sites with capacities (single sourcing)
:func:`sized_fixed_charge`  sites and their sizes (fixed cost, capacity per size) together
:func:`two_tier`            one office + workshops, with office-workshop deliveries
:func:`max_capture`         most customers won from competitors (MNL / Huff demand): p
                            sites, fewest sites for a share, or most profit (maximises)
:func:`max_capture_partners`  the same questions over shops that compete unless contracted
                            (outsourcing partners): a linear share, exact by sorting
:func:`max_capture_mixed`     own sites and partner shops together (two-tier with partners):
                            partners compete unless contracted; Haase's MILP in HiGHS
==========================  ==========================================================

Median-type models (p-median, fixed-charge, two-tier) share one solve path: greedy + fast
interchange, a Lagrangian bound with guided restarts, then an exact HiGHS model on the pairs
that survive reduced-cost tests (see :mod:`planner.models._median`).
"""

from __future__ import annotations

from planner.models._base import Solution, SolveProgress
from planner.models.coverage import max_coverage, set_cover
from planner.models.fixed_charge import capacitated_p_median, fixed_charge, sized_fixed_charge
from planner.models.market import max_capture
from planner.models.market_mixed import max_capture_mixed
from planner.models.market_partners import max_capture_partners
from planner.models.multi_period import multi_period_p_median as multi_period_p_median
from planner.models.p_center import p_center
from planner.models.p_median import p_median
from planner.models.two_tier import two_tier

__all__ = [
    "Solution",
    "SolveProgress",
    "capacitated_p_median",
    "fixed_charge",
    "max_capture",
    "max_capture_mixed",
    "max_capture_partners",
    "max_coverage",
    "p_center",
    "p_median",
    "set_cover",
    "sized_fixed_charge",
    "two_tier",
]
