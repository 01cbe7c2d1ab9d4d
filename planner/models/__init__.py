"""Location models built from a cost matrix (customers x candidates, seconds, inf = unreachable).

Every model returns a frozen :class:`Solution` saying which candidates open, how customers are
assigned, the objective, a proven lower bound and gap, the solve time and the solver used.
"""

from __future__ import annotations

from planner.models._base import Solution
from planner.models.coverage import max_coverage, set_cover
from planner.models.fixed_charge import capacitated_p_median, fixed_charge
from planner.models.p_center import p_center
from planner.models.p_median import p_median
from planner.models.two_tier import two_tier

__all__ = [
    "Solution",
    "capacitated_p_median",
    "fixed_charge",
    "max_coverage",
    "p_center",
    "p_median",
    "set_cover",
    "two_tier",
]
