"""Trimming a road file to an area while reading it (both loaders): every road inside the
area is kept, the ways outside are never built, and travel times between points well inside
equal those of the whole file (networkx shortest paths)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest

from planner.errors import GraphError, InputError
from planner.roads.arrays import ArrayGraph
from planner.roads.network import load_region
from planner.roads.trim import Area, area_around, area_from_bbox, describe_kept, ways_in_area

REPO = Path(__file__).resolve().parent.parent
MALTA_PBF = REPO / "data" / "osm" / "malta-2018-08-27.osm.pbf"
#: the eastern two thirds of Malta's main island, and well inside it
AREA = Area(14.42, 35.80, 14.60, 36.00)
INNER = (14.46, 35.84, 14.56, 35.96)


def test_ways_in_area_keeps_ways_with_a_node_inside() -> None:
    area = Area(0.0, 0.0, 1.0, 1.0)
    # way 0 inside, way 1 outside, way 2 crosses the edge, way 3 is one node on the edge
    lon = np.array([0.2, 0.3, 2.0, 3.0, -1.0, 0.5, 2.0, 1.0])
    lat = np.array([0.2, 0.3, 2.0, 3.0, 0.5, 0.5, 0.5, 1.0])
    counts = np.array([2, 2, 3, 1])
    assert ways_in_area(area, lon, lat, counts).tolist() == [True, False, True, True]


def test_area_around_adds_the_margin_in_km() -> None:
    area = area_around([20.0, 21.0, np.nan], [40.0, 41.0, 40.5], margin_km=30)
    assert area.n_customers == 2
    assert area.margin_km == 30
    assert area.south == pytest.approx(40.0 - 30 / 111.32)
    assert area.north == pytest.approx(41.0 + 30 / 111.32)
    # 30 km of longitude at the box's widest latitude
    dlon = 20.0 - area.west
    assert dlon * 111.32 * math.cos(math.radians(area.north)) == pytest.approx(30, rel=1e-6)
    assert area.km2() == pytest.approx(
        (6371.0088**2)
        * math.radians(area.east - area.west)
        * (math.sin(math.radians(area.north)) - math.sin(math.radians(area.south)))
    )
    assert "around your 2 customers" in area.describe()
    with pytest.raises(InputError, match="no customer has coordinates"):
        area_around([np.nan], [np.nan])
    with pytest.raises(InputError, match="margin_km"):
        area_around([1.0], [1.0], margin_km=-1)


def test_bad_boxes_are_refused() -> None:
    assert area_from_bbox("21,37.5,24.5,39.9").bbox == (21.0, 37.5, 24.5, 39.9)
    for bad in ("21,37.5,24.5", "a,b,c,d", (24.5, 37.5, 21.0, 39.9), (0, 95, 1, 96)):
        with pytest.raises(InputError, match="W,S,E,N"):
            area_from_bbox(bad)  # type: ignore[arg-type]


def _road_points(G: Any) -> set[tuple[float, float]]:
    """Rounded coordinates of every point on every road of a graph."""
    if isinstance(G, ArrayGraph):
        used = np.unique(G.geom_nodes)
        xs, ys = G.geom_x[used], G.geom_y[used]
        return set(zip(np.round(xs, 6).tolist(), np.round(ys, 6).tolist(), strict=True))
    out = set()
    for u, v, data in G.edges(data=True):
        if "geometry" in data:
            coords = list(data["geometry"].coords)
        else:
            coords = [(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])]
        out.update((round(x, 6), round(y, 6)) for x, y in coords)
    return out


def _digraph(G: Any) -> nx.DiGraph:
    D = nx.DiGraph()
    for u, v, t in G.edges(data="travel_time"):
        if not D.has_edge(u, v) or D[u][v]["w"] > t:
            D.add_edge(u, v, w=float(t))
    for n, x in G.nodes(data="x"):
        D.add_node(n, x=x, y=G.nodes[n]["y"])
    return D


def _inside(D: nx.DiGraph, n: int, box: tuple[float, float, float, float]) -> bool:
    w, s, e, north = box
    return w <= D.nodes[n]["x"] <= e and s <= D.nodes[n]["y"] <= north


def _check_trim(full: Any, clip: Any, area: Area, inner: tuple[float, float, float, float]) -> None:
    """``full``/``clip``: the whole and the trimmed graph, both with every component."""
    # every road point inside the area is kept; the roads wholly outside were not built
    inside = {p for p in _road_points(full) if area.contains(np.array(p[0]), np.array(p[1]))}
    kept = _road_points(clip)
    assert inside
    assert inside <= kept
    assert len(kept) < len(_road_points(full))
    # travel times between points well inside: the same as on the whole graph whenever the
    # whole graph's fastest route stays inside the area (and never faster otherwise)
    F, C = _digraph(full), _digraph(clip)
    common = sorted(n for n in C if n in F and _inside(F, n, inner))
    sources = np.random.default_rng(1).choice(common, size=8, replace=False)
    targets = set(common)
    compared = same = 0
    for s in sources:
        df, paths = nx.single_source_dijkstra(F, s, weight="w")
        dc = nx.single_source_dijkstra_path_length(C, s, weight="w")
        stays: dict[int, bool] = {}
        for t in sorted(df, key=df.__getitem__):  # a path's prefix is settled before it
            path = paths[t]
            stays[t] = _inside(F, t, area.bbox) and (len(path) == 1 or stays[path[-2]])
        for t in targets & set(df):
            compared += 1
            assert dc[t] >= df[t] - 1e-6  # a subgraph is never faster
            if stays[t]:
                assert dc[t] == pytest.approx(df[t], abs=1e-6)
                same += 1
    assert compared > 500
    assert same >= 0.9 * compared


@pytest.mark.slow
def test_array_loader_trims_while_reading() -> None:
    full = load_region(MALTA_PBF, loader="arrays", retain_all=True)
    clip = load_region(MALTA_PBF, loader="arrays", area=AREA, retain_all=True)
    report = clip.graph["planner_report"]
    assert report["cache_hit"] is False
    area = report["area"]
    assert (
        0 < area["ways_kept"] < area["ways_read"] == full.graph["planner_report"]["drivable_ways"]
    )
    assert report["kept"] == describe_kept(report)
    assert report["kept"].startswith("roads of 361 km2 in the box 14.42,35.8,14.6,36, from ")
    assert "malta-2018-08-27.osm.pbf of 2018-08-27" in report["kept"]
    _check_trim(full, clip, AREA, INNER)
    # cached per (file, area)
    again = load_region(MALTA_PBF, loader="arrays", area=AREA, retain_all=True)
    assert again.graph["planner_report"]["cache_hit"] is True
    assert again.graph["planner_report"]["kept"] == report["kept"]
    smaller = Area(14.42, 35.80, 14.60, 35.95)
    other = load_region(MALTA_PBF, loader="arrays", area=smaller, retain_all=True)
    assert other.graph["planner_report"]["cache_hit"] is False
    assert other.number_of_edges() < clip.number_of_edges()
    # an area holding the whole file (its header box) trims nothing: the whole graph
    whole = load_region(
        MALTA_PBF, loader="arrays", area=Area(13.0, 35.0, 15.0, 37.0), retain_all=True
    )
    assert "area" not in whole.graph["planner_report"]
    assert whole.number_of_edges() == full.number_of_edges()
    # an area without roads says so
    with pytest.raises(GraphError, match="has no drivable road in the box"):
        load_region(MALTA_PBF, loader="arrays", area=Area(14.0, 35.0, 14.1, 35.1), cache=False)


@pytest.mark.slow
def test_osmnx_loader_trims_a_bundled_region_the_same_way() -> None:
    box = Area(9.50, 47.10, 9.60, 47.25)
    full = load_region("liechtenstein", retain_all=True)
    clip = load_region("liechtenstein", area=box, retain_all=True)
    report = clip.graph["planner_report"]
    assert report["loader"] == "osmnx"
    assert "in the box 9.5,47.1,9.6,47.25, from liechtenstein" in report["kept"]
    assert 0 < report["area"]["ways_kept"] < report["area"]["ways_read"]
    _check_trim(full, clip, box, (9.53, 47.13, 9.57, 47.22))


def _write_ways(path: Path, ways: list[tuple[list[tuple[float, float]], dict[str, str]]]) -> None:
    """A tiny .osm.pbf: each way with its own nodes at the given (lon, lat)."""
    import osmium

    writer = osmium.SimpleWriter(str(path))
    node_id = 1
    refs_of: list[list[int]] = []
    try:
        for coords, _ in ways:
            refs = []
            for lon, lat in coords:
                writer.add_node(osmium.osm.mutable.Node(id=node_id, location=(lon, lat)))
                refs.append(node_id)
                node_id += 1
            refs_of.append(refs)
        for k, ((_, tags), refs) in enumerate(zip(ways, refs_of, strict=True), 1):
            writer.add_way(osmium.osm.mutable.Way(id=k, nodes=refs, tags=tags))
    finally:
        writer.close()


def test_array_loader_area_test_is_exact_at_the_edges(tmp_path: Path) -> None:
    """The reader drops a way early when its bounding box misses the area, and decides the
    others by their nodes: a way crossing the corner (box overlapping, no node inside) goes,
    a way with one node inside stays whole; non-drivable tags are refused whatever the type's
    first test said (brute force: :func:`ways_in_area` on every way)."""
    area = Area(0.0, 0.0, 1.0, 1.0)
    road = {"highway": "residential"}
    ways = [
        ([(0.5, 0.5), (0.6, 0.5), (0.7, 0.6)], road),  # inside
        ([(0.9, 0.9), (1.5, 1.5), (2.0, 2.0)], road),  # one node inside: kept whole
        ([(-0.5, 0.5), (0.5, 1.5)], road),  # crosses the corner, no node inside
        ([(2.0, 2.0), (3.0, 2.5)], road),  # far outside
        ([(0.2, 0.2), (0.3, 0.3)], {"highway": "footway"}),
        ([(0.2, 0.4), (0.3, 0.4)], {"highway": "residential", "access": "private"}),
        ([(0.4, 0.1), (0.4, 0.2)], {"highway": "primary", "service": "driveway"}),
        ([(0.1, 0.8), (0.2, 0.8)], {"highway": "residential;service"}),
    ]
    path = tmp_path / "edges.osm.pbf"
    _write_ways(path, ways)
    G = load_region(path, loader="arrays", area=area, retain_all=True, cache=False)
    drivable = ways[:4]
    coords = [np.asarray(c, dtype=float) for c, _ in drivable]
    brute = ways_in_area(
        area,
        np.concatenate([c[:, 0] for c in coords]),
        np.concatenate([c[:, 1] for c in coords]),
        np.array([len(c) for c in coords]),
    )
    assert brute.tolist() == [True, True, False, False]
    report = G.graph["planner_report"]["area"]
    assert (report["ways_read"], report["ways_kept"]) == (4, 2)
    # the kept ways' end nodes, the one outside the area included (kept whole)
    got = sorted(zip(G.x.round(6).tolist(), G.y.round(6).tolist(), strict=True))
    assert got == [(0.5, 0.5), (0.7, 0.6), (0.9, 0.9), (2.0, 2.0)]
    whole = load_region(path, loader="arrays", retain_all=True, cache=False)
    assert whole.graph["planner_report"]["drivable_ways"] == 4
