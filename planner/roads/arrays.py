"""Compact road graphs for country-scale ``.osm.pbf`` files: CSR arrays instead of networkx.

A networkx ``MultiDiGraph`` holds a Python dict per node and per edge: right for a city or a
small country, out of memory for a whole country. :func:`load_pbf_arrays` reads an ``.osm.pbf``
with pyosmium straight into numpy arrays and builds the same road graph the osmnx path builds
(:func:`planner.roads.network.load_region` picks the loader by file size and says which one ran):

* the drivable ways (the osmnx ``network_type="drive"`` filter, passed in by the caller);
* one directed segment per pair of consecutive way nodes, both directions unless the way is
  one-way (``oneway`` in osmnx's one-way values, or ``junction=roundabout``), reversed for
  ``oneway=-1``; segment length is the great-circle distance (osmnx ``great_circle``);
* degree-2 simplification with osmnx's endpoint rules (self-loop; no in- or no out-edge; not
  exactly two neighbours with degree 2 or 4), and rings without an endpoint dropped;
* per simplified edge: length = sum of its segments; speed from the unique ``maxspeed`` values
  of its ways, else from the unique ``highway`` types (sorted), through the caller's speed rule
  -- the same function the osmnx path uses, so the travel times agree;
* the largest strongly connected component (unless ``retain_all``).

The result, :class:`ArrayGraph`, carries the node coordinates, the edge arrays and each edge's
polyline (as node positions) for snapping and maps. It is cached on disk as one ``.npz`` (no
pickle) plus its report. It offers the small read-only part of the networkx API the rest of the
planner uses (``G.graph["planner_report"]``, ``G.nodes[node]["x"]``, ``G.nodes(data=True)``,
``G.edges(data=...)``, ``len(G)``), so inputs, snapping, matrices and exports take either kind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.errors import GraphError
from planner.roads import _cache
from planner.roads.trim import Area, area_report, ways_in_area

logger = logging.getLogger(__name__)

#: Bump when the array format or the construction changes (invalidates array caches).
ARRAY_CODE_VERSION = "arrays-1"

#: ``oneway`` values osmnx treats as one-way, and those that reverse the way's node order.
ONEWAY_VALUES = frozenset({"yes", "true", "1", "-1", "reverse", "T", "F"})
REVERSED_VALUES = frozenset({"-1", "reverse", "T"})

#: ``speed_rule(highways, maxspeeds) -> (freeflow_speed_kph, imputed)``: the caller's speed rule.
SpeedRule = Callable[[list[str], list[str]], tuple[float, bool]]
#: ``is_drivable(tags) -> bool``: the caller's way filter.
WayFilter = Callable[[Mapping[str, str]], bool]

_EARTH_RADIUS_M = 6_371_009.0


def sorted_unique(values: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``np.unique(values)`` through a sort (numpy 2's hash-based ``np.unique`` without
    ``return_*`` options is 30-40 times slower on millions of integers)."""
    ordered = np.sort(values, kind="stable")
    if ordered.size == 0:
        return ordered
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def great_circle_m(
    lat1: npt.NDArray[np.float64],
    lon1: npt.NDArray[np.float64],
    lat2: npt.NDArray[np.float64],
    lon2: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Great-circle distance in metres, the formula of ``osmnx.distance.great_circle``.

    Parameters
    ----------
    lat1, lon1, lat2, lon2
        Degrees.

    Returns
    -------
    numpy.ndarray
    """
    y1 = np.deg2rad(lat1)
    y2 = np.deg2rad(lat2)
    dy = y2 - y1
    dx = np.deg2rad(lon2) - np.deg2rad(lon1)
    h = np.sin(dy / 2) ** 2 + np.cos(y1) * np.cos(y2) * np.sin(dx / 2) ** 2
    h = np.minimum(1.0, h)
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(h))


class _NodeView:
    """``G.nodes`` of an :class:`ArrayGraph`: iterate ids, ``[id]`` -> attrs, ``(data=...)``."""

    def __init__(self, G: ArrayGraph) -> None:
        self._G = G

    def __len__(self) -> int:
        return int(self._G.node_id.size)

    def __iter__(self) -> Iterator[int]:
        return iter(self._G.node_id.tolist())

    def __contains__(self, node: object) -> bool:
        try:
            self._G.position(int(node))  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError):
            return False
        return True

    def __getitem__(self, node: int) -> dict[str, float]:
        i = self._G.position(node)
        return {"x": float(self._G.x[i]), "y": float(self._G.y[i])}

    def __call__(self, data: bool | str = False) -> Iterator[Any]:
        ids = self._G.node_id.tolist()
        if data is False:
            return iter(ids)
        xs, ys = self._G.x.tolist(), self._G.y.tolist()
        if data is True:
            return ((n, {"x": x, "y": y}) for n, x, y in zip(ids, xs, ys, strict=True))
        values = {"x": xs, "y": ys}.get(str(data))
        if values is None:
            return ((n, None) for n in ids)
        return zip(ids, values, strict=True)


@dataclass(frozen=True, eq=False)
class ArrayGraph:
    """A prepared road graph as arrays (EPSG:4326), the compact twin of the osmnx graph.

    Attributes
    ----------
    node_id
        OSM node ids (int64, ``n``).
    x, y
        Longitude and latitude in degrees (``n``).
    edge_u, edge_v
        Positions (into ``node_id``) of each directed edge's tail and head (``m``).
    length_m, travel_time_s, speed_kph, freeflow_speed_kph
        Per edge: metres, seconds, routing speed and free-flow speed (km/h).
    speed_imputed
        True where the speed came from the highway table rather than a mapped ``maxspeed``.
    highway_code, highway_names
        Per edge the index into ``highway_names`` of its highway type (the one the speed
        rule used).
    geom_offsets, geom_nodes
        Edge ``e``'s polyline is ``geom_nodes[geom_offsets[e]:geom_offsets[e + 1]]``: node
        positions into ``geom_x``/``geom_y`` from ``u`` to ``v``.
    geom_x, geom_y
        Coordinates of every OSM node used by an edge polyline (degrees).
    graph
        ``{"planner_report": {...}, "crs": "epsg:4326"}``, as ``G.graph`` of the osmnx graph.
    """

    node_id: npt.NDArray[np.int64]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    edge_u: npt.NDArray[np.int32]
    edge_v: npt.NDArray[np.int32]
    length_m: npt.NDArray[np.float64]
    travel_time_s: npt.NDArray[np.float64]
    speed_kph: npt.NDArray[np.float64]
    freeflow_speed_kph: npt.NDArray[np.float64]
    speed_imputed: npt.NDArray[np.bool_]
    highway_code: npt.NDArray[np.int16]
    geom_offsets: npt.NDArray[np.int64]
    geom_nodes: npt.NDArray[np.int32]
    geom_x: npt.NDArray[np.float64]
    geom_y: npt.NDArray[np.float64]
    highway_names: tuple[str, ...]
    graph: dict[str, Any] = field(default_factory=dict)

    # -- the read-only part of the networkx API the planner uses ------------------------------

    def __len__(self) -> int:
        return int(self.node_id.size)

    def number_of_nodes(self) -> int:
        """Number of nodes."""
        return int(self.node_id.size)

    def number_of_edges(self) -> int:
        """Number of directed edges (parallel edges counted)."""
        return int(self.edge_u.size)

    @property
    def nodes(self) -> _NodeView:
        """Node view: ``G.nodes[node_id]["x"]``, ``G.nodes(data=True)``, ``iter(G.nodes)``."""
        return _NodeView(self)

    def position(self, node: int) -> int:
        """Position of an OSM node id in the node arrays (KeyError if absent)."""
        return self._index()[node]

    def positions(self, nodes: Iterable[int]) -> npt.NDArray[np.int64]:
        """Positions of OSM node ids in the node arrays (KeyError if one is absent): a binary
        search of the sorted ids (as the loader writes them), else the id -> position dict."""
        wanted = np.fromiter(nodes, dtype=np.int64)
        if self.node_id.size and self._ids_sorted():
            at = np.minimum(np.searchsorted(self.node_id, wanted), self.node_id.size - 1)
            missing = self.node_id[at] != wanted
            if missing.any():
                raise KeyError(int(wanted[missing][0]))
            return at.astype(np.int64)
        index = self._index()
        return np.fromiter((index[n] for n in wanted.tolist()), dtype=np.int64, count=wanted.size)

    def _ids_sorted(self) -> bool:
        known = self.graph.get("_ids_sorted")
        if known is None:
            known = bool(np.all(self.node_id[1:] > self.node_id[:-1]))
            self.graph["_ids_sorted"] = known
        return bool(known)

    def _index(self) -> dict[int, int]:
        """OSM node id -> position, built once (consumers look nodes up one by one, hundreds
        of thousands of times on a country: a dict lookup, not a search per call)."""
        cached = self.graph.get("_index")
        if cached is None or len(cached) != self.node_id.size:
            cached = dict(zip(self.node_id.tolist(), range(self.node_id.size), strict=True))
            self.graph["_index"] = cached
        return cached  # type: ignore[no-any-return]

    def edge_keys(self) -> npt.NDArray[np.int64]:
        """Key of each edge among the parallel edges ``u -> v`` (0, 1, ... in edge order)."""
        m = self.edge_u.size
        order = np.lexsort((np.arange(m), self.edge_v, self.edge_u))
        u, v = self.edge_u[order], self.edge_v[order]
        new = np.ones(m, dtype=bool)
        new[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
        group_start = np.maximum.accumulate(np.where(new, np.arange(m), 0))
        keys = np.empty(m, dtype=np.int64)
        keys[order] = np.arange(m) - group_start
        return keys

    def edge_attribute(self, name: str) -> npt.NDArray[Any] | list[str]:
        """Per-edge values of an osmnx attribute name (``travel_time``, ``length``...)."""
        if name == "highway":
            names = self.highway_names
            return [names[c] for c in self.highway_code.tolist()]
        arrays = {
            "travel_time": self.travel_time_s,
            "length": self.length_m,
            "speed_kph": self.speed_kph,
            "freeflow_speed_kph": self.freeflow_speed_kph,
            "speed_imputed": self.speed_imputed,
        }
        if name not in arrays:
            raise KeyError(name)
        return arrays[name]

    def edges(self, data: bool | str = False, keys: bool = False) -> Iterator[tuple[Any, ...]]:
        """Iterate edges like ``networkx.MultiDiGraph.edges`` (slow: for small consumers)."""
        u = self.node_id[self.edge_u].tolist()
        v = self.node_id[self.edge_v].tolist()
        k = self.edge_keys().tolist() if keys else None
        if data is False:
            cols: list[list[Any]] = [u, v] + ([k] if k is not None else [])
            return zip(*cols, strict=True)
        if isinstance(data, str):
            try:
                values: list[Any] = list(self.edge_attribute(data))
            except KeyError:
                values = [None] * len(u)
            cols = [u, v] + ([k] if k is not None else []) + [values]
            return zip(*cols, strict=True)
        names = ("travel_time", "length", "speed_kph", "freeflow_speed_kph", "highway")
        columns = [self.edge_attribute(n) for n in names]
        columns = [c.tolist() if isinstance(c, np.ndarray) else c for c in columns]
        dicts = (
            {"travel_time": t, "length": d, "speed_kph": s, "freeflow_speed_kph": f, "highway": h}
            for t, d, s, f, h in zip(*columns, strict=True)
        )
        cols = [u, v] + ([k] if k is not None else []) + [dicts]  # type: ignore[list-item]
        return zip(*cols, strict=True)

    # -- arrays for routing and snapping ------------------------------------------------------

    def csr(self, *, weight: str = "travel_time") -> Any:
        """``n x n`` CSR matrix of edge weights, the minimum over parallel edges.

        Parameters
        ----------
        weight
            ``"travel_time"`` (seconds) or ``"length"`` (metres).

        Returns
        -------
        scipy.sparse.csr_matrix
        """
        from scipy import sparse

        data = np.asarray(self.edge_attribute(weight), dtype=np.float64)
        n = self.node_id.size
        rows = self.edge_u.astype(np.int64)
        cols = self.edge_v.astype(np.int64)
        order = np.lexsort((data, cols, rows))
        rows, cols, data = rows[order], cols[order], data[order]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, data = rows[first], cols[first], data[first]
        indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return sparse.csr_matrix((data, cols.astype(np.int32), indptr), shape=(n, n))

    def edge_lines(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """All edge polylines as ``(coords, line_index)`` for ``shapely.linestrings``."""
        idx = self.geom_nodes
        coords = np.column_stack([self.geom_x[idx], self.geom_y[idx]])
        line_index = np.repeat(np.arange(self.edge_u.size), np.diff(self.geom_offsets))
        return coords, line_index

    def fingerprint(self) -> str:
        """Short hash of the nodes, edges and travel times (as ``graph_fingerprint``)."""
        digest = hashlib.sha256()
        digest.update(b"array-graph|")
        for arr in (self.node_id, self.edge_u, self.edge_v, self.travel_time_s):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()[:32]

    # -- disk cache ---------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the graph to ``path`` (``.npz``, no pickle), atomically."""
        arrays = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), np.ndarray)
        }
        report = dict(self.graph.get("planner_report", {}))
        meta = {"highway_names": list(self.highway_names), "report": report}
        arrays["meta_json"] = np.frombuffer(json.dumps(meta, default=str).encode(), np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _cache.atomic_file(path) as fh:
            np.savez(fh, **arrays)

    @classmethod
    def load(cls, path: Path) -> ArrayGraph | None:
        """Read a graph written by :meth:`save`; None when missing or unreadable."""
        values = _cache.read_npz(path, "road-array")
        if values is None:
            return None
        try:
            meta = json.loads(values.pop("meta_json").tobytes().decode())
            return cls(
                **values,
                highway_names=tuple(meta["highway_names"]),
                graph={"planner_report": meta["report"], "crs": "epsg:4326"},
            )
        except (ValueError, KeyError, TypeError) as exc:
            _cache.warn_invalid("road-array", path, f"{type(exc).__name__}: {exc}")
            return None


# --------------------------------------------------------------------------------------------
# PBF -> segments
# --------------------------------------------------------------------------------------------


@dataclass
class _Ways:
    """Drivable ways read from a file: flat node refs and per-way attributes."""

    # per way arrays; or (the reader) one flat array each plus ``counts`` (nodes per way)
    refs: list[npt.NDArray[np.int64]] = field(default_factory=list)
    lon: list[npt.NDArray[np.float64]] = field(default_factory=list)
    lat: list[npt.NDArray[np.float64]] = field(default_factory=list)
    oneway: list[int] = field(default_factory=list)  # 0 two-way, 1 forward, -1 reversed
    highway: list[int] = field(default_factory=list)
    maxspeed: list[int] = field(default_factory=list)  # -1: none
    highway_names: dict[str, int] = field(default_factory=dict)
    maxspeed_values: dict[str, int] = field(default_factory=dict)
    newest: str = ""
    counts: list[int] = field(default_factory=list)
    ways_read: int = 0  # drivable ways in the file (before trimming to an area)

    def __len__(self) -> int:
        return len(self.oneway)


#: Tags the array loader itself reads from a way.
_WAY_KEYS = ("highway", "oneway", "junction", "maxspeed")


def _bytes_read() -> int | None:
    """Bytes this process has read so far (Linux ``/proc/self/io``), None elsewhere."""
    try:
        with open("/proc/self/io", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("rchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


class _ReadProgress:
    """Progress of reading a file, with an ETA from the bytes read so far.

    libosmium reads the file sequentially on its own thread; the growth of this process's
    ``rchar`` against the file size gives the fraction read (a few MB ahead of the parsing).
    """

    def __init__(self, path: Path, report: Callable[[str, float], None]) -> None:
        self.size = max(path.stat().st_size, 1)
        self.name = path.name
        self.report = report
        self.base = _bytes_read()
        self.started = time.perf_counter()
        self.last = self.started
        self.first: tuple[float, float] | None = None

    def __call__(self, ways: int) -> None:
        now = time.perf_counter()
        if now - self.last < 2.0:
            return
        self.last = now
        elapsed = now - self.started
        read = _bytes_read()
        if read is None or self.base is None:
            self.report(f"Reading {self.name}: {ways:,} highway ways, {elapsed:.0f} s", 0.0)
            return
        fraction = min(max((read - self.base) / self.size, 1e-6), 1.0)
        if self.first is None:
            # the nodes (the first part of the file) only feed the C++ location index; the
            # ways after them are the slow part: the ETA uses the rate from here on
            self.first = (now, fraction)
            eta_text = "ETA after the next report"
        else:
            t0, f0 = self.first
            rate = (now - t0) / max(fraction - f0, 1e-6)
            eta_text = f"ETA {rate * (1.0 - fraction):.0f} s"
        self.report(
            f"Reading {self.name}: {fraction:.0%} of the file, {ways:,} highway ways, "
            f"{elapsed:.0f} s elapsed, {eta_text}",
            0.6 * fraction,
        )


#: Ways read before the buffers are turned into arrays (and trimmed to the area).
_CHUNK_WAYS = 100_000


class _WayBuffer:
    """Flat buffers of the ways read since the last flush (no numpy call per way); each
    flush turns them into arrays and keeps only the ways of the area (the trim step)."""

    def __init__(self, ways: _Ways, area: Area | None) -> None:
        self.ways = ways
        self.area = area
        self.read = 0
        self.refs: list[int] = []
        self.xy = bytearray()
        self.counts: list[int] = []
        self.oneway: list[int] = []
        self.highway: list[int] = []
        self.maxspeed: list[int] = []

    def flush(self) -> None:
        if not self.counts:
            return
        ways = self.ways
        refs = np.array(self.refs, dtype=np.int64)
        xy = np.frombuffer(bytes(self.xy), dtype=np.float64)
        lon, lat = xy[0::2], xy[1::2]
        counts = np.asarray(self.counts, dtype=np.int64)
        self.read += counts.size
        if self.area is None:
            keep_way = np.ones(counts.size, dtype=bool)
        else:
            keep_way = ways_in_area(self.area, lon, lat, counts)
        if keep_way.all():
            ways.refs.append(refs)
            ways.lon.append(lon.copy())
            ways.lat.append(lat.copy())
            ways.counts.extend(self.counts)
            ways.oneway.extend(self.oneway)
            ways.highway.extend(self.highway)
            ways.maxspeed.extend(self.maxspeed)
        elif keep_way.any():
            keep_node = np.repeat(keep_way, counts)
            ways.refs.append(refs[keep_node])
            ways.lon.append(lon[keep_node])
            ways.lat.append(lat[keep_node])
            picked = np.flatnonzero(keep_way).tolist()
            ways.counts.extend(self.counts[i] for i in picked)
            ways.oneway.extend(self.oneway[i] for i in picked)
            ways.highway.extend(self.highway[i] for i in picked)
            ways.maxspeed.extend(self.maxspeed[i] for i in picked)
        self.refs, self.xy, self.counts = [], bytearray(), []
        self.oneway, self.highway, self.maxspeed = [], [], []


def _read_ways(
    path: Path,
    is_drivable: WayFilter,
    progress: Callable[[int], None],
    filter_keys: tuple[str, ...] | None = None,
    area: Area | None = None,
) -> _Ways:
    """Drivable ways of a file; ``filter_keys``: the only tags ``is_drivable`` looks at;
    ``area``: keep only the ways with a node inside it (the others are never built)."""
    import osmium

    ways = _Ways()
    seen = 0
    newest = None
    keys = None if filter_keys is None else tuple(dict.fromkeys(_WAY_KEYS + filter_keys))
    buffer = _WayBuffer(ways, area)
    flat_refs = buffer.refs
    flat_xy = buffer.xy
    # coordinates come as WKB from C++ (osmium.geom), so Python touches each node once (its id)
    wkb = osmium.geom.WKBFactory()
    every_node = osmium.geom.use_nodes.ALL
    box = None if area is None else area.bbox
    try:
        processor = (
            osmium.FileProcessor(str(path), osmium.osm.NODE | osmium.osm.WAY)
            .with_locations()
            # C++ filters: nodes only feed the location index, only highway ways reach Python
            .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
            .with_filter(osmium.filter.KeyFilter("highway"))
        )
        # the filter excludes: a highway type that fails on its own fails with any other tag,
        # so most non-drivable ways (footway, service, track...) cost one lookup
        highway_passes: dict[str, bool] = {}
        obj: Any
        for obj in processor:
            seen += 1
            if seen % 20_000 == 0:
                progress(seen)
            way_tags = obj.tags
            if keys is None:
                tags = dict(way_tags)
            else:  # a few C lookups instead of every tag as a Python object
                highway = way_tags.get("highway")
                passes = highway_passes.get(highway)
                if passes is None:
                    passes = highway_passes[highway] = is_drivable({"highway": highway})
                if not passes:
                    continue
                tags = {k: v for k in keys if (v := way_tags.get(k)) is not None}
            if not is_drivable(tags):
                continue
            nodes = obj.nodes
            k = len(nodes)
            if k < 2:
                continue
            stamp = obj.timestamp
            if stamp is not None and stamp.year > 1970 and (newest is None or stamp > newest):
                newest = stamp
            # WKB linestring: 1 byte order, 4 type, 4 count, then k (x, y) doubles
            xy = bytes.fromhex(wkb.create_linestring(obj, every_node))[9:]
            if box is not None:
                # a way whose bounding box misses the area has no node in it: dropped before
                # its node ids become Python objects (the flush decides the others exactly)
                coords = array("d", xy)
                lon, lat = coords[0::2], coords[1::2]
                if min(lon) > box[2] or max(lon) < box[0] or min(lat) > box[3] or max(lat) < box[1]:
                    buffer.read += 1
                    continue
            flat_refs.extend([n.ref for n in nodes])
            flat_xy += xy
            buffer.counts.append(k)
            one = tags.get("oneway")
            if one in ONEWAY_VALUES or tags.get("junction") == "roundabout":
                buffer.oneway.append(-1 if one in REVERSED_VALUES else 1)
            else:
                buffer.oneway.append(0)
            buffer.highway.append(
                ways.highway_names.setdefault(tags["highway"], len(ways.highway_names))
            )
            ms = tags.get("maxspeed")
            buffer.maxspeed.append(
                -1 if ms is None else ways.maxspeed_values.setdefault(ms, len(ways.maxspeed_values))
            )
            if len(buffer.counts) >= _CHUNK_WAYS:
                buffer.flush()
                flat_refs, flat_xy = buffer.refs, buffer.xy
    except RuntimeError as exc:
        msg = (
            f"cannot read the file as OpenStreetMap data ({exc}); check that it is a complete "
            ".osm.pbf download"
        )
        raise GraphError(f"{path}: {msg}") from exc
    except osmium.InvalidLocationError as exc:
        msg = (
            "looks like a clipped extract: some roads reference nodes that are not in the file. "
            "Cut the extract with complete ways ('osmium extract --strategy complete_ways') or "
            "download a whole country from download.geofabrik.de"
        )
        raise GraphError(f"{path}: {msg}") from exc
    buffer.flush()
    ways.ways_read = buffer.read
    if newest is not None:
        ways.newest = newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    if not ways.counts:
        if area is not None and buffer.read:
            msg = (
                f"has no drivable road {area.describe()} (box "
                f"{','.join(f'{v:.4f}' for v in area.bbox)}): check that the customers or the "
                "box lie in this region, or choose the region that holds them"
            )
            raise GraphError(f"{path}: {msg}")
        msg = (
            "contains no drivable roads. Use an extract that includes car roads (highway=primary, "
            "secondary, residential, ...), or use a bundled region"
        )
        raise GraphError(f"{path}: {msg}")
    return ways


# --------------------------------------------------------------------------------------------
# segments -> simplified, prepared graph
# --------------------------------------------------------------------------------------------


def _endpoints(
    n: int, su: npt.NDArray[np.int64], sv: npt.NDArray[np.int64]
) -> npt.NDArray[np.bool_]:
    """osmnx ``_is_endpoint`` rules 1-3 on the directed segment multigraph."""
    out_deg = np.bincount(su, minlength=n)
    in_deg = np.bincount(sv, minlength=n)
    loop = np.zeros(n, dtype=bool)
    loop[su[su == sv]] = True
    a = np.concatenate([su, sv])
    b = np.concatenate([sv, su])
    # exactly two distinct neighbours: smallest != largest and nothing else in between (O(m);
    # np.unique over the 2m pairs takes tens of seconds on a country)
    lowest = np.full(n, n, dtype=np.int64)
    np.minimum.at(lowest, a, b)
    highest = np.full(n, -1, dtype=np.int64)
    np.maximum.at(highest, a, b)
    third = np.zeros(n, dtype=bool)
    third[a[(b != lowest[a]) & (b != highest[a])]] = True
    two_neighbors = (highest >= 0) & (lowest != highest) & ~third
    deg = in_deg + out_deg
    return loop | (out_deg == 0) | (in_deg == 0) | ~(two_neighbors & ((deg == 2) | (deg == 4)))


def _simplify(
    n: int,
    su: npt.NDArray[np.int64],
    sv: npt.NDArray[np.int64],
    is_end: npt.NDArray[np.bool_],
) -> tuple[
    npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]
]:
    """Follow chains of non-endpoint nodes from every endpoint (osmnx ``_build_path``).

    Vectorised: every segment whose head is not an endpoint continues with the first out-segment
    of its head (in segment order) that does not go straight back; all chains then advance one
    segment per step together. A non-endpoint has exactly two neighbours, so the continuation is
    unique, and a chain ends at an endpoint (possibly its own start, for a loop).

    Returns per merged edge its first and last segment position in ``chain`` (flat array of
    segment indices in path order): ``(path_u, path_v, seg_start, chain)`` with ``seg_start``
    of length ``n_paths + 1``; paths are in the order of their first segment.
    """
    m = su.size
    order = np.argsort(su, kind="stable")
    out_deg = np.bincount(su, minlength=n)
    out_ptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(out_deg, out=out_ptr[1:])
    # continuation of every segment that ends at a non-endpoint
    nxt = np.full(m, -1, dtype=np.int64)
    open_seg = np.flatnonzero(~is_end[sv])
    head = sv[open_seg]
    for k in range(int(out_deg[head].max()) if head.size else 0):
        todo = nxt[open_seg] < 0
        has_k = todo & (out_deg[head] > k)
        cand = np.full(open_seg.size, -1, dtype=np.int64)
        cand[has_k] = order[out_ptr[head[has_k]] + k]
        ok = has_k & (sv[np.maximum(cand, 0)] != su[open_seg])
        nxt[open_seg[ok]] = cand[ok]
    starts = np.flatnonzero(is_end[su])
    # advance all chains together, one segment per step
    lengths = np.ones(starts.size, dtype=np.int64)
    cur = nxt[starts]
    alive = np.flatnonzero(cur >= 0)
    steps: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]] = []
    last = starts.copy()
    for _ in range(n + 1):
        if alive.size == 0:
            break
        segs = cur[alive]
        steps.append((alive, segs))
        last[alive] = segs
        lengths[alive] += 1
        cur_alive = nxt[segs]
        # a chain back at its own start node has closed a loop
        cur_alive[sv[segs] == su[starts[alive]]] = -1
        cur[alive] = cur_alive
        alive = alive[cur_alive >= 0]
    seg_start = np.zeros(starts.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=seg_start[1:])
    chain = np.empty(int(seg_start[-1]), dtype=np.int64)
    chain[seg_start[:-1]] = starts
    for k, (rows, segs) in enumerate(steps, 1):
        chain[seg_start[rows] + k] = segs
    return su[starts], sv[last], seg_start, chain


def _largest_scc(
    n: int, u: npt.NDArray[np.int64], v: npt.NDArray[np.int64], nodes: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], int]:
    """Mask of the nodes in the largest strongly connected component, and the component count."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    adj = sparse.csr_matrix((np.ones(u.size, dtype=np.int8), (u, v)), shape=(n, n))
    count, labels = connected_components(adj, directed=True, connection="strong")
    live = np.zeros(n, dtype=bool)
    live[nodes] = True
    sizes = np.bincount(labels[live], minlength=count)
    best = int(np.argmax(sizes))
    n_components = int((sizes > 0).sum())
    return labels == best, n_components


def build_array_graph(
    ways: _Ways,
    *,
    speed_rule: SpeedRule,
    congestion: float = 1.0,
    retain_all: bool = False,
) -> ArrayGraph:
    """Segments of drivable ways -> simplified graph with speeds, travel times and the SCC.

    Parameters
    ----------
    ways
        Ways read by :func:`load_pbf_arrays`.
    speed_rule
        ``speed_rule(highways, maxspeeds) -> (freeflow_speed_kph, imputed)`` with the sorted
        unique highway types and ``maxspeed`` values of an edge's ways.
    congestion
        Factor dividing every speed.
    retain_all
        Keep every component instead of only the largest strongly connected one.

    Returns
    -------
    ArrayGraph
    """
    if ways.counts:
        counts = np.asarray(ways.counts, dtype=np.int64)
    else:
        counts = np.fromiter((r.size for r in ways.refs), dtype=np.int64, count=len(ways.refs))
    refs = np.concatenate(ways.refs)
    lon = np.concatenate(ways.lon)
    lat = np.concatenate(ways.lat)
    ids, first, inv = np.unique(refs, return_index=True, return_inverse=True)
    inv = inv.ravel().astype(np.int64)
    node_lon, node_lat = lon[first], lat[first]
    n = ids.size
    # one segment per consecutive pair inside a way
    way_of_ref = np.repeat(np.arange(counts.size), counts)
    is_seg = np.ones(refs.size, dtype=bool)
    is_seg[np.cumsum(counts) - 1] = False
    a_idx = np.flatnonzero(is_seg)
    seg_way = way_of_ref[a_idx]
    a, b = inv[a_idx], inv[a_idx + 1]
    oneway = np.asarray(ways.oneway, dtype=np.int8)[seg_way]
    fwd_u = np.where(oneway == -1, b, a)
    fwd_v = np.where(oneway == -1, a, b)
    two = oneway == 0
    su = np.concatenate([fwd_u, b[two]])
    sv = np.concatenate([fwd_v, a[two]])
    s_way = np.concatenate([seg_way, seg_way[two]])
    s_len = great_circle_m(node_lat[su], node_lon[su], node_lat[sv], node_lon[sv])

    is_end = _endpoints(n, su, sv)
    path_u, path_v, seg_start, chain_l = _simplify(n, su, sv, is_end)
    pu = np.asarray(path_u, dtype=np.int64)
    pv = np.asarray(path_v, dtype=np.int64)
    start = np.asarray(seg_start, dtype=np.int64)
    chain = np.asarray(chain_l, dtype=np.int64)
    n_seg = np.diff(start)
    length = np.add.reduceat(s_len[chain], start[:-1]) if chain.size else np.zeros(0)

    # speeds: unique (highway set, maxspeed set) combinations, each through the speed rule once
    hw_names = sorted(ways.highway_names, key=ways.highway_names.__getitem__)
    ms_names = sorted(ways.maxspeed_values, key=ways.maxspeed_values.__getitem__)
    hw_way = np.asarray(ways.highway, dtype=np.int64)
    ms_way = np.asarray(ways.maxspeed, dtype=np.int64)
    chain_way = s_way[chain]
    hw_seg = hw_way[chain_way]
    ms_seg = ms_way[chain_way]
    freeflow = np.empty(pu.size, dtype=np.float64)
    imputed = np.empty(pu.size, dtype=bool)
    hw_idx = np.empty(pu.size, dtype=np.int64)  # index into hw_names of the rule's first type
    memo: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[float, bool, str]] = {}

    def rule_for(hws: tuple[str, ...], mss: tuple[str, ...]) -> tuple[float, bool, str]:
        hit = memo.get((hws, mss))
        if hit is None:
            speed, was_imputed = speed_rule(list(hws), list(mss))
            hit = memo[(hws, mss)] = (speed, was_imputed, hws[0])
        return hit

    if pu.size:
        # edges whose segments all come from ways with one highway type and one maxspeed
        # (nearly all): one rule call per distinct (type, maxspeed) pair
        lo = start[:-1]
        uniform = (np.minimum.reduceat(hw_seg, lo) == np.maximum.reduceat(hw_seg, lo)) & (
            np.minimum.reduceat(ms_seg, lo) == np.maximum.reduceat(ms_seg, lo)
        )
        n_ms = len(ms_names) + 1
        pair_key = hw_seg[lo] * n_ms + (ms_seg[lo] + 1)
        uniq_key, inverse = np.unique(pair_key[uniform], return_inverse=True)
        uniq = np.stack([uniq_key // n_ms, uniq_key % n_ms - 1], axis=1)
        speeds = np.empty(len(uniq))
        imp = np.empty(len(uniq), dtype=bool)
        first = np.empty(len(uniq), dtype=np.int64)
        for q, (h, m0) in enumerate(uniq.tolist()):
            hit = rule_for((hw_names[h],), () if m0 < 0 else (ms_names[m0],))
            speeds[q], imp[q], first[q] = hit[0], hit[1], h
        inverse = inverse.ravel()
        freeflow[uniform], imputed[uniform], hw_idx[uniform] = (
            speeds[inverse],
            imp[inverse],
            first[inverse],
        )
        # the few mixed edges: sorted unique types and maxspeeds, as the osmnx path does
        hw_l, ms_l, starts_l = hw_seg.tolist(), ms_seg.tolist(), start.tolist()
        index_of = {name: i for i, name in enumerate(hw_names)}
        for e in np.flatnonzero(~uniform).tolist():
            a, b = starts_l[e], starts_l[e + 1]
            hws = tuple(sorted({hw_names[c] for c in hw_l[a:b]}))
            mss = tuple(sorted({ms_names[c] for c in ms_l[a:b] if c >= 0}))
            hit = rule_for(hws, mss)
            freeflow[e], imputed[e], hw_idx[e] = hit[0], hit[1], index_of[hit[2]]
    speed_kph = freeflow / congestion
    travel_time = length / (speed_kph / 3.6)

    # geometry: the node sequence of each path (first node of each segment, then the last head)
    geom_counts = n_seg + 1
    geom_offsets = np.zeros(pu.size + 1, dtype=np.int64)
    np.cumsum(geom_counts, out=geom_offsets[1:])
    geom_nodes = np.empty(int(geom_offsets[-1]), dtype=np.int64)
    if chain.size:
        path_of_seg = np.repeat(np.arange(pu.size), n_seg)
        rank = np.arange(chain.size) - start[:-1][path_of_seg]
        geom_nodes[geom_offsets[:-1][path_of_seg] + rank] = su[chain]
        geom_nodes[geom_offsets[1:] - 1] = pv

    # keep the endpoints (osmnx drops interior nodes and rings without an endpoint)
    node_mask = is_end.copy()
    n_raw_nodes = int(is_end.sum())
    m_raw = int(pu.size)
    scc_mask, n_components = _largest_scc(n, pu, pv, np.flatnonzero(is_end))
    dropped_components = 0
    if not retain_all and n_components > 1:
        node_mask &= scc_mask
        dropped_components = n_components - 1
    keep_edge = node_mask[pu] & node_mask[pv]
    new_pos = np.full(n, -1, dtype=np.int64)
    kept_nodes = np.flatnonzero(node_mask)
    new_pos[kept_nodes] = np.arange(kept_nodes.size)
    # geometry nodes: compact onto the OSM nodes used by kept edges
    e_idx = np.flatnonzero(keep_edge)
    g_counts = geom_counts[e_idx]
    new_offsets = np.zeros(e_idx.size + 1, dtype=np.int64)
    np.cumsum(g_counts, out=new_offsets[1:])
    g_src = np.repeat(geom_offsets[e_idx] - new_offsets[:-1], g_counts) + np.arange(
        int(new_offsets[-1])
    )
    g_used, g_inv = np.unique(geom_nodes[g_src], return_inverse=True)

    used_idx = sorted_unique(hw_idx)
    names = tuple(sorted(hw_names[i] for i in used_idx.tolist()))
    code_of_idx = np.zeros(max(len(hw_names), 1), dtype=np.int16)
    for i in used_idx.tolist():
        code_of_idx[i] = names.index(hw_names[i])
    hw_code = code_of_idx[hw_idx]
    G = ArrayGraph(
        node_id=ids[kept_nodes],
        x=node_lon[kept_nodes],
        y=node_lat[kept_nodes],
        edge_u=new_pos[pu[e_idx]].astype(np.int32),
        edge_v=new_pos[pv[e_idx]].astype(np.int32),
        length_m=length[e_idx],
        travel_time_s=travel_time[e_idx],
        speed_kph=speed_kph[e_idx],
        freeflow_speed_kph=freeflow[e_idx],
        speed_imputed=imputed[e_idx],
        highway_code=hw_code[e_idx],
        geom_offsets=new_offsets,
        geom_nodes=g_inv.ravel().astype(np.int32),
        geom_x=node_lon[g_used],
        geom_y=node_lat[g_used],
        highway_names=names,
        graph={"crs": "epsg:4326"},
    )
    G.graph["planner_report"] = {
        "nodes_raw": n_raw_nodes,
        "edges_raw": m_raw,
        "osm_nodes": int(n),
        "osm_segments": int(su.size),
        "strong_components": n_components,
        "dropped_components": dropped_components,
        "dropped_nodes": n_raw_nodes - int(kept_nodes.size),
        "dropped_edges": m_raw - int(e_idx.size),
    }
    return G


def load_pbf_arrays(
    path: Path,
    *,
    is_drivable: WayFilter,
    speed_rule: SpeedRule,
    congestion: float = 1.0,
    retain_all: bool = False,
    progress: Callable[[str, float], None] | None = None,
    filter_keys: tuple[str, ...] | None = None,
    area: Area | None = None,
) -> ArrayGraph:
    """Read an ``.osm.pbf`` into an :class:`ArrayGraph` (no networkx, no XML).

    Parameters
    ----------
    path
        ``.osm.pbf`` file with complete ways.
    is_drivable
        Way filter on the way's tags (the osmnx ``drive`` filter of
        :mod:`planner.roads.network`).
    speed_rule
        Speed rule (see :func:`build_array_graph`).
    congestion
        Factor dividing every speed.
    retain_all
        Keep every component instead of only the largest strongly connected one.
    progress
        ``progress(message, fraction)`` for long stages (fraction may be ``nan`` when unknown).
    filter_keys
        The tag keys ``is_drivable`` reads; only those are looked up (much faster than
        turning every tag of every highway into Python objects). None passes all tags.
        With keys, ``is_drivable`` must be an exclusion filter (a way that fails with only
        its ``highway`` tag fails with any other tags too, as osmnx's ``drive`` filter):
        each highway type is tested alone once, and only the ways whose type passes have
        their other tags read.
    area
        Keep only the ways with a node inside this area (:mod:`planner.roads.trim`); the
        others are dropped while reading, never built. ``planner_report["area"]`` says what
        was kept.

    Returns
    -------
    ArrayGraph
        With ``graph["planner_report"]`` holding counts, ``osm_date`` and timings.

    Raises
    ------
    GraphError
        The file is not OSM data, is clipped, or has no drivable roads.
    """
    report = progress or (lambda message, fraction: logger.info("%s", message))
    started = time.perf_counter()
    report(f"Reading roads of {path.name}", 0.0)
    ways = _read_ways(
        path, is_drivable, _ReadProgress(path, report), filter_keys=filter_keys, area=area
    )
    read_s = time.perf_counter() - started
    n_refs = int(sum(ways.counts)) if ways.counts else sum(r.size for r in ways.refs)
    # about 6 s per million way nodes on the 2-core benchmark machine (benchmarks/README.md)
    report(
        f"Building the road graph from {len(ways):,} drivable ways ({n_refs:,} way nodes), "
        f"ETA {6e-6 * n_refs:.0f} s",
        0.6,
    )
    G = build_array_graph(ways, speed_rule=speed_rule, congestion=congestion, retain_all=retain_all)
    G.graph["planner_report"].update(
        {
            "drivable_ways": len(ways),
            "osm_date_newest_way": ways.newest or None,
            "read_time_s": round(read_s, 3),
            "build_time_s": round(time.perf_counter() - started - read_s, 3),
        }
    )
    if area is not None:
        G.graph["planner_report"]["area"] = area_report(
            area, ways_read=ways.ways_read, ways_kept=len(ways)
        )
    report("Road graph built", 1.0)
    return G
