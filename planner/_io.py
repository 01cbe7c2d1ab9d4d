"""Reading user tables and OSM feature files (internal).

Two concerns live here because both turn files into frames:

* :func:`read_table` parses a user file (CSV with any common delimiter and encoding, XLSX,
  GeoJSON, GeoPackage, Parquet/GeoParquet) into a pandas or geopandas frame. Files are only ever
  *parsed*: nothing is executed or unpickled, and unknown extensions are rejected with the list of
  allowed ones.
* :func:`read_osm_features` loads the buildings and points of interest of a bundled region with
  ``osmnx.features_from_xml`` once, and caches a slim GeoParquet copy under ``PLANNER_CACHE_DIR``
  so later calls (the app, the CLI, tests) take milliseconds instead of seconds.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd

from planner import _osm_cache
from planner.errors import InputError

logger = logging.getLogger(__name__)

#: Extensions accepted by :func:`read_table`, by format.
TABLE_FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".txt", ".tsv"),
    "excel": (".xlsx", ".xlsm"),
    "geojson": (".geojson", ".json"),
    "gpkg": (".gpkg",),
    "parquet": (".parquet", ".geoparquet"),
}
ALLOWED_EXTENSIONS: tuple[str, ...] = tuple(e for exts in TABLE_FORMATS.values() for e in exts)

#: Encodings tried in order for text files.
CSV_ENCODINGS: tuple[str, ...] = ("utf-8-sig", "cp1252")
CSV_DELIMITERS: str = ",;\t|"

#: OSM keys kept in the feature cache (everything else is dropped to keep it small).
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
_FEATURE_CACHE_VERSION = 1


def table_format(path: Path) -> str:
    """Return the format name of ``path`` from its extension, or raise InputError.

    Parameters
    ----------
    path
        A user file.

    Returns
    -------
    str
        One of the keys of :data:`TABLE_FORMATS`.
    """
    suffix = path.suffix.lower()
    for fmt, exts in TABLE_FORMATS.items():
        if suffix in exts:
            return fmt
    allowed = ", ".join(ALLOWED_EXTENSIONS)
    raise InputError(
        f"unsupported file type {suffix or '(none)'!r}; allowed extensions are: {allowed}",
        file=path,
    )


def read_text(path: Path) -> tuple[str, str]:
    """Decode a text file trying UTF-8 (with or without BOM), then cp1252.

    Returns
    -------
    tuple of str
        The text and the encoding that worked.
    """
    raw = path.read_bytes()
    for encoding in CSV_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        bom = raw.startswith(b"\xef\xbb\xbf")
        return text, ("utf-8" if encoding == "utf-8-sig" and not bom else encoding)
    raise InputError(
        f"cannot decode the file; save it as UTF-8 (tried {', '.join(CSV_ENCODINGS)})", file=path
    )


def sniff_delimiter(text: str) -> str:
    """Guess the delimiter of CSV ``text`` among ``, ; TAB |``.

    ``csv.Sniffer`` is tried on the first lines; when it fails, the candidate that splits the
    header into the most fields wins (a one-column file gets ``,``).
    """
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        header = text.splitlines()[0] if text.strip() else ""
        counts = {d: header.count(d) for d in CSV_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] > 0 else ","


def read_table(path: str | os.PathLike[str], *, sheet: str | int = 0) -> pd.DataFrame:
    """Parse a user table into a frame (a GeoDataFrame for geometry formats).

    Parameters
    ----------
    path
        A CSV/TXT/TSV, XLSX, GeoJSON, GeoPackage or Parquet file.
    sheet
        Sheet name or index for spreadsheets.

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        CSV and XLSX cells are read as text (``str``/missing) so that the validation can quote
        the values exactly as the user typed them. ``frame.attrs`` holds ``format``,
        ``encoding``, ``delimiter`` and ``header_lines`` (lines before the first data row, to
        convert data-row numbers into file line numbers).

    Raises
    ------
    InputError
        When the extension is not allowed or the file cannot be parsed.
    """
    path = Path(path)
    fmt = table_format(path)
    if not path.is_file():
        raise InputError("file not found", file=path)
    try:
        frame = _read_by_format(path, fmt, sheet=sheet)
    except InputError:
        raise
    except Exception as exc:  # parser errors of many kinds: report them as unreadable input
        raise InputError(f"cannot read the file as {fmt}: {exc}", file=path) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs.setdefault("format", fmt)
    frame.attrs.setdefault("header_lines", 1 if fmt in ("csv", "excel") else 0)
    return frame


def _read_by_format(path: Path, fmt: str, *, sheet: str | int) -> pd.DataFrame:
    if fmt == "csv":
        text, encoding = read_text(path)
        if not text.strip():
            raise InputError("the file is empty", file=path)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text)
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            engine="c",
        )
        frame.attrs.update(format="csv", encoding=encoding, delimiter=delimiter)
        return frame
    if fmt == "excel":
        frame = pd.read_excel(
            path,
            sheet_name=sheet,
            dtype=object,
            engine="openpyxl",
            keep_default_na=False,
            na_values=[""],
        )
        frame.attrs.update(format="excel")
        return frame
    if fmt in ("geojson", "gpkg"):
        return gpd.read_file(path)
    # parquet: GeoParquet when it carries geometry metadata, plain Parquet otherwise
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    if b"geo" in meta:
        return gpd.read_parquet(path)
    return pd.read_parquet(path)


# --------------------------------------------------------------------------------------------
# OSM features


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
    from planner.network import region_features_path

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
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    stem = path.name.split(".")[0]
    cache_file = (
        _osm_cache.cache_dir("features") / f"{stem}-{digest}-v{_FEATURE_CACHE_VERSION}.parquet"
    )
    if cache_file.exists():
        try:
            return _normalise_features(gpd.read_parquet(cache_file))
        except Exception:  # a truncated or foreign file: rebuild it
            logger.warning("feature cache %s is unreadable; rebuilding it", cache_file)
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
    _write_parquet_atomic(out, cache_file)
    return _normalise_features(out)


def _normalise_features(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Same dtypes whether parsed or read from the cache: tags as object, None when absent."""
    for col in FEATURE_COLUMNS:
        values = frame[col].to_numpy(dtype=object)
        frame[col] = pd.Series(
            [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in values],
            dtype=object,
            index=frame.index,
        )
    return frame


def _write_parquet_atomic(frame: gpd.GeoDataFrame, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        frame.to_parquet(tmp)
        os.replace(tmp, target)
    except OSError as exc:  # read-only cache: keep working without it
        logger.warning("cannot write cache file %s: %s", target, exc)
        Path(tmp).unlink(missing_ok=True)
