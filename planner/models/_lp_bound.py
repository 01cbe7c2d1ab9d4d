"""The LP bound of the p-median problem by a grouped Benders cut loop in the space of ``y``.

For a fractional open vector ``y`` (``0 <= y <= 1``, ``sum y = p``) the best assignment is found
row by row: customer ``i`` fills its cheapest candidates up to a total of 1, and its cost is

    phi_i(y) = max_D ( D - sum_{j: a_ij < D} (D - a_ij) y_j ),

attained at the level ``D_i(y)`` where the cumulative ``y`` (by increasing cost) reaches 1 (the
radius-formulation cut of :mod:`._benders`). The LP bound of the p-median problem is the minimum
over ``y`` of ``F(y) = f . y + sum_i phi_i(y)``: a convex, piecewise-linear function of only
``m`` variables. Every cut ``theta_i >= D - sum_j (D - a_ij)^+ y_j`` (any ``D``) is valid, and the
cut at ``D_i = lambda_i`` for all ``i`` is exactly the Lagrangian function of
:mod:`._lagrangian` at the multipliers ``lambda``: a master LP holding those cuts starts at the
subgradient's bound and can only rise from there.

Here customers are put into groups with one ``theta_g`` each (the sum of the group's cuts), so the
master LP has ``m + groups`` columns and ``groups`` rows per round, instead of ``m + n`` columns
and up to ``n`` rows (the full multi-cut master of :mod:`._benders`, too slow at 10,000
customers). Rounds separate at a point between a stability centre and the master's solution
(in-out stabilisation, Ben-Ameur and Neto 2007). The master's value is a valid lower bound after
every round; ``F`` at any ``y`` is an upper bound on the LP bound, so the loop also brackets it.

Given an incumbent value (``cutoff``), the same master then branches on ``y`` (best first, both
children of the candidate closest to 1/2, Kelley cut rounds per node, every cut global), so the
bound can rise above the LP bound when the LP is fractional (10,000 x 1,000, p = 20: the LP has
170 fractional candidates; one branching raises the bound by 0.025 %). A primal heuristic
(``on_point``, e.g. :func:`._local_search.lp_rounding`) sees the master's point at the root and
at every node and may lower the cutoff, so more nodes are pruned.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from planner.models import _lagrangian
from planner.models._mip import _new_highs

logger = logging.getLogger(__name__)

#: A round's cut is added when it is violated at the master's point by more than this
#: (relative to the group's right-hand side).
CUT_TOLERANCE = 1e-9

#: The loop stops once the bracket on the LP bound is this tight (relative).
LP_TOLERANCE = 1e-7

#: Weight of the stability centre in the separation point.
IN_OUT_ALPHA = 0.5

#: Kelley cut rounds per branch-and-bound node at most.
NODE_ROUNDS = 30

#: Before branching, cut rows slack by more than this (relative to their right-hand side) at
#: the root's solution are deleted: each node's re-solve is then cheaper (10,000 x 1,000,
#: p = 20: 6,043 of 8,357 rows deleted, 8 nodes instead of 6 in 35 s).
PURGE_SLACK = 1e-6


@dataclass(frozen=True)
class LpBoundResult:
    """Outcome of :func:`lp_bound`.

    ``bound`` is a valid lower bound of the full problem (the master LP's value); ``lp_upper``
    is the smallest ``F(y)`` seen, an upper bound on the LP bound (so the LP bound lies in
    ``[bound, lp_upper]``). ``y`` is the master's last solution; ``multipliers`` the levels
    averaged with the master's duals, per customer (Lagrangian multipliers at least as good as
    the master's value: the cut at an averaged level dominates the average of the cuts, as
    ``(D - a)^+`` is convex in ``D``), empty when no master was solved.
    """

    bound: float
    lp_upper: float
    y: np.ndarray
    multipliers: np.ndarray
    rounds: int
    cuts: int
    converged: bool
    status: str = ""  # "converged", "time_limit", "stopped" or "master: <HiGHS status>"
    lp_value: float = -np.inf  # the root's bound (the LP bound when converged)
    nodes: int = 0  # branch-and-bound nodes solved after the root (with ``cutoff``)


class _Sorted:
    """Every row's costs in increasing order, for the levels ``D_i(y)``."""

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.order = np.argsort(a, axis=1).astype(np.int32)
        self.sorted = np.take_along_axis(a, self.order, axis=1)

    def levels(self, y: np.ndarray) -> np.ndarray:
        """Per row, the cost at which the cumulative ``y`` reaches 1."""
        cum = np.cumsum(y[self.order], axis=1)
        pos = np.argmax(cum >= 1.0 - 1e-9, axis=1)
        return self.sorted[np.arange(self.a.shape[0]), pos]


def group_rows(a: np.ndarray, n_groups: int, *, seed: int = 0) -> np.ndarray:
    """Group label of every row: its cheapest among ``n_groups`` seeded columns (all columns
    when there are fewer), relabelled ``0..G-1``."""
    m = a.shape[1]
    if n_groups >= m:
        centers = np.arange(m)
    else:
        centers = np.sort(np.random.default_rng(seed).choice(m, n_groups, replace=False))
    raw = np.argmin(a[:, centers], axis=1)
    _, labels = np.unique(raw, return_inverse=True)
    return labels.astype(np.int64)


def lp_bound(
    a: np.ndarray,
    fixed: np.ndarray,
    *,
    p: int,
    required: np.ndarray,
    start_levels: list[np.ndarray],
    start_open: np.ndarray,
    deadline: float,
    groups: np.ndarray | None = None,
    should_stop: Any = None,
    sorted_rows: _Sorted | None = None,
    on_round: Callable[[float], None] | None = None,
    cutoff: float = np.inf,
    on_point: Callable[[np.ndarray], float] | None = None,
) -> LpBoundResult:
    """Lower bound (up to the LP bound) of ``min f.y + sum_i min_{j open} a_ij``, ``p`` open.

    Parameters
    ----------
    a
        Weighted cost matrix (n x m), finite.
    fixed
        Fixed cost per candidate.
    p, required
        Number of candidates to open; indices that must open.
    start_levels
        Levels ``D`` (one per row) whose cuts start the master, e.g. the subgradient's
        multipliers (then the first master value is at least their Lagrangian bound).
    start_open
        Open candidates of a solution (the incumbent): the first stability centre.
    deadline
        ``time.perf_counter()`` value at which to stop (the bound so far is returned).
    groups
        Group label per row (``0..G-1``); default :func:`group_rows` with one group per
        candidate (rows grouped by their cheapest candidate).
    should_stop
        Polled between rounds; True stops with the bound so far.
    sorted_rows
        A :class:`_Sorted` of ``a`` to reuse (built here when None).
    on_round
        Called with the bound after every master solve (progress reports).
    cutoff
        Value of an incumbent: when finite and the root converges, best-first branching on
        ``y`` (both children of the most fractional candidate, Kelley cut rounds per node,
        all cuts global) raises ``bound`` to the smallest bound of the open nodes until
        ``deadline``; nodes at or above ``cutoff`` are pruned.
    on_point
        Primal heuristic for the branching: called with the master's ``y`` at the converged
        root and at every node solved; returns the value of the best solution known after it
        (the incumbent may have improved), which becomes the ``cutoff``.
    """
    import highspy

    stop = should_stop or (lambda: False)
    n, m = a.shape
    if groups is None:
        groups = group_rows(a, m)
    g_count = int(groups.max()) + 1
    member = sp.csr_matrix((np.ones(n), (groups, np.arange(n))), shape=(g_count, n))
    srt = sorted_rows or _Sorted(a)
    row_min = srt.sorted[:, 0]
    h = _new_highs()
    h.setOptionValue("threads", 1)
    h.setOptionValue("solver", "simplex")
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_ = m + g_count
    lp.num_row_ = 0
    y_lower = np.zeros(m)
    y_lower[required] = 1.0
    lp.col_cost_ = np.concatenate([fixed, np.ones(g_count)]).astype(np.float64)
    lp.col_lower_ = np.concatenate([y_lower, member @ row_min])
    lp.col_upper_ = np.concatenate([np.ones(m), np.full(g_count, inf)])
    h.passModel(lp)
    h.addRow(float(p), float(p), m, np.arange(m, dtype=np.int32), np.ones(m))

    def cuts_at(level: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        gain = level[:, None] - a
        np.maximum(gain, 0.0, out=gain)
        return sp.csr_matrix(member @ gain), member @ level

    row_group: list[np.ndarray] = []  # per added block: the group of each row
    row_levels: list[np.ndarray] = []  # per added block: the levels (n) its cuts were taken at

    def add(coef: sp.csr_matrix, rhs: np.ndarray, keep: np.ndarray, level: np.ndarray) -> int:
        rows = np.flatnonzero(keep)
        if rows.size == 0:
            return 0
        row_group.append(rows)
        row_levels.append(level)
        sub = coef[rows].tocsr()
        counts = np.diff(sub.indptr)
        starts = np.zeros(rows.size, dtype=np.int32)
        np.cumsum(counts[:-1] + 1, out=starts[1:])
        index = np.empty(int(counts.sum()) + rows.size, dtype=np.int32)
        value = np.empty(index.size)
        index[starts] = m + rows
        value[starts] = 1.0
        body = np.ones(index.size, dtype=bool)
        body[starts] = False
        index[body] = sub.indices
        value[body] = sub.data
        h.addRows(rows.size, rhs[rows], np.full(rows.size, inf), index.size, starts, index, value)
        return int(rows.size)

    def f_value(y: np.ndarray) -> tuple[float, np.ndarray, sp.csr_matrix, np.ndarray]:
        """``F(y)``, the levels ``D_i(y)`` and the grouped cuts at them."""
        level = srt.levels(y)
        coef, rhs = cuts_at(level)
        return float(fixed @ y + rhs.sum() - (coef @ y).sum()), level, coef, rhs

    def add_violated(
        coef: sp.csr_matrix, rhs: np.ndarray, level: np.ndarray, y: np.ndarray, theta: np.ndarray
    ) -> int:
        """Add the cuts violated at the master's point ``(y, theta)``."""
        viol = rhs - coef @ y - theta
        return add(coef, rhs, viol > CUT_TOLERANCE * np.maximum(np.abs(rhs), 1.0), level)

    def averaged_levels() -> np.ndarray:
        """Levels averaged with the cut rows' duals; a group's missing weight (its theta at the
        lower bound) is the cut at the row minima, level ``min_j a_ij``."""
        duals = np.abs(np.asarray(h.getSolution().row_dual)[1:])  # row 0: sum y = p
        out = np.zeros(n)
        total = np.zeros(g_count)
        first = 0
        for rows, level in zip(row_group, row_levels, strict=True):
            weight = np.zeros(g_count)
            weight[rows] = duals[first : first + rows.size]
            out += weight[groups] * level
            total += weight
            first += rows.size
        return out + np.maximum(1.0 - total, 0.0)[groups] * row_min

    def purge() -> None:
        """Delete the cut rows that are slack at the master's solution (kept: row 0 and the
        binding rows); the branching re-separates any it needs again. Root loop only before
        it: the rows no longer match the bookkeeping of ``averaged_levels`` after it."""
        sol = h.getSolution()
        lower = np.asarray(h.getLp().row_lower_)
        slack = np.asarray(sol.row_value) - lower
        drop = np.flatnonzero(slack > PURGE_SLACK * np.maximum(np.abs(lower), 1.0))
        drop = drop[drop > 0]
        if drop.size:
            h.deleteRows(drop.size, drop.astype(np.int32))
        logger.debug("purged %d of %d rows", drop.size, lower.size)

    n_cuts = 0
    for start in start_levels:
        level = np.asarray(start, dtype=np.float64)
        coef, rhs = cuts_at(level)
        n_cuts += add(coef, rhs, np.ones(g_count, dtype=bool), level)
    center = np.zeros(m)
    center[start_open] = 1.0
    f_center, level, coef, rhs = f_value(center)
    n_cuts += add(coef, rhs, np.ones(g_count, dtype=bool), level)
    upper = f_center
    bound = -np.inf
    y_m = center
    multipliers = np.empty(0)
    rounds = 0
    converged = False
    status = "stopped" if stop() else "time_limit"
    while time.perf_counter() < deadline and not stop():
        h.setOptionValue(
            "time_limit", float(h.getRunTime()) + max(deadline - time.perf_counter(), 0.01)
        )
        h.run()
        if (
            h.getModelStatus() != highspy.HighsModelStatus.kOptimal
            and time.perf_counter() < deadline
        ):
            h.clearSolver()  # numerical trouble in the warm start: once more from scratch
            h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            status = f"master: {h.modelStatusToString(h.getModelStatus())}"
            break
        rounds += 1
        x = np.asarray(h.getSolution().col_value)
        y_m, theta = x[:m], x[m:]
        value = float(h.getInfo().objective_function_value)
        if value > bound:
            bound = value
            multipliers = averaged_levels()
        if on_round is not None:
            on_round(bound)
        if upper - bound <= LP_TOLERANCE * max(1.0, abs(upper)):
            converged = True
            status = "converged"
            break
        added = 0
        for alpha in (IN_OUT_ALPHA, 0.0):
            y_sep = alpha * center + (1.0 - alpha) * y_m
            f_sep, level, coef, rhs = f_value(y_sep)
            upper = min(upper, f_sep)
            if f_sep < f_center:
                center, f_center = y_sep, f_sep
            added = add_violated(coef, rhs, level, y_m, theta)
            n_cuts += added
            if added:
                break
        logger.debug(
            "LP bound round %d: %.10g <= LP <= %.10g, %d cuts", rounds, bound, upper, added
        )
        if not added:
            converged = True
            status = "converged"
            break
        status = "stopped" if stop() else "time_limit"
    tree_bound, nodes = bound, 0
    if converged and np.isfinite(cutoff):
        purge()

        def node_bound(lower: np.ndarray, upper_y: np.ndarray) -> tuple[float, np.ndarray]:
            """Kelley cut rounds at a node (y bounds changed); the last master value is a
            valid bound of the node at any round (inf when the node is infeasible)."""
            h.changeColsBounds(m, np.arange(m, dtype=np.int32), lower, upper_y)
            value, y_node = -np.inf, lower
            for _ in range(NODE_ROUNDS):
                if time.perf_counter() >= deadline or stop():
                    break
                h.setOptionValue(
                    "time_limit",
                    float(h.getRunTime()) + max(deadline - time.perf_counter(), 0.01),
                )
                h.run()
                ms = h.getModelStatus()
                if ms == highspy.HighsModelStatus.kInfeasible:
                    return np.inf, lower
                if ms != highspy.HighsModelStatus.kOptimal:
                    break
                x = np.asarray(h.getSolution().col_value)
                y_node, theta = x[:m], x[m:]
                before, value = value, float(h.getInfo().objective_function_value)
                if value >= cutoff or value - before <= LP_TOLERANCE * abs(value):
                    break
                _, level, coef, rhs = f_value(y_node)
                if not add_violated(coef, rhs, level, y_node, theta):
                    break
            return value, y_node

        if on_point is not None:
            cutoff = min(cutoff, on_point(y_m))
        base_lower = np.zeros(m)
        base_lower[required] = 1.0
        # open nodes: (bound, id, lower, upper, y); best first
        heap: list[tuple[float, int, np.ndarray, np.ndarray, np.ndarray]] = [
            (bound, 0, base_lower, np.ones(m), y_m)
        ]
        while heap and time.perf_counter() < deadline and not stop():
            node = heapq.heappop(heap)
            node_value, _, lower, upper_y, y_node = node
            frac = np.flatnonzero((y_node > 1e-6) & (y_node < 1 - 1e-6))
            if node_value >= cutoff:
                continue
            if frac.size == 0:
                heapq.heappush(heap, node)  # integral and the smallest bound: nothing to gain
                break
            j = int(frac[np.argmin(np.abs(y_node[frac] - 0.5))])
            children = []
            for fix_to in (0.0, 1.0):
                lo, up = lower.copy(), upper_y.copy()
                lo[j] = up[j] = fix_to
                value, y_child = node_bound(lo, up)
                nodes += 1
                if on_point is not None and value < cutoff and time.perf_counter() < deadline:
                    cutoff = min(cutoff, on_point(y_child))
                # a node cut short keeps at least its parent's bound
                children.append((max(value, node_value), nodes, lo, up, y_child))
            if time.perf_counter() >= deadline or stop():
                heap.append(node)  # the children may be unfinished: keep the parent's bound
                heap.extend(c for c in children if c[0] < cutoff)
                break
            for child in children:
                if child[0] < cutoff:
                    heapq.heappush(heap, child)
        tree_bound = min([item[0] for item in heap], default=cutoff)
        tree_bound = max(tree_bound, bound)
        if on_round is not None:
            on_round(tree_bound)
        logger.debug("LP bound tree: %d nodes, bound %.10g (root %.10g)", nodes, tree_bound, bound)
    return LpBoundResult(
        bound=tree_bound,
        lp_upper=upper,
        y=y_m,
        multipliers=multipliers,
        rounds=rounds,
        cuts=n_cuts,
        converged=converged,
        status=status,
        lp_value=bound,
        nodes=nodes,
    )


def raise_bound(
    a: np.ndarray,
    fixed: np.ndarray,
    lag: _lagrangian.LagrangianResult,
    *,
    p: int,
    required: np.ndarray,
    allowed: np.ndarray,
    open_sites: np.ndarray,
    deadline: float,
    should_stop: Any = None,
    on_round: Callable[[float], None] | None = None,
    cutoff: float = np.inf,
    on_point: Callable[[np.ndarray], float] | None = None,
) -> tuple[_lagrangian.LagrangianResult, LpBoundResult]:
    """Run :func:`lp_bound` from a subgradient result and return the Lagrangian result at the
    LP's averaged levels when its bound is higher (else ``lag``), with the LP loop's outcome.

    The returned result has ``rho`` and ``chosen`` at its multipliers, evaluated on the full
    matrix (not a core, whose caps would cut some levels), so the reduced-cost tests continue
    from the LP level. With a finite ``cutoff`` (the incumbent's value) the loop goes on
    branching until ``deadline``: then ``LpBoundResult.bound`` may be above the LP bound (and
    above the returned Lagrangian result's bound); ``on_point`` is its primal heuristic (see
    :func:`lp_bound`).
    """
    lp = lp_bound(
        a,
        fixed,
        p=p,
        required=required,
        start_levels=[lag.multipliers],
        start_open=open_sites,
        deadline=deadline,
        should_stop=should_stop,
        on_round=on_round,
        cutoff=cutoff,
        on_point=on_point,
    )
    if lp.multipliers.size == 0:
        return lag, lp
    u = lp.multipliers
    rho = fixed + np.minimum(a - u[:, None], 0.0).sum(axis=0)
    is_required = np.zeros(a.shape[1], dtype=bool)
    is_required[required] = True
    chosen = _lagrangian._choose(rho, p=p, required=required, free=allowed & ~is_required)
    value = float(u.sum() + rho[chosen].sum())
    logger.debug(
        "LP bound %.10g (%d rounds, %d cuts), Lagrangian at its levels %.10g, before %.10g",
        lp.lp_value,
        lp.rounds,
        lp.cuts,
        value,
        lag.bound,
    )
    if not value > lag.bound:
        return lag, lp
    at_lp = _lagrangian.LagrangianResult(
        bound=value,
        multipliers=u,
        rho=rho,
        chosen=chosen,
        iterations=0,
        best_primal=None,
        last_chosen=chosen,
        step=lag.step,
    )
    return at_lp, lp
