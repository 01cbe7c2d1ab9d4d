"""Customers: import, validation, aggregation and demo generation.

A customer is a point with an id, a weight (service jobs or purchases per year) and a segment
(for example ``private`` / ``business``). Customers come from a user file
(:func:`read_customers`), from the committed demo (:func:`load_demo_customers`) or from the
region's OpenStreetMap buildings (:func:`generate_demo_customers`).

Demo customers
--------------
:func:`generate_demo_customers` samples OSM buildings of a region, deterministically by seed:

* **private** customers come from residential buildings: ``building`` in
  :data:`RESIDENTIAL_BUILDINGS` with none of the keys ``shop``, ``office``, ``craft``,
  ``amenity``; they are drawn with weight :data:`PRIVATE_SAMPLING_WEIGHT` and have
  ``weight`` 1-3 service jobs per year.
* **business** customers come from buildings tagged ``shop``/``office``/``craft``/``amenity``,
  from buildings in :data:`BUSINESS_BUILDINGS`, and from shop/office/craft points (many shops
  are mapped as a node inside a building); they are drawn with weight
  :data:`BUSINESS_SAMPLING_WEIGHT` and have ``weight`` 2-12.
* The location is the building centroid. Buildings farther than ``max_road_m`` from every node
  of the region's road graph are left out. The road graph keeps only its largest connected
  part, so in Malta this drops Gozo and Comino, which reach the main island only by ferry.

Road data © OpenStreetMap contributors (ODbL).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner.errors import InputError, NetworkError
from planner.inputs import validation
from planner.inputs.tables import TableSource, read_table, source_name
from planner.inputs.validation import ValidatedTable, text_or_none
from planner.roads import _cache
from planner.roads.features import read_osm_features
from planner.roads.network import REGIONS, check_online, load_region, region_features_path
from planner.roads.snapping import SnappedPoints
from planner.settings import DATA_DIR, cache_dir

if TYPE_CHECKING:
    import networkx as nx

logger = logging.getLogger(__name__)

#: Building values counted as homes (when the building has no shop/office/craft/amenity tag).
RESIDENTIAL_BUILDINGS: tuple[str, ...] = (
    "yes",
    "house",
    "residential",
    "apartments",
    "detached",
    "semidetached_house",
    "terrace",
    "bungalow",
)
#: Building values counted as businesses.
BUSINESS_BUILDINGS: tuple[str, ...] = (
    "commercial",
    "industrial",
    "retail",
    "office",
    "warehouse",
    "manufacture",
    "supermarket",
    "kiosk",
    "hotel",
)
#: Keys that make a building (or a point) a business.
BUSINESS_KEYS: tuple[str, ...] = ("shop", "office", "craft", "amenity")
PRIVATE_SAMPLING_WEIGHT = 2.0
BUSINESS_SAMPLING_WEIGHT = 1.0
#: Inclusive ranges of service jobs per year drawn for demo customers.
DEMO_WEIGHT_RANGE: dict[str, tuple[int, int]] = {"private": (1, 3), "business": (2, 12)}
SEGMENTS_DEMO: tuple[str, ...] = ("private", "business")

#: Columns of a customer frame, in order (plus ``geometry``).
CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "lat",
    "lon",
    "weight",
    "segment",
    "name",
    "address",
)

DEMO_DIR = DATA_DIR / "demo"


@dataclass(frozen=True)
class CustomerTable(ValidatedTable[gpd.GeoDataFrame]):
    """Customers read from a file, with the validation report.

    Attributes
    ----------
    frame
        GeoDataFrame (EPSG:4326) with :data:`CUSTOMER_COLUMNS` plus ``row`` (1-based data row in
        the file), ``valid`` (bool: no blocking problem in that row), ``service_max_min``
        (maximum travel minutes of the row's segment, NaN when not given), ``geometry``. Rows with
        problems stay in the frame with ``valid`` False; ``lat``/``lon`` are NaN where they could
        not be read.
    report
        Every problem found, row by row.
    """


def customers_frame(data: pd.DataFrame) -> gpd.GeoDataFrame:
    """Build a customer GeoDataFrame from a frame with at least id/lat/lon columns.

    Missing ``weight`` is 1, missing ``segment`` is ``"default"``, missing ``name`` and
    ``address`` are empty.
    """
    out = pd.DataFrame(index=range(len(data)))
    source = data.reset_index(drop=True)
    out["customer_id"] = source["customer_id"].astype(str)
    out["lat"] = pd.to_numeric(source["lat"], errors="coerce").astype(float)
    out["lon"] = pd.to_numeric(source["lon"], errors="coerce").astype(float)
    out["weight"] = (
        pd.to_numeric(source["weight"], errors="coerce").fillna(1.0).astype(float)
        if "weight" in source
        else 1.0
    )
    out["segment"] = (
        source["segment"].fillna("default").astype(str) if "segment" in source else "default"
    )
    for col in ("name", "address"):
        values = source[col].to_numpy(dtype=object) if col in source else [None] * len(out)
        out[col] = text_or_none(values)
    for col in source.columns:
        if col not in out.columns and col != "geometry":
            out[col] = source[col]
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs=4326)


# --------------------------------------------------------------------------------------------
# demo customers


def _node_distance_m(graph: nx.MultiDiGraph, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Distance in metres from each point to the nearest graph node (local flat projection)."""
    from scipy.spatial import cKDTree

    nodes = graph.nodes(data=True)
    nx_ = np.fromiter((d["x"] for _, d in nodes), dtype=float, count=len(graph))
    ny_ = np.fromiter((d["y"] for _, d in nodes), dtype=float, count=len(graph))
    lat0 = np.deg2rad(float(np.mean(ny_)))
    kx, ky = 111_320.0 * np.cos(lat0), 110_574.0
    tree = cKDTree(np.column_stack([nx_ * kx, ny_ * ky]))
    dist, _ = tree.query(np.column_stack([lon * kx, lat * ky]))
    return dist


def classify_buildings(features: gpd.GeoDataFrame) -> pd.DataFrame:
    """Split OSM features into demo customer pools.

    Parameters
    ----------
    features
        Output of the feature reader (columns ``element``, ``osm_id``, ``building``, ``shop``,
        ``office``, ``craft``, ``amenity``, ``geometry``).

    Returns
    -------
    pandas.DataFrame
        One row per usable feature: ``osm_ref`` ("way/123"), ``lon``, ``lat`` (centroid),
        ``segment`` (private/business), ``sampling_weight``; sorted by ``osm_ref``-order of the
        input.
    """
    building = features["building"]
    tagged = np.zeros(len(features), dtype=bool)
    for key in BUSINESS_KEYS:
        tagged |= features[key].notna().to_numpy()
    is_building = building.notna().to_numpy()
    residential = is_building & building.isin(RESIDENTIAL_BUILDINGS).to_numpy() & ~tagged
    business_building = is_building & (tagged | building.isin(BUSINESS_BUILDINGS).to_numpy())
    point_business = (
        ~is_building
        & (features.geometry.geom_type == "Point").to_numpy()
        & (
            features["shop"].notna() | features["office"].notna() | features["craft"].notna()
        ).to_numpy()
    )
    business = business_building | point_business
    keep = residential | business
    sub = features[keep]
    centroids = shapely.centroid(sub.geometry.to_numpy())
    segment = np.where(residential[keep], "private", "business")
    return pd.DataFrame(
        {
            "osm_ref": sub["element"].astype(str).to_numpy()
            + "/"
            + sub["osm_id"].astype(str).to_numpy(),
            "lon": shapely.get_x(centroids),
            "lat": shapely.get_y(centroids),
            "segment": segment,
            "sampling_weight": np.where(
                segment == "private", PRIVATE_SAMPLING_WEIGHT, BUSINESS_SAMPLING_WEIGHT
            ),
        }
    )


def _road_source(region: str | os.PathLike[str]) -> str | Path:
    """The road network for a region name, or the ``-drive`` file next to a features file."""
    if isinstance(region, str) and not Path(region).suffix:
        return region
    path = Path(region)
    drive = path.with_name(path.name.replace("-features", "-drive"))
    if "-features" in path.name and drive.exists():
        return drive
    return path


def generate_demo_customers(
    region: str | os.PathLike[str],
    n: int = 2000,
    *,
    seed: int = 0,
    graph: nx.MultiDiGraph | None = None,
    max_road_m: float = 1000.0,
) -> gpd.GeoDataFrame:
    """Sample demo customers from the region's OSM buildings, deterministically by seed.

    Parameters
    ----------
    region
        Bundled region name or a path to an OSM features file.
    n
        Number of customers. When it exceeds the number of usable buildings, buildings are
        drawn with replacement.
    seed
        Random seed; the same seed, region and graph give the same customers.
    graph
        The region's road graph; loaded with :func:`planner.roads.network.load_region` when omitted
        (for a ``...-features.osm.bz2`` path, from the ``...-drive.osm.bz2`` file next to it).
    max_road_m
        Buildings farther than this from every graph node are not used (islands without a road
        link, such as Gozo for Malta).

    Returns
    -------
    geopandas.GeoDataFrame
        Customer frame (:data:`CUSTOMER_COLUMNS`, EPSG:4326) with ids ``C00001``..., plus
        ``osm_ref`` naming the sampled OSM object.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    features = read_osm_features(region)
    pool = classify_buildings(features)
    if graph is None:
        graph = load_region(_road_source(region))
    near = _node_distance_m(graph, pool["lon"].to_numpy(), pool["lat"].to_numpy()) <= max_road_m
    dropped = int((~near).sum())
    if dropped:
        logger.info(
            "%d buildings farther than %g m from the road graph left out", dropped, max_road_m
        )
    pool = pool[near].reset_index(drop=True)
    if pool.empty:
        raise ValueError(f"region {region!s} has no buildings within {max_road_m:g} m of a road")
    rng = np.random.default_rng(seed)
    p = pool["sampling_weight"].to_numpy()
    replace = n > len(pool)
    picked = rng.choice(len(pool), size=n, replace=replace, p=p / p.sum())
    sample = pool.iloc[picked].reset_index(drop=True)
    weights = np.empty(n, dtype=np.int64)
    for segment, (lo, hi) in DEMO_WEIGHT_RANGE.items():
        mask = sample["segment"].to_numpy() == segment
        weights[mask] = rng.integers(lo, hi + 1, size=int(mask.sum()))
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(1, n + 1)],
            "lat": sample["lat"].round(6),
            "lon": sample["lon"].round(6),
            "weight": weights.astype(float),
            "segment": sample["segment"],
            "osm_ref": sample["osm_ref"],
        }
    )
    return customers_frame(frame)


#: Columns of the committed demo files (the template adds name and address).
DEMO_FILE_COLUMNS: tuple[str, ...] = ("id", "lat", "lon", "weight", "segment")


def write_demo_customers(customers: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write customers as a demo CSV (``id,lat,lon,weight,segment``, 6 decimals, LF endings)."""
    out = customers.rename(columns={"customer_id": "id"})[list(DEMO_FILE_COLUMNS)].copy()
    out["weight"] = out["weight"].round().astype(int)
    out.to_csv(path, index=False, float_format="%.6f", lineterminator="\n")


def demo_customers_path(region: str) -> Path | None:
    """Return the committed demo customer file of a bundled region, or None."""
    path = DEMO_DIR / f"{str(region).lower()}_customers.csv"
    return path if path.is_file() else None


def load_demo_customers(region: str, *, n: int = 2000, seed: int = 0) -> gpd.GeoDataFrame:
    """Return the demo customers of a region.

    The committed file ``data/demo/<region>_customers.csv`` is used when it exists (Malta);
    otherwise :func:`generate_demo_customers` samples ``n`` customers with ``seed``.
    """
    path = demo_customers_path(region)
    if path is None:
        cached = _demo_cache_path(region, n, seed)
        if cached is not None and cached.is_file():
            try:
                data = pd.read_csv(cached, dtype={"customer_id": str, "osm_ref": str})
                return customers_frame(data)
            except (OSError, ValueError, KeyError) as exc:
                logger.warning("ignoring unreadable demo customers %s: %s", cached, exc)
        customers = generate_demo_customers(region, n, seed=seed)
        if cached is not None:
            _write_demo_cache(customers, cached)
        return customers
    data = pd.read_csv(path, dtype={"id": str})
    return customers_frame(data.rename(columns={"id": "customer_id"}))


#: Version of the generated demo customers (part of their disk cache key).
DEMO_CACHE_VERSION = "demo-1"


def _demo_cache_path(region: str, n: int, seed: int) -> Path | None:
    """Where the generated demo customers of a bundled region are kept: keyed by the region's
    data files (name, size, time), ``n``, ``seed`` and :data:`DEMO_CACHE_VERSION`, so a
    restarted app server shows them without sampling the buildings again."""
    if region not in REGIONS:
        return None
    files = [REGIONS[region].drive_file, region_features_path(region)]
    stamp = [
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in files
        if p is not None and p.is_file()
    ]
    payload = json.dumps([region, n, seed, DEMO_CACHE_VERSION, stamp]).encode()
    return cache_dir("demo-customers") / f"{region}-{hashlib.sha256(payload).hexdigest()[:24]}.csv"


def _write_demo_cache(customers: pd.DataFrame, path: Path) -> None:
    columns = ["customer_id", "lat", "lon", "weight", "segment", "osm_ref"]
    text = customers[[c for c in columns if c in customers]].to_csv(index=False)
    try:
        with _cache.atomic_file(path) as fh:
            fh.write(text.encode())
    except OSError as exc:
        logger.warning("could not keep the demo customers in %s: %s", path, exc)


# --------------------------------------------------------------------------------------------
# aggregation


def aggregate_demand(
    snapped: SnappedPoints, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Merge customers that snap to the same network position into one demand point.

    Parameters
    ----------
    snapped
        Snapped customers (one entry per customer); ``snapped.position_key`` is equal for
        customers at the same network position.
    weights
        Weight of each customer.

    Returns
    -------
    point_index : numpy.ndarray
        For each demand point, the index of its first customer (a representative to take the
        network position from), in order of first appearance.
    unique_weights : numpy.ndarray
        Summed weight of each demand point.
    inverse : numpy.ndarray
        For each customer, the index of its demand point: results per demand point are given
        back per customer with ``values[inverse]``.
    """
    key = np.asarray(snapped.position_key)
    weights = np.asarray(weights, dtype=float)
    if key.shape[0] != weights.shape[0]:
        raise ValueError(
            f"{key.shape[0]} snapped points but {weights.shape[0]} weights; pass one per customer"
        )
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    # number demand points in order of first appearance, so the output follows the input
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    inverse = rank[inverse.reshape(-1)]
    point_index = first[order]
    unique_weights = np.bincount(inverse, weights=weights, minlength=point_index.size)
    return point_index, unique_weights, inverse


# --------------------------------------------------------------------------------------------
# import and validation


def _empty_customers() -> gpd.GeoDataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=object) for c in CUSTOMER_COLUMNS})
    frame["row"] = pd.Series(dtype="int64")
    frame["valid"] = pd.Series(dtype=bool)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries([], crs=4326))


def read_customers(
    path: TableSource,
    *,
    mapping: Mapping[str, str] | None = None,
    region: str | os.PathLike[str] | None = None,
    crs: str | None = None,
    graph: nx.MultiDiGraph | None = None,
    max_snap_m: float = 1000.0,
    service_max_min: Mapping[str, float] | None = None,
) -> CustomerTable:
    """Read a customer file and validate every row.

    Parameters
    ----------
    path
        CSV (any of ``, ; TAB |``, UTF-8 with or without BOM, or cp1252), XLSX, GeoJSON,
        GeoPackage or Parquet/GeoParquet.
    mapping
        ``{field: column}`` for columns the automatic detection does not find; fields are
        ``id``, ``lat``, ``lon``, ``x``, ``y``, ``wkt``, ``weight``, ``segment``, ``name``,
        ``address``, ``service_max_min`` (see
        :data:`planner.inputs.validation.COLUMN_ALIASES` for the
        names recognised automatically).
    region
        Region name or road file: points are checked for being inside the region, swapped and
        within ``max_snap_m`` of a road (the graph is loaded with
        :func:`planner.roads.network.load_region`). None: only coordinate ranges are checked.
    crs
        CRS of x/y or WKT columns (for example ``"EPSG:32633"``), or of a geometry file that
        has none.
    graph
        The region's road graph, if already loaded (saves loading it again).
    max_snap_m
        Maximum distance from a road.
    service_max_min
        Service standard per segment in maximum travel minutes, for example
        ``{"business": 30}``; overrides a ``service_max_min`` column.

    Returns
    -------
    CustomerTable
        ``frame`` keeps every row (``valid`` False where a problem leaves it out of a solve)
        and ``report`` lists the problems. A file that cannot be read gives an empty frame and
        a report with ``fatal`` True (exit code 2); nothing is raised for bad files.

    Raises
    ------
    InputError
        Only for a bad ``mapping`` or ``service_max_min`` argument.
    """
    label = source_name(path)
    try:
        raw = read_table(path)
    except InputError as exc:
        return CustomerTable(
            _empty_customers(), validation.unreadable_report(label, "customers", exc)
        )
    return check_customers(
        raw,
        mapping=mapping,
        region=region,
        crs=crs,
        graph=graph,
        max_snap_m=max_snap_m,
        service_max_min=service_max_min,
        path=label,
    )


def check_customers(
    data: pd.DataFrame,
    *,
    mapping: Mapping[str, str] | None = None,
    region: str | os.PathLike[str] | None = None,
    crs: str | None = None,
    graph: nx.MultiDiGraph | None = None,
    max_snap_m: float = 1000.0,
    service_max_min: Mapping[str, float] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> CustomerTable:
    """Validate a customer table already in memory (see :func:`read_customers`)."""
    v = validation
    standards = _check_standards(service_max_min)
    check = v.TableCheck.start(
        data,
        kind="customers",
        fields=v.CUSTOMER_FIELDS,
        mapping=mapping,
        path=path,
        region=region,
        graph=graph,
    )
    data, rows, found, issues, notes, n = check.parts()
    if n == 0:
        report = check.empty_report("add one customer per row below the header")
        return CustomerTable(_empty_customers(), report)

    ids = check.ids(prefix="row", noun="customers")

    weight = np.ones(n)
    if "weight" in found:
        col = found["weight"]
        values, missing, bad = v.parse_numbers(data[col])
        # the cells as typed, only for the rows an issue quotes (a text copy of a whole
        # 1,000,000-row column would cost ~70 MB)
        flagged = np.flatnonzero(bad | (~bad & (values <= 0)))
        text = dict(zip(flagged.tolist(), v.text_values(data[col].iloc[flagged]), strict=True))
        weight = np.where(missing | bad, 1.0, values)
        for i in np.flatnonzero(bad):
            issues.add(
                int(rows[i]),
                col,
                text[int(i)],
                "the weight is not a number",
                "write the number of service jobs per year (for example 3), or leave the cell "
                "empty for the default of 1",
                code="non_numeric_weight",
            )
        for i in np.flatnonzero(~bad & (values < 0)):
            issues.add(
                int(rows[i]),
                col,
                text[int(i)],
                "the weight is negative",
                "write the number of service jobs per year, zero or more",
                code="negative_weight",
            )
        for i in np.flatnonzero(~bad & (values == 0)):
            issues.add(
                int(rows[i]),
                col,
                text[int(i)],
                "the weight is zero, so this customer does not influence the result",
                "write the number of service jobs per year, or remove the row",
                code="zero_weight",
                severity="warning",
            )
    else:
        notes.append("no weight column: every customer counts 1 job per year")

    segment = check.text("segment")
    segment = np.where(pd.isna(segment), "default", segment).astype(object)
    names = check.text("name")
    address = check.text("address")

    service = np.full(n, np.nan)
    if "service_max_min" in found:
        col = found["service_max_min"]
        values, missing, bad = v.parse_numbers(data[col])
        wrong = bad | (~missing & ~(values > 0))
        flagged = np.flatnonzero(wrong)
        text = dict(zip(flagged.tolist(), v.text_values(data[col].iloc[flagged]), strict=True))
        for i in np.flatnonzero(wrong):
            issues.add(
                int(rows[i]),
                col,
                text[int(i)],
                "the service standard (maximum travel minutes) is not a positive number",
                "write the maximum travel time in minutes (for example 30) or leave it empty; "
                "the row is used without a service standard",
                code="invalid_service_std",
                severity="warning",
            )
        service = np.where(wrong | missing, np.nan, values)
    for seg, minutes in standards.items():
        service[segment == seg] = minutes

    lat, lon, fatal = check.locate(
        crs=crs, mapping=mapping, region=region, graph=graph, max_snap_m=max_snap_m
    )
    report = check.report(fatal=fatal)
    valid = ~np.isin(rows, report.error_rows) & np.isfinite(lat) & np.isfinite(lon) & (not fatal)
    frame = pd.DataFrame(
        {
            "customer_id": ids.astype(str),
            "lat": lat,
            "lon": lon,
            "weight": weight.astype(float),
            "segment": segment.astype(str),
            "name": names,
            "address": address,
            "service_max_min": service,
            "row": rows.astype(np.int64),
            "valid": valid,
        }
    )
    for col in ("name", "address"):
        frame[col] = text_or_none(frame[col].to_numpy(dtype=object))
    located_ok = np.isfinite(lat) & np.isfinite(lon)
    geometry = gpd.GeoSeries(np.where(located_ok, gpd.points_from_xy(lon, lat), None), crs=4326)
    return CustomerTable(gpd.GeoDataFrame(frame, geometry=geometry), report)


def _check_standards(standards: Mapping[str, float] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for segment, minutes in (standards or {}).items():
        try:
            value = float(minutes)
        except (TypeError, ValueError):
            value = float("nan")
        if not (np.isfinite(value) and value > 0):
            raise InputError(
                f"service standard for segment {segment!r} must be a positive number of "
                f"minutes, got {minutes!r}",
                field="service_max_min",
            )
        out[str(segment)] = value
    return out


# --------------------------------------------------------------------------------------------
# geocoding (online, explicit)

#: Seconds between two Nominatim requests (its usage policy allows one per second).
NOMINATIM_PAUSE_S = 1.0


def geocode_missing(
    frame: pd.DataFrame,
    *,
    online: bool = False,
    address_column: str = "address",
    cache: bool = True,
    timeout_s: float = 3.0,
) -> gpd.GeoDataFrame:
    """Fill in coordinates of rows that only have an address, with Nominatim (OSM).

    Only runs when asked (``online=True``) and when the internet is reachable; results are
    cached in ``$PLANNER_CACHE_DIR/geocode/nominatim.json`` and requests are spaced by
    :data:`NOMINATIM_PAUSE_S`. Addresses Nominatim cannot find keep NaN coordinates.

    Parameters
    ----------
    frame
        Customer (or site) frame with ``lat``, ``lon`` and an address column.
    online
        Must be True to contact Nominatim; False raises :class:`~planner.errors.NetworkError`
        at once, so an offline caller never waits.
    address_column
        Column holding the addresses.
    cache
        Read and write the geocoding cache.
    timeout_s
        Timeout of the reachability probe.

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``lat``/``lon``/geometry filled where found and a ``geocoded`` flag.

    Raises
    ------
    NetworkError
        When ``online`` is False or no OSM server is reachable.
    """
    import json
    import time

    if not online:
        raise NetworkError(
            "geocoding addresses needs the internet (Nominatim); call "
            "geocode_missing(frame, online=True) when connected, or add lat/lon to the file"
        )
    if not check_online(timeout_s=timeout_s):
        raise NetworkError(
            "no connection to OpenStreetMap servers: cannot geocode addresses; add lat/lon to "
            "the file or try again when online"
        )
    import osmnx as ox

    out = frame.copy()
    lat = pd.to_numeric(out["lat"], errors="coerce").to_numpy(float)
    lon = pd.to_numeric(out["lon"], errors="coerce").to_numpy(float)
    todo = ~(np.isfinite(lat) & np.isfinite(lon)) & out[address_column].notna().to_numpy()
    cache_file = cache_dir("geocode") / "nominatim.json"
    known: dict[str, list[float] | None] = {}
    if cache and cache_file.exists():
        known = json.loads(cache_file.read_text(encoding="utf-8"))
    geocoded = np.zeros(len(out), dtype=bool)
    last = 0.0
    for i in np.flatnonzero(todo):
        address = str(out[address_column].iloc[i]).strip()
        if address not in known:
            time.sleep(max(0.0, NOMINATIM_PAUSE_S - (time.monotonic() - last)))
            last = time.monotonic()
            try:
                found_lat, found_lon = ox.geocode(address)
                known[address] = [float(found_lat), float(found_lon)]
            except ox._errors.InsufficientResponseError:
                known[address] = None
            except Exception as exc:  # connection dropped mid-way: keep what we have
                raise NetworkError(f"geocoding {address!r} failed: {exc}") from exc
            finally:
                if cache:
                    cache_file.write_text(json.dumps(known), encoding="utf-8")
        hit = known[address]
        if hit is not None:
            lat[i], lon[i] = hit
            geocoded[i] = True
    out["lat"] = lat
    out["lon"] = lon
    out["geocoded"] = geocoded
    ok = np.isfinite(lat) & np.isfinite(lon)
    geometry = gpd.GeoSeries(np.where(ok, gpd.points_from_xy(lon, lat), None), crs=4326)
    logger.info("geocoded %d of %d addresses", int(geocoded.sum()), int(todo.sum()))
    return gpd.GeoDataFrame(out.drop(columns="geometry", errors="ignore"), geometry=geometry)
