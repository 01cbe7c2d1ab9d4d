"""Phased plans on a tiny street graph built in code, and the stable-service-point rule."""

from __future__ import annotations

import itertools

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
from pyproj import Transformer

from planner.engine import ScenarioSpec
from planner.engine.phases import plan_phases, workshops_from_budget
from planner.errors import InfeasibleError, InputError
from planner.register.stability import stable_assignment
from planner.roads.snapping import snap_points
from planner.routing.matrix import snapped_travel_time_matrix

TO_UTM = Transformer.from_crs(4326, 32632, always_xy=True)
TO_LONLAT = Transformer.from_crs(32632, 4326, always_xy=True)
X0, Y0 = TO_UTM.transform(9.52, 47.14)
BLOCK_S = 300.0  # 5 minutes per 1 km block


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    lon, lat = TO_LONLAT.transform(X0 + x_m, Y0 + y_m)
    return float(lon), float(lat)


def line_graph(n: int = 6) -> nx.MultiDiGraph:
    """A straight two-way street with nodes 1 km apart, 5 minutes per block."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(n):
        lon, lat = lonlat(1000.0 * i, 0.0)
        G.add_node(i, x=lon, y=lat)
    for i in range(n - 1):
        for a, b in ((i, i + 1), (i + 1, i)):
            G.add_edge(a, b, length=1000.0, travel_time=BLOCK_S, speed_kph=12.0)
    return G


def frame(xs: list[float], **columns: list) -> gpd.GeoDataFrame:
    lon, lat = zip(*(lonlat(x, 0.0) for x in xs), strict=True)
    df = pd.DataFrame({"lon": lon, "lat": lat, **columns})
    return gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs="EPSG:4326")


@pytest.fixture
def tiny():
    G = line_graph()
    customers = frame(
        [0.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0],
        customer_id=[f"c{i}" for i in range(6)],
        weight=[1.0] * 6,
        segment=["private"] * 6,
    )
    sites = frame(
        [0.0, 2000.0, 3000.0, 5000.0],
        site_id=["S0", "S2", "S3", "S5"],
        kind=["workshop"] * 4,
        status=["candidate"] * 4,
    )
    # demand moves from the west end to the east end over three years
    jobs_per_year = {
        1: [8, 4, 2, 1, 1, 1],
        2: [4, 3, 2, 2, 3, 4],
        3: [1, 1, 2, 3, 5, 9],
    }
    forecast = pd.DataFrame(
        [
            {"customer_id": f"c{i}", "year": y, "jobs": float(j[i])}
            for y, j in jobs_per_year.items()
            for i in range(6)
        ]
    )
    jobs = pd.DataFrame(
        {"customer_id": ["c0"], "date": pd.to_datetime(["2024-01-01"]), "job_id": ["J1"]}
    )
    spec = ScenarioSpec(region="line", generate_candidates=False, workshops=1)
    return G, customers, sites, forecast, jobs, spec, jobs_per_year


def _full_minutes(G, customers, sites) -> np.ndarray:
    c = snap_points(G, customers.lon.to_numpy(), customers.lat.to_numpy())
    s = snap_points(G, sites.lon.to_numpy(), sites.lat.to_numpy())
    return snapped_travel_time_matrix(G, c, s) / 60.0


def _brute_force(minutes, p, weights):
    best, best_plan = np.inf, None
    m = minutes.shape[1]

    def go(t, prev, total, plan):
        nonlocal best, best_plan
        if t == len(p):
            if total < best - 1e-9:
                best, best_plan = total, plan
            return
        for add in itertools.combinations([j for j in range(m) if j not in prev], p[t] - len(prev)):
            sites = tuple(sorted((*prev, *add)))
            value = float(weights[t] @ minutes[:, list(sites)].min(axis=1))
            go(t + 1, sites, total + value, [*plan, sites])

    go(0, (), 0.0, [])
    return best, best_plan


@pytest.mark.parametrize("p", [(1, 1, 1), (1, 2, 2), (1, 2, 3)])
def test_phased_plan_matches_brute_force(tiny, p):
    G, customers, sites, forecast, jobs, spec, jpy = tiny
    plan = plan_phases(
        spec, p, jobs=jobs, customers=customers, sites=sites, forecast=forecast, graph=G
    )
    minutes = _full_minutes(G, customers, sites)
    weights = np.array([jpy[y] for y in (1, 2, 3)], dtype=float)
    best, best_plan = _brute_force(minutes, p, weights)
    assert plan.solution.optimal
    assert plan.summary["objective"].sum() == pytest.approx(best)
    ids = np.array(["S0", "S2", "S3", "S5"])
    for t in range(3):
        in_year = plan.phases[plan.phases["year"] == t + 1]
        assert set(in_year["site_id"]) == set(ids[list(best_plan[t])])
        opened = set(in_year.loc[in_year["action"] == "open", "site_id"])
        before = set(plan.phases.loc[plan.phases["year"] == t, "site_id"])
        assert opened == set(in_year["site_id"]) - before
        # re-planning from scratch: the best p_t sites for that year alone
        alone = min(
            float(weights[t] @ minutes[:, list(c)].min(axis=1))
            for c in itertools.combinations(range(4), p[t])
        )
        assert plan.summary["objective_if_replanned"].iloc[t] == pytest.approx(alone)
    assert list(plan.summary["workshops"]) == list(p)
    assert (plan.summary["gap"] <= 1e-6).all()


def test_a_market_scenario_is_phased_by_drive_time_and_says_so(tiny):
    """Phases minimise drive time with our own workshops: a scenario with another layout or
    the market objective gets the same plan as the default one, and a warning naming what
    is not used."""
    G, customers, sites, forecast, jobs, spec, _ = tiny
    kw = {"jobs": jobs, "customers": customers, "sites": sites, "forecast": forecast, "graph": G}
    plain = plan_phases(spec, (1, 2, 2), **kw)
    assert not any("not used" in w for w in plain.warnings)
    market = spec.replace(objective="max_capture", layout="two-tier")
    plan = plan_phases(market, (1, 2, 2), **kw)
    pd.testing.assert_frame_equal(plan.phases, plain.phases)
    assert plan.summary["objective"].sum() == pytest.approx(plain.summary["objective"].sum())
    said = [w for w in plan.warnings if "not used" in w]
    assert said == [
        "the phased plan opens our own workshops for the least drive time (a multi-period "
        "p-median); the scenario's layout 'two-tier' and objective 'max_capture' are not used "
        "here"
    ]


def test_consistency_has_a_price_when_demand_moves(tiny):
    G, customers, sites, forecast, jobs, spec, _ = tiny
    plan = plan_phases(
        spec, (1, 1, 1), jobs=jobs, customers=customers, sites=sites, forecast=forecast, graph=G
    )
    # one site for three years: year 1 wants the west, year 3 the east
    assert plan.price_of_consistency > 0
    assert plan.summary["objective"].sum() > plan.summary["objective_if_replanned"].sum()
    assert set(plan.phases["action"]) <= {"open", "keep"}
    assert (plan.phases.groupby("year").size() == 1).all()


def test_moves_only_with_enough_gain_and_previous_sites_respected(tiny):
    G, customers, sites, forecast, jobs, spec, _ = tiny
    previous = {"c4": "S3", "c5": "S0", "c1": "S9"}
    plan = plan_phases(
        spec,
        (2, 2, 3),
        jobs=jobs,
        customers=customers,
        sites=sites,
        forecast=forecast,
        graph=G,
        previous_assignment=previous,
        min_gain_min=5.0,
    )
    minutes = _full_minutes(G, customers, sites)
    ids = ["S0", "S2", "S3", "S5"]
    assign = plan.assignments.set_index(["year", "customer_id"])["site_id"]
    for _, move in plan.moves.iterrows():
        j_to = ids.index(move["to_site"])
        i = int(move["customer_id"][1:])
        assert move["minutes_after"] == pytest.approx(minutes[i, j_to])
        if move["reason"].startswith("gains"):
            assert move["minutes_before"] - move["minutes_after"] >= 5.0
    # every customer whose site stayed open and who gains < 5 min keeps it
    for year in (1, 2, 3):
        open_ids = set(plan.phases.loc[plan.phases["year"] == year, "site_id"])
        for i in range(6):
            cid = f"c{i}"
            before = assign.get((year - 1, cid)) if year > 1 else previous.get(cid)
            now = assign[(year, cid)]
            if before in open_ids:
                best = min(minutes[i, ids.index(s)] for s in open_ids)
                gain = minutes[i, ids.index(before)] - best
                assert (now == before) == (gain < 5.0)
    # c1's previous site is unknown: it moves in year 1 with that reason
    first = plan.moves[(plan.moves["year"] == 1) & (plan.moves["customer_id"] == "c1")]
    assert list(first["reason"]) == ["previous site not in this plan"]


def test_stable_assignment_hand_made():
    # customers x sites minutes
    t = np.array(
        [
            [10.0, 6.0, 30.0],  # prefers B by 4 min: stays at A
            [10.0, 4.0, 30.0],  # gains 6 min: moves A -> B
            [10.0, 4.0, 30.0],  # previous C closed: moves to B
            [10.0, 4.0, 30.0],  # no previous site: first assignment, not a move
            [np.inf, np.inf, np.inf],  # reaches nothing: keeps no site
        ]
    )
    site, moves = stable_assignment(
        t,
        ["A", "B", "C"],
        [0, 1],
        ["k0", "k1", "k2", "k3", "k4"],
        previous=["A", "A", "C", None, None],
        min_gain_min=5.0,
        year=2,
    )
    assert list(site) == ["A", "B", "B", "B", ""]
    assert list(moves["customer_id"]) == ["k1", "k2"]
    assert list(moves["reason"]) == ["gains 6.0 min", "previous site closed"]
    assert moves["minutes_before"].tolist() == [10.0, 30.0]
    assert moves["minutes_after"].tolist() == [4.0, 4.0]
    assert (moves["year"] == 2).all()
    # a higher threshold keeps k1 too; zero moves everyone to the nearest
    site, _ = stable_assignment(
        t,
        ["A", "B", "C"],
        [0, 1],
        list("abcde"),
        previous=["A", "A", "C", None, None],
        min_gain_min=7.0,
    )
    assert list(site[:2]) == ["A", "A"]
    site, _ = stable_assignment(
        t,
        ["A", "B", "C"],
        [0, 1],
        list("abcde"),
        previous=["A", "A", "C", None, None],
        min_gain_min=0.0,
    )
    assert list(site[:2]) == ["B", "B"]


def test_budget_and_bad_years():
    spec = ScenarioSpec()
    fixed = spec.parameters.workshop_fixed_cost_eur()
    assert workshops_from_budget([fixed * 3, fixed * 4.5], spec=spec) == [3, 4]
    with pytest.raises(InputError):
        workshops_from_budget([fixed * 0.5], spec=spec)


def test_decreasing_workshops_rejected(tiny):
    G, customers, sites, forecast, jobs, spec, _ = tiny
    with pytest.raises(InfeasibleError, match="decrease"):
        plan_phases(
            spec, (3, 2, 2), jobs=jobs, customers=customers, sites=sites, forecast=forecast, graph=G
        )


@pytest.mark.slow
def test_phases_on_a_road_file_read_only_the_roads_around_the_register(tmp_path, monkeypatch):
    """A road file (a country) is trimmed to the register's customers + the margin, as
    ``planner run`` trims it, not read whole (the app's register page calls this)."""
    import shutil

    from planner.engine import instance
    from planner.inputs.customers import DEMO_DIR, load_demo_customers
    from planner.roads.trim import area_around

    road_file = tmp_path / "malta.osm.pbf"
    shutil.copy(DEMO_DIR.parent / "osm" / "malta-2018-08-27.osm.pbf", road_file)
    customers = load_demo_customers("malta")
    customers = customers[customers["lon"] > 14.48].head(150).reset_index(drop=True)
    jobs = pd.read_csv(DEMO_DIR / "malta_jobs.csv", dtype={"customer_id": str})
    jobs = jobs[jobs["customer_id"].isin(customers["customer_id"])]
    jobs["date"] = pd.to_datetime(jobs["date"])
    areas = []
    load_region = instance.load_region

    def spy(*args, **kwargs):
        areas.append(kwargs.get("area"))
        return load_region(*args, **kwargs)

    monkeypatch.setattr(instance, "load_region", spy)
    spec = ScenarioSpec(name="phases", region=str(road_file), margin_km=3.0, time_limit_s=30)
    plan = plan_phases(spec, [1, 2], jobs=jobs, customers=customers)
    assert plan.summary["workshops"].tolist() == [1, 2]
    expected = area_around(
        customers["lon"].to_numpy(float), customers["lat"].to_numpy(float), margin_km=3.0
    )
    assert areas == [expected]
    assert expected is not None
