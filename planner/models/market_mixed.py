"""Maximum capture with new own sites and existing partner shops together (MNL / Huff demand).

The two-tier layout with partners chooses among two kinds of columns at once. An **own**
candidate does not exist until we open it (:func:`max_capture`); a **partner** shop exists
whether or not we contract it, and one we do not contract is a competitor
(:func:`max_capture_partners`). With ``A_i`` the summed utility of customer ``i`` for our open
own sites, ``B_i`` for our contracted partners, ``P_i`` for **every** partner column (excluded
ones too: they exist) and ``outside[i]`` everything else (other competitors, not coming at
all), customer ``i`` brings us

    weights[i] * (A_i + B_i) / (outside[i] + P_i + A_i)

jobs. The function is monotone and submodular in the joint plan (the marginal value of a
partner, ``u_ik / (c_i + A_i)``, falls as own sites open; that of an own site,
``u_ij (c_i - B_i) / ((c_i + A_i)(c_i + A_i + u_ij))`` with ``c_i = outside[i] + P_i``, falls
as either kind is added), but not concave in ``(A, B)``: :func:`max_capture`'s outer
approximation does not apply. It is solved exactly by Haase's (2009) linear formulation,
extended with the partners, in HiGHS: per customer ``s_i`` is the probability of the outside
option, ``x_ij`` of an own site, and the partners, always there, take ``(u_ik / o_i) s_i``
each, of which ``z_ik`` is ours::

    s_i (1 + P_i / o_i) + sum_j x_ij = 1
    x_ij <= (u_ij / o_i) s_i,     x_ij <= u_ij / (u_ij + o_i + P_i) y_j      (own j)
    z_ik <= (u_ik / o_i) s_i,     z_ik <= u_ik / (o_i + P_i) y_k              (partner k)

maximising ``sum_i w_i (sum_j x_ij + sum_k z_ik)``. More capture needs a smaller ``s_i``, and
the ratios bound it below by the MNL value, so every optimum has the exact shares. A greedy
plan with one-swap improvement is the warm start and the first answer; HiGHS's dual bound is
the proven bound (``gap`` when it stops at the time limit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from importlib.metadata import version as _version
from typing import Any

import numpy as np
import scipy.sparse as sp

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
)
from planner.models._mip import solve_mip
from planner.models.market import (
    _check_fixed_cost,
    _check_mode,
    _check_outside,
    _check_share,
    _check_utility,
)

logger = logging.getLogger(__name__)

__all__ = ["max_capture_mixed", "mixed_capture"]


def _check_partners(partners: object, m: int) -> np.ndarray:
    """``partners`` as a bool mask over the ``m`` columns (a mask, or column indices)."""
    arr = np.asarray(partners)
    if arr.dtype == bool:
        if arr.shape != (m,):
            raise InputError(
                f"partners must be a bool mask of the {m} columns or a list of column indices, "
                f"got a mask of shape {arr.shape}"
            )
        return arr.copy()
    try:
        idx = arr.astype(np.int64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise InputError(
            f"partners must be column indices or a bool mask, got {partners!r}"
        ) from err
    if idx.size and (idx.min() < 0 or idx.max() >= m):
        raise InputError(f"partners must be column indices in 0..{m - 1}, got {idx.tolist()}")
    mask = np.zeros(m, dtype=bool)
    mask[idx] = True
    return mask


def mixed_capture(
    utility: np.ndarray,
    weights: np.ndarray,
    outside: np.ndarray,
    partners: np.ndarray,
    open_cols: Iterable[int] | np.ndarray,
) -> np.ndarray:
    """Jobs each customer brings us with ``open_cols`` open (own) or contracted (partner):
    ``weights * (A + B) / (outside + P + A)`` (see the module docstring)."""
    u = np.asarray(utility, dtype=float)
    mask = np.asarray(partners, dtype=bool)
    cols = np.asarray(list(open_cols) if not isinstance(open_cols, np.ndarray) else open_cols)
    cols = cols.astype(np.intp)
    is_p = mask[cols]
    a = u[:, cols[~is_p]].sum(axis=1)
    b = u[:, cols[is_p]].sum(axis=1)
    c = np.asarray(outside, dtype=float) + u[:, mask].sum(axis=1)
    return np.asarray(weights, dtype=float) * (a + b) / (c + a)


def max_capture_mixed(
    utility: np.ndarray,
    p: int | None = None,
    weights: np.ndarray | None = None,
    *,
    outside: np.ndarray,
    partners: Iterable[int] | np.ndarray,
    fixed_cost: np.ndarray | float | None = None,
    margin: float | None = None,
    target_share: float | None = None,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    time_limit: float | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Choose own sites to open and partner shops to contract, together, for the most
    customers (or profit) won, when every partner competes with us unless contracted.

    The arguments are those of :func:`max_capture` plus ``partners``; only the share differs:
    customer ``i`` brings ``weights[i] * (A_i + B_i) / (outside[i] + P_i + A_i)`` jobs (see
    the module docstring).

    Parameters
    ----------
    utility
        ``utility[i, j] >= 0``: customer ``i``'s attraction to column ``j`` (0 where it cannot
        reach it), customers x columns (own candidates and partner shops).
    p
        Number of sites (own and partners together; required ones count). With
        ``fixed_cost`` and ``margin``: the most that may be chosen (default: no cap).
    weights
        Jobs per customer, all shops and none; default 1 each.
    outside
        ``outside[i] > 0``: the attraction of everything that is no column (the other
        competitors plus not coming at all); one number is used for every customer.
    partners
        Which columns are partner shops (a bool mask, or their indices); the others are own
        candidates.
    fixed_cost, margin
        Profit objective: ``margin`` (money per job, > 0) x jobs captured - the chosen
        columns' ``fixed_cost`` (per column, or one number for all).
    target_share
        Fewest sites capturing at least this share (0 < share <= 1) of all jobs; among those,
        the most jobs.
    required, excluded
        Columns that must / must not be chosen. An excluded partner still competes.
    time_limit
        Seconds for the whole solve (default 60); at the limit the best plan is returned with
        its proven gap.
    progress
        Called with the solver's progress (objective and bound in jobs captured or profit).
    should_stop
        Polled during the solve; True stops it with the best plan so far.

    Returns
    -------
    Solution
        ``objective`` = jobs captured (modes ``p`` and ``target_share``) or profit;
        ``upper_bound`` its proven bound. ``assignment``: each customer's most attractive
        chosen column (-1 when none attracts it). ``extras`` as :func:`max_capture`'s
        (``mode``, ``captured``, ``share``, ``total_jobs``, ``captured_per_customer``,
        ``site_jobs``, ``site_marginal_jobs`` (a partner's own jobs: closed, it competes and
        takes nothing from our other sites), ``fixed_cost`` and ``profit``, ``first_objective``,
        ``first_solution_time_s``, ``min_sites_proven``) plus ``partners_open`` (how many of
        ``open`` are partners).

    Raises
    ------
    InputError
        Malformed arrays, options that do not fit together.
    InfeasibleError
        ``p`` out of range, columns both required and excluded, a target share that every
        allowed column together does not reach.
    """
    t0 = time.perf_counter()
    u_full = _check_utility(utility)
    n, m = u_full.shape
    o_full = _check_outside(outside, n)
    w_full = check_weights(weights, n)
    mask = _check_partners(partners, m)
    mode = _check_mode(p, fixed_cost, margin, target_share)
    req, exc = check_required_excluded(required, excluded, m)
    limit = check_time_limit(time_limit)
    deadline = t0 + limit
    fixed = np.zeros(m)
    margin_v = 1.0
    k_max = m - exc.size
    if mode == "profit":
        fixed = _check_fixed_cost(fixed_cost, m)
        try:
            margin_v = float(margin)  # type: ignore[arg-type]
        except (TypeError, ValueError) as err:
            raise InputError(f"margin must be a number (money per job), got {margin!r}") from err
        if not (np.isfinite(margin_v) and margin_v > 0):
            raise InputError(f"margin must be > 0 (money per job), got {margin!r}")
        if p is not None:
            k_max = check_p(p, m, req, exc)
    elif mode == "p":
        p = check_p(p, m, req, exc)
    prob = _Mixed(u_full, o_full, w_full, mask, exc)
    total = float(w_full.sum())
    # progress in max_capture's units: jobs not won (or fixed costs + margin x jobs not won)
    report = ProgressReporter(progress, t0, offset=margin_v * total)
    extras: dict[str, Any] = {"mode": mode, "total_jobs": total}

    if mode == "target_share":
        share = _check_share(target_share)
        allowed = np.setdiff1d(np.arange(m), exc)
        best_possible = float(prob.captured(allowed))
        if best_possible < share * total * (1.0 - 1e-12) or total <= 0:
            raise InfeasibleError(
                f"target_share={share:g} cannot be reached: with all {allowed.size} allowed "
                f"sites chosen they capture {format_number(best_possible)} of "
                f"{format_number(total)} jobs ({100 * best_possible / max(total, 1e-300):.1f} %)"
            )
        need = share * total - 1e-9 * max(total, 1.0)
        first = prob.greedy_to(need, req)
        extras["first_objective"] = prob.captured(first)
        extras["first_solution_time_s"] = time.perf_counter() - t0
        extras["greedy_sites"] = int(first.size)
        fewest = prob.milp(
            "fewest", k=None, need=need, required=req, start=first, deadline=deadline,
            should_stop=should_stop,
        )  # fmt: skip
        k_best = first.size if fewest.x is None else round(fewest.objective)
        open_k = first if fewest.x is None else prob.open_of(fewest.x)
        proven_min = fewest.optimal or k_best <= max(req.size, 1)
        extras["min_sites_proven"] = bool(proven_min)
        res = prob.milp(
            "capture", k=k_best, need=need, required=req, start=open_k, deadline=deadline,
            should_stop=should_stop, progress=report,
        )  # fmt: skip
        open_cols = open_k if res.x is None else prob.open_of(res.x)
        if prob.captured(open_cols) < need:  # keep the plan that reaches the target
            open_cols = open_k
        status = res.status if proven_min else _unfinished(should_stop)
        bound = max(res.bound, prob.captured(open_cols))
        return _finish(
        prob, open_cols, mode=mode, margin=margin_v, fixed=fixed, bound=bound, status=status,
        started=t0, extras=extras,
    )  # fmt: skip

    k_p = p if mode == "p" else None
    first = prob.greedy(req, k=k_p, k_max=k_max, margin=margin_v, fixed=fixed)
    first_value = prob.objective(first, mode, margin_v, fixed)
    extras["first_objective"] = first_value
    extras["first_solution_time_s"] = time.perf_counter() - t0
    report("greedy + swaps", objective=-first_value, bound=-np.inf)
    res = prob.milp(
        mode, k=p if mode == "p" else None, k_max=k_max, required=req, start=first,
        deadline=deadline, should_stop=should_stop, progress=report, margin=margin_v,
        fixed=fixed,
    )  # fmt: skip
    open_cols = first
    if res.x is not None:
        cand = prob.open_of(res.x)
        if prob.objective(cand, mode, margin_v, fixed) >= first_value:
            open_cols = cand
    status = res.status if res.x is not None else _unfinished(should_stop)
    value = prob.objective(open_cols, mode, margin_v, fixed)
    bound = max(float(res.bound) if np.isfinite(res.bound) else np.inf, value)
    return _finish(
        prob, open_cols, mode=mode, margin=margin_v, fixed=fixed, bound=bound, status=status,
        started=t0, extras=extras,
    )  # fmt: skip


def _unfinished(should_stop: StopCallback | None) -> str:
    return "stopped" if should_stop is not None and should_stop() else "time_limit"


class _Mixed:
    """One instance: utilities, outside, weights, partner mask and excluded columns."""

    def __init__(
        self, u: np.ndarray, o: np.ndarray, w: np.ndarray, partners: np.ndarray, exc: np.ndarray
    ) -> None:
        self.u, self.o, self.w, self.partners = u, o, w, partners
        self.m = u.shape[1]
        self.allowed = np.setdiff1d(np.arange(self.m), exc)
        self.c = o + u[:, partners].sum(axis=1)  # outside + every partner (all exist)

    def per_customer(self, cols: np.ndarray) -> np.ndarray:
        return mixed_capture(self.u, self.w, self.o, self.partners, cols)

    def captured(self, cols: np.ndarray) -> float:
        return float(self.per_customer(np.asarray(cols, dtype=np.intp)).sum())

    def objective(self, cols: np.ndarray, mode: str, margin: float, fixed: np.ndarray) -> float:
        got = self.captured(cols)
        return margin * got - float(fixed[cols].sum()) if mode == "profit" else got

    def open_of(self, x: np.ndarray) -> np.ndarray:
        return np.flatnonzero(x[: self.m] > 0.5).astype(np.intp)

    # ---- greedy + one-swap: the first answer and the MILP's warm start ----------------------
    def _gains(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Jobs each column adds to the plan with utility sums ``a`` (own) and ``b`` (ours)."""
        u = self.u
        d = self.c + a
        partner_gain = (self.w / d) @ u
        own_gain = ((self.w * (self.c - b) / d)[:, None] * u / (d[:, None] + u)).sum(axis=0)
        return np.where(self.partners, partner_gain, own_gain)

    def greedy(
        self,
        required: np.ndarray,
        *,
        k: int | None,
        k_max: int,
        margin: float,
        fixed: np.ndarray,
    ) -> np.ndarray:
        """Greedy by marginal jobs (or profit), then swaps while they improve."""
        chosen = list(np.asarray(required, dtype=np.intp))
        mode_profit = k is None
        while len(chosen) < (k if k is not None else k_max):
            a, b = self._sums(np.asarray(chosen, dtype=np.intp))
            gain = margin * self._gains(a, b) - (fixed if mode_profit else 0.0)
            gain[chosen] = -np.inf
            gain[np.setdiff1d(np.arange(self.m), self.allowed)] = -np.inf
            j = int(np.argmax(gain))
            if not np.isfinite(gain[j]) or (mode_profit and gain[j] <= 0 and chosen):
                break
            chosen.append(j)
        cur = np.sort(np.asarray(chosen, dtype=np.intp))
        mode = "profit" if mode_profit else "p"
        return self._swap(cur, required, mode, margin, fixed)

    def _sums(self, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        is_p = self.partners[cols]
        a = self.u[:, cols[~is_p]].sum(axis=1)
        b = self.u[:, cols[is_p]].sum(axis=1)
        return a, b

    def _swap(
        self, cur: np.ndarray, required: np.ndarray, mode: str, margin: float, fixed: np.ndarray
    ) -> np.ndarray:
        best = self.objective(cur, mode, margin, fixed)
        improved = True
        rounds = 0
        while improved and rounds < 20:
            improved = False
            rounds += 1
            outs = np.setdiff1d(cur, required)
            ins = np.setdiff1d(self.allowed, cur)
            for j_out in outs:
                base = cur[cur != j_out]
                a, b = self._sums(base)
                gain = margin * self._gains(a, b) - (fixed if mode == "profit" else 0.0)
                j_in = ins[np.argmax(gain[ins])] if ins.size else None
                if j_in is None:
                    break
                trial = np.sort(np.append(base, j_in))
                val = self.objective(trial, mode, margin, fixed)
                if val > best * (1 + 1e-12) + 1e-12:
                    cur, best, improved = trial, val, True
                    break
        return cur

    def greedy_to(self, need: float, required: np.ndarray) -> np.ndarray:
        """Greedy until the captured jobs reach ``need`` (at least one site)."""
        cur = np.asarray(required, dtype=np.intp)
        while cur.size == 0 or self.captured(cur) < need:
            a, b = self._sums(cur)
            gain = self._gains(a, b)
            gain[cur] = -np.inf
            gain[np.setdiff1d(np.arange(self.m), self.allowed)] = -np.inf
            cur = np.sort(np.append(cur, int(np.argmax(gain))))
        return cur

    # ---- the MILP -----------------------------------------------------------------------------
    def milp(
        self,
        mode: str,
        *,
        k: int | None,
        required: np.ndarray,
        start: np.ndarray,
        deadline: float,
        should_stop: StopCallback | None,
        need: float | None = None,
        k_max: int | None = None,
        progress: ProgressReporter | None = None,
        margin: float = 1.0,
        fixed: np.ndarray | None = None,
    ) -> Any:
        """Haase's formulation with partners (module docstring) in HiGHS.

        ``mode``: ``"p"`` (most jobs with ``k`` sites), ``"profit"``, ``"capture"`` (most jobs
        with ``k`` sites and at least ``need``) or ``"fewest"`` (fewest sites reaching
        ``need``)."""
        u, o, w, m = self.u, self.o, self.w, self.m
        n = u.shape[0]
        p_sum = self.c - o
        ii, jj = np.nonzero(u > 0)
        keep = np.isin(jj, self.allowed)
        ii, jj = ii[keep], jj[keep]
        npair = ii.size
        s_col = m + np.arange(n)
        x_col = m + n + np.arange(npair)
        is_p = self.partners[jj]
        ratio = u[ii, jj] / o[ii]
        cap = np.where(is_p, u[ii, jj] / self.c[ii], u[ii, jj] / (u[ii, jj] + self.c[ii]))
        rows, cols, vals, lo, hi = [], [], [], [], []
        # s_i (1 + P_i / o_i) + sum_own x_ij = 1
        own = ~is_p
        rows += [np.arange(n), ii[own]]
        cols += [s_col, x_col[own]]
        vals += [1.0 + p_sum / o, np.ones(int(own.sum()))]
        lo.append(np.ones(n))
        hi.append(np.ones(n))
        r = n
        rid = r + np.arange(npair)  # x - ratio s <= 0
        rows += [rid, rid]
        cols += [x_col, s_col[ii]]
        vals += [np.ones(npair), -ratio]
        lo.append(np.full(npair, -np.inf))
        hi.append(np.zeros(npair))
        r += npair
        rid = r + np.arange(npair)  # x - cap y <= 0
        rows += [rid, rid]
        cols += [x_col, jj]
        vals += [np.ones(npair), -cap]
        lo.append(np.full(npair, -np.inf))
        hi.append(np.zeros(npair))
        r += npair
        count_lo, count_hi = 1.0, float(m)
        if mode in ("p", "capture"):
            count_lo = count_hi = float(k)  # type: ignore[arg-type]
        elif mode == "profit":
            count_hi = float(k_max if k_max is not None else m)
        rows.append(np.full(m, r))
        cols.append(np.arange(m))
        vals.append(np.ones(m))
        lo.append(np.array([count_lo]))
        hi.append(np.array([count_hi]))
        r += 1
        if mode in ("capture", "fewest"):  # captured >= need
            rows.append(np.full(npair, r))
            cols.append(x_col)
            vals.append(w[ii])
            lo.append(np.array([float(need)]))  # type: ignore[arg-type]
            hi.append(np.array([np.inf]))
            r += 1
        ncol = m + n + npair
        a_mat = sp.csc_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, ncol)
        )
        c = np.zeros(ncol)
        if mode == "fewest":
            c[:m] = 1.0
        else:
            c[x_col] = margin * w[ii]
            if mode == "profit" and fixed is not None:
                c[:m] = -fixed
        col_lower = np.zeros(ncol)
        col_upper = np.ones(ncol)
        col_upper[:m] = 0.0
        col_upper[self.allowed] = 1.0
        col_lower[required] = 1.0
        col_upper[s_col] = o / self.c
        integer = np.zeros(ncol, dtype=bool)
        integer[:m] = True
        x0 = self._start(start, ii=ii, jj=jj, ncol=ncol, s_col=s_col, x_col=x_col)
        remaining = max(deadline - time.perf_counter(), 0.01)
        report = None
        if progress is not None:

            def report(objective: float, bound: float) -> None:
                progress("HiGHS branch-and-bound", objective=-objective, bound=-bound)

        return solve_mip(
            c,
            a_mat,
            row_lower=np.concatenate(lo),
            row_upper=np.concatenate(hi),
            col_lower=col_lower,
            col_upper=col_upper,
            integer=integer,
            time_limit=remaining,
            start=x0,
            maximize=mode != "fewest",
            mip_rel_gap=1e-7,
            should_stop=should_stop,
            progress=report,
        )

    def _start(
        self,
        open_cols: np.ndarray,
        *,
        ii: np.ndarray,
        jj: np.ndarray,
        ncol: int,
        s_col: np.ndarray,
        x_col: np.ndarray,
    ) -> np.ndarray:
        """The MILP's values of the plan ``open_cols`` (exact MNL shares)."""
        x = np.zeros(ncol)
        x[open_cols] = 1.0
        a, _ = self._sums(np.asarray(open_cols, dtype=np.intp))
        denom = self.c + a
        x[s_col] = self.o / denom
        is_open = np.zeros(self.m, dtype=bool)
        is_open[open_cols] = True
        x[x_col] = np.where(is_open[jj], self.u[ii, jj] / denom[ii], 0.0)
        return x


def _finish(
    prob: _Mixed,
    open_cols: np.ndarray,
    *,
    mode: str,
    margin: float,
    fixed: np.ndarray,
    bound: float,
    status: str,
    started: float,
    extras: dict[str, Any],
) -> Solution:
    """The :class:`Solution` of a plan, with its exact capture and the proven bound."""
    open_cols = np.sort(np.asarray(open_cols, dtype=np.intp))
    u, w = prob.u, prob.w
    per_customer = prob.per_customer(open_cols)
    captured = float(per_customer.sum())
    a, _ = prob._sums(open_cols)
    denom = prob.c + a
    sub = u[:, open_cols]
    site_jobs = ((w / denom)[:, None] * sub).sum(axis=0)
    marginal = np.array(
        [
            site_jobs[k]
            if prob.partners[j]
            else captured - prob.captured(open_cols[open_cols != j])
            for k, j in enumerate(open_cols)
        ]
    )
    fixed_open = float(fixed[open_cols].sum())
    objective = margin * captured - fixed_open if mode == "profit" else captured
    upper = max(float(bound), objective)
    gap = max(0.0, (upper - objective) / max(abs(objective), 1e-12))
    if status == "optimal" and gap > OPTIMALITY_GAP:
        logger.warning("max_capture_mixed: status 'optimal' with a gap of %.3g", gap)
        status = "unproven"
    optimal = status == "optimal"
    if optimal:
        gap = 0.0
        upper = objective
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
            "site_marginal_jobs": marginal,
            "partners_open": int(prob.partners[open_cols].sum()),
        }
    )
    if mode == "profit":
        extras["fixed_cost"] = fixed_open
        extras["profit"] = objective
    return Solution(
        model="max_capture_mixed",
        open=open_cols,
        assignment=assignment,
        objective=objective,
        lower_bound=objective,
        gap=gap,
        optimal=optimal,
        status=status,
        solve_time_s=time.perf_counter() - started,
        solver=f"Haase's MNL formulation with partners, HiGHS {_version('highspy')}",
        extras=extras,
        upper_bound=upper,
    )
