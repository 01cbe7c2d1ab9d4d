"""Snapping points to the nearest edge, access times, flags and coordinate checks."""

from __future__ import annotations

import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import Transformer

from planner.errors import GraphError, InputError
from planner.roads import snapping
from planner.roads.arrays import ArrayGraph
from planner.roads.network import load_region
from planner.roads.snapping import DEFAULT_ACCESS_SPEED_KPH, snap_points
from planner.settings import cache_dir

DATA = Path(__file__).resolve().parent.parent / "data" / "osm"

LON0, LAT0 = 9.52, 47.14  # Liechtenstein, UTM zone 32
TO_UTM = Transformer.from_crs(4326, 32632, always_xy=True)
TO_LONLAT = Transformer.from_crs(32632, 4326, always_xy=True)
X0, Y0 = TO_UTM.transform(LON0, LAT0)


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    """Coordinates of a point x_m east and y_m north of the origin, in UTM metres."""
    lon, lat = TO_LONLAT.transform(X0 + x_m, Y0 + y_m)
    return float(lon), float(lat)


def street_graph() -> nx.MultiDiGraph:
    """A 2 km two-way street 1-2, a one-way street 2-3 and a bent street 3-4 with geometry."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    coords = {1: (0.0, 0.0), 2: (2000.0, 0.0), 3: (2000.0, 1000.0), 4: (1000.0, 2000.0)}
    for n, (x, y) in coords.items():
        lon, lat = lonlat(x, y)
        G.add_node(n, x=lon, y=lat)
    G.add_edge(1, 2, length=2000.0, travel_time=200.0)
    G.add_edge(2, 1, length=2000.0, travel_time=240.0)  # slower the other way
    G.add_edge(2, 3, length=1000.0, travel_time=100.0)  # one-way
    bend = shapely.LineString([lonlat(2000.0, 1000.0), lonlat(2000.0, 2000.0), lonlat(1000, 2000)])
    G.add_edge(3, 4, length=2000.0, travel_time=150.0, geometry=bend)
    G.add_edge(4, 3, length=2000.0, travel_time=150.0, geometry=bend.reverse())
    return G


def snap_xy(G: nx.MultiDiGraph, xy: list[tuple[float, float]], **kwargs):
    lon, lat = zip(*(lonlat(x, y) for x, y in xy), strict=True)
    return snap_points(G, lon, lat, **kwargs)


def test_snaps_to_nearest_edge_not_nearest_node() -> None:
    G = street_graph()
    # 30 m south of the middle of street 1-2: nodes are 1 km away, the street 30 m
    pts = snap_xy(G, [(1000.0, -30.0)])
    assert {int(pts.edge_u[0]), int(pts.edge_v[0])} == {1, 2}
    assert pts.snap_distance_m[0] == pytest.approx(30.0, abs=0.01)
    frac_from_1 = pts.fraction[0] if pts.edge_u[0] == 1 else 1 - pts.fraction[0]
    assert frac_from_1 == pytest.approx(0.5, abs=1e-4)
    assert pts.access_time_s[0] == pytest.approx(30.0 / (DEFAULT_ACCESS_SPEED_KPH / 3.6))
    sx, sy = TO_UTM.transform(pts.snapped_lon[0], pts.snapped_lat[0])
    assert (sx - X0, sy - Y0) == pytest.approx((1000.0, 0.0), abs=0.01)


def test_entry_times_on_two_way_and_one_way_streets() -> None:
    G = street_graph()
    pts = snap_xy(G, [(500.0, 10.0), (2010.0, 250.0)])
    # two-way street: one position, both directions with their own travel times
    assert bool(pts.has_reverse[0])
    u, v, f = int(pts.edge_u[0]), int(pts.edge_v[0]), float(pts.fraction[0])
    tt = {(1, 2): 200.0, (2, 1): 240.0}
    assert pts.time_to_forward_s[0] == pytest.approx((1 - f) * tt[u, v])
    assert pts.time_to_backward_s[0] == pytest.approx(f * tt[v, u])
    assert pts.time_from_u_s[0] == pytest.approx(f * tt[u, v])
    assert pts.time_from_v_s[0] == pytest.approx((1 - f) * tt[v, u])
    # one-way street 2 -> 3 at a quarter: node 2 cannot be reached, node 3 cannot reach it
    assert (int(pts.edge_u[1]), int(pts.edge_v[1])) == (2, 3)
    assert pts.fraction[1] == pytest.approx(0.25, abs=1e-4)
    assert not pts.has_reverse[1]
    assert pts.time_to_forward_s[1] == pytest.approx(75.0, abs=0.01)
    assert math.isinf(pts.time_to_backward_s[1])
    assert math.isinf(pts.time_from_v_s[1])
    assert pts.time_from_u_s[1] == pytest.approx(25.0, abs=0.01)


def test_fraction_follows_curved_geometry() -> None:
    G = street_graph()
    # on the bent street 3 -> (2000, 2000) -> 4, 1.5 km along it from node 3
    pts = snap_xy(G, [(1500.0, 2020.0)])
    assert {int(pts.edge_u[0]), int(pts.edge_v[0])} == {3, 4}
    from_3 = pts.fraction[0] if pts.edge_u[0] == 3 else 1 - pts.fraction[0]
    assert from_3 == pytest.approx(0.75, abs=1e-3)
    assert pts.snap_distance_m[0] == pytest.approx(20.0, abs=0.05)


def test_position_key_groups_identical_positions() -> None:
    G = street_graph()
    pts = snap_xy(
        G,
        [
            (700.0, 5.0),  # 0
            (700.0, -5.0),  # 1: same position as 0 from the other side of the street
            (900.0, 5.0),  # 2: another position
            (-20.0, -20.0),  # 3: at node 1
            (-30.0, 10.0),  # 4: also at node 1
            (2000.0, 0.0),  # 5: node 2, end of several streets
            (2030.0, -10.0),  # 6: also node 2
        ],
    )
    key = pts.position_key
    assert key[0] == key[1]
    assert key[0] != key[2]
    assert key[3] == key[4]
    assert key[5] == key[6]
    assert len({key[0], key[2], key[3], key[5]}) == 4


def test_far_points_are_flagged_not_moved() -> None:
    G = street_graph()
    pts = snap_xy(G, [(1000.0, -999.0), (1000.0, -1001.0), (1000.0, -3000.0)], max_snap_m=1000.0)
    assert pts.too_far.tolist() == [False, True, True]
    assert pts.snap_distance_m[1] == pytest.approx(1001.0, abs=0.05)
    assert pts.outside_region.tolist() == [False, False, True]
    # the input coordinates are kept as given
    lon, _ = lonlat(1000.0, -3000.0)
    assert pts.lon[2] == pytest.approx(lon)
    stricter = snap_xy(G, [(1000.0, -999.0)], max_snap_m=500.0)
    assert stricter.too_far.tolist() == [True]


def test_swapped_coordinates_raise_with_the_fix() -> None:
    G = street_graph()
    lon, lat = zip(*(lonlat(x, 10.0) for x in (100.0, 500.0, 900.0)), strict=True)
    with pytest.raises(InputError, match="swapped") as err:
        snap_points(G, lat, lon, source="customers.csv")
    assert "customers.csv" in str(err.value)
    assert "latitudes" in str(err.value)


def test_out_of_range_and_missing_coordinates_raise() -> None:
    G = street_graph()
    with pytest.raises(InputError, match=r"out of range.*swapped"):
        snap_points(G, [47.1], [95.0])
    with pytest.raises(InputError, match="missing"):
        snap_points(G, [LON0, np.nan], [LAT0, LAT0])
    with pytest.raises(InputError, match="same length"):
        snap_points(G, [LON0, LON0], [LAT0])


def test_points_outside_the_region_raise() -> None:
    G = street_graph()
    with pytest.raises(InputError, match="none of the 2 points") as err:
        snap_points(G, [14.5, 14.51], [35.9, 35.91], source="malta.csv")
    assert "another region" in str(err.value)
    assert "malta.csv" in str(err.value)


def test_projected_or_empty_graph_is_refused() -> None:
    G = street_graph()
    G.graph["crs"] = "epsg:32632"
    with pytest.raises(GraphError, match="unprojected"):
        snap_points(G, [LON0], [LAT0])
    with pytest.raises(GraphError, match="no edges"):
        snap_points(nx.MultiDiGraph(crs="epsg:4326"), [LON0], [LAT0])


def test_empty_input_and_subset() -> None:
    G = street_graph()
    empty = snap_points(G, [], [])
    assert len(empty) == 0
    pts = snap_xy(G, [(100.0, 5.0), (2005.0, 500.0), (1500.0, 2001.0)])
    sub = pts.subset([2, 0])
    assert len(sub) == 2
    assert sub.edge_u.tolist() == [pts.edge_u[2], pts.edge_u[0]]
    frame = pts.to_frame()
    assert list(frame["snap_distance_m"]) == pytest.approx(list(pts.snap_distance_m))


@pytest.mark.slow
def test_liechtenstein_snap_equals_exhaustive_nearest_edge() -> None:
    G = load_region("liechtenstein")
    rng = np.random.default_rng(5)
    nodes = list(G.nodes)
    picks = rng.choice(len(nodes), 60, replace=False)
    lon = np.array([G.nodes[nodes[k]]["x"] for k in picks]) + rng.normal(0, 0.003, 60)
    lat = np.array([G.nodes[nodes[k]]["y"] for k in picks]) + rng.normal(0, 0.003, 60)
    pts = snap_points(G, lon, lat)
    to_utm = Transformer.from_crs(4326, G.graph["planner_report"]["utm_epsg"], always_xy=True)
    lines = []
    for u, v, d in G.edges(data=True):
        geom = d.get("geometry") or shapely.LineString(
            [(G.nodes[u]["x"], G.nodes[u]["y"]), (G.nodes[v]["x"], G.nodes[v]["y"])]
        )
        lines.append(geom)
    lines_utm = shapely.transform(
        np.array(lines, dtype=object),
        lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1])),
    )
    px, py = to_utm.transform(lon, lat)
    exhaustive = np.array(
        [
            shapely.distance(lines_utm, shapely.Point(x, y)).min()
            for x, y in zip(px, py, strict=True)
        ]
    )
    assert np.allclose(pts.snap_distance_m, exhaustive, atol=1e-6)
    nx_, ny_ = to_utm.transform(
        [d["x"] for _, d in G.nodes(data=True)], [d["y"] for _, d in G.nodes(data=True)]
    )
    node_xy = np.column_stack([nx_, ny_])
    nearest_node_m = np.array(
        [np.hypot(node_xy[:, 0] - x, node_xy[:, 1] - y).min() for x, y in zip(px, py, strict=True)]
    )
    assert (pts.snap_distance_m <= nearest_node_m + 1e-9).all()
    assert (pts.snap_distance_m < nearest_node_m - 1.0).mean() > 0.5  # edges, not nodes


def test_array_graph_index_is_cached_on_disk_and_snaps_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pathlib import Path

    pbf = (
        Path(__file__).resolve().parent.parent / "data" / "osm" / "liechtenstein-2026-03-29.osm.pbf"
    )
    G = load_region(pbf, loader="arrays")
    assert isinstance(G, ArrayGraph)
    rng = np.random.default_rng(3)
    lon = rng.uniform(9.50, 9.60, 200)
    lat = rng.uniform(47.06, 47.24, 200)
    first = snap_points(G, lon, lat)
    path = cache_dir("snap-index") / f"{G.fingerprint()}-{snapping.INDEX_CACHE_VERSION}.npz"
    assert path.is_file()

    def no_rebuild(graph: object) -> None:
        raise AssertionError("the snapping index was rebuilt instead of read from the cache")

    monkeypatch.setattr(snapping, "_index_arrays", no_rebuild)
    again = load_region(pbf, loader="arrays")  # a restarted process: another graph object
    assert again is not G
    second = snap_points(again, lon, lat)
    for name in ("edge_u", "edge_v", "edge_key", "edge_index", "fraction", "snap_distance_m"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    np.testing.assert_array_equal(first.time_to_backward_s, second.time_to_backward_s)
    # an unreadable cache file is ignored: the index is built again
    monkeypatch.undo()
    path.write_bytes(b"garbage")
    snapping._INDEX_MEMO.clear()
    third = snap_points(G, lon, lat)
    np.testing.assert_array_equal(first.edge_index, third.edge_index)
