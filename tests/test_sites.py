"""Candidate sites: user lists, generated candidates, OSM partners and office candidates."""

from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner.inputs.sites import (
    PARTNER_TAGS,
    SITE_COLUMNS,
    generate_candidates,
    office_candidates,
    osm_partner_sites,
    read_sites,
)
from planner.roads.classes import CANDIDATE_ROAD_CLASSES

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
        if "office" in tags or tags.get("building") in ("office", "commercial")
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
