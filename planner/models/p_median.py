"""p-median: open p sites so that the demand-weighted travel time is smallest."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np

from planner.errors import InfeasibleError
from planner.models._base import (
    ProgressCallback,
    ProgressReporter,
    Solution,
    StopCallback,
    assign_nearest,
    check_cost,
    check_option,
    check_p,
    check_required_excluded,
    check_time_limit,
    check_weights,
    format_ids,
    make_solution,
    unreachable_rows,
)
from planner.models._median import solve_median
from planner.models._mip import FORMULATIONS
from planner.models.coverage import min_sites_to_reach

logger = logging.getLogger(__name__)


def p_median(
    cost: np.ndarray,
    p: int,
    weights: np.ndarray | None = None,
    *,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    gap: float = 1e-9,
    allow_unreachable: bool = False,
    formulation: str = "auto",
    exact: bool = True,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Choose ``p`` candidates minimising the total weighted travel time of the customers.

    Every customer is served by its nearest open site. The objective is
    ``sum_i weights[i] * cost[i, site(i)]`` (weight units x seconds).

    Parameters
    ----------
    cost
        Travel times in seconds, customers x candidates; ``np.inf`` where unreachable.
    p
        Number of sites to open (required sites count towards it).
    weights
        Demand of each customer (e.g. jobs per year); default 1 each.
    required
        Candidate columns that must be open (existing sites).
    excluded
        Candidate columns that must not open.
    time_limit
        Seconds for the whole solve (default 60). When it runs out, the best solution found is
        returned with its proven gap and ``optimal=False``.
    gap
        Relative gap at which to stop (default 1e-9: solve to optimality). For example 0.005
        stops as soon as the answer is proven within 0.5 % of the optimum.
    allow_unreachable
        If False (default), customers that cannot reach any allowed candidate raise
        :class:`~planner.errors.InfeasibleError` listing their rows. If True they get
        assignment -1, are left out of the objective and listed in ``extras["unreachable"]``.
    formulation
        Exact path: ``"auto"`` (default: Benders decomposition from 5,000 reachable pairs and 20
        candidates with fewer than 5,000 customers, after a short Lagrangian phase up to
        300,000 pairs; Lagrangian bound + reduced MIP on other large instances; the compact
        MIP on small ones), ``"benders"`` (radius-formulation
        Benders cuts, see :mod:`planner.models._benders`), ``"lagrangian"`` (Lagrangian bound,
        reduced-cost tests, then one MIP), or ``"assignment"`` / ``"radius"`` (that path with
        the given MIP formulation).
    exact
        If False, return the heuristic answer with its Lagrangian bound (no MIP).
    seed
        Accepted for interface symmetry; the solve is deterministic.
    progress
        Called with a :class:`~planner.models.SolveProgress` (incumbent objective, proven bound,
        gap, message) as the solve advances; the bound never decreases.
    should_stop
        Polled during the solve; when it returns True the solve stops and returns the best
        solution so far with ``optimal=False``, status ``"stopped"`` and its proven gap.

    Returns
    -------
    Solution
        ``extras`` holds ``unreachable`` (row ids), ``first_objective`` and
        ``first_solution_time_s`` (the heuristic's answer), ``lagrangian_bound``,
        ``mip_pairs`` (pairs left after reduced-cost tests) when computed.

    Raises
    ------
    InfeasibleError
        ``p`` out of range, more required sites than ``p``, unreachable customers, or no ``p``
        sites that reach every customer.
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    p = check_p(p, m, req, exc)
    limit = check_time_limit(time_limit)
    check_option(formulation, FORMULATIONS, name="formulation")
    unreachable = unreachable_rows(cost, exc)
    if unreachable.size and not allow_unreachable:
        raise InfeasibleError(
            f"{unreachable.size} customers cannot reach any candidate site: "
            f"rows {format_ids(unreachable)} (pass allow_unreachable=True to leave them out)"
        )
    active = np.ones(n, dtype=bool)
    active[unreachable] = False
    active &= w > 0
    rows = np.flatnonzero(active)
    extras: dict[str, object] = {"unreachable": unreachable.tolist()}
    if rows.size == 0:
        open_sites = _fill_open(req, exc, p, m)
        return make_solution(
            "p_median",
            open_sites=open_sites,
            assignment=assign_nearest(cost, open_sites),
            objective=0.0,
            lower_bound=0.0,
            status="optimal",
            solver="trivial (all weights zero)",
            started=t0,
            extras=extras,
        )
    sub = cost if rows.size == n else cost[rows]
    if not np.isfinite(sub).all():
        # the customers may lie in parts of the network that need more than p sites
        _, needed = min_sites_to_reach(
            np.isfinite(sub), required=req, excluded=exc, time_limit=limit
        )
        if needed > p:
            raise InfeasibleError(
                f"p={p} is too small: the customers lie in parts of the road network that "
                f"need at least {needed} sites to reach them all"
            )
    a = sub * w[rows, None]  # weighted cost; inf stays inf (weights are > 0 here)
    result = solve_median(
        a,
        np.zeros(m),
        p=p,
        required=req,
        excluded=exc,
        time_limit=limit - (time.perf_counter() - t0),
        gap_target=gap,
        formulation=formulation,
        exact=exact,
        report=ProgressReporter(progress, t0),
        should_stop=should_stop,
    )
    extras.update(result.extras)
    assignment = assign_nearest(cost, result.open)
    assignment[unreachable] = -1
    return make_solution(
        "p_median",
        open_sites=result.open,
        assignment=assignment,
        objective=result.objective,
        lower_bound=result.lower_bound,
        status=result.status,
        solver=result.solver,
        started=t0,
        extras=extras,
    )


def _fill_open(req: np.ndarray, exc: np.ndarray, p: int, m: int) -> np.ndarray:
    """Any p allowed candidates, required ones first (used when no customer has weight)."""
    free = np.setdiff1d(np.setdiff1d(np.arange(m), req), exc)
    return np.sort(np.concatenate([req, free[: p - req.size]]))
