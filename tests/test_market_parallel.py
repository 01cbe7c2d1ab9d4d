"""The market model's branch-and-cut split among processes (``PLANNER_SOLVER_PROCESSES``):
same proven optimum as brute force, and the work-stealing bookkeeping on its own."""

from __future__ import annotations

import itertools
import multiprocessing

import numpy as np
import pytest

from planner.models import max_capture
from tests.test_models_market import spatial


def brute(u, o, w, p) -> float:
    best = 0.0
    for s in itertools.combinations(range(u.shape[1]), p):
        util = u[:, list(s)].sum(axis=1)
        best = max(best, float(np.sum(w * util / (o + util))))
    return best


@pytest.mark.parametrize("seed", [3, 8])
def test_split_tree_proves_the_brute_force_optimum(seed, monkeypatch) -> None:
    from planner.models import _market

    monkeypatch.setenv("PLANNER_SOLVER_PROCESSES", "2")
    monkeypatch.setattr(_market, "SPLIT_NODES", 1)  # split as soon as 2 nodes are open
    monkeypatch.setattr(_market, "RESTRICT_SHARE", 2.0)  # no restriction: a real tree
    monkeypatch.setattr(_market, "ENVELOPE_ROOT", 0)  # a weaker root: more nodes to share
    u, o, w = spatial(seed, 80, 14, 2.0)
    sol = max_capture(u, 5, w, outside=o, time_limit=120)
    assert sol.optimal
    assert sol.objective == pytest.approx(brute(u, o, w, 5), rel=1e-9)
    assert sol.extras["processes"] == 2
    per = sol.extras["nodes_per_process"]
    assert len(per) == 2
    assert sum(per) <= sol.extras["nodes"]


def test_one_process_is_the_default(monkeypatch) -> None:
    monkeypatch.delenv("PLANNER_SOLVER_PROCESSES", raising=False)
    u, o, w = spatial(3, 80, 14, 2.0)
    sol = max_capture(u, 5, w, outside=o, time_limit=60)
    assert "processes" not in sol.extras


def test_work_stealing_gives_half_the_open_nodes_least_bound_first() -> None:
    from planner.models._benders import _NodeQueue
    from planner.models._market_split import _Steal

    ctx = multiprocessing.get_context("spawn")
    steal = _Steal(ctx, 2)
    queue = _NodeQueue("plunge")
    for i, bound in enumerate([5.0, 1.0, 3.0, 2.0]):
        queue.push(i, bound, np.full(3, float(i)), np.ones(3))
    steal.donate(queue)  # nobody waits: nothing given
    assert len(queue) == 4
    steal.idle.value = 1  # another process waits for work
    steal.donate(queue)
    assert sorted(node[1] for node in queue.nodes.values()) == [2.0, 5.0]
    steal.donate(queue)  # a gift is already on its way: nothing more
    assert len(queue) == 2
    steal.idle.value = 0
    nodes, status = steal.take(deadline=float("inf"), stop=lambda: False)
    assert status == "done"
    assert [b for b, _, _ in nodes] == [1.0, 3.0]
    assert steal.drain() == float("inf")  # every gift was taken


def test_the_split_trees_bound_covers_every_process_and_the_nodes_in_transit() -> None:
    from planner.models._benders import _NodeQueue
    from planner.models._market_split import _Steal

    ctx = multiprocessing.get_context("spawn")
    steal = _Steal(ctx, 2, [1.5, 3.0])  # the two shares' least bounds
    assert steal.least() == 1.5
    queue = _NodeQueue("plunge")
    for i, bound in enumerate([2.0, 6.0, 4.0, 5.0]):
        queue.push(i, bound, np.zeros(3), np.ones(3))
    steal.bounds[0] = 2.0  # process 0 has searched on
    steal.idle.value = 1  # process 1 waits for work
    steal.donate(queue)  # gives the nodes at 2.0 and 5.0
    steal.bounds[0] = 4.0  # process 0's own bound without them
    assert steal.least() == 2.0  # still counted: they are on their way
    nodes, status = steal.take(deadline=float("inf"), stop=lambda: False, me=1)
    assert status == "done"
    assert [b for b, _, _ in nodes] == [2.0, 5.0]
    assert steal.bounds[1] == 2.0  # now process 1's
    assert steal.transit.value == float("inf")
    assert steal.least() == 2.0


def test_progress_during_a_split_tree_never_passes_the_optimum(monkeypatch) -> None:
    """Each progress report during a split solve bounds the whole tree, not only the nodes
    of the process that reports (which, alone, is above the optimum once the others hold the
    node that leads to it)."""
    from planner.models import _benders, _market, market

    monkeypatch.setenv("PLANNER_SOLVER_PROCESSES", "2")
    monkeypatch.setattr(_market, "SPLIT_NODES", 1)
    monkeypatch.setattr(_market, "RESTRICT_SHARE", 2.0)
    monkeypatch.setattr(_market, "ENVELOPE_ROOT", 0)
    monkeypatch.setattr(_benders, "PROGRESS_EVERY", 0.0)  # this process reports every node

    def no_swaps(prob, cand, **kw):
        return np.sort(cand), prob.value(np.sort(cand))

    # this process starts from a poor answer and keeps it (no swaps, no rounding), so that
    # its reports are not capped by an optimal incumbent; the other finds the optimum
    monkeypatch.setattr(_market, "local_search", no_swaps)
    monkeypatch.setattr(market, "local_search", no_swaps)
    monkeypatch.setattr(market, "greedy", lambda prob, p, **kw: np.argsort(prob.u.sum(axis=0))[:p])
    monkeypatch.setattr(_market._Cuts, "round", lambda self, y: None)
    for seed in (4, 9):  # before the fix, seed 4 reported a bound 2.4 jobs past the optimum
        u, o, w = spatial(seed, 80, 14, 2.0)
        best = brute(u, o, w, 5)
        reports = []
        sol = max_capture(u, 5, w, outside=o, time_limit=120, progress=reports.append)
        assert sol.optimal
        assert sol.extras["processes"] == 2
        tree = [r.bound for r in reports if "branch-and-cut" in r.message]
        assert tree  # the reports checked here
        assert all(b <= w.sum() - best + 1e-7 for b in tree)


def test_work_stealing_ends_when_every_process_waits() -> None:
    from planner.models._market_split import _Steal

    ctx = multiprocessing.get_context("spawn")
    steal = _Steal(ctx, 2)
    steal.idle.value = 1  # the other process waits already
    nodes, status = steal.take(deadline=float("inf"), stop=lambda: False)
    assert nodes is None
    assert status == "done"
    steal = _Steal(ctx, 2)
    nodes, status = steal.take(deadline=0.0, stop=lambda: False)
    assert (nodes, status) == (None, "time_limit")


def test_solver_processes_setting(monkeypatch) -> None:
    from planner.errors import InputError
    from planner.settings import solver_processes

    monkeypatch.delenv("PLANNER_SOLVER_PROCESSES", raising=False)
    assert solver_processes() == 1
    monkeypatch.setenv("PLANNER_SOLVER_PROCESSES", "2")
    assert solver_processes() == 2
    monkeypatch.setattr(multiprocessing.current_process(), "daemon", True)
    assert solver_processes() == 1  # a daemonic process may not start processes
    monkeypatch.undo()
    monkeypatch.setenv("PLANNER_SOLVER_PROCESSES", "two")
    with pytest.raises(InputError, match="PLANNER_SOLVER_PROCESSES"):
        solver_processes()


def _solve_in_a_daemon(out) -> None:  # type: ignore[no-untyped-def]
    """Runs in a spawned daemonic process (as a Dask worker is): a solve whose tree would split
    at once, ``out`` gets (optimal, objective, split)."""
    from planner.models import _market

    _market.SPLIT_NODES = 1
    _market.RESTRICT_SHARE = 2.0
    _market.ENVELOPE_ROOT = 0
    u, o, w = spatial(3, 80, 14, 2.0)
    try:
        sol = max_capture(u, 5, w, outside=o, time_limit=120)
        out.put((sol.optimal, sol.objective, "processes" in sol.extras))
    except Exception as exc:  # the test shows it
        out.put((False, repr(exc), None))


def test_a_daemonic_process_keeps_its_tree(monkeypatch) -> None:
    """A Dask worker is a daemonic process, which Python does not let start processes: with
    two tree processes asked for, the solve there runs its tree itself (it raised
    "daemonic processes are not allowed to have children" before)."""
    monkeypatch.setenv("PLANNER_SOLVER_PROCESSES", "2")  # inherited by the child
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_solve_in_a_daemon, args=(out,), daemon=True)
    child.start()
    try:
        optimal, objective, split = out.get(timeout=180)
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.kill()
    assert optimal is True, objective
    assert objective == pytest.approx(brute(*spatial(3, 80, 14, 2.0), 5), rel=1e-9)
    assert split is False


@pytest.mark.parametrize("processes", ["1", "2"])
def test_a_tree_cut_short_still_bounds_the_optimum(processes, monkeypatch) -> None:
    """The tree stops (its deadline) with nodes still open, before it could split: the
    upper bound must still cover them (it is not the incumbent's value)."""
    from planner.models import _market

    monkeypatch.setenv("PLANNER_SOLVER_PROCESSES", processes)
    monkeypatch.setattr(_market, "RESTRICT_SHARE", 2.0)
    monkeypatch.setattr(_market, "ENVELOPE_ROOT", 0)
    real_branch = _market._branch
    calls = []

    def short_branch(master, **kw):
        calls.append(kw.get("split_at"))
        kw["deadline"] = 0.0  # out of time at once: the root node stays open
        return real_branch(master, **kw)

    monkeypatch.setattr(_market, "_branch", short_branch)
    u, o, w = spatial(8, 80, 14, 2.0)
    best = brute(u, o, w, 5)
    sol = max_capture(u, 5, w, outside=o, time_limit=60)
    assert calls == [None if processes == "1" else 2 * _market.SPLIT_NODES]
    assert not sol.optimal
    assert sol.upper_bound >= best * (1 - 1e-9)
    assert sol.gap > 1e-6  # the root's gap, not zero
