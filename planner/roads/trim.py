"""Trim a road file to the area that matters, while it is read.

An :class:`Area` is a box (west, south, east, north): the customers' extent plus a margin
(:func:`area_around`, default 30 km) or a box the user gives (:func:`area_from_bbox`). Both
road loaders of :func:`planner.roads.network.load_region` take it and keep a drivable way only
when at least one of its nodes lies inside the box (:func:`ways_in_area`); the ways outside are
never built into the graph. Ways crossing the edge are kept whole, so routes near the edge stay
right; routes that would leave the box and come back are the only ones that change, which is
why the margin is there.

:func:`describe_kept` says what was kept: "roads of 38,200 km2 around your 1,240 customers,
from greece-latest.osm.pbf of 2026-11-30".
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.errors import GraphError, InputError
from planner.settings import DEFAULT_MARGIN_KM, cache_dir

_KM_PER_DEG_LAT = 111.32
_EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Area:
    """A box of the road network to keep, in degrees (EPSG:4326).

    Attributes
    ----------
    west, south, east, north
        The box.
    n_customers
        The customers it was drawn around (0 for a box the user gave).
    margin_km
        The margin added around them.
    """

    west: float
    south: float
    east: float
    north: float
    n_customers: int = 0
    margin_km: float = 0.0

    def __post_init__(self) -> None:
        values = (self.west, self.south, self.east, self.north)
        if not all(math.isfinite(v) for v in values) or not (
            -180 <= self.west < self.east <= 180 and -90 <= self.south < self.north <= 90
        ):
            msg = (
                f"invalid box {values!r}: expected W,S,E,N in degrees with west < east in "
                "[-180, 180] and south < north in [-90, 90], e.g. --bbox 21.0,37.5,24.5,39.9"
            )
            raise InputError(msg, field="bbox")

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        """``(west, south, east, north)``."""
        return (self.west, self.south, self.east, self.north)

    def key(self) -> str:
        """Identifies the area in cache keys (rounded to about a metre)."""
        return "area:" + ",".join(f"{v:.5f}" for v in self.bbox)

    def km2(self) -> float:
        """Surface of the box in km² (on the sphere)."""
        band = math.sin(math.radians(self.north)) - math.sin(math.radians(self.south))
        return _EARTH_RADIUS_KM**2 * math.radians(self.east - self.west) * band

    def contains(
        self, lon: npt.NDArray[np.float64], lat: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.bool_]:
        """Which points lie inside the box (edges included)."""
        return (lon >= self.west) & (lon <= self.east) & (lat >= self.south) & (lat <= self.north)

    def covers(self, bbox: Sequence[float]) -> bool:
        """True when the box holds all of ``bbox`` (trimming to it would keep everything)."""
        w, s, e, n = (float(v) for v in bbox)
        return self.west <= w and self.south <= s and self.east >= e and self.north >= n

    def describe(self) -> str:
        """``around your 1,240 customers`` or ``in the box 21.0,37.5,24.5,39.9``."""
        if self.n_customers:
            return f"around your {self.n_customers:,} customers (+{self.margin_km:g} km)"
        return "in the box " + ",".join(f"{v:g}" for v in self.bbox)


def area_from_bbox(bbox: Sequence[float] | str) -> Area:
    """The area of a box ``W,S,E,N`` (a sequence of four numbers or the text ``"W,S,E,N"``)."""
    parts: list[Any] = (
        [p for p in bbox.replace(";", ",").split(",") if p.strip()]
        if isinstance(bbox, str)
        else list(bbox)
    )
    try:
        west, south, east, north = (float(v) for v in parts)
    except (TypeError, ValueError):
        msg = f"a box is W,S,E,N in degrees (e.g. 21.0,37.5,24.5,39.9), got {bbox!r}"
        raise InputError(msg, field="bbox") from None
    return Area(west, south, east, north)


def area_around(
    lon: Sequence[float] | npt.NDArray[np.float64],
    lat: Sequence[float] | npt.NDArray[np.float64],
    *,
    margin_km: float = DEFAULT_MARGIN_KM,
) -> Area:
    """The customers' extent plus ``margin_km`` on every side.

    Raises
    ------
    InputError
        No point with coordinates, or a negative margin.
    """
    if not (math.isfinite(margin_km) and margin_km >= 0):
        raise InputError(f"must be >= 0 km, got {margin_km!r}", field="margin_km")
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        raise InputError("no customer has coordinates: cannot trim the roads to them")
    x, y = x[ok], y[ok]
    south, north = float(y.min()), float(y.max())
    dlat = margin_km / _KM_PER_DEG_LAT
    widest = max(abs(south - dlat), abs(north + dlat))
    dlon = margin_km / (_KM_PER_DEG_LAT * max(math.cos(math.radians(min(widest, 89.0))), 0.01))
    return Area(
        max(float(x.min()) - dlon, -180.0),
        max(south - dlat, -90.0),
        min(float(x.max()) + dlon, 180.0),
        min(north + dlat, 90.0),
        n_customers=int(ok.sum()),
        margin_km=float(margin_km),
    )


def ways_in_area(
    area: Area,
    lon: npt.NDArray[np.float64],
    lat: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """Which ways to keep: those with at least one node inside ``area``.

    Parameters
    ----------
    area
        The area.
    lon, lat
        Node coordinates of every way, one way after the other.
    counts
        Number of nodes of each way (all > 0).

    Returns
    -------
    numpy.ndarray
        One bool per way.
    """
    if counts.size == 0:
        return np.zeros(0, dtype=bool)
    inside = area.contains(lon, lat).astype(np.int8)
    starts = np.zeros(counts.size, dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    return np.maximum.reduceat(inside, starts) > 0  # type: ignore[no-any-return]


def way_in_area(area: Area, coords: Sequence[tuple[float, float]]) -> bool:
    """One way's test (the osmnx path): at least one ``(lon, lat)`` inside ``area``."""
    return any(area.west <= x <= area.east and area.south <= y <= area.north for x, y in coords)


def describe_kept(report: dict[str, Any]) -> str | None:
    """What a trimmed graph holds, from its ``planner_report``, or None if it was not trimmed:
    ``roads of 38,200 km2 around your 1,240 customers, from greece-latest.osm.pbf of
    2026-11-30``."""
    area = report.get("area")
    if not area:
        return None
    source = str(report.get("source", "the road file")).replace("\\", "/").rsplit("/", 1)[-1]
    date = str(report.get("osm_date") or "")[:10]
    of_date = f" of {date}" if date else ""
    kept = area.get("ways_kept")
    read = area.get("ways_read")
    ways = f" ({kept:,} of {read:,} drivable ways)" if kept is not None and read else ""
    return f"roads of {area['km2']:,.0f} km2 {area['label']}, from {source}{of_date}{ways}"


def area_report(area: Area, *, ways_read: int, ways_kept: int) -> dict[str, Any]:
    """The ``planner_report["area"]`` entry both loaders write."""
    return {
        "bbox": list(area.bbox),
        "km2": round(area.km2(), 1),
        "label": area.describe(),
        "n_customers": area.n_customers,
        "margin_km": area.margin_km,
        "ways_read": int(ways_read),
        "ways_kept": int(ways_kept),
    }


def area_extract_path(src: Path, area: Area) -> Path:
    """Where :func:`write_area_extract` keeps the roads of ``area`` from ``src``."""
    stem = src.name
    for suffix in (".osm.pbf", ".pbf", ".osm.bz2", ".osm.gz", ".osm", ".xml"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    digest = hashlib.sha256(f"{src.resolve()}|{src.stat().st_size}|{area.key()}".encode())
    return cache_dir("regions") / "areas" / f"{stem}.area-{digest.hexdigest()[:12]}.osm.pbf"


def write_area_extract(src: Path, area: Area) -> Path:
    """Write the roads of ``area`` from ``src`` as an ``.osm.pbf`` (once per file and area).

    For front doors that choose a region by file (the app's region picker): the same rule as
    the loaders' trim step (a ``highway`` way is kept when one of its nodes lies inside the
    area, whole, with its nodes), written atomically under ``$PLANNER_CACHE_DIR/regions/areas``.

    Raises
    ------
    GraphError
        The file is not OSM data, or has no road inside the area.
    """
    import osmium

    dst = area_extract_path(src, area)
    if dst.is_file():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.stem}.{os.getpid()}.tmp.osm.pbf")
    kept = 0
    try:
        with osmium.BackReferenceWriter(
            str(tmp), ref_src=str(src), overwrite=True, remove_tags=False
        ) as writer:
            processor = (
                osmium.FileProcessor(str(src), osmium.osm.NODE | osmium.osm.WAY)
                .with_locations()
                .with_filter(osmium.filter.EntityFilter(osmium.osm.WAY))
                .with_filter(osmium.filter.KeyFilter("highway"))
            )
            way: Any
            for way in processor:
                coords = [(n.location.lon, n.location.lat) for n in way.nodes if n.location.valid()]
                if way_in_area(area, coords):
                    writer.add_way(way)
                    kept += 1
    except RuntimeError as exc:
        tmp.unlink(missing_ok=True)
        msg = f"cannot read the file as OpenStreetMap data ({exc}); check that it is complete"
        raise GraphError(f"{src}: {msg}") from exc
    if kept == 0:
        tmp.unlink(missing_ok=True)
        raise GraphError(f"{src}: has no road {area.describe()}")
    os.replace(tmp, dst)
    return dst
