"""The exact solve behind :func:`planner.models.max_capture` (maximum capture, MNL / Huff demand).

Problem, after the public function has merged identical customers and dropped the ones that can
never be won: open candidates ``y_j`` (binary) to minimise

    F(y) = sum_j f_j y_j + sum_i a_i * o_i / (o_i + U_i(y)),      U_i(y) = sum_j u_ij y_j,

with exactly ``p`` open (``fixed = 0``, ``a = weights``: the jobs *lost*, so the jobs captured are
``sum(a) - F``) or, for the profit mode, between 1 and ``p_max`` open (``f`` = fixed costs,
``a = margin x weights``). Each term ``L_i(U) = a_i o_i / (o_i + U)`` is convex and decreasing in
``U``, and ``U`` is linear in ``y``: the lost jobs are a convex function of the continuous ``y``
and a supermodular function of the open set (the jobs captured are concave / submodular).

Outer approximation (Ljubic and Moreno, "Outer approximation and submodular cuts for maximum
capture facility location problems with random utilities", EJOR 266, 2018): one epigraph
variable ``phi_i >= L_i(U_i(y))`` per customer, described by cuts in a master LP

* gradient (tangent) cuts at a point ``y0``:
  ``phi_i + sum_j c_j y_j >= a_i o_i (o_i + 2 U0) / (o_i + U0)^2`` with
  ``c_j = a_i o_i u_ij / (o_i + U0)^2`` (valid for every ``y`` in ``[0, 1]^m`` by convexity),
  separated at every LP solution;
* submodular cuts at an open set ``S`` (Nemhauser and Wolsey), valid for every *binary* ``y``:
  ``phi_i >= L(S) - sum_{j not in S} rho_j(S) y_j + sum_{j in S} rho_j(N - j) (1 - y_j)``, with
  ``rho_j(S) = L(S) - L(S + j)``; their coefficients for the sites not in ``S`` are smaller than
  the tangent's, so they cut off fractional points that every tangent leaves. Separated at the
  rounded LP solution;
* envelope cuts (:class:`_Envelope`), per group of customers at the root once the others are
  spent: the convex envelope of the group's lost jobs over the subsets of its ``K`` most
  attractive sites (the other sites linearised at the point), from a small LP; where a
  customer's attraction is spread over several half-open sites the tangents are loose by
  Jensen's inequality and these are not. The root's binding cuts then stay in every node's
  LP (:meth:`_Master.keep_tight`).

At a binary ``y`` the tangent at ``y`` is exact, so an integral LP solution without a violated cut
is a solution with its true value. The master is solved by the project's branch-and-cut
(:func:`planner.models._benders._branch`: depth-first with jumps to the least bound, reliability
branching, reduced-cost fixing, dual simplex warm starts, cuts global), after a root cut loop.
The first incumbent comes from the greedy (within ``1 - 1/e`` of the optimum for the
cardinality version: the capture is monotone submodular; Dam, Ta and Mai) improved by a
best-improvement swap local search.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from planner.errors import SolverError
from planner.models._base import ProgressReporter, StopCallback, relative_gap, sum_of_others
from planner.models._benders import _branch, _PseudoCosts, _set_time_limit
from planner.models._market_split import (
    Node,
    _PartResult,
    _search_shares,
    _Steal,
    _TreeSpec,
    _TreeWorkers,
)
from planner.models._mip import _new_highs
from planner.settings import solver_processes

logger = logging.getLogger(__name__)

#: Relative violation (of the customer's own weight) under which a cut is not added.
CUT_TOLERANCE = 1e-8

#: Root cut loop: stop when the bound improved by less than this (relative) over 3 rounds.
ROOT_STALL = 1e-7

#: Most rounds of the root cut loop.
ROOT_ROUNDS = 200

#: In the tree, a node's cut loop stops when the tangents' total violation is below this
#: share of the gap between the incumbent and the node's LP bound.
TAIL_SHARE = 0.05

#: Most cut rounds per branch-and-bound node (more nodes with fewer rounds each proved the
#: hard instances of ``benchmarks/bench_market.py`` sooner: beta 2, p 10 on 100 x 100 proven
#: in 18-23 s with 5 rounds, at a 1.8-4.7 % gap after 30 s with 20; see benchmarks/README.md).
NODE_CUT_ROUNDS = 5

#: Whether the node LPs keep HiGHS's interrupt callback (the stop is polled between nodes
#: either way, and every LP has the time limit).
TREE_INTERRUPT = False

#: Node selection of the branch-and-cut (see :data:`planner.models._benders.NODE_ORDER`):
#: depth-first while the newest node's bound is in the lower 80 % of the open gap, else the
#: least-bound node, so the proven bound moves while the tree is searched (depth-first kept
#: it at the root's until whole subtrees closed; pure dives from the least bound proved
#: fewer instances, the jumps cost warm starts).
NODE_ORDER = "plunge"

#: The master LP drops its slack cuts when it has more rows than this per column (2 rather
#: than 4: a smaller dense LP makes cheaper nodes, 30-70 % more of them in the same time on
#: the benchmark's hard p = 10 instances, and Malta's p = 8 / 10 gaps at 30 s fell 5x / 2x).
MAX_ROWS_PER_COLUMN = 2

EXTRA_POINTS = False

#: After the root, a problem whose reduced-cost fixing closes at least this share of the sites
#: is solved again on the others only (up to :data:`RESTRICT_DEPTH` times).
RESTRICT_SHARE = 0.3

#: Most nested restrictions (see :data:`RESTRICT_SHARE`).
RESTRICT_DEPTH = 3

#: Whether submodular cuts are separated (besides the gradient cuts).
SUBMODULAR_CUTS = True

#: Customers are split into this many groups, one epigraph variable and one cut per group and
#: round (1: a single cut; the number of customers: a multi-cut). Fewer, denser-in-meaning cuts
#: keep the master LP small; the bound they converge to is the same, but more groups get
#: there in fewer rounds (16 -> 64 groups: a third fewer nodes on the benchmark's hard cases).
CUT_GROUPS = 64


def _groups(prob: CaptureProblem, n_groups: int) -> np.ndarray:
    """Group of each customer: customers with the same most attractive candidate together,
    groups of about equal lost-job weight."""
    k = prob.u.shape[0]
    g = min(n_groups, k)
    if g <= 1:
        return np.zeros(k, dtype=np.intp)
    order = np.lexsort((prob.a, np.argmax(prob.u, axis=1)))
    cum = np.cumsum(prob.a[order])
    cum = cum / cum[-1] if cum[-1] > 0 else np.arange(1, k + 1) / k
    group = np.empty(k, dtype=np.intp)
    group[order] = np.minimum((cum * g - 1e-12).astype(np.intp), g - 1)
    return np.unique(group, return_inverse=True)[1].reshape(-1)


@dataclass(frozen=True)
class CaptureProblem:
    """Internal data: ``u`` (k x m) utilities over the allowed candidates, ``o`` (k,) outside
    attraction, ``a`` (k,) weight of each customer's lost jobs, ``f`` (m,) fixed costs."""

    u: np.ndarray
    o: np.ndarray
    a: np.ndarray
    f: np.ndarray

    def __post_init__(self) -> None:
        # row-major: the separation works row by row and multiplies u from the left; a column
        # subset (``u[:, keep]``) comes out column-major, and every product then copied it
        object.__setattr__(self, "u", np.ascontiguousarray(self.u, dtype=float))

    @property
    def m(self) -> int:
        return int(self.u.shape[1])

    def value(self, open_cols: np.ndarray) -> float:
        """``F`` of an open set (fixed costs + weighted lost jobs)."""
        cols = np.asarray(open_cols, dtype=np.intp)
        util = self.u[:, cols].sum(axis=1)
        return float(self.f[cols].sum() + np.sum(self.a * self.o / (self.o + util)))

    def lost(self, util: np.ndarray) -> np.ndarray:
        return self.a * self.o / (self.o + util)


@dataclass(frozen=True)
class CaptureResult:
    """Outcome of :func:`solve_capture` in the problem's units (``F``, minimised)."""

    open: np.ndarray
    objective: float
    bound: float
    status: str
    extras: dict[str, Any] = field(default_factory=dict)


# ---- heuristics -------------------------------------------------------------------------------


def greedy(
    prob: CaptureProblem,
    *,
    p: int | None,
    required: np.ndarray,
    p_max: int | None = None,
) -> np.ndarray:
    """Greedy: from the required sites, open the candidate that lowers ``F`` most.

    With ``p`` exactly ``p`` open; otherwise (profit) open while it pays (at least one, at most
    ``p_max``).
    """
    m = prob.m
    is_open = np.zeros(m, dtype=bool)
    is_open[required] = True
    util = prob.u[:, is_open].sum(axis=1)
    limit = p if p is not None else (p_max if p_max is not None else m)
    while is_open.sum() < limit:
        denom = prob.o + util
        # gain of opening j: sum_i a o u_ij / ((o + U)(o + U + u_ij)) - f_j
        gain = (
            np.einsum("i,ij->j", prob.a * prob.o / denom, prob.u / (denom[:, None] + prob.u))
            - prob.f
        )
        gain[is_open] = -np.inf
        j = int(np.argmax(gain))
        if not np.isfinite(gain[j]):
            break
        if p is None and gain[j] <= 0 and is_open.any():
            break
        is_open[j] = True
        util = util + prob.u[:, j]
    return np.flatnonzero(is_open)


def local_search(
    prob: CaptureProblem,
    start: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    allowed: np.ndarray | None = None,
    p_max: int | None = None,
    deadline: float = np.inf,
) -> tuple[np.ndarray, float]:
    """Best-improvement local search: swaps (and, without ``p``, adds and drops).

    ``allowed`` (bool, m) limits the candidates that may open. Returns (open set, ``F``).
    """
    m = prob.m
    u, o, a, f = prob.u, prob.o, prob.a, prob.f
    allow = np.ones(m, dtype=bool) if allowed is None else allowed.copy()
    is_open = np.zeros(m, dtype=bool)
    is_open[start] = True
    fixed = np.zeros(m, dtype=bool)
    fixed[required] = True
    cap = p_max if p_max is not None else m

    def sums() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        # the open set's utility per customer, and without each open site, summed afresh
        # (subtracting a utility of 1e17 from a running sum would lose the rest)
        idx = np.flatnonzero(is_open)
        cols = u[:, idx]
        return idx, cols.sum(axis=1), sum_of_others(cols)

    open_idx, util, without = sums()
    value = float(f[is_open].sum() + np.sum(a * o / (o + util)))
    tol = 1e-12 * max(abs(value), 1.0)
    while time.perf_counter() < deadline:
        best_delta, best_move = -tol, None
        closed_ok = np.flatnonzero(allow & ~is_open)
        removable = np.flatnonzero(is_open & ~fixed)
        if closed_ok.size:
            ao = a * o
            if p is None and is_open.sum() < cap:
                # add j
                new = np.sum(ao[:, None] / (o[:, None] + util[:, None] + u[:, closed_ok]), axis=0)
                delta = new + f[closed_ok] - (value - f[is_open].sum())
                k = int(np.argmin(delta))
                if delta[k] < best_delta:
                    best_delta, best_move = float(delta[k]), (-1, int(closed_ok[k]))
            for r in removable:
                base = without[:, np.searchsorted(open_idx, r)]
                new = np.sum(ao[:, None] / (o[:, None] + base[:, None] + u[:, closed_ok]), axis=0)
                delta = new + f[closed_ok] - f[r] - (value - f[is_open].sum())
                k = int(np.argmin(delta))
                if delta[k] < best_delta:
                    best_delta, best_move = float(delta[k]), (int(r), int(closed_ok[k]))
        if p is None and is_open.sum() > 1:
            for r in removable:
                base = without[:, np.searchsorted(open_idx, r)]
                delta = float(np.sum(a * o / (o + base))) - f[r] - (value - f[is_open].sum())
                if delta < best_delta:
                    best_delta, best_move = delta, (int(r), -1)
        if best_move is None:
            break
        r_out, j = best_move
        if r_out >= 0:
            is_open[r_out] = False
        if j >= 0:
            is_open[j] = True
        open_idx, util, without = sums()
        value = float(f[is_open].sum() + np.sum(a * o / (o + util)))
    return np.flatnonzero(is_open), value


# ---- cuts and master --------------------------------------------------------------------------


#: Sites in the support of an envelope cut (per customer; 2**K subsets are enumerated).
ENVELOPE_SITES = 8

#: Most customers given an envelope cut per root round (those whose lost jobs' curvature
#: times the spread of their attraction over fractional sites is largest); 0: none.
ENVELOPE_ROOT = 200

#: Envelope cuts per customer (``"customer"``), per group of customers (``"group"``: one LP
#: per group, the customers sharing one distribution of open sets) or both.
ENVELOPE_MODE = "group"

#: The same per branch-and-bound node cut round (0: envelope cuts at the root only).
ENVELOPE_NODE = 0

#: After envelope rounds at the root, its binding cuts stay in every node's LP (never purged).
KEEP_ROOT_CUTS = True

#: Envelope rounds at the root (after the tangent and submodular cuts are spent) stop when
#: two rounds raised the bound by less than this share of the gap left ...
ENVELOPE_STALL = 0.02

#: ... or after this share of the time left.
ENVELOPE_BUDGET = 0.3


class _Envelope:
    """Per-customer envelope cuts: the strongest cut on a customer's ``K`` most attractive
    sites at a fractional point, from a small LP over their subsets.

    For customer ``i`` (``g(U) = a o / (o + U)``, convex and decreasing) at the point ``y``
    with ``U* = u . y`` and ``lam = -g'(U*)``, split the sites into ``R`` (the ``K`` most
    attractive with ``y > 0``) and the others ``O``. Any open set ``T`` (at most ``q`` sites)
    is ``A + B``, ``A`` in ``R``, and ``u(B)`` lies in ``[0, X(|A|)]`` (``X(c)``: the
    ``q - c`` largest utilities in ``O``), so
    ``L(T) + lam u(B) >= h(A) = min over x in [0, X(|A|)] of g(u(A) + x) + lam x``
    (the minimum is at ``x = U* - u(A)``, clipped). Every ``(mu, pi)`` with
    ``mu + pi(A) <= h(A)`` for all ``A`` gives the valid cut
    ``phi_i >= mu + sum_{j in R} pi_j y_j - lam sum_{j in O} u_j y_j``;
    the LP ``max mu + pi . y_R`` picks the one deepest at ``y``: it is the convex envelope of
    ``h`` over the subsets of ``R`` (minimum expected lost jobs over the distributions of open
    sets with marginals ``y``), which the tangent and submodular cuts do not reach when a
    customer's attraction is spread over several half-open sites. ``mu`` is recomputed from
    the enumeration, so the cut is valid whatever the LP's tolerances.
    """

    def __init__(self, prob: CaptureProblem, q: int, n_sites: int | None = None) -> None:
        import highspy

        self.prob = prob
        self.q = q
        kk = max(1, min(ENVELOPE_SITES if n_sites is None else n_sites, prob.m))
        self.kk = kk
        bits = (np.arange(2**kk)[:, None] >> np.arange(kk)) & 1
        card = bits.sum(axis=1)
        keep = card <= q
        self.bits = bits[keep].astype(float)
        self.card = card[keep]
        n_sub = self.bits.shape[0]
        self.h = h = _new_highs()
        h.setOptionValue("threads", 1)
        h.setOptionValue("presolve", "off")
        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = kk + 1
        lp.num_row_ = n_sub
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.col_cost_ = np.zeros(kk + 1)
        lp.col_lower_ = np.concatenate([[-inf], np.full(kk, -inf)])
        lp.col_upper_ = np.concatenate([[inf], np.zeros(kk)])  # pi <= 0: L falls as sites open
        lp.row_lower_ = np.full(n_sub, -inf)
        lp.row_upper_ = np.zeros(n_sub)
        mat = np.column_stack([np.ones(n_sub), self.bits])
        csc = sp.csc_matrix(mat)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data
        h.passModel(lp)
        self.rows = np.arange(n_sub, dtype=np.int32)
        self.cols = np.arange(kk + 1, dtype=np.int32)
        self.n_sub = n_sub

    def cuts(self, y: np.ndarray, clusters: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients (len(clusters) x m) and right-hand sides of the envelope cuts at ``y``
        of each cluster's summed lost jobs (``sum_{i in C} phi_i + coef . y >= rhs``).

        A cluster of one customer gives that customer's cut; a larger cluster shares one
        distribution of open sets among its customers (its ``h`` is the sum of theirs, its
        sites those with the largest summed tangent slope), which also captures how
        customers compete for the same half-open sites."""
        import highspy

        prob = self.prob
        m, kk, q = prob.m, self.kk, self.q
        h = self.h
        inf = highspy.kHighsInf
        coef = np.zeros((len(clusters), m))
        rhs = np.zeros(len(clusters))
        positive = y > 1e-9
        fill = np.minimum(np.maximum(q - self.card, 0), m - kk)
        for row, members in enumerate(clusters):
            uc = prob.u[members]
            oc, ac = prob.o[members], prob.a[members]
            us = uc @ y
            lam = ac * oc / (oc + us) ** 2
            score = lam @ uc
            score = np.where(positive, score, score - score.max() - 1.0)  # y > 0 first
            r = np.argpartition(-score, kk - 1)[:kk] if kk < m else np.arange(m)
            out = np.ones(m, dtype=bool)
            out[r] = False
            uo = -np.sort(-uc[:, out], axis=1)
            cum = np.concatenate([np.zeros((len(members), 1)), np.cumsum(uo, axis=1)], axis=1)
            xmax = cum[:, fill]  # (c, subsets)
            ua = uc[:, r] @ self.bits.T
            x = np.clip(us[:, None] - ua, 0.0, xmax)
            ha = np.sum((ac * oc)[:, None] / (oc[:, None] + ua + x) + lam[:, None] * x, axis=0)
            h.changeColsCost(kk + 1, self.cols, np.concatenate([[1.0], y[r]]))
            h.changeRowsBounds(self.n_sub, self.rows, np.full(self.n_sub, -inf), ha)
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                continue
            pi = np.minimum(np.asarray(h.getSolution().col_value)[1:], 0.0)
            mu = float(np.min(ha - self.bits @ pi))  # exact: valid whatever the LP's tolerance
            coef[row, r] = -pi
            coef[row, out] = lam @ uc[:, out]
            rhs[row] = mu
        return coef, rhs


class _Cuts:
    """Separation of gradient and submodular cuts; a cut is (rows, dense coefficients, rhs):
    ``phi_i + coef . y >= rhs``."""

    def __init__(
        self,
        prob: CaptureProblem,
        p: int | None,
        lo: np.ndarray,
        group: np.ndarray,
        p_max: int | None = None,
    ) -> None:
        self.prob = prob
        self.p = p
        #: most sites an open set can have
        self.q = p if p is not None else (p_max if p_max is not None else prob.m)
        self.lo = lo
        #: every row's columns by falling utility
        self.by_utility = np.argsort(-prob.u, axis=1, kind="stable")
        k = prob.u.shape[0]
        self.n_groups = int(group.max()) + 1
        self.group = group
        #: sums the customers' cuts into their group's cut (G x k)
        self.agg = sp.csr_matrix((np.ones(k), (group, np.arange(k))), shape=(self.n_groups, k))
        #: ``agg`` with one weight per customer (see :meth:`_weighted`); its pattern is fixed
        self._wagg = self.agg.copy()
        #: a k x m work array reused by the grouped separation
        self._work = np.empty_like(prob.u)
        self.group_weight = self.agg @ prob.a
        #: the incumbent's value (set for the branch-and-cut; see :meth:`violated`)
        self.incumbent: Callable[[], float] | None = None
        #: envelope cut separator, made at first use
        self.env: _Envelope | None = None
        #: per customer, the fewest jobs it can be lost with (its ``q`` most attractive sites
        #: open), and per group their sum: the floors of ``phi`` that :meth:`cap` uses
        q = self.q
        best = -np.partition(-prob.u, q - 1, axis=1)[:, :q] if q < prob.m else prob.u
        self.floor = prob.lost(best.sum(axis=1))
        self.group_floor = self.agg @ self.floor

    @staticmethod
    def cap(coef: np.ndarray, rhs: np.ndarray, floor: np.ndarray) -> np.ndarray:
        """Coefficient reduction: the cuts ``phi + coef . y >= rhs`` with every coefficient at
        most ``rhs - floor`` (``floor``: the least value ``phi`` can take), in place.

        Valid at every binary ``y``: where a reduced coefficient's site is open the cut asks
        ``phi >= floor`` or less, which always holds; elsewhere nothing changes. It is tighter
        at fractional ``y``, and it keeps the master's numbers of the order of the jobs: a
        tangent at a point far from a very attractive site (utility 1e17 against an outside
        option of 1) would otherwise have a coefficient of that order."""
        np.minimum(coef, np.maximum(rhs - floor, 0.0)[:, None], out=coef)
        return coef

    def _weighted(self, weight: np.ndarray) -> sp.csr_matrix:
        """``agg`` with customer ``i``'s entry ``weight[i]``: ``_weighted(w) @ M`` sums
        ``w_i M_i`` over each group's customers in one pass over ``M``."""
        wagg = self._wagg
        wagg.data[:] = weight[wagg.indices]
        return wagg

    def grouped_gradient(self, y0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The group sums of :meth:`gradient`'s cuts, without the k x m coefficients."""
        prob = self.prob
        u0 = prob.u @ y0
        d = prob.o + u0
        slope = prob.a * prob.o / (d * d)
        rhs = slope * (prob.o + 2.0 * u0)
        work = np.multiply(prob.u, slope[:, None], out=self._work)
        self.cap(work, rhs, self.floor)
        return np.asarray(self.agg @ work), self.agg @ rhs

    def grouped_submodular(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The group sums of :meth:`submodular`'s cuts at ``s``, in two passes over ``u``."""
        prob = self.prob
        u, o = prob.u, prob.o
        in_s = np.zeros(prob.m, dtype=bool)
        in_s[s] = True
        cols = np.flatnonzero(in_s)
        u_s = u[:, cols]
        us = u_s.sum(axis=1)
        ds = o + us
        ao = prob.a * o
        extra = self._extra(in_s)
        # sites outside S: ao u / (ds (ds + u)) = (ao / ds) * u / (ds + u)
        work = self._work
        np.add(u, ds[:, None], out=work)
        np.divide(u, work, out=work)
        coef = np.asarray(self._weighted(ao / ds) @ work)
        # sites in S (few): ao u / (dx (dx + u)), dx = o + U of S + T - j at its largest
        dx = (o + extra)[:, None] + sum_of_others(u_s)
        c_s = ao[:, None] * u_s / (dx * (dx + u_s))
        coef[:, cols] = np.asarray(self.agg @ c_s)
        rhs = self.agg @ (ao / ds + c_s.sum(axis=1))
        return coef, rhs

    def _extra(self, in_s: np.ndarray) -> np.ndarray:
        """Per customer, the sum of the ``q`` largest utilities outside ``in_s``."""
        prob = self.prob
        q = min(self.q, prob.m - int(in_s.sum()))
        if q <= 0:
            return np.zeros(prob.u.shape[0])
        # walk each row's sites by falling utility
        width = min(q + int(in_s.sum()), prob.m)
        idx = self.by_utility[:, :width]
        vals = np.take_along_axis(prob.u, idx, axis=1)
        keep = ~in_s[idx]
        keep &= np.cumsum(keep, axis=1) <= q
        return np.where(keep, vals, 0.0).sum(axis=1)

    def gradient(self, y0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients (k x m) and right-hand sides (k) of the tangents at ``y0``."""
        prob = self.prob
        u0 = prob.u @ y0
        d = prob.o + u0
        slope = prob.a * prob.o / (d * d)
        rhs = slope * (prob.o + 2.0 * u0)
        return self.cap(slope[:, None] * prob.u, rhs, self.floor), rhs

    def submodular(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients and right-hand sides of the submodular cuts at the open set ``s``.

        For every open set ``T`` of at most ``q`` sites (``q`` = ``p``, the cap, or all),
        ``L(T) >= L(S) - sum_{j in T-S} rho_j(S) + sum_{j in S-T} rho_j(S + T - j)`` (add
        ``T - S`` to ``S``, then remove ``S - T`` from ``S + T``; submodularity bounds each
        step). ``rho_j(X)`` only depends on ``U_X`` and falls as it grows, so ``U`` of
        ``S - j`` plus the ``q`` largest utilities outside ``S`` gives a coefficient valid for
        every such ``T``: with few sites open, far larger than Nemhauser and Wolsey's
        ``rho_j(N - j)``.
        """
        prob = self.prob
        u, o = prob.u, prob.o
        in_s = np.zeros(prob.m, dtype=bool)
        in_s[s] = True
        us = u[:, in_s].sum(axis=1)
        ds = o + us
        ao = prob.a * o
        extra = self._extra(in_s)
        dx = np.empty_like(u)  # o + U of S + T - j, at its largest (used for j in S)
        dx[:] = (ds + extra)[:, None]
        dx[:, in_s] = (o + extra)[:, None] + sum_of_others(u[:, in_s])
        coef = np.where(
            in_s[None, :],
            ao[:, None] * u / (dx * (dx + u)),
            ao[:, None] * u / (ds[:, None] * (ds[:, None] + u)),
        )
        rhs = ao / ds + coef[:, in_s].sum(axis=1)
        return coef, rhs

    def _pick(
        self, coef: np.ndarray, rhs: np.ndarray, y: np.ndarray, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Group the customers' cuts; return those ``(y, theta)`` violates."""
        return self._pick_grouped(np.asarray(self.agg @ coef), self.agg @ rhs, y, theta)

    def _pick_grouped(
        self, coef: np.ndarray, rhs: np.ndarray, y: np.ndarray, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The groups' cuts (reduced by :meth:`cap`) that ``(y, theta)`` violates."""
        coef = self.cap(coef, rhs, self.group_floor)
        value = rhs - coef @ y
        tol = CUT_TOLERANCE * np.maximum(self.group_weight, 1e-12)
        rows = np.flatnonzero(value > theta + tol)
        return rows, coef[rows], rhs[rows]

    def envelope(
        self, y: np.ndarray, theta: np.ndarray, most: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Envelope cuts (:class:`_Envelope`) at ``y`` for the ``most`` customers with the
        largest second-order estimate of their Jensen gap, grouped; those ``(y, theta)``
        violates."""
        prob = self.prob
        frac = y * (1.0 - y)
        if most <= 0 or frac.max() < 1e-6:
            empty = np.zeros(0, dtype=np.intp)
            return empty, np.zeros((0, y.size)), np.zeros(0)
        if self.env is None:
            self.env = _Envelope(prob, self.q)
        d = prob.o + prob.u @ y
        est = prob.a * prob.o / d**3 * ((prob.u * prob.u) @ frac)
        cand = np.flatnonzero(est > 1e-9 * np.maximum(prob.a, 1e-12))
        if cand.size > most:
            cand = cand[np.argpartition(-est[cand], most - 1)[:most]]
        coef = np.zeros((prob.u.shape[0], y.size))
        rhs = np.zeros(prob.u.shape[0])
        # the others keep their tangent at y (their share of the group's cut)
        tc, tr = self.gradient(y)
        coef[:] = tc
        rhs[:] = tr
        ec, er = self.env.cuts(y, [np.array([i]) for i in cand])
        coef[cand] = ec
        rhs[cand] = er
        return self._pick(coef, rhs, y, theta)

    def group_envelope(
        self, y: np.ndarray, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Envelope cuts (:class:`_Envelope`) of every group's summed lost jobs at ``y``;
        those ``(y, theta)`` violates."""
        if self.env is None:
            self.env = _Envelope(self.prob, self.q)
        order = np.argsort(self.group, kind="stable")
        members = np.split(order, np.cumsum(np.bincount(self.group))[:-1])
        coef, rhs = self.env.cuts(y, members)
        self.cap(coef, rhs, self.group_floor)
        value = rhs - coef @ y
        tol = CUT_TOLERANCE * np.maximum(self.group_weight, 1e-12)
        rows = np.flatnonzero(value > theta + tol)
        return rows, coef[rows], rhs[rows]

    def violated(
        self, y_sep: np.ndarray, y: np.ndarray, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cuts separated at ``y_sep`` (tangents) and at binary points near it (submodular)
        that ``(y, theta)`` violates; at most one of each kind per group.

        At a fractional ``y`` in the tree (:attr:`incumbent` set), nothing is returned when
        the tangents' total violation is small against the gap: more rounds could not prune
        the node, branching does more (the node's bound stays valid).
        """
        rows, coef, rhs = self._pick_grouped(*self.grouped_gradient(y_sep), y, theta)
        if self.incumbent is not None and rows.size:
            frac = np.minimum(y, 1.0 - y).max()
            if frac > 1e-6:
                lp_value = float(self.prob.f @ y + theta.sum())
                viol = float(np.sum(rhs - coef @ y - theta[rows]))
                if viol < TAIL_SHARE * (self.incumbent() - lp_value):
                    empty = np.zeros(0, dtype=np.intp)
                    return empty, np.zeros((0, y.size)), np.zeros(0)
        out_rows, out_coef, out_rhs = [rows], [coef], [rhs]
        if ENVELOPE_NODE and self.incumbent is not None:
            rows3, coef3, rhs3 = self.envelope(y, theta, ENVELOPE_NODE)
            out_rows.append(rows3)
            out_coef.append(coef3)
            out_rhs.append(rhs3)
        if SUBMODULAR_CUTS:
            for s in self.binary_points(y_sep):
                rows2, coef2, rhs2 = self._pick_grouped(*self.grouped_submodular(s), y, theta)
                out_rows.append(rows2)
                out_coef.append(coef2)
                out_rhs.append(rhs2)
        return np.concatenate(out_rows), np.concatenate(out_coef), np.concatenate(out_rhs)

    def binary_points(self, y: np.ndarray) -> list[np.ndarray]:
        """Open sets at which submodular cuts are separated: the rounding of ``y`` and the
        sites at 1 (in the tree: the sites fixed open)."""
        out = []
        s = self.round(y)
        if s is not None:
            out.append(s)
        ones = np.flatnonzero(y > 1.0 - 1e-9)
        if ones.size and (s is None or ones.size != s.size):
            out.append(ones)
        if EXTRA_POINTS and self.p is not None:
            score = y + 2.0 * self.lo
            order = np.argsort(-score, kind="stable")
            for size in (self.p - 1, self.p + 1):
                if 0 < size < y.size and size >= int(self.lo.sum()):
                    out.append(np.sort(order[:size]))
        return out

    def round(self, y: np.ndarray) -> np.ndarray | None:
        """A binary point near ``y``: the ``p`` largest (required first), or ``y > 0.5``."""
        if self.p is not None:
            score = y + 2.0 * self.lo
            return np.sort(np.argpartition(-score, self.p - 1)[: self.p])
        s = np.flatnonzero(y > 0.5)
        return s if s.size else None


class _Master:
    """Master LP in HiGHS: columns ``y`` (m) then ``phi`` (one per group of customers); the
    interface :func:`planner.models._benders._branch` works on (``h``, ``cuts``, ``m``, ``add``)."""

    #: rows before the first cut (the cardinality row)
    FIRST_CUT_ROW = 1

    def __init__(
        self,
        prob: CaptureProblem,
        cuts: _Cuts,
        *,
        p: int | None,
        p_max: int | None,
        y_lower: np.ndarray,
        phi_lower: np.ndarray,
        interrupt: Callable[[Any], None] | None,
    ) -> None:
        import highspy

        self.cuts = cuts
        k, m = cuts.n_groups, prob.m
        self.k, self.m = k, m
        self.h = h = _new_highs()
        h.setOptionValue("threads", 1)
        self.inf = inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = m + k
        lp.num_row_ = 0
        lp.col_cost_ = np.concatenate([prob.f, np.ones(k)])
        lp.col_lower_ = np.concatenate([y_lower, phi_lower])
        lp.col_upper_ = np.concatenate([np.ones(m), np.full(k, inf)])
        if h.passModel(lp) == highspy.HighsStatus.kError:
            raise SolverError("HiGHS rejected the capture master (passModel returned kError)")
        all_y = np.arange(m, dtype=np.int32)
        if p is not None:
            h.addRow(float(p), float(p), m, all_y, np.ones(m))
        else:
            h.addRow(1.0, float(p_max) if p_max is not None else inf, m, all_y, np.ones(m))
        assert int(h.getNumRow()) == self.FIRST_CUT_ROW
        if interrupt is not None:
            h.cbSimplexInterrupt.subscribe(interrupt)
            h.cbMipInterrupt.subscribe(interrupt)
        self.n_fixed_rows = int(h.getNumRow())
        self.n_cuts = 0
        self.nnz = 0
        self.purged = 0

    def keep_tight(self) -> None:
        """Drop the cuts with slack at the last LP solution and keep the others for good
        (:meth:`purge` never drops them): the root's binding cuts, the envelope cuts among
        them, stay in every node's LP."""
        self.purge(force=True)
        self.n_fixed_rows = int(self.h.getNumRow())

    def purge(self, *, force: bool = False) -> None:
        """Delete the cuts with slack at the last LP solution when the LP has grown past
        :data:`MAX_ROWS_PER_COLUMN` rows per column (they are valid, only not needed now; the
        LP stays a relaxation)."""
        h = self.h
        num_row = int(h.getNumRow())
        limit = MAX_ROWS_PER_COLUMN * (self.m + self.k) + self.n_fixed_rows
        if (num_row <= limit and not force) or self.n_cuts == 0:
            return
        import highspy

        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return
        activity = np.asarray(h.getSolution().row_value)
        lower = np.asarray(h.getLp().row_lower_)
        slack = activity - lower
        drop = np.flatnonzero(slack > 1e-9 * np.maximum(np.abs(lower), 1.0))
        drop = drop[drop >= self.n_fixed_rows]
        if drop.size:
            h.deleteRows(int(drop.size), drop.astype(np.int32))
            self.purged += int(drop.size)

    def add(self, rows: np.ndarray, coef: np.ndarray, rhs: np.ndarray) -> int:
        """Add cuts ``phi_rows + coef . y >= rhs``; returns how many."""
        n = int(rows.size)
        if n == 0:
            return 0
        self.purge()
        mask = coef > 0
        counts = mask.sum(axis=1)
        starts = np.zeros(n, dtype=np.int32)
        np.cumsum(counts[:-1] + 1, out=starts[1:])
        index = np.empty(int(counts.sum()) + n, dtype=np.int32)
        value = np.empty(index.size)
        index[starts] = self.m + rows
        value[starts] = 1.0
        body = np.ones(index.size, dtype=bool)
        body[starts] = False
        rr, cc = np.nonzero(mask)
        index[body] = cc
        value[body] = coef[rr, cc]
        self.h.addRows(n, rhs, np.full(n, self.inf), index.size, starts, index, value)
        self.n_cuts += n
        self.nnz += int(rr.size)
        return n


# ---- the solve ---------------------------------------------------------------------------------


def _admissible(
    cand: np.ndarray, *, p: int | None, p_max: int | None, required: np.ndarray
) -> bool:
    """Whether an open set may be offered as an incumbent: every required site in it, and in
    profit mode (``p`` None) at least one and at most ``p_max`` sites."""
    if p is None and (cand.size == 0 or (p_max is not None and cand.size > p_max)):
        return False
    return bool(np.all(np.isin(required, cand)))


@dataclass
class _Incumbent:
    """The best open set found so far (``ub``, the value of ``F``, and ``open``) and the two
    ways it improves: an offered set, and swaps from a set (:func:`local_search`)."""

    prob: CaptureProblem
    p: int | None
    p_max: int | None
    required: np.ndarray
    ub: float
    open: np.ndarray

    def offer(self, cand: np.ndarray) -> None:
        cand = np.asarray(cand, dtype=np.intp)
        if not _admissible(cand, p=self.p, p_max=self.p_max, required=self.required):
            return
        val = self.prob.value(cand)
        if val < self.ub:
            self.ub, self.open = val, np.sort(cand)

    def polish(self, cand: np.ndarray, deadline: float, share: float) -> float:
        """Swaps from ``cand`` for ``share`` of the time left; returns the value reached."""
        found, val = local_search(
            self.prob,
            np.asarray(cand, dtype=np.intp),
            p=self.p,
            required=self.required,
            p_max=self.p_max,
            deadline=time.perf_counter() + share * max(deadline - time.perf_counter(), 0.0),
        )
        if val < self.ub and (self.p is not None or found.size):
            self.ub, self.open = val, np.sort(found)
        return val


def _tree_search(
    master: _Master, best: _Incumbent, *, deadline: float, **more: Any
) -> tuple[str, float, int]:
    """The market model's branch-and-cut over ``master`` (:func:`_branch`, this module's node
    settings): ``best`` takes the offered open sets and swaps from them (5 % of the time left
    each), in this process or in one of a split tree's."""
    return _branch(
        master,  # type: ignore[arg-type]
        p=best.p,
        offer=best.offer,
        polish=lambda cand: best.polish(cand, deadline, 0.05),
        deadline=deadline,
        unit=0.0,
        cut_rounds=NODE_CUT_ROUNDS,
        node_order=NODE_ORDER,
        **more,
    )


def solve_capture(
    prob: CaptureProblem,
    *,
    p: int | None,
    required: np.ndarray,
    start_open: np.ndarray,
    deadline: float,
    gap_target: float,
    report: ProgressReporter,
    should_stop: StopCallback | None = None,
    p_max: int | None = None,
    target: float | None = None,
    _depth: int = 0,
) -> CaptureResult:
    """Minimise ``F`` exactly by outer approximation and branch-and-cut; see the module docs.

    Parameters
    ----------
    prob
        The problem (every row has a positive utility somewhere).
    p
        Number of sites to open, or None (profit mode: 1 to ``p_max``).
    required
        Columns that must open.
    start_open
        A feasible open set (the heuristic's answer).
    deadline
        ``time.perf_counter()`` value at which to stop.
    gap_target
        Relative gap on ``F`` at which to stop.
    report
        Progress reporter (called with ``F`` and its bound).
    should_stop
        Polled between rounds and inside HiGHS.
    target
        Decision mode: stop as soon as a solution with ``F <= target`` is found (status
        ``"reached"``), and prune every node that cannot reach it (status ``"cutoff"`` when
        none can).
    """
    import highspy

    t0 = time.perf_counter()
    k, m = prob.u.shape
    stop = should_stop or (lambda: False)
    hs = highspy.HighsModelStatus
    #: statuses that are an answer, not numerical trouble
    lp_done = (hs.kOptimal, hs.kInfeasible, hs.kTimeLimit, hs.kInterrupt)
    start_open = np.sort(np.asarray(start_open, dtype=np.intp))
    ub_raw = prob.value(start_open)
    # scale so that the master's numbers are of order 1 per customer
    scale = ub_raw / k if ub_raw > 1e-12 else 1.0
    sprob = CaptureProblem(prob.u, prob.o, prob.a / scale, prob.f / scale)
    best = _Incumbent(sprob, p, p_max, required, ub_raw / scale, start_open)
    target_s = None if target is None else target / scale
    lb = -np.inf
    extras: dict[str, Any] = {}
    y_lo = np.zeros(m)
    y_lo[required] = 1.0

    def reached() -> bool:
        return target_s is not None and best.ub <= target_s

    def stop_all() -> bool:
        return stop() or reached()

    def interrupt(event: Any) -> None:
        if stop_all() or time.perf_counter() >= deadline:
            event.interrupt()

    def upper_bound() -> float:
        if target_s is not None:
            return min(best.ub, target_s * (1.0 + 1e-9))
        return best.ub

    def progress(message: str, bound: float) -> None:
        report(message, objective=best.ub * scale, bound=bound * scale)

    cuts = _Cuts(sprob, p, y_lo, _groups(sprob, CUT_GROUPS), p_max)
    master = _Master(
        sprob,
        cuts,
        p=p,
        p_max=p_max,
        y_lower=y_lo,
        phi_lower=cuts.group_floor,
        interrupt=interrupt,
    )
    h = master.h
    y0 = np.zeros(m)
    y0[best.open] = 1.0
    no_theta = np.full(cuts.n_groups, -np.inf)
    master.add(*cuts.violated(y0, y0, no_theta))
    # a tangent at the uniform point too (the LP's first solution is less extreme)
    if p is not None:
        yu = np.full(m, p / m)
        master.add(*cuts.violated(yu, yu, no_theta))

    # ---- root cut loop --------------------------------------------------------------------
    status = "time_limit"
    history: list[float] = []
    rounds = 0
    y = y0
    rc = np.zeros(m)
    lp_bound = -np.inf
    center = y0.copy()
    env_start: float | None = None
    env_from = env_rounds = 0
    env_budget = 0.0
    while rounds < ROOT_ROUNDS:
        if stop_all():
            status = "stopped"
            break
        if time.perf_counter() >= deadline:
            break
        _set_time_limit(h, deadline)
        h.run()
        ms = h.getModelStatus()
        if ms not in lp_done and not stop_all() and time.perf_counter() < deadline:
            h.clearSolver()  # numerical trouble in the warm start: once more from scratch
            h.run()
            ms = h.getModelStatus()
        if ms == hs.kInfeasible:
            raise SolverError("the capture master LP is infeasible (p out of range?)")
        if ms != hs.kOptimal:
            if stop_all():
                status = "stopped"
            elif ms in lp_done or time.perf_counter() >= deadline:
                status = "time_limit"
            else:
                status = f"master: {h.modelStatusToString(ms)}"
            break
        rounds += 1
        sol = h.getSolution()
        x = np.asarray(sol.col_value)
        y, theta = np.clip(x[:m], 0.0, 1.0), x[m:]
        rc = np.asarray(sol.col_dual)[:m]
        lp_bound = float(h.getInfo().objective_function_value)
        lb = max(lb, lp_bound)
        history.append(lp_bound)
        s = cuts.round(y)
        if s is not None:
            best.offer(s)
        if relative_gap(best.ub, lb) <= gap_target or reached():
            status = "done"
            break
        if target_s is not None and lb > target_s * (1.0 + 1e-9):
            status = "done"
            break
        y_sep = 0.5 * center + 0.5 * y
        found = cuts.violated(y_sep, y, theta)
        if found[0].size == 0:
            found = cuts.violated(y, y, theta)
        stalled = len(history) > 3 and history[-1] - history[-4] <= ROOT_STALL * abs(history[-1])
        if env_start is None and (found[0].size == 0 or (stalled and rounds > 10)):
            # the tangent and submodular cuts are spent: envelope cuts, while they pay
            now = time.perf_counter()
            if not ENVELOPE_ROOT or np.minimum(y, 1.0 - y).max() < 1e-6:
                break
            env_start, env_from = now, len(history)
            env_budget = ENVELOPE_BUDGET * max(deadline - now, 0.0)
        if env_start is not None:
            gained = history[-1] - history[max(len(history) - 3, env_from - 1)]
            if (
                len(history) - env_from >= 3 and gained <= ENVELOPE_STALL * (best.ub - history[-1])
            ) or time.perf_counter() - env_start > env_budget:
                break
            extra = []
            if ENVELOPE_MODE in ("group", "both"):
                extra.append(cuts.group_envelope(y, theta))
            if ENVELOPE_MODE in ("customer", "both"):
                extra.append(cuts.envelope(y, theta, ENVELOPE_ROOT))
            for more in extra:
                found = tuple(np.concatenate([f, g]) for f, g in zip(found, more, strict=True))  # type: ignore[assignment]
            env_rounds += 1
        if found[0].size == 0:
            break
        master.add(*found)
        center = 0.5 * center + 0.5 * y
    extras["envelope_rounds"] = env_rounds
    extras["root_rounds"] = rounds
    extras["root_bound"] = lp_bound * scale
    extras["root_time_s"] = time.perf_counter() - t0
    progress(f"outer approximation: root bound after {rounds} rounds", lb)

    if status not in ("stopped", "done") and rounds and time.perf_counter() < deadline:
        rounded = cuts.round(y)
        best.polish(rounded if rounded is not None else best.open, deadline, 0.2)
    nodes = 0
    if (
        status not in ("stopped", "done")
        and rounds
        and relative_gap(best.ub, lb) > gap_target
        and not reached()
        and time.perf_counter() < deadline
    ):
        slack = upper_bound() - lp_bound + 1e-9 * max(abs(best.ub), 1.0)
        closed = (y < 1e-9) & (rc > slack) & (y_lo < 0.5)
        forced = (y > 1.0 - 1e-9) & (-rc > slack)
        extras["fixed_closed"] = int(closed.sum())
        extras["fixed_open"] = int(forced.sum())
        if _depth < RESTRICT_DEPTH and closed.sum() >= RESTRICT_SHARE * m:
            # most sites cannot be in a better answer: solve again on the others only (a
            # smaller master with shorter cuts, and a tighter relaxation: fractional y can no
            # longer spread over the removed sites). The optimum is there unless the incumbent
            # is optimal, so the smaller problem's bound is valid here up to the incumbent.
            return _restricted(
                prob,
                keep=np.flatnonzero(~closed),
                required=np.union1d(required, np.flatnonzero(forced)),
                start_open=best.open,
                cap=upper_bound() * scale,
                extras=extras,
                solve=lambda sub, req, start: solve_capture(
                    sub,
                    p=p,
                    required=req,
                    start_open=start,
                    deadline=deadline,
                    gap_target=gap_target,
                    report=report,
                    should_stop=should_stop,
                    p_max=p_max,
                    target=target,
                    _depth=_depth + 1,
                ),
            )
        base_lo = np.maximum(y_lo, forced.astype(float))
        base_hi = np.where(closed, 0.0, 1.0)
        if KEEP_ROOT_CUTS and env_rounds:
            master.keep_tight()
        cuts.incumbent = upper_bound
        if not TREE_INTERRUPT:
            # node LPs are short and the tree polls the stop before every node; HiGHS's
            # per-iteration callback cost about 5 % of the tree's time
            h.cbSimplexInterrupt.unsubscribe(interrupt)
            h.cbMipInterrupt.unsubscribe(interrupt)
        processes = solver_processes() if target_s is None else 1

        def tree(
            report_bound: Callable[[str, float], None] = progress, **more: Any
        ) -> tuple[str, float, int]:
            return _tree_search(
                master,
                best,
                deadline=deadline,
                base_lo=base_lo,
                base_hi=base_hi,
                root_bound=lp_bound,
                upper_bound=upper_bound,
                stop=stop_all,
                gap_target=gap_target,
                progress=report_bound,
                **more,
            )

        if processes == 1:
            status, branch_lb, nodes = tree()
        else:
            split: list[Node] = []
            status, branch_lb, nodes = tree(split_at=SPLIT_NODES * processes, open_out=split)
            if status != "split" and split:  # stopped before the split: still open
                branch_lb = min([branch_lb] + [node[0] for node in split])
        if status == "split":
            # the open nodes are dealt out to this process and the others; a process that
            # runs out of work takes nodes the others give away (work stealing)
            spec = _TreeSpec.of(
                master,
                prob=sprob,
                cuts=cuts,
                p=p,
                p_max=p_max,
                required=required,
                gap_target=gap_target,
                deadline=deadline,
            )
            own_pseudo = _PseudoCosts(m, {})
            split.sort(key=lambda node: node[0])
            shares = [split[i::processes] for i in range(processes)]
            from threadpoolctl import threadpool_limits

            # one BLAS thread per process: BLAS's own threads on the cores the other
            # processes use made every matrix product several times slower
            with (
                threadpool_limits(limits=1),
                _TreeWorkers(spec, shares, best.ub, best.open, _PartSearcher) as others,
            ):

                def run(
                    start: list[Node], left: list[Node], publish: Callable[[str, float], None]
                ) -> tuple[str, float, int]:
                    def report_bound(message: str, bound: float) -> None:
                        publish(message, bound)
                        # every process's work and the nodes on their way between them
                        progress(message, others.steal.least())

                    return tree(
                        report_bound,
                        start_nodes=start,
                        open_out=left,
                        pseudo=own_pseudo,
                        donate=others.steal.donate,
                    )

                status, own_lb, own_nodes = _search_shares(
                    run, others.steal, shares[0], deadline, stop_all, me=0
                )
                results = others.collect(stop_all)
                left_bound = others.steal.drain()
            branch_lb = min(branch_lb, own_lb, left_bound)
            nodes += own_nodes
            per_process = [own_nodes]
            for r in results:
                best.offer(r.best_open)
                branch_lb = min(branch_lb, r.bound)
                nodes += r.nodes
                per_process.append(r.nodes)
                if r.status != "done" and status == "done":
                    status = r.status
            if np.isfinite(left_bound) and status == "done":
                status = "time_limit"
            extras["processes"] = processes
            extras["nodes_per_process"] = per_process
        lb = max(lb, branch_lb)
    if reached():
        status = "reached"
    elif status == "done":
        if target_s is not None:
            status = "cutoff"  # no open set reaches the target
        else:
            status = "optimal" if relative_gap(best.ub, lb) <= 1e-6 else "gap_limit"
    elif status == "stopped" and not stop():
        status = "time_limit"
    extras["nodes"] = nodes
    extras["cuts"] = master.n_cuts
    extras["cuts_purged"] = master.purged
    extras["cut_nonzeros"] = master.nnz
    extras["bnc_time_s"] = time.perf_counter() - t0
    progress("outer approximation finished", lb)
    return CaptureResult(
        open=np.sort(best.open),
        objective=best.ub * scale,
        bound=min(lb, best.ub) * scale if target_s is None else lb * scale,
        status=status,
        extras=extras,
    )


#: Open nodes per process at which the tree is split (``$PLANNER_SOLVER_PROCESSES`` > 1).
SPLIT_NODES = 4


class _PartSearcher:
    """Searches shares of the open nodes in one process, with its own copy of the master LP
    (built from ``spec``) and pseudo-costs kept from one share to the next."""

    def __init__(self, spec: _TreeSpec) -> None:
        prob = spec.prob
        self.spec = spec
        self.cuts = _Cuts(prob, spec.p, spec.y_lower, spec.group, spec.p_max)
        self.master = master = _Master(
            prob,
            self.cuts,
            p=spec.p,
            p_max=spec.p_max,
            y_lower=spec.y_lower,
            phi_lower=spec.phi_lower,
            interrupt=None,
        )
        rows = spec.rows
        if rows.shape[0]:
            master.h.addRows(
                int(rows.shape[0]),
                spec.row_lower,
                spec.row_upper,
                int(rows.nnz),
                rows.indptr[:-1].astype(np.int32),
                rows.indices.astype(np.int32),
                rows.data,
            )
        master.n_fixed_rows = spec.n_fixed_rows
        self.pseudo = _PseudoCosts(prob.m, {})
        self.best = _Incumbent(
            prob, spec.p, spec.p_max, spec.required, np.inf, np.zeros(0, dtype=np.intp)
        )
        self.cuts.incumbent = lambda: self.best.ub

    def search(
        self, nodes: list[Node], steal: _Steal, stop: Callable[[], bool], me: int
    ) -> _PartResult:
        """Search under ``nodes``, then under nodes taken from the others, until the tree is
        done, the deadline or ``stop``; ``me`` is this process's place in ``steal``."""
        deadline = time.perf_counter() + (self.spec.wall_deadline - time.time())

        def run(
            start: list[Node], left: list[Node], publish: Callable[[str, float], None]
        ) -> tuple[str, float, int]:
            return _tree_search(
                self.master,
                self.best,
                deadline=deadline,
                base_lo=self.spec.y_lower,
                base_hi=np.ones(self.spec.prob.m),
                root_bound=-np.inf,
                upper_bound=lambda: self.best.ub,
                stop=stop,
                gap_target=self.spec.gap_target,
                progress=publish,
                start_nodes=start,
                open_out=left,
                pseudo=self.pseudo,
                donate=steal.donate,
            )

        status, bound, n = _search_shares(run, steal, nodes, deadline, stop, me=me)
        return _PartResult(status, bound, n, self.best.open)


def _restricted(
    prob: CaptureProblem,
    *,
    keep: np.ndarray,
    required: np.ndarray,
    start_open: np.ndarray,
    cap: float,
    extras: dict[str, Any],
    solve: Callable[[CaptureProblem, np.ndarray, np.ndarray], CaptureResult],
) -> CaptureResult:
    """Solve ``prob`` on the columns ``keep`` only (every open set using another column is
    worse than ``cap``, the incumbent's value, by reduced-cost fixing) and map the answer
    back. The bound is the smaller problem's, capped at ``cap``: the optimum is either in the
    smaller problem or not below ``cap``."""
    keep = np.union1d(keep, start_open).astype(np.intp)  # the incumbent is never fixed closed
    pos = np.full(prob.m, -1, dtype=np.intp)
    pos[keep] = np.arange(keep.size)
    sub = CaptureProblem(prob.u[:, keep], prob.o, prob.a, prob.f[keep])
    res = solve(sub, pos[np.intersect1d(required, keep)], pos[start_open])
    merged = dict(extras)
    merged["restricted_columns"] = int(keep.size)
    for key, value in res.extras.items():
        if key in ("nodes", "cuts", "cuts_purged", "cut_nonzeros"):
            merged[key] = merged.get(key, 0) + value
        elif key not in merged:
            merged[key] = value
        else:
            merged[f"restricted_{key}"] = value
    return CaptureResult(
        open=np.sort(keep[res.open]),
        objective=res.objective,
        bound=min(res.bound, cap),
        status=res.status,
        extras=merged,
    )
