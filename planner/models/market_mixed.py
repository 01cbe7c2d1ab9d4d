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
approximation does not apply. Submodularity gives the cuts instead (Nemhauser & Wolsey 1981;
Ljubic & Moreno 2018): for every plan ``T`` and customer group ``g``,

    theta_g <= F_g(T) + sum over j not in T of rho_gj(T) y_j

(``rho_gj(T)`` the jobs ``j`` adds to ``T``) holds at every plan and is tight at ``T``. A HiGHS
master over the plan ``y`` and one ``theta`` per group of customers maximises the jobs under
the cuts so far, which bounds every plan; cuts are added at the level sets of its LP optimum,
then at each integer answer until the answer's true value meets the bound. Greedy + swaps is
the first answer and the warm start. At the time limit the best plan is returned with the
master's proven bound and gap.
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
    _check_margin,
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
        margin_v = _check_margin(margin)
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
        loop = _CutLoop(prob, required=req, deadline=deadline, should_stop=should_stop)
        open_k, proven_min = loop.fewest(need, first)
        extras["min_sites_proven"] = bool(proven_min)
        open_cols, bound, status = loop.best(
            "p", k=open_k.size, start=open_k, margin=1.0, fixed=fixed, report=report
        )
        if prob.captured(open_cols) < need:  # cannot happen: open_k reaches it
            open_cols = open_k
        if not proven_min and status == "optimal":
            status = _unfinished(should_stop)
        extras.update(loop.extras())
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
    loop = _CutLoop(prob, required=req, deadline=deadline, should_stop=should_stop)
    open_cols, bound, status = loop.best(
        mode, k=k_p, k_max=k_max, start=first, margin=margin_v, fixed=fixed, report=report
    )
    extras.update(loop.extras())
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

    # ---- greedy + one-swap: the first answer and the master's warm start --------------------
    def _gains(self, cols: np.ndarray) -> np.ndarray:
        """Jobs each column adds to the plan ``cols`` (summed :meth:`gains`)."""
        return self.gains(np.asarray(cols, dtype=np.intp)).sum(axis=0)

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
            gain = margin * self._gains(np.asarray(chosen, dtype=np.intp))
            gain = gain - (fixed if mode_profit else 0.0)
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
                gain = margin * self._gains(base) - (fixed if mode == "profit" else 0.0)
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
            gain = self._gains(cur)
            gain[cur] = -np.inf
            gain[np.setdiff1d(np.arange(self.m), self.allowed)] = -np.inf
            cur = np.sort(np.append(cur, int(np.argmax(gain))))
        return cur

    # ---- submodular cuts ------------------------------------------------------------------
    def gains(self, cols: np.ndarray) -> np.ndarray:
        """``rho[i, j]``: jobs customer ``i`` adds when column ``j`` joins ``cols`` (0 for the
        columns of ``cols``)."""
        a, b = self._sums(cols)
        d = self.c + a
        partner_gain = (self.w / d)[:, None] * self.u
        own_gain = (self.w * (self.c - b) / d)[:, None] * self.u / (d[:, None] + self.u)
        rho = np.where(self.partners[None, :], partner_gain, own_gain)
        rho[:, cols] = 0.0
        return np.asarray(rho)


#: Customers are summed into at most this many groups, one ``theta`` and one cut row each per
#: cut point: per-customer cuts are stronger but make the master too large to solve fast.
CUT_GROUPS = 64
#: LP rounds before the integer master (each adds cuts at the LP point's level sets).
LP_ROUNDS = 15


class _CutLoop:
    """Submodular cuts (Nemhauser & Wolsey 1981; Ljubic & Moreno 2018) in a HiGHS master.

    ``F`` is monotone and submodular in the plan ``S``, so for every plan ``T`` and every
    customer group ``g``: ``theta_g <= F_g(T) + sum_{j not in T} rho_gj(T) y_j`` holds at every
    plan ``y``, and is tight at ``y = T``. The master maximises ``sum_g theta_g`` over the
    cuts so far: its optimum bounds every plan; an LP phase adds cuts at the level sets of the
    fractional point (the ``k`` columns with the largest ``y``), then the integer master
    alternates with a cut at its answer until the answer's true value meets the bound (it
    must: a plan seen twice has its cut).
    """

    def __init__(
        self,
        prob: _Mixed,
        *,
        required: np.ndarray,
        deadline: float,
        should_stop: StopCallback | None,
    ) -> None:
        self.prob = prob
        n = prob.u.shape[0]
        self.groups = min(n, CUT_GROUPS)
        # customers of one nearest column together: their cuts move alike
        nearest = np.argmax(prob.u, axis=1) if prob.m else np.zeros(n, dtype=np.intp)
        self.group = np.asarray(nearest % self.groups, dtype=np.intp)
        self.required = np.asarray(required, dtype=np.intp)
        self.deadline = deadline
        self.should_stop = should_stop
        self.const: list[np.ndarray] = []
        self.coef: list[np.ndarray] = []
        self.seen: set[tuple[int, ...]] = set()
        self.rounds = 0

    def extras(self) -> dict[str, Any]:
        return {"cuts": len(self.const) * self.groups, "master_solves": self.rounds}

    def add(self, cols: np.ndarray) -> None:
        cols = np.sort(np.asarray(cols, dtype=np.intp))
        key = tuple(cols.tolist())
        if key in self.seen:
            return
        self.seen.add(key)
        prob = self.prob
        f = prob.per_customer(cols)
        rho = prob.gains(cols)
        self.const.append(np.bincount(self.group, weights=f, minlength=self.groups))
        coef = np.zeros((self.groups, prob.m))
        np.add.at(coef, self.group, rho)
        self.coef.append(coef)

    def _master(
        self,
        *,
        lo: float,
        hi: float,
        objective: str,
        integer: bool,
        margin: float,
        fixed: np.ndarray,
        need: float | None = None,
        start: np.ndarray | None = None,
    ) -> Any:
        """Solve the master: ``lo <= sum(y) <= hi``; objective ``"capture"`` (margin x sum
        theta - fixed y) or ``"count"`` (fewest sites with sum theta >= need)."""
        prob, g, m = self.prob, self.groups, self.prob.m
        cuts = len(self.const)
        coef = np.vstack(self.coef)  # (cuts * g) x m
        ri, jj = np.nonzero(coef > 0)
        rows = [np.arange(cuts * g), ri]
        cols = [m + np.tile(np.arange(g), cuts), jj]
        vals = [np.ones(cuts * g), -coef[ri, jj]]
        row_lo = [np.full(cuts * g, -np.inf)]
        row_hi = [np.concatenate(self.const)]
        r = cuts * g
        rows.append(np.full(m, r))
        cols.append(np.arange(m))
        vals.append(np.ones(m))
        row_lo.append(np.array([lo]))
        row_hi.append(np.array([hi]))
        r += 1
        if need is not None:
            rows.append(np.full(g, r))
            cols.append(m + np.arange(g))
            vals.append(np.ones(g))
            row_lo.append(np.array([need]))
            row_hi.append(np.array([np.inf]))
            r += 1
        a_mat = sp.csc_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, m + g)
        )
        c = np.zeros(m + g)
        if objective == "count":
            c[:m] = 1.0
        else:
            c[m:] = margin
            c[:m] = -fixed
        col_lower = np.zeros(m + g)
        col_upper = np.zeros(m + g)
        col_upper[prob.allowed] = 1.0
        col_lower[self.required] = 1.0
        col_upper[m:] = np.bincount(self.group, weights=prob.w, minlength=g)
        x0 = None
        if start is not None:
            x0 = np.zeros(m + g)
            x0[start] = 1.0
            rhs = np.stack(self.const) + (coef @ x0[:m]).reshape(cuts, g)
            x0[m:] = np.minimum(rhs.min(axis=0), col_upper[m:])
        self.rounds += 1
        return solve_mip(
            c,
            a_mat,
            row_lower=np.concatenate(row_lo),
            row_upper=np.concatenate(row_hi),
            col_lower=col_lower,
            col_upper=col_upper,
            integer=np.arange(m + g) < (m if integer else 0),
            time_limit=max(self.deadline - time.perf_counter(), 0.01),
            start=x0,
            maximize=objective != "count",
            mip_rel_gap=1e-9,
            should_stop=self.should_stop,
        )

    def _out_of_time(self) -> bool:
        stop = self.should_stop is not None and self.should_stop()
        return stop or time.perf_counter() >= self.deadline

    def best(
        self,
        mode: str,
        *,
        k: int | None,
        start: np.ndarray,
        margin: float,
        fixed: np.ndarray,
        report: ProgressReporter,
        k_max: int | None = None,
    ) -> tuple[np.ndarray, float, str]:
        """Most jobs with ``k`` sites (``mode`` ``"p"``) or most profit (at most ``k_max``
        sites); returns (plan, proven upper bound, status)."""
        prob = self.prob
        size = k if mode == "p" and k is not None else (k_max or prob.m)
        lo, hi = (float(size), float(size)) if mode == "p" else (1.0, float(size))
        best = np.sort(np.asarray(start, dtype=np.intp))
        value = prob.objective(best, mode, margin, fixed)
        bound = self._plain_bound(best, int(hi), margin, fixed if mode == "profit" else None)
        self.add(np.zeros(0, dtype=np.intp))
        for size in range(1, best.size + 1):
            self.add(best[:size])  # the greedy order is lost after swaps; prefixes by index
        self.add(best)
        kw: dict[str, Any] = {
            "margin": margin, "fixed": fixed, "objective": "capture", "lo": lo, "hi": hi,
        }  # fmt: skip
        last = np.inf
        for _ in range(LP_ROUNDS):  # the LP phase: cuts at the level sets
            if self._out_of_time():
                break
            res = self._master(integer=False, **kw)
            if res.x is None:
                break
            bound = min(bound, res.objective)
            y = res.x[: prob.m]
            order = np.argsort(-y, kind="stable")
            top = int(np.sum(y > 1e-9))
            sizes = range(1, min(max(top, int(hi) if mode == "p" else 1), 2 * int(hi)) + 1)
            for size in sizes:
                if self._out_of_time():
                    break
                trial = np.sort(order[:size])
                self.add(trial)
                if mode == "profit" or size == k:
                    got = prob.objective(trial, mode, margin, fixed)
                    if got > value and np.isin(self.required, trial).all():
                        best, value = trial, got
            report("submodular cuts, LP", objective=-value, bound=-bound)
            if bound - value <= OPTIMALITY_GAP * max(abs(value), 1e-12):
                return best, bound, "optimal"
            if last - res.objective <= 1e-4 * max(abs(value), 1e-12):
                break
            last = res.objective
        while not self._out_of_time():
            res = self._master(integer=True, start=best, **kw)
            if res.x is None:
                break
            bound = min(bound, res.bound if res.status != "optimal" else res.objective)
            plan = np.flatnonzero(res.x[: prob.m] > 0.5)
            got = prob.objective(plan, mode, margin, fixed)
            if got > value:
                best, value = plan, got
            report("submodular cuts, integer master", objective=-value, bound=-bound)
            if bound - value <= OPTIMALITY_GAP * max(abs(value), 1e-12):
                return best, max(bound, value), "optimal"
            if res.status != "optimal":
                break
            self.add(plan)
        return best, max(bound, value), _unfinished(self.should_stop)

    def _plain_bound(
        self, plan: np.ndarray, size: int, margin: float, fixed: np.ndarray | None
    ) -> float:
        """One cut alone: ``F(S) + the best size - |required| gains rho_j(S)`` bounds every
        plan of at most ``size`` sites holding the required ones (``S`` holds them too); with
        ``fixed`` (profit) each gain is less the column's fixed cost, the positive ones only,
        and the required sites' fixed costs are paid."""
        prob = self.prob
        gain = margin * prob.gains(plan).sum(axis=0)
        free = np.setdiff1d(prob.allowed, plan)
        score = gain[free] - (fixed[free] if fixed is not None else 0.0)
        top = np.sort(score)[::-1][: max(size - self.required.size, 0)]
        paid = float(fixed[self.required].sum()) if fixed is not None else 0.0
        return margin * prob.captured(plan) - paid + float(np.maximum(top, 0.0).sum())

    def fewest(self, need: float, start: np.ndarray) -> tuple[np.ndarray, bool]:
        """Fewest sites reaching ``need`` jobs: (plan, whether its size is proven minimal)."""
        prob = self.prob
        best = np.sort(np.asarray(start, dtype=np.intp))
        floor = max(self.required.size, 1)
        if best.size <= floor:
            return best, True
        self.add(np.zeros(0, dtype=np.intp))
        self.add(best)
        while not self._out_of_time():
            res = self._master(
                lo=float(floor), hi=float(best.size), objective="count", integer=True,
                margin=1.0, fixed=np.zeros(prob.m), need=need,
            )  # fmt: skip
            if res.status == "infeasible":
                return best, True  # no smaller plan reaches it
            if res.x is None or res.status != "optimal":
                return best, False
            plan = np.flatnonzero(res.x[: prob.m] > 0.5)
            if prob.captured(plan) >= need:
                return (plan, True) if plan.size <= best.size else (best, True)
            self.add(plan)
        return best, False


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
        solver=f"planner submodular cuts, HiGHS {_version('highspy')}",
        extras=extras,
        upper_bound=upper,
    )
