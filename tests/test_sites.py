"""Candidate sites: user lists, generated candidates, OSM partners and office candidates."""

from __future__ import annotations

import bz2
import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner.cli import main
from planner.errors import InputError
from planner.inputs.sites import (
    OFFICE_TAGS,
    PARTNER_TAGS,
    PRODUCT_CLASSES,
    SITE_COLUMNS,
    _road_nodes,
    generate_candidates,
    office_candidates,
    osm_partner_sites,
    read_sites,
)
from planner.inputs.validation import graph_bbox
from planner.roads.arrays import ArrayGraph
from planner.roads.classes import CANDIDATE_ROAD_CLASSES, MINOR_ROAD_CLASSES
from planner.roads.network import load_region

LON0, LAT0 = 14.40, 35.85
STEP = 0.01  # about 1 km


def grid_graph(size: int = 9, main_row: int = 4) -> nx.MultiDiGraph:
    """size x size grid of two-way streets; row ``main_row`` is a primary road."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(size):
        for j in range(size):
            G.add_node(i * size + j, x=LON0 + j * STEP, y=LAT0 + i * STEP)
    for i in range(size):
        for j in range(size):
            a = i * size + j
            for b, highway in (
                (a + 1 if j + 1 < size else None, "primary" if i == main_row else "residential"),
                (a + size if i + 1 < size else None, "residential"),
            ):
                if b is None:
                    continue
                G.add_edge(a, b, highway=highway, length=1000.0, travel_time=60.0, name="Main St")
                G.add_edge(b, a, highway=highway, length=1000.0, travel_time=60.0, name="Main St")
    return G


def cluster(lon: float, lat: float, n: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "lon": lon + rng.normal(0, 0.002, n),
            "lat": lat + rng.normal(0, 0.002, n),
            "weight": rng.integers(1, 4, n).astype(float),
        }
    )


def two_towns() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    west = cluster(LON0 + 1 * STEP, LAT0 + 4 * STEP, 60, rng)
    east = cluster(LON0 + 7 * STEP, LAT0 + 4 * STEP, 60, rng)
    return pd.concat([west, east], ignore_index=True)


# ---------------------------------------------------------------------------- (c) generated


def test_generated_candidates_follow_demand_on_main_roads() -> None:
    G = grid_graph()
    customers = two_towns()
    sites = generate_candidates(G, customers, 2, seed=0)
    assert list(sites.columns[: len(SITE_COLUMNS)]) == list(SITE_COLUMNS)
    assert (sites["kind"] == "workshop").all()
    assert (sites["source"] == "generated").all()
    assert (sites["status"] == "candidate").all()
    # on the primary road (row 4) ...
    assert np.allclose(sites["lat"], LAT0 + 4 * STEP)
    # ... one in each town: brute force the nearest main-road node to each town centre
    assert sorted(np.round((sites["lon"] - LON0) / STEP).astype(int)) == [1, 7]
    for node in sites["node"]:
        highways = {d["highway"] for _, _, d in G.edges(node, data=True)}
        assert highways & set(CANDIDATE_ROAD_CLASSES)


def test_generated_candidates_only_in_built_up_areas() -> None:
    G = grid_graph()
    customers = two_towns()
    sites = generate_candidates(G, customers, 6, seed=0, built_up_radius_m=1500)
    # nodes of the primary road within 1.5 km of a customer: columns 0..2 and 6..8
    cols = np.round((sites["lon"] - LON0) / STEP).astype(int)
    assert set(cols) == {0, 1, 2, 6, 7, 8}
    assert np.allclose(sites["lat"], LAT0 + 4 * STEP)
    assert sites["site_id"].is_unique


def test_generated_candidates_fall_back_to_minor_roads_and_are_deterministic() -> None:
    G = grid_graph()
    customers = two_towns()
    a = generate_candidates(G, customers, 12, seed=5, built_up_radius_m=1500)
    b = generate_candidates(G, customers, 12, seed=5, built_up_radius_m=1500)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 12
    assert a["node"].is_unique
    # only 6 primary-road nodes are within 1.5 km of a customer: minor roads fill up the rest
    assert (~np.isclose(a["lat"], LAT0 + 4 * STEP)).any()


def test_generate_candidates_rejects_bad_input() -> None:
    G = grid_graph()
    with pytest.raises(ValueError, match="at least 1"):
        generate_candidates(G, two_towns(), 0)
    far = pd.DataFrame({"lon": [100.0], "lat": [0.0], "weight": [1.0]})
    with pytest.raises(ValueError, match="no road node"):
        generate_candidates(G, far, 3)


# ---------------------------------------------------------------------------- (a) user lists


@pytest.mark.parametrize("suffix", ["csv", "xlsx"])
def test_site_list_round_trip(tmp_path: Path, suffix: str) -> None:
    data = pd.DataFrame(
        {
            "id": ["S1", "S2", "S3"],
            "name": ["Head office", "Workshop Qormi", "FixIt Ltd"],
            "lat": [35.8989, 35.876, 35.91],
            "lon": [14.5146, 14.472, 14.49],
            "kind": ["office", "workshop", "partner"],
            "status": ["existing", "candidate", "excluded"],
            "fixed_cost": [60000.0, 18000.0, None],
            "capacity": [None, 1500.0, 600.0],
        }
    )
    path = tmp_path / f"sites.{suffix}"
    if suffix == "csv":
        data.to_csv(path, index=False)
    else:
        data.to_excel(path, index=False)
    table = read_sites(path)
    assert table.report.exit_code == 0, str(table.report)
    frame = table.frame
    assert frame["site_id"].tolist() == data["id"].tolist()
    for col in ("name", "kind", "status"):
        assert frame[col].tolist() == data[col].tolist()
    for col in ("lat", "lon", "fixed_cost", "capacity"):
        np.testing.assert_allclose(frame[col], data[col].astype(float))
    assert (frame["source"] == "user").all()
    assert frame.crs.to_epsg() == 4326


# ---------------------------------------------------------------------------- (b) and (d) OSM


def _scan_osm(path: Path) -> dict[str, dict[str, str]]:
    """Brute force: every tagged OSM object of the file, straight from the XML."""
    out: dict[str, dict[str, str]] = {}
    with bz2.open(path) as f:
        for _, elem in ET.iterparse(f):
            if elem.tag in ("node", "way", "relation"):
                tags = {t.get("k"): t.get("v") for t in elem.findall("tag")}
                if tags:
                    out[f"{elem.tag}/{elem.get('id')}"] = tags
                elem.clear()
    return out


@pytest.mark.slow
def test_osm_partner_sites_match_the_raw_osm_file() -> None:
    from planner.roads.network import region_features_path

    sites = osm_partner_sites("andorra")
    objects = _scan_osm(region_features_path("andorra"))
    expected = {
        ref
        for ref, tags in objects.items()
        if any(tags.get(key) in values for key, values in PARTNER_TAGS.items())
    }
    assert set(sites["osm_ref"]) == expected
    assert (sites["kind"] == "partner").all()
    assert (sites["source"] == "osm").all()
    for ref, name, hours in zip(
        sites["osm_ref"], sites["name"], sites["opening_hours"], strict=True
    ):
        tags = objects[ref]
        assert name == tags.get("name", name)
        assert hours == tags.get("opening_hours")
        if "name" not in tags:
            assert name.endswith("(unnamed)")
    assert sites["lat"].between(42.4, 42.7).all()


@pytest.mark.slow
def test_office_candidates_and_thinning() -> None:
    from planner.roads.network import region_features_path

    every = office_candidates("andorra")
    objects = _scan_osm(region_features_path("andorra"))
    expected = {
        ref
        for ref, tags in objects.items()
        if "shop" not in tags
        and (
            tags.get("office") in OFFICE_TAGS
            or ("office" not in tags and tags.get("building") in ("office", "commercial"))
        )
    }
    assert set(every["osm_ref"]) == expected
    assert (every["kind"] == "office").all()
    few = office_candidates("andorra", n=5)
    assert len(few) == 5
    assert set(few["site_id"]) <= set(every["site_id"])
    pd.testing.assert_frame_equal(few, office_candidates("andorra", n=5))


@pytest.mark.slow
def test_feature_cache_is_parquet_under_planner_cache_dir() -> None:
    import os

    from planner.roads import features as _io

    first = _io.read_osm_features("andorra")
    cache = Path(os.environ["PLANNER_CACHE_DIR"]) / "features"
    files = sorted(cache.glob("andorra-*.parquet"))
    assert len(files) == 1
    assert files[0].read_bytes()[:4] == b"PAR1"
    stamp = files[0].stat().st_mtime_ns
    again = _io.read_osm_features("andorra")
    assert files[0].stat().st_mtime_ns == stamp  # read, not rewritten
    pd.testing.assert_frame_equal(pd.DataFrame(first), pd.DataFrame(again))
    # a damaged cache file is rebuilt, not trusted
    files[0].write_bytes(b"garbage")
    rebuilt = _io.read_osm_features("andorra")
    pd.testing.assert_frame_equal(pd.DataFrame(first), pd.DataFrame(rebuilt))
    assert files[0].read_bytes()[:4] == b"PAR1"


# ---------------------------------------------------------------------------- names, tags


def test_generated_sites_are_named_after_road_and_town() -> None:
    G = grid_graph()
    # the primary road (row 4) is unnamed west of column 4
    for u, v, k, data in G.edges(keys=True, data=True):
        if data["highway"] == "primary" and G.nodes[u]["x"] < LON0 + 4 * STEP - 1e-9:
            G.edges[u, v, k]["name"] = None
    customers = two_towns()
    features = gpd.GeoDataFrame(
        {"addr:city": ["Westville", "Eastham", None]},
        geometry=gpd.points_from_xy(
            [LON0 + 1 * STEP, LON0 + 7 * STEP, LON0 + 4 * STEP], [LAT0 + 4 * STEP] * 3
        ),
        crs=4326,
    )
    sites = generate_candidates(G, customers, 2, seed=0, features=features)
    by_col = dict(
        zip(np.round((sites["lon"] - LON0) / STEP).astype(int), sites["name"], strict=True)
    )
    assert by_col == {1: "Primary road, Westville", 7: "Main St, Eastham"}
    assert sorted(sites["locality"]) == ["Eastham", "Westville"]
    # without features (or with none near) the name is the road only
    plain = generate_candidates(G, customers, 2, seed=0)
    assert sorted(plain["name"]) == ["Main St", "Primary road"]
    far = features.assign(geometry=gpd.points_from_xy([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]))
    assert sorted(generate_candidates(G, customers, 2, seed=0, features=far)["name"]) == [
        "Main St",
        "Primary road",
    ]


_OSM_NODES = [
    # (tags, expected partner (car), expected office)
    ({"shop": "computer", "name": "PC World"}, False, False),
    ({"shop": "electronics", "name": "TV shop"}, False, False),
    ({"shop": "car_repair", "name": "Garage Borg"}, True, False),
    ({"craft": "car_repair"}, True, False),
    ({"craft": "electronics_repair", "name": "Fix-a-TV"}, False, False),
    ({"office": "telecommunication", "name": "Vodafone Malta"}, False, False),
    ({"office": "company", "name": "Acme Ltd"}, False, True),
    ({"office": "government", "name": "Ministry"}, False, False),
    ({"building": "office", "name": "Tower"}, False, True),
    ({"building": "commercial", "shop": "mobile_phone", "name": "Phone shop"}, False, False),
    ({"building": "house"}, False, False),
]


def _write_osm(path: Path, nodes: list[dict[str, str]], *, roads: bool = True) -> Path:
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", "<osm version='0.6' generator='test'>"]
    for i, tags in enumerate(nodes, start=1):
        lon, lat = LON0 + 0.001 * i, LAT0
        tag_xml = "".join(f"<tag k='{k}' v='{v}'/>" for k, v in tags.items())
        lines.append(f"<node id='{i}' version='1' lat='{lat}' lon='{lon}'>{tag_xml}</node>")
    if roads:
        for i in range(3):
            lines.append(
                f"<node id='{100 + i}' version='1' lat='{LAT0 + 0.01}' lon='{LON0 + 0.01 * i}'/>"
            )
        lines.append(
            "<way id='1' version='1'><nd ref='100'/><nd ref='101'/><nd ref='102'/>"
            "<tag k='highway' v='primary'/></way>"
        )
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_partners_are_repair_businesses_of_the_product_class(tmp_path: Path) -> None:
    path = _write_osm(tmp_path / "shops.osm", [t for t, _, _ in _OSM_NODES])
    partners = osm_partner_sites(path)
    expected = {f"node/{i}" for i, (_, p, _) in enumerate(_OSM_NODES, start=1) if p}
    assert set(partners["osm_ref"]) == expected
    assert "Garage Borg" in set(partners["name"])
    assert PRODUCT_CLASSES["car"] == PARTNER_TAGS
    electronics = osm_partner_sites(path, product_class="electronics")
    assert electronics["name"].tolist() == ["Fix-a-TV"]
    with pytest.raises(InputError, match="product class") as info:
        osm_partner_sites(path, product_class="toaster")
    assert "car" in str(info.value)


def test_office_candidates_are_offices_not_shops(tmp_path: Path) -> None:
    path = _write_osm(tmp_path / "offices.osm", [t for t, _, _ in _OSM_NODES])
    offices = office_candidates(path)
    expected = {f"node/{i}" for i, (_, _, o) in enumerate(_OSM_NODES, start=1) if o}
    assert set(offices["osm_ref"]) == expected
    assert "Vodafone Malta" not in set(offices["name"])


def test_road_only_extract_gives_a_clear_error(tmp_path: Path) -> None:
    path = _write_osm(tmp_path / "roads-only.osm", [])
    with pytest.raises(InputError, match="road-only") as info:
        osm_partner_sites(path)
    assert str(path) in str(info.value)
    assert "--sites FILE" in str(info.value)


@pytest.fixture
def road_only_pbf(tmp_path: Path) -> Path:
    """A 6 x 6 grid of named streets as .osm.pbf, with no buildings or shops."""
    import osmium

    path = tmp_path / "roads.osm.pbf"
    writer = osmium.SimpleWriter(str(path))
    ids = {}
    for i in range(6):
        for j in range(6):
            ids[i, j] = 1 + 6 * i + j
            loc = (14.40 + 0.004 * i, 35.90 + 0.004 * j)
            writer.add_node(osmium.osm.mutable.Node(id=ids[i, j], location=loc, version=1))
    for i in range(6):
        nodes = [ids[i, j] for j in range(6)]
        tags = {"highway": "primary", "name": f"Street {i}"}
        writer.add_way(osmium.osm.mutable.Way(id=1 + i, nodes=nodes, version=1, tags=tags))
    for j in range(6):
        nodes = [ids[i, j] for i in range(6)]
        tags = {"highway": "residential", "name": f"Lane {j}"}
        writer.add_way(osmium.osm.mutable.Way(id=10 + j, nodes=nodes, version=1, tags=tags))
    writer.close()
    return path


def test_cli_run_on_a_road_only_pbf_without_customers_says_what_to_do(
    road_only_pbf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", "--region", str(road_only_pbf), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(road_only_pbf) in err
    assert "--customers FILE" in err
    assert "Traceback" not in err
    assert not out.exists()


def test_cli_compare_on_a_road_only_pbf_says_what_to_do(
    road_only_pbf: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    customers = tmp_path / "customers.csv"
    pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(20)],
            "lat": 35.90 + rng.uniform(0, 0.02, 20),
            "lon": 14.40 + rng.uniform(0, 0.02, 20),
        }
    ).to_csv(customers, index=False)
    out = tmp_path / "out"
    args = ["compare", "--region", str(road_only_pbf), "--customers", str(customers)]
    assert main([*args, "--workshops", "2", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(road_only_pbf) in err
    assert "kind = partner" in err
    # the in-house layout needs no OSM shops: it runs, and names sites after their streets
    assert main([*args, "--workshops", "2", "--layouts", "in-house", "--out", str(out)]) == 0
    short = pd.read_csv(out / "shortlist_in-house.csv")
    assert set(short["name"]) <= {f"Street {i}" for i in range(6)} | {f"Lane {j}" for j in range(6)}


# ---------------------------------------------------------------------------- partners in a solve


def test_too_few_partners_and_partner_capacity_are_warned_about() -> None:
    from test_scenarios import make_sinst

    from planner.engine import solve_layout
    from planner.results.costs import CostParameters

    sinst = make_sinst(seed=4, n=12, partners=3)
    lr = solve_layout(sinst, "outsourced", workshops=5)
    assert len(lr.result.sites) == 3
    (few,) = [w for w in lr.warnings if "partner shops were asked for" in w]
    assert "5 partner shops were asked for but only 3 are available" in few
    # capacity: every partner over one job a year is listed with its jobs
    tight = CostParameters(partner_capacity_jobs=1.0)
    lr = solve_layout(sinst, "outsourced", workshops=3, parameters=tight)
    (busy,) = [w for w in lr.warnings if "more than their capacity" in w]
    over = lr.loads[(lr.loads["role"] == "partner") & (lr.loads["jobs"] > 1.0)]
    assert busy.startswith(f"{len(over)} partner shop(s)")
    for sid in over["site_id"]:
        assert str(sid) in busy
    assert not [
        w for w in solve_layout(sinst, "outsourced", workshops=3).warnings if "capacity" in w
    ]


def test_capacitated_outsourced_layout_respects_partner_capacity() -> None:
    from test_scenarios import make_sinst

    from planner.engine import solve_layout
    from planner.results.costs import CostParameters

    sinst = make_sinst(seed=4, n=12, partners=3)
    total = float(sinst.instance.demand_weight.sum())
    cap = np.ceil(total / 2.5)  # three partners needed, none may take more than cap
    spec = sinst.spec.replace(capacitated=True)
    capped = dataclasses.replace(sinst, spec=spec)
    lr = solve_layout(
        capped, "outsourced", workshops=3, parameters=CostParameters(partner_capacity_jobs=cap)
    )
    jobs = lr.loads.set_index("site_id")["jobs"]
    assert (jobs <= cap + 1e-6).all()
    assert jobs.sum() == pytest.approx(total)
    assert not [w for w in lr.warnings if "capacity" in w]


def test_array_graph_road_nodes_and_bbox_come_from_its_arrays() -> None:
    """The array graph's own path gives what the generic loop over its edges gives."""
    G = load_region(
        Path(__file__).resolve().parent.parent / "data/osm/malta-2018-08-27.osm.pbf",
        loader="arrays",
    )
    assert isinstance(G, ArrayGraph)
    for classes in (CANDIDATE_ROAD_CLASSES, MINOR_ROAD_CLASSES):
        rank = {c: i for i, c in enumerate(classes)}
        best: dict[int, int] = {}
        for u, v, data in G.edges(data=True):
            r = rank.get(data["highway"])
            if r is None:
                continue
            for node in (u, v):
                best[node] = min(best.get(node, r), r)
        expected = {n: f"{classes[r].replace('_', ' ').capitalize()} road" for n, r in best.items()}
        assert _road_nodes(G, classes) == expected
        assert expected
    xs = [d["x"] for _, d in G.nodes(data=True)]
    ys = [d["y"] for _, d in G.nodes(data=True)]
    assert graph_bbox(G) == (min(xs), min(ys), max(xs), max(ys))
