"""The grouped Benders LP bound (``_lp_bound``): equal to the p-median LP solved directly by
HiGHS, never above the brute-force optimum, and its multipliers usable by the Lagrangian
path's reduced-cost tests."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from planner.models import _lagrangian, _local_search, _lp_bound, p_median


def euclidean(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    cost = np.linalg.norm(rng.random((n, 1, 2)) - rng.random((1, m, 2)), axis=2) * 3600
    return cost * rng.integers(1, 10, size=n)[:, None]


def brute_force(a: np.ndarray, fixed: np.ndarray, p: int, required: np.ndarray) -> float:
    m = a.shape[1]
    rest = [j for j in range(m) if j not in set(required.tolist())]
    return min(
        _local_search.evaluate(a, fixed, np.array(sorted([*required.tolist(), *s])))
        for s in itertools.combinations(rest, p - required.size)
    )


def first_open(required: np.ndarray, m: int, p: int) -> np.ndarray:
    """A start with ``p`` open candidates that include the required one."""
    start_open = np.unique(np.concatenate([required, np.arange(m)]))[:p]
    if required.size and required[0] not in start_open:
        start_open = np.concatenate([required, start_open[: p - 1]])
    return start_open


def random_costs(seed: int, *, with_required: bool) -> tuple[np.ndarray, int, np.ndarray]:
    """Integer costs 1-99 (20-39 rows, 8-12 columns), p in 2-4, one required column or none."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(20, 40)), int(rng.integers(8, 13))
    p = int(rng.integers(2, 5))
    a = rng.integers(1, 100, size=(n, m)).astype(float)
    required = np.array([int(rng.integers(m))]) if with_required else np.empty(0, dtype=np.int64)
    return a, p, required


def direct_lp(a: np.ndarray, fixed: np.ndarray, p: int, required: np.ndarray) -> float:
    """The assignment LP on every pair, by HiGHS (scipy's ``linprog``)."""
    n, m = a.shape
    k = n * m
    rows, cols = np.divmod(np.arange(k), m)
    assign = sp.csr_matrix((np.ones(k), (rows, np.arange(k))), shape=(n, k + m))
    link = sp.hstack([sp.identity(k), -sp.csr_matrix((np.ones(k), (np.arange(k), cols)))])
    card = sp.csr_matrix(np.concatenate([np.zeros(k), np.ones(m)])[None, :])
    y_lower = np.zeros(m)
    y_lower[required] = 1.0
    res = linprog(
        np.concatenate([a.ravel(), fixed]),
        A_ub=link,
        b_ub=np.zeros(k),
        A_eq=sp.vstack([assign, card]),
        b_eq=np.concatenate([np.ones(n), [p]]),
        bounds=list(zip(np.concatenate([np.zeros(k), y_lower]), np.ones(k + m), strict=True)),
        method="highs",
    )
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("seed", range(10))
def test_lp_bound_is_the_lp_optimum_and_below_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(25, 60)), int(rng.integers(7, 13))
    p = int(rng.integers(2, 5))
    a = euclidean(rng, n, m)
    fixed = rng.random(m) * 500 if seed % 3 == 0 else np.zeros(m)
    required = np.array([int(rng.integers(m))]) if seed % 2 else np.empty(0, dtype=np.int64)
    lp_value = direct_lp(a, fixed, p, required)
    optimum = brute_force(a, fixed, p, required)
    start_open = first_open(required, m, p)
    n_groups = [m, 3, 1][seed % 3]
    res = _lp_bound.lp_bound(
        a,
        fixed,
        p=p,
        required=required,
        start_levels=[a.min(axis=1)],
        start_open=start_open,
        deadline=time.perf_counter() + 60,
        groups=_lp_bound.group_rows(a, n_groups),
    )
    assert res.converged
    assert res.status == "converged"
    assert res.bound == pytest.approx(lp_value, rel=1e-7)
    assert res.bound <= lp_value * (1 + 1e-9)
    assert lp_value <= res.lp_upper * (1 + 1e-9)
    assert res.bound <= optimum * (1 + 1e-9)
    # the averaged levels are Lagrangian multipliers at the LP level
    lag = lagrangian_at(a, fixed, p, required, res.multipliers, upper_bound=optimum)
    assert lag.bound == pytest.approx(lp_value, rel=1e-6)


def lagrangian_at(
    a: np.ndarray,
    fixed: np.ndarray,
    p: int,
    required: np.ndarray,
    lam: np.ndarray,
    *,
    upper_bound: float,
) -> _lagrangian.LagrangianResult:
    m = a.shape[1]
    allowed = np.ones(m, dtype=bool)
    return _lagrangian.subgradient(
        a,
        fixed,
        p=p,
        required=required,
        allowed=allowed,
        upper_bound=upper_bound,
        start=lam,
        deadline=time.perf_counter() + 5,
        max_iterations=1,
        core=_lagrangian.build_core(a, a.max(axis=1), allowed),
    )


@pytest.mark.parametrize("seed", range(6))
def test_raise_bound_keeps_the_optimum_through_reduced_cost_tests(seed: int) -> None:
    """From a poor subgradient start, the raised Lagrangian result is valid (below brute force,
    at least the start) and consistent: its reduced-cost tests keep the optimum's pairs."""
    rng = np.random.default_rng(100 + seed)
    n, m, p = 50, 12, 3
    a = euclidean(rng, n, m)
    fixed = np.zeros(m)
    required = np.empty(0, dtype=np.int64)
    allowed = np.ones(m, dtype=bool)
    best = min(itertools.combinations(range(m), p), key=lambda s: a[:, list(s)].min(axis=1).sum())
    optimum = float(a[:, list(best)].min(axis=1).sum())
    start = lagrangian_at(a, fixed, p, required, a.min(axis=1), upper_bound=optimum)
    lag, lp = _lp_bound.raise_bound(
        a,
        fixed,
        start,
        p=p,
        required=required,
        allowed=allowed,
        open_sites=np.arange(p),
        deadline=time.perf_counter() + 60,
    )
    assert lp.converged
    assert start.bound <= lag.bound <= optimum * (1 + 1e-9)
    assert lag.bound == pytest.approx(direct_lp(a, fixed, p, required), rel=1e-6)
    keep_pairs, keep_cols = _lagrangian.reduced_pairs(
        a, lag, p=p, required=required, allowed=allowed, upper_bound=optimum, eps=1e-6 * optimum
    )
    assert keep_cols[list(best)].all()
    assigned = np.array(best)[np.argmin(a[:, list(best)], axis=1)]
    assert keep_pairs[np.arange(n), assigned].all()


def test_lp_bound_out_of_time_leaves_the_subgradient_result() -> None:
    rng = np.random.default_rng(7)
    a = euclidean(rng, 30, 8)
    m = a.shape[1]
    start = lagrangian_at(
        a, np.zeros(m), 2, np.empty(0, dtype=np.int64), a.min(axis=1), upper_bound=1e9
    )
    lag, lp = _lp_bound.raise_bound(
        a,
        np.zeros(m),
        start,
        p=2,
        required=np.empty(0, dtype=np.int64),
        allowed=np.ones(m, dtype=bool),
        open_sites=np.arange(2),
        deadline=time.perf_counter() - 1.0,
    )
    assert lp.rounds == 0
    assert lp.status == "time_limit"
    assert lag is start


@pytest.mark.parametrize("seed", range(4))
def test_large_path_with_the_lp_bound_is_exact_on_small_instances(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Lagrangian path with the large-instance rounds and the LP bound raised at once
    (after the first round): still the brute-force optimum, and the LP bound is
    recorded."""
    monkeypatch.setattr("planner.models._median.SMALL_PAIRS", 0)
    monkeypatch.setattr("planner.models._median.LARGE_PAIRS", 0)
    monkeypatch.setattr("planner.models._median.LP_BOUND_AFTER", 0.0)
    rng = np.random.default_rng(200 + seed)
    n, m, p = 60, 11, 3
    cost = euclidean(rng, n, m)
    reports = []
    sol = p_median(
        cost, p, np.ones(n), formulation="lagrangian", time_limit=30, progress=reports.append
    )
    optimum = brute_force(cost, np.zeros(m), p, np.empty(0, dtype=np.int64))
    assert sol.optimal
    assert any(r.message == "LP bound" for r in reports)
    bounds = [r.bound for r in reports]
    assert bounds == sorted(bounds)
    assert max(bounds) <= optimum * (1 + 1e-9)
    assert np.isclose(sol.objective, optimum, rtol=1e-9)
    assert sol.extras["lp_bound"] <= optimum * (1 + 1e-9)
    assert sol.extras["lp_bound_rounds"] >= 1


@pytest.mark.parametrize("seed", range(12))
def test_branching_closes_small_instances_at_the_brute_force_optimum(seed: int) -> None:
    """With the optimum as cutoff and time enough, the tree's bound is the optimum (never
    above), from the LP bound (below it on 7 of these 12 random-cost instances)."""
    a, p, required = random_costs(300 + seed, with_required=seed % 3 == 0)
    m = a.shape[1]
    fixed = np.zeros(m)
    optimum = brute_force(a, fixed, p, required)
    start_open = first_open(required, m, p)
    res = _lp_bound.lp_bound(
        a,
        fixed,
        p=p,
        required=required,
        start_levels=[a.min(axis=1)],
        start_open=start_open,
        deadline=time.perf_counter() + 60,
        groups=_lp_bound.group_rows(a, [m, 3][seed % 2]),
        cutoff=optimum,
    )
    assert res.lp_value == pytest.approx(direct_lp(a, fixed, p, required), rel=1e-7)
    assert res.lp_value <= res.bound <= optimum * (1 + 1e-9)
    assert res.bound >= optimum * (1 - 1e-6)
    if res.lp_value < optimum * (1 - 1e-6):
        assert res.nodes > 0


@pytest.mark.parametrize("seed", range(6))
def test_lp_rounding_is_a_swap_local_optimum_on_the_support(seed: int) -> None:
    """From a fractional point: ``p`` sites with the required one, the objective evaluated on
    the matrix, and no single swap inside the support improves it (checked by enumeration);
    from the brute-force optimum as an integral point: that optimum."""
    rng = np.random.default_rng(400 + seed)
    n, m, p = 40, 10, 3
    a = euclidean(rng, n, m)
    fixed = np.zeros(m)
    required = np.array([seed % m]) if seed % 2 else np.empty(0, dtype=np.int64)
    y = rng.random(m)
    y[rng.choice(m, 3, replace=False)] = 0.0  # outside the support
    support = np.union1d(np.flatnonzero(y > 1e-6), required)
    y[required] = 1.0
    allowed = np.ones(m, dtype=bool)
    deadline = time.perf_counter() + 30
    sites, value = _local_search.lp_rounding(
        a, fixed, y, p=p, required=required, allowed=allowed, deadline=deadline
    )
    assert sites.size == p
    assert np.isin(required, sites).all()
    assert value == pytest.approx(_local_search.evaluate(a, fixed, sites), rel=1e-12)
    for out in set(sites.tolist()) - set(required.tolist()):
        for into in set(support.tolist()) - set(sites.tolist()):
            swapped = np.array(sorted((set(sites.tolist()) - {out}) | {into}))
            assert _local_search.evaluate(a, fixed, swapped) >= value * (1 - 1e-12)
    optimum = brute_force(a, fixed, p, required)
    best = next(
        np.array(s)
        for s in itertools.combinations(range(m), p)
        if np.isin(required, s).all()
        and _local_search.evaluate(a, fixed, np.array(s)) == pytest.approx(optimum, rel=1e-12)
    )
    integral = np.zeros(m)
    integral[best] = 1.0
    _, at_optimum = _local_search.lp_rounding(
        a, fixed, integral, p=p, required=required, allowed=allowed, deadline=deadline
    )
    assert at_optimum == pytest.approx(optimum, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
def test_branching_with_lp_rounding_finds_and_proves_the_optimum(seed: int) -> None:
    """Started with a poor incumbent as cutoff, the rounding at the root and the nodes lowers
    the cutoff to the brute-force optimum, and the tree proves it (bound = optimum)."""
    a, p, required = random_costs(500 + seed, with_required=seed % 3 == 0)
    m = a.shape[1]
    fixed = np.zeros(m)
    optimum = brute_force(a, fixed, p, required)
    start_open = first_open(required, m, p)
    deadline = time.perf_counter() + 60
    found = [_local_search.evaluate(a, fixed, start_open)]

    def rounding(y: np.ndarray) -> float:
        _, value = _local_search.lp_rounding(
            a, fixed, y, p=p, required=required, allowed=np.ones(m, dtype=bool), deadline=deadline
        )
        found.append(value)
        return min(found)

    res = _lp_bound.lp_bound(
        a,
        fixed,
        p=p,
        required=required,
        start_levels=[a.min(axis=1)],
        start_open=start_open,
        deadline=deadline,
        cutoff=found[0],
        on_point=rounding,
    )
    assert len(found) >= 2  # the root at least
    assert min(found) == pytest.approx(optimum, rel=1e-12)
    assert res.bound == pytest.approx(optimum, rel=1e-9)
