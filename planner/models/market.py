"""Maximum capture: sites that win the most customers from competitors (MNL / Huff demand).

Customer ``i`` is attracted to candidate ``j`` by ``utility[i, j] >= 0`` (attractiveness x
distance decay of the travel time; 0 where unreachable) and to everything else (competitors plus
not coming at all) by ``outside[i] > 0``. With the open sites ``S`` and
``U_i = sum_{j in S} utility[i, j]``, customer ``i`` brings us

    weights[i] * U_i / (outside[i] + U_i)

jobs (the multinomial-logit / Huff share). Three questions:

* ``p`` given: the ``p`` sites capturing the most jobs (maximum capture);
* ``target_share`` given: the fewest sites capturing at least that share of all jobs
  (``sum(weights)``), and among those the ones capturing the most;
* ``fixed_cost`` and ``margin`` given: the most profit ``margin x captured - sum of the open
  sites' fixed costs`` (at least one site, at most ``p`` when given).

The capture is a concave function of the open set (monotone submodular), so it is solved exactly
by outer approximation with gradient and submodular cuts in a branch-and-cut (see
:mod:`planner.models._market`); greedy plus a swap local search gives the first answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from importlib.metadata import version as _version
from typing import Any

import numpy as np

from planner.errors import InfeasibleError, InputError
from planner.models._base import (
    OPTIMALITY_GAP,
    ProgressCallback,
    ProgressReporter,
    Solution,
    StopCallback,
    check_p,
    check_required_excluded,
    check_time_limit,
    check_weights,
    format_number,
    sum_of_others,
)
from planner.models._market import CaptureProblem, greedy, local_search, solve_capture

logger = logging.getLogger(__name__)

#: The three questions :func:`max_capture` answers (``extras["mode"]``).
MODES = ("p", "target_share", "profit")


def _check_utility(utility: object) -> np.ndarray:
    arr = np.ascontiguousarray(np.asarray(utility, dtype=np.float64))
    if arr.ndim != 2:
        raise InputError(f"utility must be a 2-D array (customers x candidates), got {arr.ndim}-D")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"utility must have at least one row and one column, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError("utility must be finite; use 0 where a customer cannot reach a site")
    if (arr < 0).any():
        raise InputError("utility contains negative values; attractions must be >= 0")
    return arr


def _check_outside(outside: object, n: int) -> np.ndarray:
    if outside is None:
        raise InputError("outside is required: the competitors' summed attraction per customer")
    arr = np.asarray(outside, dtype=np.float64).reshape(-1)
    if arr.size == 1 and n > 1:
        arr = np.full(n, float(arr[0]))
    if arr.size != n:
        raise InputError(f"outside has {arr.size} entries but utility has {n} customer rows")
    if not np.isfinite(arr).all() or (arr <= 0).any():
        bad = np.flatnonzero(~(np.isfinite(arr) & (arr > 0)))
        raise InputError(
            f"outside must be finite and > 0 (competitors plus not coming at all); rows "
            f"{bad[:10].tolist()} are not"
        )
    return arr


def _check_fixed_cost(fixed_cost: object, m: int) -> np.ndarray:
    arr = np.asarray(fixed_cost, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(m, float(arr))
    arr = arr.reshape(-1)
    if arr.size != m:
        raise InputError(f"fixed_cost has {arr.size} entries but utility has {m} candidates")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InputError("fixed_cost must be finite and >= 0")
    return arr


def _check_margin(margin: object) -> float:
    """``margin`` (money per job) as a positive float."""
    try:
        value = float(margin)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise InputError(f"margin must be a number (money per job), got {margin!r}") from err
    if not (np.isfinite(value) and value > 0):
        raise InputError(f"margin must be > 0 (money per job), got {margin!r}")
    return value


def _check_mode(p: object, fixed_cost: object, margin: object, target_share: object) -> str:
    if target_share is not None:
        if p is not None or fixed_cost is not None or margin is not None:
            raise InputError(
                "target_share asks for the fewest sites; do not pass p, fixed_cost or margin "
                "with it"
            )
        return "target_share"
    if fixed_cost is not None or margin is not None:
        if fixed_cost is None or margin is None:
            raise InputError("the profit objective needs both fixed_cost and margin")
        return "profit"
    if p is None:
        raise InputError(
            "say what to optimise: p (most jobs with p sites), target_share (fewest sites for "
            "a share of all jobs) or fixed_cost and margin (most profit)"
        )
    return "p"


def _merge(u: np.ndarray, o: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    """Merge customers with identical utility rows and outside (weights add up)."""
    key = np.ascontiguousarray(np.column_stack([u, o]))
    uniq, inverse = np.unique(key, axis=0, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=w, minlength=uniq.shape[0])
    return np.ascontiguousarray(uniq[:, :-1]), uniq[:, -1].copy(), summed


def max_capture(
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
    gap: float = 1e-9,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Choose sites winning the most customers (or profit) under MNL / Huff demand.

    Parameters
    ----------
    utility
        ``utility[i, j] >= 0``: customer ``i``'s attraction to candidate ``j`` (0 where the
        customer cannot reach it), customers x candidates.
    p
        Number of sites to open (required sites count towards it). With ``fixed_cost`` and
        ``margin``: the most sites that may open (default: no cap).
    weights
        Jobs per customer (e.g. per year) if it came to us only; default 1 each.
    outside
        ``outside[i] > 0``: the summed attraction of the competitors plus not coming at all
        (one number is used for every customer).
    fixed_cost, margin
        Profit objective: ``margin`` (money per job, > 0) x jobs captured - the open sites'
        ``fixed_cost`` (money per candidate, or one number for all).
    target_share
        Fewest sites capturing at least this share (0 < share <= 1) of all jobs
        (``sum(weights)``); among those, the most jobs.
    required
        Candidate columns that must open (existing sites).
    excluded
        Candidate columns that must not open.
    time_limit
        Seconds for the whole solve (default 60). When it runs out, the best answer found is
        returned with its proven gap and ``optimal=False``.
    gap
        Relative gap at which to stop (default 1e-9: solve to optimality).
    progress
        Called with a :class:`~planner.models.SolveProgress` as the solve advances; its
        ``objective`` and ``bound`` are those of the internal minimisation (jobs lost, or fixed
        costs + margin x jobs lost).
    should_stop
        Polled during the solve; True stops it with the best answer so far (status
        ``"stopped"``).

    Returns
    -------
    Solution
        ``objective`` = jobs captured (modes ``p`` and ``target_share``) or profit; ``upper_bound``
        its proven upper bound, ``lower_bound`` = ``objective``, ``gap`` =
        ``(upper_bound - objective) / |objective|``. ``assignment`` is each customer's most
        attractive open site (-1 when it is attracted by none). ``extras``: ``mode``,
        ``captured`` (jobs), ``share`` (of all jobs), ``total_jobs``, ``captured_per_customer``,
        ``site_jobs`` (expected jobs won per open site, in the order of ``open``),
        ``site_marginal_jobs`` (jobs lost if that site alone closed; ``site_jobs`` minus this is
        what the site takes from our own other sites: cannibalisation), ``fixed_cost`` and
        ``profit`` (profit mode), ``first_objective`` and ``first_solution_time_s`` (greedy +
        swaps), ``min_sites_proven`` (target share: the site count is proven minimal),
        ``nodes``, ``cuts``, ``root_bound`` (when the branch-and-cut ran).

    Raises
    ------
    InputError
        Malformed arrays, options that do not fit together.
    InfeasibleError
        ``p`` out of range, sites both required and excluded, a target share that even every
        allowed site together does not reach.
    """
    t0 = time.perf_counter()
    u_full = _check_utility(utility)
    n, m = u_full.shape
    o_full = _check_outside(outside, n)
    w_full = check_weights(weights, n, "utility")
    mode = _check_mode(p, fixed_cost, margin, target_share)
    req, exc = check_required_excluded(required, excluded, m)
    limit = check_time_limit(time_limit)
    deadline = t0 + limit
    if not (0.0 <= float(gap) < 1.0):
        raise InputError(f"gap must be in [0, 1), got {gap!r}")
    allowed = np.setdiff1d(np.arange(m), exc)
    local_of = np.full(m, -1, dtype=np.intp)
    local_of[allowed] = np.arange(allowed.size)
    req_l = local_of[req]
    fixed = np.zeros(m)
    margin_v = 1.0
    p_max: int | None = None
    if mode == "profit":
        fixed = _check_fixed_cost(fixed_cost, m)
        margin_v = _check_margin(margin)
        if p is not None:
            p_max = check_p(p, m, req, exc)
    elif mode == "p":
        p = check_p(p, m, req, exc)
    total = float(w_full.sum())
    u_allowed = u_full[:, allowed]
    reach = (u_allowed > 0).any(axis=1)
    active = reach & (w_full > 0)
    if mode == "target_share":
        share = _check_share(target_share)
        all_util = u_allowed.sum(axis=1)
        best_possible = float(np.sum(w_full * all_util / (o_full + all_util)))
        if best_possible < share * total * (1.0 - 1e-12) or total <= 0:
            raise InfeasibleError(
                f"target_share={share:g} cannot be reached: with all {allowed.size} allowed "
                f"candidates open the sites capture {format_number(best_possible)} of "
                f"{format_number(total)} jobs ({100 * best_possible / max(total, 1e-300):.1f} %)"
            )
    u, o, w = _merge(u_allowed[active], o_full[active], w_full[active])
    k = w.size
    report = ProgressReporter(progress, t0)
    extras: dict[str, Any] = {"mode": mode, "total_jobs": total, "customer_groups": int(k)}
    w_active = float(w.sum())

    def finish(
        open_local: np.ndarray, bound_f: float, status: str, solver: str, more: dict[str, Any]
    ) -> Solution:
        open_cols = np.sort(allowed[np.asarray(open_local, dtype=np.intp)])
        const = margin_v * w_active if mode == "profit" else w_active
        if "_first_f" in more:
            more["first_objective"] = const - float(more.pop("_first_f"))
        return _solution(
            u_full,
            o_full,
            w_full,
            open_cols,
            mode=mode,
            margin=margin_v,
            fixed=fixed,
            bound_captured_value=const - bound_f,
            status=status,
            solver=solver,
            started=t0,
            extras={**extras, **more},
        )

    if mode in {"p", "profit"}:
        assert mode == "profit" or p is not None
        p_int = int(p) if mode == "p" else None  # type: ignore[arg-type]
        a = w * (margin_v if mode == "profit" else 1.0)
        prob = CaptureProblem(u, o, a, fixed[allowed])
        if k == 0:
            open_l = _trivial_open(prob, p=p_int, required=req_l)
            return finish(
                open_l, prob.value(open_l), "optimal", "trivial (no customer can be won)", {}
            )
        res_open, res_bound, status, more = _optimise(
            prob,
            p=p_int,
            p_max=p_max,
            required=req_l,
            deadline=deadline,
            gap=gap,
            report=report,
            should_stop=should_stop,
            started=t0,
        )
        return finish(res_open, res_bound, status, _solver_name(), more)

    # ---- target share: the fewest sites, then the most jobs with that many ---------------------
    need = share * total  # jobs to capture (only the winnable customers can give them)
    prob = CaptureProblem(u, o, w, np.zeros(allowed.size))
    lost_target = w_active - share * total  # F must be <= this
    tol = 1e-9 * max(total, 1.0)
    if k == 0 or need <= 0:
        # nothing to win, or the target is 0 after all: the required sites (at least one)
        open_l = _trivial_open(prob, p=max(req_l.size, 1), required=req_l)
        return finish(open_l, prob.value(open_l), "optimal", "trivial", {"min_sites_proven": True})
    first_k, first_open = _greedy_to_target(prob, req_l, lost_target + tol)
    extras["first_solution_time_s"] = time.perf_counter() - t0
    extras["greedy_sites"] = int(first_k)
    best_k, best_open = first_k, first_open
    proven_min = best_k <= max(req_l.size, 1)
    kk = best_k - 1
    while not proven_min and kk >= max(req_l.size, 1):
        if time.perf_counter() >= deadline or (should_stop is not None and should_stop()):
            break
        start = greedy(prob, p=kk, required=req_l)
        start, _ = local_search(
            prob, start, p=kk, required=req_l, deadline=time.perf_counter() + 0.1 * limit
        )
        if prob.value(start) <= lost_target + tol:
            best_k, best_open = kk, start
            kk -= 1
            continue
        res = solve_capture(
            prob,
            p=kk,
            required=req_l,
            start_open=start,
            deadline=deadline,
            gap_target=1e-12,
            report=report,
            should_stop=should_stop,
            target=lost_target + tol,
        )
        if res.status == "reached":
            best_k, best_open = kk, res.open
            kk -= 1
        elif res.status == "cutoff":
            proven_min = True
        else:
            break
    if kk < max(req_l.size, 1):
        proven_min = True
    extras["min_sites_proven"] = bool(proven_min)
    res_open, res_bound, status, more = _optimise(
        prob,
        p=best_k,
        p_max=None,
        required=req_l,
        deadline=deadline,
        gap=gap,
        report=report,
        should_stop=should_stop,
        started=t0,
        start=best_open,
    )
    if prob.value(res_open) > lost_target + tol:  # cannot happen: best_open reaches it
        res_open = best_open
    if not proven_min and status == "optimal":
        status = "time_limit" if not (should_stop and should_stop()) else "stopped"
    more.pop("first_solution_time_s", None)
    return finish(res_open, res_bound, status, _solver_name(), more)


def _check_share(target_share: object) -> float:
    try:
        share = float(target_share)  # type: ignore[arg-type]
    except (TypeError, ValueError) as err:
        raise InputError(f"target_share must be a number in (0, 1], got {target_share!r}") from err
    if not (0.0 < share <= 1.0):
        raise InputError(f"target_share must be in (0, 1] (a share of all jobs), got {share!r}")
    return share


def _solver_name() -> str:
    return f"planner outer approximation branch-and-cut, HiGHS {_version('highspy')}"


def _trivial_open(prob: CaptureProblem, *, p: int | None, required: np.ndarray) -> np.ndarray:
    """Open set when no customer can be won: required sites, then the cheapest ones."""
    want = p if p is not None else max(required.size, 1)
    free = np.setdiff1d(np.arange(prob.m), required)
    free = free[np.argsort(prob.f[free], kind="stable")]
    return np.sort(np.concatenate([required, free[: max(want - required.size, 0)]]))


def _greedy_to_target(
    prob: CaptureProblem, required: np.ndarray, lost_target: float
) -> tuple[int, np.ndarray]:
    """Greedy until the lost jobs are at most ``lost_target``; returns (sites, open set)."""
    cur = np.asarray(required, dtype=np.intp)
    if cur.size and prob.value(cur) <= lost_target:
        return cur.size, cur
    kk = max(cur.size, 1)
    while True:
        cur = greedy(prob, p=kk, required=required)
        if prob.value(cur) <= lost_target or kk >= prob.m:
            return kk, cur
        kk += 1


def _optimise(
    prob: CaptureProblem,
    *,
    p: int | None,
    p_max: int | None,
    required: np.ndarray,
    deadline: float,
    gap: float,
    report: ProgressReporter,
    should_stop: StopCallback | None,
    started: float,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, float, str, dict[str, Any]]:
    """Greedy + swaps, then the branch-and-cut; returns (open, bound on F, status, extras)."""
    m = prob.m
    if p is not None and (p >= m or p == required.size):
        open_l = np.arange(m) if p >= m else np.sort(required)
        return open_l, prob.value(open_l), "optimal", {}
    first = greedy(prob, p=p, required=required, p_max=p_max)
    first, val = local_search(
        prob,
        first,
        p=p,
        required=required,
        p_max=p_max,
        deadline=started + 0.25 * max(deadline - started, 0.0),
    )
    if start is not None and prob.value(start) < val:
        first, val = np.sort(start), prob.value(start)
    more: dict[str, Any] = {"first_solution_time_s": time.perf_counter() - started}
    report("greedy + swaps", objective=val, bound=-np.inf)
    # F's gap target from the requested gap on the captured jobs / profit (their value is
    # sum(a) - F: the same absolute gap)
    answer = abs(float(prob.a.sum()) - val)
    f_gap = max(gap, 1e-12) * max(answer, 1e-12) / max(abs(val), 1e-12)
    res = solve_capture(
        prob,
        p=p,
        required=required,
        start_open=first,
        deadline=deadline,
        gap_target=max(min(0.5 * f_gap, 0.5), 1e-12),
        report=report,
        should_stop=should_stop,
        p_max=p_max,
    )
    more.update(res.extras)
    more["_first_f"] = val  # in F's units; the caller converts it
    return res.open, res.bound, res.status, more


def _solution(
    u: np.ndarray,
    o: np.ndarray,
    w: np.ndarray,
    open_cols: np.ndarray,
    *,
    mode: str,
    margin: float,
    fixed: np.ndarray,
    bound_captured_value: float,
    status: str,
    solver: str,
    started: float,
    extras: dict[str, Any],
) -> Solution:
    """The :class:`Solution` of an open set, with its exact capture and the proven bound."""
    sub = u[:, open_cols]
    util = sub.sum(axis=1)
    per_customer = w * util / (o + util)
    captured = float(per_customer.sum())
    site_jobs = (w / (o + util))[:, None] * sub
    # jobs lost if one site closes: captured - capture without it
    without = sum_of_others(sub)
    marginal = captured - (w[:, None] * without / (o[:, None] + without)).sum(axis=0)
    fixed_open = float(fixed[open_cols].sum())
    if mode == "profit":
        objective = margin * captured - fixed_open
        upper = bound_captured_value
    else:
        objective = captured
        upper = bound_captured_value
    upper = max(float(upper), objective)
    gap = max(0.0, (upper - objective) / max(abs(objective), 1e-12))
    if status == "optimal" and gap > OPTIMALITY_GAP:
        logger.warning("max_capture: status 'optimal' with a gap of %.3g; 'unproven'", gap)
        status = "unproven"
    optimal = status == "optimal"
    if optimal:
        gap = 0.0
    assignment = np.where(
        util > 0, open_cols[np.argmax(sub, axis=1)] if open_cols.size else -1, -1
    ).astype(np.intp)
    total = float(w.sum())
    extras.update(
        {
            "captured": captured,
            "share": captured / total if total > 0 else 0.0,
            "captured_per_customer": per_customer,
            "site_jobs": site_jobs.sum(axis=0),
            "site_marginal_jobs": marginal,
        }
    )
    if mode == "profit":
        extras["fixed_cost"] = fixed_open
        extras["profit"] = objective
    return Solution(
        model="max_capture",
        open=np.asarray(open_cols, dtype=np.intp),
        assignment=assignment,
        objective=objective,
        lower_bound=objective,
        gap=gap,
        optimal=optimal,
        status=status,
        solve_time_s=time.perf_counter() - started,
        solver=solver,
        extras=extras,
        upper_bound=upper,
    )
