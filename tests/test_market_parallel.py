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
    from planner.models._market import _Steal

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


def test_work_stealing_ends_when_every_process_waits() -> None:
    from planner.models._market import _Steal

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
    monkeypatch.setenv("PLANNER_SOLVER_PROCESSES", "two")
    with pytest.raises(InputError, match="PLANNER_SOLVER_PROCESSES"):
        solver_processes()


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
