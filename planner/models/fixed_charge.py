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

import logging
import time
from collections.abc import Iterable

import numpy as np

from planner.errors import InfeasibleError, InputError
from planner.models._base import (
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
    make_solution,
    unreachable_rows,
)
from planner.models._median import solve_median
from planner.models._single_source import solve_single_source

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


def _per_site_size(value: object, m: int, *, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.tile(arr, (m, 1))
    if arr.ndim != 2 or arr.shape[0] != m or arr.shape[1] < 1:
        raise InputError(
            f"{name} must have one entry per size (S,) or per candidate and size ({m}, S), "
            f"got shape {arr.shape}"
        )
    if np.isnan(arr).any() or (arr < 0).any():
        raise InputError(f"{name} must be >= 0 (inf for a size a site does not allow)")
    return arr


def sized_fixed_charge(
    cost: np.ndarray,
    size_fixed_cost: np.ndarray,
    size_capacity: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    time_value: float = 1.0,
    p: int | None = None,
    allowed_sizes: np.ndarray | None = None,
    max_travel_s: float | None = None,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Choose sites and their sizes together (modular capacitated location, single sourcing).

    Each candidate may open in one of ``S`` sizes; size ``s`` of candidate ``j`` costs
    ``size_fixed_cost[j, s]`` a year and holds ``size_capacity[j, s]`` (weight units). The
    objective is :func:`fixed_charge`'s: fixed costs of the chosen sizes plus ``time_value`` x
    weighted travel; every customer is served by one site within its size's capacity. Solved
    like the capacitated fixed-charge model (Lagrangian bound with one knapsack per site and
    size, the best size per site; local search; reduced exact MIP), with a proven gap.

    Parameters
    ----------
    cost
        Travel times in seconds, customers x candidates; ``np.inf`` where unreachable.
    size_fixed_cost, size_capacity
        Per size (shape ``(S,)``, the same at every site) or per candidate and size
        (``(m, S)``); a fixed cost of ``inf`` marks a size the site does not allow.
    weights, time_value, max_travel_s, required, excluded, time_limit, seed, progress,
    should_stop
        As :func:`fixed_charge`.
    p
        Exactly this many sites, or None to let the costs decide.
    allowed_sizes
        Optional bool mask ``(m, S)``: the sizes each site allows (False = not allowed).

    Returns
    -------
    Solution
        As :func:`fixed_charge` with capacities; ``extras["size"]`` maps each open site to the
        index of its size, ``extras["capacity"]`` to that size's capacity.

    Raises
    ------
    InfeasibleError
        As :func:`fixed_charge` with capacities (the largest allowed size of each site counts),
        or when a required site allows no size.
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    limit = check_time_limit(time_limit)
    fixed = _per_site_size(size_fixed_cost, m, name="size_fixed_cost")
    cap = _per_site_size(size_capacity, m, name="size_capacity")
    if fixed.shape != cap.shape:
        raise InputError(
            f"size_fixed_cost {fixed.shape} and size_capacity {cap.shape} differ in shape"
        )
    if not np.isfinite(cap).all():
        raise InputError("size_capacity must be finite")
    if allowed_sizes is not None:
        mask = np.asarray(allowed_sizes, dtype=bool)
        if mask.shape != fixed.shape:
            raise InputError(f"allowed_sizes must have shape {fixed.shape}, got {mask.shape}")
        fixed = np.where(mask, fixed, np.inf)
    no_size = req[~np.isfinite(fixed[req]).any(axis=1)]
    if no_size.size:
        raise InfeasibleError(f"required sites {format_ids(no_size)} allow no size")
    if p is not None:
        p = check_p(p, m, req, exc)
    tv = float(time_value)
    if not tv >= 0 or not np.isfinite(tv):
        raise InputError(f"time_value must be a finite number >= 0, got {time_value!r}")
    if max_travel_s is not None:
        cost = np.where(cost <= float(max_travel_s), cost, np.inf)
    exc = np.union1d(exc, np.flatnonzero(~np.isfinite(fixed).any(axis=1))).astype(np.intp)
    _check_reachable(cost, w, exc)
    return _capacitated(
        "sized_fixed_charge",
        cost,
        w,
        np.zeros(m),
        np.zeros(m),
        p=p,
        time_value=tv,
        req=req,
        exc=exc,
        time_limit=limit,
        started=t0,
        report=ProgressReporter(progress, t0),
        should_stop=should_stop,
        sizes=(fixed, cap),
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
    sizes: tuple[np.ndarray, np.ndarray] | None = None,
) -> Solution:
    """Single-source capacitated location (fixed-charge, exactly ``p`` sites, or with sizes):
    :func:`planner.models._single_source.solve_single_source` on the customers with demand.

    ``sizes`` = (fixed cost, capacity), each (m, S) with inf fixed cost where a size is not
    allowed, replaces ``f`` and ``cap``.
    """
    n, m = cost.shape
    rows_w = np.flatnonzero(w > 0)
    fixed2 = f[:, None].astype(float).copy() if sizes is None else sizes[0].astype(float).copy()
    cap2 = cap[:, None].astype(float).copy() if sizes is None else sizes[1].astype(float)
    fixed2[exc] = np.inf
    if rows_w.size == 0:
        # no demand: the required sites, else the cheapest (p of them)
        cheapest = fixed2.min(axis=1)
        order = [int(j) for j in np.argsort(cheapest, kind="stable") if np.isfinite(cheapest[j])]
        open_sites = list(req)
        want = max(p or 1, len(open_sites))
        for j in order:
            if len(open_sites) >= want:
                break
            if j not in open_sites:
                open_sites.append(j)
        size = np.full(m, -1, dtype=np.intp)
        size[open_sites] = np.argmin(fixed2[open_sites], axis=1)
        assign = np.full(n, -1, dtype=np.intp)
        return _finish(
            model,
            cost,
            w,
            fixed=fixed2,
            cap=cap2,
            size=size,
            assignment=assign,
            time_value=time_value,
            lower_bound=-np.inf,
            status="optimal",
            solver="trivial (no demand)",
            started=started,
            sized=sizes is not None,
            bound_is_objective=True,
        )
    c = cost[rows_w] * (time_value * w[rows_w])[:, None]
    c[~np.isfinite(cost[rows_w])] = np.inf
    c[:, exc] = np.inf
    result = solve_single_source(
        c,
        w[rows_w],
        fixed2,
        cap2,
        p=p,
        required=req,
        time_limit=time_limit - (time.perf_counter() - started),
        started=time.perf_counter(),
        report=report,
        should_stop=should_stop,
        row_ids=rows_w,
    )
    assign = np.full(n, -1, dtype=np.intp)
    assign[rows_w] = result.assign
    return _finish(
        model,
        cost,
        w,
        fixed=fixed2,
        cap=cap2,
        size=result.size,
        assignment=assign,
        time_value=time_value,
        lower_bound=result.lower_bound,
        status=result.status,
        solver=result.solver,
        started=started,
        sized=sizes is not None,
        extras=result.extras,
    )


def _finish(
    model: str,
    cost: np.ndarray,
    w: np.ndarray,
    *,
    fixed: np.ndarray,
    cap: np.ndarray,
    size: np.ndarray,
    assignment: np.ndarray,
    time_value: float,
    lower_bound: float,
    status: str,
    solver: str,
    started: float,
    sized: bool,
    extras: dict[str, object] | None = None,
    bound_is_objective: bool = False,
) -> Solution:
    """The Solution of a single-source answer (customers without demand, ``assignment`` -1,
    go to their nearest open site)."""
    m = cost.shape[1]
    open_sites = np.flatnonzero(size >= 0)
    assignment = assignment.copy()
    zero = np.flatnonzero(assignment < 0)
    if zero.size:
        assignment[zero] = assign_nearest(cost[zero], open_sites)
    used = (w > 0) & (assignment >= 0)
    load = np.bincount(assignment[used], weights=w[used], minlength=m)
    travel = float((time_value * w[used] * cost[used, assignment[used]]).sum())
    fixed_total = float(fixed[open_sites, size[open_sites]].sum())
    objective = fixed_total + travel
    out: dict[str, object] = {
        "fixed_cost_total": fixed_total,
        "travel_cost_total": travel,
        "load": {int(j): float(load[j]) for j in open_sites},
        "capacity": {int(j): float(cap[j, size[j]]) for j in open_sites},
    }
    if sized:
        out["size"] = {int(j): int(size[j]) for j in open_sites}
    out.update(extras or {})
    return make_solution(
        model,
        open_sites=open_sites,
        assignment=assignment,
        objective=objective,
        lower_bound=objective if bound_is_objective else lower_bound,
        status=status,
        solver=solver,
        started=started,
        extras=out,
    )
