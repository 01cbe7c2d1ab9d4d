"""The Lagrangian path's pieces: the core interchange against the dense one, the bound against
brute force, and the large-instance settings of the rounds against brute force."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from planner.models import _lagrangian, _local_search, p_median


def brute_force(a: np.ndarray, p: int) -> float:
    return min(
        float(a[:, list(s)].min(axis=1).sum()) for s in itertools.combinations(range(a.shape[1]), p)
    )


def euclidean(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    cost = np.linalg.norm(rng.random((n, 1, 2)) - rng.random((1, m, 2)), axis=2) * 3600
    return cost * rng.integers(1, 10, size=n)[:, None]


@pytest.mark.parametrize("seed", range(20))
def test_core_interchange_takes_the_dense_interchange_path(seed: int) -> None:
    """Same best-improvement swaps as the dense fast interchange, so the same local optimum."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(20, 150)), int(rng.integers(6, 40))
    p = int(rng.integers(2, min(8, m - 1) + 1))
    a = euclidean(rng, n, m)
    allowed = np.ones(m, dtype=bool)
    allowed[rng.choice(m, size=2, replace=False)] = False
    start = rng.choice(np.flatnonzero(allowed), size=p, replace=False)
    required = np.sort(start[:1]) if seed % 2 else np.empty(0, dtype=np.int64)
    core = _lagrangian.build_core(a, a[:, start].min(axis=1), allowed)
    far = time.perf_counter() + 30
    dense, dense_val, dense_it = _local_search.interchange(
        a, np.zeros(m), start, p=p, required=required, allowed=allowed, deadline=far
    )
    fast, fast_val, fast_it = _lagrangian.core_interchange(
        a, np.zeros(m), start, core, required=required, allowed=allowed, deadline=far
    )
    assert np.array_equal(np.sort(dense), fast)
    assert fast_it == dense_it
    assert np.isclose(fast_val, dense_val, rtol=1e-12)
    assert np.isclose(fast_val, _local_search.evaluate(a, np.zeros(m), fast), rtol=1e-12)
    assert set(required.tolist()) <= set(fast.tolist())
    assert allowed[fast].all()


def test_core_interchange_on_a_short_core_still_returns_exact_values() -> None:
    """A core that keeps only the 3 cheapest pairs of each row misses savings: the swaps it
    takes are still checked on the full matrix, so the value is exact and never worse."""
    rng = np.random.default_rng(3)
    a = euclidean(rng, 120, 30)
    m = a.shape[1]
    allowed = np.ones(m, dtype=bool)
    kth = np.partition(a, 2, axis=1)[:, 2]
    core = _lagrangian._Core(a, kth, allowed)
    start = np.arange(5)
    start_val = _local_search.evaluate(a, np.zeros(m), start)
    found, val, _ = _lagrangian.core_interchange(
        a,
        np.zeros(m),
        start,
        core,
        required=np.empty(0, dtype=np.int64),
        allowed=allowed,
        deadline=time.perf_counter() + 30,
    )
    assert found.size == 5
    assert val <= start_val
    assert np.isclose(val, _local_search.evaluate(a, np.zeros(m), found), rtol=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_continued_subgradient_bound_is_valid_and_tight(seed: int) -> None:
    """Rounds that continue the step (as the large path does) keep a valid bound, and it
    closes on small Euclidean instances (their LP bound is the optimum or near it)."""
    rng = np.random.default_rng(seed)
    a = euclidean(rng, 40, 9)
    m = a.shape[1]
    p = 3
    best = brute_force(a, p)
    start_open = np.arange(p)
    lam = a[:, start_open].min(axis=1)
    allowed = np.ones(m, dtype=bool)
    core = _lagrangian.build_core(a, lam, allowed)
    step, bound = 1.0, -np.inf
    for _ in range(4):
        res = _lagrangian.subgradient(
            a,
            np.zeros(m),
            p=p,
            required=np.empty(0, dtype=np.int64),
            allowed=allowed,
            upper_bound=best,
            start=lam,
            deadline=time.perf_counter() + 5,
            max_iterations=150,
            max_restarts=0,
            core=core,
            step=step,
        )
        assert res.step <= step
        step, lam = res.step, res.multipliers
        bound = max(bound, res.bound)
        assert bound <= best * (1 + 1e-9)
    assert bound >= best * (1 - 0.02)


@pytest.mark.parametrize("seed", range(12))
def test_large_path_settings_are_exact_on_small_instances(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every instance through the Lagrangian path with the large-instance rounds (continued
    step, core interchange) and the reduced MIP: still the brute-force optimum."""
    monkeypatch.setattr("planner.models._median.SMALL_PAIRS", 0)
    monkeypatch.setattr("planner.models._median.LARGE_PAIRS", 0)
    rng = np.random.default_rng(seed)
    n, m, p = 60, 10, int(rng.integers(2, 5))
    cost = euclidean(rng, n, m)
    sol = p_median(cost, p, np.ones(n), formulation="lagrangian", time_limit=30)
    assert "Lagrangian" in sol.solver
    assert sol.optimal
    assert np.isclose(sol.objective, brute_force(cost, p), rtol=1e-9)
