"""Scenario specs, cost parameters, KPIs and the three layouts.

Unit tests solve tiny instances built in code and check them against brute force; the slow
tests run the whole chain on the bundled Liechtenstein extract.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest

from planner.engine import (
    LAYOUTS,
    ScenarioInstance,
    ScenarioSpec,
    compare,
    k_curve,
    load_scenario,
    robustness,
    save_scenario,
    slow_down_roads,
    solve_layout,
)
from planner.engine.instance import Instance
from planner.errors import InputError
from planner.results.costs import CostParameters, describe_parameters
from planner.results.kpis import service_standard_minutes, share_within_service_standard
from planner.results.tables import territories

# ----------------------------------------------------------------------------- helpers


def make_sinst(
    *,
    seed: int = 0,
    n: int = 9,
    own: int = 5,
    partners: int = 3,
    offices: int = 3,
    spec: ScenarioSpec | None = None,
) -> ScenarioInstance:
    """A scenario instance with a random cost matrix (no road graph needed)."""
    rng = np.random.default_rng(seed)
    lon = 9.5 + rng.uniform(0, 0.1, n)
    lat = 47.1 + rng.uniform(0, 0.1, n)
    customers = gpd.GeoDataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "lat": lat,
            "lon": lon,
            "weight": rng.integers(1, 6, n).astype(float),
            "segment": ["business" if i % 3 == 0 else "private" for i in range(n)],
            "snap_distance_m": np.zeros(n),
            "excluded_reason": [""] * n,
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )
    kinds = ["workshop"] * own + ["partner"] * partners + ["office"] * offices
    m = len(kinds)
    slon = 9.5 + rng.uniform(0, 0.1, m)
    slat = 47.1 + rng.uniform(0, 0.1, m)
    candidates = gpd.GeoDataFrame(
        {
            "site_id": [f"{k[0].upper()}{j}" for j, k in enumerate(kinds)],
            "name": [f"site {j}" for j in range(m)],
            "lat": slat,
            "lon": slon,
            "kind": kinds,
            "status": ["candidate"] * m,
        },
        geometry=gpd.points_from_xy(slon, slat),
        crs="EPSG:4326",
    )
    cost = rng.uniform(60.0, 1800.0, (n, m))
    inst = Instance(
        region="tiny",
        graph=nx.MultiDiGraph(),
        customers=customers,
        candidates=candidates,
        customer_snap=None,
        candidate_snap=None,
        demand_of_customer=np.arange(n),
        demand_weight=customers["weight"].to_numpy(float),
        cost_s=cost,
    )
    kinds_arr = np.array(kinds)
    columns = {
        "own": np.flatnonzero(kinds_arr == "workshop"),
        "partner": np.flatnonzero(kinds_arr == "partner"),
        "office": np.flatnonzero(kinds_arr == "office"),
    }
    link = rng.uniform(120.0, 1500.0, (offices, m))
    spec = spec or ScenarioSpec(name="tiny", region="tiny", workshops=2, time_limit_s=10)
    return ScenarioInstance(spec=spec, instance=inst, columns=columns, office_link_s=link)


def brute_p_median(cost: np.ndarray, w: np.ndarray, cols: np.ndarray, p: int) -> float:
    return min(
        float(np.sum(w * cost[:, list(combo)].min(axis=1)))
        for combo in itertools.combinations(cols.tolist(), p)
    )


def weighted_travel_s(lr) -> float:
    cust = lr.result.customers
    return float(np.sum(cust["weight"] * cust["travel_min"] * 60.0))


# ----------------------------------------------------------------------------- costs


def test_cost_parameters_derived_values_follow_their_formulas():
    p = CostParameters(technicians_per_workshop=4, jobs_per_technician=900)
    assert p.workshop_capacity_jobs == 3600
    own = p.workshop_rent_eur + 4 * p.technician_salary_eur + p.receptionist_eur
    assert p.workshop_fixed_cost_eur(layout="in-house") == own + p.workshop_parts_store_eur
    assert p.workshop_fixed_cost_eur(layout="two-tier") == own + p.two_tier_workshop_store_eur
    assert p.workshop_fixed_cost_eur(layout="outsourced") == 0
    # 10 minutes one way, round trip, per delivery
    expected = p.deliveries_per_workshop * 20 * p.delivery_cost_per_min_eur
    assert p.delivery_cost_eur(600.0) == pytest.approx(expected)
    assert p.leakage_cost_eur(1000) == pytest.approx(1000 * p.leakage_share * p.margin_per_job_eur)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"leakage_share": 1.5}, "leakage_share"),
        ({"workshop_rent_eur": -1}, "workshop_rent_eur"),
        ({"margin_per_job_eur": float("nan")}, "margin_per_job_eur"),
        ({"office_staff": "three"}, "office_staff"),
    ],
)
def test_cost_parameters_reject_bad_values(changes, field):
    with pytest.raises(InputError, match=field):
        CostParameters(**changes)


def test_unknown_cost_parameter_lists_allowed_names():
    with pytest.raises(InputError, match="partner_fee_per_job_eur") as info:
        CostParameters.from_dict({"partner_fee": 100})
    assert "partner_fee" in str(info.value)


def test_describe_parameters_covers_every_field():
    rows = describe_parameters(CostParameters(leakage_share=0.2))
    names = [r["parameter"] for r in rows]
    assert names == list(CostParameters().to_dict())
    leak = next(r for r in rows if r["parameter"] == "leakage_share")
    assert leak["value"] == 0.2
    assert leak["default"] == CostParameters().leakage_share
    assert all(r["meaning"] for r in rows)


# ----------------------------------------------------------------------------- spec files


def test_spec_round_trips_through_toml(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "customers.csv").write_text("customer_id,lat,lon\n", encoding="utf-8")
    spec = ScenarioSpec(
        name="round trip",
        region="malta",
        customers=data / "customers.csv",
        sites=data / "sites.csv",
        layout="two-tier",
        workshops=None,
        parameters=CostParameters(partner_fee_per_job_eur=155.5, customer_time_eur_per_hour=12),
        service_standard_min={"default": 40, "business": 20},
        seed=7,
        time_limit_s=12.5,
        congestion=1.2,
        speeds={"residential": 25},
        n_candidates=33,
        capacitated=True,
    )
    path = save_scenario(spec, tmp_path / "scenarios" / "s.toml")
    text = path.read_text(encoding="utf-8")
    assert 'workshops = "auto"' in text
    assert '"../data/customers.csv"' in text  # relative to the TOML's folder
    loaded = load_scenario(path)
    assert loaded == spec
    with pytest.raises(FileExistsError, match="overwrite"):
        save_scenario(spec, path)
    save_scenario(loaded.replace(seed=8), path, overwrite=True)
    assert load_scenario(path).seed == 8


def test_relative_paths_resolve_against_the_toml_folder(tmp_path: Path):
    folder = tmp_path / "client"
    folder.mkdir()
    (folder / "s.toml").write_text(
        'region = "liechtenstein"\ncustomers = "in/customers.csv"\nworkshops = 3\n',
        encoding="utf-8",
    )
    spec = load_scenario(folder / "s.toml")
    assert spec.customers == (folder / "in" / "customers.csv").resolve()
    assert spec.workshops == 3
    assert spec.parameters == CostParameters()


def test_unknown_scenario_key_names_key_and_allowed_keys(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('region = "malta"\nworkshop = 4\n', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_scenario(path)
    message = str(info.value)
    assert "workshop" in message
    assert "workshops" in message  # the allowed keys are listed
    assert "bad.toml" in message


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('layout = "franchise"\n', "in-house"),
        ("workshops = 0\n", "workshops"),
        ('workshops = "many"\n', "workshops"),
        ("[parameters]\nleakage_share = 2\n", "leakage_share"),
        ("[parameters]\nfee = 2\n", "fee"),
        ("region = \n", "TOML"),
    ],
)
def test_invalid_scenario_values_raise_input_error(tmp_path: Path, text: str, match: str):
    path = tmp_path / "s.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=match):
        load_scenario(path)


def test_example_scenarios_load(repo_root: Path):
    examples = sorted((repo_root / "examples").glob("*.toml"))
    assert examples, "examples/*.toml must exist"
    for path in examples:
        spec = load_scenario(path)
        assert spec.layout in LAYOUTS


# ----------------------------------------------------------------------------- KPIs


def test_service_standard_minutes_use_default_for_unlisted_segments():
    got = service_standard_minutes(["a", "b", "c"], {"default": 25, "b": 10})
    assert got.tolist() == [25.0, 10.0, 25.0]
    assert service_standard_minutes(["x"], None).tolist() == [30.0]


# ----------------------------------------------------------------------------- layouts


def test_in_house_matches_brute_force_p_median():
    sinst = make_sinst(seed=1)
    lr = solve_layout(sinst, "in-house", workshops=2)
    inst = sinst.instance
    best = brute_p_median(inst.cost_s, inst.demand_weight, sinst.columns["own"], 2)
    assert weighted_travel_s(lr) == pytest.approx(best, rel=1e-9)
    assert set(lr.result.sites["role"]) == {"workshop"}
    assert set(lr.result.solution.open) <= set(sinst.columns["own"].tolist())
    p = sinst.spec.parameters
    assert lr.costs.fixed_eur == pytest.approx(2 * p.workshop_fixed_cost_eur(layout="in-house"))
    assert lr.costs.fees_eur == 0
    assert lr.costs.leakage_eur == 0
    jobs = float(inst.customers["weight"].sum())
    assert lr.costs.jobs == pytest.approx(jobs)
    assert lr.costs.cost_per_job_eur == pytest.approx(lr.costs.total_eur / jobs)
    assert lr.kpis["annual_cost_eur"] == pytest.approx(lr.costs.total_eur)
    # utilisation = jobs at the site / capacity
    loads = lr.loads.set_index("site_id")
    for sid, site_jobs in lr.result.customers.groupby("site_id")["weight"].sum().items():
        assert loads.loc[sid, "jobs"] == pytest.approx(site_jobs)
        assert loads.loc[sid, "utilisation"] == pytest.approx(site_jobs / p.workshop_capacity_jobs)


def test_outsourced_costs_are_fees_and_leakage_only():
    params = CostParameters(partner_fee_per_job_eur=100, leakage_share=0.2, margin_per_job_eur=50)
    sinst = make_sinst(seed=2, spec=ScenarioSpec(region="tiny", workshops=2, parameters=params))
    lr = solve_layout(sinst, "outsourced")
    inst = sinst.instance
    best = brute_p_median(inst.cost_s, inst.demand_weight, sinst.columns["partner"], 2)
    assert weighted_travel_s(lr) == pytest.approx(best, rel=1e-9)
    jobs = float(inst.customers["weight"].sum())
    assert set(lr.result.sites["role"]) == {"partner"}
    assert lr.costs.fixed_eur == 0
    assert lr.costs.fees_eur == pytest.approx(100 * jobs)
    assert lr.costs.leakage_eur == pytest.approx(0.2 * 50 * jobs)
    assert lr.kpis["sites_partner"] == 2
    assert math.isnan(lr.kpis["max_utilisation"])  # partners have no modelled capacity


def test_outsourced_auto_uses_every_partner_nearest():
    sinst = make_sinst(seed=3, spec=ScenarioSpec(region="tiny", workshops=None))
    lr = solve_layout(sinst, "outsourced")
    cols = sinst.columns["partner"]
    cost = sinst.instance.cost_s[:, cols]
    expected = float(np.sum(sinst.instance.demand_weight * cost.min(axis=1)))
    assert weighted_travel_s(lr) == pytest.approx(expected)


def test_two_tier_office_delivery_and_fixed_costs():
    sinst = make_sinst(seed=4)
    lr = solve_layout(sinst, "two-tier", workshops=2)
    p = sinst.spec.parameters
    roles = lr.result.sites["role"].tolist()
    assert roles.count("office") == 1
    assert roles.count("workshop") == 2
    office = lr.result.sites.loc[lr.result.sites["role"] == "office", "site_id"].item()
    assert office == lr.office_id
    cands = sinst.instance.candidates
    o_row = int(np.flatnonzero(cands["site_id"].iloc[sinst.columns["office"]] == office)[0])
    ws_cols = [int(np.flatnonzero(cands["site_id"] == s)[0]) for s in lr.link_time_s]
    link = sinst.office_link_s[o_row, ws_cols]
    assert sorted(lr.link_time_s.values()) == pytest.approx(sorted(link.tolist()))
    assert lr.costs.deliveries_eur == pytest.approx(float(np.sum(p.delivery_cost_eur(link))))
    assert lr.costs.fixed_eur == pytest.approx(
        2 * p.workshop_fixed_cost_eur(layout="two-tier") + p.office_fixed_cost_eur
    )
    # the office serves no customers directly; every customer has a workshop and the office
    terr = territories(lr)
    assert (terr["office_id"] == office).all()
    assert set(terr["site_id"]) <= set(lr.link_time_s)
    # no other office is cheaper for the chosen workshops
    all_links = sinst.office_link_s[:, ws_cols]
    assert link.sum() == pytest.approx(all_links.sum(axis=1).min())


def test_customer_time_value_is_priced_on_round_trips():
    params = CostParameters(customer_time_eur_per_hour=30)
    sinst = make_sinst(seed=5, spec=ScenarioSpec(region="tiny", workshops=2, parameters=params))
    lr = solve_layout(sinst, "in-house")
    hours = weighted_travel_s(lr) * 2 / 3600
    assert lr.costs.customer_time_eur == pytest.approx(30 * hours)


def test_service_standard_share_matches_direct_count():
    spec = ScenarioSpec(
        region="tiny", workshops=2, service_standard_min={"default": 15, "business": 8}
    )
    sinst = make_sinst(seed=6, spec=spec)
    lr = solve_layout(sinst, "in-house")
    cust = lr.result.customers
    limit = np.where(cust["segment"] == "business", 8.0, 15.0)
    ok = cust["travel_min"].to_numpy() <= limit
    expected = cust["weight"][ok].sum() / cust["weight"].sum()
    assert lr.kpis["share_within_sla"] == pytest.approx(expected)
    assert share_within_service_standard(lr.result, spec.service_standard_min) == pytest.approx(
        expected
    )


def test_a_customers_own_service_standard_overrides_its_segment():
    # a generous segment standard that every customer meets, so only the override can fail one
    spec = ScenarioSpec(region="tiny", workshops=2, service_standard_min={"default": 1000})
    sinst = make_sinst(seed=6, spec=spec)
    lr = solve_layout(sinst, "in-house")
    cust = lr.result.customers.copy()
    t = cust["travel_min"].to_numpy()
    # the customer with the longest trip gets a standard just below it; the others state no
    # standard of their own and keep the segment's
    own = np.full(len(cust), np.nan)
    far = int(np.nanargmax(t))
    own[far] = t[far] * 0.99
    cust["service_max_min"] = own
    result = dataclasses.replace(lr.result, customers=cust)
    limit = np.where(np.isnan(own), 1000.0, own)
    ok = t <= limit
    expected = cust["weight"][ok].sum() / cust["weight"].sum()
    assert share_within_service_standard(result, spec.service_standard_min) == pytest.approx(
        expected
    )
    assert not ok[far]
    assert expected < 1.0


def test_territories_assign_every_customer_its_nearest_open_site():
    sinst = make_sinst(seed=7)
    lr = solve_layout(sinst, "in-house", workshops=3)
    terr = territories(lr)
    cands = sinst.instance.candidates["site_id"].astype(str).tolist()
    open_cols = [cands.index(s) for s in lr.result.sites["site_id"]]
    nearest = np.asarray(open_cols)[np.argmin(sinst.instance.cost_s[:, open_cols], axis=1)]
    assert terr["site_id"].tolist() == [cands[j] for j in nearest]
    assert (terr["office_id"] == "").all()
    assert len(terr) == len(sinst.instance.customers)


def test_compare_layouts_table_and_site_diff():
    sinst = make_sinst(seed=8)
    comp = compare(sinst.spec.replace(workshops=2), sinst=sinst)
    assert comp.table["layout"].tolist() == list(LAYOUTS)
    for col in (
        "sites",
        "mean_travel_min",
        "p90_travel_min",
        "share_within_sla",
        "annual_cost",
        "cost_per_job",
        "optimal",
        "gap",
    ):
        assert col in comp.table
    sets = {k: set(v.result.sites["site_id"]) for k, v in comp.results.items()}
    diff = comp.site_diff.set_index("site_id")
    assert set(diff.index) == set().union(*sets.values())
    for sid, row in diff.iterrows():
        inside = [k for k in LAYOUTS if sid in sets[k]]
        assert row["layouts"] == len(inside)
        assert [k for k in LAYOUTS if row[k]] == inside
        if len(inside) == 1:
            assert row["presence"] == f"only {inside[0]}"
        if len(inside) == 3:
            assert row["presence"] == "all"
    for layout, lr in comp.results.items():
        row = comp.table.set_index("layout").loc[layout]
        assert row["annual_cost"] == pytest.approx(lr.costs.total_eur)


def test_k_curve_travel_falls_and_fixed_cost_grows_linearly():
    sinst = make_sinst(seed=9, own=6)
    curve = k_curve(sinst, 6)
    assert curve["workshops"].tolist() == [1, 2, 3, 4, 5, 6]
    mean = curve["mean_travel_min"].to_numpy()
    assert np.all(np.diff(mean) <= 1e-9)
    fixed_one = sinst.spec.parameters.workshop_fixed_cost_eur(layout="in-house")
    assert curve["fixed_eur"].tolist() == pytest.approx([k * fixed_one for k in range(1, 7)])
    assert curve["saved_min"].iloc[1:].tolist() == pytest.approx((-np.diff(mean)).tolist())
    assert curve.attrs["best_k"] == int(curve.loc[curve["annual_cost"].idxmin(), "workshops"])
    assert not curve["pays"].any()  # customer time not valued


def test_k_curve_pays_when_customer_time_is_valuable():
    params = CostParameters(customer_time_eur_per_hour=1e6)
    sinst = make_sinst(seed=10, spec=ScenarioSpec(region="tiny", workshops=2, parameters=params))
    curve = k_curve(sinst, 3)
    # an hour of customer time is worth more than any workshop: every step that saves time pays
    saved = curve["saved_min"].iloc[1:] > 1e-9
    assert (curve["pays"].iloc[1:] == saved).all()
    assert curve.attrs["best_k"] == 3


def test_robustness_without_change_keeps_every_site():
    sinst = make_sinst(seed=11)
    rob = robustness(sinst, growth={"business": 0.0}, slowdown=1.0)
    assert rob.cases["case"].tolist() == ["base", "business +0%"]
    assert rob.cases["sites"].iloc[0] == rob.cases["sites"].iloc[1]
    assert sorted(rob.stable_sites) == rob.cases["sites"].iloc[0]


def test_robustness_growth_changes_demand_and_stable_is_intersection():
    sinst = make_sinst(seed=12, n=12)
    rob = robustness(sinst, growth={"business": 5.0, "private": 0.5}, slowdown=1.0)
    assert len(rob.cases) == 4  # base, two segments, all together
    sets = [set(s) for s in rob.cases["sites"]]
    assert set(rob.stable_sites) == set.intersection(*sets)
    # the business case re-solves a p-median with business weights x6: check by brute force
    inst = sinst.instance
    w = inst.customers["weight"].to_numpy(float).copy()
    w[inst.customers["segment"].to_numpy() == "business"] *= 6.0
    combo_cost = {
        combo: float(np.sum(w * inst.cost_s[:, list(combo)].min(axis=1)))
        for combo in itertools.combinations(sinst.columns["own"].tolist(), 2)
    }
    best = min(combo_cost, key=combo_cost.get)
    ids = inst.candidates["site_id"].to_numpy()
    got = rob.cases.set_index("case").loc["business +500%", "sites"]
    assert combo_cost[tuple(sorted(int(np.flatnonzero(ids == s)[0]) for s in got))] == (
        pytest.approx(combo_cost[best])
    )


def test_slow_down_roads_scales_only_chosen_classes():
    G = nx.MultiDiGraph()
    G.add_edge(1, 2, highway="primary", travel_time=10.0, speed_kph=60.0)
    G.add_edge(2, 3, highway="residential", travel_time=20.0, speed_kph=30.0)
    G.add_edge(3, 4, highway=["secondary", "tertiary"], travel_time=5.0, speed_kph=50.0)
    H = slow_down_roads(G, 1.5)
    assert H[1][2][0]["travel_time"] == pytest.approx(15.0)
    assert H[1][2][0]["speed_kph"] == pytest.approx(40.0)
    assert H[2][3][0]["travel_time"] == pytest.approx(20.0)
    assert H[3][4][0]["travel_time"] == pytest.approx(7.5)
    assert G[1][2][0]["travel_time"] == 10.0  # the input is not modified
    every = slow_down_roads(G, 2.0, highways=None)
    assert every[2][3][0]["travel_time"] == pytest.approx(40.0)
    with pytest.raises(InputError):
        slow_down_roads(G, 0.0)


def test_layout_without_candidates_of_its_kind_says_what_is_missing():
    sinst = make_sinst(seed=13, partners=0)
    with pytest.raises(InputError, match="partner"):
        solve_layout(sinst, "outsourced")


def test_auto_workshops_needs_customer_time_value():
    sinst = make_sinst(seed=14, spec=ScenarioSpec(region="tiny", workshops=None))
    with pytest.raises(InputError, match="customer_time_eur_per_hour"):
        solve_layout(sinst, "in-house")


def test_provenance_carries_spec_solver_and_seed():
    sinst = make_sinst(seed=15, spec=ScenarioSpec(region="tiny", workshops=2, seed=42))
    lr = solve_layout(sinst, "in-house")
    prov = lr.result.provenance
    assert prov["seed"] == 42
    assert prov["solver"] == lr.result.solution.solver
    assert prov["scenario"]["workshops"] == 2
    assert prov["scenario"]["layout"] == "in-house"
    assert prov["packages"]["highspy"] != "not installed"
    assert ScenarioSpec.from_dict(prov["scenario"]).parameters == sinst.spec.parameters


# ----------------------------------------------------------------------------- bundled data


@pytest.fixture(scope="module")
def liechtenstein_comparison():
    from planner.engine import prepare_scenario
    from planner.inputs.customers import load_demo_customers

    spec = ScenarioSpec(
        name="Liechtenstein test", region="liechtenstein", workshops=3, n_candidates=15
    )
    customers = load_demo_customers("liechtenstein", n=300, seed=0)
    sinst = prepare_scenario(spec, layouts=LAYOUTS, customers=customers)
    return sinst, compare(spec, sinst=sinst)


@pytest.mark.slow
def test_liechtenstein_three_layouts_on_real_roads(liechtenstein_comparison):
    _sinst, comp = liechtenstein_comparison
    table = comp.table.set_index("layout")
    assert list(table.index) == list(LAYOUTS)
    assert (table["sites"] == 3).all()
    assert table.loc["two-tier", "offices"] == 1
    assert table["mean_travel_min"].gt(0).all()
    assert table["optimal"].all() or table["gap"].max() < 0.05
    # in-house p-median is optimal over own candidates: the two-tier workshops (same
    # candidates, also chosen for travel) cannot beat it on mean travel time
    assert (
        table.loc["in-house", "mean_travel_min"] <= table.loc["two-tier", "mean_travel_min"] + 1e-6
    )
    lr = comp.results["in-house"]
    served = lr.result.customers["travel_min"].notna()
    assert served.mean() > 0.95


@pytest.mark.slow
def test_liechtenstein_robustness_with_slower_main_roads(liechtenstein_comparison):
    sinst, _ = liechtenstein_comparison
    rob = robustness(sinst, layout="in-house", workshops=3, growth={"business": 0.3})
    assert rob.cases["case"].tolist()[-1].startswith("main roads")
    slow = rob.cases.iloc[-1]
    base = rob.cases.iloc[0]
    assert slow["mean_travel_min"] >= base["mean_travel_min"] - 1e-9
    assert set(rob.stable_sites) == set.intersection(*[set(s) for s in rob.cases["sites"]])


def test_two_tier_with_valued_time_is_the_cheapest_office_and_workshops():
    params = CostParameters(customer_time_eur_per_hour=40, delivery_cost_per_min_eur=5.0)
    spec = ScenarioSpec(region="tiny", workshops=2, parameters=params)
    sinst = make_sinst(seed=16, own=5, offices=3, spec=spec)
    lr = solve_layout(sinst, "two-tier")
    inst = sinst.instance
    w = inst.demand_weight
    ws = sinst.columns["own"].tolist()
    fixed = 2 * params.workshop_fixed_cost_eur(layout="two-tier") + params.office_fixed_cost_eur
    best = math.inf
    for o in range(sinst.office_link_s.shape[0]):
        for combo in itertools.combinations(ws, 2):
            travel_s = float(np.sum(w * inst.cost_s[:, list(combo)].min(axis=1)))
            total = (
                fixed
                + params.customer_time_cost_eur(np.ones(1), np.array([travel_s]))
                + float(np.sum(params.delivery_cost_eur(sinst.office_link_s[o, list(combo)])))
            )
            best = min(best, total)
    assert lr.costs.total_eur == pytest.approx(best, rel=1e-7)
    assert lr.result.solution.model.startswith("two_tier")


def test_capacitated_in_house_respects_workshop_capacity():
    # 3 jobs per workshop: a 2-workshop plan must split demand evenly enough
    params = CostParameters(technicians_per_workshop=1, jobs_per_technician=10)
    spec = ScenarioSpec(region="tiny", workshops=2, parameters=params, capacitated=True)
    sinst = make_sinst(seed=17, n=6, own=4, spec=spec)
    lr = solve_layout(sinst, "in-house")
    assert (lr.loads["jobs"] <= 10 + 1e-9).all()
    inst = sinst.instance
    w = inst.demand_weight
    cols = sinst.columns["own"].tolist()
    best = math.inf
    for combo in itertools.combinations(cols, 2):  # brute force over single-source assignments
        for assign in itertools.product(combo, repeat=len(w)):
            load = {j: w[np.array(assign) == j].sum() for j in combo}
            if max(load.values()) <= 10:
                best = min(best, float(np.sum(w * inst.cost_s[np.arange(len(w)), assign])))
    assert weighted_travel_s(lr) == pytest.approx(best, rel=1e-7)


def test_per_segment_service_standard_shares():
    spec = ScenarioSpec(
        region="tiny", workshops=2, service_standard_min={"default": 15, "business": 8}
    )
    sinst = make_sinst(seed=18, n=12, spec=spec)
    lr = solve_layout(sinst, "in-house")
    cust = lr.result.customers
    for segment, limit in (("business", 8.0), ("private", 15.0)):
        mine = cust[cust["segment"] == segment]
        expected = mine["weight"][mine["travel_min"] <= limit].sum() / mine["weight"].sum()
        assert lr.kpis[f"share_within_sla_{segment}"] == pytest.approx(expected)


def test_over_capacity_is_flagged_when_capacity_is_not_enforced():
    params = CostParameters(technicians_per_workshop=1, jobs_per_technician=2)
    sinst = make_sinst(seed=19, spec=ScenarioSpec(region="tiny", workshops=1, parameters=params))
    lr = solve_layout(sinst, "in-house")
    assert lr.loads["utilisation"].iloc[0] == pytest.approx(lr.costs.jobs / 2)
    assert any("over capacity" in w for w in lr.result.warnings)
    roomy = make_sinst(seed=19, spec=ScenarioSpec(region="tiny", workshops=1))
    assert not any("over capacity" in w for w in solve_layout(roomy, "in-house").result.warnings)


def test_two_tier_with_partner_workshops_is_the_cheapest_mix():
    params = CostParameters(
        customer_time_eur_per_hour=60,
        workshop_rent_eur=0,
        technician_salary_eur=0,
        receptionist_eur=0,
        two_tier_workshop_store_eur=300,
        partner_fee_per_job_eur=10,
    )
    spec = ScenarioSpec(region="tiny", workshops=2, parameters=params, two_tier_partners=True)
    sinst = make_sinst(seed=20, own=3, partners=3, offices=2, spec=spec)
    lr = solve_layout(sinst, "two-tier")
    inst = sinst.instance
    w = inst.demand_weight
    partner = set(sinst.columns["partner"].tolist())
    cols = [*sinst.columns["own"].tolist(), *sorted(partner)]
    fixed_own = params.workshop_fixed_cost_eur(layout="two-tier")
    per_job = params.partner_fee_per_job_eur + params.leakage_cost_eur(1.0)
    tv = params.customer_time_eur_per_hour * 2 / 3600
    best = math.inf
    for o in range(2):
        for combo in itertools.combinations(cols, 2):
            money = tv * inst.cost_s[:, list(combo)] + np.array(
                [per_job if j in partner else 0.0 for j in combo]
            )
            total = (
                float(np.sum(w * money.min(axis=1)))
                + sum(fixed_own for j in combo if j not in partner)
                + params.office_fixed_cost_eur
                + float(np.sum(params.delivery_cost_eur(sinst.office_link_s[o, list(combo)])))
            )
            best = min(best, total)
    assert lr.costs.total_eur == pytest.approx(best, rel=1e-7)
    # with these costs the cheapest plan mixes an own workshop and a partner
    assert sorted(lr.result.sites["role"]) == ["office", "partner", "workshop"]
    assert lr.costs.fees_eur > 0
    assert lr.costs.fixed_eur == pytest.approx(fixed_own + params.office_fixed_cost_eur)
