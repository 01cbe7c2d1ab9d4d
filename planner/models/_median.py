"""One solve path for the median-type models (p-median, fixed-charge, two-tier per office).

Problem: choose open candidates to minimise ``sum_j f_j y_j + sum_i min_{j open} a_ij`` where
``a`` is a weighted cost matrix (inf = not allowed), optionally with exactly ``p`` open.

Strategy (the usual one in the p-median literature):

1. greedy construction + fast interchange (:mod:`._local_search`) -> first answer, upper bound;
2. subgradient Lagrangian relaxation (:mod:`._lagrangian`) -> lower bound; relaxation solutions
   seed another local search; above :data:`LARGE_PAIRS` the bound is then raised to the LP
   bound (:mod:`._lp_bound`), where the subgradient stalls below it, and the LP's points at
   the root and the branching nodes are rounded to solutions
   (:func:`._local_search.lp_rounding`);
3. if the gap is above the target: reduced-cost tests drop every pair and candidate that no
   solution better than the incumbent can use, and HiGHS solves the reduced exact model
   (:mod:`._mip`) with the incumbent as warm start, within the remaining time.

Small instances skip step 2 and go to the exact model directly.

Instances with more than :data:`BENDERS_MIN_PAIRS` finite pairs, at least
:data:`BENDERS_MIN_CANDIDATES` allowed candidates and fewer than :data:`BENDERS_MAX_ROWS`
customers take, with ``formulation="auto"``, the Benders path instead of step 3 (:mod:`._benders`:
radius-formulation cuts on a master with ``m + n`` columns, LP cut loop, reduced-cost fixing,
branch-and-cut over the master LP); up to :data:`LAGRANGIAN_FIRST_PAIRS` pairs a short
Lagrangian phase runs first. The master grows with the candidates, not with candidates x
customers, and it closes the small-``p``, many-candidate instances the Lagrangian bound leaves
open. The rule and its measurements are in ``benchmarks/README.md`` (``bench_exact.py``).
``formulation="lagrangian"`` keeps the old path (``"assignment"`` and ``"radius"`` pick its MIP
formulation); ``"benders"`` forces the new one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.errors import InfeasibleError, SolverError
from planner.models import _benders, _lagrangian, _local_search, _lp_bound, _mip
from planner.models._base import (
    OPTIMALITY_GAP,
    ProgressReporter,
    StopCallback,
    highs_version,
    planner_version,
    relative_gap,
)

logger = logging.getLogger(__name__)

#: Instances with at most this many finite pairs go straight to the exact MIP.
SMALL_PAIRS = 5_000

#: With ``formulation="auto"``, instances with more finite pairs than this take the Benders
#: path (:mod:`._benders`) instead of Lagrangian bound + reduced MIP.
BENDERS_MIN_PAIRS = 5_000

#: ... and at least this many allowed candidates. Was 100 (2,000 x 40 and 1,000 x 50 were
#: faster on the Lagrangian path), but the app's default instance, the Malta demo (1,952
#: customers) x 60 candidates, took 3 s (p = 6, reduced MIP) where the Benders path, after
#: the same short Lagrangian phase, takes 1.5 s; instances the Lagrangian bound closes are
#: still closed by that phase (measurements in benchmarks/README.md).
BENDERS_MIN_CANDIDATES = 20

#: Benders instances with at most this many finite pairs first run a short Lagrangian phase
#: (it often closes the gap on its own there).
LAGRANGIAN_FIRST_PAIRS = 300_000

#: ... of LAGRANGIAN_FIRST_WORK pair-iterations (subgradient iterations x finite pairs, at least
#: LAGRANGIAN_FIRST_MIN_ITERATIONS iterations): about the 0.5 s the phase used to be given on
#: a quiet machine (187,000 pairs: 134 iterations, 0.4 s; 240,000 pairs: 104, 0.7 s). A budget
#: of work, not of seconds, so that whether the phase closes the gap (and so which path
#: proves the answer) does not depend on how busy the machine is: the app's solve thread,
#: sharing the process with the Streamlit server, ran a fifth of the iterations of
#: ``planner run`` in 0.5 s, took the Benders path, and answered one question with a gap where
#: the command line proved it optimal (benchmarks/README.md, "One proof from every door").
LAGRANGIAN_FIRST_WORK = 25_000_000
LAGRANGIAN_FIRST_MIN_ITERATIONS = 50

#: ... extended once by the same budget when its gap is already below this.
LAGRANGIAN_FIRST_EXTEND_GAP = 1e-4

#: ... and fewer customers than this: with many customers the master (one theta per customer)
#: is slow to solve and the Lagrangian path did better (10,000 x 1,000, p = 20 at 60 s: gap
#: 1.1 % against 5.5 % on a loaded machine).
BENDERS_MAX_ROWS = 5_000

#: Lagrangian-path instances with more finite pairs than this continue the subgradient step
#: from round to round (instead of restarting it at 1 each round) and run the local searches
#: of the rounds on the core's sorted rows (:func:`._lagrangian.core_interchange`), about 10x
#: cheaper per swap there. Below it the rounds are as measured for the Malta, OR-Library and
#: demo rows of benchmarks/README.md (10,000 x 1,000: see "10,000 x 1,000, p = 20").
LARGE_PAIRS = 2_000_000

#: ... and, once the subgradient has converged or this share of the time limit has passed,
#: raise the bound to the LP bound (:func:`._lp_bound.raise_bound`; the subgradient stalls
#: below it there; 10,000 x 1,000, p = 20: the LP bound in 11-15 s from any multipliers),
#: then branch on the LP until the deadline (measurements in benchmarks/README.md).
LP_BOUND_AFTER = 0.2

#: The exact MIP is only attempted when the reduced-cost tests leave at most this many pairs;
#: beyond, HiGHS would not finish in interactive time and the answer keeps its proven gap.
MIP_MAX_PAIRS = 600_000


@dataclass(frozen=True)
class MedianResult:
    """Raw outcome of :func:`solve_median`, in the caller's column indices."""

    open: np.ndarray
    objective: float
    lower_bound: float
    status: str
    optimal: bool
    solver: str
    extras: dict[str, Any] = field(default_factory=dict)


def solve_median(
    a: np.ndarray,
    fixed: np.ndarray,
    *,
    p: int | None,
    required: np.ndarray,
    excluded: np.ndarray,
    time_limit: float,
    gap_target: float = 1e-9,
    formulation: str = "auto",
    exact: bool = True,
    report: ProgressReporter | None = None,
    should_stop: StopCallback | None = None,
    cutoff: float = np.inf,
) -> MedianResult:
    """Solve the median-type problem; see the module docstring.

    Parameters
    ----------
    a
        Weighted cost matrix (n x m); inf where a customer may not use a candidate. Every row
        must have a finite entry among the non-excluded columns.
    fixed
        Fixed cost of opening each candidate (zeros for p-median).
    p
        Exact number of open candidates, or None to let fixed costs decide.
    required, excluded
        Sorted column indices that must open / never open.
    time_limit
        Seconds for the whole solve.
    gap_target
        Stop when the proven relative gap is at most this.
    formulation
        Exact path: ``"auto"``, ``"benders"``, ``"lagrangian"`` (Lagrangian bound + reduced
        MIP, formulation chosen automatically), ``"assignment"`` or ``"radius"`` (the same with
        that MIP formulation).
    exact
        If False, stop after the heuristic and the Lagrangian bound (no MIP).
    report
        Progress reporter (objective and bound in the units of ``a`` plus its offset).
    should_stop
        Polled between the steps and inside HiGHS; True stops with the best solution so far.
    cutoff
        Only solutions below this value matter: the solve stops with status ``"cutoff"`` once
        its lower bound (Lagrangian or Benders) reaches it.
    """
    t0 = time.perf_counter()
    report = report or ProgressReporter(None, t0)
    stop = should_stop or (lambda: False)
    deadline = t0 + time_limit
    _, m_all = a.shape
    cols = np.setdiff1d(np.arange(m_all), excluded)
    sub = a[:, cols] if excluded.size else a
    fix = fixed[cols] if excluded.size else fixed
    req = np.searchsorted(cols, required)
    m = cols.size
    allowed = np.ones(m, dtype=bool)
    extras: dict[str, Any] = {}
    used: list[str] = []
    if p is not None and p >= m:
        open_local = np.arange(m)
        objective = _local_search.evaluate(sub, fix, open_local)
        return _finish(
            a,
            cols=cols,
            open_local=open_local,
            objective=objective,
            lower_bound=objective,
            status="optimal",
            used=["enumeration"],
            extras={},
        )

    finite = np.isfinite(sub)
    n_pairs = int(finite.sum())
    extras["pairs"] = n_pairs
    pen, penalty = _local_search.penalize_inf(sub)

    # 1. heuristic
    open_local, ub = _local_search.local_search(
        pen, fix, p=p, required=req, allowed=allowed, deadline=deadline
    )
    used.append("greedy + fast interchange")
    extras["first_objective"] = ub
    extras["first_solution_time_s"] = time.perf_counter() - t0
    lb = -np.inf
    status = "heuristic"
    report("First solution (greedy + fast interchange)", objective=ub, bound=lb)

    small = n_pairs <= SMALL_PAIRS
    use_benders = exact and (
        formulation == "benders"
        or (
            formulation == "auto"
            and n_pairs > BENDERS_MIN_PAIRS
            and m >= BENDERS_MIN_CANDIDATES
            and sub.shape[0] < BENDERS_MAX_ROWS
        )
    )
    # a short Lagrangian phase first on moderate instances: it often proves the heuristic's
    # answer optimal faster than the Benders master is set up
    lagrangian_first = use_benders and formulation == "auto" and n_pairs <= LAGRANGIAN_FIRST_PAIRS

    def run_benders(lower_bound: float) -> MedianResult:
        bres = _benders.solve_benders(
            sub,
            fix,
            p=p,
            required=req,
            start_open=open_local,
            deadline=deadline,
            gap_target=gap_target,
            report=report,
            should_stop=stop,
            lower_bound=lower_bound,
            cutoff=cutoff,
        )
        used.append(f"{highs_version()} (Benders, radius cuts)")
        extras.update(bres.extras)
        return _finish_checked(
            a,
            sub=sub,
            fix=fix,
            pen=pen,
            penalty=penalty,
            cols=cols,
            open_local=bres.open,
            lb=bres.lower_bound,
            status=bres.status,
            used=used,
            extras=extras,
            time_limit=time_limit,
        )

    if use_benders and not lagrangian_first and not stop() and time.perf_counter() < deadline:
        return run_benders(-np.inf)
    if formulation in ("benders", "lagrangian"):
        formulation = "auto"
    # 2. Lagrangian bound, in rounds; after each round a local search starts from the
    #    relaxation's open set (Lagrangian-guided restarts find better local optima)
    lag = None
    if not small and time.perf_counter() < deadline:
        lam = pen[:, open_local].min(axis=1)
        core = _lagrangian.build_core(pen, lam, allowed)
        # leave time for the exact model when it may be small enough to run after the tests
        remaining = deadline - time.perf_counter()
        mip_possible = exact and n_pairs <= 5 * MIP_MAX_PAIRS
        lag_deadline = time.perf_counter() + (0.6 * remaining if mip_possible else remaining)
        # the Lagrangian-first phase has a budget of iterations (see LAGRANGIAN_FIRST_WORK)
        first_budget = max(
            LAGRANGIAN_FIRST_MIN_ITERATIONS, LAGRANGIAN_FIRST_WORK // max(n_pairs, 1)
        )
        budget_left = first_budget if lagrangian_first else None
        extended = False
        round_s = max(0.5, 0.05 * time_limit)
        iterations = 0
        rounds = 0
        large = n_pairs > LARGE_PAIRS and p is not None
        step = 1.0
        lp_done = not large
        tree_lb = -np.inf
        while not stop():
            rounds += 1
            result = _lagrangian.subgradient(
                pen,
                fix,
                p=p,
                required=req,
                allowed=allowed,
                upper_bound=ub,
                start=lam,
                # the first phase ends by its budget, not by the clock (but by the time limit)
                deadline=lag_deadline
                if budget_left is not None
                else min(time.perf_counter() + round_s, lag_deadline),
                max_iterations=20_000 if budget_left is None else max(budget_left, 1),
                target=min(ub * (1.0 - gap_target) if ub > 0 else np.inf, cutoff)
                if ub > 0 or np.isfinite(cutoff)
                else None,
                max_restarts=0,
                core=core,
                step=step,
            )
            iterations += result.iterations
            if budget_left is not None:
                budget_left -= result.iterations
            lam = result.multipliers
            if large:
                step = result.step
            if lag is None or result.bound > lag.bound:
                lag = result
            starts = [np.flatnonzero(result.chosen)]
            if result.last_chosen is not None and not np.array_equal(
                result.last_chosen, result.chosen
            ):
                starts.append(np.flatnonzero(result.last_chosen))
            if result.best_primal is not None:
                starts.append(result.best_primal)
            for start in starts:
                if time.perf_counter() >= deadline or start.size == 0:
                    break
                if p is not None and start.size != p:
                    continue
                if large:
                    cand, val, _ = _lagrangian.core_interchange(
                        pen, fix, start, core, required=req, allowed=allowed, deadline=deadline
                    )
                else:
                    cand, val, _ = _local_search.interchange(
                        pen, fix, start, p=p, required=req, allowed=allowed, deadline=deadline
                    )
                if val < ub - 1e-9 * max(1.0, abs(ub)):
                    open_local, ub = cand, val
            if (
                p is not None
                and not lp_done
                and (result.converged or time.perf_counter() - t0 >= LP_BOUND_AFTER * time_limit)
            ):
                lp_done = True
                extras.update(lp_rounding_calls=0, lp_rounding_improved=0)

                def lp_incumbent(y: np.ndarray) -> float:
                    # the LP's points round to good p-medians: its support is ~1/6 of the
                    # candidates (benchmarks/README.md, "10,000 x 1,000, p = 20")
                    nonlocal open_local, ub
                    assert p is not None
                    cand, val = _local_search.lp_rounding(
                        pen, fix, y, p=p, required=req, allowed=allowed, deadline=deadline
                    )
                    extras["lp_rounding_calls"] += 1
                    if val < ub - 1e-9 * max(1.0, abs(ub)):
                        open_local, ub = cand, val
                        extras["lp_rounding_improved"] += 1
                        report("LP rounding", objective=ub, bound=-np.inf)
                    return ub

                lag, lp = _lp_bound.raise_bound(
                    pen,
                    fix,
                    lag,
                    p=p,
                    required=req,
                    allowed=allowed,
                    open_sites=open_local,
                    deadline=deadline,
                    should_stop=stop,
                    on_round=lambda b: report("LP bound", objective=ub, bound=b),  # noqa: B023
                    cutoff=ub,
                    on_point=lp_incumbent,
                )
                tree_lb = lp.bound
                extras.update(
                    lp_bound=lp.lp_value,
                    lp_bound_rounds=lp.rounds,
                    lp_bound_status=lp.status,
                    lp_tree_bound=lp.bound,
                    lp_tree_nodes=lp.nodes,
                )
            report(f"Lagrangian bound, round {rounds}", objective=ub, bound=lag.bound)
            if (
                budget_left is not None
                and not extended
                and relative_gap(ub, lag.bound) <= LAGRANGIAN_FIRST_EXTEND_GAP
            ):
                # nearly closed: a few more rounds usually finish the proof (Malta demo x 60
                # candidates, p = 3: 1.1e-7 after the first round, closed in the second)
                extended = True
                budget_left = max(budget_left, 0) + first_budget
            if relative_gap(ub, lag.bound) <= gap_target or time.perf_counter() >= lag_deadline:
                break
            if budget_left is not None and budget_left <= 0:
                break
            if lag.bound >= cutoff:
                break
            if result.converged and rounds >= 3:
                break
        used.append("Lagrangian")
        if lag is None:
            lag = _lagrangian.LagrangianResult(
                bound=-np.inf,
                multipliers=lam,
                rho=fix.copy(),
                chosen=np.zeros(m, dtype=bool),
                iterations=0,
                best_primal=None,
            )
        extras["lagrangian_bound"] = lag.bound
        extras["lagrangian_iterations"] = iterations
        extras["lagrangian_rounds"] = rounds
        lb = max(lb, lag.bound, tree_lb)

    gap = relative_gap(ub, lb)
    if gap <= gap_target:
        status = "optimal" if gap <= OPTIMALITY_GAP else "gap_limit"
    elif lb >= cutoff:
        status = "cutoff"  # no solution below the caller's cutoff: nothing more to prove
    elif use_benders and not stop() and time.perf_counter() < deadline:
        return run_benders(lb)
    elif exact and time.perf_counter() < deadline and not stop():
        # 3. exact model on the pairs that survive the reduced-cost tests
        eps = 1e-9 * max(1.0, abs(ub))
        if lag is not None:
            keep_pairs, keep_cols = _lagrangian.reduced_pairs(
                pen, lag, p=p, required=req, allowed=allowed, upper_bound=ub, eps=eps
            )
            keep_pairs &= finite
        else:
            keep_pairs, keep_cols = finite.copy(), allowed.copy()
        extras["mip_pairs"] = int(keep_pairs.sum())
        if extras["mip_pairs"] > MIP_MAX_PAIRS:
            status = "mip_too_large"
            extras["mip_status"] = "skipped: too many pairs left after reduced-cost tests"
        elif not keep_pairs.any(axis=1).all():
            # some customer has no pair compatible with a better solution: incumbent optimal
            lb = ub
            status = "optimal"
        else:
            pairs = _mip.PairSet.from_mask(sub, keep_pairs)
            closed = np.flatnonzero(~keep_cols)
            mip, mip_open, form = _mip.location_mip(
                pairs,
                fix,
                p=p,
                fixed_open=req,
                fixed_closed=closed,
                time_limit=max(deadline - time.perf_counter(), 0.05),
                start_open=open_local,
                mip_rel_gap=gap_target,
                formulation=formulation,
                should_stop=stop,
            )
            used.append(f"{highs_version()} ({form})")
            extras["mip_formulation"] = form
            extras["mip_status"] = mip.status
            if mip_open is not None:
                val = _local_search.evaluate(pen, fix, mip_open)
                if val < ub:
                    open_local, ub = mip_open, val
            if mip.status in ("optimal", "time_limit", "limit"):
                lb = max(lb, min(mip.bound, ub))
            gap = relative_gap(ub, lb)
            if gap <= OPTIMALITY_GAP:
                status = "optimal"
            elif gap <= gap_target:
                status = "gap_limit"
            else:
                # never pass on HiGHS's "optimal" for its (reduced) model when our own
                # evaluation of the answer and the bound leave a gap
                status = "unproven" if mip.status == "optimal" else mip.status
    else:
        status = "stopped" if stop() else ("time_limit" if exact else "bound_only")
    report("Exact model finished", objective=ub, bound=lb)
    return _finish_checked(
        a,
        sub=sub,
        fix=fix,
        pen=pen,
        penalty=penalty,
        cols=cols,
        open_local=open_local,
        lb=lb,
        status=status,
        used=used,
        extras=extras,
        time_limit=time_limit,
    )


def _finish_checked(
    a: np.ndarray,
    *,
    sub: np.ndarray,
    fix: np.ndarray,
    pen: np.ndarray,
    penalty: float,
    cols: np.ndarray,
    open_local: np.ndarray,
    lb: float,
    status: str,
    used: list[str],
    extras: dict[str, Any],
    time_limit: float,
) -> MedianResult:
    """Check the answer reaches every customer, then :func:`_finish`."""
    n = sub.shape[0]
    if np.isfinite(penalty) and not np.isfinite(sub[np.arange(n), _argmin(pen, open_local)]).all():
        if status == "optimal":
            raise InfeasibleError(
                "no choice of sites reaches every customer: the candidates that reach them "
                "need more sites than allowed"
            )
        raise SolverError(
            f"no choice of sites reaching every customer was found within the time limit of "
            f"{time_limit:g} s (status {status})"
        )
    objective = _local_search.evaluate(sub, fix, open_local)
    return _finish(
        a,
        cols=cols,
        open_local=open_local,
        objective=objective,
        lower_bound=min(lb, objective),
        status=status,
        used=used,
        extras=extras,
    )


def _argmin(a: np.ndarray, open_local: np.ndarray) -> np.ndarray:
    return open_local[np.argmin(a[:, open_local], axis=1)]


def _finish(
    a: np.ndarray,
    *,
    cols: np.ndarray,
    open_local: np.ndarray,
    objective: float,
    lower_bound: float,
    status: str,
    used: list[str],
    extras: dict[str, Any],
) -> MedianResult:
    gap = relative_gap(objective, lower_bound)
    optimal = gap <= OPTIMALITY_GAP
    if optimal:
        status = "optimal"
    elif status == "optimal":
        logger.warning("median solve: 'optimal' claimed with a proven gap of %.3g", gap)
        status = "unproven"
    solver = " + ".join(used) + f" [{planner_version()}]"
    return MedianResult(
        open=np.sort(cols[open_local]),
        objective=float(objective),
        lower_bound=float(lower_bound),
        status=status,
        optimal=optimal,
        solver=solver,
        extras=extras,
    )
