"""Least travel within a budget for fixed costs: sites whose fixed costs fit, least travel.

When sites cost different amounts (each its own rent), the least-travel ``p`` sites may not be
affordable while another set is, and three cheap sites may serve customers better or worse
than two dear ones. This model adds the knapsack row ``sum_j fixed_cost[j] y_j <= budget`` to
the p-median (assignment formulation, solved by HiGHS), with exactly ``p`` sites or, with
``p = None``, as many as fit (at least one); the answer is the least travel among the
affordable sets, with HiGHS's proven gap.
Customers that reach no allowed candidate are left unassigned (``-1``), as
``p_median(allow_unreachable=True)`` does.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from planner.errors import InfeasibleError
from planner.models._base import (
    Solution,
    StopCallback,
    check_cost,
    check_p,
    check_required_excluded,
    check_time_limit,
    check_weights,
    format_number,
    highs_version,
    make_solution,
)
from planner.models._mip import solve_mip

__all__ = ["budget_p_median"]


def budget_p_median(
    cost: np.ndarray,
    p: int | None,
    fixed_cost: np.ndarray,
    budget: float,
    weights: np.ndarray | None = None,
    *,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Open exactly ``p`` sites whose fixed costs sum to at most ``budget``, least travel.

    Parameters
    ----------
    cost
        Travel seconds, customers x candidates (``inf``: unreachable).
    p
        Number of sites to open, or None for any number that fits (at least one).
    fixed_cost
        Fixed cost of each candidate (money per year).
    budget
        Most the open sites' fixed costs may sum to.
    weights
        Demand of each customer (default 1).
    required, excluded
        Columns that must / must not open.
    time_limit
        Seconds for HiGHS (default 60).
    should_stop
        Polled inside HiGHS; True ends the solve with the best answer so far.

    Returns
    -------
    Solution
        ``objective`` in weight x seconds; ``extras["fixed_cost_total"]``.

    Raises
    ------
    InfeasibleError
        When no ``p`` allowed sites (required ones included; one with ``p = None``) fit the
        budget.
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    if p is not None:
        p = check_p(p, m, req, exc)
    limit = check_time_limit(time_limit)
    f = np.asarray(fixed_cost, dtype=float).reshape(-1)
    if f.size != m or not np.all(np.isfinite(f)):
        raise ValueError(f"fixed_cost must hold {m} finite numbers")
    allowed = np.ones(m, dtype=bool)
    allowed[exc] = False
    free = allowed.copy()
    free[req] = False
    fewest = max(1, req.size) if p is None else p
    cheapest = float(f[req].sum() + np.sort(f[free])[: fewest - req.size].sum())
    if cheapest > budget * (1 + 1e-12):
        raise InfeasibleError(
            f"the {fewest} cheapest allowed sites cost {format_number(cheapest)}, above the "
            f"budget {format_number(budget)}"
        )
    reach = np.isfinite(cost) & allowed[None, :]
    rows = np.flatnonzero(reach.any(axis=1))
    pr, pc = np.nonzero(reach[rows])
    pr_global = rows[pr]
    k = pr.size
    # columns: y (m), x (k); rows: assignment (len(rows)), linking x <= y (k), count, budget
    c = np.concatenate([np.zeros(m), w[pr_global] * cost[pr_global, pc]])
    n_assign = rows.size
    xcol = m + np.arange(k)
    a_rows = np.concatenate(
        [pr, n_assign + np.arange(k), n_assign + np.arange(k), np.full(m, n_assign + k)]
    )
    a_cols = np.concatenate([xcol, xcol, pc, np.arange(m)])
    a_vals = np.concatenate([np.ones(k), np.ones(k), -np.ones(k), np.ones(m)])
    a_rows = np.concatenate([a_rows, np.full(m, n_assign + k + 1)])
    a_cols = np.concatenate([a_cols, np.arange(m)])
    a_vals = np.concatenate([a_vals, f])
    a_matrix = sp.csc_matrix((a_vals, (a_rows, a_cols)), shape=(n_assign + k + 2, m + k))
    count_lower, count_upper = (float(fewest), float(m)) if p is None else (float(p), float(p))
    row_lower = np.concatenate([np.ones(n_assign), np.full(k, -np.inf), [count_lower, -np.inf]])
    row_upper = np.concatenate([np.ones(n_assign), np.zeros(k), [count_upper, float(budget)]])
    col_lower = np.zeros(m + k)
    col_lower[req] = 1.0
    col_upper = np.ones(m + k)
    col_upper[exc] = 0.0
    integer = np.zeros(m + k, dtype=bool)
    integer[:m] = True
    result = solve_mip(
        c,
        a_matrix,
        row_lower=row_lower,
        row_upper=row_upper,
        col_lower=col_lower,
        col_upper=col_upper,
        integer=integer,
        time_limit=limit,
        should_stop=should_stop,
    )
    if result.x is None:
        raise InfeasibleError(
            f"no {fewest}{'+' if p is None else ''} sites within the budget "
            f"{format_number(budget)} were found (HiGHS: {result.status})"
        )
    open_sites = np.flatnonzero(result.x[:m] > 0.5)
    sub = np.where(np.isfinite(cost[:, open_sites]), cost[:, open_sites], np.inf)
    assignment = np.full(n, -1, dtype=np.int64)
    ok = np.isfinite(sub).any(axis=1) if open_sites.size else np.zeros(n, dtype=bool)
    assignment[ok] = open_sites[np.argmin(sub[ok], axis=1)]
    objective = float(np.sum(w[ok] * cost[ok, assignment[ok]]))
    status = "optimal" if result.optimal else ("stopped" if result.status == "stopped" else "limit")
    return make_solution(
        "budget_p_median",
        open_sites=open_sites,
        assignment=assignment,
        objective=objective,
        lower_bound=min(float(result.bound), objective),
        status=status,
        solver=f"HiGHS {highs_version()}",
        started=t0,
        extras={"fixed_cost_total": float(f[open_sites].sum()), "budget": float(budget)},
    )
