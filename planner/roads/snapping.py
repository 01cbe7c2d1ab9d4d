"""Points -> network positions, with the snap distance reported.

Each point is projected to the graph's UTM zone and snapped to the nearest *edge* (not only the
nearest node) with a shapely ``STRtree`` over the edge geometries. The point's position on the
road is the edge ``u -> v`` plus the fraction of the edge's length from ``u``. The trip from the
point to the road takes ``snap_distance_m / access_speed_kph`` (default
:data:`DEFAULT_ACCESS_SPEED_KPH` = 20 km/h: driving slowly out of a yard, car park or private
lane, which is how customers and workshops off the mapped network reach it).

Points farther than ``max_snap_m`` (default 1 km) from every road are *flagged* in ``too_far``,
not silently moved; :func:`planner.routing.matrix.snapped_travel_time_matrix` gives them ``inf``.
Coordinates that are invalid, that all fall outside the road network's area, or that fall inside
it only once latitude and longitude are swapped raise :class:`~planner.errors.InputError`.

A two-way street is one position: osmnx stores it as two directed edges ``u -> v`` and
``v -> u`` with the same geometry, and the point snaps to one of them (the *canonical* edge)
while the other one is its *reverse*. From a point at fraction ``f`` of ``u -> v``:

* ``v`` is reached after ``(1 - f) * travel_time(u, v)``;
* ``u`` is reached after ``f * travel_time(v, u)`` if the reverse edge exists (else never);

and the point is reached from ``u`` after ``f * travel_time(u, v)`` and from ``v`` after
``(1 - f) * travel_time(v, u)`` (if the reverse edge exists).
"""

from __future__ import annotations

import json
import logging
import math
import weakref
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.errors import GraphError, InputError
from planner.roads import _cache
from planner.roads.arrays import ArrayGraph
from planner.roads.network import RoadGraph, graph_fingerprint, graph_utm_epsg
from planner.settings import cache_dir

logger = logging.getLogger(__name__)

#: Speed (km/h) of the trip between a point and the road it snaps to.
DEFAULT_ACCESS_SPEED_KPH = 20.0

#: Default snap threshold in metres: farther points are flagged ``too_far``.
DEFAULT_MAX_SNAP_M = 1000.0

_METRES_PER_DEGREE = 111_320.0


@dataclass(frozen=True)
class SnappedPoints:
    """Points snapped to a road graph: one entry per input point in every array.

    Attributes
    ----------
    lon, lat
        Input coordinates (degrees).
    snapped_lon, snapped_lat
        The position on the road the point snapped to (degrees).
    snap_distance_m
        Straight-line distance from the point to that position (metres, in UTM).
    access_time_s
        ``snap_distance_m / access_speed_kph`` in seconds.
    too_far
        True where ``snap_distance_m > max_snap_m``: the point is flagged, not served.
    outside_region
        True where the point lies outside the road network's bounding box widened by
        ``max(max_snap_m, 1000)`` metres.
    edge_u, edge_v, edge_key
        The directed graph edge the point lies on (the canonical edge of a two-way street).
    edge_index
        Index of that edge position in the graph's snapping index (same street, same index).
    fraction
        Position along ``edge_u -> edge_v`` as a fraction of its length from ``edge_u``.
    has_reverse
        True where the edge has a reverse twin ``edge_v -> edge_u`` (two-way street).
    node_forward, time_to_forward_s
        Entry node ``edge_v`` and the time to drive there from the snapped position.
    node_backward, time_to_backward_s
        Entry node ``edge_u`` and the time to drive there (``inf`` on a one-way street).
    time_from_u_s, time_from_v_s
        Time to reach the snapped position from ``edge_u`` and from ``edge_v`` (``inf`` when
        the one-way street cannot be entered from ``edge_v``).
    position_key
        Integer equal for points of one :func:`snap_points` call that snap to the same network
        position (same street and offset to the centimetre, or the same node). Their access
        times can still differ.
    max_snap_m, access_speed_kph
        Settings used.
    graph_fingerprint
        Hash of the graph the points were snapped to.
    """

    lon: npt.NDArray[np.float64]
    lat: npt.NDArray[np.float64]
    snapped_lon: npt.NDArray[np.float64]
    snapped_lat: npt.NDArray[np.float64]
    snap_distance_m: npt.NDArray[np.float64]
    access_time_s: npt.NDArray[np.float64]
    too_far: npt.NDArray[np.bool_]
    outside_region: npt.NDArray[np.bool_]
    edge_u: npt.NDArray[np.int64]
    edge_v: npt.NDArray[np.int64]
    edge_key: npt.NDArray[np.int64]
    edge_index: npt.NDArray[np.int64]
    fraction: npt.NDArray[np.float64]
    has_reverse: npt.NDArray[np.bool_]
    node_forward: npt.NDArray[np.int64]
    time_to_forward_s: npt.NDArray[np.float64]
    node_backward: npt.NDArray[np.int64]
    time_to_backward_s: npt.NDArray[np.float64]
    time_from_u_s: npt.NDArray[np.float64]
    time_from_v_s: npt.NDArray[np.float64]
    position_key: npt.NDArray[np.int64]
    max_snap_m: float
    access_speed_kph: float
    graph_fingerprint: str

    def __len__(self) -> int:
        return int(self.lon.shape[0])

    @property
    def nearest_node(self) -> npt.NDArray[np.int64]:
        """The end of the snapped edge nearer to the point along the edge."""
        return np.where(self.fraction <= 0.5, self.edge_u, self.edge_v)

    def subset(self, index: npt.ArrayLike) -> SnappedPoints:
        """Return the points selected by an integer or boolean index, in that order.

        Parameters
        ----------
        index
            Integer positions or boolean mask.

        Returns
        -------
        SnappedPoints
        """
        idx = np.asarray(index)
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[idx] if isinstance(value, np.ndarray) else value
        return SnappedPoints(**values)

    def to_frame(self) -> Any:
        """Return a pandas DataFrame with one row per point and one column per array.

        Returns
        -------
        pandas.DataFrame
        """
        import pandas as pd

        return pd.DataFrame(
            {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _SCALARS}
        )


_SCALARS = {"max_snap_m", "access_speed_kph", "graph_fingerprint"}


@dataclass(frozen=True)
class _EdgeIndex:
    fingerprint: str
    epsg: int
    tree: Any  # shapely.STRtree over geoms
    geoms: npt.NDArray[np.object_]  # canonical edge geometries in UTM
    u: npt.NDArray[np.int64]
    v: npt.NDArray[np.int64]
    key: npt.NDArray[np.int64]
    tt_forward_s: npt.NDArray[np.float64]
    tt_reverse_s: npt.NDArray[np.float64]  # inf where there is no reverse twin
    bbox: tuple[float, float, float, float]
    to_utm: Any
    to_lonlat: Any


_INDEX_MEMO: weakref.WeakKeyDictionary[RoadGraph, _EdgeIndex] = weakref.WeakKeyDictionary()


def _transformers(epsg: int) -> tuple[Any, Any]:
    from pyproj import Transformer

    to_utm = Transformer.from_crs(4326, epsg, always_xy=True)
    to_lonlat = Transformer.from_crs(epsg, 4326, always_xy=True)
    return to_utm, to_lonlat


#: Version of the snapping index's arrays on disk (part of the cache file name).
INDEX_CACHE_VERSION = "snap-index-1"
_INDEX_ARRAYS = ("u", "v", "key", "tt_forward_s", "tt_reverse_s", "coords", "counts", "meta")


def _edge_index_arrays(G: ArrayGraph, fingerprint: str) -> _EdgeIndex:
    """The snapping index of an :class:`~planner.roads.arrays.ArrayGraph`, vectorised, read
    from (or written to) the disk cache ``$PLANNER_CACHE_DIR/snap-index`` by the graph's
    fingerprint: a restarted server snaps on a big graph without redoing the twin pairing
    and the projection (only the line geometries and their tree are rebuilt).

    Same rules as for the osmnx graph: an edge ``u -> v`` and an edge ``v -> u`` of the same
    length (to the millimetre) are one two-way street, snapped to as the lower-index edge.
    """
    if G.number_of_edges() == 0:
        msg = "the road graph has no edges to snap to; load a region with load_region()"
        raise GraphError(msg)
    path = cache_dir("snap-index") / f"{fingerprint}-{INDEX_CACHE_VERSION}.npz"
    arrays = _read_index_arrays(path)
    if arrays is None:
        arrays = _index_arrays(G)
        _write_index_arrays(arrays, path)
    return _index_from_arrays(arrays, fingerprint)


def _read_index_arrays(path: Path) -> dict[str, npt.NDArray[Any]] | None:
    arrays = _cache.read_npz(path, "snapping index")
    if arrays is None:
        return None
    try:
        json.loads(arrays["meta"].tobytes().decode())
        return {name: arrays[name] for name in _INDEX_ARRAYS}
    except (ValueError, KeyError, TypeError) as exc:
        _cache.warn_invalid("snapping index", path, f"{type(exc).__name__}: {exc}")
        return None


def _write_index_arrays(arrays: dict[str, Any], path: Path) -> None:
    _cache.write_npz(path, arrays, "snapping index")


def _index_from_arrays(arrays: dict[str, npt.NDArray[Any]], fingerprint: str) -> _EdgeIndex:
    import shapely

    meta = json.loads(arrays["meta"].tobytes().decode())
    epsg = int(meta["epsg"])
    to_utm, to_lonlat = _transformers(epsg)
    counts = arrays["counts"]
    lines = shapely.linestrings(arrays["coords"], indices=np.repeat(np.arange(counts.size), counts))
    return _EdgeIndex(
        fingerprint=fingerprint,
        epsg=epsg,
        tree=shapely.STRtree(lines),
        geoms=lines,
        u=arrays["u"],
        v=arrays["v"],
        key=arrays["key"],
        tt_forward_s=arrays["tt_forward_s"],
        tt_reverse_s=arrays["tt_reverse_s"],
        bbox=tuple(float(b) for b in meta["bbox"]),  # type: ignore[arg-type]
        to_utm=to_utm,
        to_lonlat=to_lonlat,
    )


def _index_arrays(G: ArrayGraph) -> dict[str, npt.NDArray[Any]]:
    """The canonical edges of ``G`` (one per street position) with their UTM polylines."""
    epsg = graph_utm_epsg(G)  # type: ignore[arg-type]
    to_utm, _ = _transformers(epsg)
    m = G.number_of_edges()
    u = G.edge_u.astype(np.int64)
    v = G.edge_v.astype(np.int64)
    n = np.int64(G.number_of_nodes())
    length_mm = np.round(G.length_m * 1000.0).astype(np.int64)
    # twin pairing: sort forward keys (u, v, len) and look up reversed keys (v, u, len)
    fwd = np.column_stack([u, v, length_mm])
    order = np.lexsort((np.arange(m), fwd[:, 2], fwd[:, 1], fwd[:, 0]))
    key_sorted = (u[order] * n + v[order], length_mm[order])
    twin = np.full(m, -1, dtype=np.int64)
    lookup = v * n + u
    lo = np.searchsorted(key_sorted[0], lookup, side="left")
    hi = np.searchsorted(key_sorted[0], lookup, side="right")
    # the common case, vectorised: i's only reverse edge is j and j's only reverse edge is i
    # (no other edge can claim either, so the loop below would pair them the same way)
    idx = np.arange(m)
    only = (hi - lo == 1) & (u != v)
    cand = order[np.minimum(lo, m - 1)]
    mutual = only & only[cand] & (cand[cand] == idx) & (np.abs(length_mm[cand] - length_mm) <= 1)
    twin[mutual] = cand[mutual]
    for i in np.flatnonzero((hi > lo) & (u != v) & ~mutual).tolist():
        if twin[i] >= 0:
            continue
        for j in order[lo[i] : hi[i]].tolist():
            if j != i and twin[j] < 0 and abs(int(length_mm[j]) - int(length_mm[i])) <= 1:
                twin[i], twin[j] = j, i
                break
    canonical = np.flatnonzero((twin < 0) | (np.arange(m) < twin))
    rev = twin[canonical]
    tts = G.travel_time_s
    tt_rev = np.where(rev >= 0, tts[np.maximum(rev, 0)], np.inf)
    gx, gy = to_utm.transform(G.geom_x, G.geom_y)
    counts = np.diff(G.geom_offsets)[canonical]
    src = np.repeat(
        G.geom_offsets[canonical] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts
    )
    flat = G.geom_nodes[src + np.arange(int(counts.sum()))]
    coords = np.column_stack([np.asarray(gx)[flat], np.asarray(gy)[flat]])
    keys = G.edge_keys()
    bbox = [float(G.x.min()), float(G.y.min()), float(G.x.max()), float(G.y.max())]
    meta = {"epsg": epsg, "bbox": bbox, "version": INDEX_CACHE_VERSION}
    return {
        "u": G.node_id[u[canonical]],
        "v": G.node_id[v[canonical]],
        "key": keys[canonical],
        "tt_forward_s": tts[canonical],
        "tt_reverse_s": tt_rev,
        "coords": coords,
        "counts": counts.astype(np.int64),
        "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8),
    }


def _edge_index(G: RoadGraph) -> _EdgeIndex:
    """Build (or reuse) the STRtree of canonical edge geometries of ``G`` in UTM."""
    import shapely

    fingerprint = graph_fingerprint(G)
    cached = _INDEX_MEMO.get(G)
    if cached is not None and cached.fingerprint == fingerprint:
        return cached
    if isinstance(G, ArrayGraph):
        index = _edge_index_arrays(G, fingerprint)
        _INDEX_MEMO[G] = index
        return index
    if G.number_of_edges() == 0:
        msg = "the road graph has no edges to snap to; load a region with load_region()"
        raise GraphError(msg)
    crs = str(G.graph.get("crs", "epsg:4326")).lower()
    if crs not in {"epsg:4326", "wgs84", "wgs 84"}:
        msg = (
            f"snap_points needs the unprojected graph (EPSG:4326), got crs={crs!r}; "
            "pass the graph returned by load_region()"
        )
        raise GraphError(msg)
    epsg = graph_utm_epsg(G)
    to_utm, to_lonlat = _transformers(epsg)

    edges = list(G.edges(keys=True, data=True))
    m = len(edges)
    us = np.empty(m, dtype=np.int64)
    vs = np.empty(m, dtype=np.int64)
    ks = np.empty(m, dtype=np.int64)
    tts = np.empty(m, dtype=np.float64)
    lengths = np.empty(m, dtype=np.float64)
    geoms = np.empty(m, dtype=object)
    for i, (u, v, k, d) in enumerate(edges):
        us[i], vs[i], ks[i] = u, v, k
        tt = d.get("travel_time")
        if tt is None or not math.isfinite(float(tt)) or float(tt) < 0:
            msg = (
                f"edge ({u}, {v}, {k}) has no valid travel_time; load the graph with "
                "planner.roads.network.load_region() or prepare_graph()"
            )
            raise GraphError(msg)
        tts[i] = float(tt)
        lengths[i] = float(d.get("length", 0.0))
        geom = d.get("geometry")
        if geom is None:
            nu, nv = G.nodes[u], G.nodes[v]
            geom = shapely.LineString([(nu["x"], nu["y"]), (nv["x"], nv["y"])])
        geoms[i] = geom

    # pair each edge with its reverse twin (same street, opposite direction, same length)
    by_pair: dict[tuple[int, int], list[int]] = {}
    for i in range(m):
        by_pair.setdefault((int(us[i]), int(vs[i])), []).append(i)
    twin = np.full(m, -1, dtype=np.int64)
    for i in range(m):
        if twin[i] >= 0:
            continue
        for j in by_pair.get((int(vs[i]), int(us[i])), ()):
            if j == i or twin[j] >= 0:
                continue
            if abs(lengths[j] - lengths[i]) <= 1e-6 * max(lengths[i], 1.0) + 1e-3:
                twin[i], twin[j] = j, i
                break
    canonical = np.array([i for i in range(m) if twin[i] < 0 or i < twin[i]], dtype=np.int64)
    rev = twin[canonical]
    tt_rev = np.where(rev >= 0, tts[np.maximum(rev, 0)], np.inf)

    utm = shapely.transform(
        geoms[canonical], lambda xy: np.column_stack(to_utm.transform(xy[:, 0], xy[:, 1]))
    )
    xs = np.fromiter((d["x"] for _, d in G.nodes(data=True)), dtype=float)
    ys = np.fromiter((d["y"] for _, d in G.nodes(data=True)), dtype=float)
    index = _EdgeIndex(
        fingerprint=fingerprint,
        epsg=epsg,
        tree=shapely.STRtree(utm),
        geoms=utm,
        u=us[canonical],
        v=vs[canonical],
        key=ks[canonical],
        tt_forward_s=tts[canonical],
        tt_reverse_s=tt_rev,
        bbox=(float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())),
        to_utm=to_utm,
        to_lonlat=to_lonlat,
    )
    _INDEX_MEMO[G] = index
    return index


def _check_coordinates(
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    bbox: tuple[float, float, float, float],
    margin_m: float,
    source: str | None,
) -> npt.NDArray[np.bool_]:
    """Validate coordinates; return the mask of points outside the region's bbox."""
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        msg = (
            f"{int(bad.sum())} point(s) have missing or non-numeric coordinates (rows {rows}); "
            "fill in lat and lon in decimal degrees"
        )
        raise InputError(msg, file=source)
    out_of_range = (np.abs(lat) > 90) | (np.abs(lon) > 180)
    swapped_valid = (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    if out_of_range.any():
        rows = np.flatnonzero(out_of_range)[:5].tolist()
        hint = (
            " Latitude and longitude look swapped: put latitudes in lat and longitudes in lon."
            if swapped_valid[out_of_range].all()
            else ""
        )
        msg = (
            f"{int(out_of_range.sum())} point(s) have coordinates out of range (rows {rows}): "
            f"latitude must be within [-90, 90] and longitude within [-180, 180].{hint}"
        )
        raise InputError(msg, file=source)
    west, south, east, north = bbox
    mid_lat = math.radians((south + north) / 2)
    dlat = margin_m / _METRES_PER_DEGREE
    dlon = margin_m / (_METRES_PER_DEGREE * max(math.cos(mid_lat), 0.01))

    def inside(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        return (x >= west - dlon) & (x <= east + dlon) & (y >= south - dlat) & (y <= north + dlat)

    in_region = inside(lon, lat)
    in_swapped = inside(lat, lon)
    n = lon.shape[0]
    n_in, n_swapped = int(in_region.sum()), int(in_swapped.sum())
    area = f"lon {west:.4f}..{east:.4f}, lat {south:.4f}..{north:.4f}"
    if n_swapped > n_in and n_swapped >= max(1, n // 2):
        msg = (
            f"latitude and longitude look swapped: {n_swapped} of {n} points fall inside the "
            f"road network ({area}) only when lat and lon are exchanged. Put latitudes "
            "(north-south, e.g. 35.9) in lat and longitudes (east-west, e.g. 14.5) in lon"
        )
        raise InputError(msg, file=source)
    if n_in == 0:
        msg = (
            f"none of the {n} points lie within the road network's area ({area}); they belong "
            "to another region: load the matching region or fix the coordinates"
        )
        raise InputError(msg, file=source)
    if n_in < n:
        logger.warning(
            "%d of %d points lie outside the road network's area (%s); they are flagged",
            n - n_in,
            n,
            area,
        )
    return ~in_region


def _nearest_edges(
    index: _EdgeIndex, points: npt.NDArray[Any]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Nearest edge of each point; ties go to the smallest ``(u, v, key)``.

    A point nearest to an intersection is equally near to every street that meets there; the
    STRtree reports all of them (``all_matches=True``) and the stable key picks one, so the
    choice does not depend on the tree's internal order.
    """
    (src, hit), dist = index.tree.query_nearest(points, return_distance=True, all_matches=True)
    src = np.asarray(src, dtype=np.int64)
    hit = np.asarray(hit, dtype=np.int64)
    dist = np.asarray(dist, dtype=np.float64)
    order = np.lexsort((index.key[hit], index.v[hit], index.u[hit], dist, src))
    src, hit, dist = src[order], hit[order], dist[order]
    first = np.ones(src.size, dtype=bool)
    first[1:] = src[1:] != src[:-1]
    return hit[first], dist[first]


def snap_points(
    G: RoadGraph,
    lon: npt.ArrayLike,
    lat: npt.ArrayLike,
    *,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    access_speed_kph: float = DEFAULT_ACCESS_SPEED_KPH,
    source: str | None = None,
) -> SnappedPoints:
    """Snap points to the nearest edge of a road graph.

    Parameters
    ----------
    G
        Graph from :func:`planner.roads.network.load_region` (EPSG:4326, edges with
        ``travel_time``): an osmnx graph or an :class:`~planner.roads.arrays.ArrayGraph`.
    lon, lat
        Point coordinates in degrees (same length).
    max_snap_m
        Points farther than this from every road are flagged ``too_far`` (not moved).
    access_speed_kph
        Speed of the trip between the point and the road (default 20 km/h).
    source
        Name of the file the points came from, used in error messages.

    Returns
    -------
    SnappedPoints

    Raises
    ------
    InputError
        Coordinates missing, out of range, apparently swapped, or all outside the region.
    GraphError
        The graph is projected, empty, or lacks ``travel_time``.
    """
    import shapely

    lon_a = np.atleast_1d(np.asarray(lon, dtype=np.float64)).ravel()
    lat_a = np.atleast_1d(np.asarray(lat, dtype=np.float64)).ravel()
    if lon_a.shape != lat_a.shape:
        msg = f"lon and lat must have the same length, got {lon_a.size} and {lat_a.size}"
        raise InputError(msg, file=source)
    if not (math.isfinite(max_snap_m) and max_snap_m > 0):
        raise InputError(f"max_snap_m must be a positive number of metres, got {max_snap_m!r}")
    if not (math.isfinite(access_speed_kph) and access_speed_kph > 0):
        msg = f"access_speed_kph must be a positive speed in km/h, got {access_speed_kph!r}"
        raise InputError(msg)
    index = _edge_index(G)
    n = lon_a.size
    outside = (
        _check_coordinates(lon_a, lat_a, index.bbox, max(max_snap_m, 1000.0), source)
        if n
        else np.zeros(0, dtype=bool)
    )

    x, y = index.to_utm.transform(lon_a, lat_a)
    points = shapely.points(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
    if n:
        hit, dist = _nearest_edges(index, points)
    else:
        hit = np.zeros(0, dtype=np.int64)
        dist = np.zeros(0, dtype=float)
    geoms = index.geoms[hit]
    fraction = np.clip(shapely.line_locate_point(geoms, points, normalized=True), 0.0, 1.0)
    fraction = np.nan_to_num(fraction, nan=0.0)  # zero-length edges
    on_road = shapely.line_interpolate_point(geoms, fraction, normalized=True)
    slon, slat = index.to_lonlat.transform(shapely.get_x(on_road), shapely.get_y(on_road))

    tt_f = index.tt_forward_s[hit]
    tt_r = index.tt_reverse_s[hit]
    has_rev = np.isfinite(tt_r)
    at_u = fraction <= 0.0
    at_v = fraction >= 1.0
    time_to_forward = (1.0 - fraction) * tt_f
    time_from_u = fraction * tt_f
    with np.errstate(invalid="ignore"):
        time_to_backward = np.where(has_rev, fraction * tt_r, np.where(at_u, 0.0, np.inf))
        time_from_v = np.where(has_rev, (1.0 - fraction) * tt_r, np.where(at_v, 0.0, np.inf))

    # network position key: a node when the point sits on an edge end, else edge + offset (cm)
    lengths_m = shapely.length(geoms)
    offset_cm = np.round(fraction * lengths_m * 100.0).astype(np.int64)
    end_cm = np.round(lengths_m * 100.0).astype(np.int64)
    is_u = at_u | (offset_cm <= 0)
    is_v = ~is_u & (at_v | (offset_cm >= end_cm))
    kind = np.where(is_u | is_v, 0, 1)
    ident = np.where(is_u, index.u[hit], np.where(is_v, index.v[hit], hit))
    off = np.where(kind == 0, 0, offset_cm)
    if n:
        _, position_key = np.unique(
            np.column_stack([kind, ident, off]), axis=0, return_inverse=True
        )
        position_key = np.asarray(position_key, dtype=np.int64).ravel()
    else:
        position_key = np.zeros(0, dtype=np.int64)

    too_far = dist > max_snap_m
    if too_far.any():
        logger.warning(
            "%d of %d points are more than %.0f m from any road; they are flagged too_far",
            int(too_far.sum()),
            n,
            max_snap_m,
        )
    return SnappedPoints(
        lon=lon_a,
        lat=lat_a,
        snapped_lon=np.asarray(slon, dtype=float),
        snapped_lat=np.asarray(slat, dtype=float),
        snap_distance_m=dist,
        access_time_s=dist / (access_speed_kph / 3.6),
        too_far=too_far,
        outside_region=outside,
        edge_u=index.u[hit],
        edge_v=index.v[hit],
        edge_key=index.key[hit],
        edge_index=hit.astype(np.int64),
        fraction=fraction,
        has_reverse=has_rev,
        node_forward=index.v[hit],
        time_to_forward_s=time_to_forward,
        node_backward=index.u[hit],
        time_to_backward_s=time_to_backward,
        time_from_u_s=time_from_u,
        time_from_v_s=time_from_v,
        position_key=position_key,
        max_snap_m=float(max_snap_m),
        access_speed_kph=float(access_speed_kph),
        graph_fingerprint=index.fingerprint,
    )
