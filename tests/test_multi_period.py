"""Multi-period p-median checked against brute force over nested site sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.errors import InfeasibleError
from planner.models import multi_period_p_median, p_median


def _brute_force(cost, p, weights, required=(), excluded=()):
    m = cost.shape[1]
    allowed = [j for j in range(m) if j not in excluded]
    best = np.inf

    def period(sites, w):
        return float(np.sum(w * cost[:, list(sites)].min(axis=1)))

    def extend(t, prev, total):
        nonlocal best
        if t == len(p):
            best = min(best, total)
            return
        rest = [j for j in allowed if j not in prev]
        for add in itertools.combinations(rest, p[t] - len(prev)):
            sites = tuple(sorted((*prev, *add)))
            extend(t + 1, sites, total + period(sites, weights[t]))

    for first in itertools.combinations(allowed, p[0]):
        if set(required) <= set(first):
            extend(1, first, period(first, weights[0]))
    return best


def _instance(seed, n=9, m=6, years=3):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 10, size=(n, 2))
    sites = rng.uniform(0, 10, size=(m, 2))
    cost = np.linalg.norm(pts[:, None] - sites[None], axis=2) * 60
    # demand shifts from the left half to the right half over the years
    left = pts[:, 0] < 5
    weights = np.array(
        [np.where(left, 3.0 - t, 1.0 + t) * rng.integers(1, 4, n) for t in range(years)]
    )
    return np.round(cost), weights


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("p", [(1, 2, 3), (2, 2, 4), (1, 1, 1)])
def test_matches_brute_force(seed, p):
    cost, weights = _instance(seed)
    sol = multi_period_p_median(cost, p, weights, time_limit=20)
    expected = _brute_force(cost, p, weights)
    assert sol.optimal
    assert sol.gap == pytest.approx(0.0, abs=1e-6)
    assert sol.objective == pytest.approx(expected, rel=1e-9)
    # the plan is nested and has p_t sites each year
    for t, sites in enumerate(sol.open_per_period):
        assert sites.size == p[t]
        if t:
            assert set(sol.open_per_period[t - 1]) <= set(sites)
    # the objective is the plan's own cost, and open_year says when each site opens
    recomputed = sum(
        float(np.sum(weights[t] * cost[:, sol.open_per_period[t]].min(axis=1)))
        for t in range(len(p))
    )
    assert sol.objective == pytest.approx(recomputed)
    for t, sites in enumerate(sol.open_per_period):
        assert np.all((sol.open_year[sites] >= 1) & (sol.open_year[sites] <= t + 1))


@pytest.mark.parametrize("seed", range(4))
def test_replanned_objective_is_each_year_alone(seed):
    cost, weights = _instance(seed)
    p = (1, 2, 3)
    sol = multi_period_p_median(cost, p, weights, time_limit=20)
    for t in range(3):
        alone = p_median(cost, p[t], weights[t])
        assert sol.replanned_objective[t] == pytest.approx(alone.objective)
    assert sol.price_of_consistency >= -1e-6
    assert sol.objective >= sol.replanned_objective.sum() - 1e-6


def test_required_and_excluded_respected():
    cost, weights = _instance(3)
    sol = multi_period_p_median(cost, (2, 3, 3), weights, required=[5], excluded=[0])
    expected = _brute_force(cost, (2, 3, 3), weights, required=(5,), excluded=(0,))
    assert sol.objective == pytest.approx(expected)
    assert sol.open_year[5] == 1
    assert sol.open_year[0] == 0


def test_heuristic_path_still_reports_a_proven_gap():
    cost, weights = _instance(1, n=12, m=7)
    sol = multi_period_p_median(cost, (1, 2, 3), weights, max_pairs=0)
    assert sol.extras["mip_pairs"] == 0
    best = _brute_force(cost, (1, 2, 3), weights)
    assert sol.lower_bound <= best + 1e-6 <= sol.objective + 1e-6
    assert sol.gap == pytest.approx((sol.objective - sol.lower_bound) / sol.objective)
    assert sol.optimal == (sol.gap <= 1e-6)


def test_decreasing_sites_are_rejected_before_solving():
    cost, weights = _instance(0)
    with pytest.raises(InfeasibleError, match="decrease"):
        multi_period_p_median(cost, (3, 2, 2), weights)
