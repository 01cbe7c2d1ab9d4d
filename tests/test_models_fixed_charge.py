"""Fixed-charge and capacitated models against brute force."""

from __future__ import annotations

import importlib
import itertools
import time

import numpy as np
import pytest

from planner.errors import InfeasibleError
from planner.models import SolveProgress, capacitated_p_median, fixed_charge, p_median


def instance(seed: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 8))
    m = int(rng.integers(1, 6))
    cost = rng.uniform(60, 3600, size=(n, m))
    if seed % 3 == 0:
        cost[rng.random((n, m)) < 0.2] = np.inf
        cost[:, 0] = rng.uniform(60, 3600, size=n)  # keep everyone reachable
    weights = rng.integers(1, 5, size=n).astype(float)
    fixed = rng.uniform(0, 20000, size=m)
    return cost, weights, fixed


def brute_force_assign(cost, weights, cap, open_sites, time_value):
    """Best single-sourcing assignment to open sites within capacities (None if none)."""
    n = cost.shape[0]
    best = None
    for choice in itertools.product(open_sites, repeat=n):
        load = dict.fromkeys(open_sites, 0.0)
        ok = True
        total = 0.0
        for i, j in enumerate(choice):
            if not np.isfinite(cost[i, j]):
                ok = False
                break
            load[j] += weights[i]
            total += time_value * weights[i] * cost[i, j]
        if ok and all(load[j] <= cap[j] + 1e-9 for j in open_sites):
            best = total if best is None else min(best, total)
    return best


def forbid_the_mip(monkeypatch: pytest.MonkeyPatch):
    """Make building the single-sourcing MIP fail the test; returns the solver's module."""
    module = importlib.import_module("planner.models._single_source")

    def no_mip(*_, **__):
        raise AssertionError("the capacitated MIP was built")

    monkeypatch.setattr(module, "solve_mip", no_mip)
    return module


@pytest.mark.parametrize("seed", range(40))
def test_fixed_charge_matches_brute_force(seed: int) -> None:
    cost, weights, fixed = instance(seed)
    m = cost.shape[1]
    tv = 3.0
    required = {m - 1} if seed % 4 == 0 else set()
    best = np.inf
    for size in range(1, m + 1):
        for s in itertools.combinations(range(m), size):
            if not required <= set(s):
                continue
            near = cost[:, list(s)].min(axis=1)
            if not np.isfinite(near).all():
                continue
            best = min(best, fixed[list(s)].sum() + tv * (weights * near).sum())
    sol = fixed_charge(cost, fixed, weights, time_value=tv, required=sorted(required))
    assert sol.optimal
    assert np.isclose(sol.objective, best, rtol=1e-9)
    assert required <= set(sol.open.tolist())
    assert np.isclose(
        sol.extras["fixed_cost_total"] + sol.extras["travel_cost_total"], sol.objective
    )


@pytest.mark.parametrize("seed", range(25))
def test_capacitated_models_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(500 + seed)
    n = int(rng.integers(1, 6))
    m = int(rng.integers(1, 5))
    cost = rng.uniform(60, 3600, size=(n, m))
    weights = rng.integers(1, 4, size=n).astype(float)
    cap = rng.integers(2, 8, size=m).astype(float)
    fixed = rng.uniform(0, 5000, size=m)
    # fixed charge with capacities
    best = None
    for size in range(1, m + 1):
        for s in itertools.combinations(range(m), size):
            val = brute_force_assign(cost, weights, cap, list(s), 1.0)
            if val is not None:
                val += fixed[list(s)].sum()
                best = val if best is None else min(best, val)
    if best is None:
        with pytest.raises(InfeasibleError):
            fixed_charge(cost, fixed, weights, capacity=cap)
    else:
        sol = fixed_charge(cost, fixed, weights, capacity=cap)
        assert sol.optimal
        assert np.isclose(sol.objective, best, rtol=1e-7)
        load = np.bincount(sol.assignment, weights=weights, minlength=m)
        assert (load <= cap + 1e-9).all()
        assert set(np.unique(sol.assignment)) <= set(sol.open.tolist())
    # capacitated p-median
    p = int(rng.integers(1, m + 1))
    best = None
    for s in itertools.combinations(range(m), p):
        val = brute_force_assign(cost, weights, cap, list(s), 1.0)
        if val is not None:
            best = val if best is None else min(best, val)
    if best is None:
        with pytest.raises(InfeasibleError):
            capacitated_p_median(cost, p, cap, weights)
    else:
        sol = capacitated_p_median(cost, p, cap, weights)
        assert sol.optimal
        assert sol.open.size == p
        assert np.isclose(sol.objective, best, rtol=1e-7)
        load = np.bincount(sol.assignment, weights=weights, minlength=m)
        assert (load <= cap + 1e-9).all()


def test_capacity_message() -> None:
    cost = np.ones((3, 2))
    with pytest.raises(InfeasibleError, match="capacity 1,200 < demand 1,650"):
        fixed_charge(cost, 0.0, [600, 600, 450], capacity=[700, 500])
    with pytest.raises(InfeasibleError, match="more demand than any site"):
        fixed_charge(cost, 0.0, [900, 100, 100], capacity=[800, 800])


def test_unreachable_customers_named() -> None:
    cost = np.array([[1.0, 2.0], [np.inf, np.inf]])
    with pytest.raises(InfeasibleError, match="rows 1"):
        fixed_charge(cost, 10.0)


def test_uncapacitated_lagrangian_path_matches_direct_mip() -> None:
    """A fixed-charge instance big enough for the Lagrangian path agrees with the plain MIP."""
    from planner.models import _mip

    rng = np.random.default_rng(11)
    n, m = 200, 40
    cost = np.linalg.norm(rng.random((n, 1, 2)) - rng.random((1, m, 2)), axis=2) * 3600
    weights = rng.integers(1, 6, size=n).astype(float)
    fixed = rng.uniform(5_000, 20_000, size=m)
    sol = fixed_charge(cost, fixed, weights, time_value=0.5, required=[3], excluded=[4])
    assert "Lagrangian" in sol.solver
    a = 0.5 * weights[:, None] * cost
    pairs = _mip.PairSet.from_mask(a, np.ones_like(a, dtype=bool))
    ref, _, _ = _mip.location_mip(
        pairs,
        fixed,
        p=None,
        fixed_open=np.array([3]),
        fixed_closed=np.array([4]),
        time_limit=60,
    )
    assert ref.optimal
    assert sol.optimal
    assert np.isclose(sol.objective, ref.objective, rtol=1e-7)
    assert 3 in sol.open.tolist()
    assert 4 not in sol.open.tolist()


@pytest.mark.parametrize("seed", range(40))
def test_fixed_charge_lagrangian_path_on_tiny_instances(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the Lagrangian + reduced-cost path (normally for larger instances): still exact."""
    monkeypatch.setattr("planner.models._median.SMALL_PAIRS", 0)
    test_fixed_charge_matches_brute_force(seed)


def test_capacity_greedy_respects_capacities_and_serves_everyone() -> None:
    from planner.models._single_source import _assign, _Problem

    rng = np.random.default_rng(3)
    placed = 0
    for _ in range(50):
        n, m = 12, 4
        cost = rng.random((n, m)) * 100
        w = rng.integers(1, 4, n).astype(float)
        cap = np.full(m, w.sum() / 2.5)
        prob = _Problem(cost, w, np.zeros((m, 1)), cap[:, None], None, np.array([], int))
        cap_open = np.where(np.isin(np.arange(m), [0, 2, 3]), cap, 0.0)
        got = _assign(prob, cap_open)
        if got is None:
            continue
        placed += 1
        assert set(got) <= {0, 2, 3}
        load = np.bincount(got, weights=w, minlength=m)
        assert (load <= cap_open + 1e-9).all()
    assert placed > 40


@pytest.mark.slow
def test_tight_capacities_at_scale_return_a_feasible_answer_with_a_real_gap() -> None:
    """With a short time limit the answer is feasible, the limit kept and the proven gap
    meaningful (HiGHS alone stops far from both)."""
    rng = np.random.default_rng(1)
    n, m, p = 2000, 40, 8
    xy_c = rng.random((n, 2)) * 20000
    xy_s = rng.random((m, 2)) * 20000
    cost = np.hypot(*(xy_c[:, None, :] - xy_s[None, :, :]).transpose(2, 0, 1)) / 10
    w = rng.integers(1, 4, n).astype(float)
    cap = np.full(m, w.sum() / p * 1.05)
    t0 = time.perf_counter()
    sol = capacitated_p_median(cost, p, cap, w, time_limit=8)
    assert time.perf_counter() - t0 < 8 * 1.3  # HiGHS stops a little after its limit
    load = np.bincount(sol.assignment, weights=w, minlength=m)
    assert (load <= cap + 1e-9).all()
    assert len(sol.open) == p
    assert (sol.assignment >= 0).all()
    uncapacitated = p_median(cost, p, w)
    # the capacitated bound starts from the uncapacitated multipliers: near that optimum
    assert sol.lower_bound >= 0.98 * uncapacitated.objective
    assert sol.objective >= sol.lower_bound
    assert sol.gap < 0.1


def test_capacitated_reports_progress_and_stops_with_a_feasible_answer() -> None:
    rng = np.random.default_rng(5)
    n, m, p = 50, 10, 3
    cost = rng.uniform(60, 3600, size=(n, m))
    w = rng.integers(1, 4, n).astype(float)
    cap = np.full(m, w.sum() / p * 1.1)
    reports: list[SolveProgress] = []
    full = capacitated_p_median(cost, p, cap, w, progress=reports.append)
    assert full.optimal
    assert reports
    bounds = [r.bound for r in reports]
    assert bounds == sorted(bounds)
    assert all(r.bound <= full.objective + 1e-6 for r in reports)
    assert all(r.objective >= full.objective - 1e-6 for r in reports)
    # a stop request once the relaxation is done: the capacity-respecting start, its gap
    calls = {"n": 0}

    def stop_soon() -> bool:
        calls["n"] += 1
        return calls["n"] > 3

    stopped = capacitated_p_median(cost, p, cap, w, should_stop=stop_soon)
    assert stopped.status == "stopped"
    load = np.bincount(stopped.assignment, weights=w, minlength=m)
    assert (load <= cap + 1e-9).all()
    assert stopped.open.size == p
    assert stopped.lower_bound <= full.objective + 1e-6 <= stopped.objective + 1e-6
    assert stopped.optimal == (stopped.gap == 0.0)


def test_loose_capacities_return_the_uncapacitated_optimum() -> None:
    """When the uncapacitated optimum fits the capacities it is the capacitated optimum, proven
    (customers without demand go to their nearest open site)."""
    rng = np.random.default_rng(7)
    n, m, p = 30, 6, 2
    cost = rng.uniform(60, 3600, size=(n, m))
    cost[rng.random((n, m)) < 0.2] = np.inf
    cost[:, 0] = rng.uniform(60, 3600, size=n)
    weights = rng.integers(1, 4, size=n).astype(float)
    weights[:3] = 0.0
    cap = np.full(m, weights.sum())
    sol = capacitated_p_median(cost, p, cap, weights)
    best = min(
        float((weights * cost[:, list(s)].min(axis=1)).sum())
        for s in itertools.combinations(range(m), p)
        if np.isfinite(cost[:, list(s)].min(axis=1)).all()
    )
    assert sol.optimal
    assert sol.objective == pytest.approx(best, rel=1e-9)
    near = sol.open[np.argmin(cost[:, sol.open], axis=1)]
    assert np.array_equal(sol.assignment[:3], near[:3])
    assert sol.extras["travel_cost_total"] == pytest.approx(sol.objective, rel=1e-12)
    fixed = rng.uniform(0, 5000, size=m)
    sol = fixed_charge(cost, fixed, weights, capacity=cap)
    assert sol.optimal
    assert sol.objective == pytest.approx(fixed_charge(cost, fixed, weights).objective, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_light_presolve_of_large_mips_keeps_the_optimum(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above ``FULL_PRESOLVE_MAX_COLS`` columns HiGHS runs its light presolve (the full one
    ignores the time limit on large models): with the threshold at 0, tight-capacity instances
    still reach the brute-force optimum, and the option is really set."""
    from planner.models import _mip

    created = []
    new_highs = _mip._new_highs

    def spy():
        h = new_highs()
        created.append(h)
        return h

    monkeypatch.setattr(_mip, "FULL_PRESOLVE_MAX_COLS", 0)
    monkeypatch.setattr(_mip, "_new_highs", spy)
    # the Lagrangian bound alone may prove these: make the solve go on to the MIP
    monkeypatch.setattr("planner.models._single_source.OPTIMALITY_GAP", -1.0)
    rng = np.random.default_rng(900 + seed)
    n, m, p = 6, 4, 2
    cost = rng.uniform(60, 3600, size=(n, m))
    weights = rng.integers(1, 4, size=n).astype(float)
    cap = np.full(m, 0.6 * weights.sum())  # binds: no site takes everyone
    best = min(
        v
        for s in itertools.combinations(range(m), p)
        if (v := brute_force_assign(cost, weights, cap, list(s), 1.0)) is not None
    )
    sol = capacitated_p_median(cost, p, cap, weights)
    assert sol.optimal
    assert sol.objective == pytest.approx(best, rel=1e-7)
    # highspy returns (status, value) here
    modes = [np.atleast_1d(h.getOptionValue("presolve_mode"))[-1] for h in created]
    assert 2 in modes


def test_capacitated_mip_beyond_its_pair_limit_keeps_the_first_answer_and_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above ``MIP_MAX_PAIRS`` pairs left after fixing, the MIP is not built: the answer is
    the local search's (within capacities), its bound the Lagrangian one, and the gap
    brackets the brute-force optimum."""
    monkeypatch.setattr(forbid_the_mip(monkeypatch), "MIP_MAX_PAIRS", -1)
    monkeypatch.setattr("planner.models._single_source.OPTIMALITY_GAP", -1.0)
    rng = np.random.default_rng(27)
    n, m, p = 7, 4, 2
    cost = rng.uniform(60, 3600, size=(n, m))
    weights = rng.integers(1, 4, size=n).astype(float)
    cap = np.full(m, 0.55 * weights.sum())  # binds at the relaxation's sites here
    best = min(
        v
        for s in itertools.combinations(range(m), p)
        if (v := brute_force_assign(cost, weights, cap, list(s), 1.0)) is not None
    )
    sol = capacitated_p_median(cost, p, cap, weights)
    assert sol.status == "mip_too_large"
    assert not sol.optimal
    assert sol.extras["mip_status"].startswith("skipped")
    assert sol.open.size == p
    load = np.bincount(sol.assignment, weights=weights, minlength=m)
    assert (load <= cap + 1e-9).all()
    assert sol.lower_bound <= best * (1 + 1e-9)
    assert sol.objective >= best * (1 - 1e-9)
    assert sol.objective == pytest.approx(
        float((weights * cost[np.arange(n), sol.assignment]).sum()), rel=1e-12
    )
