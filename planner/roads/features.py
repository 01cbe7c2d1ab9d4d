"""OSM features of a region: buildings, shops, crafts, amenities and offices.

:func:`read_osm_features` loads the features of a bundled region (or of an ``.osm``/``.osm.pbf``
file) with ``osmnx.features_from_xml`` once, and caches a slim GeoParquet copy under the cache
folder (:func:`planner.settings.cache_dir`) so later calls take milliseconds instead of seconds.
Next to each cached ``.parquet`` file a ``.json`` header (:mod:`planner.roads._cache`) records the
SHA-256 of the OSM file it was built from, the cache version, the row count and a SHA-256 of the
Parquet file; an entry that fails to read or to check is rebuilt with one warning line.
Demo customers, OSM partner shops and office candidates are all drawn from these features.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from planner.errors import InputError
from planner.roads import _cache
from planner.roads.network import region_features_path
from planner.roads.osm_file import check_osm_file
from planner.settings import cache_dir

logger = logging.getLogger(__name__)

FEATURE_COLUMNS: tuple[str, ...] = (
    "name",
    "building",
    "shop",
    "craft",
    "amenity",
    "office",
    "landuse",
    "opening_hours",
    "phone",
    "website",
    "brand",
    "operator",
    "addr:street",
    "addr:housenumber",
    "addr:postcode",
    "addr:city",
)
FEATURE_TAGS: dict[str, bool | str | list[str]] = {
    "building": True,
    "shop": True,
    "craft": True,
    "amenity": True,
    "office": True,
}
_FEATURE_CACHE_VERSION = 2
#: Features read in this process, by the identity (path, size, modification time) of the OSM
#: file and of the cache entry they came from: a second call (partners, offices and the town
#: names of generated sites in one solve) skips hashing the OSM file and reading the Parquet.
_MEMO: dict[tuple[Any, ...], gpd.GeoDataFrame] = {}
_MEMO_SIZE = 4
_MEMO_LOCK = threading.Lock()
#: One lock per OSM file being read (see :func:`read_osm_features`).
_BUILDING: dict[str, threading.Lock] = {}


def features_path(region: str | os.PathLike[str]) -> Path:
    """Return the ``-features.osm.bz2`` file of a bundled region name or of a path.

    A path to a ``-drive`` file maps to the ``-features`` file next to it.

    Raises
    ------
    InputError
        When the region has no features file.
    """
    candidate = Path(region)
    if candidate.suffix and candidate.exists():
        name = candidate.name.lower()
        if not name.endswith((".osm", ".osm.bz2", ".osm.gz", ".xml", ".pbf")):
            raise InputError(
                "has no buildings or shops to take demo customers and sites from (it is not an "
                "OpenStreetMap extract); pass your customers with --customers FILE, or use an "
                ".osm / .osm.pbf extract of the region",
                file=candidate,
            )
        if "-drive" in candidate.name:
            sibling = candidate.with_name(candidate.name.replace("-drive", "-features"))
            if sibling.exists():
                return sibling
        return candidate
    found = region_features_path(str(region))
    if found is None:
        raise InputError(
            f"region {str(region)!r} has no bundled OSM features file; pass the path of an "
            "OSM XML file with buildings and shops"
        )
    return Path(found)


def _features_xml_from_pbf(src: Path, dst: Path) -> None:
    """Write the objects of ``src`` (OSM PBF) tagged with a key of :data:`FEATURE_TAGS`, with
    the nodes and ways they reference, to ``dst`` (OSM XML), which osmnx can read."""
    import osmium

    try:
        # read the file once before any writer exists, so that a broken file fails cleanly
        for _ in osmium.FileProcessor(str(src), osmium.osm.NODE):
            break
        with osmium.BackReferenceWriter(
            str(dst), ref_src=str(src), overwrite=True, remove_tags=False
        ) as writer:
            keys = osmium.filter.KeyFilter(*FEATURE_TAGS)
            for obj in osmium.FileProcessor(str(src)).with_filter(keys):
                writer.add(obj)
    except RuntimeError as exc:
        raise InputError(
            f"cannot read the file as OpenStreetMap data ({exc}); check that it is a complete "
            ".osm.pbf download",
            file=src,
        ) from exc


def is_no_features_error(exc: BaseException) -> bool:
    """Whether ``exc`` is osmnx's ``InsufficientResponseError`` (a file without the features
    asked for), recognised by name so that modules catching it need not import osmnx (and its
    scikit-learn and matplotlib) when they load."""
    return any(t.__name__ == "InsufficientResponseError" for t in type(exc).__mro__)


def read_osm_features(region: str | os.PathLike[str]) -> gpd.GeoDataFrame:
    """Return the buildings and POIs of a region (cached as GeoParquet).

    Parameters
    ----------
    region
        Bundled region name (``"malta"``, ``"liechtenstein"``, ``"andorra"``) or the path of an
        OSM file (``.osm``, ``.osm.bz2``, ``.osm.gz``, or ``.osm.pbf``, filtered with pyosmium).

    Returns
    -------
    geopandas.GeoDataFrame
        EPSG:4326, columns ``element``, ``osm_id``, ``geometry`` and the tags of
        :data:`FEATURE_COLUMNS` (missing tags are all-missing columns), sorted by element and id.
    """
    path = features_path(region)
    folder = cache_dir("features")
    memo_key = _memo_key(path, folder)
    with _MEMO_LOCK:
        known = _MEMO.get(memo_key)
        if known is None:
            building = _BUILDING.setdefault(str(path.resolve()), threading.Lock())
    if known is not None:
        return known.copy()
    # one reader per file at a time: threads asking at once (several users' solves on one
    # server) wait for the first one's parse and then take its cache entry, instead of each
    # parsing the whole file again
    with building:
        return _read_osm_features(path, folder)


def _read_osm_features(path: Path, folder: Path) -> gpd.GeoDataFrame:
    with _MEMO_LOCK:
        known = _MEMO.get(_memo_key(path, folder))
    if known is not None:
        return known.copy()
    check_osm_file(path)  # the road reader's check: no empty file, web page or XML entities
    source_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    stem = path.name.split(".")[0]
    cache_file = folder / f"{stem}-{source_sha256[:16]}-v{_FEATURE_CACHE_VERSION}.parquet"
    built_from = {"source_sha256": source_sha256, "code": _FEATURE_CACHE_VERSION}
    cached = _read_cached_features(cache_file, built_from)
    if cached is not None:
        _remember(_memo_key(path, folder), cached)
        return cached.copy()
    import osmnx as ox

    logger.info("parsing OSM features from %s (cached afterwards)", path)
    if path.name.lower().endswith(".pbf"):
        with tempfile.TemporaryDirectory(prefix="planner-features-") as tmp:
            xml = Path(tmp) / "features.osm"
            _features_xml_from_pbf(path, xml)
            raw = ox.features_from_xml(xml, tags=FEATURE_TAGS)
    else:
        raw = ox.features_from_xml(path, tags=FEATURE_TAGS)
    frame = raw.reset_index()
    frame = frame.rename(columns={"id": "osm_id"})
    out = gpd.GeoDataFrame(
        {
            "element": frame["element"].astype(str),
            "osm_id": frame["osm_id"].astype("int64"),
        },
        geometry=gpd.GeoSeries(frame.geometry.values, crs="EPSG:4326"),
    )
    for col in FEATURE_COLUMNS:
        if col in frame.columns:
            out[col] = [None if pd.isna(v) else str(v) for v in frame[col].to_numpy(object)]
        else:
            out[col] = None
        out[col] = out[col].astype(object)
    out = out.sort_values(["element", "osm_id"], kind="stable").reset_index(drop=True)
    out = out[["element", "osm_id", *FEATURE_COLUMNS, "geometry"]]
    _write_cached_features(out, cache_file, built_from)
    out = _normalise_features(out)
    _remember(_memo_key(path, folder), out)
    return out.copy()


def _file_state(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_size, stat.st_mtime_ns)


def _memo_key(path: Path, folder: Path) -> tuple[Any, ...]:
    """Identity of an OSM file and of the cache entries next to its features (any change to
    either, such as a damaged or replaced entry, makes a new key)."""
    entries = tuple(
        sorted((p.name, _file_state(p)) for p in folder.glob(f"{path.name.split('.')[0]}-*"))
    )
    return (str(path.resolve()), _file_state(path), str(folder), entries)


def _remember(key: tuple[Any, ...], frame: gpd.GeoDataFrame) -> None:
    with _MEMO_LOCK:
        _MEMO[key] = frame
        while len(_MEMO) > _MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))


def _header_path(cache_file: Path) -> Path:
    return cache_file.with_suffix(".json")


def _read_cached_features(cache_file: Path, built_from: dict[str, Any]) -> gpd.GeoDataFrame | None:
    """The cached features if the entry exists and checks; one warning and ``None`` otherwise."""
    if not cache_file.exists():
        return None
    try:
        data = cache_file.read_bytes()
        header = json.loads(_header_path(cache_file).read_text(encoding="utf-8"))
        frame = gpd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # truncated, foreign or header missing: rebuild it
        _cache.warn_invalid("features", cache_file, f"unreadable: {type(exc).__name__}: {exc}")
        return None
    reason = _cache.check_header(
        header,
        built_from={**built_from, "rows": len(frame)},
        payload_sha256={"features.parquet": _cache.sha256_hex(data)},
    )
    if reason is not None:
        _cache.warn_invalid("features", cache_file, reason)
        return None
    return _normalise_features(frame)


def _write_cached_features(
    frame: gpd.GeoDataFrame, cache_file: Path, built_from: dict[str, Any]
) -> None:
    """Write the Parquet file, then its header, each atomically (a read-only cache is skipped)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    data = buffer.getvalue()
    header = _cache.make_header(
        built_from={**built_from, "rows": len(frame)},
        payload_sha256={"features.parquet": _cache.sha256_hex(data)},
    )
    try:
        with _cache.atomic_file(cache_file) as fh:
            fh.write(data)
        with _cache.atomic_file(_header_path(cache_file)) as fh:
            fh.write(json.dumps(header).encode("utf-8"))
    except OSError as exc:  # read-only cache: keep working without it
        logger.warning("cannot write cache file %s: %s", cache_file, exc)


def _normalise_features(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Same dtypes whether parsed or read from the cache: tags as object, None when absent."""
    for col in FEATURE_COLUMNS:
        values = frame[col].to_numpy(dtype=object, copy=True)
        values[pd.isna(values)] = None
        frame[col] = pd.Series(values, dtype=object, index=frame.index)
    return frame
