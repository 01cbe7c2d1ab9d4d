"""Regions for the front doors: a catalog id becomes a road file, and customers that lie in
another region are told which one.

:func:`region_road_source` turns what a user typed for the region (a bundled name, a road
file, a catalog id such as ``europe/greece`` or ``greece``, or a place name) into what
:func:`planner.roads.network.load_region` reads, downloading a catalog extract on first use
(:func:`planner.roads.download.download_region`). :func:`customers_elsewhere` says when most
customers lie outside the chosen region and which catalog region holds them; the CLI turns it
into an error naming the region id, the app into "these customers are in Armenia: download
Armenia, 33 MB?".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.errors import InputError
from planner.roads.catalog import (
    Catalog,
    RegionEntry,
    entry_size,
    format_size,
    load_catalog,
    region_for_points,
    resolve_region,
)
from planner.roads.download import ProgressFn, download_region
from planner.roads.network import REGIONS, SUPPORTED_SUFFIXES
from planner.roads.trim import Area, area_from_bbox

__all__ = [
    "Elsewhere",
    "area_from_drawing",
    "catalog_entry_for",
    "customers_elsewhere",
    "region_road_source",
]

#: What a catalog id looks like (``europe/greece``, ``greece``, ``us/new-york``).
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_./-]*$")


def _is_file_like(text: str) -> bool:
    lowered = text.lower()
    return any(lowered.endswith(s) for s in SUPPORTED_SUFFIXES) or Path(text).expanduser().is_file()


def region_road_source(
    region: str,
    *,
    progress: ProgressFn | None = None,
    catalog: Catalog | None = None,
) -> str:
    """What :func:`~planner.roads.network.load_region` should read for ``region``.

    A bundled name, a road file path or a place name is returned as given; a catalog id
    (``europe/greece``, or ``greece`` / ``Greece`` when unambiguous) becomes the path of its
    extract, downloaded on first use (online only; offline, an extract already on disk is
    used).

    Raises
    ------
    InputError
        An ambiguous id, or an id with ``/`` that no catalog region has.
    NetworkError
        The extract must be downloaded and cannot be.
    """
    text = str(region).strip()
    if text.lower() in REGIONS or _is_file_like(text):
        return text
    if catalog is None:
        catalog = load_catalog()
    looks_like_id = bool(_ID_RE.match(text.lower()))
    try:
        entry = resolve_region(text, catalog=catalog)
    except InputError:
        if "/" in text and looks_like_id:
            raise
        return text  # a place name, downloaded with osmnx
    return str(download_region(entry, progress=progress, catalog=catalog))


def area_from_drawing(feature: dict[str, Any]) -> Area:
    """The box (W,S,E,N) of a shape drawn on a map, given as a GeoJSON Feature or geometry
    (what Leaflet.draw and ``st_folium``'s ``last_active_drawing`` return), as the area
    :func:`planner.roads.trim.area_from_bbox` gives for the same four numbers.

    Raises
    ------
    InputError
        Not a GeoJSON shape with coordinates.
    """
    geometry = feature.get("geometry", feature) if isinstance(feature, dict) else None
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    try:
        points = np.asarray(coords, dtype=float).reshape(-1, 2)
    except (TypeError, ValueError):
        points = np.zeros((0, 2))
    if points.size == 0 or not np.isfinite(points).all():
        raise InputError(f"a drawn box is a GeoJSON shape with coordinates, got {feature!r}")
    west, south = points.min(axis=0)
    east, north = points.max(axis=0)
    return area_from_bbox([round(float(v), 5) for v in (west, south, east, north)])


def catalog_entry_for(region: str, catalog: Catalog) -> RegionEntry | None:
    """The catalog region a region argument names (an id, or the path of its extract)."""
    text = str(region).strip()
    for entry in catalog.entries:
        if entry.path is not None and str(entry.path) == text:
            return entry
    try:
        return resolve_region(text, catalog=catalog)
    except InputError:
        return None


@dataclass(frozen=True)
class Elsewhere:
    """Customers that lie outside the chosen region, and the region that holds them.

    Attributes
    ----------
    chosen
        The chosen region's name.
    n_points, n_outside
        Customers with coordinates, and how many of them lie outside the chosen region.
    holder
        The smallest catalog region that holds most of them, None when unknown (offline).
    size_bytes
        Size of the holder's extract when known.
    """

    chosen: str
    n_points: int
    n_outside: int
    holder: RegionEntry | None
    size_bytes: int | None = None

    def cli_message(self, file: str) -> str:
        """The error ``planner run`` prints."""
        where = (
            f"they are in {self.holder.name}: run with --region {self.holder.id}"
            if self.holder is not None
            else "no catalog region holding them is known (offline?); see `planner regions list`"
        )
        return (
            f"{self.n_outside:,} of the {self.n_points:,} customers of {file} lie outside "
            f"{self.chosen}; {where}"
        )

    def app_message(self) -> str:
        """The hint the app shows: ``these customers are in Armenia: download Armenia, 33 MB?``."""
        if self.holder is None:
            return (
                f"{self.n_outside:,} of {self.n_points:,} customers lie outside {self.chosen}; "
                "choose the region that holds them (no catalog is available offline)."
            )
        size = f", {format_size(self.size_bytes)}" if self.size_bytes else ""
        if self.holder.downloaded:
            return f"These customers are in {self.holder.name}: use {self.holder.name}{size}?"
        return f"These customers are in {self.holder.name}: download {self.holder.name}{size}?"


def _inside_chosen(
    region: str,
    catalog: Catalog | None,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
) -> tuple[str, npt.NDArray[np.bool_]] | None:
    """Which points lie in the chosen region (its outline or box), or None if unknown."""
    import shapely

    key = str(region).strip().lower()
    if key in REGIONS:
        west, south, east, north = REGIONS[key].bbox
        pad = 0.02
        inside = (
            (lon >= west - pad) & (lon <= east + pad) & (lat >= south - pad) & (lat <= north + pad)
        )
        return REGIONS[key].title, inside
    if catalog is None:
        catalog = load_catalog()
    entry = catalog_entry_for(region, catalog)
    if entry is None:
        return None
    geom = catalog.geometry(entry.id)
    if geom is not None:
        return f"{entry.name} ({entry.id})", shapely.contains_xy(geom, lon, lat)
    if entry.bbox is not None:
        west, south, east, north = entry.bbox
        inside = (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)
        return f"{entry.name} ({entry.id})", inside
    return None


def customers_elsewhere(
    region: str,
    lon: Sequence[float] | npt.NDArray[np.float64],
    lat: Sequence[float] | npt.NDArray[np.float64],
    *,
    catalog: Catalog | None = None,
    min_share: float = 0.5,
    with_size: bool = True,
) -> Elsewhere | None:
    """When at least ``min_share`` of the customers lie outside ``region``: how many, and the
    catalog region that holds them; else None (also when the region's extent is unknown).

    Parameters
    ----------
    region
        A bundled name, a catalog id or the path of a downloaded extract.
    lon, lat
        The customers' coordinates (degrees; NaN rows are ignored).
    catalog
        A loaded catalog (default: :func:`planner.roads.catalog.load_catalog`).
    min_share
        Share of customers outside from which the answer is given.
    with_size
        Ask the server for the holder's size when it is not known yet (short timeout).
    """
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0:
        return None
    chosen = _inside_chosen(region, catalog, x, y)
    if chosen is None:
        return None
    name, inside = chosen
    n_outside = int((~inside).sum())
    if n_outside < min_share * x.size:
        return None
    outside = ~inside
    catalog = load_catalog() if catalog is None else catalog
    holder = region_for_points(x[outside], y[outside], catalog=catalog)
    size = entry_size(holder) if holder is not None and with_size else None
    return Elsewhere(name, int(x.size), n_outside, holder, size)
