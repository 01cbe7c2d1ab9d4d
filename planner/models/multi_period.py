"""Multi-period p-median: which sites open in which year, once open always open.

For years ``t = 1..T`` with ``p_t`` sites (non-decreasing) and demand weights ``w[t, i]``::

    min  sum_t sum_i sum_j w[t, i] * cost[i, j] * x[i, j, t]
    s.t. sum_j x[i, j, t] = 1                  every customer served every year
         x[i, j, t] <= y[j, t]                 only by an open site
         sum_j y[j, t] = p_t                   p_t sites in year t
         y[j, t] <= y[j, t + 1]                a site once opened stays open
         y binary, x >= 0

Solved exactly with HiGHS (highspy) when the model has at most ``max_pairs`` assignment
variables, started from a heuristic plan (each year's own p-median optimum, made nested
backwards from the last year and forwards from the first; the better one). A proven lower
bound is always reported: the sum of each year's own p-median lower bound (each year solved
alone can only be better) or the MIP's bound, whichever is higher; so the gap is proven even
when the MIP is skipped or stopped by the time limit.

The same per-year solves give ``replanned_objective``: what re-planning every year from
scratch would achieve, and so the price of keeping sites open (consistency).
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from planner.errors import InfeasibleError, InputError
from planner.models._base import (
    OPTIMALITY_GAP,
    assign_nearest,
    check_cost,
    check_required_excluded,
    check_time_limit,
    highs_version,
    relative_gap,
)
from planner.models._mip import solve_mip
from planner.models.p_median import p_median

logger = logging.getLogger(__name__)

__all__ = ["MultiPeriodSolution", "multi_period_p_median"]

#: Largest number of (customer, site, year) assignment variables given to the exact MIP.
DEFAULT_MAX_PAIRS = 400_000


@dataclass(frozen=True)
class MultiPeriodSolution:
    """Result of :func:`multi_period_p_median`.

    Attributes
    ----------
    open_year
        Per candidate column: the first year (1-based) it is open, 0 when it never opens.
    open_per_period
        Sorted open columns of each year.
    assignment
        ``(T, n)``: nearest open column of each customer in each year (-1 with zero weight
        and no reachable site).
    objective
        Total over the years of weight x travel seconds.
    period_objective
        The objective of each year.
    replanned_objective
        Each year's own p-median objective (re-planning from scratch every year).
    replanned_optimal
        Whether each of those per-year solves is proven optimal.
    lower_bound
        Proven lower bound on the optimal total.
    gap
        Relative gap ``(objective - lower_bound) / objective``.
    optimal
        True when the gap is at most 1e-6.
    status
        ``optimal``, ``time_limit``, ``heuristic`` (MIP skipped: too large) ...
    solve_time_s, solver
        Wall-clock time and method.
    extras
        ``mip_pairs`` (assignment variables of the MIP, 0 when skipped), ``start_objective``.
    """

    open_year: np.ndarray
    open_per_period: tuple[np.ndarray, ...]
    assignment: np.ndarray
    objective: float
    period_objective: np.ndarray
    replanned_objective: np.ndarray
    replanned_optimal: np.ndarray
    lower_bound: float
    gap: float
    optimal: bool
    status: str
    solve_time_s: float
    solver: str
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def price_of_consistency(self) -> float:
        """Objective minus the sum of the re-planned objectives (>= 0 up to solver gaps)."""
        return float(self.objective - self.replanned_objective.sum())


def _period_cost(cost: np.ndarray, w: np.ndarray, open_sites: np.ndarray) -> float:
    if open_sites.size == 0:
        return float("inf")
    best = cost[:, open_sites].min(axis=1)
    used = w > 0
    return float(np.sum(w[used] * best[used]))


def _nested_backward(
    cost: np.ndarray, weights: np.ndarray, p: Sequence[int], last: np.ndarray, req: np.ndarray
) -> list[np.ndarray]:
    """From the last year's sites, drop greedily year by year (cheapest drop first)."""
    plan = [np.sort(last)]
    current = list(last)
    for t in range(len(p) - 2, -1, -1):
        while len(current) > p[t]:
            best, best_j = np.inf, None
            for j in current:
                if j in req:
                    continue
                rest = np.array([k for k in current if k != j])
                value = _period_cost(cost, weights[t], rest)
                if value < best:
                    best, best_j = value, j
            if best_j is None:
                break
            current.remove(best_j)
        plan.insert(0, np.sort(np.array(current, dtype=np.int64)))
    return plan


def _nested_forward(
    cost: np.ndarray, weights: np.ndarray, p: Sequence[int], first: np.ndarray, exc: np.ndarray
) -> list[np.ndarray]:
    """From the first year's sites, add greedily year by year (best addition first)."""
    m = cost.shape[1]
    plan = [np.sort(first)]
    current = list(first)
    for t in range(1, len(p)):
        while len(current) < p[t]:
            best, best_j = np.inf, None
            for j in range(m):
                if j in current or j in exc:
                    continue
                value = _period_cost(cost, weights[t], np.array([*current, j]))
                if value < best:
                    best, best_j = value, j
            if best_j is None:
                break
            current.append(best_j)
        plan.append(np.sort(np.array(current, dtype=np.int64)))
    return plan


def _build_mip(
    cost: np.ndarray,
    weights: np.ndarray,
    p: Sequence[int],
    req: np.ndarray,
    exc: np.ndarray,
) -> tuple[dict[str, Any], list[tuple[int, np.ndarray, np.ndarray]]]:
    m = cost.shape[1]
    horizon = len(p)
    n_y = m * horizon
    blocks: list[tuple[int, np.ndarray, np.ndarray]] = []  # (t, row i, cols j) per x block
    c_parts = [np.zeros(n_y)]
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    lower: list[np.ndarray] = []
    upper: list[np.ndarray] = []
    n_rows = 0
    offset = n_y
    allowed = np.ones(m, dtype=bool)
    allowed[exc] = False
    for t in range(horizon):
        for i in np.flatnonzero(weights[t] > 0):
            js = np.flatnonzero(np.isfinite(cost[i]) & allowed)
            k = js.size
            xs = offset + np.arange(k)
            c_parts.append(weights[t, i] * cost[i, js])
            # sum_j x = 1
            rows.append(np.full(k, n_rows))
            cols.append(xs)
            vals.append(np.ones(k))
            lower.append(np.array([1.0]))
            upper.append(np.array([1.0]))
            n_rows += 1
            # x - y <= 0
            rows.append(np.repeat(n_rows + np.arange(k), 2))
            cols.append(np.column_stack([xs, t * m + js]).ravel())
            vals.append(np.tile([1.0, -1.0], k))
            lower.append(np.full(k, -np.inf))
            upper.append(np.zeros(k))
            n_rows += k
            blocks.append((t, np.array([i]), js))
            offset += k
    for t in range(horizon):
        rows.append(np.full(m, n_rows))
        cols.append(t * m + np.arange(m))
        vals.append(np.ones(m))
        lower.append(np.array([float(p[t])]))
        upper.append(np.array([float(p[t])]))
        n_rows += 1
    for t in range(horizon - 1):
        rows.append(np.repeat(n_rows + np.arange(m), 2))
        cols.append(np.column_stack([t * m + np.arange(m), (t + 1) * m + np.arange(m)]).ravel())
        vals.append(np.tile([1.0, -1.0], m))
        lower.append(np.full(m, -np.inf))
        upper.append(np.zeros(m))
        n_rows += m
    c = np.concatenate(c_parts)
    a = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_rows, c.size),
    )
    col_lower = np.zeros(c.size)
    col_upper = np.ones(c.size)
    col_upper[offset:] = np.inf
    for t in range(horizon):
        col_lower[t * m + req] = 1.0
        col_upper[t * m + exc] = 0.0
    integer = np.zeros(c.size, dtype=bool)
    integer[:n_y] = True
    model = {
        "c": c,
        "a_matrix": a,
        "row_lower": np.concatenate(lower),
        "row_upper": np.concatenate(upper),
        "col_lower": col_lower,
        "col_upper": col_upper,
        "integer": integer,
    }
    return model, blocks


def _start_vector(
    plan: list[np.ndarray],
    cost: np.ndarray,
    size: int,
    m: int,
    blocks: list[tuple[int, np.ndarray, np.ndarray]],
) -> np.ndarray:
    x = np.zeros(size)
    for t, sites in enumerate(plan):
        x[t * m + sites] = 1.0
    offset = m * len(plan)
    for t, rows, js in blocks:
        i = int(rows[0])
        open_js = np.isin(js, plan[t])
        if open_js.any():
            k = np.flatnonzero(open_js)[np.argmin(cost[i, js[open_js]])]
            x[offset + k] = 1.0
        offset += js.size
    return x


def multi_period_p_median(
    cost: np.ndarray,
    p_per_period: Sequence[int],
    weights_per_period: np.ndarray | Sequence[np.ndarray],
    *,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> MultiPeriodSolution:
    """Choose nested site sets (once open, always open) minimising total weighted travel time.

    Parameters
    ----------
    cost
        Travel seconds, customers x candidates (``np.inf`` unreachable).
    p_per_period
        Sites open in each year; must not decrease (sites never close).
    weights_per_period
        ``(T, n)`` demand weights of each year (e.g. forecast jobs).
    required
        Columns open from year 1 (existing sites).
    excluded
        Columns that never open.
    time_limit
        Seconds for the whole solve (default 60); split between the per-year solves and the MIP.
    max_pairs
        Largest number of assignment variables for the exact MIP; larger instances keep the
        heuristic plan with the per-year lower bound (its gap is still proven).

    Returns
    -------
    MultiPeriodSolution

    Raises
    ------
    InfeasibleError
        ``p`` decreasing, out of range, fewer than the required sites, or a year in which some
        customer with demand cannot reach any allowed site.
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    w = np.atleast_2d(np.asarray(weights_per_period, dtype=float))
    if w.shape[1] != n:
        raise InputError(f"weights_per_period must have {n} columns (one per customer)")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise InputError("weights_per_period must be finite and >= 0", field="weights")
    p = [int(v) for v in p_per_period]
    horizon = len(p)
    if horizon != w.shape[0]:
        raise InputError(f"{horizon} values of p but {w.shape[0]} years of weights")
    if horizon == 0:
        raise InputError("give at least one year", field="p_per_period")
    req, exc = check_required_excluded(required, excluded, m)
    if any(b < a for a, b in itertools.pairwise(p)):
        raise InfeasibleError(
            f"sites per year {p} decrease; sites once opened stay open, so give a "
            "non-decreasing number per year"
        )
    if p[0] < max(1, req.size) or p[-1] > m - exc.size:
        raise InfeasibleError(
            f"sites per year {p} must lie between {max(1, req.size)} (required sites) and "
            f"{m - exc.size} (usable candidates)"
        )
    limit = check_time_limit(time_limit)
    share = limit / (2.0 * horizon)
    per_year = [
        p_median(cost, p[t], w[t], required=req, excluded=exc, time_limit=share)
        for t in range(horizon)
    ]
    replanned = np.array([s.objective for s in per_year])
    year_bound = float(sum(s.lower_bound for s in per_year))
    starts = [
        _nested_backward(cost, w, p, np.asarray(per_year[-1].open), req),
        _nested_forward(cost, w, p, np.asarray(per_year[0].open), exc),
    ]
    values = [sum(_period_cost(cost, w[t], s[t]) for t in range(horizon)) for s in starts]
    plan = starts[int(np.argmin(values))]
    objective = float(min(values))
    start_objective = objective
    bound = year_bound
    status = "heuristic"
    solver = f"nested per-year p-median + {highs_version()} bound"
    pairs = int(sum(np.isfinite(cost[w[t] > 0]).sum() for t in range(horizon)))
    mip_pairs = 0
    if relative_gap(objective, bound) > OPTIMALITY_GAP and pairs <= max_pairs:
        model, blocks = _build_mip(cost, w, p, req, exc)
        start = _start_vector(plan, cost, model["c"].size, m, blocks)
        remaining = max(limit - (time.perf_counter() - t0), 1.0)
        res = solve_mip(**model, time_limit=remaining, start=start)
        mip_pairs = pairs
        solver = highs_version()
        status = res.status
        if res.x is not None and res.objective < objective - 1e-9 * max(1.0, objective):
            y = res.x[: m * horizon].reshape(horizon, m) > 0.5
            plan = [np.flatnonzero(y[t]) for t in range(horizon)]
            objective = sum(_period_cost(cost, w[t], plan[t]) for t in range(horizon))
        if np.isfinite(res.bound):
            bound = max(bound, float(res.bound))
    elif relative_gap(objective, bound) <= OPTIMALITY_GAP:
        status = "optimal"
    bound = min(bound, objective)
    gap = relative_gap(objective, bound)
    optimal = gap <= OPTIMALITY_GAP
    if optimal:
        status = "optimal"
    open_year = np.zeros(m, dtype=np.int64)
    for t in range(horizon - 1, -1, -1):
        open_year[plan[t]] = t + 1
    assignment = np.vstack([assign_nearest(cost, plan[t]) for t in range(horizon)])
    period = np.array([_period_cost(cost, w[t], plan[t]) for t in range(horizon)])
    logger.info(
        "multi-period p-median: %s, objective %.6g, bound %.6g, gap %.3g",
        status,
        objective,
        bound,
        gap,
    )
    return MultiPeriodSolution(
        open_year=open_year,
        open_per_period=tuple(np.sort(s).astype(np.int64) for s in plan),
        assignment=assignment,
        objective=float(objective),
        period_objective=period,
        replanned_objective=replanned,
        replanned_optimal=np.array([s.optimal for s in per_year]),
        lower_bound=float(bound),
        gap=float(gap),
        optimal=bool(optimal),
        status=status,
        solve_time_s=time.perf_counter() - t0,
        solver=solver,
        extras={"mip_pairs": mip_pairs, "start_objective": start_objective},
    )
