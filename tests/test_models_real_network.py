"""Models on real road travel times (bundled Liechtenstein extract): ties, formulations, paths."""

from __future__ import annotations

import numpy as np
import pytest

from planner.models import p_center, p_median

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def road_cost() -> np.ndarray:
    from planner.roads.network import load_region
    from planner.routing.matrix import travel_time_matrix

    G = load_region("liechtenstein")
    nodes = np.array(list(G.nodes))
    rng = np.random.default_rng(0)
    customers = rng.choice(nodes, size=300, replace=False)
    sites = rng.choice(nodes, size=40, replace=False)
    # whole minutes: real travel times rounded the way a report shows them, with many ties
    return np.round(travel_time_matrix(G, customers, sites) / 60.0) * 60.0


def test_formulations_and_paths_agree_on_road_times(
    road_cost: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    cost = road_cost
    reachable = np.isfinite(cost).any(axis=1)
    weights = np.where(reachable, 1.0 + (np.arange(cost.shape[0]) % 4), 0.0)
    results = [
        p_median(cost, 4, weights, allow_unreachable=True, formulation=formulation)
        for formulation in ("benders", "lagrangian")
    ]
    assert "Benders" in results[0].solver
    assert "Lagrangian" in results[1].solver
    monkeypatch.setattr("planner.models._median.SMALL_PAIRS", 10**9)  # straight to the MIP
    for formulation in ("assignment", "radius"):
        sol = p_median(cost, 4, weights, formulation=formulation, allow_unreachable=True)
        assert f"({formulation})" in sol.solver
        results.append(sol)
    for sol in results:
        assert sol.optimal
        assert sol.open.size == 4
    objectives = [sol.objective for sol in results]
    assert np.allclose(objectives, objectives[0], rtol=1e-9)


def test_p_center_on_road_times(road_cost: np.ndarray) -> None:
    cost = road_cost[np.isfinite(road_cost).any(axis=1)]
    sol = p_center(cost, 3)
    assert sol.optimal
    worst = cost[np.arange(cost.shape[0]), sol.assignment].max()
    assert worst == sol.objective
    # every 3-site choice in a sample is at least as bad as the optimum
    rng = np.random.default_rng(1)
    for _ in range(200):
        s = rng.choice(cost.shape[1], size=3, replace=False)
        assert cost[:, s].min(axis=1).max() >= sol.objective
