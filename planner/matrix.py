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
    o_ids: npt.NDArray[np.int64],
    d_ids: npt.NDArray[np.int64],
    weight: str,
    settings: dict[str, Any],
) -> Path:
    digest = hashlib.sha256()
    for arr in (nodes, csr.indptr, csr.indices, csr.data, o_ids, d_ids):
        digest.update(np.ascontiguousarray(arr).tobytes())
        digest.update(b"|")
    meta = {"weight": weight, "settings": settings, "code": MATRIX_CODE_VERSION}
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
            o_ids=nodes[o_pos],
            d_ids=nodes[d_pos],
            weight=weight,
            settings=_settings_of(G),
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

    Parameters
    ----------
    G
        The graph both point sets were snapped to.
    origins, destinations
        From :func:`planner.snapping.snap_points` (customers are origins, sites destinations).
    include_too_far
        If False (default), rows and columns of points flagged ``too_far`` are ``inf``.
    cache
        Use the disk cache for the node-to-node matrix.
    max_chunk_bytes
        Memory bound for the Dijkstra chunks and the combination step.

    Returns
    -------
    numpy.ndarray
        float64 array ``len(origins) x len(destinations)``, ``inf`` where unreachable.

    Raises
    ------
    InputError
        The points were snapped to a different graph.
    """
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

    o_nodes = np.unique(np.concatenate([origins.node_forward, origins.node_backward]))
    d_nodes = np.unique(np.concatenate([destinations.edge_u, destinations.edge_v]))
    D = travel_time_matrix(
        G, o_nodes, d_nodes, cache=cache, max_chunk_bytes=max_chunk_bytes
    )  # unique origin entry nodes x unique destination entry nodes
    o_entries = (
        (np.searchsorted(o_nodes, origins.node_forward), origins.time_to_forward_s),
        (np.searchsorted(o_nodes, origins.node_backward), origins.time_to_backward_s),
    )
    d_entries = (
        (np.searchsorted(d_nodes, destinations.edge_u), destinations.time_from_u_s),
        (np.searchsorted(d_nodes, destinations.edge_v), destinations.time_from_v_s),
    )
    result = np.full((n, m), np.inf, dtype=np.float64)
    rows_per_chunk = max(1, int(max_chunk_bytes // (8 * m)))
    for start in range(0, n, rows_per_chunk):
        stop = min(n, start + rows_per_chunk)
        out = result[start:stop]
        for o_idx, o_time in o_entries:
            for d_idx, d_time in d_entries:
                cand = D[np.ix_(o_idx[start:stop], d_idx)]
                cand += o_time[start:stop, None]
                cand += d_time[None, :]
                np.minimum(out, cand, out=out)

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
        np.minimum(result[i, jj], direct, out=direct)
        result[i, jj] = direct

    result += origins.access_time_s[:, None]
    result += destinations.access_time_s[None, :]
    if not include_too_far:
        result[origins.too_far, :] = np.inf
        result[:, destinations.too_far] = np.inf
    return result
