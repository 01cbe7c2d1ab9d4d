"""Candidate sites: user lists, OSM repair businesses, generated points and office candidates.

Every source returns the same site schema (:data:`SITE_COLUMNS`, EPSG:4326):

===============  ==============================================================================
site_id          unique id (user's id, ``osm:node/123``, ``G001``...)
name             display name
lat, lon         WGS84 degrees
kind             ``workshop`` (own), ``partner`` (outsourcing), ``office`` or ``competitor``
                 (a shop that is not ours; optional ``attractiveness``, default 1)
status           ``candidate`` (may open), ``existing`` (must stay open), ``excluded`` (never)
fixed_cost       the site's own yearly rent and upkeep (EUR), in place of ``workshop_rent_eur``
                 (``office_rent_eur`` for an office); NaN: the Costs page's default
capacity         jobs per year the site can do, in place of technicians x jobs per technician
                 (``partner_capacity_jobs`` for a partner); NaN: the default
                 (see :mod:`planner.results.site_figures`)
source           ``user``, ``osm`` or ``generated``
opening_hours    OSM ``opening_hours`` text where mapped
sizes            (sites files only) the workshop sizes the site allows: comma-separated names
                 of the scenario's ``sizes`` table; empty: every size
===============  ==============================================================================

Sources: (a) :func:`read_sites` reads a user list; (b) :func:`osm_partner_sites` lists mapped
repair businesses of one product class (tags in :data:`PRODUCT_CLASSES`; the default
:data:`PARTNER_TAGS` are those of :data:`DEFAULT_PRODUCT_CLASS`); (c) :func:`generate_candidates`
puts points on main roads in built-up areas, thinned by the spread of demand, and names each
after its road and town ("Triq il-Kbira, Qormi", "Trunk road, Birkirkara"); (d)
:func:`office_candidates` lists company and administrative offices (:data:`OFFICE_TAGS`) and
office or commercial buildings from OSM, never shops.

Partners are only businesses whose OSM tag means *repair* of the product class: a computer
store (``shop=computer``) or a TV shop (``shop=electronics``) sells, it does not repair, and a
telecom shop tagged ``office=telecommunication`` is no central office.

=================  =================================================================
product class      OSM tags of a repair partner
=================  =================================================================
``car``            ``shop=car_repair``, ``craft=car_repair``
``electronics``    ``craft=electronics_repair``, ``shop=electronics_repair``,
                   ``craft=computer_repair``, ``shop=computer_repair``,
                   ``shop=mobile_phone_repair``
``appliance``      ``craft=electronics_repair``, ``craft=appliance_repair``,
                   ``shop=appliance_repair``, ``craft=hvac``
``bicycle``        ``shop=bicycle_repair``, ``craft=bicycle_repair``
=================  =================================================================

The default is ``car``: car repair is the repair trade OpenStreetMap maps well (Malta 10,
Liechtenstein 5, Andorra 15 in the bundled extracts, while no ``electronics_repair`` is mapped
there). A partner's capacity is not in OSM: the engine gives each one
:attr:`planner.results.costs.CostParameters.partner_capacity_jobs`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from planner.errors import InputError
from planner.inputs import validation
from planner.inputs.tables import TableSource, read_table, source_name
from planner.inputs.validation import (
    KIND_ALIASES,
    SITE_KINDS,
    SITE_STATUSES,
    STATUS_ALIASES,
    ValidatedTable,
    normalize_column,
    text_or_none,
)
from planner.roads.arrays import ArrayGraph
from planner.roads.classes import CANDIDATE_ROAD_CLASSES, MINOR_ROAD_CLASSES
from planner.roads.features import is_no_features_error, read_osm_features

logger = logging.getLogger(__name__)

SITE_COLUMNS: tuple[str, ...] = (
    "site_id",
    "name",
    "lat",
    "lon",
    "kind",
    "status",
    "fixed_cost",
    "capacity",
    "source",
    "opening_hours",
)
#: OSM tags (key -> values) of repair partners, per product class (see the module docstring).
PRODUCT_CLASSES: dict[str, dict[str, tuple[str, ...]]] = {
    "car": {"shop": ("car_repair",), "craft": ("car_repair",)},
    "electronics": {
        "shop": ("electronics_repair", "computer_repair", "mobile_phone_repair"),
        "craft": ("electronics_repair", "computer_repair"),
    },
    "appliance": {
        "shop": ("appliance_repair",),
        "craft": ("electronics_repair", "appliance_repair", "hvac"),
    },
    "bicycle": {"shop": ("bicycle_repair",), "craft": ("bicycle_repair",)},
}
#: Product class whose repair businesses are partners unless another is asked for.
DEFAULT_PRODUCT_CLASS = "car"
#: OSM tags of businesses listed as potential outsourcing partners by default (key -> values).
PARTNER_TAGS: dict[str, tuple[str, ...]] = PRODUCT_CLASSES[DEFAULT_PRODUCT_CLASS]
#: ``office=*`` values of company or administrative offices that may host the central office
#: (not government, diplomatic, party, NGO or telecom-shop offices).
OFFICE_TAGS: tuple[str, ...] = (
    "company",
    "administrative",
    "yes",
    "it",
    "financial",
    "insurance",
    "lawyer",
    "accountant",
    "consulting",
    "tax_advisor",
    "estate_agent",
    "architect",
    "engineer",
    "advertising_agency",
    "logistics",
    "coworking",
    "employment_agency",
)
#: ``building=*`` values that may host the central office (when not a shop).
OFFICE_BUILDINGS: tuple[str, ...] = ("office", "commercial")
#: A generated site takes the town (``addr:city``) of the nearest OSM feature this close.
LOCALITY_RADIUS_M = 1500.0

#: A node counts as built-up when this much demand lies within BUILT_UP_RADIUS_M.
BUILT_UP_RADIUS_M = 500.0


@dataclass(frozen=True)
class SiteTable(ValidatedTable[gpd.GeoDataFrame]):
    """Candidate sites read from a file, with the validation report.

    Attributes
    ----------
    frame
        GeoDataFrame in the site schema plus ``row`` (1-based data row) and ``valid``.
    report
        Every problem found, row by row.
    """


def sites_frame(data: pd.DataFrame | dict[str, object]) -> gpd.GeoDataFrame:
    """Build a GeoDataFrame in the site schema; absent columns get their defaults."""
    source = pd.DataFrame(data).reset_index(drop=True)
    n = len(source)
    defaults: dict[str, object] = {
        "name": None,
        "kind": "workshop",
        "status": "candidate",
        "fixed_cost": np.nan,
        "capacity": np.nan,
        "source": "user",
        "opening_hours": None,
    }
    out = pd.DataFrame(index=range(n))
    for col in SITE_COLUMNS:
        if col in source:
            out[col] = source[col].to_numpy()
        else:
            out[col] = [defaults.get(col)] * n
    out["site_id"] = out["site_id"].astype(str)
    for col in ("lat", "lon", "fixed_cost", "capacity"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    for col in ("name", "opening_hours"):
        out[col] = text_or_none(out[col].to_numpy(dtype=object))
    for col in source.columns:
        if col not in out.columns and col != "geometry":
            out[col] = source[col].to_numpy()
    return gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs=4326)


# --------------------------------------------------------------------------------------------
# (c) generated candidates


def _local_xy(lon: np.ndarray, lat: np.ndarray, lat0: float) -> np.ndarray:
    """Equirectangular metres around latitude ``lat0`` (good to <0.5% over a small region)."""
    k = np.deg2rad(lat0)
    return np.column_stack([lon * 111_320.0 * np.cos(k), lat * 110_574.0])


def _road_nodes(graph: nx.MultiDiGraph, classes: tuple[str, ...]) -> dict[int, str]:
    """Nodes touching an edge of the given highway classes -> the road's name for people.

    The name is the OSM ``name`` of the most important road at the node ("Triq il-Kbira"), or
    its class when unnamed ("Trunk road").
    """
    if isinstance(graph, ArrayGraph):
        return _array_road_nodes(graph, classes)
    rank = {c: i for i, c in enumerate(classes)}
    best: dict[int, tuple[int, bool, str]] = {}
    for u, v, data in graph.edges(data=True):
        highway = data.get("highway")
        values = highway if isinstance(highway, list) else [highway]
        ranks = [rank[h] for h in values if h in rank]
        if not ranks:
            continue
        r = min(ranks)
        name = data.get("name")
        name = name[0] if isinstance(name, list) else name
        named = isinstance(name, str) and bool(name.strip())
        label = name.strip() if named else f"{classes[r].replace('_', ' ').capitalize()} road"
        for node in (u, v):
            old = best.get(node)
            # a more important road wins; at equal rank a named road beats an unnamed one
            if old is None or (r, not named) < (old[0], not old[1]):
                best[node] = (r, named, label)
    return {node: label for node, (_, _, label) in best.items()}


def _array_road_nodes(graph: ArrayGraph, classes: tuple[str, ...]) -> dict[int, str]:
    """:func:`_road_nodes` of an array graph, from its arrays: its edges carry no names, so
    each node is labelled by the class of its most important road ("Trunk road")."""
    order = {c: i for i, c in enumerate(classes)}
    code_rank = np.array([order.get(h, -1) for h in graph.highway_names] or [-1])
    edge_rank = code_rank[graph.highway_code.astype(np.int64)]
    main = edge_rank >= 0
    ends = np.column_stack([graph.edge_u[main], graph.edge_v[main]]).ravel()
    ranks = np.repeat(edge_rank[main], 2)
    best = np.full(graph.number_of_nodes(), len(classes), dtype=np.int64)
    np.minimum.at(best, ends, ranks)
    labels = [f"{c.replace('_', ' ').capitalize()} road" for c in classes]
    nodes = np.flatnonzero(best < len(classes))
    return dict(
        zip(
            graph.node_id[nodes].tolist(),
            [labels[r] for r in best[nodes].tolist()],
            strict=True,
        )
    )


def _node_lonlat(
    G: nx.MultiDiGraph | ArrayGraph, nodes: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of graph nodes (by id)."""
    if isinstance(G, ArrayGraph):
        at = G.positions(nodes)
        return G.x[at].astype(float), G.y[at].astype(float)
    return (
        np.array([float(G.nodes[v]["x"]) for v in nodes], dtype=float),
        np.array([float(G.nodes[v]["y"]) for v in nodes], dtype=float),
    )


def _localities(
    features: gpd.GeoDataFrame | None, lon: np.ndarray, lat: np.ndarray, lat0: float
) -> list[str | None]:
    """The town (``addr:city``) of the nearest OSM feature within LOCALITY_RADIUS_M."""
    if features is None or "addr:city" not in features or len(lon) == 0:
        return [None] * len(lon)
    has = features["addr:city"].notna().to_numpy()
    if not has.any():
        return [None] * len(lon)
    fx, fy = _feature_points(features[has])
    cities = features.loc[has, "addr:city"].astype(str).to_numpy()
    from scipy.spatial import cKDTree

    tree = cKDTree(_local_xy(fx, fy, lat0))
    dist, idx = tree.query(_local_xy(lon, lat, lat0))
    return [
        str(cities[i]).strip() if d <= LOCALITY_RADIUS_M else None
        for d, i in zip(np.atleast_1d(dist), np.atleast_1d(idx), strict=True)
    ]


def _weighted_kmeans(
    xy: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator, iterations: int = 50
) -> np.ndarray:
    """Weighted k-means with k-means++ seeding; returns k centres."""
    centres = np.empty((k, 2))
    p = weights / weights.sum()
    centres[0] = xy[rng.choice(len(xy), p=p)]
    d2 = ((xy - centres[0]) ** 2).sum(axis=1)
    for i in range(1, k):
        q = weights * d2
        total = q.sum()
        idx = rng.choice(len(xy), p=q / total) if total > 0 else rng.choice(len(xy), p=p)
        centres[i] = xy[idx]
        d2 = np.minimum(d2, ((xy - centres[i]) ** 2).sum(axis=1))
    from scipy.spatial import cKDTree

    for _ in range(iterations):
        _, label = cKDTree(centres).query(xy)
        sums = np.zeros((k, 2))
        np.add.at(sums, label, xy * weights[:, None])
        mass = np.bincount(label, weights=weights, minlength=k)
        moved = centres.copy()
        has = mass > 0
        moved[has] = sums[has] / mass[has, None]
        if np.allclose(moved, centres):
            break
        centres = moved
    return centres


def generate_candidates(
    G: nx.MultiDiGraph,
    customers: pd.DataFrame,
    n: int,
    *,
    seed: int = 0,
    built_up_radius_m: float = BUILT_UP_RADIUS_M,
    features: gpd.GeoDataFrame | None = None,
) -> gpd.GeoDataFrame:
    """Generate ``n`` candidate workshop sites on main roads where the customers are.

    Candidate points are graph nodes on main roads (:data:`CANDIDATE_ROAD_CLASSES`) with
    customer demand
    within ``built_up_radius_m`` (a built-up area). They are thinned to ``n`` by the spread of
    demand: a weighted k-means of the customer locations gives ``n`` centres and each centre
    takes the nearest unused main-road node. When too few main-road nodes exist, minor roads
    (:data:`MINOR_ROAD_CLASSES`) are added.

    Parameters
    ----------
    G
        Road graph (unprojected, nodes with ``x``/``y``).
    customers
        Frame with ``lat``, ``lon`` and optionally ``weight`` (rows with missing coordinates are
        ignored).
    n
        Number of candidates wanted; fewer are returned when the graph has fewer eligible nodes.
    seed
        Random seed of the k-means seeding; the output is deterministic for a given seed.
    built_up_radius_m
        Radius of the built-up test around each node.
    features
        OSM features of the region (:func:`planner.roads.features.read_osm_features`): each
        site takes the town (``addr:city``) of the nearest feature within
        :data:`LOCALITY_RADIUS_M`.

    Returns
    -------
    geopandas.GeoDataFrame
        Site schema with ``kind='workshop'``, ``status='candidate'``, ``source='generated'``,
        ids ``G001``..., the graph ``node`` id and ``locality`` (the town or None); the
        ``name`` is the road and town, e.g. ``"Triq il-Kbira, Qormi"``, or
        ``"Trunk road, Birkirkara"`` for an unnamed road.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    lat = pd.to_numeric(customers["lat"], errors="coerce").to_numpy(float)
    lon = pd.to_numeric(customers["lon"], errors="coerce").to_numpy(float)
    if "weight" in customers:
        weight = pd.to_numeric(customers["weight"], errors="coerce").to_numpy(float)
    else:
        weight = np.ones(len(lat))
    ok = np.isfinite(lat) & np.isfinite(lon) & np.isfinite(weight) & (weight > 0)
    if not ok.any():
        raise ValueError("generate_candidates needs customers with coordinates and weight > 0")
    lat, lon, weight = lat[ok], lon[ok], weight[ok]
    lat0 = float(np.mean(lat))
    cxy = _local_xy(lon, lat, lat0)

    from scipy.spatial import cKDTree

    ctree = cKDTree(cxy)
    labels = _road_nodes(G, CANDIDATE_ROAD_CLASSES)
    eligible = _built_up(G, labels, ctree, lat0, built_up_radius_m)
    if len(eligible) < n:
        minor = _road_nodes(G, MINOR_ROAD_CLASSES)
        extra = {k: v for k, v in minor.items() if k not in labels}
        eligible += _built_up(G, extra, ctree, lat0, built_up_radius_m)
        labels.update(extra)
    if not eligible:
        raise ValueError("no road node lies near the customers; is the graph the right region?")
    eligible.sort()
    nodes = np.asarray(eligible)
    nxy = _local_xy(*_node_lonlat(G, eligible), lat0)
    if n >= len(eligible):
        chosen = np.arange(len(eligible))
    else:
        rng = np.random.default_rng(seed)
        k = min(n, len(np.unique(cxy, axis=0)))
        centres = _weighted_kmeans(cxy, weight, k, rng)
        chosen_list: list[int] = []
        taken = np.zeros(len(eligible), dtype=bool)
        ntree = cKDTree(nxy)
        for centre in centres:
            _, idx = ntree.query(centre, k=min(len(eligible), 64))
            for j in np.atleast_1d(idx):
                if not taken[j]:
                    taken[j] = True
                    chosen_list.append(int(j))
                    break
        # fill up (rare: many centres shared their 64 nearest nodes) with the farthest nodes
        while len(chosen_list) < n:
            d, _ = cKDTree(nxy[chosen_list]).query(nxy)
            d[taken] = -1
            j = int(np.argmax(d))
            taken[j] = True
            chosen_list.append(j)
        chosen = np.sort(np.asarray(chosen_list))
    picked = nodes[chosen]
    width = max(3, len(str(len(picked))))
    plon, plat = _node_lonlat(G, picked.tolist())
    towns = _localities(features, plon, plat, lat0)
    frame = pd.DataFrame(
        {
            "site_id": [f"G{i:0{width}d}" for i in range(1, len(picked) + 1)],
            "name": [
                labels[v] + (f", {town}" if town else "")
                for v, town in zip(picked, towns, strict=True)
            ],
            "lat": plat,
            "lon": plon,
            "kind": "workshop",
            "status": "candidate",
            "source": "generated",
            "node": picked,
            "locality": towns,
        }
    )
    return sites_frame(frame)


def _built_up(
    G: nx.MultiDiGraph,
    labels: dict[int, str],
    ctree: object,
    lat0: float,
    radius_m: float,
) -> list[int]:
    if not labels:
        return []
    keys = list(labels)
    xy = _local_xy(*_node_lonlat(G, keys), lat0)
    counts = ctree.query_ball_point(xy, r=radius_m, return_length=True)  # type: ignore[attr-defined]
    return [v for v, c in zip(keys, counts, strict=True) if c > 0]


# --------------------------------------------------------------------------------------------
# (a) user lists


def _empty_sites() -> gpd.GeoDataFrame:
    frame = sites_frame(pd.DataFrame({"site_id": pd.Series(dtype=str)}))
    frame["row"] = pd.Series(dtype="int64")
    frame["valid"] = pd.Series(dtype=bool)
    return frame


def read_sites(
    path: TableSource,
    *,
    mapping: Mapping[str, str] | None = None,
    region: str | os.PathLike[str] | None = None,
    crs: str | None = None,
    graph: nx.MultiDiGraph | None = None,
    max_snap_m: float = 1000.0,
) -> SiteTable:
    """Read a candidate site list and validate every row.

    Parameters
    ----------
    path
        CSV, XLSX, GeoJSON, GeoPackage or Parquet file with a name, a location (lat/lon, x/y
        with ``crs``, or a geometry), ``kind`` (own workshop / partner / office; default
        workshop), ``status`` (candidate / existing, which must stay open / excluded; default
        candidate), ``fixed_cost`` (per year) and ``capacity`` (jobs per year); see
        :data:`KIND_ALIASES` and :data:`STATUS_ALIASES` for accepted spellings.
    mapping
        ``{field: column}`` overrides of the column detection (fields: id, lat, lon, x, y, wkt,
        name, address, kind, status, fixed_cost, capacity, opening_hours).
    region, graph, max_snap_m
        Check points against the region's road network, as in
        :func:`planner.inputs.customers.read_customers`.
    crs
        CRS of x/y or WKT columns.

    Returns
    -------
    SiteTable
        Every row is kept (``valid`` False where a problem leaves it out); a file that cannot
        be read gives an empty frame and a fatal report (exit code 2).
    """
    label = source_name(path)
    try:
        raw = read_table(path)
    except InputError as exc:
        return SiteTable(_empty_sites(), validation.unreadable_report(label, "sites", exc))
    return check_sites(
        raw,
        mapping=mapping,
        region=region,
        crs=crs,
        graph=graph,
        max_snap_m=max_snap_m,
        path=label,
    )


def _normalise_choice(
    values: np.ndarray, aliases: Mapping[str, tuple[str, ...]], default: str
) -> tuple[np.ndarray, np.ndarray]:
    """Map user spellings to canonical values; returns (values, bad mask)."""
    lookup = {alias: key for key, names in aliases.items() for alias in names}
    out = np.empty(len(values), dtype=object)
    bad = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v is None:
            out[i] = default
            continue
        key = lookup.get(normalize_column(v))
        if key is None:
            bad[i] = True
            out[i] = default
        else:
            out[i] = key
    return out, bad


def check_sites(
    data: pd.DataFrame,
    *,
    mapping: Mapping[str, str] | None = None,
    region: str | os.PathLike[str] | None = None,
    crs: str | None = None,
    graph: nx.MultiDiGraph | None = None,
    max_snap_m: float = 1000.0,
    path: str | os.PathLike[str] | None = None,
) -> SiteTable:
    """Validate a site table already in memory (see :func:`read_sites`)."""
    v = validation
    check = v.TableCheck.start(
        data,
        kind="sites",
        fields=v.SITE_FIELDS,
        mapping=mapping,
        path=path,
        region=region,
        graph=graph,
    )
    data, rows, found, issues, notes, n = check.parts()
    if n == 0:
        return SiteTable(
            _empty_sites(), check.empty_report("add one site per row below the header")
        )

    ids = check.ids(prefix="site", noun="sites")
    names = check.text("name")
    names = np.where(pd.isna(names), ids, names).astype(object)

    choices = {}
    for key, aliases, default, code in (
        ("kind", KIND_ALIASES, "workshop", "invalid_kind"),
        ("status", STATUS_ALIASES, "candidate", "invalid_status"),
    ):
        if key not in found:
            choices[key] = np.full(n, default, dtype=object)
            notes.append(f"no {key} column: every site is a {default}")
            continue
        col = found[key]
        text = v.text_values(data[col])
        values, bad = _normalise_choice(text, aliases, default)
        allowed = ", ".join(aliases)
        for i in np.flatnonzero(bad):
            issues.add(
                int(rows[i]),
                col,
                text[i],
                f"unknown {key}; allowed values are: {allowed}",
                f"write one of {allowed} (or leave it empty for {default})",
                code=code,
            )
        choices[key] = values

    numbers = {}
    for key, meaning in (
        ("fixed_cost", "annual fixed cost"),
        ("capacity", "capacity (jobs/year)"),
        ("attractiveness", "attractiveness"),
    ):
        if key not in found:
            numbers[key] = np.full(n, np.nan)
            continue
        col = found[key]
        values, _missing, bad = v.parse_numbers(data[col])
        text = v.text_values(data[col])
        for i in np.flatnonzero(bad):
            issues.add(
                int(rows[i]),
                col,
                text[i],
                f"the {meaning} is not a number",
                "write a plain number without currency signs or units (for example 12000), "
                "or leave it empty when unknown",
                code="non_numeric_number",
            )
        # attractiveness multiplies a shop's pull on customers: zero would hide the shop
        negative = ~bad & ((values <= 0) if key == "attractiveness" else (values < 0))
        for i in np.flatnonzero(negative):
            issues.add(
                int(rows[i]),
                col,
                text[i],
                f"the {meaning} is {'not positive' if key == 'attractiveness' else 'negative'}",
                "write a positive number (1 = an ordinary shop; leave it empty for 1)"
                if key == "attractiveness"
                else "write zero or a positive number",
                code="negative_number",
            )
        numbers[key] = np.where(bad | negative, np.nan, values)
    hours = check.text("opening_hours")
    address = check.text("address")
    # the workshop sizes a site allows (comma-separated size names of the scenario's `sizes`;
    # empty: every size), checked against the scenario when it is solved
    allowed_sizes = check.text("sizes")

    lat, lon, fatal = check.locate(
        crs=crs, mapping=mapping, region=region, graph=graph, max_snap_m=max_snap_m
    )
    report = check.report(fatal=fatal)
    valid = ~np.isin(rows, report.error_rows) & np.isfinite(lat) & np.isfinite(lon) & (not fatal)
    frame = sites_frame(
        pd.DataFrame(
            {
                "site_id": ids.astype(str),
                "name": names,
                "lat": lat,
                "lon": lon,
                "kind": choices["kind"],
                "status": choices["status"],
                "fixed_cost": numbers["fixed_cost"],
                "capacity": numbers["capacity"],
                "attractiveness": numbers["attractiveness"],
                "source": "user",
                "opening_hours": hours,
                "address": text_or_none(address),
                "sizes": text_or_none(allowed_sizes),
                "row": rows.astype(np.int64),
                "valid": valid,
            }
        )
    )
    located_ok = np.isfinite(lat) & np.isfinite(lon)
    frame = frame.set_geometry(
        gpd.GeoSeries(np.where(located_ok, frame.geometry.to_numpy(), None), crs=4326)
    )
    return SiteTable(frame, report)


# --------------------------------------------------------------------------------------------
# (b) OSM partners and (d) office candidates


def _feature_points(features: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    geoms = features.geometry.to_numpy()
    points = np.where(shapely.get_type_id(geoms) == 0, geoms, shapely.point_on_surface(geoms))
    return shapely.get_x(points), shapely.get_y(points)


def _osm_sites(features: gpd.GeoDataFrame, tag: np.ndarray, kind: str) -> gpd.GeoDataFrame:
    lon, lat = _feature_points(features)
    refs = (features["element"].astype(str) + "/" + features["osm_id"].astype(str)).to_numpy()
    names = features["name"].to_numpy(dtype=object)
    label = np.array([t.split("=", 1)[1].replace("_", " ") for t in tag], dtype=object)
    names = np.where(pd.isna(names), label + " (unnamed)", names)
    return sites_frame(
        pd.DataFrame(
            {
                "site_id": np.char.add("osm:", refs.astype(str)),
                "name": names,
                "lat": lat,
                "lon": lon,
                "kind": kind,
                "status": "candidate",
                "source": "osm",
                "opening_hours": features["opening_hours"].to_numpy(dtype=object),
                "osm_tag": tag,
                "osm_ref": refs,
            }
        )
    )


def region_features(region: str | os.PathLike[str], *, fix: str) -> gpd.GeoDataFrame:
    """The OSM features of a region, or an :class:`InputError` naming the file and ``fix``.

    A road-only extract (no buildings, shops or offices) has no features: instead of the OSM
    reader's own error, the user reads which file it is and what to pass instead.

    Parameters
    ----------
    region
        Bundled region name or OSM file.
    fix
        What to do instead, e.g. ``"pass your customers with --customers FILE"``.
    """
    try:
        return read_osm_features(region)
    except Exception as exc:
        if not is_no_features_error(exc):
            raise
        raise InputError(
            f"has no buildings, shops or offices (a road-only extract?); {fix}",
            file=Path(region),
        ) from None


def optional_region_features(region: str | os.PathLike[str]) -> gpd.GeoDataFrame | None:
    """The OSM features of a region, or None when it has none (a road-only file, a GraphML).

    For optional extras such as the town in the names of generated sites.
    """
    try:
        return read_osm_features(region)
    except Exception as exc:
        if not (isinstance(exc, InputError) or is_no_features_error(exc)):
            raise
        logger.debug("no OSM features for %s: %s", region, exc)
        return None


def osm_partner_sites(
    region: str | os.PathLike[str], *, product_class: str = DEFAULT_PRODUCT_CLASS
) -> gpd.GeoDataFrame:
    """List mapped repair businesses of a region as potential outsourcing partners.

    Features with a repair tag of ``product_class`` (:data:`PRODUCT_CLASSES`; the default
    tags are :data:`PARTNER_TAGS`) become sites with ``kind='partner'``,
    ``status='candidate'`` and ``source='osm'``, with their name (or "<tag> (unnamed)") and
    ``opening_hours`` where mapped; ``osm_tag`` says which tag matched and ``osm_ref`` names
    the OSM object. Shops that sell (``shop=computer``, ``shop=electronics``...) are not
    partners.

    Parameters
    ----------
    region
        Bundled region name or OSM features file.
    product_class
        One of :data:`PRODUCT_CLASSES`.

    Returns
    -------
    geopandas.GeoDataFrame
        Site schema, sorted by OSM object.
    """
    if product_class not in PRODUCT_CLASSES:
        raise InputError(
            f"unknown product class {product_class!r}; allowed: {list(PRODUCT_CLASSES)}",
            field="product_class",
        )
    features = region_features(
        region, fix="list your partner shops in a site file (kind = partner) with --sites FILE"
    )
    tag = np.full(len(features), None, dtype=object)
    for key, values in PRODUCT_CLASSES[product_class].items():
        hit = features[key].isin(values).to_numpy() & pd.isna(tag)
        tag[hit] = key + "=" + features.loc[hit, key].astype(str).to_numpy()
    keep = ~pd.isna(tag)
    return _osm_sites(features[keep].reset_index(drop=True), tag[keep], "partner")


#: An OSM repair shop this close (m) to one of our partner rows is that partner, not a competitor.
PARTNER_MATCH_M = 50.0


def osm_competitor_sites(
    region: str | os.PathLike[str],
    *,
    product_class: str = DEFAULT_PRODUCT_CLASS,
    partners: pd.DataFrame | None = None,
    match_m: float = PARTNER_MATCH_M,
) -> gpd.GeoDataFrame:
    """Mapped repair businesses of ``product_class`` that are not our partners: competitors.

    The same shops as :func:`osm_partner_sites` (the same tags), less those that are our
    partners: a shop whose id (``osm:node/123``) is a partner's ``site_id`` or ``osm_ref``, or
    that lies within ``match_m`` metres of a partner row, is that partner. Each competitor gets
    ``kind='competitor'``, ``status='excluded'`` (we never open it) and ``attractiveness`` 1.

    Parameters
    ----------
    region
        Bundled region name or OSM features file.
    product_class
        One of :data:`PRODUCT_CLASSES`.
    partners
        Our partner shops (site schema, ``lat``/``lon``), or None when we have none.
    match_m
        Distance under which an OSM shop is taken to be a partner row.

    Returns
    -------
    geopandas.GeoDataFrame
        Site schema plus ``attractiveness``, ``osm_tag`` and ``osm_ref``, sorted by OSM object.
    """
    shops = osm_partner_sites(region, product_class=product_class)
    keep = np.ones(len(shops), dtype=bool)
    if partners is not None and len(partners) and len(shops):
        ids = set(partners["site_id"].astype(str)) if "site_id" in partners else set()
        if "osm_ref" in partners:
            ids |= {f"osm:{r}" for r in partners["osm_ref"].dropna().astype(str)}
        keep &= ~shops["site_id"].astype(str).isin(ids).to_numpy()
        plat = pd.to_numeric(partners["lat"], errors="coerce").to_numpy(float)
        plon = pd.to_numeric(partners["lon"], errors="coerce").to_numpy(float)
        ok = np.isfinite(plat) & np.isfinite(plon)
        if ok.any():
            from scipy.spatial import cKDTree

            lat0 = float(np.mean(plat[ok]))
            tree = cKDTree(_local_xy(plon[ok], plat[ok], lat0))
            dist, _ = tree.query(
                _local_xy(shops["lon"].to_numpy(float), shops["lat"].to_numpy(float), lat0)
            )
            keep &= np.asarray(dist) > match_m
    out = shops[keep].reset_index(drop=True)
    out["kind"] = "competitor"
    out["status"] = "excluded"
    out["attractiveness"] = 1.0
    return out


def office_candidates(
    region: str | os.PathLike[str], *, n: int | None = None, seed: int = 0
) -> gpd.GeoDataFrame:
    """List office candidates from OSM: company and administrative offices, office buildings.

    ``office=*`` features with a value in :data:`OFFICE_TAGS` and buildings tagged with
    :data:`OFFICE_BUILDINGS`; anything that is also a shop (``shop=*``) is left out, and so are
    government, diplomatic, party, NGO and telecommunication offices (a mobile-phone shop
    tagged ``office=telecommunication`` is no central office).

    Parameters
    ----------
    region
        Bundled region name or OSM features file.
    n
        Keep at most ``n``, spread over the region (k-means of their locations, the nearest
        candidate to each centre); None keeps all.
    seed
        Random seed of the thinning.

    Returns
    -------
    geopandas.GeoDataFrame
        Site schema with ``kind='office'``, ``source='osm'``.
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be at least 1 or None, got {n}")
    features = region_features(
        region, fix="list office candidates in a site file (kind = office) with --sites FILE"
    )
    tag = np.full(len(features), None, dtype=object)
    not_shop = features["shop"].isna().to_numpy()
    office = features["office"].isin(OFFICE_TAGS).to_numpy() & not_shop
    tag[office] = "office=" + features.loc[office, "office"].astype(str).to_numpy()
    other_office = features["office"].notna().to_numpy()
    building = features["building"].isin(OFFICE_BUILDINGS).to_numpy() & ~other_office & not_shop
    tag[building] = "building=" + features.loc[building, "building"].astype(str).to_numpy()
    keep = ~pd.isna(tag)
    sites = _osm_sites(features[keep].reset_index(drop=True), tag[keep], "office")
    if n is None or n >= len(sites):
        return sites
    lat0 = float(sites["lat"].mean())
    xy = _local_xy(sites["lon"].to_numpy(), sites["lat"].to_numpy(), lat0)
    centres = _weighted_kmeans(xy, np.ones(len(xy)), n, np.random.default_rng(seed))
    from scipy.spatial import cKDTree

    taken = np.zeros(len(xy), dtype=bool)
    tree = cKDTree(xy)
    for centre in centres:
        _, idx = tree.query(centre, k=min(len(xy), 64))
        free = [j for j in np.atleast_1d(idx) if not taken[j]]
        if free:
            taken[free[0]] = True
    return sites[taken].reset_index(drop=True)


__all__ = [
    "DEFAULT_PRODUCT_CLASS",
    "KIND_ALIASES",
    "LOCALITY_RADIUS_M",
    "OFFICE_BUILDINGS",
    "OFFICE_TAGS",
    "PARTNER_MATCH_M",
    "PARTNER_TAGS",
    "PRODUCT_CLASSES",
    "SITE_COLUMNS",
    "SITE_KINDS",
    "SITE_STATUSES",
    "STATUS_ALIASES",
    "SiteTable",
    "check_sites",
    "generate_candidates",
    "office_candidates",
    "optional_region_features",
    "osm_competitor_sites",
    "osm_partner_sites",
    "read_sites",
    "region_features",
    "sites_frame",
]
