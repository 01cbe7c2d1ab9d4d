"""Travel-time matrices: compared with networkx Dijkstra and a brute-force point insertion."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from planner import settings
from planner.errors import GraphError, InputError
from planner.roads.network import fingerprint_once, graph_fingerprint, load_region
from planner.roads.snapping import SnappedPoints, snap_points
from planner.routing import matrix
from planner.routing.matrix import snapped_travel_time_matrix, travel_time_matrix

LON0, LAT0 = 14.45, 35.90  # Malta; any place works, UTM zone 33
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(LAT0))


def random_digraph(seed: int, n: int = 30, p: float = 0.12) -> nx.MultiDiGraph:
    """A random directed multigraph with travel times, parallel edges and unreachable parts."""
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(n):
        G.add_node(1000 + i, x=LON0 + rng.uniform(0, 0.05), y=LAT0 + rng.uniform(0, 0.05))
    for u in range(n):
        for v in range(n):
            if u != v and rng.random() < p:
                G.add_edge(1000 + u, 1000 + v, travel_time=float(rng.uniform(1, 100)))
                if rng.random() < 0.1:  # a parallel edge, sometimes faster
                    G.add_edge(1000 + u, 1000 + v, travel_time=float(rng.uniform(1, 100)))
    G.add_edge(1000, 1001, travel_time=0.0)  # zero-time edges are edges, not gaps
    return G


def networkx_matrix(G: nx.MultiDiGraph, origins, destinations) -> np.ndarray:
    out = np.full((len(origins), len(destinations)), np.inf)
    for i, o in enumerate(origins):
        dist = nx.single_source_dijkstra_path_length(G, o, weight="travel_time")
        for j, d in enumerate(destinations):
            out[i, j] = dist.get(d, np.inf)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_travel_time_matrix_equals_networkx_both_sides(seed: int) -> None:
    G = random_digraph(seed)
    nodes = list(G.nodes)
    rng = np.random.default_rng(seed)
    few = [int(x) for x in rng.choice(nodes, 4)]
    many = [int(x) for x in rng.choice(nodes, 25)]  # repeats included
    # few origins: Dijkstra from origins; many origins: from destinations on the reversed graph
    for origins, destinations in ((few, many), (many, few)):
        got = travel_time_matrix(G, origins, destinations, cache=False)
        ref = networkx_matrix(G, origins, destinations)
        assert got.shape == ref.shape
        assert np.array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        assert np.allclose(got[finite], ref[finite], rtol=0, atol=1e-9)


def test_unreachable_is_inf_and_chunking_does_not_change_results() -> None:
    G = random_digraph(3)
    G.add_node(1, x=LON0, y=LAT0)  # isolated node
    G.add_edge(2, 1, travel_time=5.0)  # 2 reaches 1, nothing reaches 2
    G.nodes[2].update(x=LON0, y=LAT0)
    nodes = list(G.nodes)
    full = travel_time_matrix(G, nodes, nodes, cache=False)
    small = travel_time_matrix(G, nodes, nodes, cache=False, max_chunk_bytes=1)
    assert np.array_equal(full, small)
    i1, i2 = nodes.index(1), nodes.index(2)
    assert np.isinf(full[i1, [k for k in range(len(nodes)) if k != i1]]).all()
    assert full[i2, i1] == 5.0
    assert np.isinf(full[[k for k in range(len(nodes)) if k != i2], i2]).all()
    assert np.all(np.diag(full) == 0.0)


def test_unknown_node_and_bad_weight_raise() -> None:
    G = random_digraph(0)
    with pytest.raises(InputError, match="not in the graph"):
        travel_time_matrix(G, [1000, 424242], [1001], cache=False)
    G.add_edge(1000, 1002, travel_time=-1.0)
    with pytest.raises(GraphError, match="negative"):
        travel_time_matrix(G, [1000], [1001], cache=False)


def test_disk_cache_round_trip_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path))
    G = random_digraph(1)
    nodes = list(G.nodes)
    first = travel_time_matrix(G, nodes[:5], nodes)
    files = list((tmp_path / "matrices").glob("*.npz"))
    assert len(files) == 1
    # the cached file is what is returned the second time
    with np.load(files[0], allow_pickle=False) as npz:
        assert np.array_equal(npz["travel_time_s"], first)
    assert np.array_equal(travel_time_matrix(G, nodes[:5], nodes), first)
    assert len(list((tmp_path / "matrices").glob("*.npz"))) == 1
    # different points or different weights -> different entries
    travel_time_matrix(G, nodes[:4], nodes)
    for _, _, d in G.edges(data=True):
        d["travel_time"] *= 2
    doubled = travel_time_matrix(G, nodes[:5], nodes)
    assert np.array_equal(doubled, 2 * first)
    assert len(list((tmp_path / "matrices").glob("*.npz"))) == 3
    # a corrupt cache file is ignored and recomputed
    for f in (tmp_path / "matrices").glob("*.npz"):
        f.write_bytes(b"garbage")
    assert np.array_equal(travel_time_matrix(G, nodes[:5], nodes), doubled)


def test_cache_dir_honours_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "c"))
    assert settings.cache_dir("matrices") == tmp_path / "c" / "matrices"
    assert (tmp_path / "c" / "matrices").is_dir()


# ----------------------------------------------------------------------------------------------
# Snapped matrices against a brute-force reference
# ----------------------------------------------------------------------------------------------


def to_lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    return LON0 + x_m / M_PER_DEG_LON, LAT0 + y_m / M_PER_DEG_LAT


def grid_graph(seed: int, size: int = 4, spacing_m: float = 400.0) -> nx.MultiDiGraph:
    """A street grid in lon/lat with travel times; some streets one-way, random speeds."""
    rng = np.random.default_rng(seed)
    G = nx.MultiDiGraph(crs="epsg:4326")

    def nid(i: int, j: int) -> int:
        return 10 * i + j + 1

    for i in range(size):
        for j in range(size):
            lon, lat = to_lonlat(i * spacing_m, j * spacing_m)
            G.add_node(nid(i, j), x=lon, y=lat)
    for i in range(size):
        for j in range(size):
            for di, dj in ((1, 0), (0, 1)):
                if i + di >= size or j + dj >= size:
                    continue
                a, b = nid(i, j), nid(i + di, j + dj)
                speed_mps = float(rng.uniform(5, 20))
                kind = rng.random()
                if kind < 0.2:
                    pairs = [(a, b)]
                elif kind < 0.3:
                    pairs = [(b, a)]
                else:
                    pairs = [(a, b), (b, a)]
                for u, v in pairs:
                    G.add_edge(
                        u, v, length=spacing_m, travel_time=spacing_m / speed_mps, highway="x"
                    )
    return G


def brute_force(G: nx.MultiDiGraph, origins: SnappedPoints, dests: SnappedPoints) -> np.ndarray:
    """Insert every snapped point as a node on its street and run networkx Dijkstra."""
    H = nx.MultiDiGraph()
    for u, v, d in G.edges(data=True):
        H.add_edge(u, v, travel_time=d["travel_time"])
    points: list[tuple[str, int]] = [("o", i) for i in range(len(origins))]
    points += [("d", j) for j in range(len(dests))]
    by_edge: dict[tuple[int, int, int], list[tuple[float, tuple[str, int]]]] = {}
    for tag, i in points:
        pts = origins if tag == "o" else dests
        key = (int(pts.edge_u[i]), int(pts.edge_v[i]), int(pts.edge_key[i]))
        by_edge.setdefault(key, []).append((float(pts.fraction[i]), (tag, i)))
    for (u, v, k), items in by_edge.items():
        pts = origins if items[0][1][0] == "o" else dests
        idx = items[0][1][1]
        tt_f = G.edges[u, v, k]["travel_time"]
        has_rev = bool(pts.has_reverse[idx])
        tt_r = float(pts.time_to_backward_s[idx] + pts.time_from_v_s[idx]) if has_rev else None
        items.sort(key=lambda t: t[0])
        chain = [(0.0, u), *[(f, p) for f, p in items], (1.0, v)]
        for (f0, a), (f1, b) in itertools.pairwise(chain):
            H.add_edge(a, b, travel_time=(f1 - f0) * tt_f)
            if has_rev:
                H.add_edge(b, a, travel_time=(f1 - f0) * tt_r)
        if not has_rev:  # a point exactly at an end of a one-way street is at that node
            for f, p in items:
                if f == 0.0:
                    H.add_edge(p, u, travel_time=0.0)
                if f == 1.0:
                    H.add_edge(v, p, travel_time=0.0)
    out = np.full((len(origins), len(dests)), np.inf)
    for i in range(len(origins)):
        dist = nx.single_source_dijkstra_path_length(H, ("o", i), weight="travel_time")
        for j in range(len(dests)):
            if ("d", j) in dist:
                out[i, j] = origins.access_time_s[i] + dist[("d", j)] + dests.access_time_s[j]
    return out


@pytest.mark.parametrize("seed", range(8))
def test_snapped_matrix_equals_brute_force(seed: int) -> None:
    G = grid_graph(seed)
    rng = np.random.default_rng(100 + seed)
    extent = 3 * 400.0

    def random_points(n: int) -> tuple[np.ndarray, np.ndarray]:
        xy = rng.uniform(-50, extent + 50, size=(n, 2))
        lon, lat = to_lonlat(xy[:, 0], xy[:, 1])
        return np.asarray(lon), np.asarray(lat)

    o_lon, o_lat = random_points(25)
    d_lon, d_lat = random_points(6)
    # put destinations on the same streets as some origins, up- and downstream of them
    d_lon = np.concatenate([d_lon, o_lon[:4] + 40 / M_PER_DEG_LON, o_lon[4:6]])
    d_lat = np.concatenate([d_lat, o_lat[:4], o_lat[4:6] - 40 / M_PER_DEG_LAT])
    origins = snap_points(G, o_lon, o_lat)
    dests = snap_points(G, d_lon, d_lat)
    assert np.intersect1d(origins.edge_index, dests.edge_index).size > 0  # same-street pairs
    # many origins (Dijkstra from the destinations on the reversed graph) and few origins
    for a, b in ((origins, dests), (dests, origins)):
        got = snapped_travel_time_matrix(G, a, b, cache=False)
        ref = brute_force(G, a, b)
        assert np.array_equal(np.isinf(got), np.isinf(ref))
        finite = np.isfinite(ref)
        assert np.allclose(got[finite], ref[finite], rtol=0, atol=1e-6)
        # one point per chunk gives the same numbers
        tiny_chunks = snapped_travel_time_matrix(G, a, b, cache=False, max_chunk_bytes=1)
        assert np.array_equal(tiny_chunks, got)


def test_same_street_direct_trip_and_one_way() -> None:
    """Two points on one street: downstream is direct; upstream on a one-way goes around."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    a, b, c = to_lonlat(0.0, 0.0), to_lonlat(1000.0, 0.0), to_lonlat(1000.0, 1000.0)
    G.add_node(1, x=a[0], y=a[1])
    G.add_node(2, x=b[0], y=b[1])
    G.add_node(3, x=c[0], y=c[1])
    G.add_edge(1, 2, length=1000.0, travel_time=100.0)  # one-way 1 -> 2
    G.add_edge(2, 3, length=1000.0, travel_time=100.0)
    G.add_edge(3, 1, length=1414.0, travel_time=141.4)
    lon, lat = zip(to_lonlat(200.0, 0.0), to_lonlat(700.0, 0.0), strict=True)
    pts = snap_points(G, lon, lat, access_speed_kph=20.0)
    assert np.allclose(pts.fraction, [0.2, 0.7], atol=1e-3)
    assert np.allclose(pts.snap_distance_m, 0.0, atol=0.05)  # chord vs parallel: cm
    M = snapped_travel_time_matrix(G, pts, pts, cache=False)
    assert M[0, 1] == pytest.approx(50.0, abs=0.1)  # direct, downstream
    # upstream: to node 2 (30 s), round 2 -> 3 -> 1 (241.4 s), then 20 s along the street
    assert M[1, 0] == pytest.approx(30.0 + 241.4 + 20.0, abs=0.1)
    assert np.allclose(np.diag(M), 2 * pts.access_time_s)  # only the way to the road and back


def test_snapped_matrix_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path))
    G = grid_graph(4)
    lon, lat = zip(*(to_lonlat(x, 30.0) for x in (100.0, 500.0, 900.0)), strict=True)
    pts = snap_points(G, lon, lat)
    first = snapped_travel_time_matrix(G, pts, pts)
    files = list((tmp_path / "matrices").glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as npz:
        assert np.array_equal(npz["travel_time_s"], first)
    assert np.array_equal(snapped_travel_time_matrix(G, pts, pts), first)
    # other points or another access speed are other entries
    slower = snap_points(G, lon, lat, access_speed_kph=5.0)
    other = snapped_travel_time_matrix(G, slower, pts)
    assert len(list((tmp_path / "matrices").glob("*.npz"))) == 2
    assert (other > first).all()


def test_points_snapped_to_another_graph_are_refused() -> None:
    G = grid_graph(0)
    H = grid_graph(1)
    lon, lat = to_lonlat(100.0, 10.0)
    p = snap_points(G, [lon], [lat])
    q = snap_points(H, [lon], [lat])
    with pytest.raises(InputError, match="different road graph"):
        snapped_travel_time_matrix(G, p, q, cache=False)


def test_too_far_points_get_inf_unless_included() -> None:
    G = grid_graph(2)
    lon, lat = zip(to_lonlat(100.0, 5.0), to_lonlat(600.0, -1500.0), strict=True)
    pts = snap_points(G, lon, lat, max_snap_m=1000.0)
    assert pts.too_far.tolist() == [False, True]
    M = snapped_travel_time_matrix(G, pts, pts, cache=False)
    assert np.isinf(M[1]).all()
    assert np.isinf(M[:, 1]).all()
    assert M[0, 0] == pytest.approx(2 * pts.access_time_s[0])
    M2 = snapped_travel_time_matrix(G, pts, pts, cache=False, include_too_far=True)
    assert np.isfinite(M2[1, 1])
    assert M2[1, 1] == pytest.approx(2 * pts.access_time_s[1])


# ----------------------------------------------------------------------------------------------
# Integration on a bundled region
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def liechtenstein() -> nx.MultiDiGraph:
    return load_region("liechtenstein")


@pytest.mark.slow
def test_liechtenstein_matrix_equals_networkx(liechtenstein: nx.MultiDiGraph) -> None:
    G = liechtenstein
    rng = np.random.default_rng(7)
    nodes = np.array(list(G.nodes))
    origins = rng.choice(nodes, 12, replace=False)
    got = travel_time_matrix(G, origins, nodes, cache=False)
    ref = networkx_matrix(G, origins.tolist(), nodes.tolist())
    assert np.isfinite(got).all()  # the largest strongly connected component
    assert np.allclose(got, ref, rtol=0, atol=1e-6)
    # from the destination side (more origins than destinations) the result is the same
    back = travel_time_matrix(G, nodes, origins, cache=False)
    ref_back = networkx_matrix(G.reverse(copy=True), origins.tolist(), nodes.tolist()).T
    assert np.allclose(back, ref_back, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_liechtenstein_snapped_matrix_equals_brute_force(liechtenstein: nx.MultiDiGraph) -> None:
    G = liechtenstein
    rng = np.random.default_rng(11)
    nodes = list(G.nodes)
    picks = rng.choice(len(nodes), 12, replace=False)
    lon = np.array([G.nodes[nodes[k]]["x"] for k in picks]) + rng.normal(0, 0.002, 12)
    lat = np.array([G.nodes[nodes[k]]["y"] for k in picks]) + rng.normal(0, 0.002, 12)
    origins = snap_points(G, lon[:8], lat[:8])
    dests = snap_points(G, lon[8:], lat[8:])
    got = snapped_travel_time_matrix(G, origins, dests, include_too_far=True, cache=False)
    ref = brute_force(G, origins, dests)
    assert np.allclose(got, ref, rtol=0, atol=1e-6)


def test_fingerprint_once_hashes_once_and_edits_outside_it_are_seen() -> None:
    G = grid_graph(2)
    before = graph_fingerprint(G)
    with fingerprint_once(G) as fingerprint:
        assert fingerprint == before
        assert graph_fingerprint(G) == before
        with fingerprint_once(G) as inner:  # nested: the outer value
            assert inner == before
    for _, _, d in G.edges(data=True):
        d["travel_time"] *= 2
    assert graph_fingerprint(G) != before  # outside the block every call hashes again
    assert graph_fingerprint(grid_graph(2)) == before  # other object, same content


def test_snapped_matrix_follows_a_graph_edited_in_place() -> None:
    """The CSR arrays are reused per graph only while its fingerprint holds."""
    G = grid_graph(3)
    lon, lat = zip(*(to_lonlat(x, 30.0) for x in (100.0, 500.0, 900.0)), strict=True)
    pts = snap_points(G, lon, lat)
    first = snapped_travel_time_matrix(G, pts, pts, cache=False)
    with fingerprint_once(G):
        again = snap_points(G, lon, lat)
        assert np.array_equal(snapped_travel_time_matrix(G, again, again, cache=False), first)
    for _, _, d in G.edges(data=True):
        d["travel_time"] *= 2
    with pytest.raises(InputError, match="different road graph"):
        snapped_travel_time_matrix(G, pts, pts, cache=False)
    slower = snap_points(G, lon, lat)
    doubled = snapped_travel_time_matrix(G, slower, slower, cache=False)
    assert np.array_equal(doubled, brute_force(G, slower, slower))
    off_diagonal = ~np.eye(3, dtype=bool)
    assert (doubled[off_diagonal] > first[off_diagonal]).all()


def test_array_graph_travel_time_arrays_are_built_once_per_graph() -> None:
    pbf = Path(__file__).resolve().parent.parent / "data/osm/liechtenstein-2026-03-29.osm.pbf"
    G = load_region(pbf, loader="arrays")
    fp = graph_fingerprint(G)
    first = matrix._travel_time_arrays(G, fp)
    assert matrix._travel_time_arrays(G, fp) is first
    expected = G.csr(weight="travel_time")
    assert (first.csr != expected).nnz == 0
    np.testing.assert_array_equal(first.nodes, G.node_id)
