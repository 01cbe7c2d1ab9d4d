"""Fixed-charge location (the number of sites follows from costs) and capacitated variants.

Objective, in money per year::

    sum_{j open} fixed_cost[j] + time_value * sum_i weights[i] * cost[i, site(i)]

with ``cost`` in seconds, ``weights`` in jobs (or visits) per year, ``time_value`` in money per
weighted second (e.g. value of an hour / 3600 x trips per job) and ``fixed_cost`` in money per
year.

Approach
--------
Uncapacitated
    the same solve path as the p-median (greedy add/drop/swap local search, Lagrangian bound,
    reduced exact MIP with HiGHS); scales like :func:`~planner.models.p_median`.
Capacitated (``capacity`` given) and :func:`capacitated_p_median`
    single-sourcing MIP solved directly by HiGHS: binary ``x_ij`` for every reachable pair,
    ``sum_i w_i x_ij <= capacity_j y_j`` and the strengthening ``x_ij <= y_j``. It is exact but
    its size grows with n x m: a few hundred customers x a hundred candidates solve in seconds;
    beyond roughly 100,000 reachable pairs, expect the time limit to stop it with a reported gap
    (aggregate customers first, or pass ``max_travel_s`` to drop far pairs). Before the MIP,
    the model without capacities is solved: its lower bound is also a lower bound here (the
    reported bound is the larger of the two), and its open sites, with customers placed by a
    regret greedy within the capacities, are HiGHS's starting solution. So a solve stopped by
    the time limit still returns a feasible answer with a meaningful gap (2,000 x 40, p = 8,
    capacities 5 % above demand: 3.5 % gap after 30 s, where HiGHS alone stopped at 70 %).
    When that start costs no more than the relaxation's bound (the capacities do not bind) it
    is returned as proven optimal without building the MIP.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from planner.errors import InfeasibleError, InputError
from planner.models._base import (
    OPTIMALITY_GAP,
    ProgressCallback,
    ProgressReporter,
    Solution,
    StopCallback,
    assign_nearest,
    check_cost,
    check_p,
    check_required_excluded,
    check_time_limit,
    check_weights,
    format_ids,
    format_number,
    highs_version,
    make_solution,
    relative_gap,
    unreachable_rows,
)
from planner.models._median import solve_median
from planner.models._mip import solve_mip
from planner.models.p_median import p_median

logger = logging.getLogger(__name__)

#: The single-sourcing MIP is only built with at most this many customer-site pairs (when a
#: first solution exists); beyond, HiGHS's setup and presolve alone overrun interactive time
#: limits without improving the first answer (Malta demo x 500 candidates, 976,500 pairs,
#: capacities binding, 20 s limit: 29.7 s with the light presolve, 168 s with the full one,
#: the first answer unchanged; x 200, 390,600 pairs: 20.8 s). Pass ``max_travel_s`` to keep
#: fewer pairs.
MIP_MAX_PAIRS = 600_000


def _per_candidate(value: object, m: int, *, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(m, float(arr))
    arr = arr.reshape(-1)
    if arr.size != m:
        raise InputError(f"{name} has {arr.size} entries but cost has {m} candidate columns")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InputError(f"{name} must be finite and >= 0")
    return arr


def _check_reachable(cost: np.ndarray, w: np.ndarray, exc: np.ndarray) -> None:
    far = unreachable_rows(cost, exc)
    far = far[w[far] > 0]
    if far.size:
        raise InfeasibleError(
            f"{far.size} customers cannot reach any candidate site: rows {format_ids(far)}"
        )


def fixed_charge(
    cost: np.ndarray,
    fixed_cost: np.ndarray | float,
    weights: np.ndarray | None = None,
    *,
    time_value: float = 1.0,
    capacity: np.ndarray | float | None = None,
    max_travel_s: float | None = None,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Open the sites that minimise fixed costs plus the value of customer travel time.

    Parameters
    ----------
    cost
        Travel times in seconds, customers x candidates; ``np.inf`` where unreachable.
    fixed_cost
        Annual fixed cost of each candidate (money per year), scalar or one per column.
    weights
        Jobs per year of each customer (default 1 each).
    time_value
        Money per weighted second of travel (multiplies ``weights * cost``).
    capacity
        Jobs per year each candidate can handle (scalar or per column); None = uncapacitated.
        With capacities each customer is served by exactly one site (single sourcing), not
        necessarily the nearest.
    max_travel_s
        Optional cap on any customer's travel time: pairs above it are not allowed.
    required, excluded
        Candidate columns that must / must not open.
    time_limit
        Seconds for the solve (default 60).
    seed
        Accepted for interface symmetry; the solve is deterministic.
    progress
        Called with a :class:`~planner.models.SolveProgress` as the uncapacitated solve
        advances (incumbent, proven bound, gap).
    should_stop
        Polled during the solve; True stops it with the best answer so far and its proven gap
        (status ``"stopped"``).

    Returns
    -------
    Solution
        ``objective`` in money per year; ``extras`` holds ``fixed_cost_total``,
        ``travel_cost_total`` and, with capacities, ``load`` per open site.

    Raises
    ------
    InfeasibleError
        Unreachable customers, total capacity below total demand (``"capacity 1,200 < demand
        1,650"``), or a customer whose demand exceeds every reachable site's capacity.
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    limit = check_time_limit(time_limit)
    f = _per_candidate(fixed_cost, m, name="fixed_cost")
    tv = float(time_value)
    if not tv >= 0 or not np.isfinite(tv):
        raise InputError(f"time_value must be a finite number >= 0, got {time_value!r}")
    if max_travel_s is not None:
        cost = np.where(cost <= float(max_travel_s), cost, np.inf)
    _check_reachable(cost, w, exc)
    if capacity is not None:
        cap = _per_candidate(capacity, m, name="capacity")
        return _capacitated(
            "fixed_charge",
            cost,
            w,
            f,
            cap,
            p=None,
            time_value=tv,
            req=req,
            exc=exc,
            time_limit=limit,
            started=t0,
            report=ProgressReporter(progress, t0),
            should_stop=should_stop,
        )
    rows = np.flatnonzero(w > 0)
    if rows.size == 0:
        if req.size:
            open_sites = req
        else:  # one site must open: the cheapest allowed one
            f_allowed = f.copy()
            f_allowed[exc] = np.inf
            open_sites = np.array([int(np.argmin(f_allowed))])
        return make_solution(
            "fixed_charge",
            open_sites=open_sites,
            assignment=assign_nearest(cost, open_sites),
            objective=float(f[open_sites].sum()),
            lower_bound=float(f[open_sites].sum()),
            status="optimal",
            solver="trivial (no demand)",
            started=t0,
        )
    a = cost[rows] * (tv * w[rows])[:, None]
    a[~np.isfinite(cost[rows])] = np.inf
    result = solve_median(
        a,
        f,
        p=None,
        required=req,
        excluded=exc,
        time_limit=limit - (time.perf_counter() - t0),
        report=ProgressReporter(progress, t0),
        should_stop=should_stop,
    )
    assignment = assign_nearest(cost, result.open)
    served = assignment >= 0
    travel = float((tv * w[served] * cost[served, assignment[served]]).sum())
    extras = dict(result.extras)
    extras.update({"fixed_cost_total": float(f[result.open].sum()), "travel_cost_total": travel})
    return make_solution(
        "fixed_charge",
        open_sites=result.open,
        assignment=assignment,
        objective=result.objective,
        lower_bound=result.lower_bound,
        status=result.status,
        solver=result.solver,
        started=t0,
        extras=extras,
    )


def capacitated_p_median(
    cost: np.ndarray,
    p: int,
    capacity: np.ndarray | float,
    weights: np.ndarray | None = None,
    *,
    max_travel_s: float | None = None,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Open ``p`` sites minimising weighted travel time when each site has a capacity.

    Each customer is served by exactly one open site (single sourcing) and the demand a site
    serves (sum of ``weights``) may not exceed its ``capacity``. Solved exactly as a MIP; see the
    module docstring for the scale limits. ``objective`` is in weight units x seconds.
    ``progress`` and ``should_stop`` work as in :func:`~planner.models.p_median` (the bound is
    the uncapacitated relaxation's, then HiGHS's).

    Raises
    ------
    InfeasibleError
        As :func:`fixed_charge`, plus when the ``p`` largest capacities cannot hold the demand.
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    p = check_p(p, m, req, exc)
    limit = check_time_limit(time_limit)
    cap = _per_candidate(capacity, m, name="capacity")
    if max_travel_s is not None:
        cost = np.where(cost <= float(max_travel_s), cost, np.inf)
    _check_reachable(cost, w, exc)
    return _capacitated(
        "capacitated_p_median",
        cost,
        w,
        np.zeros(m),
        cap,
        p=p,
        time_value=1.0,
        req=req,
        exc=exc,
        time_limit=limit,
        started=t0,
        report=ProgressReporter(progress, t0),
        should_stop=should_stop,
    )


def _assign_with_capacity(
    cost: np.ndarray, w: np.ndarray, open_sites: np.ndarray, cap: np.ndarray
) -> np.ndarray | None:
    """Single-sourcing assignment to ``open_sites`` within capacities, by regret (greedy).

    Customers are placed in order of decreasing regret (second-nearest minus nearest open
    site), each at its nearest open site with room left; a customer whose regret grows because
    its best site filled up is re-examined. Returns the assignment (-1 for customers without
    demand), or None when the greedy gets stuck (the capacities may still admit a solution).
    """
    n = cost.shape[0]
    sub = cost[:, open_sites]
    left = cap[open_sites].astype(float).copy()
    assignment = np.full(n, -1, dtype=np.intp)
    todo = np.flatnonzero(w > 0)
    while todo.size:
        fits = np.isfinite(sub[todo]) & (w[todo][:, None] <= left[None, :] + 1e-9)
        masked = np.where(fits, sub[todo], np.inf)
        if not np.isfinite(masked.min(axis=1)).all():
            return None
        part = np.sort(masked, axis=1)
        second = part[:, 1] if part.shape[1] > 1 else np.full(todo.size, np.inf)
        regret = np.where(np.isfinite(second), second - part[:, 0], np.inf)
        # place the customers of highest regret first, as long as their site keeps room
        order = np.argsort(-regret, kind="stable")
        best = masked.argmin(axis=1)
        placed = np.zeros(todo.size, dtype=bool)
        for k in order:
            j = best[k]
            if w[todo[k]] <= left[j] + 1e-9:
                left[j] -= w[todo[k]]
                assignment[todo[k]] = open_sites[j]
                placed[k] = True
            else:
                break  # capacities changed: recompute regrets for the rest
        todo = todo[~placed]
    return assignment


def _relaxed_solution(
    cost: np.ndarray,
    w: np.ndarray,
    f: np.ndarray,
    *,
    p: int | None,
    time_value: float,
    req: np.ndarray,
    exc: np.ndarray,
    time_limit: float,
    should_stop: StopCallback | None = None,
) -> Solution:
    """The same model without capacities: its lower bound is a lower bound of the capacitated
    model, and its open sites are a start for the capacitated search."""
    if p is None:
        return fixed_charge(
            cost,
            f,
            w,
            time_value=time_value,
            required=req,
            excluded=exc,
            time_limit=time_limit,
            should_stop=should_stop,
        )
    relaxed = p_median(
        cost,
        p,
        w,
        required=req,
        excluded=exc,
        time_limit=time_limit,
        allow_unreachable=True,
        should_stop=should_stop,
    )
    scale = time_value
    return dataclasses.replace(
        relaxed,
        objective=relaxed.objective * scale,
        lower_bound=relaxed.lower_bound * scale,
    )


def _capacitated(
    model: str,
    cost: np.ndarray,
    w: np.ndarray,
    f: np.ndarray,
    cap: np.ndarray,
    *,
    p: int | None,
    time_value: float,
    req: np.ndarray,
    exc: np.ndarray,
    time_limit: float,
    started: float,
    report: ProgressReporter,
    should_stop: StopCallback | None,
) -> Solution:
    """Single-sourcing capacitated location MIP (fixed-charge or with exactly p sites)."""
    n, m = cost.shape
    allowed = np.ones(m, dtype=bool)
    allowed[exc] = False
    demand = float(w.sum())
    avail_cap = np.where(allowed, cap, 0.0)
    if p is None:
        total_cap = float(avail_cap.sum())
        if total_cap < demand:
            raise InfeasibleError(
                f"capacity {format_number(total_cap)} < demand {format_number(demand)}"
            )
    else:
        free = allowed.copy()
        free[req] = False
        best_free = np.sort(avail_cap[free])[::-1][: p - req.size]
        total_cap = float(cap[req].sum() + best_free.sum())
        if total_cap < demand:
            raise InfeasibleError(
                f"capacity {format_number(total_cap)} of the {p} largest sites < demand "
                f"{format_number(demand)}"
            )
    rows_w = np.flatnonzero(w > 0)
    reach = np.isfinite(cost) & allowed[None, :]
    max_cap = np.where(reach, avail_cap[None, :], 0.0).max(axis=1)
    too_big = rows_w[w[rows_w] > max_cap[rows_w]]
    if too_big.size:
        raise InfeasibleError(
            f"{too_big.size} customers have more demand than any site they reach can take: "
            f"rows {format_ids(too_big)}"
        )
    # A relaxation (no capacities) gives a valid lower bound and open sites to start from.
    relaxed = _relaxed_solution(
        cost,
        w,
        f,
        p=p,
        time_value=time_value,
        req=req,
        exc=exc,
        time_limit=min(0.2 * time_limit, 10.0),
        should_stop=should_stop,
    )

    def finish(
        open_sites: np.ndarray,
        assignment: np.ndarray,
        *,
        lower_bound: float,
        status: str,
        solver: str,
        **extras: object,
    ) -> Solution:
        """The solution from single-sourcing ``assignment`` (-1 for customers without demand,
        who then go to their nearest open site)."""
        assignment = assignment.copy()
        zero = np.flatnonzero(assignment < 0)
        if zero.size:
            assignment[zero] = assign_nearest(cost[zero], open_sites)
        used = (w > 0) & (assignment >= 0)
        load = np.bincount(assignment[used], weights=w[used], minlength=m)
        travel = float((time_value * w[used] * cost[used, assignment[used]]).sum())
        return make_solution(
            model,
            open_sites=open_sites,
            assignment=assignment,
            objective=float(f[open_sites].sum()) + travel,
            lower_bound=lower_bound,
            status=status,
            solver=solver,
            started=started,
            extras={
                "fixed_cost_total": float(f[open_sites].sum()),
                "travel_cost_total": travel,
                "load": {int(j): float(load[j]) for j in open_sites},
                "capacity": {int(j): float(cap[j]) for j in open_sites},
                **extras,
            },
        )

    relaxed_open = np.asarray(relaxed.open, dtype=np.intp)
    heuristic = _assign_with_capacity(cost, w, relaxed_open, cap)
    if heuristic is not None:
        served = heuristic >= 0
        first = float(f[relaxed_open].sum()) + float(
            (time_value * w[served] * cost[served, heuristic[served]]).sum()
        )
        report("Capacity-respecting first solution", objective=first, bound=relaxed.lower_bound)
        if relative_gap(first, relaxed.lower_bound) <= OPTIMALITY_GAP:
            # the capacities do not bind at the relaxation's optimum: nothing left to prove
            # (Malta demo x 500 candidates, p = 8: HiGHS's presolve of the 976,500-binary MIP
            # alone took 150 s before this answer was returned)
            return finish(
                relaxed_open,
                heuristic,
                lower_bound=relaxed.lower_bound,
                status="optimal",
                solver=f"{relaxed.solver}; capacities not binding",
            )
    else:
        report("Uncapacitated relaxation", objective=np.inf, bound=relaxed.lower_bound)
    # variables: y (m), x over reachable pairs of customers with demand
    sub = reach[rows_w]
    k = int(sub.sum())
    if heuristic is not None and k > MIP_MAX_PAIRS:
        # HiGHS would spend the time limit and more in its presolve without improving the
        # answer: return the first solution with the relaxation's bound
        logger.info("capacitated MIP skipped: %d pairs > %d", k, MIP_MAX_PAIRS)
        return finish(
            relaxed_open,
            heuristic,
            lower_bound=relaxed.lower_bound,
            status="mip_too_large",
            solver=f"{relaxed.solver}; regret assignment within capacities",
            mip_status=f"skipped: {k:,} customer-site pairs > {MIP_MAX_PAIRS:,}",
        )
    pi, pj = np.nonzero(sub)
    nr = rows_w.size
    c = np.concatenate([f, time_value * w[rows_w][pi] * cost[rows_w][pi, pj]])
    a_rows = [pi, pj + nr, np.arange(m) + nr, nr + m + np.arange(k), nr + m + np.arange(k)]
    a_cols = [m + np.arange(k), m + np.arange(k), np.arange(m), m + np.arange(k), pj]
    a_vals = [np.ones(k), w[rows_w][pi], -cap, np.ones(k), -np.ones(k)]
    row_lower = [np.ones(nr), np.full(m, -np.inf), np.full(k, -np.inf)]
    row_upper = [np.ones(nr), np.zeros(m), np.zeros(k)]
    n_rows = nr + m + k
    if p is not None:
        a_rows.append(np.full(m, n_rows))
        a_cols.append(np.arange(m))
        a_vals.append(np.ones(m))
        row_lower.append(np.array([float(p)]))
        row_upper.append(np.array([float(p)]))
        n_rows += 1
    a_matrix = sp.csc_matrix(
        (np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))),
        shape=(n_rows, m + k),
    )
    col_lower = np.zeros(m + k)
    col_upper = np.ones(m + k)
    col_lower[req] = 1.0
    col_upper[exc] = 0.0
    start = None
    if heuristic is not None:
        start = np.zeros(m + k)
        start[relaxed_open] = 1.0
        rows = np.flatnonzero(heuristic[rows_w] >= 0)
        # pairs are in row-major order, so (row, site) keys are sorted
        key = pi.astype(np.int64) * m + pj
        start[m + np.searchsorted(key, rows.astype(np.int64) * m + heuristic[rows_w[rows]])] = 1.0
    result = solve_mip(
        c,
        a_matrix,
        row_lower=np.concatenate(row_lower),
        row_upper=np.concatenate(row_upper),
        col_lower=col_lower,
        col_upper=col_upper,
        integer=np.ones(m + k, dtype=bool),
        time_limit=max(time_limit - (time.perf_counter() - started), 0.05),
        start=start,
        should_stop=should_stop,
        progress=lambda objective, bound: report(
            "Capacitated MIP", objective=objective, bound=max(bound, relaxed.lower_bound)
        ),
    )
    if result.status == "limit" and should_stop is not None and should_stop():
        result = dataclasses.replace(result, status="stopped")
    if result.x is None and start is not None:
        # HiGHS found nothing better in time: keep the greedy solution
        result = dataclasses.replace(result, x=start, status="time_limit")
    if result.x is None:
        if result.status == "infeasible":
            raise InfeasibleError(
                "no assignment of customers to sites respects the capacities "
                f"(capacity {format_number(total_cap)}, demand {format_number(demand)}; "
                "single sourcing: each customer goes to one site)"
            )
        raise InfeasibleError(
            f"no feasible solution found within the time limit ({result.status}); "
            "the capacities may be too tight"
        )
    open_sites = np.flatnonzero(result.x[:m] > 0.5)
    chosen = result.x[m:] > 0.5
    assignment = np.full(n, -1, dtype=np.intp)
    assignment[rows_w[pi[chosen]]] = pj[chosen]
    return finish(
        open_sites,
        assignment,
        lower_bound=max(result.bound, relaxed.lower_bound),
        status=result.status,
        solver=f"{highs_version()} (single-sourcing MIP)",
    )
