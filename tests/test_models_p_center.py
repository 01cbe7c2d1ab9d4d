"""p-center against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.errors import InfeasibleError
from planner.models import SolveProgress, p_center


@pytest.mark.parametrize("seed", range(40))
def test_p_center_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    m = int(rng.integers(1, 7))
    cost = rng.uniform(0, 3600, size=(n, m))
    if seed % 2:
        cost = np.round(cost / 600) * 600
    weights = rng.integers(0, 3, size=n).astype(float)
    p = int(rng.integers(1, m + 1))
    required = {int(rng.integers(0, m))} if seed % 3 == 0 else set()
    best_r, best_w = np.inf, np.inf
    active = weights > 0
    for s in itertools.combinations(range(m), p):
        if not required <= set(s):
            continue
        near = cost[:, list(s)].min(axis=1)
        r = near[active].max() if active.any() else 0.0
        wt = (weights * near).sum()
        if r < best_r - 1e-9 or (abs(r - best_r) <= 1e-9 and wt < best_w):
            best_r, best_w = r, wt
    sol = p_center(cost, p, weights, required=sorted(required))
    assert sol.optimal
    assert sol.open.size == p
    assert required <= set(sol.open.tolist())
    assert np.isclose(sol.objective, best_r)
    assert np.isclose(sol.lower_bound, best_r)
    near = cost[:, sol.open].min(axis=1)
    assert np.allclose(cost[np.arange(n), sol.assignment], near)
    # tie-break: least weighted travel among optimal-radius solutions
    assert np.isclose(sol.extras["weighted_travel"], best_w)


def test_p_center_disconnected() -> None:
    cost = np.array([[1.0, np.inf], [np.inf, 2.0]])
    with pytest.raises(InfeasibleError, match="p=1 is too small"):
        p_center(cost, 1)
    assert p_center(cost, 2).objective == 2.0


def test_p_center_reports_progress_and_stops_with_its_gap() -> None:
    rng = np.random.default_rng(3)
    cost = rng.uniform(60, 3600, size=(80, 25))
    reports: list[SolveProgress] = []
    full = p_center(cost, 4, progress=reports.append)
    assert full.optimal
    assert len(reports) >= 2
    bounds = [r.bound for r in reports]
    objectives = [r.objective for r in reports]
    assert bounds == sorted(bounds)
    assert objectives == sorted(objectives, reverse=True)
    assert all(
        b <= full.objective + 1e-9 <= o + 1e-9 for b, o in zip(bounds, objectives, strict=True)
    )
    # stopped before the bisection: a valid cover of the largest radius, an honest gap
    stopped = p_center(cost, 4, should_stop=lambda: True)
    assert stopped.status == "stopped"
    assert not stopped.optimal
    assert stopped.open.size == 4
    assert stopped.lower_bound <= full.objective <= stopped.objective
    assert np.isclose(stopped.objective, cost[:, stopped.open].min(axis=1).max())
