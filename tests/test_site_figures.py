"""Each site's own fixed cost and capacity (issue 26, item 1).

A sites file's ``fixed_cost`` (the site's yearly rent, in place of ``workshop_rent_eur``) and
``capacity`` (jobs per year) reach every model, the costs, the loads and the shortlist. Tiny
instances on a road grid built in code are solved through ``planner.run`` and checked against
brute force over every set of sites; the measured case runs ``planner run`` on Malta.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import planner
from planner.cli import main
from planner.engine import ScenarioSpec, prepare_scenario
from planner.engine.solve import network_cost_eur
from planner.inputs.customers import customers_frame
from planner.inputs.sites import sites_frame
from planner.results.costs import CostParameters
from planner.results.site_figures import site_figures

PARAMS = CostParameters(customer_time_eur_per_hour=30.0)
#: what a workshop costs on top of its rent (staff, receptionist, parts store)
UPKEEP = PARAMS.workshop_fixed_cost_eur(layout="in-house") - PARAMS.workshop_rent_eur


def grid_graph(n: int = 6) -> nx.MultiDiGraph:
    """An n x n grid of two-way streets with distinct travel times (built in code)."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=9.5 + 0.004 * j, y=47.1 + 0.004 * i)
    for i in range(n):
        for j in range(n):
            a = i * n + j
            for b in ([a + 1] if j + 1 < n else []) + ([a + n] if i + 1 < n else []):
                G.add_edge(a, b, travel_time=60.0 + (a * 7 + b) % 13 * 20, length=300.0)
                G.add_edge(b, a, travel_time=70.0 + (a * 5 + b) % 11 * 20, length=300.0)
    return G


def node_xy(G: nx.MultiDiGraph, node: int) -> tuple[float, float]:
    return float(G.nodes[node]["y"]), float(G.nodes[node]["x"])


def customers_at(G: nx.MultiDiGraph, nodes: list[int], weights: list[float]) -> pd.DataFrame:
    lat, lon = zip(*(node_xy(G, v) for v in nodes), strict=True)
    return customers_frame(
        pd.DataFrame(
            {"customer_id": [f"c{i}" for i in range(len(nodes))], "lat": lat, "lon": lon}
        ).assign(weight=weights)
    )


def sites_at(
    G: nx.MultiDiGraph,
    nodes: list[int],
    fixed_cost: list[float],
    capacity: list[float],
    kind: list[str] | None = None,
) -> pd.DataFrame:
    lat, lon = zip(*(node_xy(G, v) for v in nodes), strict=True)
    return sites_frame(
        {
            "site_id": [f"S{j}" for j in range(len(nodes))],
            "name": [f"site {j}" for j in range(len(nodes))],
            "lat": lat,
            "lon": lon,
            "kind": kind or ["workshop"] * len(nodes),
            "fixed_cost": fixed_cost,
            "capacity": capacity,
        }
    )


def prepared(spec: ScenarioSpec, customers: pd.DataFrame, sites: pd.DataFrame, layouts=None):  # type: ignore[no-untyped-def]
    G = grid_graph()
    return prepare_scenario(spec, layouts=layouts, graph=G, customers=customers, sites=sites)


def own_fixed(sites: pd.DataFrame, params: CostParameters = PARAMS) -> np.ndarray:
    """Each site's yearly fixed cost as the issue states it, computed here independently."""
    rent = sites["fixed_cost"].to_numpy(float)
    default = params.workshop_fixed_cost_eur(layout="in-house")
    upkeep = default - params.workshop_rent_eur
    return np.where(np.isfinite(rent), rent + upkeep, default)


def own_capacity(sites: pd.DataFrame, params: CostParameters = PARAMS) -> np.ndarray:
    cap = sites["capacity"].to_numpy(float)
    return np.where(np.isfinite(cap), cap, params.workshop_capacity_jobs)


def time_value(params: CostParameters = PARAMS) -> float:
    return params.customer_time_eur_per_hour * params.jobs_per_weight * 2.0 / 3600.0


def subsets(m: int, sizes: range | None = None):  # type: ignore[no-untyped-def]
    for k in sizes or range(1, m + 1):
        yield from itertools.combinations(range(m), k)


def best_single_source(
    cost: np.ndarray, w: np.ndarray, cap: np.ndarray, open_sites: tuple[int, ...]
) -> float:
    """Least weighted travel assigning every demand point to one open site within capacity."""
    best = np.inf
    sub = cost[:, list(open_sites)]
    for choice in itertools.product(range(len(open_sites)), repeat=cost.shape[0]):
        pick = np.asarray(choice)
        load = np.bincount(pick, weights=w, minlength=len(open_sites))
        if np.all(load <= cap[list(open_sites)] + 1e-9):
            best = min(best, float(np.sum(w * sub[np.arange(cost.shape[0]), pick])))
    return best


# ----------------------------------------------------------------------------- the figures


def test_site_figures_take_the_files_rent_and_capacity_else_the_defaults() -> None:
    params = CostParameters()
    sites = pd.DataFrame(
        {
            "kind": ["workshop", "workshop", "partner", "partner", "office", "office"],
            "fixed_cost": [18_000, np.nan, 5_000, np.nan, 50_000, np.nan],
            "capacity": [1_500, np.nan, 300, np.nan, 999, np.nan],
        }
    )
    fig = site_figures(sites, params)
    staff_and_store = (
        params.technicians_per_workshop * params.technician_salary_eur
        + params.receptionist_eur
        + params.workshop_parts_store_eur
    )
    assert fig["fixed_cost_eur"].tolist() == [
        18_000 + staff_and_store,
        params.workshop_fixed_cost_eur(layout="in-house"),
        0.0,
        0.0,
        50_000 + params.office_fixed_cost_eur - params.office_rent_eur,
        params.office_fixed_cost_eur,
    ]
    assert fig["fixed_cost_source"].tolist() == [
        "file",
        "default",
        "none",
        "none",
        "file",
        "default",
    ]
    cap = fig["capacity_jobs"].to_numpy(float)
    assert cap[:4].tolist() == [
        1_500,
        params.workshop_capacity_jobs,
        300,
        params.partner_capacity_jobs,
    ]
    assert np.isnan(cap[4:]).all()
    assert fig["capacity_source"].tolist() == ["file", "default", "file", "default", "none", "none"]
    two_tier = site_figures(sites, params, layout="two-tier")["fixed_cost_eur"].iloc[0]
    assert two_tier == 18_000 + params.workshop_fixed_cost_eur(layout="two-tier") - 30_000


# ----------------------------------------------------------------------------- brute force

NODES_C = [0, 5, 8, 14, 21, 27, 30, 35]
WEIGHTS = [120.0, 80.0, 200.0, 60.0, 150.0, 90.0, 110.0, 70.0]
NODES_S = [7, 10, 20, 25, 33]
RENTS = [90_000.0, np.nan, 5_000.0, 250_000.0, 12_000.0]
CAPS = [900.0, np.nan, 300.0, 600.0, 1_000.0]


def test_fixed_charge_through_run_matches_brute_force_with_each_sites_rent() -> None:
    G = grid_graph()
    customers = customers_at(G, NODES_C, [300 * x for x in WEIGHTS])  # travel weighs in
    sites = sites_at(G, NODES_S, RENTS, CAPS)
    spec = ScenarioSpec(region="grid", workshops=None, parameters=PARAMS, time_limit_s=20)
    sinst = prepared(spec, customers, sites)
    inst = sinst.instance
    cols = sinst.columns["own"]
    f = own_fixed(sites)
    cost, w = inst.cost_s[:, cols], inst.demand_weight
    tv = time_value()

    def best(fixed: np.ndarray) -> tuple[float, set[str]]:
        value, chosen = min(
            (float(fixed[list(s)].sum() + tv * np.sum(w * cost[:, list(s)].min(axis=1))), s)
            for s in subsets(len(cols))
        )
        return value, {f"S{j}" for j in chosen}

    brute, brute_sites = best(f)
    # the rents matter: with every site at the default cost another set would be best
    assert best(np.full(f.size, PARAMS.workshop_fixed_cost_eur()))[1] != brute_sites
    lr = planner.run(spec, sinst=sinst)
    assert set(lr.result.sites["site_id"]) == brute_sites
    assert lr.solution.optimal
    assert lr.solution.objective == pytest.approx(brute, rel=1e-9)
    # the costs and the loads use each open site's own figures
    opened = [int(np.flatnonzero(cols == j)[0]) for j in lr.solution.open]
    assert lr.costs.fixed_eur == pytest.approx(float(f[opened].sum()))
    loads = lr.loads.set_index("site_id")
    for j in opened:
        sid = f"S{j}"
        assert loads.loc[sid, "fixed_cost_eur"] == pytest.approx(f[j])
        assert loads.loc[sid, "capacity_jobs"] == pytest.approx(own_capacity(sites)[j])
        assert loads.loc[sid, "fixed_cost_source"] == ("default" if j == 1 else "file")
        assert loads.loc[sid, "capacity_source"] == ("default" if j == 1 else "file")


@pytest.mark.parametrize("workshops", [None, 2])
def test_capacitated_through_run_matches_brute_force_with_each_sites_capacity(
    workshops: int | None,
) -> None:
    G = grid_graph()
    customers = customers_at(G, NODES_C[:6], [300.0, 250.0, 200.0, 350.0, 150.0, 250.0])
    sites = sites_at(
        G, NODES_S[:4], [40_000.0, 10_000.0, np.nan, 20_000.0], [700.0, 500.0, np.nan, 900.0]
    )
    params = PARAMS.replace(technicians_per_workshop=1.0)  # default capacity 1,000 jobs
    spec = ScenarioSpec(
        region="grid", workshops=workshops, parameters=params, capacitated=True, time_limit_s=30
    )
    sinst = prepared(spec, customers, sites)
    inst = sinst.instance
    cols = sinst.columns["own"]
    cost, w = inst.cost_s[:, cols], inst.demand_weight
    assert cost.shape[0] == 6
    f, cap = own_fixed(sites, params), own_capacity(sites, params)
    tv = time_value(params)
    if workshops is None:
        brute = min(
            float(f[list(s)].sum()) + tv * best_single_source(cost, w, cap, s)
            for s in subsets(len(cols))
        )
    else:
        brute = min(best_single_source(cost, w, cap, s) for s in subsets(len(cols), range(2, 3)))
    assert np.isfinite(brute)
    lr = planner.run(spec, sinst=sinst)
    assert lr.solution.optimal
    assert lr.solution.objective == pytest.approx(brute, rel=1e-9)
    loads = lr.loads.set_index("site_id")
    for sid, row in loads.iterrows():
        j = int(str(sid)[1:])
        assert row["capacity_jobs"] == pytest.approx(cap[j])
        assert row["jobs"] <= cap[j] + 1e-6
    assert not [x for x in lr.warnings if "over capacity" in x]


def test_budget_through_run_matches_brute_force_with_each_sites_rent() -> None:
    G = grid_graph()
    customers = customers_at(G, NODES_C, WEIGHTS)
    sites = sites_at(G, NODES_S, RENTS, CAPS)
    f = own_fixed(sites)
    budget = float(np.sort(f)[:2].sum() + 30_000)  # the two cheapest fit, with some room
    spec = ScenarioSpec(region="grid", budget_per_year=budget, parameters=PARAMS, time_limit_s=20)
    sinst = prepared(spec, customers, sites)
    inst = sinst.instance
    cols = sinst.columns["own"]
    cost, w = inst.cost_s[:, cols], inst.demand_weight
    fits = [s for s in subsets(len(cols)) if f[list(s)].sum() <= budget]
    brute = min(float(np.sum(w * cost[:, list(s)].min(axis=1))) for s in fits)
    lr = planner.run(spec, sinst=sinst)
    assert network_cost_eur(lr) <= budget
    assert lr.solution.optimal
    assert lr.solution.objective == pytest.approx(brute, rel=1e-9)
    assert lr.result.provenance["budget_per_year"] == budget
    # the least-travel pair of the same size would not fit: the rents decided
    k = int(lr.kpis["sites"])
    best_k = min(
        subsets(len(cols), range(k, k + 1)), key=lambda s: np.sum(w * cost[:, list(s)].min(axis=1))
    )
    assert f[list(best_k)].sum() > budget or np.sum(
        w * cost[:, list(best_k)].min(axis=1)
    ) == pytest.approx(brute)


def test_two_tier_through_run_matches_brute_force_with_each_sites_rent() -> None:
    G = grid_graph()
    customers = customers_at(G, NODES_C, WEIGHTS)
    sites = sites_at(
        G,
        [*NODES_S[:4], 3, 32],
        [*RENTS[:4], 400_000.0, 1_000.0],
        [*CAPS[:4], np.nan, np.nan],
        kind=["workshop"] * 4 + ["office"] * 2,
    )
    spec = ScenarioSpec(
        region="grid", layout="two-tier", workshops=None, parameters=PARAMS, time_limit_s=20
    )
    sinst = prepared(spec, customers, sites, layouts=["two-tier"])
    inst = sinst.instance
    ws, offices = sinst.columns["own"], sinst.columns["office"]
    fig = site_figures(inst.candidates, PARAMS, layout="two-tier")["fixed_cost_eur"].to_numpy()
    rents = sites["fixed_cost"].to_numpy(float)
    assert fig[offices].tolist() == [
        r + PARAMS.office_fixed_cost_eur - PARAMS.office_rent_eur for r in rents[4:]
    ]
    cost, w = inst.cost_s[:, ws], inst.demand_weight
    link = sinst.office_link_s[:, ws]
    per_delivery = PARAMS.deliveries_per_workshop * 2.0 * PARAMS.delivery_cost_per_min_eur / 60.0
    tv = time_value()
    brute = min(
        float(
            fig[offices[o]]
            + sum(fig[ws[j]] + per_delivery * link[o, j] for j in s)
            + tv * np.sum(w * cost[:, list(s)].min(axis=1))
        )
        for o in range(offices.size)
        for s in subsets(ws.size)
    )
    lr = planner.run(spec, sinst=sinst)
    assert lr.solution.optimal
    assert lr.solution.objective == pytest.approx(brute, rel=1e-9)
    assert lr.office_id == "S5"  # the cheap office, not the 400,000 EUR one
    expected_fixed = sum(fig[j] for j in lr.solution.open)
    assert lr.costs.fixed_eur == pytest.approx(expected_fixed)


@pytest.mark.parametrize("workshops", [None, 2])
def test_a_dear_site_is_not_chosen_when_an_equal_cheaper_one_exists(
    workshops: int | None,
) -> None:
    G = grid_graph()
    customers = customers_at(G, NODES_C, WEIGHTS)
    # "dear" and "cheap" stand at the same street corner; "dear" asks 9,000,000 EUR a year
    # and comes first in the file
    sites = sites_at(G, [20, 20, 7, 33], [9_000_000.0, 20_000.0, 20_000.0, 20_000.0], [np.nan] * 4)
    sites["site_id"] = ["dear", "cheap", "S2", "S3"]
    spec = ScenarioSpec(region="grid", workshops=workshops, parameters=PARAMS, time_limit_s=20)
    lr = planner.run(spec, sinst=prepared(spec, customers, sites))
    chosen = set(lr.result.sites["site_id"])
    assert "dear" not in chosen
    assert lr.costs.fixed_eur < 9_000_000


# ----------------------------------------------------------------------------- measured case


@pytest.mark.slow
def test_planner_run_on_malta_uses_each_sites_rent_and_capacity(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The case measured in issue 26: Qormi at 18,000 EUR / 1,500 jobs, Mosta at 15,000 /
    1,200, two workshops on the Malta demo customers."""
    sites = tmp_path / "sites.csv"
    sites.write_text(
        "name,lat,lon,kind,fixed_cost,capacity\n"
        "Qormi,35.8760,14.4720,workshop,18000,1500\n"
        "Mosta,35.9095,14.4260,workshop,15000,1200\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert main(["run", "--sites", str(sites), "--workshops", "2", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    err = captured.err
    short = pd.read_csv(out / "shortlist.csv").set_index("name")
    assert short.loc["Qormi", "capacity_jobs"] == 1_500
    assert short.loc["Mosta", "capacity_jobs"] == 1_200
    assert set(short["capacity_source"]) == {"file"}
    assert set(short["fixed_cost_source"]) == {"file"}
    default = CostParameters()
    upkeep = default.workshop_fixed_cost_eur(layout="in-house") - default.workshop_rent_eur
    assert short.loc["Qormi", "fixed_cost_eur"] == 18_000 + upkeep
    assert short.loc["Mosta", "fixed_cost_eur"] == 15_000 + upkeep
    for name, cap in (("Qormi", 1_500), ("Mosta", 1_200)):
        jobs = short.loc[name, "jobs"]
        assert short.loc[name, "utilisation"] == pytest.approx(jobs / cap)
        # warned against the site's own capacity, never the Costs page's 3,000
        if jobs > cap:
            assert f"{name} ({jobs:,.0f} jobs, capacity {cap:,} jobs/year" in err
    assert "3,000 jobs/year" not in err
    # the yearly cost is the two sites' own figures, not 2 x 238,000
    total = 18_000 + 15_000 + 2 * upkeep
    assert f"annual cost {total:,.0f} EUR" in captured.out + err
    sheets = pd.read_excel(out / "plan.xlsx", sheet_name=None)
    (listed,) = [sheet for sheet in sheets.values() if "fixed_cost_eur" in sheet]
    assert listed["fixed_cost_eur"].sum() == total
    assert set(listed["capacity_jobs"]) == {1_500, 1_200}
