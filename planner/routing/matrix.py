"""Travel-time matrices between graph nodes and between snapped points, with a disk cache.

Two kernels (``method``): ``"dijkstra"`` runs :func:`scipy.sparse.csgraph.dijkstra`
(compiled) from the smaller side: from the origins on the graph, or from the destinations on the
transposed graph (every edge reversed) when there are fewer destinations, so one-way streets
are respected. The sources are processed in chunks so that the dense intermediate block stays under
``max_chunk_bytes``. Parallel edges keep their minimum travel time. Unreachable pairs are
``inf`` -- never a finite number. ``"cch"`` answers the same question with a customizable
contraction hierarchy (:mod:`planner.routing._cch`, RoutingKit): the graph is preprocessed once
(node order cached on disk, the hierarchy in memory), the nodes of the larger side are pinned and
one elimination-tree sweep per point of the smaller side gives a whole column; travel times are
then exact to 1 ms per edge of the path (integer weights). ``"auto"`` (default) picks the CCH on
graphs of :data:`CCH_MIN_NODES` nodes or more, where it is many times faster than Dijkstra, and
Dijkstra below, where the preprocessing does not pay. CCH chunks run on threads (the binding
releases the GIL) or on the Dask backend.

Matrices are cached on disk (``.npz``, no pickle) under ``$PLANNER_CACHE_DIR/matrices``, keyed by
a hash of the graph's nodes, edges and weights, the node ids asked for, and the graph's speed
settings. Each file also holds a header (:mod:`planner.roads._cache`) with that key, the code
version, the shape and a SHA-256 of the matrix; a file that is truncated, zero-filled, swapped
with another entry or otherwise fails to check is recomputed with one warning line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import weakref
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.errors import GraphError, InputError
from planner.roads import _cache
from planner.roads.arrays import ArrayGraph, sorted_unique
from planner.roads.network import RoadGraph, graph_fingerprint
from planner.roads.snapping import SnappedPoints
from planner.routing import _cch
from planner.routing.parallel import Backend, Progress, cpu_threads, run_chunks
from planner.settings import MATRIX_DTYPES, cache_dir

logger = logging.getLogger(__name__)

#: Upper bound (bytes) of the dense block one Dijkstra chunk produces.
DEFAULT_MAX_CHUNK_BYTES = 64 * 1024 * 1024

MATRIX_CODE_VERSION = "matrix-2"

#: Matrix kernels (``method=``).
MATRIX_METHODS = ("auto", "dijkstra", "cch")

#: ``method="auto"`` uses the CCH kernel from this many graph nodes on (measured in
#: ``benchmarks/bench_matrix.py --cch``: below it Dijkstra wins or the gap is small).
CCH_MIN_NODES = 25_000


def resolve_method(method: str, n_nodes: int) -> str:
    """The kernel ``method`` stands for on a graph of ``n_nodes`` nodes.

    Parameters
    ----------
    method
        One of :data:`MATRIX_METHODS`.
    n_nodes
        Graph size.

    Returns
    -------
    str
        ``"dijkstra"`` or ``"cch"``.
    """
    if method not in MATRIX_METHODS:
        raise InputError(f"method must be one of {list(MATRIX_METHODS)}, got {method!r}")
    if method == "auto":
        return "cch" if n_nodes >= CCH_MIN_NODES else "dijkstra"
    return method


def _node_coords(G: RoadGraph, nodes: npt.NDArray[np.int64]) -> tuple[Any, Any]:
    """Longitudes and latitudes of ``nodes`` (graph order), for the CCH node order."""
    if isinstance(G, ArrayGraph):
        return G.x, G.y
    data = G.nodes
    lon = np.fromiter((data[v]["x"] for v in nodes.tolist()), dtype=np.float64, count=nodes.size)
    lat = np.fromiter((data[v]["y"] for v in nodes.tolist()), dtype=np.float64, count=nodes.size)
    return lon, lat


def _cch_matrix(
    G: RoadGraph,
    ga: _GraphArrays,
    pin: tuple[Any, Any, Any, Any],
    sweep: tuple[Any, Any, Any, Any],
    *,
    pinned_are_origins: bool,
    max_chunk_bytes: int,
    backend: Backend | None,
    progress: Progress | None,
    dtype: str = "float64",
) -> npt.NDArray[Any]:
    """Matrix by CCH sweeps: ``pin`` side's entry nodes pinned, one sweep per ``sweep`` point.

    ``pin`` and ``sweep`` are ``(node_1, time_1, node_2, time_2)`` per point: two entry node
    positions and the time between the point and each (``inf``: no such entry). Returns
    origins x destinations.
    """
    lon, lat = _node_coords(G, ga.nodes)
    inp = _cch.cch_input(ga.csr, lon, lat, progress=progress)
    _cch.prepare(inp)
    p1, pt1, p2, pt2 = pin
    pinned, r1, r2 = _sources(p1, p2, pt2)
    n_pin = r1.size
    n_sweep = sweep[0].size
    step = max(1, min(n_sweep, max_chunk_bytes // (16 * max(n_pin, 1))))
    starts = range(0, n_sweep, step)
    chunks = [tuple(a[s : s + step] for a in sweep) for s in starts]
    # blocks go straight into the result: memory is the result plus the chunks in flight
    out = np.empty((n_pin, n_sweep) if pinned_are_origins else (n_sweep, n_pin), dtype=dtype)

    def put(i: int, block: npt.NDArray[np.float64]) -> None:
        s = starts[i]
        if pinned_are_origins:
            out[:, s : s + block.shape[1]] = block
        else:
            out[s : s + block.shape[1], :] = block.T

    run_chunks(
        _cch.sweep_chunk,
        (inp, pinned, r1, pt1, r2, pt2, not pinned_are_origins),
        chunks,
        backend=backend,
        progress=progress,
        what="travel-time matrix (CCH)",
        threads=cpu_threads(),
        sink=put,
    )
    return out


@dataclass(frozen=True)
class _GraphArrays:
    nodes: npt.NDArray[np.int64]  # node ids in graph order (position = index)
    sorter: npt.NDArray[np.int64]  # argsort of nodes
    csr: Any  # n x n, min weight over parallel edges

    def positions(self, ids: npt.ArrayLike, what: str) -> npt.NDArray[np.int64]:
        """Positions of node ids; InputError naming a few unknown ids."""
        try:
            arr = np.atleast_1d(np.asarray(ids, dtype=np.int64)).ravel()
        except (TypeError, ValueError):
            msg = f"{what} must be integer graph node ids (osmnx node ids)"
            raise InputError(msg) from None
        sorted_nodes = self.nodes[self.sorter]
        at = np.minimum(np.searchsorted(sorted_nodes, arr), max(sorted_nodes.size - 1, 0))
        found = sorted_nodes[at] == arr if sorted_nodes.size else np.zeros(arr.size, bool)
        if not found.all():
            missing = arr[~found][:5].tolist()
            msg = (
                f"{what} contain node ids that are not in the graph (e.g. {missing}); use node "
                "ids of the same graph, or snap points with planner.roads.snapping.snap_points()"
            )
            raise InputError(msg)
        return self.sorter[at]


#: The travel-time arrays of recently used graphs (networkx or array graphs), with the
#: fingerprint they were built for (a graph edited in place gets a new fingerprint and new
#: arrays).
_ARRAYS_MEMO: weakref.WeakKeyDictionary[Any, tuple[str, _GraphArrays]] = weakref.WeakKeyDictionary()
_ARRAYS_LOCK = threading.Lock()


def _travel_time_arrays(G: RoadGraph, fingerprint: str) -> _GraphArrays:
    """``_graph_arrays(G, "travel_time")``, reused while ``G`` keeps ``fingerprint`` (the CSR
    matrix of a country's array graph takes a third of a second to build)."""
    with _ARRAYS_LOCK:
        cached = _ARRAYS_MEMO.get(G)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    arrays = _graph_arrays(G, "travel_time")
    with _ARRAYS_LOCK:
        _ARRAYS_MEMO[G] = (fingerprint, arrays)
    return arrays


def _graph_arrays(G: RoadGraph, weight: str) -> _GraphArrays:
    """Node ids and the CSR adjacency matrix (min over parallel edges) of a graph."""
    from scipy import sparse

    if isinstance(G, ArrayGraph):
        try:
            csr = G.csr(weight=weight)
        except KeyError:
            raise GraphError(f"the array graph has no edge weight {weight!r}") from None
        return _GraphArrays(nodes=G.node_id, sorter=np.argsort(G.node_id, kind="stable"), csr=csr)

    try:
        nodes = np.fromiter(G.nodes, dtype=np.int64, count=G.number_of_nodes())
    except (TypeError, ValueError):
        msg = "graph node ids must be integers (OSM ids), as in graphs from load_region()"
        raise GraphError(msg) from None
    sorter = np.argsort(nodes, kind="stable")
    edges = list(G.edges(data=weight))
    m = len(edges)
    u = np.fromiter((e[0] for e in edges), dtype=np.int64, count=m)
    v = np.fromiter((e[1] for e in edges), dtype=np.int64, count=m)
    data = np.array([math.nan if e[2] is None else e[2] for e in edges], dtype=np.float64)
    if m and not (np.isfinite(data).all() and (data >= 0).all()):
        bad = int((~np.isfinite(data) | (data < 0)).sum())
        msg = (
            f"{bad} edge(s) have a missing, negative or infinite {weight!r}; load the graph with "
            "planner.roads.network.load_region()"
        )
        raise GraphError(msg)
    sorted_nodes = nodes[sorter]
    rows = sorter[np.searchsorted(sorted_nodes, u)]
    cols = sorter[np.searchsorted(sorted_nodes, v)]
    # keep the smallest weight of parallel edges; rows end up sorted, as CSR wants
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.ones(m, dtype=bool)
    if m:
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    rows, cols, data = rows[first], cols[first], data[first]
    n = nodes.size
    indptr = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    csr = sparse.csr_matrix((data, cols.astype(np.int32), indptr), shape=(n, n))
    return _GraphArrays(nodes=nodes, sorter=sorter, csr=csr)


def _unique_in_order(
    values: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """Unique values in first-occurrence order and the inverse (None when already unique)."""
    uniq, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    if uniq.size == values.size:
        return values, None
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return uniq[order], rank[inverse.ravel()]


def _dijkstra_block(
    csr: Any,
    sources: npt.NDArray[np.int64],
    targets: npt.NDArray[np.int64],
    max_chunk_bytes: int,
) -> npt.NDArray[np.float64]:
    """Return shortest times sources x targets, in chunks of sources."""
    from scipy.sparse.csgraph import dijkstra

    n = csr.shape[0]
    every_node = targets.size == n and bool((targets == np.arange(n)).all())
    chunk = max(1, int(max_chunk_bytes // (8 * max(n, 1))))
    if every_node and chunk >= sources.size:
        return dijkstra(csr, directed=True, indices=sources)
    out = np.empty((sources.size, targets.size), dtype=np.float64)
    for start in range(0, sources.size, chunk):
        block = dijkstra(csr, directed=True, indices=sources[start : start + chunk])
        out[start : start + chunk] = block if every_node else block[:, targets]
    return out


def _settings_of(G: RoadGraph) -> dict[str, Any]:
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
    return cache_dir("matrices") / f"{digest.hexdigest()[:40]}.npz"


def _built_from(path: Path, shape: tuple[int, int]) -> dict[str, Any]:
    return {
        "key": path.stem,
        "code": MATRIX_CODE_VERSION,
        "shape": list(shape),
        "dtype": "float64",
    }


def _read_cached(path: Path, shape: tuple[int, int]) -> npt.NDArray[np.float64] | None:
    """Return the cached matrix at ``path`` if it exists and checks, else ``None``.

    Anything wrong with the file (unreadable, no header, other key, shape or version, checksum
    mismatch) logs one warning line and returns ``None``, so the caller recomputes it.
    """
    if not path.is_file():
        return None
    try:
        # open the file here: np.load leaks its own handle when the zip is broken
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arr = np.asarray(npz["travel_time_s"])
            header = json.loads(str(npz["header"])) if "header" in npz.files else None
    except Exception as exc:  # BadZipFile, EOFError, ValueError...: recompute, never crash
        _cache.warn_invalid("matrix", path, f"unreadable: {type(exc).__name__}: {exc}")
        return None
    if arr.shape != shape or arr.dtype != np.float64:
        _cache.warn_invalid("matrix", path, f"shape {arr.shape} {arr.dtype}, expected {shape}")
        return None
    arr = np.ascontiguousarray(arr)
    reason = _cache.check_header(
        header,
        built_from=_built_from(path, shape),
        payload_sha256={"travel_time_s": _cache.sha256_hex(arr.data)},
    )
    if reason is not None:
        _cache.warn_invalid("matrix", path, reason)
        return None
    return arr


def _write_cached(path: Path, arr: npt.NDArray[np.float64]) -> None:
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    header = _cache.make_header(
        built_from=_built_from(path, (int(arr.shape[0]), int(arr.shape[1]))),
        payload_sha256={"travel_time_s": _cache.sha256_hex(arr.data)},
    )
    try:
        with _cache.atomic_file(path) as fh:
            np.savez(fh, travel_time_s=arr, header=np.array(json.dumps(header)))
    except OSError as exc:
        logger.warning("could not write matrix cache %s: %s", path, exc)


def travel_time_matrix(
    G: RoadGraph,
    origins: npt.ArrayLike,
    destinations: npt.ArrayLike,
    *,
    weight: str = "travel_time",
    cache: bool = True,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    method: str = "auto",
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
    method
        ``"dijkstra"``, ``"cch"`` (exact to 0.5 ms per edge of a path) or ``"auto"``
        (CCH from :data:`CCH_MIN_NODES` graph nodes on); see the module docstring.

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
    ga = _graph_arrays(G, weight)
    nodes, csr = ga.nodes, ga.csr
    o_pos = ga.positions(origins, "origins")
    d_pos = ga.positions(destinations, "destinations")
    shape = (o_pos.size, d_pos.size)
    kernel = resolve_method(method, nodes.size)
    if 0 in shape:
        return np.empty(shape, dtype=np.float64)
    path = None
    if cache:
        meta = {"kind": "nodes", "weight": weight, "settings": _settings_of(G)}
        if kernel != "dijkstra":
            meta["method"] = kernel
        path = _cache_path(nodes, csr, arrays=[nodes[o_pos], nodes[d_pos]], meta=meta)
        hit = _read_cached(path, shape)
        if hit is not None:
            logger.debug("travel-time matrix %s from cache", shape)
            return hit
    uo, inv_o = _unique_in_order(o_pos)
    ud, inv_d = _unique_in_order(d_pos)
    if kernel == "cch":
        zero_o, zero_d = np.zeros(o_pos.size), np.zeros(d_pos.size)
        no_o, no_d = np.full(o_pos.size, np.inf), np.full(d_pos.size, np.inf)
        pin_origins = ud.size <= uo.size
        result = _cch_matrix(
            G,
            ga,
            (o_pos, zero_o, o_pos, no_o) if pin_origins else (d_pos, zero_d, d_pos, no_d),
            (d_pos, zero_d, d_pos, no_d) if pin_origins else (o_pos, zero_o, o_pos, no_o),
            pinned_are_origins=pin_origins,
            max_chunk_bytes=max_chunk_bytes,
            backend=Backend(),
            progress=None,
        )
    elif uo.size <= ud.size:
        # Dijkstra from the origins; destinations may repeat (plain column indexing)
        result = _dijkstra_block(csr, uo, d_pos, max_chunk_bytes)
        if inv_o is not None:
            result = result[inv_o]
    else:
        # Dijkstra from the destinations on the reversed graph
        result = _dijkstra_block(csr.T.tocsr(), ud, o_pos, max_chunk_bytes).T
        if inv_d is not None:
            result = result[:, inv_d]
        result = np.ascontiguousarray(result)
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
    src = sorted_unique(np.concatenate([a, b[np.isfinite(b_time)]]))
    ra = np.searchsorted(src, a)
    rb = np.minimum(np.searchsorted(src, b), src.size - 1)  # unreachable entries: time is inf
    return src, ra, rb


def _origin_chunk(shared: tuple[Any, ...], chunk: tuple[Any, ...]) -> npt.NDArray[np.float64]:
    """Rows of the snapped matrix for a chunk of origins (Dijkstra from their entry nodes)."""
    from scipy.sparse.csgraph import dijkstra

    csr, d_u, d_t_u, d_v, d_t_v, dtype = shared
    o_fwd, o_bwd, o_t_fwd, o_t_bwd = chunk
    src, ra, rb = _sources(o_fwd, o_bwd, o_t_bwd)
    dist = dijkstra(csr, directed=True, indices=src)
    block = _combine(
        dist, [(ra, o_t_fwd), (rb, o_t_bwd)], [(d_u, d_t_u), (d_v, d_t_v)], transposed=False
    )
    return block.astype(dtype, copy=False)


def _destination_chunk(shared: tuple[Any, ...], chunk: tuple[Any, ...]) -> npt.NDArray[np.float64]:
    """Columns of the snapped matrix for a chunk of destinations (reversed graph)."""
    from scipy.sparse.csgraph import dijkstra

    csr_t, o_fwd, o_t_fwd, o_bwd, o_t_bwd, dtype = shared
    d_u, d_t_u, d_v, d_t_v = chunk
    src, ru, rv = _sources(d_u, d_v, d_t_v)
    dist = dijkstra(csr_t, directed=True, indices=src)  # dist[k, x]: x -> src[k]
    block = _combine(
        dist, [(o_fwd, o_t_fwd), (o_bwd, o_t_bwd)], [(ru, d_t_u), (rv, d_t_v)], transposed=True
    )
    return block.astype(dtype, copy=False)


def snapped_travel_time_matrix(
    G: RoadGraph,
    origins: SnappedPoints,
    destinations: SnappedPoints,
    *,
    include_too_far: bool = False,
    cache: bool = True,
    max_chunk_bytes: int = DEFAULT_MAX_CHUNK_BYTES,
    dtype: str = "float64",
    backend: Backend | None = None,
    progress: Progress | None = None,
    method: str = "auto",
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
        From :func:`planner.roads.snapping.snap_points` (customers are origins, sites destinations).
    include_too_far
        If False (default), rows and columns of points flagged ``too_far`` are ``inf``.
    cache
        Read/write the result from/to the disk cache, keyed by graph, points and settings.
    max_chunk_bytes
        Memory bound for one chunk of Dijkstra distances and of the combination step.
    dtype
        ``"float64"`` (default) or ``"float32"``: half the memory; float32 keeps 24 bits, and
        with the access times added in float32 a travel time of ``t`` seconds is within
        ``t * 3e-7`` of the float64 value (0.03 s at one day).
    backend
        Where the chunks run (:class:`planner.routing.parallel.Backend`): in this process by
        default, or on Dask (``$PLANNER_SCHEDULER``, ``$PLANNER_WORKERS``). Same result.
    progress
        ``progress(message, fraction)`` with an ETA while chunks complete.
    method
        ``"dijkstra"``, ``"cch"`` or ``"auto"`` (CCH from :data:`CCH_MIN_NODES` graph nodes
        on). With the CCH, edge times and the snap offsets of the swept side are rounded to
        1 ms, so a travel time is within 0.5 ms per edge of the path (plus 0.5 ms) of the
        Dijkstra value; the CCH pins the entry nodes of the side with more points and sweeps
        once per point of the other side.

    Returns
    -------
    numpy.ndarray
        ``len(origins) x len(destinations)`` of ``dtype``, ``inf`` where unreachable.

    Raises
    ------
    InputError
        The points were snapped to a different graph.
    """
    if dtype not in MATRIX_DTYPES:
        raise InputError(f"dtype must be one of {list(MATRIX_DTYPES)}, got {dtype!r}")
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
    ga = _travel_time_arrays(G, fingerprint)
    nodes, csr = ga.nodes, ga.csr
    kernel = resolve_method(method, nodes.size)
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
        if dtype != "float64":
            meta["dtype"] = dtype
        if kernel != "dijkstra":
            meta["method"] = kernel
        path = _cache_path(nodes, csr, arrays=arrays, meta=meta)
        hit = _read_cached(path, (n, m))
        if hit is not None:
            logger.debug("snapped travel-time matrix %s from cache", (n, m))
            return hit.astype(dtype, copy=False)

    o_fwd = ga.positions(origins.node_forward, "origins")
    o_bwd = ga.positions(origins.node_backward, "origins")
    d_u = ga.positions(destinations.edge_u, "destinations")
    d_v = ga.positions(destinations.edge_v, "destinations")
    o_t_fwd, o_t_bwd = origins.time_to_forward_s, origins.time_to_backward_s
    d_t_u, d_t_v = destinations.time_from_u_s, destinations.time_from_v_s
    n_nodes = nodes.size
    n_o_src = sorted_unique(np.concatenate([o_fwd, o_bwd[np.isfinite(o_t_bwd)]])).size
    n_d_src = sorted_unique(np.concatenate([d_u, d_v[np.isfinite(d_t_v)]])).size
    if kernel == "cch":
        origin_entries = (o_fwd, o_t_fwd, o_bwd, o_t_bwd)
        dest_entries = (d_u, d_t_u, d_v, d_t_v)
        pin_origins = m <= n
        result = _cch_matrix(
            G,
            ga,
            origin_entries if pin_origins else dest_entries,
            dest_entries if pin_origins else origin_entries,
            pinned_are_origins=pin_origins,
            max_chunk_bytes=max_chunk_bytes,
            backend=backend,
            progress=progress,
            dtype=dtype,
        )
    elif n_o_src <= n_d_src:
        # Dijkstra from origin entry nodes, chunks of origin rows
        step = max(1, min(max_chunk_bytes // (16 * n_nodes), max_chunk_bytes // (8 * m)))
        o_chunks = [
            (o_fwd[a : a + step], o_bwd[a : a + step], o_t_fwd[a : a + step], o_t_bwd[a : a + step])
            for a in range(0, n, step)
        ]
        result = np.empty((n, m), dtype=dtype)

        def put_rows(i: int, block: npt.NDArray[Any]) -> None:
            result[i * step : i * step + block.shape[0]] = block

        run_chunks(
            _origin_chunk,
            (csr, d_u, d_t_u, d_v, d_t_v, dtype),
            o_chunks,
            backend=backend,
            progress=progress,
            what="travel-time matrix",
            sink=put_rows,
        )
    else:
        # Dijkstra from destination entry nodes on the reversed graph, chunks of columns
        csr_t = csr.T.tocsr()
        step = max(1, min(max_chunk_bytes // (16 * n_nodes), max_chunk_bytes // (8 * n)))
        d_chunks = [
            (d_u[a : a + step], d_t_u[a : a + step], d_v[a : a + step], d_t_v[a : a + step])
            for a in range(0, m, step)
        ]
        result = np.empty((n, m), dtype=dtype)

        def put_columns(i: int, block: npt.NDArray[Any]) -> None:
            result[:, i * step : i * step + block.shape[1]] = block

        run_chunks(
            _destination_chunk,
            (csr_t, o_fwd, o_t_fwd, o_bwd, o_t_bwd, dtype),
            d_chunks,
            backend=backend,
            progress=progress,
            what="travel-time matrix",
            sink=put_columns,
        )
    result = np.ascontiguousarray(result)

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
