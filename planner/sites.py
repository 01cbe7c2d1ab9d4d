"""Candidate sites: user lists, OSM repair businesses, generated points and office candidates.

Every source returns the same site schema (:data:`SITE_COLUMNS`, EPSG:4326):

===============  ==============================================================================
site_id          unique id (user's id, ``osm:node/123``, ``G001``...)
name             display name
lat, lon         WGS84 degrees
kind             ``workshop`` (own), ``partner`` (outsourcing) or ``office``
status           ``candidate`` (may open), ``existing`` (must stay open), ``excluded`` (never)
fixed_cost       annual fixed cost (currency of the user's file), NaN when unknown
capacity         jobs per year, NaN when unlimited / unknown
source           ``user``, ``osm`` or ``generated``
opening_hours    OSM ``opening_hours`` text where mapped
===============  ==============================================================================

Sources: (a) :func:`read_sites` reads a user list; (b) :func:`osm_partner_sites` lists mapped
repair businesses (tags in :data:`PARTNER_TAGS`); (c) :func:`generate_candidates` puts points on
main roads in built-up areas, thinned by the spread of demand; (d) :func:`office_candidates` lists
OSM offices and commercial buildings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from planner.validation import ValidationReport

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
SITE_KINDS: tuple[str, ...] = ("workshop", "partner", "office")
SITE_STATUSES: tuple[str, ...] = ("candidate", "existing", "excluded")

#: Highway classes counted as main roads for generated candidates, best first.
MAIN_ROADS: tuple[str, ...] = (
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "trunk_link",
    "primary_link",
    "secondary_link",
    "tertiary_link",
)
#: Fallback when a region has too few main-road nodes near demand.
MINOR_ROADS: tuple[str, ...] = ("unclassified", "residential", "living_street", "road")
#: A node counts as built-up when this much demand lies within BUILT_UP_RADIUS_M.
BUILT_UP_RADIUS_M = 500.0


@dataclass(frozen=True)
class SiteTable:
    """Candidate sites read from a file, with the validation report.

    Attributes
    ----------
    frame
        GeoDataFrame in the site schema plus ``row`` (1-based data row) and ``valid``.
    report
        Every problem found, row by row.
    """

    frame: gpd.GeoDataFrame
    report: ValidationReport

    @property
    def valid(self) -> gpd.GeoDataFrame:
        """The rows that can be used in a solve."""
        return self.frame[self.frame["valid"]].reset_index(drop=True)


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
        out[col] = out[col].astype(object)
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
    """Nodes touching an edge of the given highway classes -> best class and road name."""
    rank = {c: i for i, c in enumerate(classes)}
    best: dict[int, tuple[int, str]] = {}
    for u, v, data in graph.edges(data=True):
        highway = data.get("highway")
        values = highway if isinstance(highway, list) else [highway]
        ranks = [rank[h] for h in values if h in rank]
        if not ranks:
            continue
        r = min(ranks)
        name = data.get("name")
        name = name[0] if isinstance(name, list) else name
        label = f"{classes[r]} road" + (f" {name}" if isinstance(name, str) and name else "")
        for node in (u, v):
            if node not in best or r < best[node][0]:
                best[node] = (r, label)
    return {node: label for node, (_, label) in best.items()}


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
) -> gpd.GeoDataFrame:
    """Generate ``n`` candidate workshop sites on main roads where the customers are.

    Candidate points are graph nodes on main roads (:data:`MAIN_ROADS`) with customer demand
    within ``built_up_radius_m`` (a built-up area). They are thinned to ``n`` by the spread of
    demand: a weighted k-means of the customer locations gives ``n`` centres and each centre
    takes the nearest unused main-road node. When too few main-road nodes exist, minor roads
    (:data:`MINOR_ROADS`) are added.

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

    Returns
    -------
    geopandas.GeoDataFrame
        Site schema with ``kind='workshop'``, ``status='candidate'``, ``source='generated'``,
        ids ``G001``..., and the graph ``node`` id.
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
    labels = _road_nodes(G, MAIN_ROADS)
    eligible = _built_up(G, labels, ctree, lat0, built_up_radius_m)
    if len(eligible) < n:
        minor = _road_nodes(G, MINOR_ROADS)
        extra = {k: v for k, v in minor.items() if k not in labels}
        eligible += _built_up(G, extra, ctree, lat0, built_up_radius_m)
        labels.update(extra)
    if not eligible:
        raise ValueError("no road node lies near the customers; is the graph the right region?")
    eligible.sort()
    nodes = np.asarray(eligible)
    nxy = _local_xy(
        np.array([G.nodes[v]["x"] for v in eligible]),
        np.array([G.nodes[v]["y"] for v in eligible]),
        lat0,
    )
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
    frame = pd.DataFrame(
        {
            "site_id": [f"G{i:0{width}d}" for i in range(1, len(picked) + 1)],
            "name": [f"Generated site on {labels[v]}" for v in picked],
            "lat": [float(G.nodes[v]["y"]) for v in picked],
            "lon": [float(G.nodes[v]["x"]) for v in picked],
            "kind": "workshop",
            "status": "candidate",
            "source": "generated",
            "node": picked,
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
    xy = _local_xy(
        np.array([G.nodes[v]["x"] for v in keys]), np.array([G.nodes[v]["y"] for v in keys]), lat0
    )
    counts = ctree.query_ball_point(xy, r=radius_m, return_length=True)  # type: ignore[attr-defined]
    return [v for v, c in zip(keys, counts, strict=True) if c > 0]


__all__ = [
    "SITE_COLUMNS",
    "SITE_KINDS",
    "SITE_STATUSES",
    "SiteTable",
    "generate_candidates",
    "sites_frame",
]
