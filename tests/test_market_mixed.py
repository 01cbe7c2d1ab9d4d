"""max_capture_mixed: own sites and partner shops chosen together, checked by brute force."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from planner.errors import InfeasibleError, InputError
from planner.models import max_capture, max_capture_mixed, max_capture_partners
from planner.models._base import ProgressReporter
from planner.models.market_mixed import _CutLoop, _Mixed, mixed_capture


def _instance(seed: int, n: int = 9, m: int = 7, n_partners: int = 3):
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.0, 2.0, size=(n, m)) * (rng.random((n, m)) > 0.2)
    o = rng.uniform(0.3, 2.0, size=n)
    w = rng.integers(1, 9, size=n).astype(float)
    partners = np.zeros(m, dtype=bool)
    partners[rng.choice(m, size=n_partners, replace=False)] = True
    return u, o, w, partners


def _plans(m, req=(), exc=()):
    for k in range(1, m + 1):
        for cols in itertools.combinations(range(m), k):
            if set(req) <= set(cols) and not set(exc) & set(cols):
                yield np.array(cols)


def _by_hand(u, o, w, partners, cols):
    """The share rule written out customer by customer."""
    total = 0.0
    for i in range(u.shape[0]):
        ours = sum(u[i, j] for j in cols)
        closed_partners = sum(u[i, j] for j in range(u.shape[1]) if partners[j] and j not in cols)
        total += w[i] * ours / (o[i] + closed_partners + ours)
    return total


@pytest.mark.parametrize("seed", range(6))
def test_mixed_capture_is_the_share_rule(seed):
    u, o, w, partners = _instance(seed)
    for cols in list(_plans(u.shape[1]))[::7]:
        got = mixed_capture(u, w, o, partners, cols).sum()
        assert got == pytest.approx(_by_hand(u, o, w, partners, set(cols.tolist())), rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("p", [1, 2, 4])
def test_most_jobs_with_p_sites_matches_brute_force(seed, p):
    u, o, w, partners = _instance(seed)
    req = (int(np.flatnonzero(partners)[0]),) if seed % 2 else ()
    exc = (int(np.flatnonzero(~partners)[0]),) if seed % 3 == 0 else ()
    best = max(
        mixed_capture(u, w, o, partners, c).sum()
        for c in _plans(u.shape[1], req, exc)
        if c.size == p
    )
    sol = max_capture_mixed(u, p, w, outside=o, partners=partners, required=req, excluded=exc)
    assert sol.optimal
    assert sol.status == "optimal"
    assert sol.objective == pytest.approx(best, rel=1e-7)
    assert sol.upper_bound == pytest.approx(best, rel=1e-6)
    assert sol.open.size == p
    assert set(req) <= set(sol.open)
    assert not set(exc) & set(sol.open)
    assert sol.extras["captured"] == pytest.approx(_by_hand(u, o, w, partners, set(sol.open)))
    assert sol.extras["partners_open"] == int(partners[sol.open].sum())


@pytest.mark.parametrize("seed", range(8))
def test_most_profit_matches_brute_force(seed):
    u, o, w, partners = _instance(seed)
    rng = np.random.default_rng(100 + seed)
    fixed = np.where(partners, 0.0, rng.uniform(1.0, 6.0, size=u.shape[1]))
    margin = 3.0
    best = max(
        margin * mixed_capture(u, w, o, partners, c).sum() - fixed[c].sum()
        for c in _plans(u.shape[1])
    )
    sol = max_capture_mixed(
        u, None, w, outside=o, partners=partners, fixed_cost=fixed, margin=margin
    )
    assert sol.optimal
    assert sol.objective == pytest.approx(best, rel=1e-7, abs=1e-9)
    assert sol.extras["profit"] == pytest.approx(sol.objective)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("share", [0.3, 0.5])
def test_fewest_sites_for_a_target_share_matches_brute_force(seed, share):
    u, o, w, partners = _instance(seed)
    need = share * w.sum()
    allowed = list(_plans(u.shape[1]))
    if max(mixed_capture(u, w, o, partners, c).sum() for c in allowed) < need:
        with pytest.raises(InfeasibleError, match="cannot be reached"):
            max_capture_mixed(u, None, w, outside=o, partners=partners, target_share=share)
        return
    k = min(c.size for c in allowed if mixed_capture(u, w, o, partners, c).sum() >= need)
    best = max(mixed_capture(u, w, o, partners, c).sum() for c in allowed if c.size == k)
    sol = max_capture_mixed(u, None, w, outside=o, partners=partners, target_share=share)
    assert sol.optimal
    assert sol.extras["min_sites_proven"]
    assert sol.open.size == k
    assert sol.objective == pytest.approx(best, rel=1e-7)


@pytest.mark.parametrize("seed", range(4))
def test_without_partners_it_is_max_capture_and_all_partners_max_capture_partners(seed):
    u, o, w, _ = _instance(seed)
    m = u.shape[1]
    none = max_capture_mixed(u, 3, w, outside=o, partners=np.zeros(m, dtype=bool))
    assert none.objective == pytest.approx(max_capture(u, 3, w, outside=o).objective, rel=1e-7)
    every = max_capture_mixed(u, 3, w, outside=o, partners=np.arange(m))
    ref = max_capture_partners(u, 3, w, outside=o)
    assert every.objective == pytest.approx(ref.objective, rel=1e-7)
    assert set(every.open) == set(ref.open)


def test_a_partner_not_contracted_takes_jobs_from_us():
    # one customer, one own site and one partner shop, equally attractive
    u = np.array([[1.0, 1.0]])
    o = np.array([1.0])
    sol = max_capture_mixed(u, 1, np.array([10.0]), outside=o, partners=[1])
    # own alone: 10 * 1 / (1 + 1 + 1); partner alone: 10 * 1 / (1 + 1): the partner wins
    assert sol.open.tolist() == [1]
    assert sol.objective == pytest.approx(5.0)
    own = mixed_capture(u, np.array([10.0]), o, np.array([False, True]), [0])
    assert own.sum() == pytest.approx(10.0 / 3.0)
    # closing a partner hands its jobs to a competitor, not to our own site
    both = max_capture_mixed(u, 2, np.array([10.0]), outside=o, partners=[1])
    assert both.extras["site_marginal_jobs"][1] == pytest.approx(both.extras["site_jobs"][1])


def test_bad_partners_are_refused():
    u, o, w, _ = _instance(0)
    with pytest.raises(InputError, match="partners"):
        max_capture_mixed(u, 2, w, outside=o, partners=[99])
    with pytest.raises(InputError, match="bool mask"):
        max_capture_mixed(u, 2, w, outside=o, partners=np.zeros(3, dtype=bool))


@pytest.mark.parametrize("seed", range(4))
def test_a_stopped_solve_keeps_a_valid_bound(seed):
    """Stopped at once: the greedy plan, its true value, and a bound above the optimum."""
    u, o, w, partners = _instance(seed, n=12, m=9)
    best = max(mixed_capture(u, w, o, partners, c).sum() for c in _plans(u.shape[1]) if c.size == 3)
    sol = max_capture_mixed(u, 3, w, outside=o, partners=partners, should_stop=lambda: True)
    assert sol.status == "stopped"
    assert sol.objective == pytest.approx(_by_hand(u, o, w, partners, set(sol.open)))
    assert sol.upper_bound >= best - 1e-9
    assert sol.gap == pytest.approx((sol.upper_bound - sol.objective) / sol.objective)


@pytest.mark.parametrize("seed", range(6))
def test_the_cut_loop_finds_the_optimum_from_the_worst_start(seed):
    """Greedy + swaps is often optimal already: start the cuts from the worst plan instead."""
    u, o, w, partners = _instance(seed, n=14, m=9)
    plans = [c for c in _plans(u.shape[1]) if c.size == 3]
    values = [mixed_capture(u, w, o, partners, c).sum() for c in plans]
    prob = _Mixed(u, o, w, partners, np.zeros(0, dtype=np.intp))
    loop = _CutLoop(
        prob,
        required=np.zeros(0, dtype=np.intp),
        deadline=time.perf_counter() + 30,
        should_stop=None,
    )
    plan, bound, status = loop.best(
        "p",
        k=3,
        start=plans[int(np.argmin(values))],
        margin=1.0,
        fixed=np.zeros(u.shape[1]),
        report=ProgressReporter(None, time.perf_counter()),
    )
    assert status == "optimal"
    assert mixed_capture(u, w, o, partners, plan).sum() == pytest.approx(max(values), rel=1e-9)
    assert bound == pytest.approx(max(values), rel=1e-6)
