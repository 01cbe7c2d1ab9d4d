"""Regions and road graphs: load, speeds, travel times, connectivity.

Road networks come from three places and all of them end in the same code path, the way osmnx's
``graph_from_*`` functions all end in ``graph_from_polygon``:

* a bundled region by name (see :data:`REGIONS`);
* a file: OSM XML (``.osm``, ``.osm.bz2``, ``.osm.gz``), OSM PBF (``.osm.pbf``) or a GraphML
  file saved earlier;
* a place name or a bounding box, downloaded with osmnx when online.

Each front door produces a raw osmnx graph, and :func:`prepare_graph` adds speeds and travel
times, keeps the largest strongly connected component and writes a report into
``G.graph["planner_report"]``. :func:`load_region` caches the prepared graph on disk (Parquet,
no pickle) under ``$PLANNER_CACHE_DIR``, keyed by the source (file sha256, place or bbox), the
speed settings and the code version.

Speeds
------
An edge's free-flow speed is its mapped ``maxspeed`` (parsed by osmnx, including implicit values
such as ``"DE:urban"``); where no usable ``maxspeed`` is mapped, it is imputed from
:data:`DEFAULT_SPEEDS_KPH` by highway type (override any entry with ``speeds=``), and highway types
missing from the table get :data:`FALLBACK_SPEED_KPH`; an edge that osmnx simplification merged
from ways of several highway types gets the mean of their speeds. List attributes of merged edges
(``osmid``, ``highway``, ``name``...) are sorted, so the prepared graph, and every result built on
it, does not depend on Python's hash seed. The congestion factor divides every speed:
``congestion=1.3`` makes every trip 30 % longer (peak hours). Edge attributes:

* ``length`` -- metres (from osmnx);
* ``freeflow_speed_kph`` -- mapped or imputed speed limit;
* ``speed_kph`` -- ``freeflow_speed_kph / congestion``, the speed used for routing;
* ``travel_time`` -- seconds, ``length / (speed_kph / 3.6)``;
* ``speed_imputed`` -- True where the speed came from the table rather than from the map.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import math
import re
import socket
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import networkx as nx
import numpy as np

from planner.errors import GraphError, InputError, NetworkError
from planner.roads import _graph_cache
from planner.roads.arrays import ArrayGraph, load_pbf_arrays
from planner.roads.osm_file import check_osm_file
from planner.roads.trim import Area, area_report, describe_kept, way_in_area
from planner.settings import DATA_DIR, array_loader_min_bytes, cache_dir, offline

logger = logging.getLogger(__name__)

#: A prepared road graph: the osmnx graph, or the compact array graph of large .osm.pbf files.
RoadGraph: TypeAlias = nx.MultiDiGraph | ArrayGraph

#: Bump when the prepared-graph format or preparation logic changes (invalidates caches).
GRAPH_CODE_VERSION = "network-2"

_DATA_DIR = DATA_DIR / "osm"


@dataclass(frozen=True)
class Region:
    """A bundled region: an OSM extract shipped in ``data/osm``.

    Attributes
    ----------
    name
        Short name used by :func:`load_region` (``"malta"``).
    title
        Human-readable name.
    drive_file
        OSM XML of the drivable network (already filtered like osmnx ``network_type="drive"``).
    features_file
        OSM XML of buildings, shops, crafts, amenities and offices.
    osm_date
        Replication timestamp of the source extract (ISO 8601, UTC).
    drive_sha256
        SHA-256 of ``drive_file``.
    features_sha256
        SHA-256 of ``features_file``.
    utm_epsg
        EPSG code of the UTM zone that contains the region (metric computations).
    bbox
        ``(west, south, east, north)`` in degrees of the drive graph's largest component.
    """

    name: str
    title: str
    drive_file: Path
    features_file: Path
    osm_date: str
    drive_sha256: str
    features_sha256: str
    utm_epsg: int
    bbox: tuple[float, float, float, float]


#: Bundled regions by name. Data © OpenStreetMap contributors, ODbL 1.0.
REGIONS: dict[str, Region] = {
    "malta": Region(
        name="malta",
        title="Malta",
        drive_file=_DATA_DIR / "malta-2018-08-27-drive.osm.bz2",
        features_file=_DATA_DIR / "malta-2018-08-27-features.osm.bz2",
        osm_date="2018-08-27T20:14:02Z",
        drive_sha256="2faf0677b6bf962f3ec6e4d9148c63fb4ba123b5932f5c6411ea2536d15c6880",
        features_sha256="661001ee9b4f34d5b457bf82b0002947937cdea6bf616156a7e21b229ac4a908",
        utm_epsg=32633,
        bbox=(14.3246, 35.8071, 14.5732, 35.9953),
    ),
    "liechtenstein": Region(
        name="liechtenstein",
        title="Liechtenstein",
        drive_file=_DATA_DIR / "liechtenstein-2026-03-29-drive.osm.bz2",
        features_file=_DATA_DIR / "liechtenstein-2026-03-29-features.osm.bz2",
        osm_date="2026-03-29T20:20:46Z",
        drive_sha256="92d7b60ca68ef81d27e3f142038ff3a4dbdfc5ebd31b389825fa134d9a2c31fb",
        features_sha256="fce4c8566062359edb6fc2de261c43590b28cc67a00ff5772383eb209e2ad5cf",
        utm_epsg=32632,
        bbox=(9.4766, 47.0521, 9.6174, 47.2547),
    ),
    "andorra": Region(
        name="andorra",
        title="Andorra",
        drive_file=_DATA_DIR / "andorra-2021-10-28-drive.osm.bz2",
        features_file=_DATA_DIR / "andorra-2021-10-28-features.osm.bz2",
        osm_date="2021-10-28T20:21:09Z",
        drive_sha256="d02ea8098a03eeb70ccc4bd15d524174e01c03e0b0bdaff8920d8794c687baee",
        features_sha256="0f3a29229ed83a74a88cc2182c0f2c2f952e2ec7e2d94b0d468b4649bc219dd3",
        utm_epsg=32631,
        bbox=(1.4197, 42.4332, 1.7378, 42.6314),
    ),
}

#: Default free-flow speed (km/h) per OSM highway type, used where no usable ``maxspeed`` is
#: mapped. These are typical European limits; override any entry with ``speeds=``.
DEFAULT_SPEEDS_KPH: dict[str, float] = {
    "motorway": 110.0,
    "motorway_link": 60.0,
    "trunk": 90.0,
    "trunk_link": 50.0,
    "primary": 70.0,
    "primary_link": 40.0,
    "secondary": 60.0,
    "secondary_link": 40.0,
    "tertiary": 50.0,
    "tertiary_link": 30.0,
    "unclassified": 40.0,
    "residential": 30.0,
    "living_street": 10.0,
    "road": 30.0,
    "busway": 30.0,
    "service": 20.0,
}

#: Speed (km/h) for highway types that are in neither ``DEFAULT_SPEEDS_KPH`` nor ``speeds``.
FALLBACK_SPEED_KPH = 30.0

#: File suffixes accepted by :func:`load_region`.
SUPPORTED_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz", ".xml", ".osm.pbf", ".pbf", ".graphml")

#: Hosts probed before a download; if none answers within the timeout we fail fast.
_ONLINE_HOSTS = (("overpass-api.de", 443), ("nominatim.openstreetmap.org", 443))

_FILE_FIX = "planner run --region path/to/file.osm.pbf"

# osmnx network_type="drive" filter (osmnx 2.1 ``_overpass._get_network_filter``), applied to
# OSM tags with unanchored regular expressions exactly as Overpass does.
_DRIVE_EXCLUDE = {
    "area": re.compile("yes"),
    "access": re.compile("private"),
    "motor_vehicle": re.compile("no"),
    "motorcar": re.compile("no"),
    "highway": re.compile(
        "abandoned|bridleway|bus_guideway|construction|corridor|cycleway|elevator|escalator|"
        "footway|no|path|pedestrian|planned|platform|proposed|raceway|razed|rest_area|service|"
        "services|steps|track"
    ),
    "service": re.compile("alley|driveway|emergency_access|parking|parking_aisle|private"),
}


# --------------------------------------------------------------------------------------------
# Region registry helpers
# --------------------------------------------------------------------------------------------


def _region(name: str) -> Region:
    try:
        return REGIONS[name.strip().lower()]
    except KeyError:
        msg = f"unknown region {name!r}; bundled regions are {sorted(REGIONS)}"
        raise InputError(msg) from None


def region_features_path(name: str) -> Path | None:
    """Return the bundled features file (``-features.osm.bz2``) of a region.

    Parameters
    ----------
    name
        A bundled region name, or anything else (a path, a place).

    Returns
    -------
    pathlib.Path or None
        ``None`` when ``name`` is not a bundled region.
    """
    region = REGIONS.get(str(name).strip().lower())
    return None if region is None else region.features_file


def region_osm_date(name: str) -> str:
    """Return the OSM data date (ISO 8601 UTC timestamp) of a bundled region.

    Parameters
    ----------
    name
        Bundled region name.

    Returns
    -------
    str
    """
    return _region(name).osm_date


def region_utm_epsg(name: str) -> int:
    """Return the EPSG code of a bundled region's UTM zone.

    Parameters
    ----------
    name
        Bundled region name.

    Returns
    -------
    int
    """
    return _region(name).utm_epsg


def utm_epsg_for(lon: float, lat: float) -> int:
    """Return the EPSG code of the WGS 84 UTM zone containing a point.

    Parameters
    ----------
    lon, lat
        Degrees.

    Returns
    -------
    int
    """
    zone = int((lon + 180.0) // 6.0) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def graph_utm_epsg(G: nx.MultiDiGraph) -> int:
    """Return the EPSG code of the UTM zone for a graph (from its report or its centre).

    Parameters
    ----------
    G
        Unprojected (EPSG:4326) graph.

    Returns
    -------
    int
    """
    report = G.graph.get("planner_report") or {}
    epsg = report.get("utm_epsg")
    if epsg:
        return int(epsg)
    xs = np.fromiter((d["x"] for _, d in G.nodes(data=True)), dtype=float)
    ys = np.fromiter((d["y"] for _, d in G.nodes(data=True)), dtype=float)
    return utm_epsg_for(float(np.median(xs)), float(np.median(ys)))


# --------------------------------------------------------------------------------------------
# Speeds and preparation (the one code path)
# --------------------------------------------------------------------------------------------


def _check_speeds(speeds: Mapping[str, float] | None) -> dict[str, float]:
    table = dict(DEFAULT_SPEEDS_KPH)
    if speeds is None:
        return table
    if not isinstance(speeds, Mapping):
        msg = "speeds must be a mapping of highway type to km/h, e.g. {'residential': 25}"
        raise InputError(msg)
    for key, value in speeds.items():
        if key not in DEFAULT_SPEEDS_KPH:
            msg = (
                f"unknown highway type {key!r} in speeds; allowed: "
                f"{', '.join(sorted(DEFAULT_SPEEDS_KPH))}"
            )
            raise InputError(msg, field="speeds")
        try:
            speed = float(value)
        except (TypeError, ValueError):
            speed = math.nan
        if not (math.isfinite(speed) and 0 < speed <= 200):
            msg = (
                f"speed for highway type {key!r} must be a number of km/h in (0, 200], "
                f"got {value!r}"
            )
            raise InputError(msg, field="speeds")
        table[str(key)] = speed
    return table


def _check_congestion(congestion: float) -> float:
    try:
        value = float(congestion)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0.1 <= value <= 10.0):
        msg = (
            f"congestion must be a factor in [0.1, 10] that multiplies travel times "
            f"(1.0 free flow, 1.3 peak hours), got {congestion!r}"
        )
        raise InputError(msg, field="congestion")
    return value


def _mapped_speed_kph(maxspeed: Any) -> float | None:
    """Parse an OSM maxspeed value the way osmnx does; None where it cannot be used."""
    from osmnx import routing

    if maxspeed is None:
        return None
    if isinstance(maxspeed, list):
        value = routing._collapse_multiple_maxspeed_values(maxspeed, agg=np.mean)
        if isinstance(value, str):
            value = routing._clean_maxspeed(value)
    else:
        value = routing._clean_maxspeed(str(maxspeed))
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) and value > 0 else None


def _highway_type(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value) if value is not None else ""


def _imputed_speed_kph(value: Any, table: Mapping[str, float]) -> float:
    """Speed for an edge without a usable ``maxspeed``: the mean over its highway types.

    osmnx simplification merges the ``highway`` tags of the ways it joins into a list; the list
    is canonicalised (sorted) first, and the mean of the table speeds of its distinct types does
    not depend on the order either.
    """
    values = value if isinstance(value, list) else [value]
    types = sorted({"" if v is None else str(v) for v in values}) or [""]
    speeds = [table.get(t, FALLBACK_SPEED_KPH) for t in types]
    return math.fsum(speeds) / len(speeds)


def _canonical_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool | int | float | str):
        return (type(value).__name__, value)
    return (type(value).__name__, repr(value))


def _canonical_attribute(value: Any) -> Any:
    """Sort and de-duplicate a list attribute, so it does not depend on set iteration order.

    osmnx builds the list attributes of simplified edges (``osmid``, ``highway``, ``name``,
    ``maxspeed``, ``lanes``...) from Python sets, whose order of strings changes with the hash
    seed (``PYTHONHASHSEED``); sorting them makes the graph a function of the input alone.
    """
    if not isinstance(value, list):
        return value
    unique: dict[tuple[str, Any], Any] = {}
    for item in value:
        unique.setdefault(_canonical_key(item), item)
    return [unique[k] for k in sorted(unique)]


def canonicalize_graph(G: nx.MultiDiGraph) -> None:
    """Sort the list-valued node and edge attributes of ``G`` in place.

    Parameters
    ----------
    G
        Raw osmnx graph; list attributes left by simplification are sorted and de-duplicated.
    """
    for _, data in G.nodes(data=True):
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = _canonical_attribute(value)
    for _, _, data in G.edges(data=True):
        for key, value in data.items():
            if isinstance(value, list):
                data[key] = _canonical_attribute(value)


def prepare_graph(
    G: nx.MultiDiGraph,
    *,
    speeds: Mapping[str, float] | None = None,
    congestion: float = 1.0,
    retain_all: bool = False,
) -> nx.MultiDiGraph:
    """Add speeds and travel times, keep the largest strongly connected component, report.

    This is the single code path every source goes through.

    Parameters
    ----------
    G
        Raw osmnx graph (EPSG:4326) whose edges carry ``length`` in metres and ``highway``.
    speeds
        Free-flow speeds in km/h by highway type, overriding entries of
        :data:`DEFAULT_SPEEDS_KPH`; used only where ``maxspeed`` is not mapped.
    congestion
        Factor that multiplies every travel time (1.0 free flow, 1.3 peak hours).
    retain_all
        If False (default), keep only the largest strongly connected component, so that every
        node can reach every other; if True, keep everything (unreachable pairs are ``inf``).

    Returns
    -------
    networkx.MultiDiGraph
        A new graph; ``G.graph["planner_report"]`` holds the preparation report (edge counts,
        ``imputed_speed_share``, dropped components...).

    Raises
    ------
    GraphError
        If the graph has no edges.
    """
    table = _check_speeds(speeds)
    factor = _check_congestion(congestion)
    if G.number_of_edges() == 0:
        msg = "the road graph has no edges: the source contains no drivable roads"
        raise GraphError(msg)
    G = G.copy()
    canonicalize_graph(G)
    n_raw, m_raw = G.number_of_nodes(), G.number_of_edges()

    for _, _, data in G.edges(data=True):
        length_m = float(data.get("length", math.nan))
        if not (math.isfinite(length_m) and length_m >= 0):
            msg = "an edge has no valid 'length' in metres; build the graph with osmnx"
            raise GraphError(msg)
        speed, data["speed_imputed"] = _edge_speed_kph(
            data.get("highway"), data.get("maxspeed"), table
        )
        data["freeflow_speed_kph"] = speed
        data["speed_kph"] = speed / factor
        data["travel_time"] = length_m / (speed / factor / 3.6)

    components = list(nx.strongly_connected_components(G))
    components.sort(key=len, reverse=True)
    dropped_nodes = 0
    dropped_edges = 0
    dropped_components = 0
    if not retain_all and len(components) > 1:
        keep = components[0]
        dropped_components = len(components) - 1
        dropped_nodes = n_raw - len(keep)
        # rebuild in the original node and edge order (not the order of the ``keep`` set)
        H = nx.MultiDiGraph(**G.graph)
        H.add_nodes_from((n, d) for n, d in G.nodes(data=True) if n in keep)
        H.add_edges_from(
            (u, v, k, d) for u, v, k, d in G.edges(keys=True, data=True) if u in keep and v in keep
        )
        dropped_edges = m_raw - H.number_of_edges()
        G = H
    imputed = 0
    imputed_length_m = 0.0
    total_length_m = 0.0
    imputed_types: Counter[str] = Counter()
    for _, _, data in G.edges(data=True):
        total_length_m += data["length"]
        if data["speed_imputed"]:
            imputed += 1
            imputed_length_m += data["length"]
            imputed_types[_highway_type(data.get("highway"))] += 1
    xs = [d["x"] for _, d in G.nodes(data=True)]
    ys = [d["y"] for _, d in G.nodes(data=True)]
    bbox = (min(xs), min(ys), max(xs), max(ys))
    report = dict(G.graph.get("planner_report") or {})
    report.update(
        {
            "nodes_raw": n_raw,
            "edges_raw": m_raw,
            "nodes": G.number_of_nodes(),
            "edges": G.number_of_edges(),
            "length_km": round(float(total_length_m) / 1000.0, 3),
            "imputed_speed_share": imputed / G.number_of_edges(),
            "imputed_speed_length_share": (
                imputed_length_m / total_length_m if total_length_m > 0 else 0.0
            ),
            "imputed_edges_by_highway": dict(imputed_types.most_common()),
            "speeds_kph": table,
            "fallback_speed_kph": FALLBACK_SPEED_KPH,
            "congestion": factor,
            "retain_all": bool(retain_all),
            "strong_components": len(components),
            "dropped_components": dropped_components,
            "dropped_nodes": dropped_nodes,
            "dropped_edges": dropped_edges,
            "bbox": list(bbox),
            "utm_epsg": report.get("utm_epsg")
            or utm_epsg_for((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2),
            "code_version": GRAPH_CODE_VERSION,
        }
    )
    G.graph["planner_report"] = report
    if dropped_nodes:
        logger.info(
            "kept the largest strongly connected component: dropped %d components "
            "(%d nodes, %d edges)",
            dropped_components,
            dropped_nodes,
            dropped_edges,
        )
    return G


# --------------------------------------------------------------------------------------------
# Sources (front doors) -> raw osmnx graph
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Source:
    kind: str  # "bundled" | "file" | "place" | "bbox"
    label: str  # what the user asked for, for messages and the report
    fingerprint: str  # identifies the content for the cache key
    path: Path | None = None
    region: Region | None = None
    query: Any = None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _suffix(path: Path) -> str:
    name = path.name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return path.suffix.lower()


def _looks_like_path(text: str) -> bool:
    lowered = text.lower()
    return (
        "/" in text
        or "\\" in text
        or any(lowered.endswith(s) for s in (*SUPPORTED_SUFFIXES, ".bz2", ".gz"))
    )


def _resolve_source(name_or_path: Any) -> _Source:
    if isinstance(name_or_path, Sequence) and not isinstance(name_or_path, str | bytes):
        bbox = _check_bbox(name_or_path)
        return _Source("bbox", f"bbox {bbox}", f"bbox:{bbox}", query=bbox)
    if isinstance(name_or_path, Path) or (
        isinstance(name_or_path, str) and _looks_like_path(name_or_path)
    ):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            msg = (
                "file not found; give the path of an .osm, .osm.bz2, .osm.gz, .osm.pbf or "
                f".graphml file, or a bundled region name ({', '.join(sorted(REGIONS))})"
            )
            raise InputError(msg, file=path)
        suffix = _suffix(path)
        if suffix not in SUPPORTED_SUFFIXES:
            msg = (
                f"unsupported road network file type {suffix!r}; use one of "
                f"{list(SUPPORTED_SUFFIXES)}"
            )
            raise InputError(msg, file=path)
        check_osm_file(path)  # every loader reads the file only after this one check
        return _Source("file", str(path), f"sha256:{_sha256_file(path)}", path=path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        msg = (
            "region must be a bundled name, a file path, a place name or a bounding box "
            f"(west, south, east, north); got {name_or_path!r}"
        )
        raise InputError(msg)
    key = name_or_path.strip().lower()
    if key in REGIONS:
        region = REGIONS[key]
        return _Source(
            "bundled",
            region.name,
            f"sha256:{_sha256_file(region.drive_file)}",
            path=region.drive_file,
            region=region,
        )
    place = name_or_path.strip()
    return _Source("place", place, f"place:{place}", query=place)


def _check_bbox(bbox: Sequence[Any]) -> tuple[float, float, float, float]:
    try:
        west, south, east, north = (float(v) for v in bbox)
    except (TypeError, ValueError):
        msg = f"a bounding box is (west, south, east, north) in degrees, got {bbox!r}"
        raise InputError(msg) from None
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        msg = (
            f"invalid bounding box {tuple(bbox)!r}: expected (west, south, east, north) with "
            "west < east in [-180, 180] and south < north in [-90, 90]"
        )
        raise InputError(msg)
    return (west, south, east, north)


def _way_coords(way: Any) -> list[tuple[float, float]]:
    """``(lon, lat)`` of a way's nodes whose location is known."""
    out = []
    for node in way.nodes:
        if node.location.valid():
            out.append((node.location.lon, node.location.lat))
    return out


def _filter_drivable(src: Path, dst: Path, area: Area | None = None) -> dict[str, Any]:
    """Write the drivable ways of ``src`` (XML or PBF) and their nodes to ``dst`` (OSM XML);
    with ``area``, only the ways with a node inside it (the trim step)."""
    import osmium

    seen: Counter[str] = Counter()
    kept = 0
    drivable = 0
    newest = ""
    header_date = None
    try:
        header = osmium.io.Reader(str(src), osmium.osm.osm_entity_bits.NOTHING).header()
        header_date = header.get("osmosis_replication_timestamp") or None
        with osmium.BackReferenceWriter(
            str(dst), ref_src=str(src), overwrite=True, remove_tags=False
        ) as writer:
            processor = osmium.FileProcessor(str(src), osmium.osm.WAY)
            if area is not None:
                processor = (
                    osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY)
                    .with_locations()
                    .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                )
            for way in processor:
                tags = dict(way.tags)
                hwy = tags.get("highway")
                if hwy is None:
                    continue
                seen[hwy] += 1
                if any(k in tags and rx.search(tags[k]) for k, rx in _DRIVE_EXCLUDE.items()):
                    continue
                drivable += 1
                if area is not None and not way_in_area(area, _way_coords(way)):
                    continue
                writer.add_way(way)
                kept += 1
                stamp = getattr(way, "timestamp", None)
                if stamp is not None and stamp.year > 1970:
                    iso = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
                    newest = max(newest, iso)
    except RuntimeError as exc:
        msg = (
            f"cannot read the file as OpenStreetMap data ({exc}); check that it is a complete "
            ".osm or .osm.pbf download"
        )
        raise GraphError(f"{src}: {msg}") from exc
    if kept == 0 and drivable and area is not None:
        msg = (
            f"has no drivable road {area.describe()} (box "
            f"{','.join(f'{v:.4f}' for v in area.bbox)}): check that the customers or the box "
            "lie in this region, or choose the region that holds them"
        )
        raise GraphError(f"{src}: {msg}")
    if kept == 0:
        found = ", ".join(f"{k} x{n}" for k, n in seen.most_common(8)) or "no ways tagged highway"
        msg = (
            f"contains no drivable roads (found: {found}). Use an extract that includes car "
            "roads (highway=primary, secondary, residential, ...), not only footways or "
            "buildings, or use a bundled region"
        )
        raise GraphError(f"{src}: {msg}")
    info: dict[str, Any] = {"osm_date": header_date or newest or None, "drivable_ways": kept}
    if area is not None:
        info["area"] = area_report(area, ways_read=drivable, ways_kept=kept)
    return info


def _graph_from_osm_xml(path: Path, label: str) -> nx.MultiDiGraph:
    import osmnx as ox

    try:
        return ox.graph_from_xml(path, simplify=True, retain_all=True)
    except ValueError as exc:
        if "missing nodes" in str(exc):
            msg = (
                "looks like a clipped extract: some roads reference nodes that are not in the "
                "file (osmnx: 'edges missing nodes'). Cut the extract with complete ways, e.g. "
                "'osmium extract --strategy complete_ways', or download a whole country or "
                "region from download.geofabrik.de"
            )
            raise GraphError(f"{label}: {msg}") from exc
        raise GraphError(f"{label}: cannot build a road graph: {exc}") from exc
    except Exception as exc:
        if type(exc).__name__ in {"InsufficientResponseError", "SAXParseException"}:
            msg = f"cannot build a road graph ({exc}); check that the file is OSM XML with roads"
            raise GraphError(f"{label}: {msg}") from exc
        raise


def _raw_graph_from_file(
    path: Path, *, prefiltered: bool, area: Area | None = None
) -> tuple[nx.MultiDiGraph, dict]:
    suffix = _suffix(path)
    info: dict[str, Any] = {}
    if suffix == ".graphml":
        import osmnx as ox

        try:
            G = ox.load_graphml(path)
        except Exception as exc:
            msg = f"cannot read GraphML ({exc}); save it with osmnx.save_graphml"
            raise GraphError(f"{path}: {msg}") from exc
        if G.graph.get("crs") and str(G.graph["crs"]).lower() not in {"epsg:4326", "wgs84"}:
            msg = (
                f"the graph is projected ({G.graph['crs']}); save the unprojected graph "
                "(EPSG:4326) or call osmnx.project_graph(G, to_latlong=True) first"
            )
            raise GraphError(f"{path}: {msg}")
        return G, info
    if suffix not in {".osm.pbf", ".pbf"} and prefiltered and area is None:
        return _graph_from_osm_xml(path, str(path)), info
    with tempfile.TemporaryDirectory(prefix="planner-osm-") as tmp:
        filtered = Path(tmp) / "drive.osm"
        info = _filter_drivable(path, filtered, area)
        G = _graph_from_osm_xml(filtered, str(path))
    return G, info


@contextlib.contextmanager
def _osmnx_settings(**values: Any) -> Iterator[None]:
    """Temporarily set osmnx settings, restoring them afterwards."""
    import osmnx as ox

    old = {k: getattr(ox.settings, k) for k in values}
    try:
        for k, v in values.items():
            setattr(ox.settings, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(ox.settings, k, v)


def check_online(*, timeout_s: float = 3.0) -> bool:
    """Return True if an OpenStreetMap download host accepts a connection within the timeout.

    The probe (DNS lookup and TCP connect) runs in a daemon thread, so a resolver that hangs
    offline cannot block the caller for longer than ``timeout_s``.

    Parameters
    ----------
    timeout_s
        Seconds to wait in total.

    Returns
    -------
    bool
    """
    if offline():
        return False
    reachable = threading.Event()

    def probe() -> None:
        for host, port in _ONLINE_HOSTS:
            try:
                with socket.create_connection((host, port), timeout=timeout_s):
                    reachable.set()
                    return
            except OSError:
                continue

    thread = threading.Thread(target=probe, name="planner-online-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return reachable.is_set()


def _raw_graph_online(source: _Source, *, timeout_s: float) -> nx.MultiDiGraph:
    if not check_online(timeout_s=min(timeout_s, 3.0)):
        msg = (
            f"cannot download {source.label!r}: OpenStreetMap servers are unreachable (offline?). "
            f"Use a file instead: {_FILE_FIX} (or a bundled region: {', '.join(sorted(REGIONS))})"
        )
        raise NetworkError(msg)
    import osmnx as ox

    try:
        with _osmnx_settings(
            requests_timeout=int(max(1, timeout_s)),
            cache_folder=str(cache_dir("osmnx-http")),
            use_cache=True,
            log_console=False,
        ):
            if source.kind == "place":
                return ox.graph_from_place(
                    source.query, network_type="drive", simplify=True, retain_all=True
                )
            return ox.graph_from_bbox(
                source.query, network_type="drive", simplify=True, retain_all=True
            )
    except (ConnectionError, TimeoutError, OSError) as exc:
        msg = f"download of {source.label!r} failed ({exc}). Use a file instead: {_FILE_FIX}"
        raise NetworkError(msg) from exc
    except Exception as exc:
        name = type(exc).__name__
        if name in {"InsufficientResponseError", "ResponseStatusCodeError"} or "request" in str(
            type(exc).__module__
        ):
            msg = f"download of {source.label!r} failed ({exc}). Use a file instead: {_FILE_FIX}"
            raise NetworkError(msg) from exc
        if isinstance(exc, TypeError | ValueError):
            raise InputError(f"cannot geocode or download {source.label!r}: {exc}") from exc
        raise


# --------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------


def _cache_key(
    source: _Source,
    table: Mapping[str, float],
    congestion: float,
    retain_all: bool,
    area: Area | None = None,
) -> str:
    payload = json.dumps(
        {
            "source": source.fingerprint if area is None else f"{source.fingerprint}|{area.key()}",
            "speeds": sorted(table.items()),
            "fallback": FALLBACK_SPEED_KPH,
            "congestion": congestion,
            "retain_all": bool(retain_all),
            "code": GRAPH_CODE_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:32]


#: Road-graph loaders :func:`load_region` accepts (``"auto"`` picks by file size).
LOADERS = ("auto", "osmnx", "arrays")


def _is_drivable(tags: Mapping[str, str]) -> bool:
    """The osmnx ``drive`` filter on one way's tags (:data:`_DRIVE_EXCLUDE`)."""
    return "highway" in tags and not any(
        k in tags and rx.search(tags[k]) for k, rx in _DRIVE_EXCLUDE.items()
    )


def _edge_speed_kph(highway: Any, maxspeed: Any, table: Mapping[str, float]) -> tuple[float, bool]:
    """Free-flow speed of an edge and whether it was imputed: its mapped ``maxspeed``, else the
    mean table speed of its highway types. The one speed rule of both loaders."""
    mapped = _mapped_speed_kph(maxspeed)
    if mapped is None:
        return _imputed_speed_kph(highway, table), True
    return mapped, False


def _choose_loader(source: _Source, loader: str) -> str:
    """``"arrays"`` or ``"osmnx"`` for a source, checking the user's choice."""
    if loader not in LOADERS:
        raise InputError(f"unknown loader {loader!r}; allowed: {list(LOADERS)}", field="loader")
    is_pbf = source.path is not None and _suffix(source.path) in {".osm.pbf", ".pbf"}
    if loader == "arrays" and not (source.kind == "file" and is_pbf):
        msg = (
            f"the array loader reads .osm.pbf files only; {source.label!r} is not one. Use "
            "loader='osmnx' (or 'auto'), or convert the file: "
            "'osmium cat in.osm -o out.osm.pbf'"
        )
        raise InputError(msg, field="loader")
    if loader != "auto":
        return loader
    if (
        source.kind == "file"
        and is_pbf
        and source.path is not None
        and source.path.stat().st_size >= array_loader_min_bytes()
    ):
        return "arrays"
    return "osmnx"


def _pbf_header_date(path: Path) -> str | None:
    import osmium

    try:
        header = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING).header()
    except RuntimeError:
        return None
    return header.get("osmosis_replication_timestamp") or None


def _source_bbox(source: _Source) -> tuple[float, float, float, float] | None:
    """The extent a source declares (a bundled region's, a PBF header's box), if known."""
    if source.region is not None:
        return source.region.bbox
    if source.path is None or _suffix(source.path) not in {".osm.pbf", ".pbf"}:
        return None
    import osmium

    try:
        box = osmium.io.Reader(str(source.path), osmium.osm.osm_entity_bits.NOTHING).header().box()
    except RuntimeError:
        return None
    if not box.valid():
        return None
    return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)


def _effective_area(source: _Source, area: Area | None) -> Area | None:
    """The area to trim to, or None when there is nothing to trim (no area, an online
    source, or an area that covers the whole file)."""
    if area is None or source.kind not in {"bundled", "file"}:
        return None
    if source.path is not None and _suffix(source.path) == ".graphml":
        return None
    extent = _source_bbox(source)
    if extent is not None and area.covers(extent):
        logger.info("%s lies inside %s: nothing to trim", source.label, area.describe())
        return None
    return area


def _load_arrays(
    source: _Source,
    *,
    table: Mapping[str, float],
    factor: float,
    retain_all: bool,
    key: str,
    cache: bool,
    started: float,
    progress: Callable[[str, float], None] | None = None,
    area: Area | None = None,
) -> ArrayGraph:
    """The array path of :func:`load_region` (large ``.osm.pbf`` files), cached as ``.npz``."""
    assert source.path is not None
    cache_path = cache_dir("graph-arrays") / f"{key}.npz" if cache else None
    if cache_path is not None:
        G = ArrayGraph.load(cache_path)
        if G is not None:
            G.graph["planner_report"]["cache_hit"] = True
            G.graph["planner_report"]["load_time_s"] = time.perf_counter() - started
            logger.info("loaded %s (array graph) from cache %s", source.label, cache_path)
            return G

    def rule(highways: list[str], maxspeeds: list[str]) -> tuple[float, bool]:
        hwy: Any = highways if len(highways) > 1 else highways[0]
        ms: Any = (maxspeeds if len(maxspeeds) > 1 else maxspeeds[0]) if maxspeeds else None
        return _edge_speed_kph(hwy, ms, table)

    G = load_pbf_arrays(
        source.path,
        is_drivable=_is_drivable,
        speed_rule=rule,
        congestion=factor,
        retain_all=retain_all,
        filter_keys=tuple(_DRIVE_EXCLUDE),
        progress=progress,
        area=area,
    )
    report = G.graph["planner_report"]
    if G.number_of_edges() == 0:
        raise GraphError(f"{source.path}: the road graph has no edges after preparation")
    length = G.length_m
    imputed = G.speed_imputed
    bbox = (float(G.x.min()), float(G.y.min()), float(G.x.max()), float(G.y.max()))
    names = np.asarray(G.highway_names, dtype=object)
    imputed_types = Counter(names[G.highway_code[imputed]].tolist())
    report.update(
        {
            "source": source.label,
            "source_kind": source.kind,
            "source_fingerprint": source.fingerprint,
            "osm_date": _pbf_header_date(source.path) or report.get("osm_date_newest_way"),
            "loader": "arrays",
            "nodes": G.number_of_nodes(),
            "edges": G.number_of_edges(),
            "length_km": round(float(length.sum()) / 1000.0, 3),
            "imputed_speed_share": float(imputed.mean()),
            "imputed_speed_length_share": float(length[imputed].sum() / max(length.sum(), 1e-9)),
            "imputed_edges_by_highway": dict(imputed_types.most_common()),
            "speeds_kph": dict(table),
            "fallback_speed_kph": FALLBACK_SPEED_KPH,
            "congestion": factor,
            "retain_all": bool(retain_all),
            "bbox": list(bbox),
            "utm_epsg": utm_epsg_for((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2),
            "code_version": GRAPH_CODE_VERSION,
        }
    )
    report["kept"] = describe_kept(report)
    if cache_path is not None:
        try:
            G.save(cache_path)
        except OSError as exc:
            logger.warning("could not write road-array cache %s: %s", cache_path, exc)
    report["cache_hit"] = False
    report["load_time_s"] = time.perf_counter() - started
    return G


def load_region(
    name_or_path: str | Path | Sequence[float],
    *,
    speeds: Mapping[str, float] | None = None,
    congestion: float = 1.0,
    retain_all: bool = False,
    cache: bool = True,
    timeout_s: float = 60.0,
    loader: str = "auto",
    progress: Callable[[str, float], None] | None = None,
    area: Area | None = None,
) -> RoadGraph:
    """Load a road graph with travel times from a bundled region, a file or a download.

    Parameters
    ----------
    name_or_path
        A bundled region name (``"malta"``, ``"liechtenstein"``, ``"andorra"``); a path to an
        ``.osm``/``.osm.bz2``/``.osm.gz``/``.osm.pbf`` file (filtered to the drivable network
        like osmnx ``network_type="drive"``) or to a ``.graphml`` saved earlier; a place name
        (downloaded with osmnx); or a bounding box ``(west, south, east, north)`` in degrees.
    speeds
        Free-flow speeds in km/h by highway type for edges without a mapped ``maxspeed``,
        overriding entries of :data:`DEFAULT_SPEEDS_KPH`.
    congestion
        Factor that multiplies every travel time (1.0 free flow, 1.3 peak hours).
    retain_all
        Keep every component instead of only the largest strongly connected one.
    cache
        Read and write the prepared graph from/to the disk cache under ``$PLANNER_CACHE_DIR``.
    timeout_s
        Download timeout in seconds (place and bbox only). Reachability of the servers is probed
        first with a 3 s timeout, so offline use fails within seconds.
    loader
        ``"auto"`` (default): ``.osm.pbf`` files of at least ``$PLANNER_ARRAY_LOADER_MB``
        (default 20 MB) go through the compact array loader (:mod:`planner.roads.arrays`),
        everything else through osmnx; ``"osmnx"`` or ``"arrays"`` force one. The choice is
        logged and recorded as ``planner_report["loader"]``.
    progress
        ``progress(message, fraction)`` while the array loader reads and builds a file
        (with an estimated time to completion; default: log at INFO level), and at the stages
        of the osmnx loader (reading, preparing).
    area
        Trim a road file or bundled region to this area while reading it
        (:mod:`planner.roads.trim`: the customers' extent plus a margin, or a box): only the
        drivable ways with a node inside it are built. Ignored for place names, boxes to
        download, GraphML files and areas that cover the whole file. The graph is cached per
        (file, area); ``planner_report["kept"]`` says what was kept.

    Returns
    -------
    networkx.MultiDiGraph or planner.roads.arrays.ArrayGraph
        Road graph in EPSG:4326; every edge has ``length`` (m), ``speed_kph`` and
        ``travel_time`` (s). ``G.graph["planner_report"]`` describes the source, OSM date,
        imputed speed share, dropped components and the loader.

    Raises
    ------
    InputError
        Unknown file, unsupported suffix or malformed options.
    GraphError
        The file is empty, not OSM data, clipped, or has no drivable roads.
    NetworkError
        A download was needed and the network is unavailable.
    """
    started = time.perf_counter()
    source = _resolve_source(name_or_path)
    table = _check_speeds(speeds)
    factor = _check_congestion(congestion)
    area = _effective_area(source, area)
    key = _cache_key(source, table, factor, retain_all, area)
    chosen = _choose_loader(source, loader)
    if chosen == "arrays":
        logger.info(
            "road network %s: large .osm.pbf, using the compact array loader "
            "(planner.roads.arrays)",
            source.label,
        )
        return _load_arrays(
            source,
            table=table,
            factor=factor,
            retain_all=retain_all,
            key=key,
            cache=cache,
            started=started,
            progress=progress,
            area=area,
        )
    cache_path = cache_dir("graphs") / key if cache else None
    built_from = {"key": key, "source": source.fingerprint, "code": GRAPH_CODE_VERSION}
    if cache_path is not None:
        G = _graph_cache.read_graph(cache_path, built_from=built_from)
        if G is not None:
            G.graph["planner_report"]["cache_hit"] = True
            G.graph["planner_report"]["load_time_s"] = time.perf_counter() - started
            logger.info("loaded %s from cache %s", source.label, cache_path)
            return G

    stage = progress or (lambda message, fraction: None)
    info: dict[str, Any] = {}
    if source.kind in {"bundled", "file"}:
        assert source.path is not None
        stage(f"Reading the roads of {source.path.name} (osmnx loader)", 0.0)
        raw, info = _raw_graph_from_file(
            source.path, prefiltered=source.kind == "bundled", area=area
        )
    else:
        raw = _raw_graph_online(source, timeout_s=timeout_s)
    raw.graph["planner_report"] = {
        "source": source.label,
        "source_kind": source.kind,
        "source_fingerprint": source.fingerprint,
        "osm_date": source.region.osm_date if source.region else info.get("osm_date"),
        "utm_epsg": source.region.utm_epsg if source.region else None,
    }
    stage(
        f"Preparing the road graph: {raw.number_of_edges():,} edges, speeds and travel times", 0.7
    )
    G = prepare_graph(raw, speeds=table, congestion=factor, retain_all=retain_all)
    report = G.graph["planner_report"]
    report["loader"] = "osmnx"
    if source.kind in {"place", "bbox"}:
        report["osm_date"] = G.graph.get("created_date")
    if "area" in info:
        report["area"] = info["area"]
    report["kept"] = describe_kept(report)
    if cache_path is not None:
        try:
            _graph_cache.write_graph(G, cache_path, built_from=built_from)
        except (OSError, TypeError) as exc:
            logger.warning("could not write graph cache %s: %s", cache_path, exc)
    report["cache_hit"] = False
    report["load_time_s"] = time.perf_counter() - started
    return G


#: Fingerprints known inside :func:`fingerprint_once` blocks of this context (thread), by
#: ``id(graph)``; the graph itself is held so that its id cannot be reused meanwhile.
_KNOWN_FINGERPRINTS: contextvars.ContextVar[dict[int, tuple[object, str]] | None] = (
    contextvars.ContextVar("planner_known_fingerprints", default=None)
)


@contextlib.contextmanager
def fingerprint_once(
    G: nx.MultiDiGraph | ArrayGraph, fingerprint: str | None = None
) -> Iterator[str]:
    """Hash ``G`` once for the duration of a ``with`` block.

    :func:`graph_fingerprint` re-hashes a networkx graph on every call (0.2-0.4 s for a
    country), so that a graph edited in place between two calls never meets a cache entry of
    its old self. A caller that does several steps on one graph without editing it (snap the
    customers, snap the sites, compute the matrices) wraps them in this block: inside it, in
    this thread, ``graph_fingerprint(G)`` returns the value computed on entry. Outside the
    block every call hashes again. Blocks nest; the inner one reuses the outer value.

    Parameters
    ----------
    G
        The graph, which must not be edited in place inside the block.
    fingerprint
        Its fingerprint when the caller already knows it (a server keeps one per read-only
        graph it shares): trusted, not computed again.

    Yields
    ------
    str
        The fingerprint of ``G``.
    """
    known = _KNOWN_FINGERPRINTS.get() or {}
    entry = known.get(id(G))
    if entry is not None and entry[0] is G:
        yield entry[1]
        return
    if fingerprint is None:
        fingerprint = _hash_graph(G)
    token = _KNOWN_FINGERPRINTS.set({**known, id(G): (G, fingerprint)})
    try:
        yield fingerprint
    finally:
        _KNOWN_FINGERPRINTS.reset(token)


def graph_fingerprint(G: nx.MultiDiGraph | ArrayGraph) -> str:
    """Return a short hash of a graph's nodes, edges and travel times (for cache keys).

    Computed on every call (a graph edited in place gets a new fingerprint), except inside a
    :func:`fingerprint_once` block of ``G``, which hashes it once.

    Parameters
    ----------
    G
        Graph whose edges carry ``travel_time``.

    Returns
    -------
    str
    """
    entry = (_KNOWN_FINGERPRINTS.get() or {}).get(id(G))
    if entry is not None and entry[0] is G:
        return entry[1]
    return _hash_graph(G)


def _hash_graph(G: nx.MultiDiGraph | ArrayGraph) -> str:
    if isinstance(G, ArrayGraph):
        return G.fingerprint()
    digest = hashlib.sha256()
    nodes = np.fromiter(G.nodes, dtype=np.int64, count=G.number_of_nodes())
    digest.update(nodes.tobytes())
    edges = list(G.edges(data="travel_time"))
    uv = np.array([(u, v) for u, v, _ in edges], dtype=np.int64).reshape(-1, 2)
    tt = np.array([np.nan if t is None else t for _, _, t in edges], dtype=np.float64)
    digest.update(uv.tobytes())
    digest.update(tt.tobytes())
    return digest.hexdigest()[:32]
