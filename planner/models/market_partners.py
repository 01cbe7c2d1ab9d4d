"""Maximum capture among shops that exist either way (outsourcing partners, MNL / Huff demand).

:func:`max_capture` opens new sites: a closed candidate does not exist, so opening one adds its
attraction to every customer's choice set. Outsourcing partners are different: every partner
repair shop is there whether or not we contract it, and a shop we do not contract is a
competitor. With ``utility[i, j]`` customer ``i``'s attraction to partner ``j``, ``outside[i]``
the attraction of everything that is no partner (the other competitors plus not coming at all)
and ``P_i = sum_j utility[i, j]`` over **all** partner columns (excluded ones too: they exist),
customer ``i`` brings us

    weights[i] * U_i / (outside[i] + P_i),     U_i = sum over the contracted j of utility[i, j]

jobs: the denominator does not depend on which partners we contract, so the jobs captured are
a sum of column values

    v_j = sum_i weights[i] * utility[i, j] / (outside[i] + P_i)

and each question is answered exactly by sorting them (ties: the lower column first):

* ``p`` given: the required columns plus the ``p - |required|`` largest other ``v_j``;
* ``fixed_cost`` and ``margin``: the required columns plus every other column whose
  ``margin * v_j - fixed_cost[j]`` is positive (at most ``p`` of them, the best first, when ``p``
  is given; the single best column when none is and nothing is required);
* ``target_share``: the required columns, then the others by ``v_j`` descending until the share
  is reached. Any ``k`` sites containing the required ones capture at most the required ones
  plus the ``k - |required|`` largest other values, so no smaller set reaches the share, and
  among the sets of that size none captures more.

A contracted partner takes no job from another contracted one (closing it hands its jobs to
it as a competitor, not to our other sites): there is no cannibalisation. Every answer is
proven optimal (bound = objective, gap 0).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from planner.errors import InfeasibleError
from planner.models._base import (
    ProgressCallback,
    ProgressReporter,
    Solution,
    StopCallback,
    check_p,
    check_required_excluded,
    check_time_limit,
    check_weights,
    format_number,
)
from planner.models.market import (
    _check_fixed_cost,
    _check_margin,
    _check_mode,
    _check_outside,
    _check_share,
    _check_utility,
)

logger = logging.getLogger(__name__)

__all__ = ["column_values", "max_capture_partners"]

#: The method named in :attr:`Solution.solver`.
SOLVER = "planner sorted column values (partners compete when not contracted: linear share)"


def column_values(utility: np.ndarray, weights: np.ndarray, outside: np.ndarray) -> np.ndarray:
    """``v_j = sum_i weights[i] * utility[i, j] / (outside[i] + sum_k utility[i, k])``: the jobs
    partner ``j`` brings us when contracted, whichever others are."""
    u = np.asarray(utility, dtype=float)
    denom = np.asarray(outside, dtype=float) + u.sum(axis=1)
    return np.asarray((np.asarray(weights, dtype=float) / denom) @ u, dtype=float)


def max_capture_partners(
    utility: np.ndarray,
    p: int | None = None,
    weights: np.ndarray | None = None,
    *,
    outside: np.ndarray,
    fixed_cost: np.ndarray | float | None = None,
    margin: float | None = None,
    target_share: float | None = None,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Choose partner shops to contract for the most customers (or profit) won, when every
    partner competes with us unless contracted.

    The arguments are those of :func:`max_capture`; only the share differs: customer ``i``
    brings ``weights[i] * U_i / (outside[i] + P_i)`` jobs, with ``P_i`` summed over every column
    of ``utility`` (see the module docstring).

    Parameters
    ----------
    utility
        ``utility[i, j] >= 0``: customer ``i``'s attraction to partner ``j`` (0 where it cannot
        reach it), customers x partners. Every column is a shop that exists: contracted it is
        ours, otherwise a competitor (excluded columns too).
    p
        Number of partners to contract (required ones count towards it). With ``fixed_cost``
        and ``margin``: the most that may be contracted (default: no cap).
    weights
        Jobs per customer (e.g. per year), all shops and none; default 1 each.
    outside
        ``outside[i] > 0``: the attraction of everything that is not a partner column (the
        other competitors plus not coming at all); one number is used for every customer.
    fixed_cost, margin
        Profit objective: ``margin`` (money per job, > 0) x jobs captured - the contracted
        partners' ``fixed_cost`` (per column, or one number for all).
    target_share
        Fewest partners capturing at least this share (0 < share <= 1) of all jobs
        (``sum(weights)``); among those, the most jobs.
    required, excluded
        Columns that must / must not be contracted.
    time_limit
        Checked like every model's (the answer takes one sort).
    progress
        Called once with the answer, in :func:`max_capture`'s internal units (jobs not won, or
        fixed costs + margin x jobs not won), objective = bound.
    should_stop
        Accepted for the common signature; the answer is immediate.

    Returns
    -------
    Solution
        ``objective`` = jobs captured (modes ``p`` and ``target_share``) or profit, proven
        optimal: ``upper_bound`` = ``lower_bound`` = ``objective``, ``gap`` 0. ``assignment``:
        each customer's most attractive contracted partner (-1 when none attracts it).
        ``extras`` as :func:`max_capture`'s (``mode``, ``captured``, ``share``, ``total_jobs``,
        ``captured_per_customer``, ``site_jobs``, ``site_marginal_jobs`` (= ``site_jobs``: no
        cannibalisation), ``fixed_cost`` and ``profit`` in profit mode, ``min_sites_proven``
        for a target share) plus ``column_value`` (``v_j`` of every column).

    Raises
    ------
    InputError
        Malformed arrays, options that do not fit together.
    InfeasibleError
        ``p`` out of range, columns both required and excluded, a target share that every
        allowed partner together does not reach.
    """
    del should_stop  # one sort: nothing to stop
    t0 = time.perf_counter()
    u = _check_utility(utility)
    n, m = u.shape
    o = _check_outside(outside, n)
    w = check_weights(weights, n)
    mode = _check_mode(p, fixed_cost, margin, target_share)
    req, exc = check_required_excluded(required, excluded, m)
    check_time_limit(time_limit)
    allowed = np.setdiff1d(np.arange(m), exc)
    free = np.setdiff1d(allowed, req)
    value = column_values(u, w, o)
    total = float(w.sum())
    fixed = np.zeros(m)
    margin_v = 1.0
    extras: dict[str, Any] = {"mode": mode, "total_jobs": total}
    if mode == "profit":
        fixed = _check_fixed_cost(fixed_cost, m)
        margin_v = _check_margin(margin)
        p_max = check_p(p, m, req, exc) if p is not None else m
        score = margin_v * value - fixed
        ranked = _ranked(free, score)
        extra = ranked[score[ranked] > 0][: p_max - req.size]
        if req.size == 0 and extra.size == 0:
            extra = ranked[:1]  # at least one site: the least loss
        open_cols = np.concatenate([req, extra])
    elif mode == "p":
        k = check_p(p, m, req, exc)
        open_cols = np.concatenate([req, _ranked(free, value)[: k - req.size]])
    else:
        share = _check_share(target_share)
        best_possible = float(value[allowed].sum())
        if best_possible < share * total * (1.0 - 1e-12) or total <= 0:
            raise InfeasibleError(
                f"target_share={share:g} cannot be reached: with all {allowed.size} allowed "
                f"partners contracted they capture {format_number(best_possible)} of "
                f"{format_number(total)} jobs ({100 * best_possible / max(total, 1e-300):.1f} %)"
            )
        need = share * total - 1e-9 * max(total, 1.0)
        ranked = _ranked(free, value)
        reached = float(value[req].sum()) + np.concatenate([[0.0], np.cumsum(value[ranked])])
        extra_n = int(np.flatnonzero(reached >= need)[0])  # exists: best_possible reaches it
        extra_n = max(extra_n, 1 - req.size)  # at least one site
        open_cols = np.concatenate([req, ranked[:extra_n]])
        extras["min_sites_proven"] = True
    open_cols = np.sort(open_cols.astype(np.intp))
    sol = _solution(
        u,
        o,
        w,
        value,
        open_cols,
        mode=mode,
        margin=margin_v,
        fixed=fixed,
        started=t0,
        extras=extras,
    )
    lost = margin_v * (total - float(sol.extras["captured"])) + float(fixed[open_cols].sum())
    ProgressReporter(progress, t0)("sorted column values", objective=lost, bound=lost)
    return sol


def _ranked(cols: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``cols`` by ``score`` descending, ties by column."""
    cols = np.asarray(cols, dtype=np.intp)
    return cols[np.lexsort((cols, -score[cols]))]


def _solution(
    u: np.ndarray,
    o: np.ndarray,
    w: np.ndarray,
    value: np.ndarray,
    open_cols: np.ndarray,
    *,
    mode: str,
    margin: float,
    fixed: np.ndarray,
    started: float,
    extras: dict[str, Any],
) -> Solution:
    """The :class:`Solution` of a contracted set (proven optimal by the sort)."""
    sub = u[:, open_cols]
    denom = o + u.sum(axis=1)
    per_customer = w * sub.sum(axis=1) / denom
    captured = float(per_customer.sum())
    site_jobs = value[open_cols].copy()
    fixed_open = float(fixed[open_cols].sum())
    objective = margin * captured - fixed_open if mode == "profit" else captured
    assignment = np.where(
        sub.sum(axis=1) > 0, open_cols[np.argmax(sub, axis=1)] if open_cols.size else -1, -1
    ).astype(np.intp)
    total = float(w.sum())
    extras.update(
        {
            "captured": captured,
            "share": captured / total if total > 0 else 0.0,
            "captured_per_customer": per_customer,
            "site_jobs": site_jobs,
            "site_marginal_jobs": site_jobs.copy(),
            "column_value": value,
            "first_objective": objective,
            "first_solution_time_s": time.perf_counter() - started,
        }
    )
    if mode == "profit":
        extras["fixed_cost"] = fixed_open
        extras["profit"] = objective
    return Solution(
        model="max_capture_partners",
        open=open_cols,
        assignment=assignment,
        objective=objective,
        lower_bound=objective,
        gap=0.0,
        optimal=True,
        status="optimal",
        solve_time_s=time.perf_counter() - started,
        solver=SOLVER,
        extras=extras,
        upper_bound=objective,
    )
