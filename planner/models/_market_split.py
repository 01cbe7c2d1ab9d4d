"""The market model's branch-and-cut tree split among processes
(``PLANNER_SOLVER_PROCESSES`` > 1; :func:`planner.models._market.solve_capture` decides when).

Once enough nodes are open, the parent hands the master LP's rows and the open nodes to
spawned processes (:class:`_TreeSpec`, :class:`_TreeWorkers`); each searches its share
depth-first with its own copy of the LP (:class:`planner.models._market._PartSearcher`, passed
in so that this module needs nothing from the model's), and a process out of work
takes half of another's open nodes (:class:`_Steal`). The split tree's bound covers every
process's nodes and the nodes on their way between them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from planner.errors import SolverError

#: An open node of the tree: (bound, lower bounds, upper bounds) of ``y``.
Node = tuple[float, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _TreeSpec:
    """What another process needs to search part of the tree: the scaled problem, the cut
    groups and the master LP's rows (every cut so far), as plain arrays. ``prob`` is the
    scaled :class:`planner.models._market.CaptureProblem` (typed ``Any`` here, so that this
    module imports nothing from the model's)."""

    prob: Any
    p: int | None
    p_max: int | None
    required: np.ndarray
    y_lower: np.ndarray
    group: np.ndarray
    phi_lower: np.ndarray
    rows: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    n_fixed_rows: int
    gap_target: float
    wall_deadline: float

    @staticmethod
    def of(
        master: Any,
        *,
        prob: Any,
        cuts: Any,
        p: int | None,
        p_max: int | None,
        required: np.ndarray,
        gap_target: float,
        deadline: float,
    ) -> _TreeSpec:
        import highspy

        lp = master.h.getLp()
        mat = lp.a_matrix_
        shape = (int(lp.num_row_), int(lp.num_col_))
        parts = (np.asarray(mat.value_), np.asarray(mat.index_), np.asarray(mat.start_))
        if mat.format_ == highspy.MatrixFormat.kRowwise:
            a = sp.csr_matrix(parts, shape=shape)
        else:
            a = sp.csc_matrix(parts, shape=shape).tocsr()
        first = master.FIRST_CUT_ROW
        m = master.m
        return _TreeSpec(
            prob=prob,
            p=p,
            p_max=p_max,
            required=np.asarray(required, dtype=np.intp),
            y_lower=np.asarray(lp.col_lower_)[:m].copy(),
            group=cuts.group,
            phi_lower=np.asarray(lp.col_lower_)[m:].copy(),
            rows=a[first:],
            row_lower=np.asarray(lp.row_lower_)[first:].copy(),
            row_upper=np.asarray(lp.row_upper_)[first:].copy(),
            n_fixed_rows=master.n_fixed_rows,
            gap_target=gap_target,
            wall_deadline=time.time() + (deadline - time.perf_counter()),
        )


@dataclass(frozen=True)
class _PartResult:
    """A share's outcome: the bound covers what was searched; ``left`` is still open."""

    status: str
    bound: float
    nodes: int
    best_open: np.ndarray


def _search_shares(
    run: Callable[[list[Node], list[Node], Callable[[str, float], None]], tuple[str, float, int]],
    steal: _Steal,
    nodes: list[Node],
    deadline: float,
    stop: Callable[[], bool],
    *,
    me: int,
) -> tuple[str, float, int]:
    """One process's part of a split tree: search ``nodes`` (``run(start, left, publish)``;
    the tree calls ``publish`` with its bound as it goes), then nodes given away by the
    others, until every process is out of work (status "done"), the deadline or ``stop``.
    This process's bound in ``steal`` (place ``me``) covers what it searched and holds.
    Returns (status, bound over what was searched or left open, nodes)."""
    bound, total, status = np.inf, 0, "done"

    def publish(message: str, lb: float) -> None:
        steal.bounds[me] = min(bound, lb)

    while True:
        if nodes:
            left: list[Node] = []
            status, lb, n = run(nodes, left, publish)
            bound, total = min(bound, lb), total + n
            if left:  # deadline or stop with nodes still open
                bound = min([bound] + [node[0] for node in left])
                steal.bounds[me] = bound
                return status, bound, total
            steal.bounds[me] = bound
        taken, status = steal.take(deadline, stop, me)
        if taken is None:
            return status, bound, total
        nodes = taken


class _Steal:
    """Work stealing among the processes of a split tree: a process out of work waits for
    nodes that a busy one gives away (half of its open nodes, least bound first)."""

    def __init__(self, ctx: Any, n: int, bounds: list[float] | None = None) -> None:
        self.n = n
        self.spare = ctx.Queue()
        self.lock = ctx.Lock()
        self.idle = ctx.Value("i", 0, lock=False)
        self.posted = ctx.Value("i", 0, lock=False)
        self.taken = ctx.Value("i", 0, lock=False)
        self.halt = ctx.Event()
        #: per process, the least bound over the nodes it searched, holds or searches now
        #: (at first, its share's); with :attr:`transit` the split tree's bound
        self.bounds = ctx.Array("d", bounds if bounds is not None else [np.inf] * n, lock=False)
        #: the least bound among nodes given away and not yet taken (inf when none)
        self.transit = ctx.Value("d", np.inf, lock=False)

    def least(self) -> float:
        """The bound of the whole split tree now: every process's and the nodes in transit."""
        with self.lock:
            return min(*self.bounds[:], self.transit.value)

    def donate(self, queue: Any) -> None:
        """Give away half of ``queue``'s open nodes when a process waits for work and no
        gift is already on its way to it."""
        if self.idle.value <= 0 or len(queue) < 2:
            return
        with self.lock:
            if self.idle.value <= self.posted.value - self.taken.value:
                return
            items = sorted(queue.nodes.values(), key=lambda node: node[1])[0::2]
            for item in items:
                queue.nodes.pop(item[0])
            self.posted.value += 1
            self.transit.value = min([self.transit.value] + [item[1] for item in items])
            self.spare.put([(b, lo, hi) for _, b, lo, hi in items])

    def take(
        self, deadline: float, stop: Callable[[], bool], me: int = 0
    ) -> tuple[list[Node] | None, str]:
        """Nodes given away by another process (they join process ``me``'s bound), or None
        with the reason the search ends."""
        import queue

        with self.lock:
            self.idle.value += 1
        while True:
            try:
                nodes = self.spare.get(timeout=0.02)
            except queue.Empty:
                if self.halt.is_set() or stop():
                    return None, "stopped"
                if time.perf_counter() >= deadline:
                    return None, "time_limit"
                with self.lock:
                    if self.idle.value >= self.n and self.posted.value == self.taken.value:
                        return None, "done"
                continue
            with self.lock:
                self.taken.value += 1
                self.idle.value -= 1
                self.bounds[me] = min([self.bounds[me]] + [node[0] for node in nodes])
                if self.taken.value == self.posted.value:
                    self.transit.value = np.inf
            return nodes, "done"

    def drain(self) -> float:
        """The least bound among the nodes given away that nobody took (inf when none; -inf
        when some could not be read back, so that no bound is claimed for them)."""
        import queue

        least = np.inf
        with self.lock:
            missing = self.posted.value - self.taken.value
        while missing > 0:
            try:
                nodes = self.spare.get(timeout=1.0)
            except queue.Empty:
                return -np.inf
            missing -= 1
            least = min([least] + [node[0] for node in nodes])
        return least


def _part_main(
    spec: _TreeSpec,
    nodes: list[Node],
    job: tuple[float, Any],
    steal: _Steal,
    out: Any,
    *,
    me: int,
    searcher: Callable[[_TreeSpec], Any],
) -> None:
    """Entry point of a tree process: searches its share and what it can take, then puts
    ``("ok", _PartResult)`` (or ``("error", text)``) on ``out``."""
    from threadpoolctl import threadpool_limits

    ub, best_open = job
    try:
        # one BLAS thread: the processes already use every core
        with threadpool_limits(limits=1):
            part = searcher(spec)
            part.best.ub = ub
            part.best.open = np.sort(np.asarray(best_open, dtype=np.intp))
            result = part.search(nodes, steal, steal.halt.is_set, me)
        out.put(("ok", result))
    except Exception as exc:  # reported to the parent, which raises it
        steal.halt.set()
        out.put(("error", f"{type(exc).__name__}: {exc}"))


class _TreeWorkers:
    """The other processes of a split tree (spawned, so that a multi-threaded server never
    forks), each with its share of the open nodes. The context exit stops and joins them."""

    def __init__(
        self,
        spec: _TreeSpec,
        shares: list[list[Node]],
        ub: float,
        best_open: np.ndarray,
        searcher: Callable[[_TreeSpec], Any],
    ) -> None:
        """``shares[0]`` is this process's, the others' are searched by new processes, each
        with ``searcher(spec)`` (an object with ``best`` and ``search``; a class importable
        by name, as the spawned process unpickles it)."""
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        bounds = [min([np.inf] + [node[0] for node in share]) for share in shares]
        self.steal = _Steal(ctx, len(shares), bounds)
        self.out = ctx.Queue()
        self.procs = [
            ctx.Process(
                target=_part_main,
                args=(spec, share, (ub, best_open), self.steal, self.out),
                kwargs={"me": me, "searcher": searcher},
                daemon=True,
            )
            for me, share in enumerate(shares[1:], start=1)
        ]

    def __enter__(self) -> _TreeWorkers:
        for proc in self.procs:
            proc.start()
        return self

    def collect(self, stop: Callable[[], bool]) -> list[_PartResult]:
        """Every other process's result; sets the halt flag when ``stop`` says so."""
        import queue

        results: list[_PartResult] = []
        while len(results) < len(self.procs):
            if stop():
                self.steal.halt.set()
            try:
                kind, payload = self.out.get(timeout=0.2)
            except queue.Empty:
                if not all(proc.is_alive() for proc in self.procs):
                    raise SolverError(
                        "a branch-and-cut process ended without a result (with "
                        "PLANNER_SOLVER_PROCESSES > 1 a script must call the planner under "
                        "`if __name__ == '__main__':`, as Python's spawned processes import "
                        "the script again; or set PLANNER_SOLVER_PROCESSES=1)"
                    ) from None
                continue
            if kind != "ok":
                raise SolverError(f"a branch-and-cut process failed: {payload}")
            results.append(payload)
        return results

    def __exit__(self, *exc: object) -> None:
        self.steal.halt.set()
        for proc in self.procs:
            proc.join(timeout=5.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
