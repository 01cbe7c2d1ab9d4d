"""Lagrangian relaxation of the assignment constraints of median-type location problems.

Relaxing ``sum_j x_ij = 1`` with multipliers ``lambda_i`` gives, for any ``lambda``,

    L(lambda) = sum_i lambda_i + min_{y feasible} sum_j y_j rho_j,
    rho_j = f_j + sum_i min(0, a_ij - lambda_i),

where "y feasible" means: required candidates open, excluded closed and, with a cardinality p,
exactly p open (the p - |required| smallest ``rho`` among the rest); without, every candidate
with ``rho_j < 0`` (at least one). ``L(lambda)`` is a valid lower bound; the subgradient method
(Held-Karp step ``mu (UB - L) / ||g||^2``) maximises it. For p-median on Euclidean-like instances
the bound is usually within a fraction of a percent of the optimum (Beasley 1993).

To keep each iteration cheap, only pairs with small ``a_ij`` are stored (a row-wise sparse
"core"): a dropped pair contributes ``min(0, a_ij - lambda_i) = 0`` as long as ``lambda_i`` does
not exceed the row's smallest dropped cost, so the multipliers are capped there and the bound stays
valid.

The final multipliers also give reduced-cost tests (Beasley 1993; Avella et al. 2007): a pair
``(i, j)`` can be dropped when ``L + max(0, a_ij - lambda_i) + (cost of forcing j open) > UB``,
which usually shrinks the exact MIP to a small fraction of the pairs.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from planner.models import _local_search

logger = logging.getLogger(__name__)

#: Rows of the core keep the pairs up to this multiple of the starting multiplier (at least
#: the 32 cheapest); large values keep whole rows, which gives the best bounds.
CORE_FACTOR = 50.0


@dataclass(frozen=True)
class LagrangianResult:
    """Best bound found and the data needed for reduced-cost tests."""

    bound: float
    multipliers: np.ndarray  # lambda_i
    rho: np.ndarray  # rho_j at the best multipliers
    chosen: np.ndarray  # bool mask of the relaxation's open set
    iterations: int
    best_primal: np.ndarray | None  # best open set seen among relaxation solutions
    converged: bool = False  # the step became tiny (more iterations would hardly help)
    last_chosen: np.ndarray | None = None  # the relaxation's open set at the last multipliers
    step: float = 1.0  # the step factor reached (pass it as ``step`` to continue the descent)


class _Core:
    """Row-wise sparse core of the cost matrix, sorted by cost within each row.

    Only the pairs with ``a_ij < lambda_i`` contribute to ``rho``; with the rows sorted they are
    a prefix of each row, found for all rows at once by one ``searchsorted`` on keys
    ``row * span + a_ij``, so an iteration costs O(sum of prefix lengths), not O(core size).
    Multipliers are capped at the row's smallest dropped cost so the bound stays valid.
    """

    def __init__(self, a: np.ndarray, threshold: np.ndarray, allowed: np.ndarray) -> None:
        n, m = a.shape
        cols_allowed = np.flatnonzero(allowed)
        sub = a[:, cols_allowed] if cols_allowed.size < m else a
        order = np.argsort(sub, axis=1, kind="stable")
        sorted_vals = np.take_along_axis(sub, order, axis=1)
        lengths = (sorted_vals <= threshold[:, None]).sum(axis=1)
        mask = np.arange(sorted_vals.shape[1])[None, :] < lengths[:, None]
        self.vals = sorted_vals[mask]
        self.cols = cols_allowed[order[mask]].astype(np.int32)
        del order, mask
        # cap: the cheapest dropped pair of the row (inf when the whole row is kept)
        full = lengths >= sorted_vals.shape[1]
        self.cap = np.where(
            full, np.inf, sorted_vals[np.arange(n), np.minimum(lengths, sorted_vals.shape[1] - 1)]
        )
        del sorted_vals
        top = float(np.max(self.vals, initial=0.0))
        self.cap = np.minimum(self.cap, top * 4.0 + 1.0)
        self.span = top * 8.0 + 2.0
        self.starts = np.zeros(n, dtype=np.int64)
        np.cumsum(lengths[:-1], out=self.starts[1:])
        self.row_base = np.arange(n) * self.span
        self.keys = np.repeat(self.row_base, lengths) + self.vals
        self.n, self.m = n, m

    def prefix(self, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Indices of the pairs with ``a_ij < lambda_i`` and their row of each."""
        ends = np.searchsorted(self.keys, self.row_base + lam, side="left")
        lengths = ends - self.starts
        total = int(lengths.sum())
        offsets = np.cumsum(lengths) - lengths
        idx = np.arange(total) - np.repeat(offsets - self.starts, lengths)
        return idx, np.repeat(np.arange(self.n), lengths)


def build_core(a: np.ndarray, start: np.ndarray, allowed: np.ndarray) -> _Core:
    """Core of ``a`` for multipliers around ``start``: per row the pairs up to
    ``CORE_FACTOR * start`` (at least the 32 cheapest)."""
    m = a.shape[1]
    kmin = min(m, 32)
    kth = np.partition(a, kmin - 1, axis=1)[:, kmin - 1] if kmin < m else a.max(axis=1)
    threshold = np.maximum(CORE_FACTOR * start, kth)
    return _Core(a, threshold, allowed)


def _choose(
    rho: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    free: np.ndarray,
) -> np.ndarray:
    chosen = np.zeros(rho.size, dtype=bool)
    chosen[required] = True
    if p is None:
        chosen |= free & (rho < 0)
        if not chosen.any():
            cand = np.where(free, rho, np.inf)
            chosen[int(np.argmin(cand))] = True
    else:
        k = p - int(required.size)
        if k > 0:
            cand = np.where(free, rho, np.inf)
            idx = np.argpartition(cand, k - 1)[:k]
            chosen[idx] = True
    return chosen


def subgradient(
    a: np.ndarray,
    fixed: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    allowed: np.ndarray,
    upper_bound: float,
    start: np.ndarray,
    deadline: float,
    max_iterations: int = 20000,
    target: float | None = None,
    evaluate_every: int = 25,
    stall_limit: int = 40,
    deflection: float = 0.7,
    max_restarts: int = 3,
    core: _Core | None = None,
    step: float = 1.0,
) -> LagrangianResult:
    """Maximise the Lagrangian bound by subgradient optimisation.

    Parameters
    ----------
    a
        Weighted cost matrix (n x m), finite (penalised) values.
    fixed
        Fixed cost per candidate.
    p
        Number of candidates to open, or None (fixed-charge).
    required, allowed
        Indices that must open; mask of candidates that may open (required ones included).
    upper_bound
        Objective of the best known solution (for the step size).
    start
        Initial multipliers (e.g. each row's cost in the best known solution).
    deadline
        ``time.perf_counter()`` value at which to stop.
    target
        Stop as soon as the bound reaches this value.
    evaluate_every
        Every so many iterations the relaxation's open set is evaluated as a primal solution.
    stall_limit, deflection
        The step factor halves after ``stall_limit`` iterations without improvement; the
        direction is ``g + deflection * previous direction``.
    max_restarts
        When the step has become tiny and time remains, restart from the best multipliers this
        many times (with more patience).
    core
        A core from :func:`build_core` to reuse between calls (built here when None).
    step
        Starting step factor ``mu``; a call that continues an earlier one from its multipliers
        passes that result's ``step``, so the step does not jump back to 1 and undo the
        convergence of the earlier rounds.
    """
    n, m = a.shape
    is_required = np.zeros(m, dtype=bool)
    is_required[required] = True
    free = allowed & ~is_required
    if core is None:
        core = build_core(a, start, allowed)
    lam = np.minimum(start.astype(np.float64), core.cap)
    best = -np.inf
    best_lam = lam.copy()
    best_rho = fixed.copy()
    best_chosen = np.zeros(m, dtype=bool)
    best_primal: np.ndarray | None = None
    best_primal_value = upper_bound
    mu = step
    stall = 0
    it = 0
    chosen = best_chosen
    direction = np.zeros(n)
    restarts = 0
    converged = False
    for it in range(1, max_iterations + 1):
        idx, prow = core.prefix(lam)
        red = core.vals[idx] - lam[prow]
        rho = fixed + np.bincount(core.cols[idx], weights=red, minlength=m)
        chosen = _choose(rho, p=p, required=required, free=free)
        value = float(lam.sum() + rho[chosen].sum())
        if value > best + 1e-6 * max(1.0, abs(best)):
            stall = 0
        else:
            stall += 1
        if value > best:
            best = value
            best_lam = lam.copy()
            best_rho = rho
            best_chosen = chosen
        if stall >= stall_limit:
            mu *= 0.5
            stall = 0
        if target is not None and best >= target:
            break
        if time.perf_counter() > deadline:
            break
        if mu < 1e-4:
            if restarts >= max_restarts:
                converged = True
                break
            # restart from the best multipliers with a smaller step and more patience
            restarts += 1
            lam = best_lam.copy()
            mu = 0.25
            stall_limit *= 2
            direction = np.zeros(n)
            continue
        if p is not None and it % evaluate_every == 0:
            cand = np.flatnonzero(chosen)
            val = float(fixed[cand].sum() + a[:, cand].min(axis=1).sum())
            if val < best_primal_value:
                best_primal_value = val
                best_primal = cand
        # subgradient: 1 - number of open candidates the row is attached to
        attached = chosen[core.cols[idx]]
        g = 1.0 - np.bincount(prow[attached], minlength=n)
        # deflected direction (Camerini, Fratta and Maffioli 1975)
        direction = g + deflection * direction
        norm = float(direction @ direction)
        if norm == 0:
            break
        gap = max(upper_bound - value, 1e-9 * max(1.0, abs(upper_bound)))
        lam = lam + (mu * gap / norm) * direction
        np.clip(lam, 0.0, core.cap, out=lam)
    logger.debug("Lagrangian: %d iterations, bound %.6g (UB %.6g)", it, best, upper_bound)
    return LagrangianResult(
        bound=best,
        multipliers=best_lam,
        rho=best_rho,
        chosen=best_chosen,
        iterations=it,
        best_primal=best_primal,
        converged=converged,
        last_chosen=chosen,
        step=mu,
    )


def reduced_pairs(
    a: np.ndarray,
    lag: LagrangianResult,
    *,
    p: int | None,
    required: np.ndarray,
    allowed: np.ndarray,
    upper_bound: float,
    eps: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Reduced-cost tests: pairs and candidates that any solution better than UB may use.

    Returns
    -------
    keep_pairs
        (n x m) bool mask of pairs that survive.
    keep_cols
        (m,) bool mask of candidates that may still open (required ones included).
    """
    m = a.shape[1]
    is_required = np.zeros(m, dtype=bool)
    is_required[required] = True
    free = allowed & ~is_required
    rho = lag.rho
    chosen = lag.chosen
    slack = upper_bound + eps - lag.bound
    # cost (in bound) of forcing a candidate open
    force_open = np.zeros(m)
    if p is None:
        chosen_free = chosen & free
        if is_required.any() or (rho[chosen_free] < 0).any():
            force_open = np.maximum(rho, 0.0)
        else:  # the relaxation opened one candidate with rho >= 0 only because one must open
            force_open = np.maximum(rho - float(rho[chosen].min()), 0.0)
        force_open[chosen] = 0.0
    else:
        chosen_free = chosen & free
        if chosen_free.any():
            worst = float(rho[chosen_free].max())
            force_open = np.maximum(rho - worst, 0.0)
            force_open[chosen] = 0.0
        else:  # all p are required: nothing else may open
            force_open = np.where(chosen, 0.0, np.inf)
    keep_cols = allowed & (force_open <= slack)
    keep_cols |= is_required
    lam = lag.multipliers
    extra = a - lam[:, None]
    np.maximum(extra, 0.0, out=extra)
    extra += force_open[None, :]
    keep_pairs = (extra <= slack) & keep_cols[None, :]
    return keep_pairs, keep_cols


def core_interchange(
    a: np.ndarray,
    fixed: np.ndarray,
    open_sites: np.ndarray,
    core: _Core,
    *,
    required: np.ndarray,
    allowed: np.ndarray,
    deadline: float,
    tol: float = 1e-9,
) -> tuple[np.ndarray, float, int]:
    """The fast interchange of :func:`._local_search.interchange` (fixed number of open
    sites) on the core's sorted rows instead of the dense matrix.

    Only the pairs cheaper than a customer's second-closest open site change a swap's value
    (Resende and Werneck 2004), and with the rows sorted they are a prefix of each row: with
    ``d1``, ``d2`` the closest and second-closest open costs and ``r(i)`` the closest site,

        delta(j, r) = f_j - f_r - gain_j + base_r - S[r, j],
        gain_j = sum_{i: a_ij < d1_i} (d1_i - a_ij),   base_r = sum_{i: r(i) = r} (d2_i - d1_i),
        S[r, j] = sum_{i: r(i) = r, a_ij < d2_i} (d2_i - max(a_ij, d1_i)),

    which costs O(pairs below d2) per swap instead of O(n m) (on 10,000 x 1,000 with 20 open
    about 0.8 M of the 10 M pairs). Rows the core cuts short only make the formula pessimistic
    (a missing pair only lowers a saving); each chosen swap is checked on ``a`` before it is
    applied, so the returned objective is exact.

    Returns
    -------
    open_sites, objective, iterations
    """
    m = a.shape[1]
    is_open = np.zeros(m, dtype=bool)
    is_open[open_sites] = True
    if int(is_open.sum()) < 2:
        return _local_search.interchange(
            a,
            fixed,
            open_sites,
            p=int(is_open.sum()),
            required=required,
            allowed=allowed,
            deadline=deadline,
            tol=tol,
        )
    is_required = np.zeros(m, dtype=bool)
    is_required[required] = True
    objective = _local_search.evaluate(a, fixed, np.flatnonzero(is_open))
    iterations = 0
    while time.perf_counter() < deadline:
        open_sites = np.flatnonzero(is_open)
        k = open_sites.size
        k1, d1, d2 = _local_search.closest_two(a, open_sites)
        idx, prow = core.prefix(d2)
        vals = core.vals[idx]
        cols = core.cols[idx]
        d1p = d1[prow]
        below = vals < d1p
        gain = np.bincount(cols[below], weights=d1p[below] - vals[below], minlength=m)
        base = np.bincount(k1, weights=d2 - d1, minlength=k)
        save = d2[prow] - np.maximum(vals, d1p)
        s = np.bincount(k1[prow] * m + cols, weights=save, minlength=k * m).reshape(k, m)
        delta = base[:, None] - s + (fixed - gain)[None, :] - fixed[open_sites][:, None]
        delta[:, ~(allowed & ~is_open)] = np.inf
        delta[is_required[open_sites], :] = np.inf
        flat = int(np.argmin(delta))
        r_pos, j = divmod(flat, m)
        thresh = tol * max(1.0, abs(objective))
        if not delta[r_pos, j] < -thresh:
            break
        # exact value of the swap
        moved = np.where(k1 == r_pos, d2, d1)
        np.minimum(moved, a[:, j], out=moved)
        value = float(fixed[open_sites].sum() - fixed[open_sites[r_pos]] + fixed[j] + moved.sum())
        if not value < objective - thresh:
            break
        is_open[open_sites[r_pos]] = False
        is_open[j] = True
        objective = value
        iterations += 1
    open_sites = np.flatnonzero(is_open)
    return open_sites, _local_search.evaluate(a, fixed, open_sites), iterations
