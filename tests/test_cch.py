"""The CCH matrix kernel (RoutingKit) against scipy Dijkstra and networkx.

The CCH works on travel times rounded to 1 ms (``CCH_UNIT_S``): on node matrices it must equal
Dijkstra on the rounded weights exactly, and the float Dijkstra / networkx result within 0.5 ms
per edge of the path.
"""

from __future__ import annotations

import logging
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra
from test_matrix import brute_force, grid_graph, networkx_matrix, random_digraph, to_lonlat

from planner.errors import InputError
from planner.roads.network import load_region
from planner.roads.snapping import snap_points
from planner.routing import _cch
from planner.routing.matrix import (
    CCH_MIN_NODES,
    _graph_arrays,
    resolve_method,
    snapped_travel_time_matrix,
    travel_time_matrix,
)

UNIT = _cch.CCH_UNIT_S


def rounded_dijkstra(G: nx.MultiDiGraph, origins, destinations) -> np.ndarray:
    """scipy Dijkstra on the travel times rounded to the CCH unit (exact in float64)."""
    ga = _graph_arrays(G, "travel_time")
    csr = ga.csr.copy()
    csr.data = np.rint(csr.data / UNIT)
    o = ga.positions(origins, "origins")
    d = ga.positions(destinations, "destinations")
    return dijkstra(csr, directed=True, indices=o)[:, d] * UNIT


def hops(G: nx.MultiDiGraph, origins, destinations) -> np.ndarray:
    """Edges on a path (an upper bound of shortest-path hop counts: the node count)."""
    return np.full((len(origins), len(destinations)), G.number_of_nodes())


def test_resolve_method_checks_and_picks_by_size() -> None:
    assert resolve_method("auto", CCH_MIN_NODES - 1) == "dijkstra"
    assert resolve_method("auto", CCH_MIN_NODES) == "cch"
    assert resolve_method("cch", 3) == "cch"
    with pytest.raises(InputError, match="dijkstra"):
        resolve_method("phast", 10)


@pytest.mark.parametrize("seed", range(6))
def test_cch_node_matrix_equals_rounded_dijkstra_and_networkx(seed: int) -> None:
    G = random_digraph(seed)
    nodes = list(G.nodes)
    origins, destinations = nodes[:12], nodes[5:]
    for o, d in ((origins, destinations), (destinations, origins)):  # both sides pinned
        got = travel_time_matrix(G, o, d, cache=False, method="cch")
        exact = rounded_dijkstra(G, o, d)
        assert np.array_equal(np.isinf(got), np.isinf(exact))  # unreachable stays inf
        finite = np.isfinite(exact)
        assert np.allclose(got[finite], exact[finite], rtol=0, atol=1e-9)
        ref = networkx_matrix(G, o, d)
        assert np.array_equal(np.isinf(got), np.isinf(ref))
        bound = 0.5 * UNIT * hops(G, o, d) + 1e-9
        assert (np.abs(got[finite] - ref[finite]) <= bound[finite]).all()
        floats = travel_time_matrix(G, o, d, cache=False, method="dijkstra")
        assert (np.abs(got[finite] - floats[finite]) <= bound[finite]).all()


@pytest.mark.parametrize("seed", range(4))
def test_cch_snapped_matrix_equals_brute_force_within_rounding(seed: int) -> None:
    G = grid_graph(seed, size=5)
    rng = np.random.default_rng(200 + seed)
    xy = rng.uniform(-50, 4 * 400.0 + 50, size=(30, 2))
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
    origins = snap_points(G, np.asarray(lon[:22]), np.asarray(lat[:22]))
    dests = snap_points(G, np.asarray(lon[22:]), np.asarray(lat[22:]))
    # a path has at most 2 * 5 * 4 edges; the swept side's snap offsets add 0.5 ms each
    bound = 0.5 * UNIT * (2 * 5 * 4 + 2)
    for a, b in ((origins, dests), (dests, origins)):
        got = snapped_travel_time_matrix(G, a, b, cache=False, method="cch")
        ref = brute_force(G, a, b)
        assert np.array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        assert np.abs(got[finite] - ref[finite]).max() <= bound
        # one point per chunk (many chunks, on threads) gives the same numbers
        tiny = snapped_travel_time_matrix(G, a, b, cache=False, method="cch", max_chunk_bytes=1)
        assert np.array_equal(tiny, got)


def test_threads_give_the_same_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    G = grid_graph(3, size=6)
    rng = np.random.default_rng(5)
    xy = rng.uniform(0, 5 * 400.0, size=(60, 2))
    lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
    a = snap_points(G, np.asarray(lon[:50]), np.asarray(lat[:50]))
    b = snap_points(G, np.asarray(lon[50:]), np.asarray(lat[50:]))
    monkeypatch.setenv("PLANNER_THREADS", "1")
    one = snapped_travel_time_matrix(G, a, b, cache=False, method="cch", max_chunk_bytes=1)
    monkeypatch.setenv("PLANNER_THREADS", "3")
    three = snapped_travel_time_matrix(G, a, b, cache=False, method="cch", max_chunk_bytes=1)
    assert np.array_equal(one, three)


def test_node_order_is_cached_on_disk_and_a_bad_file_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path))
    G = random_digraph(1)
    nodes = list(G.nodes)
    first = travel_time_matrix(G, nodes, nodes[:4], cache=False, method="cch")
    files = list((tmp_path / "cch").glob("order-*.npz"))
    assert len(files) == 1
    files[0].write_bytes(b"not a zip file")
    _cch._indexes.clear()  # force a rebuild from the order
    with caplog.at_level(logging.WARNING):
        again = travel_time_matrix(G, nodes, nodes[:4], cache=False, method="cch")
    assert "CCH order" in caplog.text
    assert np.array_equal(first, again)
    with np.load(files[0]) as npz:  # rewritten as a permutation of the nodes
        assert sorted(npz["order"].tolist()) == list(range(len(nodes)))


@pytest.fixture(scope="module")
def malta_arrays():
    pbf = Path(__file__).resolve().parent.parent / "data" / "osm" / "malta-2018-08-27.osm.pbf"
    return load_region(str(pbf), loader="arrays")


def test_malta_sample_cch_equals_dijkstra(malta_arrays) -> None:
    G = malta_arrays
    rng = np.random.default_rng(3)
    pick = rng.integers(0, G.number_of_nodes(), 460)
    lon = G.x[pick] + rng.normal(0, 5e-4, pick.size)
    lat = G.y[pick] + rng.normal(0, 5e-4, pick.size)
    customers = snap_points(G, lon[:400], lat[:400])
    sites = snap_points(G, lon[400:], lat[400:])
    ref = snapped_travel_time_matrix(G, customers, sites, cache=False, method="dijkstra")
    got = snapped_travel_time_matrix(G, customers, sites, cache=False, method="cch")
    assert np.array_equal(np.isinf(got), np.isinf(ref))
    finite = np.isfinite(ref)
    diff = np.abs(got[finite] - ref[finite])
    # rounding errors of 1 ms edge times partly cancel along a path: measured max about 15 ms
    assert diff.max() < 0.05
    assert diff.mean() < 0.005
    # node pairs: exactly Dijkstra on the rounded weights
    ids = G.node_id[pick[:30]]
    node = travel_time_matrix(G, ids, G.node_id[pick[30:60]], cache=False, method="cch")
    ga = _graph_arrays(G, "travel_time")
    csr = ga.csr.copy()
    csr.data = np.rint(csr.data / UNIT)
    exact = dijkstra(csr, indices=pick[:30])[:, pick[30:60]] * UNIT
    assert np.allclose(node, exact, rtol=0, atol=1e-9)
