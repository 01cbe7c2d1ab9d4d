"""Coverage models: maximum coverage (p sites, most demand within T) and set cover.

A customer is *covered* when an open site is within ``max_time_s`` seconds. Customers whose
coverage sets are identical are merged before solving (their weights add up), which shrinks the
models a lot on real data where customers share streets. Both models are solved exactly with
HiGHS, warm-started from a greedy answer; the time limit bounds the solve.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

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
    format_number,
    highs_version,
    make_solution,
)
from planner.models._mip import solve_mip

logger = logging.getLogger(__name__)


def _check_max_time(max_time_s: float) -> float:
    t = float(max_time_s)
    if not t >= 0 or not np.isfinite(t):
        raise InputError(f"max_time_s must be a finite number of seconds >= 0, got {max_time_s!r}")
    return t


def _merge_rows(cover: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge rows with identical coverage; returns (unique rows, summed weights)."""
    packed = np.packbits(cover, axis=1)
    uniq, inverse = np.unique(packed, axis=0, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=weights, minlength=uniq.shape[0])
    rows = np.unpackbits(uniq, axis=1, count=cover.shape[1]).astype(bool)
    return rows, summed


def _greedy_cover(
    cover: np.ndarray, weights: np.ndarray, p: int, required: np.ndarray, allowed: np.ndarray
) -> np.ndarray:
    """Greedy maximum coverage: required sites, then the site covering most uncovered demand."""
    is_open = np.zeros(cover.shape[1], dtype=bool)
    is_open[required] = True
    covered = cover[:, is_open].any(axis=1)
    while is_open.sum() < p:
        gain = (weights * ~covered) @ cover
        gain = np.where(allowed & ~is_open, gain, -1.0)
        j = int(np.argmax(gain))
        if gain[j] < 0:
            break
        is_open[j] = True
        covered |= cover[:, j]
    return np.flatnonzero(is_open)


def _coverage_model(
    cover: np.ndarray,
    weights: np.ndarray,
    *,
    p: int | None,
    min_covered: float | None,
    required: np.ndarray,
    excluded: np.ndarray,
    time_limit: float,
    start_open: np.ndarray | None,
    should_stop: StopCallback | None = None,
) -> tuple[np.ndarray | None, float, float, str]:
    """Solve max coverage (``p`` given) or (partial) set cover (``min_covered`` given).

    Returns (open columns, objective, bound, status). For max coverage the objective is the
    uncovered weight (minimised); for set cover it is the number of sites.
    """
    n, m = cover.shape
    rows_i, cols_j = np.nonzero(cover)
    # columns: y (m), u (n) covered indicator; row i: u_i - sum_{j in N_i} y_j <= 0
    a_rows = [rows_i, np.arange(n)]
    a_cols = [cols_j, m + np.arange(n)]
    a_vals = [-np.ones(rows_i.size), np.ones(n)]
    row_lower = [np.full(n, -np.inf)]
    row_upper = [np.zeros(n)]
    n_rows = n
    col_lower = np.zeros(m + n)
    col_upper = np.ones(m + n)
    col_lower[required] = 1.0
    col_upper[excluded] = 0.0
    if p is not None:
        c = np.concatenate([np.zeros(m), -weights])
        offset = float(weights.sum())
        a_rows.append(np.full(m, n_rows))
        a_cols.append(np.arange(m))
        a_vals.append(np.ones(m))
        row_lower.append(np.array([float(p)]))
        row_upper.append(np.array([float(p)]))
        n_rows += 1
    else:
        assert min_covered is not None
        c = np.concatenate([np.ones(m), np.zeros(n)])
        offset = 0.0
        a_rows.append(np.full(n, n_rows))
        a_cols.append(m + np.arange(n))
        a_vals.append(weights)
        row_lower.append(np.array([min_covered]))
        row_upper.append(np.array([np.inf]))
        n_rows += 1
    a_matrix = sp.csc_matrix(
        (np.concatenate(a_vals), (np.concatenate(a_rows), np.concatenate(a_cols))),
        shape=(n_rows, m + n),
    )
    integer = np.zeros(m + n, dtype=bool)
    integer[:m] = True
    start = None
    if start_open is not None:
        start = np.zeros(m + n)
        start[start_open] = 1.0
        start[m:] = cover[:, start_open].any(axis=1)
    result = solve_mip(
        c,
        a_matrix,
        row_lower=np.concatenate(row_lower),
        row_upper=np.concatenate(row_upper),
        col_lower=col_lower,
        col_upper=col_upper,
        integer=integer,
        time_limit=time_limit,
        offset=offset,
        start=start,
        should_stop=should_stop,
    )
    if result.x is None:
        return None, float("inf"), result.bound, result.status
    open_cols = np.flatnonzero(result.x[:m] > 0.5)
    status = "stopped" if result.status == "limit" and should_stop and should_stop() else None
    return open_cols, result.objective, result.bound, status or result.status


def max_coverage(
    cost: np.ndarray,
    p: int,
    max_time_s: float,
    weights: np.ndarray | None = None,
    *,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Open ``p`` sites so that the most demand is within ``max_time_s`` of an open site.

    The returned :class:`Solution` minimises the *uncovered* demand (``objective``, in weight
    units) so that ``lower_bound`` and ``gap`` keep their meaning; the covered demand and share
    are in ``extras["covered_demand"]`` and ``extras["covered_share"]``, and the proven upper
    bound on covered demand in ``extras["covered_demand_bound"]``. Every reachable customer is
    assigned to its nearest open site (covered or not); ``extras["covered"]`` is a bool array.

    Parameters
    ----------
    cost
        Travel times in seconds, customers x candidates; ``np.inf`` where unreachable.
    p
        Number of sites to open (required sites count towards it).
    max_time_s
        Coverage threshold T in seconds.
    weights
        Demand per customer (default 1 each).
    required, excluded
        Candidate columns that must / must not open.
    time_limit
        Seconds for the solve (default 60).
    seed
        Accepted for interface symmetry; the solve is deterministic.
    progress
        Called with a :class:`~planner.models.SolveProgress` after the greedy start and at the
        end of the exact solve.
    should_stop
        Polled inside HiGHS; True stops it with the best answer so far and its proven gap.
    """
    t0 = time.perf_counter()
    report = ProgressReporter(progress, t0)
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    p = check_p(p, m, req, exc)
    limit = check_time_limit(time_limit)
    t_max = _check_max_time(max_time_s)
    allowed = np.ones(m, dtype=bool)
    allowed[exc] = False
    cover = (cost <= t_max) & allowed[None, :]
    useful = cover.any(axis=1) & (w > 0)
    merged, mw = _merge_rows(cover[useful], w[useful])
    greedy = _greedy_cover(merged, mw, p, req, allowed)
    if greedy.size < p:  # fill with any allowed sites
        rest = np.setdiff1d(np.flatnonzero(allowed), greedy)
        greedy = np.sort(np.concatenate([greedy, rest[: p - greedy.size]]))
    total = float(w.sum())
    report(
        "Greedy start",
        objective=total - float(w[(cost[:, greedy] <= t_max).any(axis=1)].sum()),
        bound=-np.inf,
    )
    open_cols: np.ndarray | None
    if merged.shape[0] == 0:
        open_cols, uncovered, bound, status = greedy, total, total, "optimal"
    else:
        open_cols, uncovered_m, bound_m, status = _coverage_model(
            merged,
            mw,
            p=p,
            min_covered=None,
            required=req,
            excluded=exc,
            time_limit=limit - (time.perf_counter() - t0),
            start_open=greedy,
            should_stop=should_stop,
        )
        if open_cols is None:
            open_cols = greedy
            uncovered_m = float(mw.sum() - mw[merged[:, greedy].any(axis=1)].sum())
        never = total - float(mw.sum())  # demand that no candidate covers
        uncovered = uncovered_m + never
        bound = bound_m + never
    covered = (cost[:, open_cols] <= t_max).any(axis=1)
    covered_demand = float(w[covered].sum())
    uncovered = total - covered_demand
    report("Finished", objective=uncovered, bound=bound)
    return make_solution(
        "max_coverage",
        open_sites=open_cols,
        assignment=assign_nearest(cost, open_cols),
        objective=uncovered,
        lower_bound=bound,
        status=status,
        solver=highs_version(),
        started=t0,
        extras={
            "max_time_s": t_max,
            "covered": covered,
            "covered_demand": covered_demand,
            "covered_share": covered_demand / total if total > 0 else 1.0,
            "covered_demand_bound": total - min(bound, uncovered),
            "greedy_covered_demand": float(w[(cost[:, greedy] <= t_max).any(axis=1)].sum()),
            "merged_customers": int(merged.shape[0]),
        },
    )


def set_cover(
    cost: np.ndarray,
    max_time_s: float,
    weights: np.ndarray | None = None,
    *,
    share: float = 1.0,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Open the fewest sites so that all demand (or ``share`` of it) is within ``max_time_s``.

    ``objective`` is the number of open sites (required ones included). Customers with zero
    weight do not need to be covered. Every reachable customer is assigned to its nearest open
    site; ``extras["covered"]`` tells which are within the threshold.

    Parameters
    ----------
    cost
        Travel times in seconds, customers x candidates; ``np.inf`` where unreachable.
    max_time_s
        Coverage threshold T in seconds.
    weights
        Demand per customer (default 1 each).
    share
        Share of the total demand that must be covered, in (0, 1]; 1.0 covers everyone.
    required, excluded
        Candidate columns that must / must not open.
    time_limit
        Seconds for the solve (default 60).
    seed
        Accepted for interface symmetry; the solve is deterministic.
    progress
        Called with a :class:`~planner.models.SolveProgress` after the greedy start and at the
        end of the exact solve.
    should_stop
        Polled inside HiGHS; True stops it with the best answer so far and its proven gap.

    Raises
    ------
    InfeasibleError
        When some customers (share = 1) or too much demand (share < 1) is farther than
        ``max_time_s`` from every allowed candidate; the message lists them.
    """
    t0 = time.perf_counter()
    report = ProgressReporter(progress, t0)
    cost = check_cost(cost)
    n, m = cost.shape
    w = check_weights(weights, n)
    req, exc = check_required_excluded(required, excluded, m)
    limit = check_time_limit(time_limit)
    t_max = _check_max_time(max_time_s)
    share = float(share)
    if not 0.0 < share <= 1.0:
        raise InputError(f"share must be in (0, 1], got {share!r}")
    allowed = np.ones(m, dtype=bool)
    allowed[exc] = False
    cover = (cost <= t_max) & allowed[None, :]
    coverable = cover.any(axis=1)
    need = w > 0
    total = float(w.sum())
    target = share * total
    if share >= 1.0:
        far = np.flatnonzero(need & ~coverable)
        if far.size:
            raise InfeasibleError(
                f"{far.size} customers are farther than {t_max / 60:g} min from every "
                f"candidate: ids {format_ids(far)}"
            )
    elif float(w[coverable].sum()) < target * (1 - 1e-12):
        raise InfeasibleError(
            f"only {format_number(float(w[coverable].sum()))} of {format_number(total)} demand "
            f"({float(w[coverable].sum()) / total:.1%}) is within {t_max / 60:g} min of any "
            f"candidate, less than share={share:.1%}"
        )
    rows = need & coverable
    merged, mw = _merge_rows(cover[rows], w[rows])
    open_cols: np.ndarray | None
    if merged.shape[0] == 0:
        open_cols = req if req.size else np.flatnonzero(allowed)[:1]
        status, bound = "optimal", float(open_cols.size)
    else:
        # greedy warm start: add the site covering most uncovered demand until the target
        is_open = np.zeros(m, dtype=bool)
        is_open[req] = True
        covered = merged[:, is_open].any(axis=1)
        goal = min(target, float(mw.sum())) if share < 1 else float(mw.sum())
        while float(mw[covered].sum()) < goal * (1 - 1e-12):
            gain = np.where(allowed & ~is_open, (mw * ~covered) @ merged, -1.0)
            j = int(np.argmax(gain))
            is_open[j] = True
            covered |= merged[:, j]
        greedy = np.flatnonzero(is_open)
        report("Greedy start", objective=float(greedy.size), bound=-np.inf)
        min_covered = float(mw.sum()) if share >= 1 else goal
        open_cols, _, bound, status = _coverage_model(
            merged,
            mw,
            p=None,
            min_covered=min_covered * (1 - 1e-12),
            required=req,
            excluded=exc,
            time_limit=limit - (time.perf_counter() - t0),
            start_open=greedy,
            should_stop=should_stop,
        )
        if open_cols is None:
            open_cols = greedy
        bound = float(np.ceil(bound - 1e-6))
    covered_all = (cost[:, open_cols] <= t_max).any(axis=1)
    covered_demand = float(w[covered_all].sum())
    report("Finished", objective=float(open_cols.size), bound=bound)
    return make_solution(
        "set_cover",
        open_sites=open_cols,
        assignment=assign_nearest(cost, open_cols),
        objective=float(open_cols.size),
        lower_bound=bound,
        status=status,
        solver=highs_version(),
        started=t0,
        extras={
            "max_time_s": t_max,
            "share": share,
            "covered": covered_all,
            "covered_demand": covered_demand,
            "covered_share": covered_demand / total if total > 0 else 1.0,
            "merged_customers": int(merged.shape[0]),
        },
    )


def min_sites_to_reach(
    reach: np.ndarray,
    *,
    required: np.ndarray,
    excluded: np.ndarray,
    time_limit: float,
) -> tuple[np.ndarray | None, int]:
    """Fewest open sites (required included) so that every row reaches one.

    ``reach`` is an (n x m) bool matrix; rows without any allowed True are ignored.

    Returns
    -------
    open_cols
        The best cover found (None if none was found in time).
    min_count
        Proven lower bound on the number of sites needed (equal to ``open_cols.size`` when
        the cover is proven minimal).
    """
    m = reach.shape[1]
    allowed = np.ones(m, dtype=bool)
    allowed[excluded] = False
    cover = reach & allowed[None, :]
    rows = cover.any(axis=1)
    merged, mw = _merge_rows(cover[rows], np.ones(int(rows.sum())))
    if merged.shape[0] == 0:
        return required.copy(), int(required.size)
    open_cols, _, bound, _ = _coverage_model(
        merged,
        mw,
        p=None,
        min_covered=float(mw.sum()) - 0.5,
        required=required,
        excluded=excluded,
        time_limit=time_limit,
        start_open=None,
    )
    min_count = int(np.ceil(bound - 1e-6)) if np.isfinite(bound) else int(required.size)
    if open_cols is not None:
        min_count = min(min_count, int(open_cols.size))
    return open_cols, min_count
