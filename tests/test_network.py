"""Loading road graphs: sources, speeds, connectivity, caching and bad input."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import math
import socket
import time
from pathlib import Path

import networkx as nx
import numpy as np
import osmium
import pytest
import shapely

from planner.errors import GraphError, InputError, NetworkError
from planner.roads import _graph_cache as _osm_cache
from planner.roads.network import (
    DEFAULT_SPEEDS_KPH,
    REGIONS,
    load_region,
    prepare_graph,
    region_features_path,
    region_osm_date,
)

# ----------------------------------------------------------------------------------------------
# A tiny OSM file written in the test (near Vaduz)
# ----------------------------------------------------------------------------------------------

NODES = {
    1: (47.1400, 9.5200),
    2: (47.1400, 9.5250),
    3: (47.1400, 9.5300),
    4: (47.1430, 9.5300),
    5: (47.1460, 9.5300),
    6: (47.1460, 9.5200),
    7: (47.1380, 9.5250),  # footway end
    8: (47.1430, 9.5330),  # driveway end
    9: (47.1410, 9.5210),  # building corners
    10: (47.1410, 9.5215),
    11: (47.1415, 9.5215),
    20: (47.1500, 9.5400),  # an island street, not connected
    21: (47.1500, 9.5450),
}
WAYS = [
    (101, [1, 2, 3], {"highway": "residential", "maxspeed": "50", "name": "Hauptstrasse"}),
    (102, [3, 4, 5], {"highway": "primary", "oneway": "yes"}),
    (103, [5, 6, 1], {"highway": "residential"}),
    (104, [2, 7], {"highway": "footway"}),
    (105, [4, 8], {"highway": "service", "service": "driveway"}),
    (106, [9, 10, 11, 9], {"building": "yes"}),
    (107, [20, 21], {"highway": "tertiary"}),
]


def osm_xml(nodes: dict[int, tuple[float, float]], ways: list) -> str:
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">']
    for nid, (lat, lon) in nodes.items():
        lines.append(
            f'  <node id="{nid}" version="1" timestamp="2024-05-01T00:00:00Z" '
            f'lat="{lat}" lon="{lon}"/>'
        )
    for wid, refs, tags in ways:
        lines.append(f'  <way id="{wid}" version="1" timestamp="2024-05-02T00:00:00Z">')
        lines.extend(f'    <nd ref="{r}"/>' for r in refs)
        lines.extend(f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


@pytest.fixture
def tiny_osm(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.osm"
    path.write_text(osm_xml(NODES, WAYS), encoding="utf-8")
    return path


def write_pbf(src: Path, dst: Path) -> Path:
    with osmium.SimpleWriter(str(dst)) as writer:
        for obj in osmium.FileProcessor(str(src)):
            writer.add(obj)
    return dst


def same_kind(a: object, b: object) -> bool:
    """Same Python type, counting numpy floats as floats."""
    if isinstance(a, float | np.floating) and isinstance(b, float | np.floating):
        return True
    return type(a) is type(b)


def edge_table(G: nx.MultiDiGraph) -> dict[tuple[int, int], float]:
    """(u, v) -> travel time of the fastest parallel edge."""
    out: dict[tuple[int, int], float] = {}
    for u, v, t in G.edges(data="travel_time"):
        out[u, v] = min(t, out.get((u, v), math.inf))
    return out


# ----------------------------------------------------------------------------------------------
# Speeds, travel times, connectivity
# ----------------------------------------------------------------------------------------------


def test_tiny_file_is_filtered_to_drivable_roads(tiny_osm: Path) -> None:
    G = load_region(tiny_osm, cache=False)
    assert {7, 8, 9, 10, 11, 20, 21}.isdisjoint(G.nodes)  # footway, driveway, building, island
    highways = {d["highway"] for _, _, d in G.edges(data=True)}
    assert highways <= {"residential", "primary"}
    assert G.graph["crs"] == "epsg:4326"
    report = G.graph["planner_report"]
    assert report["source_kind"] == "file"
    assert report["osm_date"] == "2024-05-02T00:00:00Z"
    assert report["dropped_nodes"] == 2  # the island street 20-21
    assert report["dropped_components"] == 1  # one two-way street, one component
    assert report["nodes"] == G.number_of_nodes()
    assert nx.is_strongly_connected(G)
    # the one-way primary has no reverse edge
    primary = [(u, v) for u, v, h in G.edges(data="highway") if h == "primary"]
    assert primary == [(3, 5)]


def test_speeds_travel_times_and_imputed_share(tiny_osm: Path) -> None:
    G = load_region(tiny_osm, cache=False)
    report = G.graph["planner_report"]
    n_imputed = 0
    for _, _, d in G.edges(data=True):
        assert d["travel_time"] == pytest.approx(d["length"] / (d["speed_kph"] / 3.6))
        if d.get("maxspeed") == "50":
            assert d["speed_kph"] == 50.0
            assert not d["speed_imputed"]
        else:
            assert d["speed_kph"] == DEFAULT_SPEEDS_KPH[d["highway"]]
            assert d["speed_imputed"]
            n_imputed += 1
    assert report["imputed_speed_share"] == pytest.approx(n_imputed / G.number_of_edges())
    assert 0 < report["imputed_speed_share"] < 1
    assert report["imputed_edges_by_highway"]["primary"] >= 1


def test_speed_overrides_and_congestion(tiny_osm: Path) -> None:
    base = load_region(tiny_osm, cache=False)
    slow = load_region(tiny_osm, cache=False, speeds={"residential": 15, "primary": 45})
    peak = load_region(tiny_osm, cache=False, congestion=1.3)
    for u, v, k, d in base.edges(keys=True, data=True):
        s = slow.edges[u, v, k]
        if d["speed_imputed"]:
            assert s["speed_kph"] == {"residential": 15.0, "primary": 45.0}[d["highway"]]
        else:
            assert s["speed_kph"] == d["speed_kph"]  # mapped maxspeed wins
        p = peak.edges[u, v, k]
        assert p["travel_time"] == pytest.approx(1.3 * d["travel_time"])
        assert p["freeflow_speed_kph"] == d["freeflow_speed_kph"]
    assert peak.graph["planner_report"]["congestion"] == 1.3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"congestion": 0}, r"congestion must be a factor in \[0.1, 10\]"),
        ({"congestion": "busy"}, "congestion must be"),
        ({"speeds": {"residential": -5}}, r"km/h in \(0, 200\]"),
        ({"speeds": [30]}, "mapping of highway type"),
        ({"speeds": {"residental": 30}}, r"unknown highway type 'residental'.*residential"),
    ],
)
def test_bad_options_raise(tiny_osm: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        load_region(tiny_osm, cache=False, **kwargs)


def test_prepare_graph_keeps_largest_scc_unless_retain_all() -> None:
    G = nx.MultiDiGraph(crs="epsg:4326")
    for n in range(6):
        G.add_node(n, x=9.5 + n * 0.001, y=47.1)
    for u, v in [(0, 1), (1, 2), (2, 0), (2, 3), (4, 5), (5, 4)]:  # 3: reachable, no way back
        G.add_edge(u, v, length=100.0, highway="residential")
    kept = prepare_graph(G)
    assert set(kept.nodes) == {0, 1, 2}
    rep = kept.graph["planner_report"]
    assert (rep["dropped_components"], rep["dropped_nodes"], rep["dropped_edges"]) == (2, 3, 3)
    everything = prepare_graph(G, retain_all=True)
    assert set(everything.nodes) == set(range(6))
    assert everything.graph["planner_report"]["strong_components"] == 3
    assert G.number_of_nodes() == 6  # the input is not modified
    with pytest.raises(GraphError, match="no edges"):
        prepare_graph(nx.MultiDiGraph())


# ----------------------------------------------------------------------------------------------
# Sources: compressed XML, PBF, GraphML
# ----------------------------------------------------------------------------------------------


def test_compressed_xml_and_pbf_give_the_same_graph(tiny_osm: Path, tmp_path: Path) -> None:
    ref = edge_table(load_region(tiny_osm, cache=False))
    text = tiny_osm.read_bytes()
    (tmp_path / "t.osm.bz2").write_bytes(bz2.compress(text))
    (tmp_path / "t.osm.gz").write_bytes(gzip.compress(text))
    pbf = write_pbf(tiny_osm, tmp_path / "t.osm.pbf")
    for path in (tmp_path / "t.osm.bz2", tmp_path / "t.osm.gz", pbf):
        got = edge_table(load_region(path, cache=False))
        assert got.keys() == ref.keys()
        assert all(got[k] == pytest.approx(ref[k]) for k in ref)


def test_graphml_round_trip(tiny_osm: Path, tmp_path: Path) -> None:
    import osmnx as ox

    G = load_region(tiny_osm, cache=False)
    path = tmp_path / "saved.graphml"
    ox.save_graphml(G, path)
    H = load_region(path, cache=False)
    assert edge_table(H) == pytest.approx(edge_table(G))
    ox.save_graphml(ox.project_graph(G), tmp_path / "projected.graphml")
    with pytest.raises(GraphError, match=r"projected.*EPSG:4326"):
        load_region(tmp_path / "projected.graphml", cache=False)


# ----------------------------------------------------------------------------------------------
# Cache
# ----------------------------------------------------------------------------------------------


def test_disk_cache_returns_an_identical_graph(
    tiny_osm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    first = load_region(tiny_osm)
    assert first.graph["planner_report"]["cache_hit"] is False
    entries = list((tmp_path / "cache" / "graphs").iterdir())
    assert len(entries) == 1
    second = load_region(tiny_osm)
    assert second.graph["planner_report"]["cache_hit"] is True
    assert list(second.nodes(data=True)) == list(first.nodes(data=True))
    e1 = list(first.edges(keys=True, data=True))
    e2 = list(second.edges(keys=True, data=True))
    assert len(e1) == len(e2)
    for (u1, v1, k1, d1), (u2, v2, k2, d2) in zip(e1, e2, strict=True):
        assert (u1, v1, k1) == (u2, v2, k2)
        assert d1.keys() == d2.keys()
        for key in d1:
            if key == "geometry":
                assert shapely.equals_exact(d1[key], d2[key], tolerance=0)
            else:
                assert d1[key] == d2[key]
                assert same_kind(d1[key], d2[key])
    r1 = {
        k: v
        for k, v in first.graph["planner_report"].items()
        if k not in {"cache_hit", "load_time_s"}
    }
    r2 = {
        k: v
        for k, v in second.graph["planner_report"].items()
        if k not in {"cache_hit", "load_time_s"}
    }
    assert r1 == r2
    # other settings are other entries; a changed file is a new entry
    load_region(tiny_osm, congestion=1.2)
    assert len(list((tmp_path / "cache" / "graphs").iterdir())) == 2
    tiny_osm.write_text(osm_xml(NODES, WAYS[:3]), encoding="utf-8")
    changed = load_region(tiny_osm)
    assert changed.graph["planner_report"]["cache_hit"] is False


def test_cache_round_trip_of_mixed_attributes(tmp_path: Path) -> None:
    G = nx.MultiDiGraph(crs="epsg:4326", simplified=True, planner_report={"a": [1, 2]})
    G.add_node(1, x=1.0, y=2.0, street_count=3, highway="traffic_signals")
    G.add_node(2, x=1.5, y=2.5, street_count=1)
    G.add_edge(1, 2, osmid=[5, 6], name=["A", "B"], oneway=True, length=3.5, lanes="2")
    G.add_edge(1, 2, osmid=7, name="C", oneway=False, length=4.0, maxspeed=["50", "30"])
    G.add_edge(2, 1, osmid=8, geometry=shapely.LineString([(1.5, 2.5), (1.2, 2.2), (1, 2)]))
    path = tmp_path / "g"
    _osm_cache.write_graph(G, path)
    H = _osm_cache.read_graph(path)
    assert H is not None
    assert H.graph == G.graph
    assert dict(H.nodes(data=True)) == dict(G.nodes(data=True))
    for u, v, k, d in G.edges(keys=True, data=True):
        h = H.edges[u, v, k]
        assert h.keys() == d.keys()
        for key, value in d.items():
            if key == "geometry":
                assert shapely.equals_exact(h[key], value, tolerance=0)
            else:
                assert h[key] == value
                assert same_kind(h[key], value)
    (path / "edges.parquet").write_bytes(b"not parquet")
    assert _osm_cache.read_graph(path) is None  # a broken entry is rebuilt, not fatal


# ----------------------------------------------------------------------------------------------
# Bad input: each message names the file and the fix
# ----------------------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    for name in ("empty.osm", "empty.osm.pbf"):
        path = tmp_path / name
        path.write_bytes(b"")
        with pytest.raises(GraphError, match="empty") as err:
            load_region(path, cache=False)
        assert str(path) in str(err.value)
        assert "again" in str(err.value)


def test_html_page_saved_as_osm(tmp_path: Path) -> None:
    page = "<!DOCTYPE html>\n<html><head><title>Geofabrik</title></head><body>hi</body></html>"
    for name in ("page.osm", "page.osm.pbf"):
        path = tmp_path / name
        path.write_text(page, encoding="utf-8")
        with pytest.raises(GraphError, match=r"web page \(HTML\)") as err:
            load_region(path, cache=False)
        assert str(path) in str(err.value)
        assert "download.geofabrik.de" in str(err.value)


def test_clipped_extract(tmp_path: Path) -> None:
    nodes = {k: v for k, v in NODES.items() if k not in {4, 6}}  # ways still reference 4 and 6
    path = tmp_path / "clipped.osm"
    path.write_text(osm_xml(nodes, WAYS), encoding="utf-8")
    with pytest.raises(GraphError, match="clipped extract") as err:
        load_region(path, cache=False)
    assert str(path) in str(err.value)
    assert "complete_ways" in str(err.value)


def test_file_without_drivable_roads(tmp_path: Path) -> None:
    ways = [
        (1, [1, 2, 3], {"highway": "footway"}),
        (2, [3, 4], {"highway": "footway"}),
        (3, [4, 5], {"highway": "path"}),
        (4, [9, 10, 11, 9], {"building": "yes"}),
    ]
    path = tmp_path / "paths.osm"
    path.write_text(osm_xml(NODES, ways), encoding="utf-8")
    with pytest.raises(GraphError, match="no drivable roads") as err:
        load_region(path, cache=False)
    assert str(path) in str(err.value)
    assert "footway x2" in str(err.value)
    assert "highway=primary" in str(err.value)


def test_not_osm_and_corrupt_pbf(tmp_path: Path) -> None:
    xml = tmp_path / "other.osm"
    xml.write_text("<?xml version='1.0'?><kml><Document/></kml>", encoding="utf-8")
    with pytest.raises(GraphError, match=r"not an OSM file: .*root element is <kml>") as err:
        load_region(xml, cache=False)
    assert str(xml) in str(err.value)
    pbf = tmp_path / "broken.osm.pbf"
    pbf.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(GraphError, match=r"not an OSM file: not an \.osm\.pbf") as err:
        load_region(pbf, cache=False)
    assert str(pbf) in str(err.value)


def test_missing_file_and_unsupported_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found") as err:
        load_region(tmp_path / "nowhere.osm.pbf")
    assert "nowhere.osm.pbf" in str(err.value)
    assert "malta" in str(err.value)
    txt = tmp_path / "roads.txt"
    txt.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match=r"unsupported .*\.osm\.pbf"):
        load_region(txt)
    with pytest.raises(InputError, match="bounding box"):
        load_region((9.6, 47.0, 9.5, 47.2))  # west > east


# ----------------------------------------------------------------------------------------------
# Online sources fail fast offline
# ----------------------------------------------------------------------------------------------


def test_offline_download_fails_fast_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    import osmnx as ox

    def no_network(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    def must_not_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("osmnx must not be called when offline")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(ox, "graph_from_place", must_not_download)
    monkeypatch.setattr(ox, "graph_from_bbox", must_not_download)
    for query in ("Vaduz, Liechtenstein", (9.50, 47.10, 9.55, 47.15)):
        started = time.perf_counter()
        with pytest.raises(NetworkError, match=r"(?i)use a file instead") as err:
            load_region(query, cache=False)
        assert time.perf_counter() - started < 5.0
        assert ".osm.pbf" in str(err.value)


def test_online_probe_does_not_hang_on_a_stuck_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    from planner.roads.network import check_online

    def stuck(*args: object, **kwargs: object) -> None:
        time.sleep(3.0)
        raise OSError("resolver timed out")

    monkeypatch.setattr(socket, "create_connection", stuck)
    started = time.perf_counter()
    assert check_online(timeout_s=0.3) is False
    assert time.perf_counter() - started < 1.5


def test_failed_download_is_a_network_error_and_settings_are_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import osmnx as ox
    import requests

    from planner.roads import network

    seen: dict[str, object] = {}

    def failing(*args: object, **kwargs: object) -> None:
        seen["timeout"] = ox.settings.requests_timeout
        raise requests.exceptions.ConnectionError("connection reset")

    before = ox.settings.requests_timeout
    monkeypatch.setattr(network, "check_online", lambda **kwargs: True)
    monkeypatch.setattr(ox, "graph_from_place", failing)
    with pytest.raises(NetworkError, match=r"(?i)use a file instead"):
        load_region("Vaduz, Liechtenstein", cache=False, timeout_s=7)
    assert seen["timeout"] == 7
    assert ox.settings.requests_timeout == before


def test_download_is_prepared_once_then_cached(
    tiny_osm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import osmnx as ox

    from planner.roads import network

    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    raw = ox.graph_from_xml(tiny_osm, simplify=True, retain_all=True)
    calls: list[tuple] = []

    def fake_download(query: object, **kwargs: object) -> nx.MultiDiGraph:
        calls.append((query, kwargs["network_type"]))
        return raw.copy()

    monkeypatch.setattr(network, "check_online", lambda **kwargs: True)
    monkeypatch.setattr(ox, "graph_from_place", fake_download)
    first = load_region("Vaduz, Liechtenstein")
    second = load_region("Vaduz, Liechtenstein")
    assert calls == [("Vaduz, Liechtenstein", "drive")]
    assert first.graph["planner_report"]["source_kind"] == "place"
    assert second.graph["planner_report"]["cache_hit"] is True
    assert edge_table(second) == edge_table(first)


def test_unreachable_is_inf_end_to_end(tiny_osm: Path) -> None:
    from planner.roads.snapping import snap_points
    from planner.routing.matrix import snapped_travel_time_matrix

    G = load_region(tiny_osm, cache=False, retain_all=True)
    assert {20, 21} <= set(G.nodes)
    assert G.graph["planner_report"]["dropped_nodes"] == 0
    # one point on the main loop, one on the island street
    lon = [9.5225, 9.5425]
    lat = [47.1401, 47.1501]
    pts = snap_points(G, lon, lat)
    assert not pts.too_far.any()
    M = snapped_travel_time_matrix(G, pts, pts, cache=False)
    assert np.isfinite(np.diag(M)).all()
    assert np.isinf(M[0, 1])
    assert np.isinf(M[1, 0])


# ----------------------------------------------------------------------------------------------
# Bundled regions
# ----------------------------------------------------------------------------------------------


def test_region_registry() -> None:
    assert set(REGIONS) >= {"malta", "liechtenstein", "andorra"}
    for name, region in REGIONS.items():
        assert region.drive_file.is_file()
        assert region_features_path(name) == region.features_file
        assert region_osm_date(name) == region.osm_date
        for path, expected in (
            (region.drive_file, region.drive_sha256),
            (region.features_file, region.features_sha256),
        ):
            assert hashlib.sha256(path.read_bytes()).hexdigest() == expected
    assert region_features_path("somewhere.osm.pbf") is None
    with pytest.raises(InputError, match="bundled regions are"):
        region_osm_date("atlantis")


@pytest.fixture(scope="module")
def liechtenstein() -> nx.MultiDiGraph:
    return load_region("liechtenstein")


@pytest.mark.slow
def test_bundled_liechtenstein(liechtenstein: nx.MultiDiGraph) -> None:
    G = liechtenstein
    report = G.graph["planner_report"]
    assert G.number_of_nodes() == 1823  # the largest strongly connected component
    assert nx.is_strongly_connected(G)
    assert report["osm_date"] == "2026-03-29T20:20:46Z"
    assert report["utm_epsg"] == 32632
    assert report["dropped_components"] >= 5
    tt = np.array([t for _, _, t in G.edges(data="travel_time")])
    assert np.isfinite(tt).all()
    assert (tt > 0).all()
    assert 0 < report["imputed_speed_share"] < 1
    # a warm reload in the same process is a cache hit and identical
    again = load_region("liechtenstein")
    assert again.graph["planner_report"]["cache_hit"] is True
    assert edge_table(again) == edge_table(G)


@pytest.mark.slow
def test_pbf_of_bundled_region_gives_the_same_graph(
    liechtenstein: nx.MultiDiGraph, tmp_path: Path
) -> None:
    pbf = write_pbf(REGIONS["liechtenstein"].drive_file, tmp_path / "li-drive.osm.pbf")
    G = load_region(pbf, cache=False)
    assert G.graph["planner_report"]["source_kind"] == "file"
    assert set(G.nodes) == set(liechtenstein.nodes)
    ours, ref = edge_table(G), edge_table(liechtenstein)
    assert ours.keys() == ref.keys()
    assert all(ours[k] == pytest.approx(ref[k]) for k in ref)


@pytest.mark.slow
def test_bundled_andorra() -> None:
    G = load_region("andorra", cache=False)
    assert G.number_of_nodes() == 1698
    assert G.graph["planner_report"]["osm_date"].startswith("2021-10-28")
    assert all(t > 0 for _, _, t in G.edges(data="travel_time"))
