"""Location models built from a cost matrix (customers x candidates, seconds, inf = unreachable).

Every model returns a frozen :class:`Solution` saying which candidates open, how customers are
assigned, the objective, a proven lower bound and gap, the solve time and the solver used.
"""

from __future__ import annotations

from planner.models._base import Solution
from planner.models.p_median import p_median

__all__ = ["Solution", "p_median"]
