"""The pipeline on a tiny street graph built in code, checked by brute force."""

from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from planner.engine import plan_workshops
from planner.engine.instance import prepare_instance
from planner.engine.solve import build_result
from planner.results.kpis import compute_kpis, weighted_quantile
from planner.roads.snapping import snap_points
from planner.routing.matrix import snapped_travel_time_matrix

TO_UTM = Transformer.from_crs(4326, 32632, always_xy=True)
TO_LONLAT = Transformer.from_crs(32632, 4326, always_xy=True)
X0, Y0 = TO_UTM.transform(9.52, 47.14)


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    lon, lat = TO_LONLAT.transform(X0 + x_m, Y0 + y_m)
    return float(lon), float(lat)


def grid_graph() -> nx.MultiDiGraph:
    """A 3 x 3 grid of two-way streets, 1 km apart, 60 s per block (one slow block)."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i, j in itertools.product(range(3), range(3)):
        lon, lat = lonlat(1000.0 * i, 1000.0 * j)
        G.add_node(3 * i + j, x=lon, y=lat)
    for i, j in itertools.product(range(3), range(3)):
        for di, dj in ((1, 0), (0, 1)):
            if i + di < 3 and j + dj < 3:
                a, b = 3 * i + j, 3 * (i + di) + (j + dj)
                tt = 180.0 if (a, b) == (0, 3) else 60.0
                G.add_edge(a, b, length=1000.0, travel_time=tt, speed_kph=60.0)
                G.add_edge(b, a, length=1000.0, travel_time=tt, speed_kph=60.0)
    return G


def frame(points: list[tuple[float, float]], **columns: list) -> gpd.GeoDataFrame:
    lon, lat = zip(*(lonlat(x, y) for x, y in points), strict=True)
    df = pd.DataFrame({"lon": lon, "lat": lat, **columns})
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")


@pytest.fixture
def inputs() -> tuple[nx.MultiDiGraph, gpd.GeoDataFrame, gpd.GeoDataFrame]:
    G = grid_graph()
    # customers 0 and 1 sit at the same road position (x=300 on street 0-3) at different
    # distances from it: one demand point with two access times
    customers = frame(
        [(300, 20), (300, -80), (1000, 600), (2000, 1500), (1500, 2010), (40, 1990)],
        customer_id=["a", "b", "c", "d", "e", "f"],
        weight=[1.0, 2.0, 3.0, 1.0, 4.0, 2.0],
        segment=["private"] * 6,
    )
    candidates = frame(
        [(0, 500), (1000, 1000), (2000, 500), (1500, 2000)],
        site_id=["S0", "S1", "S2", "S3"],
        name=["zero", "one", "two", "three"],
        kind=["workshop"] * 4,
        status=["candidate"] * 4,
    )
    return G, customers, candidates


def test_instance_aggregates_customers_at_one_road_position(inputs) -> None:
    G, customers, candidates = inputs
    inst = prepare_instance("grid", customers, candidates, graph=G)
    assert inst.demand_of_customer[0] == inst.demand_of_customer[1]
    assert len(inst.demand_weight) == 5
    assert inst.demand_weight[inst.demand_of_customer[0]] == 3.0
    assert inst.demand_weight.sum() == customers["weight"].sum()
    # per customer, demand-point cost + own offset == the customer's own snapped travel time
    full = snapped_travel_time_matrix(
        G,
        snap_points(G, customers.lon.to_numpy(), customers.lat.to_numpy()),
        snap_points(G, candidates.lon.to_numpy(), candidates.lat.to_numpy()),
    )
    rebuilt = inst.cost_s[inst.demand_of_customer] + inst.access_offset_s[:, None]
    np.testing.assert_allclose(rebuilt, full, rtol=0, atol=1e-9)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_plan_matches_brute_force_per_customer(inputs, p: int) -> None:
    G, customers, candidates = inputs
    full = snapped_travel_time_matrix(
        G,
        snap_points(G, customers.lon.to_numpy(), customers.lat.to_numpy()),
        snap_points(G, candidates.lon.to_numpy(), candidates.lat.to_numpy()),
    )
    w = customers["weight"].to_numpy()
    best = min(
        itertools.combinations(range(4), p),
        key=lambda cols: float(w @ full[:, list(cols)].min(axis=1)),
    )
    best_value = float(w @ full[:, list(best)].min(axis=1))

    result = plan_workshops("grid", p, customers, candidates, graph=G)
    assert result.solution.optimal
    assert sorted(result.sites["site_id"]) == [f"S{j}" for j in best]
    t_min = result.customers["travel_min"].to_numpy()
    assert float(w @ t_min) * 60 == pytest.approx(best_value)
    np.testing.assert_allclose(t_min * 60, full[:, list(best)].min(axis=1))
    assert result.kpis["mean_travel_min"] == pytest.approx(best_value / w.sum() / 60)
    shortlist = result.shortlist()
    assert shortlist["customers"].sum() == len(customers)
    assert shortlist["demand_share"].sum() == pytest.approx(1.0)


def test_existing_sites_stay_open_and_excluded_never_open(inputs) -> None:
    G, customers, candidates = inputs
    candidates = candidates.assign(status=["existing", "excluded", "candidate", "candidate"])
    result = plan_workshops("grid", 2, customers, candidates, graph=G)
    assert "S0" in set(result.sites["site_id"])
    assert "S1" not in set(result.sites["site_id"])
    assert set(result.sites.loc[result.sites.site_id == "S0", "status"]) == {"existing"}


def test_far_customers_are_flagged_not_moved(inputs) -> None:
    G, customers, candidates = inputs
    far = frame([(1000, 3500)], customer_id=["far"], weight=[5.0], segment=["private"])
    both = gpd.GeoDataFrame(pd.concat([customers, far], ignore_index=True), crs="EPSG:4326")
    result = plan_workshops("grid", 1, both, candidates, graph=G)
    row = result.customers.set_index("customer_id").loc["far"]
    assert row["site_id"] == ""
    assert np.isnan(row["travel_min"])
    assert "1000 m" in row["excluded_reason"]
    assert any("farther than 1000 m" in w for w in result.warnings)
    assert result.kpis["served_demand_share"] == pytest.approx(1 - 5.0 / both.weight.sum())


def test_build_result_marks_partner_and_office_roles(inputs) -> None:
    G, customers, candidates = inputs
    candidates = candidates.assign(kind=["partner", "workshop", "office", "workshop"])
    inst = prepare_instance("grid", customers, candidates, graph=G)
    from planner.models import p_median

    sol = p_median(inst.cost_s, 4, inst.demand_weight)
    result = build_result(inst, sol, roles={1: "office"})
    roles = dict(zip(result.sites.site_id, result.sites.role, strict=True))
    assert roles == {"S0": "partner", "S1": "office", "S2": "office", "S3": "workshop"}


def test_weighted_kpis_by_hand() -> None:
    t = np.array([10.0, 20.0, 40.0, np.inf])
    w = np.array([1.0, 1.0, 2.0, 4.0])
    k = compute_kpis(t, w)
    assert k["mean_travel_min"] == pytest.approx((10 + 20 + 80) / 4)
    assert k["max_travel_min"] == 40.0
    assert k["p90_travel_min"] == 40.0
    assert k["share_within_15_min"] == pytest.approx(1 / 8)
    assert k["share_within_30_min"] == pytest.approx(2 / 8)
    assert k["served_demand_share"] == pytest.approx(0.5)
    assert weighted_quantile(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 2.0]), 0.5) == 2.0


def test_office_sites_are_not_service_points_of_a_workshop_plan(inputs) -> None:
    G, customers, candidates = inputs
    candidates = candidates.assign(
        kind=["office", "workshop", "workshop", "workshop"],
        status=["existing", "candidate", "candidate", "candidate"],
    )
    result = plan_workshops("grid", 2, customers, candidates, graph=G)
    assert "S0" not in set(result.sites["site_id"])
    assert set(result.sites["role"]) == {"workshop"}
    assert any("1 office site(s) in the site list" in w for w in result.warnings)


def test_customers_on_a_road_island_are_reported_not_given_a_finite_time(inputs) -> None:
    G, customers, candidates = inputs
    # a separate two-way street 3 km east, unconnected to the grid
    for n, (x, y) in {100: (5000.0, 0.0), 101: (5000.0, 1000.0)}.items():
        lon, lat = lonlat(x, y)
        G.add_node(n, x=lon, y=lat)
    G.add_edge(100, 101, length=1000.0, travel_time=60.0, speed_kph=60.0)
    G.add_edge(101, 100, length=1000.0, travel_time=60.0, speed_kph=60.0)
    island = frame([(5020, 500)], customer_id=["island"], weight=[2.0], segment=["private"])
    both = gpd.GeoDataFrame(pd.concat([customers, island], ignore_index=True), crs="EPSG:4326")
    result = plan_workshops("grid", 2, both, candidates, graph=G)
    row = result.customers.set_index("customer_id").loc["island"]
    assert row["site_id"] == ""
    assert np.isnan(row["travel_min"])
    assert row["excluded_reason"] == "cannot reach any opened site"
    assert any("1 customer cannot reach any opened site" in w for w in result.warnings)
    assert result.kpis["served_demand_share"] == pytest.approx(1 - 2.0 / both.weight.sum())
    assert np.isfinite(result.kpis["max_travel_min"])
