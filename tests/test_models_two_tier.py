"""Two-tier (office + workshops) against brute force over offices and workshop sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from planner.errors import InfeasibleError, InputError
from planner.models import p_median, two_tier


def brute_force(cost, link, p, w, *, oc, ow, dl, tv, lv, f_ws, f_of, required=()):
    m = cost.shape[1]
    k = link.shape[0]
    best = np.inf
    sizes = [p] if p is not None else range(1, m + 1)
    for o in range(k):
        for size in sizes:
            for subset in itertools.combinations(range(m), size):
                s = list(subset)
                if not set(required) <= set(s) or not np.isfinite(link[o, s]).all():
                    continue
                near = cost[:, s].min(axis=1)
                if not np.isfinite(near[w > 0]).all():
                    continue
                val = (
                    tv * (w[w > 0] * near[w > 0]).sum()
                    + tv * (ow * oc[:, o]).sum()
                    + lv * (dl[s] * link[o, s]).sum()
                    + f_ws[s].sum()
                    + f_of[o]
                )
                best = min(best, val)
    return best


def brute_force_links_only(cost, link, p, w, *, deliveries):
    """:func:`brute_force` with only the customer and delivery terms (values 1, no office
    customers, no fixed costs): what ``two_tier(cost, link, p, w, deliveries=...)`` solves."""
    n, m = cost.shape
    k = link.shape[0]
    return brute_force(
        cost,
        link,
        p,
        w,
        oc=np.zeros((n, k)),
        ow=np.zeros(n),
        dl=np.full(m, deliveries),
        tv=1.0,
        lv=1.0,
        f_ws=np.zeros(m),
        f_of=np.zeros(k),
    )


@pytest.mark.parametrize("seed", range(40))
def test_two_tier_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m, k = int(rng.integers(1, 8)), int(rng.integers(1, 6)), int(rng.integers(1, 4))
    cost = rng.uniform(60, 3600, size=(n, m))
    link = rng.uniform(60, 3600, size=(k, m))
    if seed % 3 == 0 and m > 1:
        link[rng.random((k, m)) < 0.2] = np.inf
        link[:, 0] = 100.0
    oc = rng.uniform(60, 3600, size=(n, k))
    ow = rng.integers(0, 2, size=n).astype(float)
    w = rng.integers(0, 5, size=n).astype(float)
    dl = rng.uniform(0, 50, size=m)
    f_ws = rng.uniform(0, 5000, size=m)
    f_of = rng.uniform(0, 5000, size=k)
    tv, lv = 0.5, 2.0
    p = None if seed % 2 else int(rng.integers(1, m + 1))
    required = [0] if seed % 5 == 0 and (p is None or p >= 1) else []
    best = brute_force(
        cost,
        link,
        p,
        w,
        oc=oc,
        ow=ow,
        dl=dl,
        tv=tv,
        lv=lv,
        f_ws=f_ws,
        f_of=f_of,
        required=required,
    )
    kwargs = {
        "office_cost": oc,
        "office_weights": ow,
        "deliveries": dl,
        "time_value": tv,
        "link_value": lv,
        "fixed_cost_workshop": f_ws,
        "fixed_cost_office": f_of,
        "required": required,
    }
    if not np.isfinite(best):
        with pytest.raises(InfeasibleError):
            two_tier(cost, link, p, w, **kwargs)
        return
    sol = two_tier(cost, link, p, w, **kwargs)
    assert sol.optimal
    assert np.isclose(sol.objective, best, rtol=1e-9)
    o = sol.extras["office"]
    assert np.isfinite(link[o, sol.open]).all()
    if p is not None:
        assert sol.open.size == p
    assert set(required) <= set(sol.open.tolist())
    terms = (
        sol.extras["customer_travel_cost"]
        + sol.extras["office_travel_cost"]
        + sol.extras["link_cost"]
        + sol.extras["fixed_cost_workshops"]
        + sol.extras["fixed_cost_office"]
    )
    assert np.isclose(terms, sol.objective)


def test_reduces_to_p_median_without_office_terms() -> None:
    rng = np.random.default_rng(3)
    cost = rng.uniform(60, 3600, size=(60, 12))
    w = rng.integers(1, 5, size=60).astype(float)
    sol = two_tier(cost, np.zeros((3, 12)), 4, w)
    ref = p_median(cost, 4, w)
    assert np.isclose(sol.objective, ref.objective)


def test_required_office_and_errors() -> None:
    cost = np.ones((4, 3))
    link = np.array([[1.0, 1.0, 1.0], [100.0, 100.0, 100.0]])
    sol = two_tier(cost, link, 1, deliveries=10.0, required_office=1)
    assert sol.extras["office"] == 1
    assert two_tier(cost, link, 1, deliveries=10.0).extras["office"] == 0
    with pytest.raises(InputError, match="office_weights needs office_cost"):
        two_tier(cost, link, 1, office_weights=np.ones(4))
    cut = np.array([[np.inf, np.inf, 1.0]])
    with pytest.raises(InfeasibleError, match="cannot supply required workshops 0"):
        two_tier(cost, cut, 1, required=[0])


@pytest.mark.parametrize("seed", range(40))
def test_two_tier_lagrangian_path_on_tiny_instances(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the large-instance path per office (Lagrangian + reduced-cost tests here, as the
    instances have fewer than 100 candidates): still exact."""
    monkeypatch.setattr("planner.models._median.SMALL_PAIRS", 0)
    test_two_tier_matches_brute_force(seed)


def test_offices_that_cannot_win_are_pruned_without_a_solve() -> None:
    rng = np.random.default_rng(7)
    n, m, k, p = 12, 6, 8, 2
    cost = rng.uniform(60, 3600, size=(n, m))
    w = rng.integers(1, 5, size=n).astype(float)
    link = np.full((k, m), 50_000.0)
    link[3] = rng.uniform(10, 100, size=m)  # one office is far better placed than the others
    kwargs = {"deliveries": 20.0}
    sol = two_tier(cost, link, p, w, **kwargs)
    best = brute_force_links_only(cost, link, p, w, deliveries=20.0)
    assert sol.optimal
    assert np.isclose(sol.objective, best, rtol=1e-9)
    assert sol.extras["office"] == 3
    statuses = [r["status"] for r in sol.extras["offices"]]
    assert statuses.count("pruned") == k - 1
    assert all(r["lower_bound"] >= sol.objective for r in sol.extras["offices"] if r["office"] != 3)


def test_joint_answer_is_never_worse_than_the_two_step_answer() -> None:
    rng = np.random.default_rng(11)
    n, m, k, p = 40, 10, 4, 3
    cost = rng.uniform(60, 3600, size=(n, m))
    w = rng.integers(1, 5, size=n).astype(float)
    link = rng.uniform(60, 3600, size=(k, m))
    deliveries = 200.0
    joint = two_tier(cost, link, p, w, deliveries=deliveries)
    seq = p_median(cost, p, w)
    totals = (link[:, seq.open] * deliveries).sum(axis=1)
    two_step = seq.objective + float(totals.min())
    assert joint.optimal
    assert joint.objective <= two_step + 1e-9 * two_step


def test_two_tier_progress_bound_is_monotone_and_stop_returns_an_answer() -> None:
    rng = np.random.default_rng(5)
    n, m, k, p = 30, 8, 5, 2
    cost = rng.uniform(60, 3600, size=(n, m))
    link = rng.uniform(60, 3600, size=(k, m))
    reports = []
    sol = two_tier(cost, link, p, deliveries=5.0, progress=reports.append)
    assert sol.optimal
    assert reports
    bounds = [r.bound for r in reports]
    assert all(b2 >= b1 for b1, b2 in itertools.pairwise(bounds))
    assert reports[-1].objective == pytest.approx(sol.objective)

    stopped = two_tier(cost, link, p, deliveries=5.0, should_stop=lambda: True)
    assert stopped.open.size == p
    assert stopped.lower_bound <= stopped.objective
    assert stopped.objective >= sol.objective - 1e-9 * sol.objective
    if not stopped.optimal:
        assert stopped.status == "stopped"
        assert stopped.gap == pytest.approx(
            (stopped.objective - stopped.lower_bound) / stopped.objective
        )


@pytest.mark.parametrize("seed", range(40))
def test_two_tier_benders_path_with_office_cutoffs(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Force the Benders path per office (with its cutoff at the best office so far)."""
    monkeypatch.setattr("planner.models._median.BENDERS_MIN_PAIRS", 0)
    monkeypatch.setattr("planner.models._median.BENDERS_MIN_CANDIDATES", 0)
    monkeypatch.setattr("planner.models._median.LAGRANGIAN_FIRST_PAIRS", 0)
    test_two_tier_matches_brute_force(seed)


@pytest.mark.parametrize("seed", range(6))
def test_two_tier_first_answer_comes_before_any_office_solve(seed: int) -> None:
    """The first progress report already has an answer (the heuristic's) and a valid bound;
    a stop right then keeps that answer, with a gap that holds against brute force."""
    rng = np.random.default_rng(100 + seed)
    n, m, k, p = 25, 8, 4, 3
    cost = rng.uniform(60, 3600, size=(n, m))
    w = rng.integers(1, 5, size=n).astype(float)
    link = rng.uniform(60, 3600, size=(k, m))
    best = brute_force_links_only(cost, link, p, w, deliveries=30.0)
    reports = []
    sol = two_tier(
        cost,
        link,
        p,
        w,
        deliveries=30.0,
        progress=reports.append,
        should_stop=lambda: bool(reports),
    )
    first = reports[0]
    assert first.message == "First answer (heuristic)"
    assert first.bound <= best * (1 + 1e-9) <= first.objective * (1 + 2e-9)
    assert sol.open.size == p
    assert sol.objective == pytest.approx(first.objective)
    assert sol.lower_bound <= best * (1 + 1e-9)
    assert sol.status == "stopped" or (sol.optimal and sol.gap <= 1e-6)
    assert sol.gap == pytest.approx((sol.objective - sol.lower_bound) / sol.objective)
    assert all(r["status"] == "not solved" for r in sol.extras["offices"])
