"""The maps' road layer: main roads joined into long lines, within a vertex budget, cached."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from planner.outputs import maps, road_layer
from planner.roads import network
from planner.roads.arrays import ArrayGraph
from planner.roads.classes import MAIN_ROAD_CLASSES
from planner.settings import cache_dir

MALTA_PBF = Path(__file__).resolve().parent.parent / "data" / "osm" / "malta-2018-08-27.osm.pbf"
DEG = road_layer._METRES_PER_DEGREE


@pytest.fixture(scope="module")
def malta() -> ArrayGraph:
    G = network.load_region(MALTA_PBF, loader="arrays")
    assert isinstance(G, ArrayGraph)
    return G


def _segments(G: ArrayGraph) -> shapely.Geometry:
    coords, offsets, rank = road_layer._main_road_lines(G)
    counts = np.diff(offsets)
    lines = shapely.linestrings(coords, indices=np.repeat(np.arange(counts.size), counts))
    return lines, rank


def _vertices(layer: object) -> int:
    return int(shapely.get_num_coordinates(layer.geometry.values).sum())  # type: ignore[attr-defined]


def test_joining_makes_one_line_per_trail_and_keeps_every_point() -> None:
    # a cross (4 arms meeting in the middle) and a chain of 3 segments elsewhere
    cross = [
        [(0.0, 0.0), (1.0, 0.0)],
        [(1.0, 0.0), (2.0, 0.0)],
        [(1.0, -1.0), (1.0, 0.0)],
        [(1.0, 0.0), (1.0, 1.0)],
    ]
    chain = [[(5.0, 5.0), (6.0, 5.0)], [(7.0, 5.0), (6.0, 5.0)], [(7.0, 5.0), (8.0, 6.0)]]
    lines = cross + chain
    coords = np.array([p for line in lines for p in line])
    offsets = np.concatenate([[0], np.cumsum([len(line) for line in lines])]).astype(np.int64)
    joined = road_layer._joined(coords, offsets)
    assert len(joined) == 3  # the cross's 4 ends at its centre pair into 2 lines; the chain 1
    assert shapely.length(joined).sum() == pytest.approx(4.0 + 2.0 + np.sqrt(2.0))
    merged = shapely.union_all(joined)
    for line in lines:
        assert shapely.covers(merged, shapely.LineString(line))
    chain_line = [g for g in joined if shapely.get_num_coordinates(g) == 4]
    assert len(chain_line) == 1  # one polyline through the two joints, no repeated joint


def test_closed_loop_is_one_line() -> None:
    square = [
        [(0.0, 0.0), (1.0, 0.0)],
        [(1.0, 0.0), (1.0, 1.0)],
        [(1.0, 1.0), (0.0, 1.0)],
        [(0.0, 0.0), (0.0, 1.0)],
    ]
    coords = np.array([p for line in square for p in line])
    offsets = np.arange(0, 9, 2, dtype=np.int64)
    (line,) = road_layer._joined(coords, offsets)
    assert shapely.get_num_coordinates(line) == 5
    assert line.is_closed
    assert line.length == pytest.approx(4.0)


def test_layer_keeps_the_budget_and_the_extent(malta: ArrayGraph) -> None:
    layer = road_layer.map_roads(malta, cache=False)
    segments, rank = _segments(malta)
    assert layer.attrs["segments"] == len(segments)
    assert _vertices(layer) == layer.attrs["vertices"] <= road_layer.DEFAULT_MAX_VERTICES
    assert len(layer) < len(segments) / 3  # joined: far fewer lines than streets
    assert layer.attrs["classes_left_out"] == []
    assert set(layer["highway"]) == {MAIN_ROAD_CLASSES[c] for c in np.unique(rank)}
    assert layer.crs.equals("EPSG:4326")
    tol = layer.attrs["tolerance_m"] / DEG
    np.testing.assert_allclose(layer.total_bounds, shapely.total_bounds(segments), atol=tol + 1e-5)
    # every point drawn lies on a main road (to the tolerance), and the roads are all drawn
    roads = shapely.union_all(segments)
    drawn = shapely.points(shapely.get_coordinates(layer.geometry.values))
    assert shapely.distance(drawn, roads).max() <= tol + 1e-5
    sample = shapely.points(shapely.get_coordinates(segments)[::7])
    near = shapely.distance(sample, shapely.union_all(layer.geometry.values)) <= 2 * tol
    assert near.mean() > 0.99


def test_tight_budget_leaves_out_minor_classes_first(malta: ArrayGraph) -> None:
    full = road_layer.map_roads(malta, cache=False)
    tight = road_layer.map_roads(malta, max_vertices=1000, cache=False)
    assert _vertices(tight) <= 1000
    left_out = tight.attrs["classes_left_out"]
    assert left_out  # Malta's main roads do not fit in 1,000 vertices even at 160 m
    assert tight.attrs["tolerance_m"] <= road_layer.TOLERANCES_M[-1]
    assert set(tight["highway"]).isdisjoint(left_out)
    order = [c for c in road_layer.DROP_ORDER if c in set(full["highway"])]
    assert left_out == order[: len(left_out)]
    assert set(tight["highway"]) == set(full["highway"]) - set(left_out)


def test_layer_is_computed_once_per_graph_and_read_back_from_disk(
    malta: ArrayGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = road_layer.map_roads(malta, max_vertices=12_345)
    assert road_layer.map_roads(malta, max_vertices=12_345) is first  # same object, no copy
    files = list(cache_dir("map-roads").glob(f"*-12345-{road_layer.LAYER_VERSION}.npz"))
    assert len(files) == 1
    # a restarted process: the same graph read again, the layer comes from the disk cache
    again = network.load_region(MALTA_PBF, loader="arrays")
    assert again is not malta

    def no_rebuild(G: object) -> None:
        raise AssertionError("the layer was rebuilt instead of read from the cache")

    monkeypatch.setattr(road_layer, "_main_road_lines", no_rebuild)
    back = road_layer.map_roads(again, max_vertices=12_345)
    assert back is not first
    assert list(back["highway"]) == list(first["highway"])
    assert shapely.equals_exact(back.geometry.values, first.geometry.values, tolerance=0).all()
    assert back.attrs == first.attrs


def test_unreadable_cache_is_rebuilt(malta: ArrayGraph) -> None:
    G = network.load_region(MALTA_PBF, loader="arrays")
    key = f"{network.graph_fingerprint(G)}-777-{road_layer.LAYER_VERSION}"
    path = cache_dir("map-roads") / f"{key}.npz"
    path.write_bytes(b"not an npz file")
    layer = road_layer.map_roads(G, max_vertices=777)
    assert _vertices(layer) <= 777
    assert len(layer) > 0
    road_layer._MEMO.clear()
    assert len(road_layer.map_roads(G, max_vertices=777)) == len(layer)  # rewritten, readable


def test_osmnx_graph_layer_keeps_main_classes_only() -> None:
    G = nx.MultiDiGraph(crs="EPSG:4326")
    for n in (1, 2, 3, 4):
        G.add_node(n, x=14.0 + 0.01 * (n - 1), y=35.0)
    for u, v, hw in ((1, 2, "primary"), (2, 3, "primary"), (3, 4, "residential")):
        G.add_edge(u, v, osmid=u, highway=hw, length=900.0)
        G.add_edge(v, u, osmid=u, highway=hw, length=900.0)
    layer = road_layer.map_roads(G, cache=False)
    assert list(layer["highway"]) == ["primary"]  # two streets joined, residential left out
    assert layer.geometry.iloc[0].length == pytest.approx(0.02)
    assert layer.attrs["segments"] == 2


def test_empty_graph_gives_an_empty_layer() -> None:
    G = nx.MultiDiGraph(crs="EPSG:4326")
    G.add_node(1, x=14.0, y=35.0)
    layer = road_layer.map_roads(G)
    assert len(layer) == 0
    assert list(layer.columns) == ["highway", "geometry"]
    assert maps.customers_map(pd.DataFrame({"lat": [35.0], "lon": [14.0]}), roads=layer)


def test_budget_must_allow_a_line() -> None:
    with pytest.raises(ValueError, match="max_vertices"):
        road_layer.map_roads(nx.MultiDiGraph(), max_vertices=1)
