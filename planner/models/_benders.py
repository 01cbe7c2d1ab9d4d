"""Benders decomposition of the radius formulation, for median-type models with many candidates.

Problem (as in :mod:`._median`): open candidates ``y_j`` to minimise
``sum_j f_j y_j + sum_i min_{j open} a_ij`` (``a`` already weighted, inf = not allowed),
optionally with exactly ``p`` open.

Formulation (Duran-Mateluna, Ales and Elloumi, "An efficient Benders decomposition for the
p-median problem", EJOR 308, 2023): one continuous ``theta_i`` per customer, and for every
customer and every value ``D`` (in practice the customer's distinct costs) the optimality cut

    theta_i >= D - sum_{j: a_ij < D} (D - a_ij) y_j .

It is valid for every integer ``y`` (if the nearest open candidate costs ``c* < D`` the right-hand
side is at most ``c*``, otherwise it is ``D <= c*``), and the cuts over all levels ``D`` give the
LP bound of the radius formulation (the LP bound of the classical formulation too). For a given
``y`` the most violated cut of customer ``i`` is found in closed form: sort the customer's costs,
``D`` = cost at which the cumulative ``y`` first reaches 1 (the level ``k_i`` of the paper). Only
the candidates with ``y_j > 0`` matter for finding ``D``, so separation costs ``O(n |supp y|)``
plus the cut's own nonzeros; the master has ``m + n`` columns, never ``n x m``.

Solve, all with HiGHS through highspy:

1. LP phase: the master LP (``0 <= y <= 1``) is re-solved with the dual simplex after adding, for
   every customer whose ``theta_i`` is below its cut, the most violated cut (multi-cut), starting
   with the cuts at the heuristic solution. Separation uses the in-out stabilisation of
   Ben-Ameur and Neto (2007): cuts are separated at a point between a stability centre and the LP
   solution, which cuts the number of rounds on small ``p``. The loop stops when no cut is
   violated (the LP bound of the radius formulation) or the bound stalls. A swap local search
   from the rounded LP solution then often improves the incumbent.
2. Reduced-cost fixing: with the final LP's reduced costs ``r_j``, a candidate at 0 with
   ``LB + r_j > UB`` can never be in a better solution and is fixed closed (and symmetrically
   fixed open). With small ``p`` and thousands of candidates this closes most of them.
3. Branch-and-Benders-cut (:func:`_branch`): depth-first branch-and-bound on ``y`` over the
   same master LP (bounds changed per node, dual simplex warm started from the parent's basis),
   with Benders cuts separated at every node's LP solution, reduced-cost fixing per node, the
   rounded LP solution offered as an incumbent, and pruning at ``UB - 1`` when all data are
   integers. Cuts are global. The node LP stops as soon as its dual objective reaches the
   cutoff (HiGHS's ``objective_bound``). Branching is reliability branching
   (:class:`_PseudoCosts`): pseudo-costs per candidate and direction, and a few dual simplex
   iterations on both children of the best-scored candidates that have no history yet (strong
   branching; a child whose LP reaches the cutoff is pruned at once). On an OR-Library-kind
   n = 700, p = 10 (root gap 1.2 %) this took the tree from 383 nodes and 41 s to about 180
   nodes and 9 s; measurements in ``benchmarks/README.md``.

Why not HiGHS's branch-and-cut on the master: HiGHS 1.16 has no lazy-constraint callback, so a
MIP master must be re-solved from scratch after every round of cuts. That variant was built and
measured first: on Malta 1,952 x 1,000, p = 5 it needed 2 MIP rounds of 4-5 s each (12 s in
all), and 4 rounds, 11 s, on an OR-Library-kind n = 500, p = 50, where the branch-and-cut here
takes 1.3 s (47 nodes). The nodes are cheap because the LP only changes bounds and gains rows.

Customers that cannot reach some candidates (inf) get a covering row ``sum_{j reachable} y_j >= 1``
(one per distinct reachable set), so no cut ever involves an infinite cost.

Between rounds and inside HiGHS (interrupt callbacks) the ``should_stop`` callback is polled;
progress reports carry the incumbent, the bound and the gap.
"""

from __future__ import annotations

import heapq
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.errors import SolverError
from planner.models import _local_search
from planner.models._base import ProgressReporter, StopCallback, relative_gap
from planner.models._mip import _new_highs

logger = logging.getLogger(__name__)

#: Relative violation under which a cut is not added (in units of the customer's own cost).
CUT_TOLERANCE = 1e-7

#: The LP phase stops when the bound improved by less than this (relative) over 3 rounds.
LP_STALL = 1e-6

#: Cut rounds per branch-and-bound node (a node's bound is valid after any round).
NODE_CUT_ROUNDS = 50

#: Branching variable: ``"pseudo"`` (reliability branching: pseudo-costs, strong branching
#: on candidates without history), ``"fractional"`` (y closest to 1/2) or ``"largest"``
#: (largest fractional y).
BRANCH_RULE = "pseudo"

#: Node selection: ``"best"`` (least bound first), ``"depth"`` (newest first) or
#: ``"plunge"`` (the newest while its bound is within :data:`PLUNGE_SHARE` of the gap above
#: the least open bound, else the least-bound node: depth-first, whose node LPs stay warm,
#: with jumps that move the global bound).
NODE_ORDER = "depth"

#: Share of the gap (least open bound to cutoff) within which ``"plunge"`` takes the newest
#: node (0: best-first, 1: depth-first).
PLUNGE_SHARE = 0.8

#: Strong branching: the most fractional candidates tried (0 = off), iterations per child LP.
STRONG_CANDIDATES = 4
STRONG_ITERATIONS = 50

#: Observations per direction after which a candidate's pseudo-cost is trusted.
RELIABILITY = 1

#: Every so many branch-and-bound nodes the rounded LP solution is improved by swaps.
POLISH_EVERY = 10

#: Seconds between the tree's progress reports.
PROGRESS_EVERY = 0.5

#: Weight of the stability centre in the in-out separation point.
IN_OUT_ALPHA = 0.5


@dataclass(frozen=True)
class BendersResult:
    """Outcome of :func:`solve_benders`, in the local (non-excluded) column indices."""

    open: np.ndarray
    objective: float
    lower_bound: float
    status: str
    extras: dict[str, Any] = field(default_factory=dict)


class _Cuts:
    """Closed-form separation of the radius-formulation Benders cuts over one cost matrix.

    A cut is identified by its row ``i`` and level ``D``:
    ``theta_i + sum_{j: a_ij < D} (D - a_ij) y_j >= D``. ``order`` and ``sorted`` hold every
    row's columns and costs in increasing cost (inf last).
    """

    def __init__(self, a: np.ndarray) -> None:
        self.a = a
        self.order = np.argsort(a, axis=1, kind="stable").astype(np.int32)
        self.sorted = np.take_along_axis(a, self.order, axis=1)

    def levels(self, y: np.ndarray) -> np.ndarray:
        """Per row, the cost ``D`` at which the cumulative ``y`` (by increasing cost) reaches 1."""
        supp = np.flatnonzero(y > 1e-9)
        sub = self.a[:, supp]
        idx = np.argsort(sub, axis=1, kind="stable")
        costs = np.take_along_axis(sub, idx, axis=1)
        cum = np.cumsum(y[supp][idx], axis=1)
        reached = cum >= 1.0 - 1e-7
        pos = np.where(reached.any(axis=1), reached.argmax(axis=1), supp.size - 1)
        level = costs[np.arange(self.a.shape[0]), pos]
        if not np.isfinite(level).all():
            # only possible with a y violating a covering row: any finite D gives a valid cut
            bad = ~np.isfinite(level)
            finite_max = np.where(np.isfinite(self.sorted), self.sorted, -np.inf).max(axis=1)
            level[bad] = finite_max[bad]
        return level

    def values(self, rows: np.ndarray, level: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Right-hand side minus the y terms of cuts ``(rows, level)`` at ``y``."""
        supp = np.flatnonzero(y > 1e-12)
        sub = self.a[np.ix_(rows, supp)]
        gain = np.maximum(level[:, None] - sub, 0.0)
        gain[~np.isfinite(sub)] = 0.0
        return level - gain @ y[supp]

    def violated(
        self, y_sep: np.ndarray, y: np.ndarray, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows and levels of the cuts separated at ``y_sep`` that ``(y, theta)`` violates."""
        level = self.levels(y_sep)
        rows = np.arange(self.a.shape[0])
        value = self.values(rows, level, y)
        tol = CUT_TOLERANCE * np.maximum(np.abs(level), 1e-9)
        bad = np.flatnonzero(value > theta + tol)
        return bad, level[bad]

    def matrix(
        self, rows: np.ndarray, level: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR (indptr, columns, values) of the y terms of cuts ``(rows, level)``."""
        srt = self.sorted[rows]
        mask = srt < level[:, None]
        rr, tt = np.nonzero(mask)
        cols = self.order[rows][rr, tt]
        vals = level[rr] - srt[rr, tt]
        indptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(mask.sum(axis=1), out=indptr[1:])
        return indptr, cols.astype(np.int32), vals


def _set_time_limit(h: Any, deadline: float) -> None:
    """Let the next run of ``h`` stop at ``deadline`` (HiGHS counts its time limit over all the
    runs of one instance, so the time already used is added)."""
    remaining = max(deadline - time.perf_counter(), 0.01)
    h.setOptionValue("time_limit", float(h.getRunTime()) + remaining)


def _cover_rows(a: np.ndarray) -> list[np.ndarray]:
    """One reachable-column set per distinct pattern of rows that cannot reach every column."""
    finite = np.isfinite(a)
    partial = ~finite.all(axis=1)
    if not partial.any():
        return []
    packed = np.unique(np.packbits(finite[partial], axis=1), axis=0)
    sets = np.unpackbits(packed, axis=1, count=a.shape[1]).astype(bool)
    return [np.flatnonzero(s) for s in sets]


class _Master:
    """The Benders master LP in HiGHS: columns ``y`` (m) then ``theta`` (n), cuts added in
    rounds."""

    def __init__(
        self,
        cuts: _Cuts,
        fixed: np.ndarray,
        *,
        p: int | None,
        y_lower: np.ndarray,
        interrupt: Any,
    ) -> None:
        import highspy

        self.cuts = cuts
        n, m = cuts.a.shape
        self.n, self.m = n, m
        self.h = h = _new_highs()
        h.setOptionValue("threads", 1)
        self.inf = inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = m + n
        lp.num_row_ = 0
        lp.col_cost_ = np.concatenate([fixed, np.ones(n)])
        lp.col_lower_ = np.concatenate([y_lower, cuts.sorted[:, 0]])
        lp.col_upper_ = np.concatenate([np.ones(m), np.full(n, inf)])
        if h.passModel(lp) == highspy.HighsStatus.kError:
            raise SolverError("HiGHS rejected the Benders master (passModel returned kError)")
        all_y = np.arange(m, dtype=np.int32)
        if p is not None:
            h.addRow(float(p), float(p), m, all_y, np.ones(m))
        else:
            h.addRow(1.0, inf, m, all_y, np.ones(m))
        for cover in _cover_rows(cuts.a):
            h.addRow(1.0, inf, cover.size, cover.astype(np.int32), np.ones(cover.size))
        h.cbSimplexInterrupt.subscribe(interrupt)
        h.cbMipInterrupt.subscribe(interrupt)
        self.n_cuts = 0
        self.nnz = 0

    def add(self, rows: np.ndarray, level: np.ndarray) -> int:
        """Add cuts ``(rows, level)``; returns how many."""
        k = rows.size
        if k == 0:
            return 0
        indptr, cols, vals = self.cuts.matrix(rows, level)
        counts = np.diff(indptr)
        starts = np.zeros(k, dtype=np.int32)
        np.cumsum(counts[:-1] + 1, out=starts[1:])
        index = np.empty(int(counts.sum()) + k, dtype=np.int32)
        value = np.empty(index.size)
        index[starts] = self.m + rows
        value[starts] = 1.0
        body = np.ones(index.size, dtype=bool)
        body[starts] = False
        index[body] = cols
        value[body] = vals
        self.h.addRows(k, level, np.full(k, self.inf), index.size, starts, index, value)
        self.n_cuts += k
        self.nnz += int(vals.size)
        return k


def solve_benders(
    a: np.ndarray,
    fixed: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    start_open: np.ndarray,
    deadline: float,
    gap_target: float,
    report: ProgressReporter,
    should_stop: StopCallback | None = None,
    lower_bound: float = -np.inf,
    cutoff: float = np.inf,
) -> BendersResult:
    """Solve the median-type problem exactly by Benders decomposition; see the module docstring.

    Parameters
    ----------
    a
        Weighted cost matrix (n x m) over the allowed candidates; inf where not allowed. Every
        row has a finite entry.
    fixed
        Fixed cost per candidate (zeros for the p-median).
    p
        Number of candidates to open, or None (fixed-charge: at least one).
    required
        Local column indices that must open.
    start_open
        A feasible open set (the heuristic's answer): warm start and first cuts.
    deadline
        ``time.perf_counter()`` value at which to stop.
    gap_target
        Stop when the proven relative gap is at most this.
    report
        Progress reporter (objective and bound in the units of ``a``).
    should_stop
        Polled between rounds and inside HiGHS; True stops with the best solution so far.
    lower_bound
        A bound known beforehand (e.g. Lagrangian), kept if better.
    cutoff
        Stop (status ``"cutoff"``) as soon as the lower bound reaches this value: the caller
        only needs solutions below it (e.g. the two-tier office enumeration).
    """
    import highspy

    t0 = time.perf_counter()
    n, m = a.shape
    stop = should_stop or (lambda: False)
    # scale so that the master's numbers are of order 1 (HiGHS's tolerances are absolute)
    # (the mean customer cost of the start solution; 1 when that is 0 or inf)
    start_cost = a[:, np.asarray(start_open, dtype=np.intp)].min(axis=1)
    scale = float(start_cost.mean()) if np.isfinite(start_cost).all() else 0.0
    scale = scale if scale > 1e-9 else 1.0
    a_s = a / scale
    f_s = fixed / scale
    cuts = _Cuts(a_s)

    def true_value(open_cols: np.ndarray) -> tuple[float, np.ndarray]:
        per_row = a_s[:, open_cols].min(axis=1)
        return float(f_s[open_cols].sum() + per_row.sum()), per_row

    best_open = np.sort(np.asarray(start_open, dtype=np.intp))
    ub, best_theta = true_value(best_open)
    # integer data (e.g. whole seconds, unit weights): objectives are whole numbers, so a node
    # whose bound is above UB - 1 holds no better solution
    finite = a[np.isfinite(a)]
    integer_data = bool(np.all(finite == np.round(finite)) and np.all(fixed == np.round(fixed)))
    unit = 1.0 / scale if integer_data else 0.0
    lb = lower_bound / scale if np.isfinite(lower_bound) else -np.inf
    cutoff_s = cutoff / scale
    extras: dict[str, Any] = {}

    def gap() -> float:
        return relative_gap(ub, lb)

    def progress(message: str) -> None:
        report(message, objective=ub * scale, bound=lb * scale)

    def interrupt(event: Any) -> None:
        if stop() or time.perf_counter() >= deadline:
            event.interrupt()

    pen_cache: list[np.ndarray] = []

    def polish(start: np.ndarray, share: float) -> float:
        """Swap local search from ``start`` (within ``share`` of the time left); offer it."""
        nonlocal ub, best_open, best_theta
        if not pen_cache:
            pen_cache.append(_local_search.penalize_inf(a_s)[0])
        cand, _, _ = _local_search.interchange(
            pen_cache[0],
            f_s,
            np.sort(start),
            p=p,
            required=np.asarray(required, dtype=np.intp),
            allowed=np.ones(m, dtype=bool),
            deadline=time.perf_counter() + share * max(deadline - time.perf_counter(), 0.0),
        )
        val, per_row = true_value(cand)
        if val < ub:
            ub, best_open, best_theta = val, np.sort(cand), per_row
        return val

    y_lo = np.zeros(m)
    y_lo[required] = 1.0
    master = _Master(cuts, f_s, p=p, y_lower=y_lo, interrupt=interrupt)
    h = master.h
    y0 = np.zeros(m)
    y0[best_open] = 1.0
    master.add(*cuts.violated(y0, y0, np.full(n, -np.inf)))
    progress("Benders: cuts at the heuristic solution")

    # ---- 1. LP phase ------------------------------------------------------------------------
    center = y0.copy()
    history: list[float] = []
    lp_rounds = 0
    status = "time_limit"
    y = y0
    theta = best_theta
    rc = np.zeros(m)
    lp_bound = -np.inf
    while True:
        if stop():
            status = "stopped"
            break
        if time.perf_counter() >= deadline:
            break
        _set_time_limit(h, deadline)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            status = "stopped" if stop() else "time_limit"
            break
        lp_rounds += 1
        sol = h.getSolution()
        x = np.asarray(sol.col_value)
        y, theta = np.clip(x[:m], 0.0, 1.0), x[m:]
        rc = np.asarray(sol.col_dual)[:m]
        lp_bound = float(h.getInfo().objective_function_value)
        lb = max(lb, lp_bound)
        history.append(lp_bound)
        # rounding: the p largest y (plus required) as a primal candidate
        if p is not None:
            score = y + 2.0 * y_lo
            cand = np.sort(np.argpartition(-score, p - 1)[:p])
            val, per_row = true_value(cand)
            if val < ub:
                ub, best_open, best_theta = val, cand, per_row
        logger.debug(
            "Benders LP round %d: %.2fs bound %.8g UB %.8g",
            lp_rounds,
            time.perf_counter() - t0,
            lp_bound * scale,
            ub * scale,
        )
        if lp_rounds % 5 == 0:
            progress(f"Benders LP, round {lp_rounds}")
        if gap() <= gap_target:
            status = "done"
            break
        if lb >= cutoff_s:
            status = "cutoff"
            break
        stalled = len(history) > 3 and history[-1] - history[-4] <= LP_STALL * abs(history[-1])
        y_sep = IN_OUT_ALPHA * center + (1.0 - IN_OUT_ALPHA) * y
        found = cuts.violated(y_sep, y, theta)
        if found[0].size == 0:
            found = cuts.violated(y, y, theta)
            if found[0].size == 0:
                break  # LP optimum of the radius formulation
        if stalled and lp_rounds > 10:
            break
        master.add(*found)
        center = 0.5 * center + 0.5 * y
    extras["benders_lp_rounds"] = lp_rounds
    extras["benders_lp_bound"] = lp_bound * scale
    extras["benders_lp_time_s"] = time.perf_counter() - t0
    progress(f"Benders LP bound after {lp_rounds} rounds")

    if (
        status not in ("stopped", "done", "cutoff")
        and gap() > gap_target
        and lp_rounds
        and time.perf_counter() < deadline
    ):
        # a local search from the LP solution: a better incumbent fixes more candidates below
        score = y + 2.0 * y_lo
        k = p if p is not None else max(round(float(y.sum())), 1)
        start = np.sort(np.argpartition(-score, k - 1)[:k])
        val = polish(start, 0.25)
        extras["benders_lp_local_search"] = val * scale
        progress("Benders: local search from the LP solution")
    nodes = 0
    if status not in ("stopped", "done", "cutoff") and gap() > gap_target and lp_rounds:
        # ---- 2. reduced-cost fixing at the root -------------------------------------------------
        slack = ub - lp_bound + 1e-9 * max(abs(ub), 1.0)
        closed = (y < 1e-9) & (rc > slack) & (y_lo < 0.5)
        forced = (y > 1.0 - 1e-9) & (-rc > slack)
        extras["benders_fixed_closed"] = int(closed.sum())
        extras["benders_fixed_open"] = int(forced.sum())
        base_lo = np.maximum(y_lo, forced.astype(float))
        base_hi = np.where(closed, 0.0, 1.0)

        # ---- 3. branch-and-Benders-cut --------------------------------------------------------
        def offer(cand: np.ndarray) -> None:
            nonlocal ub, best_open, best_theta
            val, per_row = true_value(cand)
            if val < ub:
                ub, best_open, best_theta = val, np.sort(cand), per_row

        status, branch_lb, nodes = _branch(
            master,
            p=p,
            base_lo=base_lo,
            base_hi=base_hi,
            root_bound=lp_bound,
            offer=offer,
            polish=lambda cand: polish(cand, 0.05),
            upper_bound=lambda: min(ub, cutoff_s),
            deadline=deadline,
            stop=stop,
            gap_target=gap_target,
            unit=unit,
            progress=lambda message, bound: report(
                message, objective=ub * scale, bound=bound * scale
            ),
        )
        lb = max(lb, branch_lb)
        if status == "done" and lb >= cutoff_s and cutoff_s < ub:
            status = "cutoff"
    n_cuts, nnz = master.n_cuts, master.nnz
    extras["benders_nodes"] = nodes
    extras["benders_cuts"] = n_cuts
    extras["benders_cut_nonzeros"] = nnz
    extras["benders_time_s"] = time.perf_counter() - t0
    if status == "done":
        status = "optimal" if gap() <= 1e-6 else "gap_limit"
    progress("Benders finished")
    return BendersResult(
        open=np.sort(best_open),
        objective=ub * scale,
        lower_bound=min(lb, ub) * scale,
        status=status,
        extras=extras,
    )


def _branch(
    master: _Master,
    *,
    p: int | None,
    base_lo: np.ndarray,
    base_hi: np.ndarray,
    root_bound: float,
    offer: Any,
    polish: Any,
    upper_bound: Any,
    deadline: float,
    stop: StopCallback,
    gap_target: float,
    unit: float,
    progress: Any,
    cut_rounds: int = NODE_CUT_ROUNDS,
    node_order: str | None = None,
    start_nodes: list[tuple[float, np.ndarray, np.ndarray]] | None = None,
    split_at: int | None = None,
    open_out: list[tuple[float, np.ndarray, np.ndarray]] | None = None,
    pseudo: _PseudoCosts | None = None,
    donate: Any = None,
) -> tuple[str, float, int]:
    """Branch-and-bound on ``y`` over the master LP, with Benders cuts at every node.

    Every node re-solves the master LP (dual simplex, warm) with its bounds, adds the violated
    cuts until none is (or a few rounds), fixes candidates by reduced costs, offers the rounded
    LP solution as an incumbent and branches (:class:`_PseudoCosts`). Cuts are global (valid
    for every ``y``). Nodes are taken in ``node_order`` (default :data:`NODE_ORDER`). Returns
    (status, proven lower bound, nodes processed), the bound in master units.

    ``start_nodes`` (bound, lower, upper) replace the root node (``base_lo``/``base_hi``):
    a part of a tree split among processes. With ``split_at``, the search stops with status
    ``"split"`` as soon as that many nodes are open. With ``open_out``, the nodes still open
    when the search stops (split, deadline or stop) go there and the bound returned covers
    only the rest of the tree. ``pseudo`` carries pseudo-costs from one call to the next.
    ``donate(queue)``, called before every node, may take open nodes out of the queue (work
    stealing: another process searches them, and its bound covers them).
    """
    import highspy

    h = master.h
    cuts = master.cuts
    m = master.m
    all_y = np.arange(m, dtype=np.int32)
    kinf = highspy.HighsModelStatus.kInfeasible
    kopt = highspy.HighsModelStatus.kOptimal
    kbound = highspy.HighsModelStatus.kObjectiveBound
    inf = highspy.kHighsInf
    counter = 0
    order = NODE_ORDER if node_order is None else node_order
    queue = _NodeQueue(order)
    if start_nodes is None:
        queue.push(0, root_bound, base_lo.copy(), base_hi.copy())
    else:
        for node_bound, node_lo, node_hi in start_nodes:
            counter += 1
            queue.push(counter, node_bound, node_lo.copy(), node_hi.copy())
    pruned_bound = np.inf  # least bound among nodes pruned by the gap tolerance only
    nodes = 0
    last_report = time.perf_counter()
    polished: set[bytes] = set()

    def cutoff() -> float:
        ub = upper_bound()
        if not np.isfinite(ub):
            return np.inf
        tol = max(gap_target * abs(ub), 1e-9 * max(abs(ub), 1.0))
        return ub - max(tol, unit * (1.0 - 1e-6))

    def settle(bound: float) -> None:
        """Record a pruned node: it holds no solution better than the incumbent (beyond the gap
        tolerance, which is then what the bound says)."""
        nonlocal pruned_bound
        ub = upper_bound()
        if bound < ub and not (unit and bound >= ub - unit * (1.0 - 1e-6)):
            pruned_bound = min(pruned_bound, bound)

    def global_bound() -> float:
        return min(upper_bound(), pruned_bound, queue.least())

    status = "done"
    stats = {"strong_runs": 0, "strong_iterations": 0}
    origin: dict[int, tuple[int, float, float, float]] = {}
    if pseudo is None:
        pseudo = _PseudoCosts(m, stats)
    else:
        pseudo.stats = stats
    lp_time = 0.0
    lp_runs = lp_iterations = 0
    while queue:
        if split_at is not None and len(queue) >= split_at:
            status = "split"
            break
        if donate is not None:
            donate(queue)
            if not queue:
                break
        if stop():
            status = "stopped"
            break
        if time.perf_counter() >= deadline:
            status = "time_limit"
            break
        node_id, parent_bound, lo, hi = queue.pop(cutoff())
        branched = origin.pop(node_id, None)
        if parent_bound >= cutoff():
            settle(parent_bound)
            continue
        nodes += 1
        h.changeColsBounds(m, all_y, lo, hi)
        bound = parent_bound
        y = rc = None
        feasible = True
        for _ in range(cut_rounds):
            _set_time_limit(h, deadline)
            limit = cutoff()
            # the dual simplex stops as soon as its objective proves the node pruned
            h.setOptionValue("objective_bound", float(limit) if np.isfinite(limit) else inf)
            t_lp = time.perf_counter()
            h.run()
            lp_time += time.perf_counter() - t_lp
            lp_runs += 1
            lp_iterations += int(h.getInfo().simplex_iteration_count)
            ms = h.getModelStatus()
            if ms == kinf:
                feasible = False
                break
            if ms == kbound and np.isfinite(limit):
                bound = max(bound, limit)
                feasible = False
                settle(bound)
                pseudo.record(branched, bound)
                break
            if ms != kopt:
                logger.debug("node LP stopped: %s", h.modelStatusToString(ms))
                break
            sol = h.getSolution()
            x = np.asarray(sol.col_value)
            y, theta = np.clip(x[:m], 0.0, 1.0), x[m:]
            rc = np.asarray(sol.col_dual)[:m]
            bound = max(bound, float(h.getInfo().objective_function_value))
            if bound >= cutoff():
                break
            found = cuts.violated(y, y, theta)
            if found[0].size == 0:
                break
            master.add(*found)
        if not feasible:
            continue
        if y is None or rc is None:  # LP stopped by time or stop: keep the node open
            counter += 1
            queue.push(counter, parent_bound, lo, hi)
            if branched is not None:
                origin[counter] = branched
            status = "stopped" if stop() else "time_limit"
            break
        pseudo.record(branched, bound)
        # primal: the rounded LP solution, every POLISH_EVERY nodes improved by swaps
        if p is not None:
            score = y + 2.0 * lo
            rounded = np.argpartition(-score, p - 1)[:p]
            key = np.sort(rounded).tobytes()
            if nodes % POLISH_EVERY == 0 and key not in polished:
                polished.add(key)
                polish(rounded)
            else:
                offer(rounded)
        else:
            offer(np.flatnonzero(y > 0.5) if (y > 0.5).any() else np.array([int(np.argmax(y))]))
        if bound >= cutoff():
            settle(bound)
            continue
        frac = np.minimum(y, 1.0 - y)
        if frac.max() < 1e-6:
            # integral LP solution with no violated cut: its value is exact
            offer(np.flatnonzero(y > 0.5))
            settle(bound)
            continue
        # reduced-cost fixing for the children
        slack = upper_bound() - bound
        lo = lo.copy()
        hi = hi.copy()
        hi[(y < 1e-9) & (rc > slack)] = 0.0
        lo[(y > 1.0 - 1e-9) & (-rc > slack)] = 1.0
        child_bound = {0.0: bound, 1.0: bound}
        if BRANCH_RULE == "pseudo":
            j, child_bound = pseudo.choose(h, y, bound=bound, cutoff=cutoff(), deadline=deadline)
        elif BRANCH_RULE == "largest":
            j = int(np.argmax(np.where(frac > 1e-6, y, -1.0)))
        else:
            j = int(np.argmax(frac))
        for value in (0.0, 1.0):  # the up-child is the newest
            if child_bound[value] >= cutoff():
                settle(child_bound[value])
                continue
            child_lo, child_hi = lo.copy(), hi.copy()
            child_lo[j] = child_hi[j] = value
            counter += 1
            queue.push(counter, child_bound[value], child_lo, child_hi)
            origin[counter] = (j, value, bound, float(y[j]))
        if time.perf_counter() - last_report > PROGRESS_EVERY:
            last_report = time.perf_counter()
            progress(f"Benders branch-and-cut, {nodes} nodes", global_bound())
    if open_out is not None:
        # the open nodes are handed over: the bound covers the rest of the tree
        open_out.extend((b, lo_, hi_) for _, b, lo_, hi_ in queue.nodes.values())
        lb = min(upper_bound(), pruned_bound)
    else:
        lb = global_bound()
    logger.debug(
        "Benders branch-and-cut: %d nodes, %s, bound %.8g; %d LP runs, %d simplex iterations, "
        "%.2f s in the LP",
        nodes,
        status,
        lb,
        lp_runs,
        lp_iterations,
        lp_time,
    )
    logger.debug("strong branching: %s, %s", stats, pseudo.summary())
    return status, lb, nodes


class _NodeQueue:
    """Open nodes ``(id, bound, lower, upper)`` of the branch-and-bound, taken in ``order``
    (see :data:`NODE_ORDER`); ids grow with creation."""

    def __init__(self, order: str) -> None:
        if order not in ("best", "depth", "plunge"):
            raise ValueError(f"node_order must be 'best', 'depth' or 'plunge', got {order!r}")
        self.share = {"best": 0.0, "depth": np.inf, "plunge": PLUNGE_SHARE}[order]
        self.nodes: dict[int, tuple[int, float, np.ndarray, np.ndarray]] = {}
        self.by_bound: list[tuple[float, int]] = []  # (bound, -id), stale entries skipped
        self.by_age: list[int] = []  # ids, stale entries skipped

    def __len__(self) -> int:
        return len(self.nodes)

    def push(self, node_id: int, bound: float, lo: np.ndarray, hi: np.ndarray) -> None:
        self.nodes[node_id] = (node_id, bound, lo, hi)
        heapq.heappush(self.by_bound, (bound, -node_id))
        self.by_age.append(node_id)

    def _clean(self) -> None:
        while self.by_bound and -self.by_bound[0][1] not in self.nodes:
            heapq.heappop(self.by_bound)
        while self.by_age and self.by_age[-1] not in self.nodes:
            self.by_age.pop()

    def least(self) -> float:
        """The least bound of the open nodes (inf when none)."""
        self._clean()
        return self.by_bound[0][0] if self.by_bound else np.inf

    def pop(self, cutoff: float) -> tuple[int, float, np.ndarray, np.ndarray]:
        """The next node: the newest while its bound is within the share of the gap
        ``least .. cutoff``, else the least-bound one (the newest among equal bounds)."""
        least = self.least()
        newest = self.nodes[self.by_age[-1]]
        gap = cutoff - least
        if self.share == np.inf or (
            self.share > 0 and (not np.isfinite(gap) or newest[1] <= least + self.share * gap)
        ):
            return self.nodes.pop(newest[0])
        return self.nodes.pop(-self.by_bound[0][1])


class _PseudoCosts:
    """Pseudo-costs of the branching candidates: bound gain per unit change of ``y_j``, down
    (to 0) and up (to 1), averaged over the children solved so far and the strong-branching
    trials. Candidates with fewer than :data:`RELIABILITY` observations in a direction are
    strong-branched first (reliability branching, Achterberg, Koch and Martin 2005)."""

    def __init__(self, m: int, stats: dict[str, int]) -> None:
        self.total = np.zeros((2, m))
        self.count = np.zeros((2, m))
        self.stats = stats

    def add(self, j: int, value: float, gain: float, change: float) -> None:
        if change > 1e-6 and np.isfinite(gain):
            d = int(value)
            self.total[d, j] += max(gain, 0.0) / change
            self.count[d, j] += 1.0

    def record(self, branched: tuple[int, float, float, float] | None, bound: float) -> None:
        """A child's LP is solved: ``branched`` = (variable, value, parent bound, parent y)."""
        if branched is not None:
            j, value, parent, yj = branched
            self.add(j, value, bound - parent, (1.0 - yj) if value else yj)

    def estimate(self) -> np.ndarray:
        """Per direction and candidate, the mean gain per unit (the overall mean where there
        is none yet)."""
        out = np.empty_like(self.total)
        for d in (0, 1):
            seen = self.count[d] > 0
            mean = self.total[d, seen].sum() / self.count[d, seen].sum() if seen.any() else 1.0
            out[d] = np.where(seen, self.total[d] / np.maximum(self.count[d], 1.0), mean)
        return out

    def summary(self) -> str:
        return f"{int(self.count.sum())} observations"

    def choose(
        self,
        h: Any,
        y: np.ndarray,
        *,
        bound: float,
        cutoff: float,
        deadline: float,
    ) -> tuple[int, dict[float, float]]:
        """The branching candidate and its children's bounds (the node's bound, or a
        strong-branching child LP's optimum or objective-bound stop: valid lower bounds as
        every cut is global). Unreliable candidates among the best-scored are solved as
        child LPs (no new cuts, at most :data:`STRONG_ITERATIONS` dual simplex iterations,
        each from the node's basis); the largest product of the two gains wins."""
        import highspy

        kopt = highspy.HighsModelStatus.kOptimal
        kbound = highspy.HighsModelStatus.kObjectiveBound
        kinf = highspy.HighsModelStatus.kInfeasible
        cand = np.flatnonzero(np.minimum(y, 1.0 - y) > 1e-6)
        est = self.estimate()
        eps = 1e-6 * max(abs(bound), 1.0)
        down = np.maximum(est[0, cand] * y[cand], eps)
        up = np.maximum(est[1, cand] * (1.0 - y[cand]), eps)
        score = down * up
        order = cand[np.argsort(-score, kind="stable")]
        best_j, best_score = int(order[0]), float(score.max())
        best_bounds = {0.0: bound, 1.0: bound}
        unreliable = [int(j) for j in order if self.count[:, j].min() < RELIABILITY][
            :STRONG_CANDIDATES
        ]
        if not unreliable:
            return best_j, best_bounds
        basis = h.getBasis()
        h.setOptionValue("simplex_iteration_limit", STRONG_ITERATIONS)
        best_score = -np.inf
        try:
            for jj in order[: max(STRONG_CANDIDATES, 1)]:
                j = int(jj)
                if j not in unreliable:
                    k = int(np.searchsorted(cand, j))
                    if score[k] > best_score:
                        best_j, best_score = j, float(score[k])
                        best_bounds = {0.0: bound, 1.0: bound}
                    continue
                child: dict[float, float] = {}
                gains = []
                for value in (0.0, 1.0):
                    _set_time_limit(h, deadline)
                    h.changeColBounds(j, value, value)
                    h.run()
                    self.stats["strong_runs"] += 1
                    self.stats["strong_iterations"] += int(h.getInfo().simplex_iteration_count)
                    ms = h.getModelStatus()
                    obj = float(h.getInfo().objective_function_value)
                    if ms == kinf:
                        child[value] = np.inf
                        gain = np.inf
                    elif ms == kbound:
                        child[value] = max(bound, cutoff)
                        gain = child[value] - bound
                    elif ms == kopt:
                        child[value] = max(bound, obj)
                        gain = child[value] - bound
                        self.add(j, value, gain, (1.0 - y[j]) if value else y[j])
                    else:  # iteration limit: a score, not a bound
                        child[value] = bound
                        gain = max(obj - bound, 0.0)
                        self.add(j, value, gain, (1.0 - y[j]) if value else y[j])
                    gains.append(max(min(gain, 1e30), eps))
                    h.changeColBounds(j, 0.0, 1.0)
                    h.setBasis(basis)  # back to the node's basis (no refactorisation)
                sc = gains[0] * gains[1]
                if sc > best_score:
                    best_j, best_score = j, sc
                    best_bounds = child
                if min(child.values()) >= cutoff:
                    break
        finally:
            h.setOptionValue("simplex_iteration_limit", 2**31 - 1)
        return best_j, best_bounds


def lp_bounds(
    a: np.ndarray,
    fixed: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    excluded: list[np.ndarray],
    deadline: float,
    should_stop: StopCallback | None = None,
) -> np.ndarray:
    """LP bounds of several median problems that share the cost matrix ``a``.

    Problem ``k`` has fixed costs ``fixed[k]`` and excluded columns ``excluded[k]``. The
    Benders cuts depend on ``a`` only, so ONE master serves them all: for each problem the
    objective and bounds change and the cut loop resumes with every cut found so far. Returns
    the bounds (``-inf`` where the time ran out first, ``inf`` where infeasible).
    """
    import highspy

    m = a.shape[1]
    k = fixed.shape[0]
    out = np.full(k, -np.inf)
    stop = should_stop or (lambda: False)
    finite = a[np.isfinite(a)]
    scale = float(finite.mean()) if finite.size and finite.mean() > 0 else 1.0
    cuts = _Cuts(a / scale)
    y_lo = np.zeros(m)
    y_lo[required] = 1.0

    def interrupt(event: Any) -> None:
        if stop() or time.perf_counter() >= deadline:
            event.interrupt()

    master = _Master(cuts, fixed[0] / scale, p=p, y_lower=y_lo, interrupt=interrupt)
    h = master.h
    all_y = np.arange(m, dtype=np.int32)
    for o in range(k):
        h.changeColsCost(m, all_y, fixed[o] / scale)
        hi = np.ones(m)
        hi[excluded[o]] = 0.0
        h.changeColsBounds(m, all_y, y_lo, hi)
        for _ in range(100):
            if stop() or time.perf_counter() >= deadline:
                return out
            _set_time_limit(h, deadline)
            h.run()
            ms = h.getModelStatus()
            if ms == highspy.HighsModelStatus.kInfeasible:
                out[o] = np.inf
                break
            if ms != highspy.HighsModelStatus.kOptimal:
                return out
            x = np.asarray(h.getSolution().col_value)
            out[o] = float(h.getInfo().objective_function_value) * scale
            found = cuts.violated(np.clip(x[:m], 0.0, 1.0), np.clip(x[:m], 0.0, 1.0), x[m:])
            if found[0].size == 0:
                break
            master.add(*found)
    return out
