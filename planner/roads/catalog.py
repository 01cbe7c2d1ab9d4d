"""The region catalog: every extract a download server offers, the bundled regions and the
road files already on disk.

The server (``$PLANNER_DOWNLOAD_URL``, default Geofabrik) publishes ``index-v1.json`` at its
root: a GeoJSON FeatureCollection whose features carry ``properties.id``, ``name``, ``parent``,
``urls.pbf`` and the region's outline. :func:`load_catalog` fetches it (short timeouts), keeps
it under ``$PLANNER_CACHE_DIR/regions/`` with the date it was fetched, and reads that copy when
the server cannot be reached. A region's planner id is the path of its extract on the server
without ``-latest.osm.pbf`` (``europe/greece``); the server's own id (``greece``) and the name
(``Greece``) also resolve when they are unambiguous (:func:`resolve_region`).

:func:`list_regions` lists the catalog, the bundled regions and the files on disk;
:func:`region_for_points` says which catalog region holds a set of points (the smallest one
that contains most of them).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from planner.errors import InputError, NetworkError
from planner.roads import _http
from planner.roads.network import REGIONS, SUPPORTED_SUFFIXES
from planner.settings import cache_dir, download_url, offline, road_data_dir

logger = logging.getLogger(__name__)

#: File name of the catalog at the server's root.
INDEX_NAME = "index-v1.json"
#: A cached catalog younger than this is used without asking the server again.
CATALOG_MAX_AGE_S = 7 * 24 * 3600.0
#: Seconds allowed to fetch the catalog (offline use must answer fast).
CATALOG_TIMEOUT_S = 5.0
#: Kinds of :class:`RegionEntry`.
KINDS = ("catalog", "bundled", "file")

_EXTRACT_SUFFIXES = ("-latest.osm.pbf", ".osm.pbf", ".pbf")
_SAFE_PART = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class RegionEntry:
    """One region the planner can use.

    Attributes
    ----------
    id
        What ``planner run --region`` takes: the catalog id (``europe/greece``), the bundled
        name (``malta``) or, for a file on disk, its path.
    name
        Human-readable name (``Greece``).
    kind
        ``"catalog"`` (offered by the download server), ``"bundled"`` or ``"file"`` (a road
        file on disk that is not in the catalog).
    parent
        Catalog id of the enclosing region (``europe``), if any.
    url
        Address of the ``.osm.pbf`` extract (catalog entries).
    path
        The file on disk: the downloaded extract, the bundled drive file or the road file;
        None for catalog entries not downloaded yet.
    size_bytes
        Size of the extract when known (on disk, or announced by the server).
    bbox
        ``(west, south, east, north)`` in degrees, when known.
    server_id
        The server's own id (``properties.id``), for catalog entries.
    """

    id: str
    name: str
    kind: str
    parent: str | None = None
    url: str | None = None
    path: Path | None = None
    size_bytes: int | None = None
    bbox: tuple[float, float, float, float] | None = None
    server_id: str | None = None

    @property
    def downloaded(self) -> bool:
        """True when the extract is on disk."""
        return self.path is not None and self.path.is_file()

    def label(self) -> str:
        """One line for lists and pickers: ``Greece (europe/greece, 305 MB, downloaded)``."""
        bits = [self.id] if self.id != self.name else []
        if self.size_bytes:
            bits.append(format_size(self.size_bytes))
        if self.kind == "bundled":
            bits.append("bundled")
        elif self.kind == "file":
            bits.append("on disk")
        elif self.downloaded:
            bits.append("downloaded")
        return f"{self.name} ({', '.join(bits)})" if bits else self.name


@dataclass(frozen=True)
class Catalog:
    """The download server's regions, as fetched (or read from the cached copy).

    Attributes
    ----------
    entries
        Catalog regions, in the server's order.
    server
        The server address.
    fetched
        When the catalog was fetched from the server (ISO 8601 UTC), None without a catalog.
    note
        One line to show when the catalog is stale or missing (offline), else None.
    """

    entries: tuple[RegionEntry, ...]
    server: str
    fetched: str | None = None
    note: str | None = None
    _geometries: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    _raw_geometry: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def geometry(self, region_id: str) -> Any:
        """The region's outline as a shapely geometry (built once), None if it has none."""
        if region_id not in self._geometries:
            raw = self._raw_geometry.get(region_id)
            geom = None
            if raw:
                import shapely.geometry

                try:
                    geom = shapely.geometry.shape(raw)
                    import shapely

                    shapely.prepare(geom)
                except (ValueError, TypeError, AttributeError, KeyError) as exc:
                    logger.warning("unreadable outline of region %s: %s", region_id, exc)
                    geom = None
            self._geometries[region_id] = geom
        return self._geometries[region_id]


def format_size(n_bytes: int | float) -> str:
    """``305 MB``, ``1.2 GB``, ``830 kB``."""
    n = float(n_bytes)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:,.0f} {unit}"
    return f"{n:.0f} B"


# --------------------------------------------------------------------------------------------
# where files go
# --------------------------------------------------------------------------------------------


def regions_dir() -> Path:
    """Folder of downloaded extracts: ``$PLANNER_CACHE_DIR/regions``."""
    return cache_dir("regions")


def _catalog_dir(server: str) -> Path:
    digest = hashlib.sha256(server.encode()).hexdigest()[:12]
    path = regions_dir() / ".catalog" / digest
    path.mkdir(parents=True, exist_ok=True)
    return path


def _url_path(url: str) -> str:
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")


def extract_path(url: str) -> Path:
    """Where the extract at ``url`` is stored: its path on the server, under
    ``$PLANNER_CACHE_DIR/regions/`` (``regions/europe/greece-latest.osm.pbf``)."""
    parts = [p for p in _url_path(url).split("/") if p]
    if not parts or any(p in {".", ".."} or not _SAFE_PART.match(p) for p in parts):
        raise InputError(f"the catalog gives an extract address the planner cannot store: {url!r}")
    return regions_dir().joinpath(*parts)


def _id_from_url(url: str) -> str:
    path = _url_path(url)
    for suffix in _EXTRACT_SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


# --------------------------------------------------------------------------------------------
# the catalog
# --------------------------------------------------------------------------------------------

#: Parsed catalogs by (cached file, its mtime and size): the app's search must answer fast.
_PARSED: dict[tuple[str, int, int], Catalog] = {}
_PARSED_LOCK = threading.Lock()


def _parse_index(data: bytes, *, server: str, fetched: str | None, note: str | None) -> Catalog:
    try:
        document = json.loads(data)
        features = document["features"]
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"{server}/{INDEX_NAME} is not a region catalog (a GeoJSON FeatureCollection): {exc}"
        raise NetworkError(msg) from None
    sizes = _read_sizes(server)
    entries: list[RegionEntry] = []
    raw_geometry: dict[str, Any] = {}
    parents: dict[str, str] = {}
    for feature in features:
        if not isinstance(feature, dict):
            continue
        props = feature.get("properties") or {}
        url = (props.get("urls") or {}).get("pbf")
        if not isinstance(url, str) or not url:
            continue
        region_id = _id_from_url(url)
        server_id = str(props.get("id") or region_id)
        parents[server_id] = region_id
        geometry = feature.get("geometry")
        bbox = _bbox_of(geometry)
        if geometry:
            raw_geometry[region_id] = geometry
        try:
            path: Path | None = extract_path(url)
        except InputError:
            path = None
        on_disk = path is not None and path.is_file()
        entries.append(
            RegionEntry(
                id=region_id,
                name=str(props.get("name") or region_id),
                kind="catalog",
                parent=str(props["parent"]) if props.get("parent") else None,
                url=url,
                path=path,
                size_bytes=path.stat().st_size if on_disk and path else sizes.get(url),
                bbox=bbox,
                server_id=server_id,
            )
        )
    # parents are the server's ids: say them as planner ids
    entries = [
        RegionEntry(**{**e.__dict__, "parent": parents.get(e.parent, e.parent)}) if e.parent else e
        for e in entries
    ]
    return Catalog(tuple(entries), server, fetched=fetched, note=note, _raw_geometry=raw_geometry)


def _bbox_of(geometry: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(geometry, dict):
        return None
    coords: list[float] = []

    def walk(value: Any) -> None:
        if isinstance(value, list | tuple):
            if len(value) >= 2 and all(isinstance(v, int | float) for v in value[:2]):
                coords.extend((float(value[0]), float(value[1])))
            else:
                for item in value:
                    walk(item)

    walk(geometry.get("coordinates"))
    if not coords:
        return None
    xy = np.asarray(coords, dtype=float).reshape(-1, 2)
    return (
        float(xy[:, 0].min()),
        float(xy[:, 1].min()),
        float(xy[:, 0].max()),
        float(xy[:, 1].max()),
    )


def _read_cached(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    index = folder / INDEX_NAME
    meta_path = folder / "meta.json"
    if not index.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    return index, meta if isinstance(meta, dict) else {}


def _parsed(index: Path, *, server: str, fetched: str | None, note: str | None) -> Catalog:
    stat = index.stat()
    key = (str(index), stat.st_mtime_ns, stat.st_size)
    with _PARSED_LOCK:
        hit = _PARSED.get(key)
    if hit is None:
        hit = _parse_index(index.read_bytes(), server=server, fetched=fetched, note=None)
        with _PARSED_LOCK:
            for old in [k for k in _PARSED if k[0] == key[0]]:
                del _PARSED[old]
            _PARSED[key] = hit
    # entries carry "downloaded" state and sizes: refresh them cheaply
    sizes = _read_sizes(server)
    entries = tuple(_refreshed(e, sizes) for e in hit.entries)
    return Catalog(
        entries,
        server,
        fetched=fetched,
        note=note,
        _geometries=hit._geometries,
        _raw_geometry=hit._raw_geometry,
    )


def _refreshed(entry: RegionEntry, sizes: dict[str, int]) -> RegionEntry:
    if entry.path is not None and entry.path.is_file():
        size: int | None = entry.path.stat().st_size
    else:
        size = sizes.get(entry.url or "", entry.size_bytes)
    if size == entry.size_bytes:
        return entry
    return RegionEntry(**{**entry.__dict__, "size_bytes": size})


def offline_hint() -> str:
    """The one line said when the catalog cannot be had: how to get more regions."""
    return (
        "To get more regions: connect to the internet and run `planner regions list` (or "
        "press 'Refresh catalog' in the app), or copy an .osm.pbf extract into "
        f"{regions_dir()} (or $PLANNER_DATA_DIR)"
    )


def load_catalog(*, refresh: bool = False, timeout_s: float = CATALOG_TIMEOUT_S) -> Catalog:
    """The download server's region catalog, fetched or read from its cached copy.

    A cached copy younger than a week is used as is (``refresh`` asks the server anyway).
    When the server cannot be reached within ``timeout_s`` (or ``PLANNER_OFFLINE=1``), the
    cached copy is used with a note saying its date; without one the catalog is empty and
    its note says in one line how to get more regions. Never raises for network problems.

    Parameters
    ----------
    refresh
        Ask the server even when the cached copy is recent.
    timeout_s
        Seconds for the name lookup, the connection and each read.

    Returns
    -------
    Catalog

    Raises
    ------
    NetworkError
        Only when the server answers with something that is not a catalog.
    """
    server = download_url()
    folder = _catalog_dir(server)
    cached = _read_cached(folder)
    if cached is not None and not refresh:
        index, meta = cached
        age = time.time() - float(meta.get("fetched_epoch", 0.0))
        if age < CATALOG_MAX_AGE_S:
            return _parsed(index, server=server, fetched=meta.get("fetched"), note=None)
    problem = None
    if offline():
        problem = "PLANNER_OFFLINE=1"
    else:
        try:
            data = _http.fetch_bytes(f"{server}/{INDEX_NAME}", timeout_s=timeout_s)
        except NetworkError as exc:
            problem = str(exc)
        else:
            now = datetime.now(UTC)
            fetched = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            catalog = _parse_index(data, server=server, fetched=fetched, note=None)
            index = folder / INDEX_NAME
            _write_atomic(index, data)
            meta = {"server": server, "fetched": fetched, "fetched_epoch": now.timestamp()}
            _write_atomic(folder / "meta.json", json.dumps(meta).encode())
            stat = index.stat()
            with _PARSED_LOCK:
                _PARSED[(str(index), stat.st_mtime_ns, stat.st_size)] = catalog
            return _parsed(index, server=server, fetched=fetched, note=None)
    if cached is not None:
        index, meta = cached
        fetched_then: str | None = meta.get("fetched")
        note = (
            f"Region catalog of {str(fetched_then or 'an earlier day')[:10]} (the server cannot "
            f"be reached now: {problem})"
        )
        return _parsed(index, server=server, fetched=fetched_then, note=note)
    note = f"No region catalog: {server} cannot be reached ({problem}). {offline_hint()}"
    return Catalog((), server, fetched=None, note=note)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# sizes (HEAD Content-Length), remembered
# --------------------------------------------------------------------------------------------


def _sizes_path(server: str) -> Path:
    return _catalog_dir(server) / "sizes.json"


def _read_sizes(server: str) -> dict[str, int]:
    try:
        raw = json.loads(_sizes_path(server).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): int(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def entry_size(entry: RegionEntry, *, timeout_s: float = 3.0) -> int | None:
    """Size of a region's extract in bytes: on disk, remembered, or asked of the server
    (HEAD); None when unknown (offline)."""
    if entry.path is not None and entry.path.is_file():
        return entry.path.stat().st_size
    if entry.size_bytes:
        return entry.size_bytes
    if entry.url is None:
        return None
    server = download_url()
    sizes = _read_sizes(server)
    if entry.url in sizes:
        return sizes[entry.url]
    try:
        size = _http.content_length(entry.url, timeout_s=timeout_s)
    except NetworkError as exc:
        logger.info("size of %s unknown: %s", entry.url, exc)
        return None
    if size is not None:
        sizes[entry.url] = size
        try:
            _write_atomic(_sizes_path(server), json.dumps(sizes).encode())
        except OSError as exc:
            logger.warning("could not remember the size of %s: %s", entry.url, exc)
    return size


# --------------------------------------------------------------------------------------------
# bundled regions and files on disk
# --------------------------------------------------------------------------------------------


def bundled_regions() -> list[RegionEntry]:
    """The regions shipped with the planner (``data/osm``)."""
    return [
        RegionEntry(
            id=r.name,
            name=r.title,
            kind="bundled",
            path=r.drive_file,
            size_bytes=r.drive_file.stat().st_size if r.drive_file.is_file() else None,
            bbox=r.bbox,
        )
        for r in REGIONS.values()
    ]


def _is_road_file(path: Path) -> bool:
    name = path.name.lower()
    return (
        path.is_file()
        and not name.startswith(".")
        and not name.endswith(".part")
        and any(name.endswith(s) for s in SUPPORTED_SUFFIXES)
    )


def local_road_files(catalog: Catalog | None = None) -> list[RegionEntry]:
    """Road files on disk that are not catalog extracts: in ``$PLANNER_CACHE_DIR/regions/``
    (downloaded from another server, or copied there) and in ``$PLANNER_DATA_DIR``."""
    known = {str(e.path) for e in (catalog.entries if catalog else ()) if e.path is not None}
    found: list[RegionEntry] = []
    folders = [regions_dir()]
    extra = road_data_dir()
    if extra is not None and extra.is_dir():
        folders.append(extra)
    seen: set[str] = set()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if ".catalog" in path.parts or not _is_road_file(path):
                continue
            key = str(path.resolve())
            if str(path) in known or key in seen:
                continue
            seen.add(key)
            found.append(
                RegionEntry(
                    id=str(path),
                    name=path.name,
                    kind="file",
                    path=path,
                    size_bytes=path.stat().st_size,
                )
            )
    return found


def list_regions(search: str | None = None, *, catalog: Catalog | None = None) -> list[RegionEntry]:
    """Every region the planner can use: bundled, files on disk, then the catalog's.

    Parameters
    ----------
    search
        Keep only regions whose name or id contains this text (case-insensitive), best
        matches first.
    catalog
        A loaded catalog (default: :func:`load_catalog`).
    """
    catalog = load_catalog() if catalog is None else catalog
    everything = [*bundled_regions(), *local_road_files(catalog), *catalog.entries]
    if not search:
        return everything
    return search_regions(search, everything)


def _rank(entry: RegionEntry, text: str) -> int | None:
    fields = [entry.id.lower(), entry.name.lower(), (entry.server_id or "").lower()]
    if text in fields:
        return 0
    if any(f.rsplit("/", 1)[-1] == text for f in fields):
        return 1
    if any(f.startswith(text) for f in fields):
        return 2
    if any(text in f for f in fields):
        return 3
    return None


def search_regions(text: str, entries: Iterable[RegionEntry]) -> list[RegionEntry]:
    """Entries whose id or name contains ``text`` (case-insensitive), best matches first."""
    needle = text.strip().lower()
    if not needle:
        return list(entries)
    ranked = []
    for i, entry in enumerate(entries):
        rank = _rank(entry, needle)
        if rank is not None:
            ranked.append((rank, i, entry))
    ranked.sort(key=lambda t: (t[0], t[1]))
    return [e for _, _, e in ranked]


def resolve_region(text: str, *, catalog: Catalog | None = None) -> RegionEntry:
    """The catalog region ``text`` names: its id (``europe/greece``), the server's id
    (``greece``) or its name (``Greece``), when exactly one region matches.

    Raises
    ------
    InputError
        No region matches (with the closest names), or several do (listing them all).
    """
    catalog = load_catalog() if catalog is None else catalog
    needle = text.strip().lower().strip("/")
    if not needle:
        raise InputError("give a region id such as europe/greece", field="region")
    exact = [
        e
        for e in catalog.entries
        if needle in {e.id.lower(), e.name.lower(), (e.server_id or "").lower()}
    ]
    if not exact:
        exact = [e for e in catalog.entries if e.id.lower().rsplit("/", 1)[-1] == needle]
    ids = sorted({e.id for e in exact})
    if len(ids) == 1:
        return next(e for e in exact if e.id == ids[0])
    if len(ids) > 1:
        msg = (
            f"{text!r} is ambiguous: it names {len(ids)} regions ({', '.join(ids)}); give the "
            f"full id, e.g. --region {ids[0]}"
        )
        raise InputError(msg, field="region")
    if not catalog.entries:
        msg = f"no region {text!r}: {catalog.note or 'the region catalog is empty'}"
        raise InputError(msg, field="region")
    close = [e.id for e in search_regions(needle, catalog.entries)[:8]]
    hint = (
        f"; did you mean {', '.join(close)}?"
        if close
        else "; see `planner regions list --search TEXT`"
    )
    raise InputError(f"no region {text!r} in the catalog of {catalog.server}{hint}", field="region")


def region_for_points(
    lon: Sequence[float] | npt.NDArray[np.float64],
    lat: Sequence[float] | npt.NDArray[np.float64],
    *,
    catalog: Catalog | None = None,
    min_share: float = 0.5,
    max_points: int = 2000,
) -> RegionEntry | None:
    """The smallest catalog region that holds most of these points (point in polygon over
    the catalog outlines), or None.

    Parameters
    ----------
    lon, lat
        Degrees (NaN rows are ignored).
    catalog
        A loaded catalog (default: :func:`load_catalog`).
    min_share
        Share of the points the region must hold.
    max_points
        Points tested (an even sample of them when there are more).
    """
    import shapely

    catalog = load_catalog() if catalog is None else catalog
    x = np.asarray(lon, dtype=float)
    y = np.asarray(lat, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size == 0 or not catalog.entries:
        return None
    if x.size > max_points:
        pick = np.linspace(0, x.size - 1, max_points).astype(int)
        x, y = x[pick], y[pick]
    need = max(1, int(np.ceil(min_share * x.size)))
    best: tuple[float, RegionEntry] | None = None
    for entry in catalog.entries:
        if entry.bbox is None:
            continue
        w, s, e, n = entry.bbox
        in_box = (x >= w) & (x <= e) & (y >= s) & (y <= n)
        if int(in_box.sum()) < need:
            continue
        geom = catalog.geometry(entry.id)
        if geom is None:
            continue
        inside = shapely.contains_xy(geom, x[in_box], y[in_box])
        if int(inside.sum()) < need:
            continue
        area = float(geom.area)
        if best is None or area < best[0]:
            best = (area, entry)
    return None if best is None else best[1]
