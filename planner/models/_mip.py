"""Exact mixed-integer models solved with HiGHS (through highspy).

:func:`solve_mip` passes a sparse model to HiGHS with a time limit, an optional warm start and
an optional objective cutoff, and returns values, objective, dual bound and status.

:func:`location_mip` builds the median-type location model (p-median, fixed-charge, two-tier
per office) over a *sparse* set of allowed customer-candidate pairs, in one of two equivalent
formulations:

``"assignment"``
    the classical strong formulation: ``x_ij <= y_j``, ``sum_j x_ij = 1``.
``"radius"``
    the compact formulation of Elloumi (2010) / Cornuéjols et al. (1980): for each customer sort
    the *distinct* costs ``D_1 < ... < D_K`` of its allowed pairs; ``z_k = 1`` when no open
    candidate costs ``<= D_k``; cost ``D_1 + sum_k (D_{k+1} - D_k) z_k`` and
    ``z_k + sum_{j: a_ij <= D_k} y_j >= 1``. Ties (equal travel times) share one variable,
    so the model shrinks when times are rounded or customers share locations.

``"auto"`` picks the one with fewer nonzeros. Both have the same LP bound.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from planner.errors import SolverError

logger = logging.getLogger(__name__)

#: Values of the ``formulation`` option of the median-type models: ``"auto"`` (see
#: :mod:`._median`), ``"benders"`` (:mod:`._benders`), ``"lagrangian"`` (Lagrangian bound and
#: reduced MIP, MIP formulation by size), or that path with the ``"assignment"`` or
#: ``"radius"`` MIP formulation.
FORMULATIONS = ("auto", "benders", "lagrangian", "assignment", "radius")


@dataclass(frozen=True)
class MipResult:
    """Outcome of a HiGHS solve."""

    x: np.ndarray | None
    objective: float
    bound: float
    status: str
    optimal: bool
    solve_time_s: float


_HIGHS_LOCK = threading.Lock()
_highs_banner_done = False


def _new_highs() -> Any:
    """A silent ``highspy.Highs`` instance.

    highspy prints a "Running HiGHS ..." banner from C++ on the first construction in a
    process, before any option can be set (ERGO-Code/HiGHS#1702, #2749). The first construction
    therefore runs with file descriptor 1 pointed at /dev/null, so that the CLI's stdout and a
    notebook's output stay clean.
    """
    import highspy

    global _highs_banner_done  # noqa: PLW0603 - one-time, process-wide C++ banner
    with _HIGHS_LOCK:
        if _highs_banner_done:
            h = highspy.Highs()
        else:
            sys.stdout.flush()
            saved = os.dup(1)
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 1)
                h = highspy.Highs()
            finally:
                os.dup2(saved, 1)
                os.close(saved)
                os.close(devnull)
            _highs_banner_done = True
    h.setOptionValue("output_flag", False)
    return h


#: Above this many columns HiGHS's MIP presolve runs in its light mode
#: (``presolve_mode = 2``): the full one does not check the time limit. Single-sourcing
#: capacitated p-median, p = 8, Malta demo customers, capacities binding, 20 s limit, full
#: against light presolve (same answers and gaps each time): x 60 candidates (117,000
#: binaries) 25.1-31.4 s against 20.1-20.2 s; x 100 (195,000) 27.0-28.2 s against 20.3-20.6 s;
#: x 200 (390,000) 52.8 s against 20.8-26.0 s; x 500 (976,500) 168 s against 29.7 s; x 40
#: (78,000, 30 s limit): 30.1 s both (``benchmarks/bench_capacitated.py``).
FULL_PRESOLVE_MAX_COLS = 100_000


def solve_mip(
    c: np.ndarray,
    a_matrix: sp.spmatrix,
    *,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    integer: np.ndarray,
    time_limit: float,
    offset: float = 0.0,
    start: np.ndarray | None = None,
    cutoff: float | None = None,
    mip_rel_gap: float = 1e-7,
    maximize: bool = False,
    should_stop: Callable[[], bool] | None = None,
    progress: Callable[[float, float], None] | None = None,
    full_presolve_max_cols: float | None = None,
) -> MipResult:
    """Solve ``min c x + offset`` s.t. ``row_lower <= A x <= row_upper``, bounds, integrality.

    ``should_stop`` is polled inside HiGHS; when it returns True the solve stops with status
    ``"limit"`` and the best solution so far. ``progress(objective, bound)`` is called from
    inside HiGHS's branch-and-bound at most every half second with its incumbent value and
    dual bound (as HiGHS reports them, offset included).

    Returns :class:`MipResult`; ``x`` is None when HiGHS found no feasible solution. Raises
    :class:`~planner.errors.SolverError` on solver errors (not on infeasibility, which is
    reported in ``status``).
    """
    import highspy

    t0 = time.perf_counter()
    inf = highspy.kHighsInf
    a_csc = sp.csc_matrix(a_matrix)
    num_col = int(c.size)
    num_row = int(a_csc.shape[0])
    h = _new_highs()
    h.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    h.setOptionValue("mip_abs_gap", 1e-9)
    h.setOptionValue("threads", 1)
    light_above = (
        FULL_PRESOLVE_MAX_COLS if full_presolve_max_cols is None else full_presolve_max_cols
    )
    if num_col > min(light_above, FULL_PRESOLVE_MAX_COLS):
        h.setOptionValue("presolve_mode", 2)  # light
    if cutoff is not None and np.isfinite(cutoff):
        h.setOptionValue("objective_bound", float(cutoff))
    lp = highspy.HighsLp()
    lp.num_col_ = num_col
    lp.num_row_ = num_row
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    lp.offset_ = float(offset)
    lp.col_cost_ = np.asarray(c, dtype=np.float64)
    lp.col_lower_ = np.asarray(col_lower, dtype=np.float64)
    lp.col_upper_ = np.asarray(col_upper, dtype=np.float64)
    lp.row_lower_ = np.where(np.isfinite(row_lower), row_lower, -inf).astype(np.float64)
    lp.row_upper_ = np.where(np.isfinite(row_upper), row_upper, inf).astype(np.float64)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_ = num_col
    lp.a_matrix_.num_row_ = num_row
    lp.a_matrix_.start_ = a_csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a_csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = a_csc.data.astype(np.float64)
    kinds = [
        highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
        for flag in integer
    ]
    lp.integrality_ = kinds
    status = h.passModel(lp)
    if status == highspy.HighsStatus.kError:
        raise SolverError("HiGHS rejected the model (passModel returned kError)")
    if start is not None:
        sol = highspy.HighsSolution()
        sol.col_value = np.asarray(start, dtype=np.float64).tolist()
        sol.value_valid = True
        h.setSolution(sol)
    if should_stop is not None:

        def interrupt(event: Any) -> None:
            if should_stop():
                event.interrupt()

        h.cbMipInterrupt.subscribe(interrupt)
        h.cbSimplexInterrupt.subscribe(interrupt)
    if progress is not None:
        last = [time.perf_counter()]

        def report(event: Any) -> None:
            now = time.perf_counter()
            if now - last[0] >= 0.5:
                last[0] = now
                out = event.data_out
                progress(float(out.mip_primal_bound), float(out.mip_dual_bound))

        h.cbMipInterrupt.subscribe(report)
    # the time spent building the model counts (HiGHS's clock may not have started yet)
    h.setOptionValue(
        "time_limit",
        float(h.getRunTime()) + max(float(time_limit) - (time.perf_counter() - t0), 0.01),
    )
    run_status = h.run()
    model_status = h.getModelStatus()
    info = h.getInfo()
    has_solution = info.primal_solution_status == 2  # kSolutionStatusFeasible
    x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_solution else None
    objective = float(info.objective_function_value) if has_solution else float("inf")
    if x is not None and not _objective_matches(c, x, offset, objective):
        # HiGHS 1.16 can mis-value a user solution after MIP presolve and then report it, at a
        # wrong objective, as proven optimal (seen on an OR-Library-kind p-median: reported
        # 4,292 for a point worth 4,298 while 4,296 exists). Neither its objective nor its
        # bound can be trusted then: solve again without the start, then without presolve.
        for retry in ("without the start", "without presolve"):
            logger.warning(
                "HiGHS reported objective %.10g for a solution worth %.10g; solving again %s",
                objective,
                float(c @ x) + offset,
                retry,
            )
            h.clearSolver()
            h.setOptionValue(
                "time_limit",
                float(h.getRunTime()) + max(time_limit - (time.perf_counter() - t0), 0.01),
            )
            if retry == "without the start":
                h.passModel(lp)
            else:
                h.setOptionValue("presolve", "off")
            run_status = h.run()
            model_status = h.getModelStatus()
            info = h.getInfo()
            has_solution = info.primal_solution_status == 2
            x = np.asarray(h.getSolution().col_value, dtype=np.float64) if has_solution else None
            objective = float(info.objective_function_value) if has_solution else float("inf")
            if x is None or _objective_matches(c, x, offset, objective):
                break
        else:
            raise SolverError(
                f"HiGHS reported objective {objective:.10g} for a solution worth "
                f"{float(c @ x) + offset:.10g}, with and without presolve"
            )
    status_text = h.modelStatusToString(model_status)
    if run_status == highspy.HighsStatus.kError and model_status not in (
        highspy.HighsModelStatus.kTimeLimit,
        highspy.HighsModelStatus.kInfeasible,
    ):
        raise SolverError(f"HiGHS failed with model status {status_text!r}")
    bound = float(info.mip_dual_bound) if int(integer.sum()) > 0 else objective
    ms = highspy.HighsModelStatus
    if model_status == ms.kOptimal:
        status_name = "optimal"
    elif model_status == ms.kInfeasible:
        status_name = "infeasible"
    elif model_status == ms.kTimeLimit:
        status_name = "time_limit"
    elif model_status == ms.kObjectiveBound:
        status_name = "cutoff"
    elif model_status in (ms.kSolutionLimit, ms.kInterrupt, ms.kIterationLimit):
        status_name = "limit"
    else:
        raise SolverError(f"HiGHS stopped with model status {status_text!r}")
    return MipResult(
        x=x,
        objective=objective,
        bound=bound,
        status=status_name,
        optimal=status_name == "optimal",
        solve_time_s=time.perf_counter() - t0,
    )


def _objective_matches(c: np.ndarray, x: np.ndarray, offset: float, objective: float) -> bool:
    """Whether HiGHS's reported objective is the value of its solution ``x`` (to 1e-7 relative,
    far below the optimality gap)."""
    value = float(np.asarray(c, dtype=np.float64) @ x) + offset
    scale = max(1.0, abs(value), float(np.abs(c) @ np.abs(x)))
    return abs(value - objective) <= 1e-7 * scale


@dataclass(frozen=True)
class PairSet:
    """Allowed customer-candidate pairs in CSR layout (rows sorted by cost within a row)."""

    indptr: np.ndarray  # (n + 1,)
    cols: np.ndarray  # (nnz,)
    costs: np.ndarray  # (nnz,)
    n: int
    m: int

    @classmethod
    def from_mask(cls, a: np.ndarray, mask: np.ndarray) -> PairSet:
        """Pairs where ``mask`` is True (``a`` finite there), sorted by cost within each row."""
        rows, cols = np.nonzero(mask)
        costs = a[rows, cols]
        order = np.lexsort((cols, costs, rows))
        rows, cols, costs = rows[order], cols[order], costs[order]
        indptr = np.zeros(a.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=a.shape[0]), out=indptr[1:])
        return cls(indptr, cols.astype(np.int64), costs, a.shape[0], a.shape[1])

    @property
    def nnz(self) -> int:
        return int(self.cols.size)

    def row_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.n), np.diff(self.indptr))


def _radius_levels(pairs: PairSet) -> tuple[np.ndarray, np.ndarray, int]:
    """Per pair, the index of its distinct-cost level within its row; and the level count."""
    rows = pairs.row_ids()
    new_level = np.ones(pairs.nnz, dtype=bool)
    same_row = rows[1:] == rows[:-1]
    new_level[1:] = ~same_row | (pairs.costs[1:] != pairs.costs[:-1])
    level_global = np.cumsum(new_level) - 1  # global level id
    return level_global, rows, int(new_level.sum())


def choose_formulation(pairs: PairSet, formulation: str) -> str:
    """Pick ``"assignment"`` or ``"radius"`` (for ``"auto"``: the one with fewer nonzeros)."""
    if formulation != "auto":
        return formulation
    level, rows, _ = _radius_levels(pairs)
    # radius nonzeros: for each level k of row i, the pairs with cost <= D_k
    pos_in_row = np.arange(pairs.nnz) - pairs.indptr[rows]
    last_of_level = np.ones(pairs.nnz, dtype=bool)
    last_of_level[:-1] = level[1:] != level[:-1]
    nnz_radius = int((pos_in_row[last_of_level] + 2).sum())
    nnz_assign = 3 * pairs.nnz
    return "radius" if nnz_radius <= nnz_assign else "assignment"


def location_mip(
    pairs: PairSet,
    fixed: np.ndarray,
    *,
    p: int | None,
    fixed_open: np.ndarray,
    fixed_closed: np.ndarray,
    time_limit: float,
    start_open: np.ndarray | None = None,
    cutoff: float | None = None,
    mip_rel_gap: float = 1e-7,
    formulation: str = "auto",
    should_stop: Callable[[], bool] | None = None,
) -> tuple[MipResult, np.ndarray | None, str]:
    """Solve the median-type location MIP over the given pairs.

    Every row must have at least one pair. Returns (result, open columns or None, formulation).
    """
    form = choose_formulation(pairs, formulation)
    n, m = pairs.n, pairs.m
    rows = pairs.row_ids()
    y_lower = np.zeros(m)
    y_upper = np.ones(m)
    y_lower[fixed_open] = 1.0
    y_upper[fixed_closed] = 0.0
    blocks_rows: list[np.ndarray] = []
    blocks_cols: list[np.ndarray] = []
    blocks_vals: list[np.ndarray] = []
    row_lower: list[np.ndarray] = []
    row_upper: list[np.ndarray] = []
    n_rows = 0
    offset = 0.0
    if form == "assignment":
        k = pairs.nnz
        # columns: y (m), x (k); rows: assignment (n), linking (k)
        c = np.concatenate([fixed, pairs.costs])
        col_lower = np.concatenate([y_lower, np.zeros(k)])
        col_upper = np.concatenate([y_upper, np.ones(k)])
        xcol = m + np.arange(k)
        blocks_rows += [rows, n + np.arange(k), n + np.arange(k)]
        blocks_cols += [xcol, xcol, pairs.cols]
        blocks_vals += [np.ones(k), np.ones(k), -np.ones(k)]
        row_lower += [np.ones(n), np.full(k, -np.inf)]
        row_upper += [np.ones(n), np.zeros(k)]
        n_rows = n + k
    else:
        level, _, n_levels = _radius_levels(pairs)
        # level costs and the next level's cost, per row
        first_of_level = np.ones(pairs.nnz, dtype=bool)
        first_of_level[1:] = level[1:] != level[:-1]
        level_cost = pairs.costs[first_of_level]
        level_row = rows[first_of_level]
        is_last_level = np.ones(n_levels, dtype=bool)
        is_last_level[:-1] = level_row[1:] != level_row[:-1]
        # z variables for non-last levels
        z_levels = np.flatnonzero(~is_last_level)
        z_index = np.full(n_levels, -1, dtype=np.int64)
        z_index[z_levels] = np.arange(z_levels.size)
        nz = z_levels.size
        z_cost = level_cost[z_levels + 1] - level_cost[z_levels]
        first_level_of_row = np.ones(n_levels, dtype=bool)
        first_level_of_row[1:] = level_row[1:] != level_row[:-1]
        offset = float(level_cost[first_level_of_row].sum())
        c = np.concatenate([fixed, z_cost])
        col_lower = np.concatenate([y_lower, np.zeros(nz)])
        col_upper = np.concatenate([y_upper, np.ones(nz)])
        # constraint for level L of row i: z_L + sum_{pairs of row i with level <= L} y_j >= 1
        # every level of the row gets one row; pair (level l) appears in rows of levels >= l.
        level_start_of_row = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(level_row, minlength=n), out=level_start_of_row[1:])
        last_level_of_row = level_start_of_row[1:] - 1
        pair_row_last = last_level_of_row[rows]
        reps = pair_row_last - level + 1
        con = np.repeat(level, reps) + (
            np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps, reps)
        )
        blocks_rows += [con, z_levels]
        blocks_cols += [np.repeat(pairs.cols, reps), m + np.arange(nz)]
        blocks_vals += [np.ones(con.size), np.ones(nz)]
        row_lower += [np.ones(n_levels)]
        row_upper += [np.full(n_levels, np.inf)]
        n_rows = n_levels
    if p is not None:
        blocks_rows.append(np.full(m, n_rows))
        blocks_cols.append(np.arange(m))
        blocks_vals.append(np.ones(m))
        row_lower.append(np.array([float(p)]))
        row_upper.append(np.array([float(p)]))
        n_rows += 1
    num_col = c.size
    a_matrix = sp.csc_matrix(
        (
            np.concatenate(blocks_vals),
            (np.concatenate(blocks_rows), np.concatenate(blocks_cols)),
        ),
        shape=(n_rows, num_col),
    )
    integer = np.zeros(num_col, dtype=bool)
    integer[:m] = True
    start = None
    if start_open is not None:
        start = _start_vector(pairs, form, start_open, m, num_col)
    logger.debug(
        "location MIP (%s): %d columns, %d rows, %d nonzeros",
        form,
        num_col,
        n_rows,
        a_matrix.nnz,
    )
    result = solve_mip(
        c,
        a_matrix,
        row_lower=np.concatenate(row_lower),
        row_upper=np.concatenate(row_upper),
        col_lower=col_lower,
        col_upper=col_upper,
        integer=integer,
        time_limit=time_limit,
        offset=offset,
        start=start,
        cutoff=cutoff,
        mip_rel_gap=mip_rel_gap,
        should_stop=should_stop,
    )
    open_cols = None if result.x is None else np.flatnonzero(result.x[:m] > 0.5)
    return result, open_cols, form


def _start_vector(
    pairs: PairSet, form: str, start_open: np.ndarray, m: int, num_col: int
) -> np.ndarray | None:
    """Column values of the solution that opens ``start_open`` (None if a row has no pair)."""
    y = np.zeros(m)
    y[start_open] = 1.0
    rows = pairs.row_ids()
    usable = y[pairs.cols] > 0.5
    if not np.all(np.bincount(rows[usable], minlength=pairs.n) > 0):
        return None
    # first usable pair of every row (pairs are sorted by cost within rows)
    idx = np.flatnonzero(usable)
    first = idx[np.r_[True, rows[idx][1:] != rows[idx][:-1]]]
    x = np.zeros(num_col)
    x[:m] = y
    if form == "assignment":
        x[m + first] = 1.0
    else:
        level, _, n_levels = _radius_levels(pairs)
        chosen_level = level[first]
        first_of_level = np.ones(pairs.nnz, dtype=bool)
        first_of_level[1:] = level[1:] != level[:-1]
        level_row = rows[first_of_level]
        is_last_level = np.ones(n_levels, dtype=bool)
        is_last_level[:-1] = level_row[1:] != level_row[:-1]
        z_levels = np.flatnonzero(~is_last_level)
        row_start_level = np.r_[0, np.cumsum(np.bincount(level_row, minlength=pairs.n))[:-1]]
        # z_L = 1 for levels of the row below the chosen level
        zval = np.zeros(n_levels)
        below = np.arange(n_levels) < chosen_level[level_row]
        zval[below & (np.arange(n_levels) >= row_start_level[level_row])] = 1.0
        x[m:] = zval[z_levels]
    return x
