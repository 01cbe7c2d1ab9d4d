"""The road layer every map draws: main roads, joined into long lines, within a vertex budget.

A map of a country-sized area cannot carry every main-road segment: the trimmed 23,000 km2 of
``benchmarks/bench_regions_app.py`` has 126,000 of them (250,000 vertices, 6 MB of GeoJSON),
and each map took seconds to build, send and draw. :func:`map_roads` gives the layer once per
graph:

1. the main roads (:data:`planner.roads.classes.MAIN_ROAD_CLASSES`), one line per street
   (the two directions of a two-way street are one line);
2. joined, class by class, into long lines: at every node the line ends that meet there are
   paired, so a class of roads becomes as few polylines as its junctions allow (about half
   its odd-degree nodes) instead of one per segment;
3. simplified with the smallest tolerance of :data:`TOLERANCES_M` that keeps the layer within
   ``max_vertices``; lines shorter than the tolerance are left out. When even the coarsest
   tolerance is over the budget, the least important classes are left out (links first, then
   tertiary, secondary...: :data:`DROP_ORDER`), the map says nothing about them.

The layer is computed once per graph: kept in memory for the graph object (the app's server
shares it between sessions) and on disk under ``$PLANNER_CACHE_DIR/map-roads``, keyed by the
graph's fingerprint, so a restarted server or a second ``planner run`` reads it back in
milliseconds. The app, ``planner run`` and the exports draw the same layer.
"""

from __future__ import annotations

import json
import logging
import threading
import weakref
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from planner.outputs import maps
from planner.roads import _cache
from planner.roads.arrays import ArrayGraph
from planner.roads.classes import MAIN_ROAD_CLASSES
from planner.roads.network import RoadGraph, graph_fingerprint
from planner.settings import cache_dir

__all__ = ["DEFAULT_MAX_VERTICES", "DROP_ORDER", "TOLERANCES_M", "map_roads"]

logger = logging.getLogger(__name__)

#: Most vertices of the road layer (about 20 bytes of GeoJSON each): a map stays light to
#: build, send and draw whatever the size of the area.
DEFAULT_MAX_VERTICES = 40_000
#: Simplification tolerances tried, finest first (metres, applied in degrees of latitude).
TOLERANCES_M: tuple[float, ...] = (10.0, 20.0, 40.0, 80.0, 160.0)
#: Classes left out, in this order, when the coarsest tolerance is still over the budget.
DROP_ORDER: tuple[str, ...] = (
    "tertiary_link",
    "secondary_link",
    "primary_link",
    "trunk_link",
    "motorway_link",
    "tertiary",
    "secondary",
    "primary",
    "trunk",
)
#: Version of the layer's recipe: part of the disk cache key.
LAYER_VERSION = "road-layer-1"

_METRES_PER_DEGREE = 111_320.0
_DECIMALS = 5  # about a metre, as the map's points

_MEMO: weakref.WeakKeyDictionary[Any, dict[int, gpd.GeoDataFrame]] = weakref.WeakKeyDictionary()
_MEMO_LOCK = threading.Lock()


def map_roads(
    G: RoadGraph, *, max_vertices: int = DEFAULT_MAX_VERTICES, cache: bool = True
) -> gpd.GeoDataFrame:
    """The main roads of ``G`` as the light layer of a map, within ``max_vertices``.

    Parameters
    ----------
    G
        A road graph from :func:`planner.roads.network.load_region` (osmnx graph, any CRS,
        or :class:`~planner.roads.arrays.ArrayGraph`). It must not be edited afterwards: the
        layer is kept for the graph object.
    max_vertices
        Most vertices of the layer (see the module docstring for how it is kept).
    cache
        Read and write the layer under ``$PLANNER_CACHE_DIR/map-roads`` (by the graph's
        fingerprint).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per joined line: ``highway`` (its class) and ``geometry`` (a LineString in
        EPSG:4326, coordinates rounded to about a metre). ``attrs`` holds ``tolerance_m``,
        ``vertices``, ``segments`` (main-road streets drawn before joining) and
        ``classes_left_out``. Shared: do not modify it.
    """
    if max_vertices < 2:
        raise ValueError(f"max_vertices must be at least 2, got {max_vertices!r}")
    with _MEMO_LOCK:
        known = _MEMO.get(G, {}).get(max_vertices)
    if known is not None:
        return known
    path = None
    if cache and G.number_of_edges() > 0:
        key = f"{graph_fingerprint(G)}-{max_vertices}-{LAYER_VERSION}"
        path = cache_dir("map-roads") / f"{key}.npz"
    layer = _read(path) if path is not None else None
    if layer is None:
        coords, offsets, rank = _main_road_lines(G)
        layer = _layer(coords, offsets, rank, max_vertices)
        if path is not None:
            _write(layer, path)
    with _MEMO_LOCK:
        _MEMO.setdefault(G, {})[max_vertices] = layer
    return layer


# -- main roads as lines ------------------------------------------------------------------------


def _main_road_lines(
    G: RoadGraph,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Every main-road street once: ``(coords, offsets, rank)``, line ``i`` being
    ``coords[offsets[i]:offsets[i + 1]]`` (lon, lat) of class ``MAIN_ROAD_CLASSES[rank[i]]``."""
    if isinstance(G, ArrayGraph):
        return _array_lines(G)
    roads = maps.main_roads(G, tolerance_m=0.0)
    parts, of_row = shapely.get_parts(roads.geometry.values, return_index=True)
    order = {c: i for i, c in enumerate(MAIN_ROAD_CLASSES)}
    rank = roads["highway"].map(order).to_numpy(np.int64)[of_row]
    keep = shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING
    coords, index = shapely.get_coordinates(parts[keep], return_index=True)
    offsets = np.searchsorted(index, np.arange(int(keep.sum()) + 1)).astype(np.int64)
    return coords, offsets, rank[keep]


def _array_lines(
    G: ArrayGraph,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    order = {c: i for i, c in enumerate(MAIN_ROAD_CLASSES)}
    code_rank = np.array([order.get(n, -1) for n in G.highway_names] or [-1], dtype=np.int64)
    edge_rank = code_rank[G.highway_code.astype(np.int64)]
    sel = np.flatnonzero(edge_rank >= 0)
    u = G.edge_u[sel].astype(np.int64)
    v = G.edge_v[sel].astype(np.int64)
    length_mm = np.round(G.length_m[sel] * 1000.0).astype(np.int64)
    # the two directions of a street: the same end nodes, length and class
    lo, hi, rk = np.minimum(u, v), np.maximum(u, v), edge_rank[sel]
    by = np.lexsort((np.arange(sel.size), rk, length_mm, hi, lo))
    new = np.ones(sel.size, dtype=bool)
    new[1:] = (
        (lo[by][1:] != lo[by][:-1])
        | (hi[by][1:] != hi[by][:-1])
        | (length_mm[by][1:] != length_mm[by][:-1])
        | (rk[by][1:] != rk[by][:-1])
    )
    sel = sel[np.sort(by[new])]
    counts = np.diff(G.geom_offsets)[sel]
    starts = G.geom_offsets[sel]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    flat = np.repeat(starts - offsets[:-1], counts) + np.arange(int(offsets[-1]))
    nodes = G.geom_nodes[flat]
    coords = np.column_stack([G.geom_x[nodes], G.geom_y[nodes]])
    return coords, offsets, edge_rank[sel]


# -- joining into long lines --------------------------------------------------------------------


def _end_nodes(coords: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64]) -> npt.NDArray:
    """Node number of each line end: ends ``0..n-1`` are the first points, ``n..2n-1`` the
    last; ends at the same place (to 1e-7 degrees) share a number."""
    ends = np.concatenate([coords[offsets[:-1]], coords[offsets[1:] - 1]])
    q = np.round(ends * 1e7).astype(np.int64)
    order = np.lexsort((q[:, 1], q[:, 0]))
    new = np.ones(len(q), dtype=bool)
    new[1:] = (q[order][1:] != q[order][:-1]).any(axis=1)
    node = np.empty(len(q), dtype=np.int64)
    node[order] = np.cumsum(new) - 1
    return node


def _trails(node: npt.NDArray[np.int64], n: int) -> list[list[int]]:
    """Lines joined into trails: each trail a list of signed steps (``line + 1`` forwards,
    ``-(line + 1)`` backwards). At each node the ends meeting there are paired two by two,
    so every trail is as long as the network allows (it ends only at a node of odd degree,
    or closes on itself)."""
    order = np.argsort(node, kind="stable")
    sn = node[order]
    starts = np.flatnonzero(np.concatenate([[True], sn[1:] != sn[:-1]]))
    pos = np.arange(2 * n) - np.repeat(starts, np.diff(np.concatenate([starts, [2 * n]])))
    mate = np.full(2 * n, -1, dtype=np.int64)
    a = np.flatnonzero(pos % 2 == 0)
    a = a[a + 1 < 2 * n]
    a = a[sn[a] == sn[a + 1]]
    mate[order[a]] = order[a + 1]
    mate[order[a + 1]] = order[a]
    mates = mate.tolist()
    seen = [False] * n
    trails: list[list[int]] = []

    def walk(end: int) -> list[int]:
        steps: list[int] = []
        while end >= 0:
            line = end % n
            if seen[line]:
                break
            seen[line] = True
            backwards = end >= n  # entered at its last point
            steps.append(-(line + 1) if backwards else line + 1)
            end = mates[line if backwards else line + n]
        return steps

    for end in np.flatnonzero(mate < 0).tolist():
        if not seen[end % n]:
            trails.append(walk(end))
    for line in range(n):  # closed loops: every end paired
        if not seen[line]:
            trails.append(walk(line))
    return trails


def _joined(
    coords: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64]
) -> npt.NDArray[np.object_]:
    """The lines ``coords``/``offsets`` joined into trails, as shapely LineStrings."""
    n = offsets.size - 1
    if n == 0:
        return np.empty(0, dtype=object)
    trails = _trails(_end_nodes(coords, offsets), n)
    steps = np.fromiter((s for t in trails for s in t), dtype=np.int64)
    trail = np.repeat(np.arange(len(trails)), [len(t) for t in trails])
    first = np.ones(steps.size, dtype=bool)
    first[1:] = trail[1:] != trail[:-1]
    line = np.abs(steps) - 1
    backwards = steps < 0
    skip = (~first).astype(np.int64)  # a joined line's first point is the previous one's last
    size = offsets[line + 1] - offsets[line] - skip
    k = np.arange(int(size.sum())) - np.repeat(np.cumsum(size) - size, size)
    start = np.where(backwards, offsets[line + 1] - 1 - skip, offsets[line] + skip)
    idx = np.repeat(start, size) + np.where(np.repeat(backwards, size), -k, k)
    return shapely.linestrings(coords[idx], indices=np.repeat(trail, size))


def _layer(
    coords: npt.NDArray[np.float64],
    offsets: npt.NDArray[np.int64],
    rank: npt.NDArray[np.int64],
    max_vertices: int,
) -> gpd.GeoDataFrame:
    """Join each class, then pick the finest tolerance (and the most classes) within budget."""
    joined: dict[int, npt.NDArray[np.object_]] = {}
    for c in np.unique(rank).tolist():
        lines = np.flatnonzero(rank == c)
        sub_offsets = np.concatenate([[0], np.cumsum(offsets[lines + 1] - offsets[lines])])
        pick = np.repeat(offsets[lines] - sub_offsets[:-1], np.diff(sub_offsets))
        sub_coords = coords[pick + np.arange(int(sub_offsets[-1]))]
        joined[c] = _joined(sub_coords, sub_offsets.astype(np.int64))
    simplified: dict[tuple[int, float], npt.NDArray[np.object_]] = {}

    def lines_at(c: int, tol_m: float) -> npt.NDArray[np.object_]:
        if (c, tol_m) not in simplified:
            tol = tol_m / _METRES_PER_DEGREE
            lines = shapely.simplify(joined[c], tol, preserve_topology=False)
            simplified[c, tol_m] = lines[shapely.length(lines) >= tol]
        return simplified[c, tol_m]

    dropped: list[str] = []
    kept = sorted(joined)
    tol_m = TOLERANCES_M[0]
    for level in range(len(DROP_ORDER) + 1):
        dropped = [c for c in DROP_ORDER[:level] if c in MAIN_ROAD_CLASSES]
        kept = [c for c in sorted(joined) if MAIN_ROAD_CLASSES[c] not in dropped]
        for tol_m in TOLERANCES_M:
            total = sum(int(shapely.get_num_coordinates(lines_at(c, tol_m)).sum()) for c in kept)
            if total <= max_vertices:
                break
        else:
            continue
        break
    classes = [c for c in kept for _ in range(len(lines_at(c, tol_m)))]
    lines = (
        np.concatenate([lines_at(c, tol_m) for c in kept]) if kept else np.empty(0, dtype=object)
    )
    rounded, index = shapely.get_coordinates(lines, return_index=True)
    if len(lines):
        lines = shapely.linestrings(np.round(rounded, _DECIMALS), indices=index)
    present = {MAIN_ROAD_CLASSES[c] for c in joined}
    return _frame(
        lines,
        [MAIN_ROAD_CLASSES[c] for c in classes],
        {
            "tolerance_m": tol_m,
            "vertices": len(rounded),
            "segments": int(offsets.size - 1),
            "classes_left_out": [c for c in dropped if c in present],
        },
    )


def _frame(lines: Any, highway: list[str], attrs: dict[str, Any]) -> gpd.GeoDataFrame:
    frame = gpd.GeoDataFrame(
        {"highway": pd.Series(highway, dtype=object)},
        geometry=gpd.GeoSeries(np.asarray(lines, dtype=object), crs="EPSG:4326"),
        crs="EPSG:4326",
    )
    frame.attrs.update(attrs)
    logger.info(
        "road layer: %d lines, %d vertices from %d main-road streets (tolerance %g m%s)",
        len(frame),
        attrs["vertices"],
        attrs["segments"],
        attrs["tolerance_m"],
        f", left out: {', '.join(attrs['classes_left_out'])}" if attrs["classes_left_out"] else "",
    )
    return frame


# -- disk cache -----------------------------------------------------------------------------------


def _write(layer: gpd.GeoDataFrame, path: Path) -> None:
    coords, index = shapely.get_coordinates(layer.geometry.values, return_index=True)
    offsets = np.searchsorted(index, np.arange(len(layer) + 1)).astype(np.int64)
    names = list(MAIN_ROAD_CLASSES)
    meta = {"attrs": dict(layer.attrs), "classes": names, "version": LAYER_VERSION}
    arrays = {
        "coords": coords,
        "offsets": offsets,
        "highway": np.array([names.index(h) for h in layer["highway"]], dtype=np.int16),
        "meta_json": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }
    _cache.write_npz(path, arrays, "road layer")


def _read(path: Path) -> gpd.GeoDataFrame | None:
    npz = _cache.read_npz(path, "road layer")
    if npz is None:
        return None
    try:
        coords, offsets, codes = npz["coords"], npz["offsets"], npz["highway"]
        meta = json.loads(npz["meta_json"].tobytes().decode())
        names = meta["classes"]
        counts = np.diff(offsets)
        lines = shapely.linestrings(coords, indices=np.repeat(np.arange(counts.size), counts))
        return _frame(lines, [names[c] for c in codes.tolist()], meta["attrs"])
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        _cache.warn_invalid("road layer", path, f"{type(exc).__name__}: {exc}")
        return None
