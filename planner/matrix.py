"""Travel-time matrices between graph nodes and between snapped points, with a disk cache.

Shortest paths are computed with :func:`scipy.sparse.csgraph.dijkstra` (compiled), from the
smaller side: from the origins on the graph, or from the destinations on the transposed graph
(every edge reversed) when there are fewer destinations, so one-way streets are respected. The
sources are processed in chunks so that the dense intermediate block stays under
``max_chunk_bytes``. Parallel edges keep their minimum travel time. Unreachable pairs are
``inf`` -- never a finite number.

Matrices are cached on disk (``.npz``, no pickle) under ``$PLANNER_CACHE_DIR/matrices``, keyed by
a hash of the graph's nodes, edges and weights, the node ids asked for, and the graph's speed
settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import numpy.typing as npt

from planner import _osm_cache
from planner.errors import GraphError, InputError
from planner.snapping import SnappedPoints

logger = logging.getLogger(__name__)

#: Upper bound (bytes) of the dense block one Dijkstra chunk produces.
DEFAULT_MAX_CHUNK_BYTES = 64 * 1024 * 1024

MATRIX_CODE_VERSION = "matrix-1"


def _graph_arrays(
    G: nx.MultiDiGraph, weight: str
) -> tuple[npt.NDArray[np.int64], Any, dict[Any, int]]:
    """Return node ids, the CSR adjacency matrix (min over parallel edges) and id -> position."""
    from scipy import sparse

    nodes = np.fromiter(G.nodes, dtype=np.int64, count=G.number_of_nodes())
    position = {int(n): i for i, n in enumerate(nodes)}
    edges = list(G.edges(data=weight))
    m = len(edges)
    rows = np.array([position[u] for u, _, _ in edges], dtype=np.int64)
    cols = np.array([position[v] for _, v, _ in edges], dtype=np.int64)
    data = np.array([math.nan if w is None else w for _, _, w in edges], dtype=np.float64)
    if m and not (np.isfinite(data).all() and (data >= 0).all()):
        bad = int((~np.isfinite(data) | (data < 0)).sum())
        msg = (
            f"{bad} edge(s) have a missing, negative or infinite {weight!r}; load the graph with "
            "planner.network.load_region()"
        )
        raise GraphError(msg)
    # keep the smallest weight of parallel edges
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.ones(m, dtype=bool)
    if m:
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    n = nodes.size
    csr = sparse.csr_matrix((data[first], (rows[first], cols[first])), shape=(n, n))
    return nodes, csr, position


def _positions(ids: npt.ArrayLike, position: dict[Any, int], what: str) -> npt.NDArray[np.int64]:
    arr = np.atleast_1d(np.asarray(ids)).ravel()
    out = np.empty(arr.size, dtype=np.int64)
    missing = []
    for i, node in enumerate(arr.tolist()):
        pos = position.get(node)
        if pos is None:
            missing.append(node)
            if len(missing) >= 5:
                break
        else:
            out[i] = pos
    if missing:
        msg = (
            f"{what} contain node ids that are not in the graph (e.g. {missing}); use node ids "
            "of the same graph, or snap points with planner.snapping.snap_points()"
        )
        raise InputError(msg)
    return out


def _dijkstra_block(
    csr: Any,
    sources: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
    max_chunk_bytes: int,
) -> npt.NDArray[np.float64]:
    """Return shortest times sources x targets, in chunks of sources."""
    from scipy.sparse.csgraph import dijkstra

    n = csr.shape[0]
    out = np.empty((sources.size, targets.size), dtype=np.float64)
    chunk = max(1, int(max_chunk_bytes // (8 * max(n, 1))))
    for start in range(0, sources.size, chunk):
        block = dijkstra(csr, directed=True, indices=sources[start : start + chunk])
        out[start : start + chunk] = block[:, targets]
    return out


def _settings_of(G: nx.MultiDiGraph) -> dict[str, Any]:
    report = G.graph.get("planner_report") or {}
    return {k: report.get(k) for k in ("speeds_kph", "congestion", "fallback_speed_kph")}


def _cache_path(
    nodes: npt.NDArray[np.int64],
    csr: Any,
    *,
    arrays: list[npt.NDArray[Any]],
    meta: dict[str, Any],
) -> Path:
    """Cache file named by a hash of the graph (nodes, CSR weights), the points and settings."""
    digest = hashlib.sha256()
    for arr in (nodes, csr.indptr, csr.indices, csr.data, *arrays):
        digest.update(str(arr.dtype).encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
        digest.update(b"|")
    meta = {**meta, "code": MATRIX_CODE_VERSION}
    digest.update(json.dumps(meta, sort_keys=True, default=str).encode())
    return _osm_cache.cache_dir("matrices") / f"{digest.hexdigest()[:40]}.npz"


def _read_cached(path: Path, shape: tuple[int, int]) -> npt.NDArray[np.float64] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arr = npz["travel_time_s"]
    except (OSError, ValueError, KeyError) as exc:
        logger.warning("ignoring unreadable matrix cache %s: %s", path, exc)
        return None
    return arr if arr.shape == shape else None


def _write_cached(path: Path, arr: npt.NDArray[np.float64]) -> None:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, travel_time_s=arr)
        os.replace(tmp, path)
    except OSError as exc:
        logger.warning("could not write matrix cache %s: %s", path, exc)


def travel_time_matrix(
    G: nx.MultiDiGraph,
    origins: npt.ArrayLike,
    destinations: npt.ArrayLike,
    *,
    weight: str = "travel_time",
    cache: bool = True,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> npt.NDArray[np.float64]:
    """Shortest travel times in seconds between graph nodes.

    Parameters
    ----------
    G
        Road graph whose edges carry ``weight`` (seconds by default).
    origins, destinations
        Graph node ids (repeats allowed).
    weight
        Edge attribute to minimise.
    cache
        Read/write the result from/to the disk cache under ``$PLANNER_CACHE_DIR``.
    max_chunk_bytes
        Memory bound for one chunk of Dijkstra rows (``8 * n_nodes`` bytes per source).

    Returns
    -------
    numpy.ndarray
        float64 array ``len(origins) x len(destinations)``, ``inf`` where unreachable.

    Raises
    ------
    InputError
        A node id is not in the graph.
    GraphError
        An edge lacks a valid, non-negative weight.
    """
    nodes, csr, position = _graph_arrays(G, weight)
    o_pos = _positions(origins, position, "origins")
    d_pos = _positions(destinations, position, "destinations")
    shape = (o_pos.size, d_pos.size)
    if 0 in shape:
        return np.empty(shape, dtype=np.float64)
    path = None
    if cache:
        path = _cache_path(
            nodes,
            csr,
            arrays=[nodes[o_pos], nodes[d_pos]],
            meta={"kind": "nodes", "weight": weight, "settings": _settings_of(G)},
        )
        hit = _read_cached(path, shape)
        if hit is not None:
            logger.debug("travel-time matrix %s from cache", shape)
            return hit
    uo, inv_o = np.unique(o_pos, return_inverse=True)
    ud, inv_d = np.unique(d_pos, return_inverse=True)
    if uo.size <= ud.size:
        block = _dijkstra_block(csr, uo, ud, max_chunk_bytes)
    else:
        block = _dijkstra_block(csr.T.tocsr(), ud, uo, max_chunk_bytes).T
    result = np.ascontiguousarray(block[np.ix_(inv_o.ravel(), inv_d.ravel())])
    if path is not None:
        _write_cached(path, result)
    return result


def _combine(
    dist: npt.NDArray[np.float64],
    row_entries: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
    col_entries: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]],
    *,
    transposed: bool,
) -> npt.NDArray[np.float64]:
    """min over entry pairs of row_time + dist + col_time.

    ``row_entries``/``col_entries`` hold (index, time) pairs; the index addresses the rows of
    ``dist`` (Dijkstra sources) on the side that was searched and its columns (graph node
    positions) on the other side. With ``transposed`` the sources are the columns of the result.
    """
    n = row_entries[0][0].size
    m = col_entries[0][0].size
    out = np.full((n, m), np.inf)
    for r_idx, r_time in row_entries:
        for c_idx, c_time in col_entries:
            cand = dist[np.ix_(c_idx, r_idx)].T if transposed else dist[np.ix_(r_idx, c_idx)]
            cand += r_time[:, None]
            cand += c_time[None, :]
            np.minimum(out, cand, out=out)
    return out


def _sources(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], b_time: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Unique Dijkstra sources of two entry sets (b only where reachable) and their rows."""
    src = np.unique(np.concatenate([a, b[np.isfinite(b_time)]]))
    ra = np.searchsorted(src, a)
    rb = np.minimum(np.searchsorted(src, b), src.size - 1)  # unreachable entries: time is inf
    return src, ra, rb


def snapped_travel_time_matrix(
    G: nx.MultiDiGraph,
    origins: SnappedPoints,
    destinations: SnappedPoints,
    *,
    include_too_far: bool = False,
    cache: bool = True,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
) -> npt.NDArray[np.float64]:
    """Travel times in seconds from snapped origin points to snapped destination points.

    A trip is: access time from the origin to its road position, along the edge to one of its
    ends, the shortest path to an end of the destination's edge, along that edge to the
    destination's position, and the destination's access time. Two points on the same street
    also get the direct trip along it when the direction allows.

    Dijkstra runs from the entry nodes of the side with fewer distinct entry nodes (on the
    reversed graph for destinations), in chunks of points so that each chunk's dense
    distances stay under ``max_chunk_bytes``; only the result is ``n x m``.

    Parameters
    ----------
    G
        The graph both point sets were snapped to.
    origins, destinations
        From :func:`planner.snapping.snap_points` (customers are origins, sites destinations).
    include_too_far
        If False (default), rows and columns of points flagged ``too_far`` are ``inf``.
    cache
        Read/write the result from/to the disk cache, keyed by graph, points and settings.
    max_chunk_bytes
        Memory bound for one chunk of Dijkstra distances and of the combination step.

    Returns
    -------
    numpy.ndarray
        float64 array ``len(origins) x len(destinations)``, ``inf`` where unreachable.

    Raises
    ------
    InputError
        The points were snapped to a different graph.
    """
    from scipy.sparse.csgraph import dijkstra

    from planner.network import graph_fingerprint

    fingerprint = graph_fingerprint(G)
    for name, pts in (("origins", origins), ("destinations", destinations)):
        if pts.graph_fingerprint != fingerprint:
            msg = (
                f"{name} were snapped to a different road graph; snap them again with "
                "snap_points(G, ...) using this graph"
            )
            raise InputError(msg)
    n, m = len(origins), len(destinations)
    if n == 0 or m == 0:
        return np.empty((n, m), dtype=np.float64)
    nodes, csr, position = _graph_arrays(G, "travel_time")
    path = None
    if cache:
        arrays = [
            getattr(pts, f.name)
            for pts in (origins, destinations)
            for f in fields(pts)
            if isinstance(getattr(pts, f.name), np.ndarray)
        ]
        meta = {
            "kind": "snapped",
            "include_too_far": include_too_far,
            "access_speed_kph": [origins.access_speed_kph, destinations.access_speed_kph],
            "settings": _settings_of(G),
        }
        path = _cache_path(nodes, csr, arrays=arrays, meta=meta)
        hit = _read_cached(path, (n, m))
        if hit is not None:
            logger.debug("snapped travel-time matrix %s from cache", (n, m))
            return hit

    o_fwd = _positions(origins.node_forward, position, "origins")
    o_bwd = _positions(origins.node_backward, position, "origins")
    d_u = _positions(destinations.edge_u, position, "destinations")
    d_v = _positions(destinations.edge_v, position, "destinations")
    o_t_fwd, o_t_bwd = origins.time_to_forward_s, origins.time_to_backward_s
    d_t_u, d_t_v = destinations.time_from_u_s, destinations.time_from_v_s
    n_nodes = nodes.size
    n_o_src = np.unique(np.concatenate([o_fwd, o_bwd[np.isfinite(o_t_bwd)]])).size
    n_d_src = np.unique(np.concatenate([d_u, d_v[np.isfinite(d_t_v)]])).size
    result = np.empty((n, m), dtype=np.float64)
    if n_o_src <= n_d_src:
        # Dijkstra from origin entry nodes, chunks of origin rows
        step = max(1, min(max_chunk_bytes // (16 * n_nodes), max_chunk_bytes // (8 * m)))
        for a in range(0, n, step):
            b = min(n, a + step)
            src, ra, rb = _sources(o_fwd[a:b], o_bwd[a:b], o_t_bwd[a:b])
            dist = dijkstra(csr, directed=True, indices=src)
            result[a:b] = _combine(
                dist,
                [(ra, o_t_fwd[a:b]), (rb, o_t_bwd[a:b])],
                [(d_u, d_t_u), (d_v, d_t_v)],
                transposed=False,
            )
    else:
        # Dijkstra from destination entry nodes on the reversed graph, chunks of columns
        csr_t = csr.T.tocsr()
        step = max(1, min(max_chunk_bytes // (16 * n_nodes), max_chunk_bytes // (8 * n)))
        for a in range(0, m, step):
            b = min(m, a + step)
            src, ru, rv = _sources(d_u[a:b], d_v[a:b], d_t_v[a:b])
            dist = dijkstra(csr_t, directed=True, indices=src)  # dist[k, x]: x -> src[k]
            result[:, a:b] = _combine(
                dist,
                [(o_fwd, o_t_fwd), (o_bwd, o_t_bwd)],
                [(ru, d_t_u[a:b]), (rv, d_t_v[a:b])],
                transposed=True,
            )

    # two points on the same street: the direct trip along it
    d_by_edge: dict[int, list[int]] = {}
    for j, e in enumerate(destinations.edge_index.tolist()):
        d_by_edge.setdefault(e, []).append(j)
    for i, e in enumerate(origins.edge_index.tolist()):
        js = d_by_edge.get(e)
        if not js:
            continue
        jj = np.asarray(js)
        fo = origins.fraction[i]
        fd = destinations.fraction[jj]
        # full edge u -> v: (1 - f) * tt_f + f * tt_f
        tt_f = origins.time_to_forward_s[i] + origins.time_from_u_s[i]
        direct = np.where(fd >= fo, (fd - fo) * tt_f, np.inf)
        if origins.has_reverse[i]:
            # full reverse edge v -> u: f * tt_r + (1 - f) * tt_r
            tt_r = origins.time_to_backward_s[i] + origins.time_from_v_s[i]
            direct = np.minimum(direct, np.where(fd <= fo, (fo - fd) * tt_r, np.inf))
        result[i, jj] = np.minimum(result[i, jj], direct)

    result += origins.access_time_s[:, None]
    result += destinations.access_time_s[None, :]
    if not include_too_far:
        result[origins.too_far, :] = np.inf
        result[:, destinations.too_far] = np.inf
    if path is not None:
        _write_cached(path, result)
    return result
