"""p-center: open p sites so that the longest travel time of any customer is smallest.

Exact by bisection over the distinct travel times: a radius ``r`` is achievable iff the fewest
sites covering every customer within ``r`` (a set cover, solved with HiGHS) is at most ``p``.
Among the answers with the optimal radius, the one with the least demand-weighted travel time is
returned (a p-median restricted to pairs within the radius).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np

from planner.errors import InfeasibleError, SolverError
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
    highs_version,
    make_solution,
    unreachable_rows,
)
from planner.models.coverage import min_sites_to_reach
from planner.models.p_median import p_median

logger = logging.getLogger(__name__)


def p_center(
    cost: np.ndarray,
    p: int,
    weights: np.ndarray | None = None,
    *,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    allow_unreachable: bool = False,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Choose ``p`` candidates minimising the largest travel time (seconds) of any customer.

    Parameters
    ----------
    cost
        Travel times in seconds, customers x candidates; ``np.inf`` where unreachable.
    p
        Number of sites to open (required sites count towards it).
    weights
        Demand per customer (default 1 each). Customers with zero weight do not count towards
        the maximum; the weights also break ties (least weighted travel time among the
        solutions with the optimal radius).
    required, excluded
        Candidate columns that must / must not open.
    time_limit
        Seconds for the solve (default 60).
    allow_unreachable
        As in :func:`~planner.models.p_median`: leave out customers that cannot reach any
        candidate instead of raising.
    seed
        Accepted for interface symmetry; the solve is deterministic.
    progress
        Called with a :class:`~planner.models.SolveProgress` after every bisection step: the
        smallest radius proven achievable (objective) and the largest proven not (bound).
    should_stop
        Polled between bisection steps and during the tie-break; when it returns True the solve
        returns the best cover so far, status ``"stopped"``, with its proven gap.

    Returns
    -------
    Solution
        ``objective`` is the largest travel time in seconds; ``extras["weighted_travel"]`` is
        the weighted travel time of the returned (tie-broken) solution.
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    p = check_p(p, m, req, exc)
    limit = check_time_limit(time_limit)
    deadline = t0 + limit
    unreachable = unreachable_rows(cost, exc)
    if unreachable.size and not allow_unreachable:
        raise InfeasibleError(
            f"{unreachable.size} customers cannot reach any candidate site: "
            f"rows {format_ids(unreachable)} (pass allow_unreachable=True to leave them out)"
        )
    active = w > 0
    active[unreachable] = False
    allowed = np.ones(m, dtype=bool)
    allowed[exc] = False
    sub = cost[active][:, allowed]
    if sub.shape[0] == 0:
        open_sites = np.sort(np.concatenate([req, np.setdiff1d(np.flatnonzero(allowed), req)]))
        open_sites = np.sort(np.concatenate([req, np.setdiff1d(open_sites, req)[: p - req.size]]))
        return make_solution(
            "p_center",
            open_sites=open_sites,
            assignment=assign_nearest(cost, open_sites),
            objective=0.0,
            lower_bound=0.0,
            status="optimal",
            solver="trivial (no weighted customer)",
            started=t0,
            extras={"unreachable": unreachable.tolist(), "weighted_travel": 0.0},
        )
    # every customer must reach someone: the radius is at least max_i min_j c_ij
    radii = np.unique(sub[np.isfinite(sub)])
    lo_r = float(sub.min(axis=1).max())
    radii = radii[radii >= lo_r]
    cols = np.flatnonzero(allowed)
    req_local = np.searchsorted(cols, req)

    covers: dict[float, np.ndarray] = {}

    def feasible(r: float) -> bool | None:
        """True: p sites cover everyone within r (cover kept); False: proven not; None: time."""
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return None
        open_local, min_count = min_sites_to_reach(
            sub <= r,
            required=req_local,
            excluded=np.zeros(0, dtype=np.intp),
            time_limit=remaining,
        )
        if open_local is not None and open_local.size <= p:
            covers[r] = cols[open_local]
            return True
        return False if min_count > p else None

    lo, hi = 0, radii.size - 1  # radii[hi] is feasible (p >= 1 site reaches all... checked)
    status = "optimal"
    stop = should_stop or (lambda: False)
    report = ProgressReporter(progress, t0)
    if feasible(float(radii[hi])) is not True:
        # even the largest radius needs more than p sites: disconnected parts of the network
        raise InfeasibleError(
            f"p={p} is too small: the customers lie in parts of the network that no {p} "
            "candidate sites reach together"
        )
    report("Largest radius: everyone reached", objective=float(radii[hi]), bound=lo_r)
    while lo < hi:
        if stop():
            status = "stopped"
            break
        mid = (lo + hi) // 2
        ok = feasible(float(radii[mid]))
        if ok is None:
            status = "time_limit"
            break
        if ok:
            hi = mid
        else:
            lo = mid + 1
        report(
            f"Bisection: radius between {radii[lo]:,.0f} s and {radii[hi]:,.0f} s",
            objective=float(radii[hi]),
            bound=float(radii[lo]),
        )
    radius = float(radii[hi])
    lower_bound = float(radii[lo])
    # tie-break: least weighted travel among the solutions with radius <= radius
    restricted = np.where(cost <= radius, cost, np.inf)
    restricted[~active] = cost[~active]
    remaining = deadline - time.perf_counter()
    open_sites = _pad(covers[radius], req, exc, p, m)
    if remaining > 0.5 and not stop():
        try:
            inner = p_median(
                restricted,
                p,
                np.where(active, w, 0.0),
                required=req,
                excluded=exc,
                time_limit=remaining,
                allow_unreachable=True,
                should_stop=should_stop,
            )
            open_sites = inner.open
        except (InfeasibleError, SolverError):  # out of time: keep the cover found above
            logger.info("p-center tie-break stopped early; keeping the bisection's cover")
    assignment = assign_nearest(cost, open_sites)
    assignment[unreachable] = -1
    served = active & (assignment >= 0)
    objective = float(cost[served, assignment[served]].max()) if served.any() else 0.0
    return make_solution(
        "p_center",
        open_sites=open_sites,
        assignment=assignment,
        objective=objective,
        lower_bound=lower_bound,
        status=status if status != "optimal" or objective <= radius else "time_limit",
        solver=f"bisection + set cover, {highs_version()}",
        started=t0,
        extras={
            "unreachable": unreachable.tolist(),
            "weighted_travel": float((w[served] * cost[served, assignment[served]]).sum()),
        },
    )


def _pad(open_sites: np.ndarray, req: np.ndarray, exc: np.ndarray, p: int, m: int) -> np.ndarray:
    """Add required sites and fill up to p with other allowed candidates."""
    chosen = np.union1d(open_sites, req)
    free = np.setdiff1d(np.setdiff1d(np.arange(m), chosen), exc)
    return np.sort(np.concatenate([chosen, free[: max(p - chosen.size, 0)]])).astype(np.intp)
