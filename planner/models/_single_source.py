"""Single-source capacitated location, with one or several sizes per site.

The problem (minimisation, money per year)::

    min  sum_j sum_s F[j, s] y[j, s] + sum_i sum_j c[i, j] x[i, j]
    s.t. sum_j x[i, j] = 1                          every customer served by one site
         sum_i w[i] x[i, j] <= sum_s Q[j, s] y[j, s]   capacity of the size chosen
         sum_s y[j, s] <= 1                          one size per site
         (sum_{j, s} y[j, s] = p)                    optionally exactly p sites
         x, y binary

``c[i, j]`` is the cost of serving customer ``i``'s whole demand ``w[i]`` from site ``j``
(``inf`` where not allowed), ``F[j, s]`` and ``Q[j, s]`` the fixed cost and capacity of size
``s`` at site ``j`` (``F = inf`` where the size is not allowed). One size per site is the
classic single-source capacitated facility location problem (CFLP); several sizes make it the
modular ("sized") variant.

Solve path
----------
1. Checks that say at once when no answer exists: total capacity below demand, or customers
   whose demand fits no site they can reach (named by row).
2. A first answer within a fraction of a second: the sites of the Lagrangian solution at the
   starting multipliers, customers placed by regret within the capacities (with a repair that
   moves one customer aside to make room), improved by shift and swap moves and by opening,
   closing and resizing sites.
3. The bound: Lagrangian relaxation of the assignment constraints (multipliers ``u``), which
   splits into one 0-1 knapsack per site and size (Beasley 1993; Holmberg, Ronnqvist and Yuan
   1999)::

       L(u) = sum_i u[i] + sum_j min(0, min_s (F[j, s] + K[j, s](u)))
       K[j, s](u) = min { sum_i (c[i, j] - u[i]) x[i] : sum_i w[i] x[i] <= Q[j, s] }

   with, for the fixed-charge case, the valid inequality "open capacity >= demand" kept as a
   covering knapsack over the sites (solved as its LP, still a valid bound). Knapsacks are
   solved exactly by dynamic programming on integer demands (real demands are scaled and
   rounded down, a relaxation, so the bound stays valid); a site whose LP knapsack already
   shows it stays closed is not solved exactly. Multipliers follow the subgradient method with
   Polyak steps towards the best answer; every few steps the Lagrangian solution's sites
   seed a new answer.
4. Reduced-cost fixing with the best multipliers: a site that cannot be open, and a pair that
   cannot be used, in any answer better than the best one is removed; HiGHS then solves the
   reduced MIP from the best answer, and the reported bound is the larger of the Lagrangian
   bound and HiGHS's bound on the reduced problem.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from planner.errors import InfeasibleError
from planner.models._base import (
    OPTIMALITY_GAP,
    ProgressReporter,
    StopCallback,
    format_ids,
    format_number,
    highs_version,
    planner_version,
    relative_gap,
)
from planner.models._lagrangian import subgradient
from planner.models._local_search import penalize_inf
from planner.models._mip import solve_mip

logger = logging.getLogger(__name__)

#: The reduced MIP is only built with at most this many customer-site pairs left after
#: reduced-cost fixing (beyond, HiGHS's setup and presolve overrun interactive time limits).
MIP_MAX_PAIRS = 600_000

#: Knapsack capacities are scaled to at most this many units for the dynamic programme.
KNAPSACK_UNITS = 2_000

_EPS = 1e-9

#: Swap moves are tried among at most this many customers (those farthest above their
#: cheapest open site).
SWAP_POOL = 600
HIST = 60

#: Iterations of the uncapacitated subgradient that warm-starts the multipliers.
WARM_START_ITERATIONS = 20_000

#: Without ``p``, swap moves (open one site, close another) are tried for the closed sites
#: ranked this high by the Lagrangian (all sites with ``p``).
SWAP_SITES = 60


@dataclass
class Answer:
    """A feasible answer: size index per site (-1 closed) and site per customer."""

    size: np.ndarray
    assign: np.ndarray
    objective: float


@dataclass(frozen=True)
class SingleSourceResult:
    """Outcome of :func:`solve_single_source` (indices into the problem's rows/columns)."""

    size: np.ndarray
    assign: np.ndarray
    objective: float
    lower_bound: float
    status: str
    solver: str
    extras: dict[str, Any] = field(default_factory=dict)


class _Problem:
    """The instance (costs, demands, sizes) with the derived arrays the heuristics share."""

    def __init__(  # noqa: PLR0917 - the problem's data, in the order of the formulation
        self,
        c: np.ndarray,
        w: np.ndarray,
        fixed: np.ndarray,
        cap: np.ndarray,
        p: int | None,
        required: np.ndarray,
    ) -> None:
        self.c = c
        self.w = w
        self.F = fixed
        self.Q = np.where(np.isfinite(fixed), cap, 0.0)
        self.p = p
        self.n, self.m = c.shape
        self.S = fixed.shape[1]
        self.req = np.zeros(self.m, dtype=bool)
        self.req[required] = True
        self.site_ok = np.isfinite(fixed).any(axis=1)
        self.qmax = self.Q.max(axis=1)
        self.demand = float(w.sum())
        self.rows = np.arange(self.n)

    def value(self, size: np.ndarray, assign: np.ndarray) -> float:
        open_ = np.flatnonzero(size >= 0)
        return float(self.F[open_, size[open_]].sum() + self.c[self.rows, assign].sum())

    def loads(self, assign: np.ndarray) -> np.ndarray:
        return np.bincount(assign, weights=self.w, minlength=self.m)

    def fitting_size(self, j: int, load: float) -> int:
        """Cheapest size of site ``j`` that holds ``load`` (-1 if none)."""
        ok = np.isfinite(self.F[j]) & (self.Q[j] >= load - _EPS)
        if not ok.any():
            return -1
        return int(np.flatnonzero(ok)[np.argmin(self.F[j, ok])])

    def answer(self, size: np.ndarray, assign: np.ndarray) -> Answer:
        return Answer(size.copy(), assign.copy(), self.value(size, assign))


def check_single_source(
    c: np.ndarray,
    w: np.ndarray,
    fixed: np.ndarray,
    cap: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    row_ids: np.ndarray,
) -> None:
    """Raise :class:`InfeasibleError` when no answer can exist (before any solve).

    ``row_ids`` maps the problem's rows to the caller's customer rows for the messages.
    """
    q = np.where(np.isfinite(fixed), cap, 0.0).max(axis=1)
    demand = float(w.sum())
    if p is None:
        total = float(q.sum())
        if total < demand - 1e-9 * max(demand, 1.0):
            raise InfeasibleError(
                f"capacity {format_number(total)} < demand {format_number(demand)}"
            )
    else:
        req = np.zeros(q.size, dtype=bool)
        req[required] = True
        free = np.sort(q[~req])[::-1][: max(p - int(req.sum()), 0)]
        total = float(q[req].sum() + free.sum())
        if total < demand - 1e-9 * max(demand, 1.0):
            raise InfeasibleError(
                f"capacity {format_number(total)} of the {p} largest sites < demand "
                f"{format_number(demand)}"
            )
    reach_cap = np.where(np.isfinite(c), q[None, :], 0.0).max(axis=1)
    too_big = np.flatnonzero(w > reach_cap + 1e-9)
    if too_big.size:
        raise InfeasibleError(
            f"{too_big.size} customers have more demand than any site they reach can take: "
            f"rows {format_ids(row_ids[too_big])}"
        )


# --------------------------------------------------------------------------------------------
# assignment heuristics


def _regret_assign(
    c: np.ndarray, w: np.ndarray, todo: np.ndarray, left: np.ndarray, assign: np.ndarray
) -> np.ndarray:
    """Place customers ``todo`` by regret within ``left`` (both updated in place); returns the
    customers that could not be placed."""
    while todo.size:
        fits = w[todo][:, None] <= left[None, :] + _EPS
        masked = np.where(fits, c[todo], np.inf)
        best = masked.argmin(axis=1)
        best_val = masked[np.arange(todo.size), best]
        stuck = ~np.isfinite(best_val)
        if stuck.all():
            return todo
        if masked.shape[1] > 1:
            second = np.partition(masked, 1, axis=1)[:, 1]
        else:
            second = np.full(todo.size, np.inf)
        with np.errstate(invalid="ignore"):
            regret = np.where(np.isfinite(second), second - best_val, 1e300)
        regret[stuck] = -np.inf
        order = np.argsort(-regret, kind="stable")
        placed = np.zeros(todo.size, dtype=bool)
        for k in order:
            if stuck[k]:
                break
            j = best[k]
            if w[todo[k]] <= left[j] + _EPS:
                left[j] -= w[todo[k]]
                assign[todo[k]] = j
                placed[k] = True
            else:
                break
        if not placed.any():
            return todo
        todo = todo[~placed]
    return todo


def _repair(
    c: np.ndarray, w: np.ndarray, stuck: np.ndarray, left: np.ndarray, assign: np.ndarray
) -> bool:
    """Place each stuck customer by moving one placed customer to another site with room."""
    for i in stuck:
        best: tuple[float, int, int, int] | None = None
        for j in np.flatnonzero(np.isfinite(c[i])):
            need = w[i] - left[j]
            if need <= _EPS:
                best = (c[i, j], -1, int(j), -1)
                break
            movers = np.flatnonzero((assign == j) & (w >= need - _EPS))
            for k in movers:
                room = (left + _EPS >= w[k]) & np.isfinite(c[k])
                room[j] = False
                if not room.any():
                    continue
                alt = np.where(room, c[k], np.inf)
                j2 = int(alt.argmin())
                delta = c[i, j] + alt[j2] - c[k, j]
                if best is None or delta < best[0]:
                    best = (float(delta), int(k), int(j), j2)
        if best is None:
            return False
        _, mover, site, j2 = best
        if mover >= 0:
            assign[mover] = j2
            left[j2] -= w[mover]
            left[site] += w[mover]
        assign[i] = site
        left[site] -= w[i]
    return True


def _assign(prob: _Problem, cap_open: np.ndarray) -> np.ndarray | None:
    """Single-source assignment to the sites with ``cap_open > 0`` within those capacities."""
    c = np.where(cap_open[None, :] > 0, prob.c, np.inf)
    left = cap_open.astype(float).copy()
    assign = np.full(prob.n, -1, dtype=np.intp)
    stuck = _regret_assign(c, prob.w, np.arange(prob.n), left, assign)
    if stuck.size and not _repair(c, prob.w, stuck, left, assign):
        return None
    return assign


def _improve_assignment(
    prob: _Problem, assign: np.ndarray, cap_open: np.ndarray, deadline: float
) -> np.ndarray:
    """Shift and swap moves that keep every site within ``cap_open``."""
    c, w = prob.c, prob.w
    rows = prob.rows
    assign = assign.copy()
    c = np.where(cap_open[None, :] > 0, c, np.inf)
    for _ in range(50):
        if time.perf_counter() > deadline:
            break
        changed = False
        left = cap_open - prob.loads(assign)
        cur = c[rows, assign]
        alt = np.where(w[:, None] <= left[None, :] + _EPS, c, np.inf)
        alt[rows, assign] = np.inf
        best = alt.argmin(axis=1)
        gain = cur - alt[rows, best]
        for i in np.argsort(-gain):
            if not gain[i] > 1e-9 * max(abs(cur[i]), 1.0):
                break
            j = best[i]
            if w[i] <= left[j] + _EPS:
                left[j] -= w[i]
                left[assign[i]] += w[i]
                assign[i] = j
                changed = True
        if time.perf_counter() < deadline:
            cur = c[rows, assign]
            # swaps among the customers farthest above their cheapest open site (all of them
            # on small instances)
            pool = np.argsort(-(cur - c.min(axis=1)))[:SWAP_POOL]
            ca = c[np.ix_(pool, assign[pool])]  # ca[i, k] = c[i, site of k]
            cp = cur[pool]
            delta = ca + ca.T - cp[:, None] - cp[None, :]
            # capacity: i moves to k's site, k to i's site
            wp, ap = w[pool], assign[pool]
            dw = wp[:, None] - wp[None, :]
            ok = (dw <= left[ap][None, :] + _EPS) & (-dw <= left[ap][:, None] + _EPS)
            ok &= ap[:, None] != ap[None, :]
            delta = np.where(ok, delta, np.inf)
            li, lk = np.nonzero(delta < -1e-9 * max(float(np.abs(cp).mean()), 1.0))
            if li.size:
                order = np.argsort(delta[li, lk])
                touched = np.zeros(prob.n, dtype=bool)
                for t in order[: 4 * prob.n]:
                    i, k = pool[li[t]], pool[lk[t]]
                    if touched[i] or touched[k]:
                        continue
                    a, b = assign[i], assign[k]
                    if w[i] - w[k] <= left[b] + _EPS and w[k] - w[i] <= left[a] + _EPS:
                        left[b] -= w[i] - w[k]
                        left[a] -= w[k] - w[i]
                        assign[i], assign[k] = b, a
                        touched[i] = touched[k] = True
                        changed = True
        if not changed:
            break
    return assign


def _resize(prob: _Problem, size: np.ndarray, assign: np.ndarray) -> np.ndarray:
    """Each open site at its cheapest size that holds its load (sites without load close
    unless required or needed for ``p``)."""
    size = size.copy()
    load = prob.loads(assign)
    for j in np.flatnonzero(size >= 0):
        if load[j] <= 0 and not prob.req[j] and prob.p is None:
            size[j] = -1
            continue
        s = prob.fitting_size(int(j), float(load[j]))
        if s >= 0:
            size[j] = s
    return size


def _cap_of(prob: _Problem, size: np.ndarray, *, largest: bool = False) -> np.ndarray:
    out = np.zeros(prob.m)
    open_ = np.flatnonzero(size >= 0)
    out[open_] = prob.qmax[open_] if largest else prob.Q[open_, size[open_]]
    return out


def _polish(prob: _Problem, ans: Answer, deadline: float) -> Answer:
    """Assignment moves at the sites' largest sizes, then the cheapest sizes that fit."""
    assign = _improve_assignment(prob, ans.assign, _cap_of(prob, ans.size, largest=True), deadline)
    size = _resize(prob, ans.size, assign)
    cand = prob.answer(size, assign)
    return cand if cand.objective < ans.objective else ans


def _site_moves(prob: _Problem, ans: Answer, deadline: float, order: np.ndarray) -> Answer:
    """Close, open and (with ``p``) swap sites while that lowers the cost (first improvement)."""
    best = ans
    rank_of = np.empty(prob.m, dtype=np.intp)
    rank_of[order] = np.arange(order.size)
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for site in order:
            if time.perf_counter() > deadline:
                break
            j = int(site)
            if prob.req[j] or not prob.site_ok[j]:
                continue
            if best.size[j] >= 0 and prob.p is None:
                cand = _try_close(prob, best, j)
            elif best.size[j] < 0 and prob.p is None:
                cand = _try_open(prob, best, j)
                if (cand is None or cand.objective >= best.objective) and rank_of[j] < SWAP_SITES:
                    cand = _try_swap_in(prob, best, j)
            elif best.size[j] < 0:
                cand = _try_swap_in(prob, best, j)
            else:
                continue
            if cand is not None and cand.objective < best.objective - 1e-9 * abs(best.objective):
                best = cand
                improved = True
    return best


def _try_close(prob: _Problem, ans: Answer, j: int) -> Answer | None:
    size = ans.size.copy()
    size[j] = -1
    if not (size >= 0).any():
        return None
    cap = _cap_of(prob, size, largest=True)
    load = np.bincount(
        ans.assign[ans.assign != j], weights=prob.w[ans.assign != j], minlength=prob.m
    )
    left = cap - load
    assign = ans.assign.copy()
    todo = np.flatnonzero(ans.assign == j)
    c = np.where(cap[None, :] > 0, prob.c, np.inf)
    stuck = _regret_assign(c, prob.w, todo, left, assign)
    if stuck.size:
        return None
    size = _resize(prob, size, assign)
    return prob.answer(size, assign)


def _try_open(prob: _Problem, ans: Answer, j: int, size_j: int | None = None) -> Answer | None:
    """Open ``j`` and move to it the customers that save most (best size of ``j``)."""
    cur = prob.c[prob.rows, ans.assign]
    saving = cur - prob.c[:, j]
    movers = np.flatnonzero(saving > 0)
    if movers.size == 0:
        return None
    movers = movers[np.argsort(-saving[movers] / prob.w[movers])]
    best: Answer | None = None
    sizes = range(prob.S) if size_j is None else [size_j]
    for s in sizes:
        if not np.isfinite(prob.F[j, s]):
            continue
        fits = np.cumsum(prob.w[movers]) <= prob.Q[j, s] + _EPS
        take = movers[fits]
        if take.size == 0:
            continue
        assign = ans.assign.copy()
        assign[take] = j
        size = ans.size.copy()
        size[j] = s
        size = _resize(prob, size, assign)
        if size[j] < 0:
            continue
        cand = prob.answer(size, assign)
        if best is None or cand.objective < best.objective:
            best = cand
    return best


def _try_swap_in(prob: _Problem, ans: Answer, k: int) -> Answer | None:
    """With ``p`` sites: open ``k`` and close the open site for which that pays most."""
    opened = _try_open(prob, ans, k)
    if opened is None:
        return None
    best: Answer | None = None
    for j in np.flatnonzero(opened.size >= 0):
        if j == k or prob.req[j]:
            continue
        cand = _try_close(prob, opened, int(j))
        if cand is not None and (best is None or cand.objective < best.objective):
            best = cand
    return best


def _from_sites(prob: _Problem, size: np.ndarray, ranking: np.ndarray) -> Answer | None:
    """An answer from a set of open sites (``size`` >= 0), adding sites in ``ranking`` order
    (at their largest size) while the capacity or the assignment falls short; with ``p``,
    exactly ``p`` sites."""
    size = size.copy()
    largest = np.where(np.isfinite(prob.F), prob.Q, -1.0).argmax(axis=1)
    size[prob.req & (size < 0)] = largest[prob.req & (size < 0)]
    closed = [int(j) for j in ranking if size[j] < 0 and prob.site_ok[j]]
    if prob.p is not None:
        while int((size >= 0).sum()) > prob.p:  # drop the last-ranked optional ones
            opt = [int(j) for j in ranking[::-1] if size[j] >= 0 and not prob.req[j]]
            size[opt[0]] = -1
        while int((size >= 0).sum()) < prob.p and closed:
            nxt = closed.pop(0)
            size[nxt] = largest[nxt]
    for _ in range(prob.m + 1):
        cap = _cap_of(prob, size, largest=True)
        if cap.sum() >= prob.demand - _EPS:
            assign = _assign(prob, cap)
            if assign is not None:
                return prob.answer(_resize(prob, size, assign), assign)
        if not closed:
            break
        if prob.p is not None:
            # swap the smallest optional open site for the next-ranked larger one
            opt = [int(j) for j in np.flatnonzero(size >= 0) if not prob.req[j]]
            if not opt:
                break
            small = min(opt, key=lambda j: prob.qmax[j])
            nxt = max(closed, key=lambda j: prob.qmax[j])
            if prob.qmax[nxt] <= prob.qmax[small]:
                break
            closed.remove(nxt)
            size[small] = -1
            size[nxt] = largest[nxt]
        else:
            nxt = closed.pop(0)
            size[nxt] = largest[nxt]
    return None


# --------------------------------------------------------------------------------------------
# Lagrangian bound


def _knapsack_min(
    r: np.ndarray, w: np.ndarray, cap: float, integer: bool
) -> tuple[float, np.ndarray]:
    """min sum r x s.t. sum w x <= cap, x binary, for items with r < 0.

    Exact on integer weights (real weights are scaled and rounded down, a relaxation, so the
    value stays a valid lower bound): items are first fixed by the Dembo-Hammer test (the
    knapsack's Lagrangian bound at the break item's ratio, with the item flipped, above the
    greedy answer), then the rest go through dynamic programming over the capacity left.
    Returns (value, chosen item positions).
    """
    scale = 1.0 if integer and cap <= 4 * KNAPSACK_UNITS else KNAPSACK_UNITS / max(cap, _EPS)
    wi = np.floor(w * scale + 1e-9).astype(np.int64)
    capi = int(np.floor(cap * scale + 1e-9))
    free = wi == 0
    value = float(r[free].sum())
    items = np.flatnonzero(~free & (wi <= capi))
    chosen = [np.flatnonzero(free)]
    if items.size == 0:
        return value, np.concatenate(chosen)
    ri, wk = r[items], wi[items]
    order = np.argsort(ri / wk, kind="stable")
    cw = np.cumsum(wk[order])
    b = int((cw <= capi).sum())
    if b == items.size:
        return value + float(ri.sum()), np.concatenate([*chosen, items])
    # greedy answer: the items before the break one, then any later one that still fits
    take = np.zeros(items.size, dtype=bool)
    take[order[:b]] = True
    room = capi - (int(cw[b - 1]) if b else 0)
    for k in order[b:]:
        if wk[k] <= room:
            take[k] = True
            room -= int(wk[k])
    greedy = float(ri[take].sum())
    lam = -float(ri[order[b]]) / float(wk[order[b]])
    red = ri + lam * wk
    lower = float(np.minimum(red, 0.0).sum()) - lam * capi
    tol = 1e-9 * max(abs(greedy), 1.0)
    fixed = lower + np.abs(red) > greedy + tol
    fixed_in = fixed & (red < 0)
    cap_left = capi - int(wk[fixed_in].sum())
    if cap_left < 0:  # rounding trouble: no fixing
        fixed[:] = False
        fixed_in[:] = False
        cap_left = capi
    rest = np.flatnonzero(~fixed & (wk <= cap_left))
    dp = np.zeros(cap_left + 1)
    keep = np.zeros((rest.size, cap_left + 1), dtype=bool)
    for t, k in enumerate(rest):
        a = int(wk[k])
        cand = dp[: cap_left + 1 - a] + ri[k]
        better = cand < dp[a:] - 1e-12
        keep[t, a:] = better
        dp[a:] = np.where(better, cand, dp[a:])
    picked: list[int] = [int(x) for x in np.flatnonzero(fixed_in)]
    cc = cap_left
    for t in range(rest.size - 1, -1, -1):
        if keep[t, cc]:
            picked.append(int(rest[t]))
            cc -= int(wk[rest[t]])
    best = float(ri[fixed_in].sum()) + float(dp[cap_left])
    if greedy < best:  # cannot happen with exact fixing; keep the better one
        best, picked = greedy, [int(x) for x in np.flatnonzero(take)]
    chosen.append(items[np.asarray(picked, dtype=np.intp)])
    return value + best, np.concatenate(chosen)


def _knapsack_lp(r: np.ndarray, w: np.ndarray, cap: float) -> float:
    """LP relaxation of :func:`_knapsack_min` (a lower bound on it)."""
    order = np.argsort(r / np.maximum(w, 1e-300))
    cw = np.cumsum(w[order])
    full = cw <= cap + _EPS
    value = float(r[order][full].sum())
    k = int(full.sum())
    if k < order.size:
        before = float(cw[k - 1]) if k else 0.0
        value += float(r[order[k]]) * max(cap - before, 0.0) / w[order[k]]
    return value


@dataclass
class _Dual:
    bound: float
    v: np.ndarray  # best value per site (lower bound on it)
    size: np.ndarray  # size of that value
    chosen: list[np.ndarray]  # knapsack items per site (at that size)
    open: np.ndarray  # z_j in [0, 1] of the Lagrangian solution
    base: float  # bound without the capacity cover term
    cover: float = 0.0  # the capacity cover term (fixed-charge)


def _dual(prob: _Problem, u: np.ndarray, integer: bool, ub: float) -> _Dual:
    """Evaluate the Lagrangian function at ``u``."""
    r = prob.c - u[:, None]
    neg = r < 0
    rneg = np.where(neg, r, 0.0)
    sum_r = rneg.sum(axis=0)
    sum_w = (neg * prob.w[:, None]).sum(axis=0)
    m, S = prob.m, prob.S
    val = np.full((m, S), np.inf)
    # every negative item fits: exact; otherwise a lower bound first
    fits = sum_w[:, None] <= prob.Q + _EPS
    low = prob.F + sum_r[:, None]
    val[fits] = low[fits]
    exact = fits.copy()
    todo = np.argwhere(~fits & np.isfinite(prob.F))
    items_of: dict[int, np.ndarray] = {}
    for j, s in todo:
        items = items_of.get(int(j))
        if items is None:
            items = np.flatnonzero(neg[:, j])
            items_of[int(j)] = items
        val[j, s] = prob.F[j, s] + _knapsack_lp(r[items, j], prob.w[items], prob.Q[j, s])
    # exact knapsacks only where they can matter: a site whose lower bound is >= 0 stays
    # closed (fixed-charge), or is not among the p cheapest (p-median)
    chosen_of: dict[tuple[int, int], np.ndarray] = {}

    def solve_exact(j: int) -> None:
        for s in range(S):
            if not exact[j, s] and np.isfinite(prob.F[j, s]):
                items = items_of[j]
                value, chosen = _knapsack_min(r[items, j], prob.w[items], prob.Q[j, s], integer)
                val[j, s] = prob.F[j, s] + value
                exact[j, s] = True
                chosen_of[(j, s)] = items[chosen]

    v_low = val.min(axis=1)
    if prob.p is None:
        for j in np.flatnonzero(((v_low < 0) | prob.req) & ~exact.all(axis=1)):
            solve_exact(int(j))
    else:
        done: list[float] = []
        for j in np.argsort(v_low, kind="stable"):
            if len(done) >= prob.p and v_low[j] >= sorted(done)[prob.p - 1]:
                break
            solve_exact(int(j))
            done.append(float(val[j].min()))
    size = val.argmin(axis=1)
    v = val[np.arange(m), size]
    v[~prob.site_ok] = np.inf
    z = np.zeros(m)
    req = prob.req
    if prob.p is None:
        z[req] = 1.0
        z[~req & (v < 0)] = 1.0
        base = float(u.sum() + v[req].sum() + np.minimum(v[~req], 0.0).sum())
        # valid inequality: the open capacity covers the demand. The sites added to cover it
        # solve a covering knapsack, min sum v z s.t. sum qmax z >= short, as the packing of
        # the sites left out (capacity sum qmax - short; weights rounded down, so still a
        # valid bound)
        short = prob.demand - float((prob.qmax * z).sum())
        cover = 0.0
        if short > _EPS:
            cand = np.flatnonzero((z == 0) & prob.site_ok & (prob.qmax > 0))
            room = float(prob.qmax[cand].sum()) - short
            vc = np.maximum(v[cand], 0.0)
            if room < -_EPS:
                cover = np.inf  # cannot happen after the capacity check
            else:
                fits_all = vc <= 0  # free sites: always in the cover
                gain, out = _knapsack_min(
                    -vc[~fits_all], prob.qmax[cand][~fits_all], max(room, 0.0), False
                )
                left_out = np.zeros(cand.size, dtype=bool)
                left_out[np.flatnonzero(~fits_all)[out]] = True
                cover = float(vc.sum()) + gain
                z[cand[~left_out]] = 1.0
        if prob.S > 1 and short > _EPS:
            # with sizes, each site's size and the cover together: a multiple-choice covering
            # knapsack (closed, or one size at its value and capacity)
            total, pick_size = _cover_with_sizes(prob, val)
            if np.isfinite(total):
                z = (pick_size >= 0).astype(float)
                size = np.where(pick_size >= 0, pick_size, size)
                cover = max(total - (base - float(u.sum())), cover)
        bound = base + cover
    else:
        z[req] = 1.0
        free = np.flatnonzero(~req & prob.site_ok)
        pick = free[np.argsort(v[free], kind="stable")][: prob.p - int(req.sum())]
        z[pick] = 1.0
        base = float(u.sum() + v[z > 0].sum())
        bound = base
    chosen_list: list[np.ndarray] = []
    for j in range(m):
        s = int(size[j])
        if z[j] <= 0:
            chosen_list.append(np.empty(0, dtype=np.intp))
        elif (j, s) in chosen_of:
            chosen_list.append(chosen_of[(j, s)])
        elif exact[j, s]:
            chosen_list.append(np.flatnonzero(neg[:, j]))
        else:  # bound from the LP knapsack: items by ratio that fit
            items = items_of[j]
            order = items[np.argsort(r[items, j] / prob.w[items])]
            fit = np.cumsum(prob.w[order]) <= prob.Q[j, s] + _EPS
            chosen_list.append(order[fit])
    return _Dual(bound, v, size, chosen_list, z, base, cover if prob.p is None else 0.0)


def _cover_with_sizes(prob: _Problem, val: np.ndarray) -> tuple[float, np.ndarray]:
    """min sum val[j, s] over the chosen (site, size) pairs, at most one size per site (required
    sites one), such that the chosen capacities cover the demand; by dynamic programming on
    capacity units (capacities rounded up, the demand down: a relaxation, so a valid bound).
    Returns (value, size per site or -1)."""
    units = KNAPSACK_UNITS
    scale = units / max(prob.demand, _EPS)
    q = np.minimum(np.ceil(prob.Q * scale - 1e-9), units).astype(np.int64)
    dp = np.full(units + 1, np.inf)
    dp[0] = 0.0
    sites = np.flatnonzero(prob.site_ok)
    choice = np.full((sites.size, units + 1), -1, dtype=np.int8)
    prev = np.zeros((sites.size, units + 1), dtype=np.int32)
    idx = np.arange(units + 1, dtype=np.int32)
    for t, j in enumerate(sites):
        new = np.full(units + 1, np.inf) if prob.req[j] else dp.copy()
        src = np.where(np.isfinite(new), idx, 0)  # closed: same units
        ch = np.full(units + 1, -1, dtype=np.int8)
        for s_ in range(prob.S):
            value = val[j, s_]
            if not np.isfinite(value):
                continue
            a = int(q[j, s_])
            cand = dp + value
            # covered units c + a, capped at `units`
            body = cand[: units - a] if a > 0 else cand
            tgt_new = new[a:units] if a > 0 else new[:units]
            better = body[: tgt_new.size] < tgt_new
            sl = slice(a, units) if a > 0 else slice(0, units)
            new[sl] = np.where(better, body[: tgt_new.size], tgt_new)
            ch[sl] = np.where(better, s_, ch[sl])
            src[sl] = np.where(better, idx[: tgt_new.size], src[sl])
            tail = cand[max(units - a, 0) :]
            k = int(np.argmin(tail))
            if tail[k] < new[units]:
                new[units] = tail[k]
                ch[units] = s_
                src[units] = max(units - a, 0) + k
        choice[t] = ch
        prev[t] = src
        dp = new
    total = float(dp[units])
    pick = np.full(prob.m, -1, dtype=np.intp)
    if not np.isfinite(total):
        return total, pick
    c = units
    for t in range(sites.size - 1, -1, -1):
        s_ = int(choice[t, c])
        c_prev = int(prev[t, c])
        if s_ >= 0:
            pick[sites[t]] = s_
        c = c_prev
    return total, pick


def _fixing(prob: _Problem, dual: _Dual, u: np.ndarray, ub: float) -> tuple[np.ndarray, np.ndarray]:
    """Sites and pairs that can be part of an answer better than ``ub`` (reduced-cost tests)."""
    tol = 1e-9 * max(abs(ub), 1.0)
    v = np.where(np.isfinite(dual.v), dual.v, np.inf)
    if prob.p is None:
        # forcing a closed site j open: the cover of the rest is at least cover - v_j, so
        # the bound is base + max(v_j, cover) (Lagrangian-open sites: base + cover)
        cover = dual.cover if np.isfinite(dual.cover) else 0.0
        delta_open = np.where((v < 0) | prob.req, cover, np.maximum(v, cover))
        if prob.S > 1:
            # the sized cover: forcing j (and a pair at j) in keeps the bound >= L and
            # >= base + max(0, v_j) (+ the pair's reduced cost, below)
            site_keep = prob.site_ok & (dual.base + cover <= ub - tol)
            r = prob.c - u[:, None]
            pair_bound = np.maximum(
                dual.base + cover, dual.base + np.maximum(v, 0.0)[None, :] + np.maximum(r, 0.0)
            )
            pair_keep = np.isfinite(prob.c) & site_keep[None, :] & (pair_bound <= ub - tol)
            return site_keep, pair_keep
    else:
        opened = dual.open > 0
        free_open = opened & ~prob.req
        v_last = v[free_open].max() if free_open.any() else 0.0
        delta_open = np.where(opened, 0.0, np.maximum(v - v_last, 0.0))
    site_keep = prob.site_ok & (dual.base + delta_open <= ub - tol)
    r = prob.c - u[:, None]
    pair_bound = dual.base + delta_open[None, :] + np.maximum(r, 0.0)
    pair_keep = np.isfinite(prob.c) & site_keep[None, :] & (pair_bound <= ub - tol)
    return site_keep, pair_keep


# --------------------------------------------------------------------------------------------
# the reduced MIP


def _reduced_mip(
    prob: _Problem,
    site_keep: np.ndarray,
    pair_keep: np.ndarray,
    best: Answer,
    *,
    time_limit: float,
    should_stop: StopCallback | None,
    report: ProgressReporter,
    lower: float,
) -> tuple[Answer, float, str]:
    """Solve the MIP over the kept sites and pairs (plus the best answer's) from ``best``."""
    site_keep = site_keep.copy()
    pair_keep = pair_keep.copy()
    site_keep[best.size >= 0] = True
    pair_keep[prob.rows, best.assign] = True
    pi, pj = np.nonzero(pair_keep)
    k = pi.size
    ys = np.argwhere(site_keep[:, None] & np.isfinite(prob.F))  # (j, s)
    ny = ys.shape[0]
    yj, ysz = ys[:, 0], ys[:, 1]
    n, m = prob.n, prob.m
    c = np.concatenate([prob.F[yj, ysz], prob.c[pi, pj]])
    xcol = ny + np.arange(k)
    rows_a: list[np.ndarray] = []
    cols_a: list[np.ndarray] = []
    vals_a: list[np.ndarray] = []
    lo: list[np.ndarray] = []
    hi: list[np.ndarray] = []
    nrow = 0
    # assignment
    rows_a += [pi]
    cols_a += [xcol]
    vals_a += [np.ones(k)]
    lo.append(np.ones(n))
    hi.append(np.ones(n))
    nrow += n
    # capacity per site: sum w x - sum Q y <= 0
    rows_a += [nrow + pj, nrow + yj]
    cols_a += [xcol, np.arange(ny)]
    vals_a += [prob.w[pi], -prob.Q[yj, ysz]]
    lo.append(np.full(m, -np.inf))
    hi.append(np.zeros(m))
    nrow += m
    # one size per site (= 1 when required)
    rows_a += [nrow + yj]
    cols_a += [np.arange(ny)]
    vals_a += [np.ones(ny)]
    lo.append(np.where(prob.req, 1.0, 0.0))
    hi.append(np.ones(m))
    nrow += m
    # strong linking x_ij <= sum_s y_js
    link_row = nrow + np.arange(k)
    ycount = np.bincount(yj, minlength=m)
    ystart = np.cumsum(ycount) - ycount  # y columns of a site are contiguous (argwhere order)
    lens = ycount[pj]
    within = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens)
    rows_a += [link_row, np.repeat(link_row, lens)]
    cols_a += [xcol, np.repeat(ystart[pj], lens) + within]
    vals_a += [np.ones(k), -np.ones(int(lens.sum()))]
    lo.append(np.full(k, -np.inf))
    hi.append(np.zeros(k))
    nrow += k
    # open capacity covers the demand
    rows_a += [np.full(ny, nrow)]
    cols_a += [np.arange(ny)]
    vals_a += [prob.Q[yj, ysz]]
    lo.append(np.array([prob.demand]))
    hi.append(np.array([np.inf]))
    nrow += 1
    if prob.p is not None:
        rows_a += [np.full(ny, nrow)]
        cols_a += [np.arange(ny)]
        vals_a += [np.ones(ny)]
        lo.append(np.array([float(prob.p)]))
        hi.append(np.array([float(prob.p)]))
        nrow += 1
    a = sp.csc_matrix(
        (np.concatenate(vals_a), (np.concatenate(rows_a), np.concatenate(cols_a))),
        shape=(nrow, ny + k),
    )
    start = np.zeros(ny + k)
    ykey = {(int(j), int(s)): t for t, (j, s) in enumerate(ys)}
    for j in np.flatnonzero(best.size >= 0):
        start[ykey[(int(j), int(best.size[j]))]] = 1.0
    key = pi.astype(np.int64) * m + pj
    start[ny + np.searchsorted(key, prob.rows.astype(np.int64) * m + best.assign)] = 1.0
    logger.debug("reduced single-source MIP: %d site sizes, %d pairs", ny, k)
    deadline = time.perf_counter() + time_limit
    stop = should_stop or (lambda: False)
    result = solve_mip(
        c,
        a,
        row_lower=np.concatenate(lo),
        row_upper=np.concatenate(hi),
        col_lower=np.zeros(ny + k),
        col_upper=np.ones(ny + k),
        integer=np.ones(ny + k, dtype=bool),
        time_limit=time_limit,
        start=start,
        # HiGHS's own clock may overrun in its presolve and root LP: interrupt it too
        should_stop=lambda: stop() or time.perf_counter() > deadline,
        full_presolve_max_cols=10_000,
        progress=lambda objective, bound: report(
            "Capacitated MIP (reduced)", objective=objective, bound=max(bound, lower)
        ),
    )
    status = result.status
    if status == "limit" and not stop():
        status = "time_limit"
    if result.x is None or result.objective >= best.objective:
        out = best
    else:
        x = result.x
        size = np.full(m, -1, dtype=np.intp)
        on = x[:ny] > 0.5
        size[yj[on]] = ysz[on]
        chosen = x[ny:] > 0.5
        assign = np.full(n, -1, dtype=np.intp)
        assign[pi[chosen]] = pj[chosen]
        out = prob.answer(size, assign) if (assign >= 0).all() else best
    if status == "optimal":
        bound = out.objective
    elif status == "infeasible":  # nothing better than the start exists in the reduced problem
        bound = best.objective
    else:
        bound = min(result.bound, out.objective)
    return out, bound, status


# --------------------------------------------------------------------------------------------
# the solve


def solve_single_source(
    c: np.ndarray,
    w: np.ndarray,
    fixed: np.ndarray,
    cap: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    time_limit: float,
    started: float,
    report: ProgressReporter,
    should_stop: StopCallback | None = None,
    row_ids: np.ndarray | None = None,
    first_answer_s: float = 0.8,
) -> SingleSourceResult:
    """Solve the problem of the module docstring; see there for the method.

    Parameters
    ----------
    c
        (n, m) cost of serving each customer's whole demand from each site; inf = not allowed
        (excluded sites: inf columns). Customers must have ``w > 0``.
    w
        (n,) demand.
    fixed, cap
        (m, S) fixed cost and capacity per site and size; ``fixed`` inf where not allowed.
    p
        Exactly ``p`` open sites, or None.
    required
        Sites that must open.
    time_limit, started
        Seconds for the whole solve, counted from ``started`` (``time.perf_counter()``).
    row_ids
        The caller's row number of each customer, for messages.
    """
    stop = should_stop or (lambda: False)
    n, m = c.shape
    ids = np.arange(n) if row_ids is None else np.asarray(row_ids)
    check_single_source(c, w, fixed, cap, p=p, required=required, row_ids=ids)
    prob = _Problem(c, w, fixed, cap, p, required)
    deadline = started + time_limit
    integer = bool(np.allclose(w, np.round(w)))
    first_deadline = min(started + first_answer_s, started + 0.5 * time_limit)

    # starting multipliers: each customer's cheapest cost with a share of the fixed cost
    share = np.where(prob.Q > 0, prob.F / np.maximum(prob.Q, _EPS), np.inf).min(axis=1)
    u = np.where(np.isfinite(c), c + w[:, None] * share[None, :], np.inf).min(axis=1)
    u = np.where(np.isfinite(u), u, 0.0)
    dual = _dual(prob, u, integer, np.inf)
    best_bound = dual.bound
    best_u = u.copy()
    best_dual = dual

    # first answer: the Lagrangian solution's sites, then site moves
    ranking = np.argsort(dual.v, kind="stable")
    seed_size = np.where(dual.open >= 1.0, dual.size, -1).astype(np.intp)
    best = _from_sites(prob, seed_size, ranking)
    if best is None:  # every allowed site open at its largest size
        allsize = np.full(m, -1, dtype=np.intp)
        best = _from_sites(prob, allsize, ranking)
    if best is None:
        # the heuristics found no assignment: let HiGHS look for one
        best = _feasibility_mip(prob, deadline, stop)
    first_time = time.perf_counter() - started
    first_objective = best.objective
    report("First answer within the capacities", objective=best.objective, bound=best_bound)
    best = _polish(prob, best, first_deadline)
    best = _site_moves(prob, best, first_deadline, ranking)
    best = _polish(prob, best, first_deadline)
    report("Local search within the capacities", objective=best.objective, bound=best_bound)

    # warm start: the multipliers of the model without capacities (cheap, vectorised); at the
    # same multipliers the capacitated bound is at least the uncapacitated one
    if not stop():
        a_pen, _ = penalize_inf(c)
        with np.errstate(invalid="ignore", over="ignore"):  # multipliers may run off to inf
            relaxed = subgradient(
                a_pen,
                np.where(
                    prob.site_ok, np.where(np.isfinite(prob.F), prob.F, np.inf).min(axis=1), 0.0
                ),
                p=p,
                required=np.flatnonzero(prob.req),
                allowed=prob.site_ok,
                upper_bound=best.objective,
                start=c[prob.rows, best.assign],
                deadline=time.perf_counter() + min(max(0.2 * time_limit, 0.3), 5.0),
                max_iterations=WARM_START_ITERATIONS,
            )
        ok = bool(np.isfinite(relaxed.multipliers).all())
        warm = _dual(prob, relaxed.multipliers, integer, best.objective) if ok else dual
        if ok and warm.bound > best_bound:
            u, dual = relaxed.multipliers.copy(), warm
            best_bound, best_u, best_dual = warm.bound, u.copy(), warm
    report("Lagrangian bound (capacities)", objective=best.objective, bound=best_bound)

    # subgradient (Polyak steps towards the best answer, deflected directions); when the MIP
    # would still be too large afterwards, a second round uses the time left before the end
    lam = 1.0
    stall = 0
    it = 0
    direction = np.zeros(n)
    lag_deadline = started + 0.35 * time_limit
    patience = True
    for _round in range(2):
        history: list[float] = []
        while time.perf_counter() < lag_deadline and not stop():
            it += 1
            history.append(best_bound)
            if (
                patience
                and len(history) > HIST
                and best_bound - history[-HIST] <= 1e-4 * abs(best_bound)
            ):
                break  # the bound has stopped moving: the exact MIP takes over
            g = np.ones(n)
            for j in np.flatnonzero(dual.open > 0):
                g[dual.chosen[j]] -= dual.open[j]
            direction = g + 0.5 * direction
            norm = float(direction @ direction)
            if norm <= 1e-12:
                break
            if relative_gap(best.objective, best_bound) <= OPTIMALITY_GAP:
                break
            step = lam * max(best.objective - dual.bound, 1e-9 * abs(best.objective)) / norm
            u = u + step * direction
            dual = _dual(prob, u, integer, best.objective)
            if dual.bound > best_bound + 1e-9 * abs(best_bound):
                best_bound, best_u, best_dual = dual.bound, u.copy(), dual
                stall = 0
            else:
                stall += 1
                if stall >= 20:
                    lam /= 2.0
                    stall = 0
            if it % 10 == 0 or (stall == 0 and it < 20):
                seed_size = np.where(dual.open >= 1.0, dual.size, -1).astype(np.intp)
                cand = _from_sites(prob, seed_size, np.argsort(dual.v, kind="stable"))
                if cand is not None:
                    cand = _polish(prob, cand, min(lag_deadline, time.perf_counter() + 0.2))
                    if cand.objective < best.objective - 1e-9 * abs(best.objective):
                        best = cand
            if it % 10 == 0:
                report("Lagrangian bound (capacities)", objective=best.objective, bound=best_bound)
            if lam < 1e-3:
                break
        best_bound = min(best_bound, best.objective)
        # a last local search from the best answer
        ls_deadline = min(deadline, time.perf_counter() + 0.15 * time_limit)
        best = _site_moves(prob, best, ls_deadline, np.argsort(best_dual.v, kind="stable"))
        best = _polish(prob, best, ls_deadline)
        report("Lagrangian bound (capacities)", objective=best.objective, bound=best_bound)
        if _round == 1 or relative_gap(best.objective, best_bound) <= OPTIMALITY_GAP:
            break
        if int(_fixing(prob, best_dual, best_u, best.objective)[1].sum()) <= MIP_MAX_PAIRS:
            break
        if deadline - time.perf_counter() < 0.25 * time_limit:
            break
        lag_deadline = deadline - 0.12 * time_limit
        patience = False
        lam = max(lam, 0.25)
        stall = 0
    status = "optimal" if relative_gap(best.objective, best_bound) <= OPTIMALITY_GAP else ""
    solver = f"{planner_version()} (Lagrangian knapsack bound + local search)"
    extras: dict[str, Any] = {
        "first_answer_s": first_time,
        "first_objective": first_objective,
        "lagrangian_bound": float(best_dual.bound),
        "lagrangian_iterations": it,
    }
    if not status:
        site_keep, pair_keep = _fixing(prob, best_dual, best_u, best.objective)
        kept = int(pair_keep.sum())
        extras.update({"sites_kept": int(site_keep.sum()), "pairs_kept": kept})
        if stop():
            status = "stopped"
        elif kept > MIP_MAX_PAIRS:
            status = "mip_too_large"
            extras["mip_status"] = f"skipped: {kept:,} customer-site pairs > {MIP_MAX_PAIRS:,}"
        elif time.perf_counter() >= deadline - 0.05:
            status = "time_limit"
        else:
            best, mip_bound, mip_status = _reduced_mip(
                prob,
                site_keep,
                pair_keep,
                best,
                # a margin for HiGHS's setup and for stopping it (it checks the clock and the
                # interrupt only now and then)
                time_limit=max(deadline - time.perf_counter() - 0.05 * time_limit, 0.05),
                should_stop=should_stop,
                report=report,
                lower=best_bound,
            )
            extras["mip_status"] = mip_status
            best_bound = max(best_bound, mip_bound)
            solver = f"{solver}; {highs_version()} (reduced single-source MIP)"
            if (
                mip_status == "optimal"
                or relative_gap(best.objective, best_bound) <= OPTIMALITY_GAP
            ):
                status = "optimal"
            elif stop():
                status = "stopped"
            else:
                status = "time_limit" if mip_status in ("time_limit", "optimal") else mip_status
    return SingleSourceResult(
        size=best.size,
        assign=best.assign,
        objective=best.objective,
        lower_bound=min(best_bound, best.objective),
        status=status,
        solver=solver,
        extras=extras,
    )


def _feasibility_mip(prob: _Problem, deadline: float, stop: StopCallback) -> Answer:
    """Any answer, from HiGHS (the heuristics found none); raises when none exists."""
    n, m = prob.n, prob.m
    largest = np.where(np.isfinite(prob.F), prob.Q, -1.0).argmax(axis=1)
    cap = np.where(prob.site_ok, prob.qmax, 0.0)
    pi, pj = np.nonzero(np.isfinite(prob.c) & (cap[None, :] > 0))
    k = pi.size
    # columns: y_j (m), x (k); the p-constraint and capacities as in the full model
    rows_a = [pi, n + pj, n + np.arange(m)]
    cols_a = [m + np.arange(k), m + np.arange(k), np.arange(m)]
    vals_a = [np.ones(k), prob.w[pi], -cap]
    lo = [np.ones(n), np.full(m, -np.inf)]
    hi = [np.ones(n), np.zeros(m)]
    nrow = n + m
    if prob.p is not None:
        rows_a.append(np.full(m, nrow))
        cols_a.append(np.arange(m))
        vals_a.append(np.ones(m))
        lo.append(np.array([float(prob.p)]))
        hi.append(np.array([float(prob.p)]))
        nrow += 1
    a = sp.csc_matrix(
        (np.concatenate(vals_a), (np.concatenate(rows_a), np.concatenate(cols_a))),
        shape=(nrow, m + k),
    )
    col_lower = np.zeros(m + k)
    col_lower[np.flatnonzero(prob.req)] = 1.0
    col_upper = np.ones(m + k)
    col_upper[:m][~prob.site_ok] = 0.0
    result = solve_mip(
        np.concatenate([np.where(prob.site_ok, prob.F.min(axis=1), 0.0), prob.c[pi, pj]]),
        a,
        row_lower=np.concatenate(lo),
        row_upper=np.concatenate(hi),
        col_lower=col_lower,
        col_upper=col_upper,
        integer=np.ones(m + k, dtype=bool),
        time_limit=max(deadline - time.perf_counter(), 0.05),
        mip_rel_gap=1.0,
        should_stop=stop,
    )
    if result.x is None:
        if result.status == "infeasible":
            raise InfeasibleError(
                "no assignment of customers to sites respects the capacities "
                f"(largest capacity {format_number(float(cap.sum()))}, demand "
                f"{format_number(prob.demand)}; single sourcing: each customer goes to one site)"
            )
        raise InfeasibleError(
            f"no feasible assignment found within the time limit ({result.status}); "
            "the capacities may be too tight"
        )
    size = np.where(result.x[:m] > 0.5, largest, -1).astype(np.intp)
    chosen = result.x[m:] > 0.5
    assign = np.full(n, -1, dtype=np.intp)
    assign[pi[chosen]] = pj[chosen]
    return prob.answer(_resize(prob, size, assign), assign)
