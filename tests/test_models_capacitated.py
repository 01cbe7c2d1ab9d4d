"""Single-source capacitated and sized location against brute force (issue 26).

Every single-source assignment of tiny instances is enumerated; the models must find the best
one, prove it, never report a bound above it, give a feasible first answer, name the customers
that make an instance infeasible and keep their time limit.
"""

from __future__ import annotations

import itertools
import time

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest

from planner.engine import ScenarioInstance, ScenarioSpec, solve_layout
from planner.engine.instance import Instance
from planner.engine.spec import WorkshopSize, load_scenario, save_scenario
from planner.errors import InfeasibleError, InputError
from planner.models import capacitated_p_median, fixed_charge, sized_fixed_charge
from planner.models._single_source import _dual, _knapsack_min, _Problem
from planner.results.costs import CostParameters


def brute_force_sized(cost, w, fixed, cap, *, time_value=1.0, p=None):
    """Least fixed + travel cost over every single-source assignment and every size choice.

    ``fixed`` and ``cap`` are (m, S) with inf fixed cost for a size a site does not allow;
    a site is open when a customer is assigned to it (with ``p``: exactly p open sites, the
    extra ones at their cheapest size). Returns None when nothing is feasible."""
    n, m = cost.shape
    best = None
    cheapest = fixed.min(axis=1)
    for choice in itertools.product(range(m), repeat=n):
        assign = np.array(choice)
        if not np.isfinite(cost[np.arange(n), assign]).all():
            continue
        load = np.bincount(assign, weights=w, minlength=m)
        used = np.flatnonzero(load > 0)
        if p is not None and used.size > p:
            continue
        total = float((time_value * w * cost[np.arange(n), assign]).sum())
        ok = True
        for j in used:
            fits = np.isfinite(fixed[j]) & (cap[j] >= load[j] - 1e-9)
            if not fits.any():
                ok = False
                break
            total += float(fixed[j, fits].min())
        if not ok:
            continue
        if p is not None and used.size < p:
            spare = np.setdiff1d(np.arange(m), used)
            extra = np.sort(cheapest[spare])[: p - used.size]
            if extra.size < p - used.size or not np.isfinite(extra).all():
                continue
            total += float(extra.sum())
        best = total if best is None else min(best, total)
    return best


def random_sized(seed: int, *, sizes: int):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 7))
    m = int(rng.integers(2, 5))
    cost = rng.uniform(60, 3600, size=(n, m))
    if seed % 4 == 0:
        cost[rng.random((n, m)) < 0.25] = np.inf
    w = rng.integers(1, 5, size=n).astype(float)
    cap = np.sort(rng.integers(2, 9, size=(m, sizes)).astype(float), axis=1)
    fixed = np.sort(rng.uniform(0, 6000, size=(m, sizes)), axis=1)
    if sizes > 1:
        fixed[rng.random((m, sizes)) < 0.2] = np.inf  # some sites do not allow some sizes
        fixed[:, -1] = np.sort(rng.uniform(0, 6000, size=m))  # every site allows its largest
    return cost, w, fixed, cap


@pytest.mark.parametrize("seed", range(30))
def test_capacitated_fixed_charge_and_p_median_match_brute_force(seed: int) -> None:
    """Unequal fixed costs and capacities: the proven optimum is the enumerated one, the
    first answer is feasible and the bound is never above the optimum."""
    cost, w, fixed, cap = random_sized(seed, sizes=1)
    best = brute_force_sized(cost, w, fixed, cap, time_value=0.01)
    if best is None:
        with pytest.raises(InfeasibleError):
            fixed_charge(cost, fixed[:, 0], w, time_value=0.01, capacity=cap[:, 0])
    else:
        sol = fixed_charge(cost, fixed[:, 0], w, time_value=0.01, capacity=cap[:, 0])
        assert sol.optimal
        assert sol.objective == pytest.approx(best, rel=1e-7)
        assert sol.lower_bound <= best * (1 + 1e-9)
        assert sol.extras["first_objective"] >= best * (1 - 1e-9)
        load = np.bincount(sol.assignment, weights=w, minlength=cost.shape[1])
        assert (load <= cap[:, 0] + 1e-9).all()
    p = int(np.random.default_rng(seed).integers(1, cost.shape[1] + 1))
    best = brute_force_sized(cost, w, np.zeros_like(cap), cap, p=p)
    if best is None:
        with pytest.raises(InfeasibleError):
            capacitated_p_median(cost, p, cap[:, 0], w)
    else:
        sol = capacitated_p_median(cost, p, cap[:, 0], w)
        assert sol.optimal
        assert sol.open.size == p
        assert sol.objective == pytest.approx(best, rel=1e-7)
        assert sol.lower_bound <= best * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(30))
def test_sized_model_matches_brute_force(seed: int) -> None:
    """Sites and sizes together, some sizes not allowed at some sites: the enumerated optimum
    over assignments and sizes, each open site at a size that holds its load."""
    cost, w, fixed, cap = random_sized(seed, sizes=3)
    best = brute_force_sized(cost, w, fixed, cap, time_value=0.01)
    if best is None:
        with pytest.raises(InfeasibleError):
            sized_fixed_charge(cost, fixed, cap, w, time_value=0.01)
        return
    sol = sized_fixed_charge(cost, fixed, cap, w, time_value=0.01)
    assert sol.optimal
    assert sol.objective == pytest.approx(best, rel=1e-7)
    assert sol.lower_bound <= best * (1 + 1e-9)
    size = sol.extras["size"]
    assert set(size) == set(sol.open.tolist())
    load = np.bincount(sol.assignment, weights=w, minlength=cost.shape[1])
    for j, s in size.items():
        assert np.isfinite(fixed[j, s])
        assert load[j] <= cap[j, s] + 1e-9
    assert sol.extras["fixed_cost_total"] == pytest.approx(
        sum(fixed[j, s] for j, s in size.items())
    )


@pytest.mark.parametrize("seed", range(10))
def test_sized_model_with_p_matches_brute_force(seed: int) -> None:
    cost, w, fixed, cap = random_sized(100 + seed, sizes=2)
    p = int(np.random.default_rng(seed).integers(1, cost.shape[1] + 1))
    best = brute_force_sized(cost, w, fixed, cap, time_value=0.01, p=p)
    if best is None:
        with pytest.raises(InfeasibleError):
            sized_fixed_charge(cost, fixed, cap, w, time_value=0.01, p=p)
        return
    sol = sized_fixed_charge(cost, fixed, cap, w, time_value=0.01, p=p)
    assert sol.optimal
    assert sol.open.size == p
    assert sol.objective == pytest.approx(best, rel=1e-7)


@pytest.mark.parametrize("seed", range(20))
def test_knapsack_is_exact_and_the_lagrangian_bound_valid(seed: int) -> None:
    """The knapsack against enumeration (integer and real weights: the real one may only be
    lower, as a relaxation), and the Lagrangian value at random multipliers below the optimum."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 11))
    r = -rng.uniform(1, 100, size=k)
    w = rng.integers(1, 20, size=k).astype(float)
    cap = float(rng.integers(1, 60))
    best = min(
        float(r[list(s)].sum())
        for size in range(k + 1)
        for s in itertools.combinations(range(k), size)
        if w[list(s)].sum() <= cap
    )
    value, chosen = _knapsack_min(r, w, cap, True)
    assert value == pytest.approx(best)
    assert w[chosen].sum() <= cap
    assert r[chosen].sum() == pytest.approx(value)
    wr = w + rng.uniform(0, 0.9, size=k)
    best_r = min(
        float(r[list(s)].sum())
        for size in range(k + 1)
        for s in itertools.combinations(range(k), size)
        if wr[list(s)].sum() <= cap
    )
    assert _knapsack_min(r, wr, cap, False)[0] <= best_r + 1e-9
    # the Lagrangian bound at any multipliers is below the optimum
    cost, ww, fixed, capm = random_sized(seed, sizes=2)
    best = brute_force_sized(cost, ww, fixed, capm)
    if best is not None:
        c = cost * ww[:, None]
        prob = _Problem(c, ww, fixed, capm, None, np.array([], dtype=int))
        for _ in range(5):
            u = rng.uniform(0, 2, size=c.shape[0]) * np.where(np.isfinite(c), c, 0).max(axis=1)
            assert _dual(prob, u, True, np.inf).bound <= best * (1 + 1e-9)


def test_infeasible_instances_are_named_at_once() -> None:
    cost = np.ones((3, 2))
    t0 = time.perf_counter()
    with pytest.raises(InfeasibleError, match="capacity 1,200 < demand 1,650"):
        fixed_charge(cost, 0.0, [600, 600, 450], capacity=[700, 500])
    # customer row 2 reaches only site 1, which is too small for it
    cost = np.array([[1.0, 1.0], [1.0, 1.0], [np.inf, 1.0]])
    with pytest.raises(InfeasibleError, match=r"more demand than any site .* rows 2"):
        fixed_charge(cost, 0.0, [100, 100, 900], capacity=[2000, 800])
    with pytest.raises(InfeasibleError, match=r"rows 2"):
        sized_fixed_charge(cost, [1.0, 2.0], [400.0, 800.0], [100, 100, 900])
    assert time.perf_counter() - t0 < 2.0


def test_tight_capacities_first_answer_fast_and_time_limit_kept() -> None:
    """200 x 30, capacity 1.3 x demand: a feasible first answer within a second, the time
    limit kept, and a bound at least the uncapacitated one."""
    rng = np.random.default_rng(4)
    n, m = 200, 30
    xy = rng.uniform(0, 100, size=(n + m, 2))
    cost = np.hypot(*(xy[:n, None, :] - xy[None, n:, :]).transpose(2, 0, 1))
    w = rng.integers(10, 51, size=n).astype(float)
    cap = rng.uniform(0.5, 1.5, size=m)
    cap = np.round(cap * 1.3 * w.sum() / cap.sum())
    fixed = 2000 + 100 * np.sqrt(cap)
    t0 = time.perf_counter()
    sol = fixed_charge(cost, fixed, w, capacity=cap, time_limit=5)
    took = time.perf_counter() - t0
    assert took <= 5 * 1.2 + 0.5  # HiGHS stops a little after its limit (more on a busy CPU)
    assert sol.extras["first_answer_s"] < 1.0
    load = np.bincount(sol.assignment, weights=w, minlength=m)
    assert (load <= cap + 1e-9).all()
    assert sol.lower_bound >= fixed_charge(cost, fixed, w).lower_bound * (1 - 1e-6)
    assert 0 <= sol.gap < 0.10


# ---------------------------------------------------------------------------- the engine


def sized_sinst(
    seed: int, spec: ScenarioSpec, sizes_column=None, offices: int = 0
) -> ScenarioInstance:
    """5 customers, 3 own candidates W0-W2 (and ``offices`` office candidates), random times."""
    rng = np.random.default_rng(seed)
    n, own = 5, 3
    lon = 9.5 + rng.uniform(0, 0.1, n)
    lat = 47.1 + rng.uniform(0, 0.1, n)
    customers = gpd.GeoDataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "lat": lat,
            "lon": lon,
            "weight": rng.integers(1, 4, n).astype(float),
            "snap_distance_m": np.zeros(n),
            "excluded_reason": [""] * n,
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )
    m = own + offices
    slon = 9.5 + rng.uniform(0, 0.1, m)
    slat = 47.1 + rng.uniform(0, 0.1, m)
    cands = {
        "site_id": [f"W{j}" for j in range(own)] + [f"O{j}" for j in range(offices)],
        "name": [f"site {j}" for j in range(m)],
        "lat": slat,
        "lon": slon,
        "kind": ["workshop"] * own + ["office"] * offices,
        "status": ["candidate"] * m,
    }
    if sizes_column is not None:
        cands["sizes"] = list(sizes_column) + [None] * offices
    candidates = gpd.GeoDataFrame(cands, geometry=gpd.points_from_xy(slon, slat), crs=4326)
    inst = Instance(
        region="tiny",
        graph=nx.MultiDiGraph(),
        customers=customers,
        candidates=candidates,
        customer_snap=None,
        candidate_snap=None,
        demand_of_customer=np.arange(n),
        demand_weight=customers["weight"].to_numpy(float),
        cost_s=rng.uniform(300.0, 3600.0, (n, m)),
    )
    columns = {
        "own": np.arange(own),
        "partner": np.array([], int),
        "office": own + np.arange(offices),
    }
    link = rng.uniform(120.0, 1500.0, (offices, m)) if offices else None
    return ScenarioInstance(spec=spec, instance=inst, columns=columns, office_link_s=link)


SIZES = (
    WorkshopSize("small", 30_000.0, 4.0),
    WorkshopSize("large", 50_000.0, 9.0),
)


@pytest.mark.parametrize("seed", range(6))
def test_engine_plans_sites_and_sizes_like_brute_force(seed: int) -> None:
    """Through solve_layout: the cheapest sites, sizes and assignment by enumeration (fixed
    costs of the sizes + value of customer time), sizes in the shortlist, their capacities in
    the loads and their fixed costs in the costs."""
    params = CostParameters(customer_time_eur_per_hour=40.0)
    spec = ScenarioSpec(region="tiny", workshops=None, parameters=params, sizes=SIZES)
    allowed = [None, "small", "large, small"] if seed % 2 else None
    sinst = sized_sinst(seed, spec, allowed)
    lr = solve_layout(sinst, "in-house")
    inst = sinst.instance
    tv = params.customer_time_eur_per_hour * params.jobs_per_weight * 2 / 3600
    fixed = np.array([[s.fixed_cost_eur for s in SIZES]] * 3)
    if allowed:
        fixed[1, 1] = np.inf  # W1 allows "small" only
    cap = np.array([[s.capacity_jobs for s in SIZES]] * 3)
    best = brute_force_sized(inst.cost_s, inst.demand_weight, fixed, cap, time_value=tv)
    assert lr.result.solution.optimal
    assert lr.result.solution.objective == pytest.approx(best, rel=1e-7)
    shortlist = lr.result.shortlist()
    assert set(shortlist["size"]) <= {"small", "large"}
    by_name = {s.name: s for s in SIZES}
    expected_fixed = sum(by_name[s].fixed_cost_eur for s in shortlist["size"])
    assert lr.costs.fixed_eur == pytest.approx(expected_fixed)
    assert lr.costs.total_eur == pytest.approx(best, rel=1e-7)
    loads = lr.loads.set_index("site_id")
    for sid, size in zip(shortlist["site_id"], shortlist["size"], strict=True):
        assert loads.loc[sid, "capacity_jobs"] == by_name[size].capacity_jobs
        assert loads.loc[sid, "jobs"] <= by_name[size].capacity_jobs + 1e-9
    if allowed:
        sizes = dict(zip(shortlist["site_id"], shortlist["size"], strict=True))
        assert sizes.get("W1", "small") == "small"


def test_engine_sizes_errors_name_the_problem() -> None:
    spec = ScenarioSpec(
        region="tiny",
        workshops=2,
        parameters=CostParameters(customer_time_eur_per_hour=40.0),
        sizes=SIZES,
    )
    with pytest.raises(InputError, match=r"site W2: unknown size\(s\) \['huge'\]"):
        solve_layout(sized_sinst(1, spec, [None, None, "huge"]), "in-house")
    no_time = spec.replace(parameters=CostParameters(customer_time_eur_per_hour=0.0))
    with pytest.raises(InputError, match="customer_time_eur_per_hour must be > 0"):
        solve_layout(sized_sinst(1, no_time), "in-house")
    with pytest.raises(InputError, match="repeated"):
        ScenarioSpec(sizes=[SIZES[0], SIZES[0]])
    with pytest.raises(InputError, match="capacity_jobs must be > 0"):
        ScenarioSpec(sizes=[{"name": "x", "fixed_cost_eur": 1, "capacity_jobs": 0}])


def test_sizes_round_trip_through_scenario_files(tmp_path) -> None:
    spec = ScenarioSpec(name="sized", sizes=SIZES, workshops=None)
    path = save_scenario(spec, tmp_path / "s.toml")
    assert "capacity_jobs = 9.0" in path.read_text()
    assert load_scenario(path).sizes == SIZES


def brute_force_two_tier(cost, link, p, w, cap, f_ws, f_of, tv, lv, dl):  # noqa: PLR0917
    """Least two-tier cost over every single-source assignment within capacities and every
    office (with ``p``: unused open workshops at their cheapest fixed + link cost): the sized
    enumeration with one size per workshop."""
    return brute_force_two_tier_sized(
        cost, link, p, w, np.asarray(f_ws)[:, None], np.asarray(cap)[:, None], f_of, tv, lv, dl
    )


@pytest.mark.parametrize("seed", range(16))
def test_two_tier_with_capacities_is_one_joint_model(seed: int) -> None:
    """Office, workshops and single-source assignment within capacities chosen together: the
    enumerated optimum, proven."""
    from planner.models import two_tier

    rng = np.random.default_rng(seed)
    n, m, k = int(rng.integers(2, 6)), int(rng.integers(2, 5)), int(rng.integers(1, 4))
    cost = rng.uniform(60, 3600, (n, m))
    link = rng.uniform(60, 3600, (k, m))
    w = rng.integers(1, 4, n).astype(float)
    cap = rng.integers(2, 8, m).astype(float)
    f_ws = rng.uniform(0, 3000, m)
    f_of = rng.uniform(0, 3000, k)
    p = None if seed % 2 else int(rng.integers(1, m + 1))
    best = brute_force_two_tier(cost, link, p, w, cap, f_ws, f_of, 0.5, 0.2, 3.0)
    kwargs = {
        "capacity": cap,
        "fixed_cost_workshop": f_ws,
        "fixed_cost_office": f_of,
        "time_value": 0.5,
        "link_value": 0.2,
        "deliveries": 3.0,
    }
    if best is None:
        with pytest.raises(InfeasibleError):
            two_tier(cost, link, p, w, **kwargs)
        return
    sol = two_tier(cost, link, p, w, **kwargs)
    assert sol.optimal
    assert sol.objective == pytest.approx(best, rel=1e-7)
    load = np.bincount(sol.assignment, weights=w, minlength=m)
    assert (load <= cap + 1e-9).all()
    assert set(sol.extras["load"]) == set(sol.open.tolist())


@pytest.mark.parametrize("seed", range(4))
def test_engine_two_tier_with_capacities_is_the_cheapest_joint_plan(seed: int) -> None:
    """Through solve_layout: capacitated two-tier (valued time) is one proven model whose
    annual cost is the least over offices, workshops and single-source assignments."""
    sinst = sized_sinst(seed, ScenarioSpec(region="tiny"), offices=2)
    inst = sinst.instance
    w = inst.demand_weight
    cap = float(np.ceil(0.6 * w.sum()))  # two workshops hold everyone, one does not
    params = CostParameters(
        customer_time_eur_per_hour=40,
        delivery_cost_per_min_eur=5.0,
        technicians_per_workshop=1,
        jobs_per_technician=cap,
    )
    spec = ScenarioSpec(region="tiny", workshops=2, parameters=params, capacitated=True)
    sinst = ScenarioInstance(
        spec=spec, instance=inst, columns=sinst.columns, office_link_s=sinst.office_link_s
    )
    lr = solve_layout(sinst, "two-tier")
    tv = params.customer_time_eur_per_hour * params.jobs_per_weight * 2 / 3600
    link = sinst.office_link_s[:, :3]
    f_ws = np.full(3, params.workshop_fixed_cost_eur(layout="two-tier"))
    best = brute_force_two_tier(
        inst.cost_s[:, :3],
        link,
        2,
        w,
        np.full(3, cap),
        f_ws,
        np.full(2, params.office_fixed_cost_eur),
        tv,
        2.0 * params.delivery_cost_per_min_eur / 60.0,
        params.deliveries_per_workshop,
    )
    assert lr.result.solution.optimal
    assert lr.costs.total_eur == pytest.approx(best, rel=1e-7)
    assert (lr.loads.loc[lr.loads["role"] == "workshop", "jobs"] <= cap + 1e-9).all()


def brute_force_two_tier_sized(cost, link, p, w, fixed, cap, f_of, tv, lv, dl):  # noqa: PLR0917
    """Least two-tier cost with sized workshops: every single-source assignment, every office,
    each used workshop at its cheapest allowed size that holds its load (with ``p``: unused
    open workshops at their cheapest size's fixed cost + link cost)."""
    n, m = cost.shape
    best = None
    cheapest = fixed.min(axis=1)
    for choice in itertools.product(range(m), repeat=n):
        assign = np.array(choice)
        load = np.bincount(assign, weights=w, minlength=m)
        used = np.flatnonzero(load > 0)
        if p is not None and used.size > p:
            continue
        size_cost = []
        for j in used:
            fits = np.isfinite(fixed[j]) & (cap[j] >= load[j] - 1e-9)
            if not fits.any():
                break
            size_cost.append(float(fixed[j, fits].min()))
        else:
            for o in range(link.shape[0]):
                total = (
                    tv * (w * cost[np.arange(n), assign]).sum()
                    + lv * (dl * link[o, used]).sum()
                    + sum(size_cost)
                    + f_of[o]
                )
                if p is not None and used.size < p:
                    spare = np.setdiff1d(np.arange(m), used)
                    extra = np.sort(cheapest[spare] + lv * dl * link[o, spare])
                    extra = extra[: p - used.size]
                    if extra.size < p - used.size or not np.isfinite(extra).all():
                        continue
                    total += extra.sum()
                best = total if best is None else min(best, total)
    return best


@pytest.mark.parametrize("seed", range(16))
def test_two_tier_with_sizes_is_one_joint_model(seed: int) -> None:
    """Office, workshops, their sizes (some not allowed at some sites) and the single-source
    assignment chosen together: the enumerated optimum, proven, each workshop within the
    capacity of its size."""
    from planner.models import two_tier

    rng = np.random.default_rng(500 + seed)
    cost, w, fixed, cap = random_sized(500 + seed, sizes=2)
    m = cost.shape[1]
    k = int(rng.integers(1, 4))
    link = rng.uniform(60, 3600, (k, m))
    f_of = rng.uniform(0, 3000, k)
    p = None if seed % 2 else int(rng.integers(1, m + 1))
    best = brute_force_two_tier_sized(cost, link, p, w, fixed, cap, f_of, 0.5, 0.2, 3.0)
    kwargs = {
        "size_fixed_cost": fixed,
        "size_capacity": cap,
        "fixed_cost_office": f_of,
        "time_value": 0.5,
        "link_value": 0.2,
        "deliveries": 3.0,
    }
    if best is None:
        with pytest.raises(InfeasibleError):
            two_tier(cost, link, p, w, **kwargs)
        return
    sol = two_tier(cost, link, p, w, **kwargs)
    assert sol.optimal
    assert sol.objective == pytest.approx(best, rel=1e-7)
    size = sol.extras["size"]
    assert set(size) == set(sol.open.tolist())
    load = np.bincount(sol.assignment, weights=w, minlength=m)
    for j, s in size.items():
        assert np.isfinite(fixed[j, s])
        assert load[j] <= cap[j, s] + 1e-9
    assert sol.extras["fixed_cost_workshops"] == pytest.approx(
        sum(fixed[j, s] for j, s in size.items())
    )


def test_two_tier_sizes_refuse_mixed_or_bad_tables() -> None:
    from planner.models import two_tier

    cost = np.full((2, 2), 100.0)
    link = np.full((1, 2), 100.0)
    table = np.array([[1.0, 2.0], [1.0, 2.0]])
    with pytest.raises(InputError, match="replace fixed_cost_workshop"):
        two_tier(cost, link, 1, size_fixed_cost=table, size_capacity=table, capacity=5.0)
    with pytest.raises(InputError, match="given together"):
        two_tier(cost, link, 1, size_fixed_cost=table)
    with pytest.raises(InputError, match=r"\(2 x S\)"):
        two_tier(cost, link, 1, size_fixed_cost=table[:1], size_capacity=table[:1])
    with pytest.raises(InfeasibleError, match="allow no size"):
        two_tier(
            cost,
            link,
            1,
            size_fixed_cost=np.array([[np.inf, np.inf], [1.0, 2.0]]),
            size_capacity=table,
            required=[0],
        )


@pytest.mark.parametrize("seed", range(4))
def test_engine_two_tier_plans_office_sites_and_sizes_together(seed: int) -> None:
    """Through solve_layout: two-tier with the scenario's sizes is one proven joint model: its
    annual cost is the least over offices, workshops, sizes and assignments, and the shortlist,
    loads and costs carry each workshop's size."""
    sinst = sized_sinst(seed, ScenarioSpec(region="tiny"), offices=2)
    params = CostParameters(customer_time_eur_per_hour=40, delivery_cost_per_min_eur=5.0)
    spec = ScenarioSpec(region="tiny", workshops=None, parameters=params, sizes=SIZES)
    sinst = ScenarioInstance(
        spec=spec,
        instance=sinst.instance,
        columns=sinst.columns,
        office_link_s=sinst.office_link_s,
    )
    inst = sinst.instance
    lr = solve_layout(sinst, "two-tier")
    tv = params.customer_time_eur_per_hour * params.jobs_per_weight * 2 / 3600
    fixed = np.array([[s.fixed_cost_eur for s in SIZES]] * 3)
    cap = np.array([[s.capacity_jobs for s in SIZES]] * 3)
    best = brute_force_two_tier_sized(
        inst.cost_s[:, :3],
        sinst.office_link_s[:, :3],
        None,
        inst.demand_weight,
        fixed,
        cap,
        np.full(2, params.office_fixed_cost_eur),
        tv,
        2.0 * params.delivery_cost_per_min_eur / 60.0,
        params.deliveries_per_workshop,
    )
    assert lr.result.solution.optimal
    assert lr.costs.total_eur == pytest.approx(best, rel=1e-7)
    shortlist = lr.result.shortlist()
    workshops = shortlist[shortlist["role"] == "workshop"]
    by_name = {s.name: s for s in SIZES}
    assert set(workshops["size"]) <= set(by_name)
    loads = lr.loads.set_index("site_id")
    for sid, size in zip(workshops["site_id"], workshops["size"], strict=True):
        assert loads.loc[sid, "capacity_jobs"] == by_name[size].capacity_jobs
        assert loads.loc[sid, "jobs"] <= by_name[size].capacity_jobs + 1e-9
    no_time = spec.replace(parameters=params.replace(customer_time_eur_per_hour=0.0))
    with pytest.raises(InputError, match="customer_time_eur_per_hour must be > 0"):
        solve_layout(
            ScenarioInstance(
                spec=no_time,
                instance=inst,
                columns=sinst.columns,
                office_link_s=sinst.office_link_s,
            ),
            "two-tier",
        )


@pytest.mark.slow
def test_planner_run_with_a_sized_scenario_file_and_a_sites_file(tmp_path) -> None:
    """End to end on the bundled Liechtenstein extract: a scenario file with sizes and a site
    file whose sizes column limits one site; the shortlist and the written CSV say each
    workshop's size, within its capacity, and the costs are the sizes' fixed costs."""
    import pandas as pd

    import planner
    from planner.outputs.export import shortlist_table

    sites = tmp_path / "sites.csv"
    pd.DataFrame(
        {
            "site_id": ["vaduz", "schaan", "eschen"],
            "lat": [47.1410, 47.1650, 47.2110],
            "lon": [9.5215, 9.5090, 9.5220],
            "sizes": ["small", "", "small, large"],
        }
    ).to_csv(sites, index=False)
    scenario = tmp_path / "sized.toml"
    scenario.write_text(
        """
name = "sized"
region = "liechtenstein"
sites = "sites.csv"
workshops = "auto"
generate_candidates = false
time_limit_s = 20

[parameters]
customer_time_eur_per_hour = 60

[[sizes]]
name = "small"
fixed_cost_eur = 120000
capacity_jobs = 1800

[[sizes]]
name = "large"
fixed_cost_eur = 230000
capacity_jobs = 5000
""",
        encoding="utf-8",
    )
    lr = planner.run(scenario)
    table = shortlist_table(lr)
    assert set(table["size"]) <= {"small", "large"}
    assert table.loc[table["site_id"] == "vaduz", "size"].isin(["small"]).all()
    assert (table["jobs"] <= table["capacity_jobs"] + 1e-6).all()
    fixed = {"small": 120_000.0, "large": 230_000.0}
    assert lr.costs.fixed_eur == pytest.approx(sum(fixed[s] for s in table["size"]))
    assert lr.result.solution.gap < 0.01


def test_outsourced_layout_says_sizes_do_not_apply() -> None:
    """Partner shops have no sizes: the outsourced layout plans without them and says so."""
    params = CostParameters(customer_time_eur_per_hour=40.0)
    spec = ScenarioSpec(region="tiny", workshops=2, parameters=params, sizes=SIZES)
    base = sized_sinst(3, spec)
    sinst = ScenarioInstance(
        spec=spec,
        instance=base.instance,
        columns={**base.columns, "partner": base.columns["own"]},
        office_link_s=base.office_link_s,
    )
    lr = solve_layout(sinst, "outsourced")
    assert any("no sizes" in w for w in lr.warnings)
    assert "size" not in lr.result.solution.extras


def test_budget_with_sizes_counts_the_cheapest_sizes_and_says_what_it_proves() -> None:
    """A budget with sizes: as many workshops as the cheapest allowed sizes pay for are tried
    (not the Costs page's workshop cost), the plan kept fits the budget, and the result says
    which question it answered; a budget below the cheapest size pays for none."""
    from planner.engine.solve import network_cost_eur

    params = CostParameters(customer_time_eur_per_hour=40.0)
    spec = ScenarioSpec(
        region="tiny", workshops=2, parameters=params, sizes=SIZES, budget_per_year=95_000.0
    )
    lr = solve_layout(sized_sinst(2, spec), "in-house")
    cost = network_cost_eur(lr)
    assert cost <= 95_000.0
    assert params.workshop_fixed_cost_eur(layout="in-house") > 95_000.0  # the Costs page's
    assert 1 <= len(lr.result.sites) <= 3  # three small ones would fit 90,000
    assert any("with workshop sizes, the budget" in w for w in lr.warnings)
    poor = spec.replace(budget_per_year=20_000.0)
    with pytest.raises(InfeasibleError, match="pays for no in-house layout"):
        solve_layout(sized_sinst(2, poor), "in-house")
