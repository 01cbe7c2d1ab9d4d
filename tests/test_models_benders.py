"""Benders path of the median-type models: brute force, stop and progress callbacks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.models import SolveProgress, _benders, p_median
from planner.models._base import ProgressReporter
from planner.models._median import solve_median


def brute_force(
    a: np.ndarray,
    fixed: np.ndarray,
    p: int | None,
    required: frozenset[int] = frozenset(),
    excluded: frozenset[int] = frozenset(),
) -> float:
    """Smallest fixed + weighted assignment cost over every allowed open set."""
    m = a.shape[1]
    sizes = [p] if p is not None else range(1, m + 1)
    best = np.inf
    for size in sizes:
        for subset in itertools.combinations(range(m), size):
            chosen = set(subset)
            if not required <= chosen or chosen & excluded:
                continue
            near = a[:, list(subset)].min(axis=1)
            best = min(best, float(fixed[list(subset)].sum() + near.sum()))
    return best


def instance(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(4, 16)), int(rng.integers(3, 10))
    if seed % 2:
        cost = rng.integers(1, 6, size=(n, m)).astype(float)  # many ties
    else:
        cost = rng.uniform(10, 1000, size=(n, m))
    if seed % 3 == 0:
        cost[rng.random((n, m)) < 0.3] = np.inf
        cost[:, 0] = np.where(np.isfinite(cost[:, 0]), cost[:, 0], 2000.0)
    weights = rng.integers(1, 5, size=n).astype(float)
    return cost, weights


@pytest.mark.parametrize("seed", range(30))
def test_benders_p_median_matches_brute_force(seed: int) -> None:
    cost, w = instance(seed)
    m = cost.shape[1]
    rng = np.random.default_rng(100 + seed)
    p = int(rng.integers(1, min(m, 4) + 1))
    required = frozenset([1]) if seed % 4 == 1 and p > 1 else frozenset()
    excluded = frozenset([m - 1]) if seed % 5 == 2 and m - 1 not in required else frozenset()
    a = cost * w[:, None]
    expected = brute_force(a, np.zeros(m), p, required, excluded)
    if not np.isfinite(expected):
        pytest.skip("no feasible open set")
    sol = p_median(
        cost,
        p,
        w,
        required=sorted(required),
        excluded=sorted(excluded),
        formulation="benders",
        time_limit=20,
    )
    assert sol.optimal
    assert sol.objective == pytest.approx(expected, rel=1e-9)
    assert sol.n_open == p
    assert required <= set(sol.open.tolist())
    assert not excluded & set(sol.open.tolist())


@pytest.mark.parametrize("seed", range(15))
def test_benders_fixed_charge_matches_brute_force(seed: int) -> None:
    cost, w = instance(seed)
    m = cost.shape[1]
    rng = np.random.default_rng(200 + seed)
    fixed = rng.uniform(0, 2000, size=m)
    a = cost * w[:, None]
    expected = brute_force(a, fixed, None)
    if not np.isfinite(expected):
        pytest.skip("no feasible open set")
    res = solve_median(
        a,
        fixed,
        p=None,
        required=np.zeros(0, dtype=np.intp),
        excluded=np.zeros(0, dtype=np.intp),
        time_limit=20,
        formulation="benders",
    )
    assert res.optimal
    assert res.objective == pytest.approx(expected, rel=1e-9)


def euclidean(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy, sites = rng.random((n, 2)), rng.random((m, 2))
    cost = np.sqrt(((xy[:, None, :] - sites[None, :, :]) ** 2).sum(axis=2)) * 3600
    return cost, rng.integers(1, 10, size=n).astype(float)


def test_benders_agrees_with_lagrangian_path_on_a_larger_instance() -> None:
    cost, w = euclidean(400, 120, seed=3)
    new = p_median(cost, 4, w, formulation="benders", time_limit=30)
    old = p_median(cost, 4, w, formulation="lagrangian", time_limit=30)
    assert new.optimal
    assert old.optimal
    assert new.objective == pytest.approx(old.objective, rel=1e-7)
    assert new.extras["benders_lp_rounds"] >= 1


def test_stop_returns_best_solution_so_far_with_its_gap() -> None:
    cost, w = euclidean(300, 150, seed=4)
    calls = {"n": 0}

    def stop_after_first_poll() -> bool:
        calls["n"] += 1
        return calls["n"] > 1

    sol = p_median(cost, 5, w, formulation="benders", should_stop=stop_after_first_poll)
    assert sol.status == "stopped"
    assert not sol.optimal
    assert sol.n_open == 5
    expected = float((w * cost[:, sol.open].min(axis=1)).sum())
    assert sol.objective == pytest.approx(expected)
    assert sol.lower_bound <= sol.objective
    assert sol.gap == pytest.approx((sol.objective - sol.lower_bound) / sol.objective)


def test_stop_on_the_lagrangian_path_too() -> None:
    cost, w = euclidean(300, 150, seed=5)
    sol = p_median(cost, 5, w, formulation="lagrangian", should_stop=lambda: True)
    assert sol.status == "stopped"
    assert not sol.optimal
    assert sol.n_open == 5


@pytest.mark.parametrize("formulation", ["benders", "lagrangian"])
def test_progress_reports_a_monotone_bound(formulation: str) -> None:
    cost, w = euclidean(300, 150, seed=6)
    reports: list[SolveProgress] = []
    sol = p_median(cost, 6, w, formulation=formulation, progress=reports.append)
    assert sol.optimal
    assert len(reports) >= 2
    bounds = [r.bound for r in reports]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(bounds))
    objectives = [r.objective for r in reports]
    assert all(o2 <= o1 for o1, o2 in itertools.pairwise(objectives))
    assert reports[-1].bound == pytest.approx(sol.objective, rel=1e-6)
    assert all(r.elapsed_s >= 0 and r.message for r in reports)


def test_progress_reporter_without_callback_is_silent() -> None:
    rep = ProgressReporter(None, 0.0)
    rep("x", objective=10.0, bound=5.0)
    rep("y", objective=12.0, bound=4.0)
    assert rep.objective == 10.0
    assert rep.bound == 5.0


def vertex_instance(n: int, seed: int) -> np.ndarray:
    """Shortest paths of a random connected graph: every vertex a customer and a candidate,
    so each row has a zero (its own vertex) and many ties (integer lengths)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import shortest_path

    rng = np.random.default_rng(seed)
    u = np.concatenate([np.arange(1, n), rng.integers(0, n, 2 * n)])
    v = np.concatenate([rng.integers(0, np.arange(1, n)), rng.integers(0, n, 2 * n)])
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    _, first = np.unique(lo * n + hi, return_index=True)
    first = first[lo[first] != hi[first]]
    length = rng.integers(1, 20, size=first.size).astype(float)
    graph = coo_matrix((length, (lo[first], hi[first])), shape=(n, n)).tocsr()
    return shortest_path(graph, directed=False)


@pytest.mark.parametrize("seed", range(6))
def test_benders_on_vertex_instances_with_zero_costs_and_ties(seed: int) -> None:
    cost = vertex_instance(11, seed)
    p = 2 + seed % 3
    expected = brute_force(cost, np.zeros(11), p)
    sol = p_median(cost, p, formulation="benders")
    assert sol.optimal
    assert sol.objective == pytest.approx(expected)


def test_branching_closes_an_integrality_gap() -> None:
    """An instance whose LP bound is below the optimum: the branch-and-cut must close it."""
    cost = vertex_instance(120, seed=3)
    new = p_median(cost, 5, formulation="benders", time_limit=30)
    old = p_median(cost, 5, formulation="lagrangian", time_limit=30)
    assert new.optimal
    assert new.objective <= old.objective + 1e-9
    assert new.extras["benders_lp_bound"] < new.objective - 0.5  # a real integrality gap
    assert new.extras["benders_nodes"] >= 1


@pytest.mark.parametrize("order", ["depth", "best"])
@pytest.mark.parametrize("rule", ["pseudo", "fractional", "largest"])
def test_every_branching_rule_and_node_order_is_exact(
    rule: str, order: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reliability branching (strong-branching children, their bounds used to prune), the
    plain rules and both node orders, against brute force; seed 8 has an integrality gap."""
    monkeypatch.setattr(_benders, "BRANCH_RULE", rule)
    monkeypatch.setattr(_benders, "NODE_ORDER", order)
    branched = 0
    for seed in (2, 5, 8):
        cost = vertex_instance(24, seed)
        sol = p_median(cost, 3, formulation="benders")
        assert sol.optimal
        assert sol.objective == pytest.approx(brute_force(cost, np.zeros(24), 3))
        branched += sol.extras.get("benders_nodes", 0)
    assert branched >= 2


def test_strong_branching_without_iteration_limit_is_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Strong-branching children solved to optimality give child bounds that prune."""
    monkeypatch.setattr(_benders, "STRONG_ITERATIONS", 100_000)
    monkeypatch.setattr(_benders, "STRONG_CANDIDATES", 8)
    cost = vertex_instance(24, 8)
    sol = p_median(cost, 3, formulation="benders")
    assert sol.optimal
    assert sol.objective == pytest.approx(brute_force(cost, np.zeros(24), 3))


def test_node_queue_orders() -> None:
    """Depth-first takes the newest node, best-first the least bound (newest among equal
    bounds), "plunge" the newest while its bound is within PLUNGE_SHARE of the gap above the
    least bound, else the least; the least open bound is always reported."""
    from planner.models._benders import PLUNGE_SHARE, _NodeQueue

    z = np.zeros(2)

    def filled(order: str) -> _NodeQueue:
        q = _NodeQueue(order)
        for node_id, bound in enumerate([1.0, 3.0, 2.0, 9.0]):
            q.push(node_id, bound, z, z)
        return q

    depth = filled("depth")
    assert [depth.pop(10.0)[0] for _ in range(4)] == [3, 2, 1, 0]
    best = filled("best")
    assert [best.pop(10.0)[0] for _ in range(4)] == [0, 2, 1, 3]
    plunge = filled("plunge")
    assert plunge.least() == 1.0
    # newest (bound 9) is past least + share * (cutoff - least) for cutoff 10: the least next
    assert 1.0 + PLUNGE_SHARE * 9.0 < 9.0
    assert plunge.pop(10.0)[0] == 0
    assert plunge.least() == 2.0
    # with no incumbent (cutoff inf) the newest
    assert plunge.pop(np.inf)[0] == 3
    assert len(plunge) == 2
    with pytest.raises(ValueError, match="node_order"):
        _NodeQueue("widest")
