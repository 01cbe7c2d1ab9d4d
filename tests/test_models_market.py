"""max_capture: exact against brute force for every objective, bounds at any stop, bad input."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.errors import InfeasibleError, InputError
from planner.models import SolveProgress, max_capture


def captured(u: np.ndarray, o: np.ndarray, w: np.ndarray, subset) -> float:
    util = u[:, list(subset)].sum(axis=1)
    return float(np.sum(w * util / (o + util)))


def subsets(m: int, sizes, required=frozenset(), excluded=frozenset()):
    for k in sizes:
        for s in itertools.combinations(range(m), k):
            if set(required) <= set(s) and not set(s) & set(excluded):
                yield s


def brute_p(u, o, w, p, *, required=frozenset(), excluded=frozenset()) -> float:
    return max(captured(u, o, w, s) for s in subsets(u.shape[1], [p], required, excluded))


def brute_target(u, o, w, share, *, required=frozenset(), excluded=frozenset()):
    """(fewest sites, most jobs with that many) reaching ``share`` of all jobs."""
    need = share * w.sum()
    for k in range(max(len(required), 1), u.shape[1] + 1):
        vals = [captured(u, o, w, s) for s in subsets(u.shape[1], [k], required, excluded)]
        ok = [v for v in vals if v >= need - 1e-9 * max(need, 1.0)]
        if ok:
            return k, max(ok)
    raise AssertionError("unreachable target")


def brute_profit(u, o, w, fixed, margin, *, p_max=None, required=frozenset(), excluded=frozenset()):
    m = u.shape[1]
    sizes = range(1, (p_max or m) + 1)
    return max(
        margin * captured(u, o, w, s) - float(fixed[list(s)].sum())
        for s in subsets(m, sizes, required, excluded)
    )


def instance(rng: np.random.Generator, n: int, m: int, *, zeros: float = 0.3):
    """Random utilities with unreachable (zero) entries, outside attraction and weights."""
    u = rng.uniform(0.0, 2.0, size=(n, m)) ** 2
    u[rng.random((n, m)) < zeros] = 0.0
    o = rng.uniform(0.2, 3.0, size=n)
    w = rng.integers(0, 6, size=n).astype(float)
    return u, o, w


def sides(rng: np.random.Generator, m: int):
    """Random required / excluded sets that do not overlap."""
    perm = rng.permutation(m)
    n_req = int(rng.integers(0, 2))
    n_exc = int(rng.integers(0, 3))
    return set(perm[:n_req].tolist()), set(perm[n_req : n_req + n_exc].tolist())


def assert_close(a: float, b: float) -> None:
    assert a == pytest.approx(b, rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("seed", range(12))
def test_p_mode_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(3, 25)), int(rng.integers(2, 9))
    u, o, w = instance(rng, n, m)
    req, exc = sides(rng, m)
    for p in range(max(len(req), 1), m - len(exc) + 1):
        sol = max_capture(u, p, w, outside=o, required=req, excluded=exc, time_limit=20)
        best = brute_p(u, o, w, p, required=req, excluded=exc)
        assert sol.optimal
        assert sol.status == "optimal"
        assert sol.n_open == p
        assert req <= set(sol.open.tolist())
        assert not exc & set(sol.open.tolist())
        assert_close(sol.objective, best)
        assert_close(sol.objective, captured(u, o, w, sol.open))
        assert sol.upper_bound is not None
        assert sol.upper_bound >= best - 1e-7
        assert sol.lower_bound == sol.objective
        assert sol.gap == 0.0
        assert sol.maximize
        assert sol.bound == sol.upper_bound


@pytest.mark.parametrize("seed", range(10))
def test_target_share_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n, m = int(rng.integers(3, 20)), int(rng.integers(2, 8))
    u, o, w = instance(rng, n, m)
    if w.sum() == 0:
        w[0] = 1.0
    req, exc = sides(rng, m)
    allowed = [j for j in range(m) if j not in exc]
    best_share = captured(u, o, w, allowed) / w.sum()
    share = float(rng.uniform(0.1, 1.0)) * best_share
    sol = max_capture(
        u, None, w, outside=o, target_share=share, required=req, excluded=exc, time_limit=20
    )
    k, best = brute_target(u, o, w, share, required=req, excluded=exc)
    assert sol.optimal
    assert sol.extras["min_sites_proven"]
    assert sol.n_open == k
    assert_close(sol.objective, best)
    assert sol.extras["share"] >= share * (1 - 1e-9)


@pytest.mark.parametrize("seed", range(12))
def test_profit_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    n, m = int(rng.integers(3, 25)), int(rng.integers(2, 8))
    u, o, w = instance(rng, n, m)
    req, exc = sides(rng, m)
    fixed = rng.uniform(0.0, 4.0, size=m)
    margin = float(rng.uniform(0.5, 3.0))
    p_max = None if seed % 2 else int(rng.integers(max(len(req), 1), m - len(exc) + 1))
    sol = max_capture(
        u,
        p_max,
        w,
        outside=o,
        fixed_cost=fixed,
        margin=margin,
        required=req,
        excluded=exc,
        time_limit=20,
    )
    best = brute_profit(u, o, w, fixed, margin, p_max=p_max, required=req, excluded=exc)
    assert sol.optimal
    assert_close(sol.objective, best)
    value = margin * captured(u, o, w, sol.open) - fixed[sol.open].sum()
    assert_close(sol.objective, value)
    assert sol.extras["profit"] == sol.objective
    assert 1 <= sol.n_open <= (p_max or m)
    assert req <= set(sol.open.tolist())
    assert not exc & set(sol.open.tolist())


def test_unreachable_customers_and_assignment() -> None:
    """A customer with zero utility everywhere is never won; assignment is the most attractive
    open site (-1 where none attracts); per-site jobs add up to the capture."""
    u = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 0.0, 1.0]])
    o = np.array([1.0, 1.0, 1.0, 2.0])
    w = np.array([2.0, 1.0, 5.0, 1.0])
    sol = max_capture(u, 2, w, outside=o)
    assert_close(sol.objective, brute_p(u, o, w, 2))
    assert sol.extras["total_jobs"] == 9.0
    assert sol.assignment[2] == -1
    for i in range(4):
        row = u[i, sol.open]
        assert sol.assignment[i] == (-1 if row.max() == 0 else sol.open[int(np.argmax(row))])
    assert_close(float(np.sum(sol.extras["site_jobs"])), sol.objective)
    # marginal jobs: capture minus the capture without that site
    for j, marginal in zip(sol.open, sol.extras["site_marginal_jobs"], strict=True):
        rest = [s for s in sol.open if s != j]
        assert_close(marginal, sol.objective - captured(u, o, w, rest))


def test_target_share_counts_customers_that_cannot_be_won() -> None:
    """The share is of all jobs, those of customers no site attracts included."""
    u = np.array([[1.0, 0.2, 0.0], [0.1, 1.0, 0.3], [0.0, 0.0, 0.0]])
    o = np.array([1.0, 1.0, 1.0])
    w = np.array([1.0, 1.0, 8.0])
    share = 0.09
    sol = max_capture(u, None, w, outside=o, target_share=share)
    k, best = brute_target(u, o, w, share)
    assert sol.n_open == k
    assert sol.extras["share"] >= share
    assert_close(sol.objective, best)


def test_identical_customers_are_merged_without_changing_the_answer() -> None:
    rng = np.random.default_rng(5)
    u, o, w = instance(rng, 6, 6, zeros=0.0)
    w[:] = 1.0
    u2, o2, w2 = np.repeat(u, 3, axis=0), np.repeat(o, 3), np.repeat(w, 3)
    sol = max_capture(u2, 3, w2, outside=o2)
    assert sol.extras["customer_groups"] == 6
    assert_close(sol.objective, 3 * brute_p(u, o, w, 3))
    assert sol.assignment.size == 18


def test_bound_is_never_below_the_optimum_at_any_stop() -> None:
    """Stopped after 1, 2, 4, ... polls, the answer is feasible and its upper bound is at least
    the brute-force optimum."""
    rng = np.random.default_rng(11)
    u, o, w = instance(rng, 60, 12, zeros=0.1)
    best = brute_p(u, o, w, 4)
    seen = []
    for polls in (1, 2, 4, 8, 16, 64, 256):
        count = [0]

        def stop(count=count, polls=polls) -> bool:
            count[0] += 1
            return count[0] > polls

        reports: list[SolveProgress] = []
        sol = max_capture(u, 4, w, outside=o, should_stop=stop, progress=reports.append)
        assert sol.n_open == 4
        assert_close(sol.objective, captured(u, o, w, sol.open))
        assert sol.objective <= best + 1e-9
        assert sol.upper_bound >= best - 1e-9
        assert sol.gap >= 0
        # progress bounds (of the lost jobs, minimised) never decrease and never pass the optimum
        bounds = [r.bound for r in reports]
        assert all(b2 >= b1 for b1, b2 in itertools.pairwise(bounds))
        assert all(b <= w.sum() - best + 1e-7 for b in bounds)
        seen.append(sol.status)
    assert "stopped" in seen


def test_time_limit_is_respected() -> None:
    rng = np.random.default_rng(3)
    n, m = 1500, 150
    xy = rng.uniform(0, 100, size=(n + m, 2))
    d = np.linalg.norm(xy[:n, None] - xy[None, n:], axis=2)
    u = np.exp(-0.05 * d)
    o = rng.uniform(0.1, 1.0, size=n)
    t0 = time.perf_counter()
    sol = max_capture(u, 12, outside=o, time_limit=0.5)
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0
    assert sol.n_open == 12
    assert sol.upper_bound >= sol.objective
    if not sol.optimal:
        assert sol.status == "time_limit"
        assert sol.gap > 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 12),
    m=st.integers(1, 6),
    data=st.data(),
)
def test_property_p_mode(seed: int, n: int, m: int, data) -> None:
    rng = np.random.default_rng(seed)
    u, o, w = instance(rng, n, m, zeros=0.5)
    p = data.draw(st.integers(1, m))
    sol = max_capture(u, p, w, outside=o, time_limit=20)
    best = brute_p(u, o, w, p)
    assert sol.optimal
    assert_close(sol.objective, best)
    assert sol.upper_bound >= best - 1e-7


def test_objective_is_monotone_in_p() -> None:
    rng = np.random.default_rng(8)
    u, o, w = instance(rng, 40, 10, zeros=0.2)
    values = [max_capture(u, p, w, outside=o).objective for p in range(1, 11)]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(values))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"utility": [[1.0, -1.0]], "p": 1, "outside": [1.0]}, InputError, "negative"),
        ({"utility": [[1.0, np.nan]], "p": 1, "outside": [1.0]}, InputError, "finite"),
        ({"utility": [1.0, 2.0], "p": 1, "outside": [1.0]}, InputError, "2-D"),
        ({"utility": [[1.0, 2.0]], "p": 1, "outside": [0.0]}, InputError, "outside"),
        ({"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0, 2.0]}, InputError, "outside has"),
        (
            {"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0], "weights": [1.0, 2.0]},
            InputError,
            "weights has 2 entries but utility has 1 customer rows",
        ),
        ({"utility": [[1.0, 2.0]], "outside": [1.0]}, InputError, "say what to optimise"),
        ({"utility": [[1.0, 2.0]], "p": 3, "outside": [1.0]}, InfeasibleError, "p=3"),
        (
            {"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0], "required": [0], "excluded": [0]},
            InfeasibleError,
            "both required and excluded",
        ),
        (
            {"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0], "fixed_cost": [1.0, 1.0]},
            InputError,
            "both fixed_cost and margin",
        ),
        (
            {"utility": [[1.0, 2.0]], "outside": [1.0], "fixed_cost": 1.0, "margin": -1.0},
            InputError,
            "margin",
        ),
        (
            {"utility": [[1.0, 2.0]], "outside": [1.0], "target_share": 0.9},
            InfeasibleError,
            "cannot be reached",
        ),
        (
            {"utility": [[1.0, 2.0]], "outside": [1.0], "target_share": 1.5},
            InputError,
            "target_share",
        ),
        (
            {"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0], "target_share": 0.5},
            InputError,
            "do not pass p",
        ),
        (
            {"utility": [[1.0, 2.0]], "p": 1, "outside": [1.0], "time_limit": 0},
            InputError,
            "time_limit",
        ),
    ],
)
def test_bad_input_is_rejected_before_solving(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        max_capture(**kwargs)


def test_zero_weights_and_nobody_to_win() -> None:
    u = np.zeros((3, 4))
    sol = max_capture(u, 2, outside=np.ones(3), required=[3])
    assert sol.optimal
    assert sol.objective == 0.0
    assert sol.n_open == 2
    assert 3 in sol.open
    sol = max_capture(u, None, outside=np.ones(3), fixed_cost=[3.0, 1.0, 2.0, 5.0], margin=1.0)
    assert sol.optimal
    assert sol.objective == -1.0
    assert sol.open.tolist() == [1]


@pytest.mark.parametrize("p", [None, 2, 3])
def test_every_cut_is_valid_at_every_open_set(p) -> None:
    """Tangent cuts (at fractional points) and submodular cuts (at open sets) never cut off
    an open set's true lost jobs: the outer approximation only ever over-estimates capture."""
    from planner.models._market import CaptureProblem, _Cuts

    rng = np.random.default_rng(21 if p is None else p)
    n, m = 9, 6
    u, o, w = instance(rng, n, m, zeros=0.3)
    w[w == 0] = 1.0
    prob = CaptureProblem(u, o, w, np.zeros(m))
    cuts = _Cuts(prob, p, np.zeros(m), np.arange(n), p_max=None if p else 4)
    sizes = [p] if p else range(1, 5)
    sets = [np.array(s, dtype=np.intp) for s in subsets(m, sizes)]
    points = [rng.random(m) for _ in range(5)] + [None]
    for y0 in points:
        if y0 is None:
            coef, rhs = cuts.gradient(np.ones(m) * (p or 2) / m)
        else:
            coef, rhs = cuts.gradient(y0)
        for t in sets:
            y = np.zeros(m)
            y[t] = 1.0
            true_lost = prob.lost(u[:, t].sum(axis=1))
            assert np.all(rhs - coef @ y <= true_lost + 1e-9)
    any_sets = [np.array(s, dtype=np.intp) for s in subsets(m, range(m + 1))]
    for s in any_sets[::3]:
        coef, rhs = cuts.submodular(s)
        for t in sets:
            y = np.zeros(m)
            y[t] = 1.0
            true_lost = prob.lost(u[:, t].sum(axis=1))
            assert np.all(rhs - coef @ y <= true_lost + 1e-9), (s, t)


@pytest.mark.parametrize("p", [None, 3])
def test_grouped_cuts_are_the_group_sums_of_the_customers_cuts(p) -> None:
    """The separation in the tree builds each group's cut without the k x m per-customer
    coefficients; it must equal the sum of the customers' own cuts (tangent and submodular)."""
    from planner.models._market import CaptureProblem, _Cuts, _groups

    rng = np.random.default_rng(5)
    n, m = 40, 9
    u, o, w = instance(rng, n, m, zeros=0.3)
    w[w == 0] = 1.0
    prob = CaptureProblem(u, o, w, np.zeros(m))
    cuts = _Cuts(prob, p, np.zeros(m), _groups(prob, 6), p_max=None if p else 4)
    assert cuts.n_groups == 6
    for y0 in [rng.random(m) for _ in range(3)]:
        coef, rhs = cuts.gradient(y0)
        g_coef, g_rhs = cuts.grouped_gradient(y0)
        np.testing.assert_allclose(g_coef, cuts.agg @ coef, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g_rhs, cuts.agg @ rhs, rtol=1e-12, atol=1e-14)
    for s in ([], [0], [2, 5, 7], list(range(m))):
        coef, rhs = cuts.submodular(np.array(s, dtype=np.intp))
        g_coef, g_rhs = cuts.grouped_submodular(np.array(s, dtype=np.intp))
        np.testing.assert_allclose(g_coef, cuts.agg @ coef, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(g_rhs, cuts.agg @ rhs, rtol=1e-12, atol=1e-14)


def test_capture_problem_keeps_utilities_row_major() -> None:
    """The restricted problem takes a column subset of ``u`` (column-major in numpy); the
    problem stores it row-major, with the same values."""
    from planner.models._market import CaptureProblem

    u = np.arange(24, dtype=float).reshape(4, 6)
    sub = u[:, [0, 2, 5]]
    assert not sub.flags.c_contiguous
    prob = CaptureProblem(sub, np.ones(4), np.ones(4), np.zeros(3))
    assert prob.u.flags.c_contiguous
    np.testing.assert_array_equal(prob.u, sub)


def spatial(seed: int, n: int, m: int, beta: float):
    """A bench-like spatial instance: exp(-beta d) utilities in a 10 x 10 square, outside =
    two competitors plus not coming (``benchmarks/bench_market.py``'s generator)."""
    rng = np.random.default_rng(seed)
    cust = rng.uniform(0, 10, (n, 2))
    sites = rng.uniform(0, 10, (m, 2))
    comp = rng.uniform(0, 10, (2, 2))
    u = np.exp(-beta * np.linalg.norm(cust[:, None] - sites[None], axis=2))
    o = np.exp(-beta * np.linalg.norm(cust[:, None] - comp[None], axis=2)).sum(axis=1)
    return u, o + np.exp(-2.5 * beta), rng.integers(1, 11, n).astype(float)


def test_restriction_to_the_sites_left_after_fixing_keeps_the_optimum() -> None:
    """After the root, a problem whose reduced-cost fixing closes most sites is solved again on
    the others: on instances where that happens, the answer is still the enumerated optimum
    and the bound never above it, for p and profit modes."""
    restricted = 0
    for seed in range(5):
        u, o, w = spatial(seed, 70, 13, 1.0 + 0.25 * (seed % 3))
        for p in (2, 3, 4):
            sol = max_capture(u, p, w, outside=o, time_limit=30)
            best = brute_p(u, o, w, p)
            assert sol.optimal
            assert_close(sol.objective, best)
            assert sol.upper_bound >= best - 1e-7
            restricted += "restricted_columns" in sol.extras
        fixed = np.full(13, 3.0)
        sol = max_capture(u, None, w, outside=o, fixed_cost=fixed, margin=1.0, time_limit=30)
        assert sol.optimal
        assert_close(sol.objective, brute_profit(u, o, w, fixed, 1.0))
        restricted += "restricted_columns" in sol.extras
    assert restricted >= 2  # the restricted path ran (and gave the optimum)


def hm14_like(seed: int, n: int, m: int, alpha: float, beta: float):
    """Haase and Mueller's instances as the literature runs them
    (``benchmarks/bench_market_hm14.py``, but L1 distances): a 30 x 30 square, one competitor
    with utility ``exp(-alpha beta k)``, every row divided by it. With ``beta`` 5 the utilities
    span about 1e-90 to 1e17 against an outside option of 1."""
    rng = np.random.default_rng(seed)
    comp, sites, cust = (30.0 * rng.random((k, 2)) for k in (1, m, n))
    c = np.abs(cust[:, None] - sites[None]).sum(axis=2)
    k = np.abs(cust - comp).sum(axis=1)
    return np.exp(-beta * c + alpha * beta * k[:, None]), np.ones(n), np.ones(n)


def test_coefficient_reduction_keeps_cuts_valid_and_tightens_them() -> None:
    """Tangent coefficients are cut to ``rhs - floor`` (the fewest jobs a customer can be
    lost with): still valid at every open set, never larger than that, and deeper than the
    plain tangent at fractional points where a single site would take the tangent below
    the floor."""
    from planner.models._market import CaptureProblem, _Cuts

    rng = np.random.default_rng(8)
    n, m, p = 12, 7, 3
    u, o, w = hm14_like(3, n, m, 0.2, 1.0)
    prob = CaptureProblem(u, o, w, np.zeros(m))
    cuts = _Cuts(prob, p, np.zeros(m), np.arange(n))
    best = np.sort(u, axis=1)[:, ::-1][:, :p].sum(axis=1)
    np.testing.assert_allclose(cuts.floor, prob.lost(best))
    sets = [np.array(s, dtype=np.intp) for s in subsets(m, [p])]
    assert min(prob.lost(u[:, t].sum(axis=1)).min() for t in sets) >= cuts.floor.min() - 1e-12
    deeper = 0
    for _ in range(6):
        y = rng.random(m)
        y *= p / y.sum()
        coef, rhs = cuts.gradient(y)
        assert np.all(coef <= np.maximum(rhs - cuts.floor, 0.0)[:, None] + 1e-12)
        for t in sets:
            yy = np.zeros(m)
            yy[t] = 1.0
            assert np.all(rhs - coef @ yy <= prob.lost(u[:, t].sum(axis=1)) + 1e-9)
        d = o + u @ y
        plain = (w * o / d**2)[:, None] * u
        assert np.all(rhs - coef @ y >= rhs - plain @ y - 1e-12)
        deeper += int(np.sum(rhs - coef @ y > rhs - plain @ y + 1e-9))
    assert deeper > 0


def test_sum_of_others_keeps_the_small_entries_beside_a_huge_one() -> None:
    from planner.models._base import sum_of_others

    rng = np.random.default_rng(2)
    cols = rng.random((5, 6))
    expected = np.array([[row.sum() - row[j] for j in range(6)] for row in cols])
    np.testing.assert_allclose(sum_of_others(cols), expected, rtol=1e-12)
    big = np.array([[1e30, 1.0, 2.0], [3.0, 1e17, 0.0]])
    np.testing.assert_array_equal(sum_of_others(big), [[3.0, 1e30, 1e30], [1e17, 3.0, 1e17 + 3]])
    assert sum_of_others(np.zeros((4, 0))).shape == (4, 0)


def test_local_search_returns_the_true_value_of_its_answer() -> None:
    """Swaps on utilities from 1e-90 to 1e17: the value returned is the open set's own
    (before, a running sum lost the small utilities when a huge one was taken out, and the
    solver proved optimal an answer 0.24 % worse than claimed)."""
    from planner.models._market import CaptureProblem, local_search

    for seed in range(4):  # seed 0 was 0.9 % off
        u, o, w = hm14_like(seed, 200, 30, 0.2, 10.0)
        prob = CaptureProblem(u, o, w, np.zeros(30))
        start = np.random.default_rng(seed).choice(30, 6, replace=False)
        found, value = local_search(prob, start, p=6, required=np.zeros(0, dtype=np.intp))
        assert value == pytest.approx(prob.value(found), rel=1e-12)
        assert value <= prob.value(np.sort(start)) * (1 + 1e-12)


@pytest.mark.parametrize("beta", [5.0, 10.0])
def test_utilities_spanning_a_hundred_orders_of_magnitude_are_solved_exactly(beta) -> None:
    """Haase and Mueller's instances with a steep distance decay: the master LP stays well
    scaled (it stopped with HiGHS's status "unknown", reported as a time limit, before cut
    coefficients were reduced) and every answer is the enumerated optimum."""
    u, o, w = hm14_like(11, 60, 10, 0.2, beta)
    assert u.max() / u[u > 0].min() > 1e30
    for p in (2, 3, 4):
        sol = max_capture(u, p, w, outside=o, time_limit=60)
        assert sol.optimal, (p, sol.status, sol.gap)
        assert_close(sol.objective, brute_p(u, o, w, p))


@pytest.mark.parametrize("q", [1, 2, 3, 5])
def test_envelope_cuts_are_valid_at_every_open_set_and_deeper_than_tangents(q) -> None:
    """Envelope cuts (a small LP over the subsets of the most attractive sites) of single
    customers and of clusters of customers never cut off an open set of at most ``q`` sites,
    and at fractional points they are at least as deep as the tangents there (usually deeper:
    that is what they are for)."""
    from planner.models._market import CaptureProblem, _Envelope

    rng = np.random.default_rng(40 + q)
    n, m = 8, 7
    deeper = 0
    for trial in range(6):
        u, o, w = instance(rng, n, m, zeros=0.3)
        w[w == 0] = 1.0
        prob = CaptureProblem(u, o, w, np.zeros(m))
        env = _Envelope(prob, q, n_sites=2 + trial % 4)
        clusters = [np.array([i]) for i in range(n)]
        clusters += [np.arange(0, 3), np.arange(3, 8), np.arange(n)]
        sets = [np.array(s, dtype=np.intp) for s in subsets(m, range(q + 1))]
        for _ in range(4):
            y = rng.random(m) * (rng.random(m) > 0.3)
            y *= min(1.0, q / max(y.sum(), 1e-9))
            coef, rhs = env.cuts(y, clusters)
            for t in sets:
                yy = np.zeros(m)
                yy[t] = 1.0
                true_lost = prob.lost(u[:, t].sum(axis=1))
                summed = np.array([true_lost[c].sum() for c in clusters])
                assert np.all(rhs - coef @ yy <= summed + 1e-9), t
            tangent = prob.lost(u @ y)
            at_y = np.array([tangent[c].sum() for c in clusters])
            assert np.all(rhs - coef @ y >= at_y - 1e-9)
            deeper += int(np.sum(rhs - coef @ y > at_y + 1e-6))
    assert deeper > 0


@pytest.mark.parametrize("order", ["plunge", "best", "depth"])
def test_every_node_order_reaches_the_optimum_with_a_valid_bound_at_every_stop(
    monkeypatch, order
) -> None:  # type: ignore[no-untyped-def]
    """Each node selection of the branch-and-cut (dives from the least bound, best-first,
    depth-first) ends at the enumerated optimum; stopped after any number of polls, the
    answer is feasible and its bound is never below the optimum."""
    from planner.models import _market

    monkeypatch.setattr(_market, "NODE_ORDER", order)
    monkeypatch.setattr(_market, "RESTRICT_SHARE", 2.0)  # always branch on the full problem
    nodes = 0
    for seed in range(4):
        u, o, w = spatial(seed, 60, 14, 1.5 + 0.5 * (seed % 2))
        for p in (4, 6):
            best = brute_p(u, o, w, p)
            sol = max_capture(u, p, w, outside=o, time_limit=30)
            assert sol.optimal
            assert_close(sol.objective, best)
            assert sol.upper_bound >= best - 1e-7
            nodes += sol.extras["nodes"]
            for polls in (3, 10, 30):
                count = [0]

                def stop(count=count, polls=polls) -> bool:
                    count[0] += 1
                    return count[0] > polls

                cut = max_capture(u, p, w, outside=o, should_stop=stop)
                assert cut.n_open == p
                assert_close(cut.objective, captured(u, o, w, cut.open))
                assert cut.objective <= best + 1e-9
                assert cut.upper_bound >= best - 1e-7
    assert nodes >= 20  # the tree was searched
