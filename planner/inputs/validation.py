"""Validation of customer and site files: a report that names row, column, value and fix.

Every problem is a :class:`ValidationIssue`. Rows are numbered as the user sees them: ``row``
is the 1-based data row (the header is not counted) and, for CSV and spreadsheets, ``line`` is
the line of the text file or the spreadsheet row number (the header being line 1), so a
message reads "row 7 (line 8 of the file), column 'lat', value '135.2': ...".

Issues have a severity: an ``error`` row is left out of a solve (the report says so), a
``warning`` row is used as it is. Rows are never dropped silently: readers keep every row with a
``valid`` flag, and the report goes with them.

Problem codes (``ValidationIssue.code``), one message each:

========================  ======================================================================
``unreadable``            the file cannot be read at all (exit code 2)
``no_location_columns``   no lat/lon, x/y or geometry column and no address (exit code 2)
``missing_coordinates``   a row has no coordinates
``address_only``          a row has an address but no coordinates: geocode it first
``non_numeric_coord``     a coordinate is not a number
``invalid_coordinate``    a latitude beyond ±90 or longitude beyond ±180
``swapped_lat_lon``       lat and lon appear swapped (the swapped point is valid / in the region)
``outside_region``        the point lies outside the region's road network bounding box
``too_far_from_road``     the point is farther than ``max_snap_m`` from any road
``duplicate_id``          the id already appeared in an earlier row
``missing_id``            the row has no id (one is made up from the row number)
``negative_weight``       weight below zero
``non_numeric_weight``    weight is not a number
``zero_weight``           weight is zero (warning: the customer does not count)
``invalid_service_std``   service standard (max travel minutes) is not a positive number
``invalid_kind``          site kind not one of workshop/partner/office
``invalid_status``        site status not one of candidate/existing/excluded
``negative_number``       fixed cost or capacity below zero
``non_numeric_number``    fixed cost, capacity or revenue is not a number
``missing_customer``      a job has no customer id (job history)
``unknown_customer``      a job's customer id is not in the customer register
``missing_date``          a job has no date
``bad_date``              a job's date cannot be read as a date
``future_date``           a job's date lies after the history's reference date
``negative_revenue``      a job's revenue is below zero
``invalid_complaint``     a job's complaint flag is not 0/1 (yes/no, true/false)
``unknown_site``          a job was served by a site id that is not in the site list (warning)
``bad_first_contact``     a customer's first_contact is not a date (warning)
========================  ======================================================================
"""

from __future__ import annotations

import logging
import os
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.roads.arrays import ArrayGraph
from planner.roads.network import load_region
from planner.roads.snapping import snap_points

logger = logging.getLogger(__name__)

VALIDATION_KINDS: tuple[str, ...] = ("auto", "customers", "sites")
SEVERITIES: tuple[str, ...] = ("error", "warning")
#: Issues printed by ``str(report)``; ``to_frame()`` always has all of them.
MAX_PRINTED_ISSUES = 1000

#: Accepted column names per field (compared after lower-casing and removing accents, spaces,
#: dots and dashes). A user mapping ``{field: column}`` overrides them.
#: Names of a customer id column (also accepted for the generic ``id``).
_CUSTOMER_ID_ALIASES: tuple[str, ...] = (
    "customer_id",
    "customerid",
    "customer",
    "customer_no",
    "customer_number",
    "client_id",
    "kundennummer",
    "kundennr",
    "kunde",
)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": (
        "id",
        *_CUSTOMER_ID_ALIASES,
        "site_id",
        "siteid",
        "ref",
        "code",
        "number",
        "nr",
        "no",
    ),
    "lat": ("lat", "latitude", "lat_wgs84", "latitude_wgs84", "geo_lat", "breite", "breitengrad"),
    "lon": (
        "lon",
        "lng",
        "long",
        "longitude",
        "lon_wgs84",
        "longitude_wgs84",
        "geo_lon",
        "geo_lng",
        "laenge",
        "lange",
        "langengrad",
        "laengengrad",
    ),
    "x": ("x", "easting", "east", "rechtswert", "x_coord", "xcoord"),
    "y": ("y", "northing", "north", "hochwert", "y_coord", "ycoord"),
    "wkt": ("wkt", "geometry", "geom", "the_geom"),
    "weight": (
        "weight",
        "jobs",
        "jobs_per_year",
        "service_jobs",
        "orders",
        "orders_per_year",
        "purchases",
        "purchases_per_year",
        "demand",
        "visits",
        "volume",
        "quantity",
        "anzahl",
        "auftrage",
        "auftraege",
        "gewicht",
    ),
    "segment": ("segment", "customer_type", "type", "category", "class", "group", "kundentyp"),
    "name": ("name", "customer_name", "site_name", "company", "firma", "bezeichnung", "title"),
    "address": ("address", "full_address", "street_address", "addr", "adresse", "anschrift"),
    "service_max_min": (
        "service_max_min",
        "max_travel_min",
        "max_minutes",
        "service_standard_min",
        "service_standard",
        "max_travel_time_min",
    ),
    "kind": ("kind", "site_kind", "site_type", "role"),
    "status": ("status", "site_status", "state"),
    "fixed_cost": (
        "fixed_cost",
        "annual_fixed_cost",
        "fixed_cost_per_year",
        "annual_cost",
        "rent",
        "fixkosten",
    ),
    "capacity": ("capacity", "capacity_jobs", "jobs_capacity", "max_jobs", "kapazitat"),
    "attractiveness": ("attractiveness", "attraction", "appeal", "attraktivitat", "huff_weight"),
    "opening_hours": ("opening_hours", "hours", "opening_times"),
    "sizes": ("sizes", "allowed_sizes", "workshop_sizes"),
    # job history (planner.inputs.jobs) and the register's first contact
    "job_id": ("job_id", "jobid", "job", "job_no", "job_number", "order_id", "ticket", "auftrag"),
    "customer_id": _CUSTOMER_ID_ALIASES,
    "date": ("date", "job_date", "service_date", "day", "datum", "created", "created_at"),
    "revenue_eur": ("revenue_eur", "revenue", "amount_eur", "amount", "price", "umsatz"),
    "complaint": ("complaint", "complaints", "complained", "reklamation", "beschwerde"),
    "served_by": ("served_by", "site_id", "site", "workshop", "partner", "served_by_site"),
    "first_contact": (
        "first_contact",
        "customer_since",
        "since",
        "first_contact_date",
        "kunde_seit",
    ),
}
JOB_FIELDS: tuple[str, ...] = (
    "job_id",
    "customer_id",
    "date",
    "revenue_eur",
    "complaint",
    "served_by",
)
CUSTOMER_FIELDS: tuple[str, ...] = (
    "id",
    "lat",
    "lon",
    "x",
    "y",
    "wkt",
    "weight",
    "segment",
    "name",
    "address",
    "service_max_min",
)
SITE_FIELDS: tuple[str, ...] = (
    "id",
    "lat",
    "lon",
    "x",
    "y",
    "wkt",
    "name",
    "address",
    "kind",
    "status",
    "fixed_cost",
    "capacity",
    "opening_hours",
    "sizes",
    "attractiveness",
)
#: Columns whose presence makes ``kind='auto'`` treat a file as a site list (a ``status``
#: column counts only when most of its values are site statuses: CRM exports have a status too).
SITE_MARKERS: tuple[str, ...] = ("kind", "fixed_cost", "capacity")


#: Site kinds and statuses, and the spellings accepted for them (after normalising case and
#: separators). The one definition of this vocabulary.
SITE_KINDS: tuple[str, ...] = ("workshop", "partner", "office", "competitor")
SITE_STATUSES: tuple[str, ...] = ("candidate", "existing", "excluded")

KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "workshop": ("workshop", "own", "own_workshop", "in_house", "inhouse", "werkstatt", "depot"),
    "partner": (
        "partner",
        "outsourcing",
        "outsourced",
        "partner_workshop",
        "contractor",
        "third_party",
    ),
    "office": ("office", "central_office", "head_office", "hq", "headquarters", "buro", "buero"),
    "competitor": ("competitor", "competition", "rival", "competing_shop", "wettbewerber"),
}
STATUS_ALIASES: dict[str, tuple[str, ...]] = {
    "candidate": ("candidate", "new", "possible", "option", "optional", "kandidat"),
    "existing": ("existing", "open", "keep", "keep_open", "current", "fixed", "bestand"),
    "excluded": ("excluded", "exclude", "closed", "never", "no", "ausgeschlossen"),
}


def text_or_none(values: Iterable[object]) -> pd.Series:
    """An object Series of text with None for missing values (not NaN, not pandas ``str``)."""
    items = [None if v is None or (not isinstance(v, str) and pd.isna(v)) else v for v in values]
    return pd.Series(items, dtype=object)


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in one row (``row`` None: the whole file).

    Attributes
    ----------
    row
        1-based data row (header not counted), or None for a file-level problem.
    column
        Column of the file the problem is in (as spelled in the file), or None.
    value
        The offending value as text (as in the file), or None.
    problem
        What is wrong.
    fix
        What to do about it.
    code
        Machine-readable problem code (see the module docstring).
    severity
        ``error`` (the row is left out of a solve) or ``warning`` (the row is used).
    line
        Line of the file (CSV) or spreadsheet row (XLSX) of the row, when meaningful.
    unit
        What ``line`` counts: ``line`` (of a text file) or ``spreadsheet row``.
    """

    row: int | None
    column: str | None
    value: str | None
    problem: str
    fix: str
    code: str = "problem"
    severity: str = "error"
    line: int | None = None
    unit: str = "line"

    @property
    def where(self) -> str:
        """Human-readable location, e.g. ``row 7 (line 8 of the file), column 'lat'``."""
        if self.row is None:
            text = "file"
        elif self.line is not None and self.unit == "line":
            text = f"row {self.row} (line {self.line} of the file)"
        elif self.line is not None:
            text = f"row {self.row} ({self.unit} {self.line})"
        else:
            text = f"row {self.row}"
        if self.column is not None:
            text += f", column {self.column!r}"
        if self.value is not None:
            text += f", value {self.value!r}"
        return text

    def __str__(self) -> str:
        tag = "" if self.severity == "error" else " [warning]"
        return f"{self.where}{tag}: {self.problem}. Fix: {self.fix}"


@dataclass(frozen=True)
class ValidationReport:
    """All problems found in one file.

    Attributes
    ----------
    path
        The file (None for a frame that did not come from a file).
    kind
        ``customers`` or ``sites``.
    n_rows
        Number of data rows read.
    issues
        Every problem, in row order (file-level problems first).
    fatal
        True when the file could not be read at all or has no usable location column.
    region
        Region the locations were checked against (None: region checks not run).
    notes
        What was detected (format, encoding, delimiter, column mapping, conversions).
    """

    path: str | None
    kind: str
    n_rows: int
    issues: tuple[ValidationIssue, ...] = ()
    fatal: bool = False
    region: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when some rows have problems, 2 when the file cannot be read."""
        if self.fatal:
            return 2
        return 1 if self.issues else 0

    @property
    def error_rows(self) -> np.ndarray:
        """Sorted 1-based rows with at least one error (left out of a solve)."""
        rows = {i.row for i in self.issues if i.severity == "error" and i.row is not None}
        return np.array(sorted(rows), dtype=np.int64)

    @property
    def problem_rows(self) -> np.ndarray:
        """Sorted 1-based rows with at least one issue of any severity."""
        rows = {i.row for i in self.issues if i.row is not None}
        return np.array(sorted(rows), dtype=np.int64)

    @property
    def codes(self) -> set[str]:
        """The set of problem codes present."""
        return {i.code for i in self.issues}

    def to_frame(self) -> pd.DataFrame:
        """One line per issue: row, line, column, value, problem, fix, code, severity."""
        cols = ["row", "line", "column", "value", "problem", "fix", "code", "severity"]
        return pd.DataFrame(
            [[getattr(i, c) for c in cols] for i in self.issues], columns=cols
        ).astype({"row": "Int64", "line": "Int64"})

    def summary(self) -> str:
        """One line: rows, problems and the exit code meaning."""
        if self.fatal:
            return "the file cannot be used (exit code 2)"
        if not self.issues:
            return (
                f"{self.n_rows:,} row{'' if self.n_rows == 1 else 's'}, no problems (exit code 0)"
            )

        def count(n: int, word: str) -> str:
            return f"{n:,} {word}" + ("" if n == 1 else "s")

        return (
            f"{count(self.n_rows, 'row')}, {count(len(self.issues), 'problem')} in "
            f"{count(len(self.problem_rows), 'row')}; {count(len(self.error_rows), 'row')} "
            "left out of a solve (exit code 1)"
        )

    def __str__(self) -> str:
        name = Path(self.path).name if self.path else "table"
        head = f"Validation report for {name} ({self.kind}"
        head += f", checked against region {self.region})" if self.region else ")"
        lines = [head]
        lines += [f"  {n}" for n in self.notes]
        for issue in self.issues[:MAX_PRINTED_ISSUES]:
            lines.append(f"- {issue}")
        if len(self.issues) > MAX_PRINTED_ISSUES:
            rest = len(self.issues) - MAX_PRINTED_ISSUES
            lines.append(f"- ... and {rest:,} more problems (see ValidationReport.to_frame())")
        lines.append(f"Result: {self.summary()}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# column detection


FrameT = TypeVar("FrameT", bound=pd.DataFrame)


@dataclass(frozen=True)
class ValidatedTable(Generic[FrameT]):
    """A table read from a user file together with its validation report.

    ``frame`` keeps every row, with ``valid`` False where a problem leaves the row out of a
    solve; ``report`` lists every problem, row by row.
    """

    frame: FrameT
    report: ValidationReport

    @property
    def valid(self) -> FrameT:
        """The usable rows (use only with the report shown to the user)."""
        out = self.frame[self.frame["valid"]].reset_index(drop=True)
        return cast(FrameT, out)


def normalize_column(name: object) -> str:
    """Lower-case, accent-free, ``_``-separated form of a column name used for matching."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text.strip().lower()).strip("_")
    return text


def detect_columns(
    columns: Iterable[object],
    *,
    fields: Sequence[str],
    mapping: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Map planner fields to the file's columns by name, honouring an explicit mapping.

    Parameters
    ----------
    columns
        Column names of the file.
    fields
        Fields to look for (keys of :data:`COLUMN_ALIASES`).
    mapping
        ``{field: column}`` overrides; fields must be in ``fields`` and columns must exist.

    Returns
    -------
    dict
        ``{field: column name as in the file}`` for every field found.

    Raises
    ------
    InputError
        When the mapping names an unknown field or a column that is not in the file.
    """
    names = [str(c) for c in columns]
    found: dict[str, str] = {}
    for key, column in (mapping or {}).items():
        if key not in fields:
            raise InputError(
                f"unknown mapping field {key!r}; allowed fields are: {', '.join(fields)}",
                field=key,
            )
        if column not in names:
            raise InputError(
                f"mapping {key!r} -> {column!r}: no such column; the file has: "
                f"{', '.join(map(repr, names))}",
                field=key,
            )
        found[key] = column
    normalized = {normalize_column(c): c for c in reversed(names)}
    taken = set(found.values())
    for key in fields:
        if key in found:
            continue
        for alias in COLUMN_ALIASES[key]:
            match = normalized.get(alias)
            if match is not None and match not in taken:
                found[key] = match
                taken.add(match)
                break
    return found


# --------------------------------------------------------------------------------------------
# value parsing helpers (vectorised)


def text_values(series: pd.Series) -> np.ndarray:
    """Values as stripped text (object array), None where missing or blank.

    Whole floats print without ``.0`` (a spreadsheet's 7.0 is the user's 7).
    """
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(
        series.dtype
    ):
        text = series.str.strip()
        out = text.to_numpy(dtype=object, na_value=None)
        out[(text == "").fillna(False).to_numpy(dtype=bool)] = None
        return out
    out = np.empty(len(series), dtype=object)
    values = series.to_numpy(dtype=object)
    missing = pd.isna(series).to_numpy()
    for i, v in enumerate(values):
        if missing[i]:
            out[i] = None
            continue
        s = str(int(v) if isinstance(v, float) and v.is_integer() else v).strip()
        out[i] = s if s else None
    return out


def parse_numbers(series: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Parse numbers written as text (decimal comma allowed, e.g. ``35,9``).

    Returns
    -------
    values : numpy.ndarray
        float64, NaN where missing or not a number.
    missing : numpy.ndarray
        bool, the cell is empty.
    bad : numpy.ndarray
        bool, the cell has text that is not a number.
    """
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        missing = np.isnan(values)
        return values, missing, np.zeros(len(values), dtype=bool)
    text = series.astype("string").str.strip()
    missing = (text.isna() | (text == "")).to_numpy(dtype=bool)
    cleaned = text.str.replace("\u00b0", "", regex=False)
    comma_only = cleaned.str.contains(",", regex=False) & ~cleaned.str.contains(".", regex=False)
    cleaned = cleaned.where(~comma_only.fillna(False), cleaned.str.replace(",", ".", regex=False))
    values = pd.to_numeric(cleaned, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~missing & ~np.isfinite(values)
    values = np.where(bad, np.nan, values)
    return values, missing, bad


class IssueCollector:
    """Collects issues with the row/line convention of one file."""

    def __init__(self, *, header_lines: int | None, unit: str) -> None:
        self.header_lines = header_lines
        self.unit = unit
        self.issues: list[ValidationIssue] = []

    def add(
        self,
        row: int | None,
        column: str | None,
        value: object,
        problem: str,
        fix: str,
        *,
        code: str,
        severity: str = "error",
    ) -> None:
        line = None if row is None or self.header_lines is None else row + self.header_lines
        text = None if value is None else str(value)
        self.issues.append(
            ValidationIssue(
                row=row,
                column=column,
                value=text,
                problem=problem,
                fix=fix,
                code=code,
                severity=severity,
                line=line,
                unit=self.unit,
            )
        )

    def sorted(self) -> tuple[ValidationIssue, ...]:
        return tuple(
            sorted(self.issues, key=lambda i: (-1 if i.row is None else i.row, i.column or ""))
        )


def format_note(attrs: Mapping[str, object], fmt: str) -> str:
    """Note describing how a file was read (format, encoding, delimiter)."""
    text = f"read as {fmt}"
    if attrs.get("encoding"):
        text += f", encoding {attrs['encoding']}"
    if attrs.get("delimiter"):
        text += f", delimiter {attrs['delimiter']!r}"
    return text


def columns_note(found: Mapping[str, str]) -> str:
    """Note listing the detected columns."""
    if not found:
        return "columns: none recognised"
    return "columns: " + ", ".join(f"{k} <- {c!r}" for k, c in found.items())


def drop_blank_rows(data: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop rows where every cell is empty; returns the rest and their 1-based row numbers."""
    rows = np.arange(1, len(data) + 1)
    if data.shape[1] == 0:
        return data, rows
    blank = data.isna().all(axis=1).to_numpy().copy()
    return data[~blank], rows[~blank]


def row_unit(fmt: str) -> tuple[int | None, str]:
    """How rows map to lines: (header lines, unit name) for a file format."""
    if fmt == "csv":
        return 1, "line"
    if fmt == "excel":
        return 1, "spreadsheet row"
    if fmt in ("geojson", "gpkg"):
        return None, "feature"
    return None, "row"


# --------------------------------------------------------------------------------------------
# region checks


def graph_bbox(graph: Any) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a graph's nodes in degrees (an array graph's from its
    coordinate arrays, without a Python object per node)."""
    if isinstance(graph, ArrayGraph):
        xs, ys = graph.x, graph.y
    else:
        xs = np.fromiter((x for _, x in graph.nodes(data="x")), dtype=float)
        ys = np.fromiter((y for _, y in graph.nodes(data="y")), dtype=float)
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def _inside(
    lon: np.ndarray, lat: np.ndarray, bbox: tuple[float, float, float, float], margin_m: float
) -> np.ndarray:
    west, south, east, north = bbox
    dlat = margin_m / 111_320.0
    dlon = margin_m / (111_320.0 * max(np.cos(np.deg2rad((south + north) / 2)), 0.01))
    with np.errstate(invalid="ignore"):
        return (
            (lon >= west - dlon)
            & (lon <= east + dlon)
            & (lat >= south - dlat)
            & (lat <= north + dlat)
        )


@dataclass(frozen=True)
class LocationCheck:
    """Outcome of :func:`check_locations` per row."""

    lat: np.ndarray
    lon: np.ndarray
    snap_distance_m: np.ndarray
    error: np.ndarray


def check_locations(
    lat: np.ndarray,
    lon: np.ndarray,
    rows: np.ndarray,
    issues: IssueCollector,
    *,
    lat_col: str | None,
    lon_col: str | None,
    lat_text: np.ndarray | None = None,
    lon_text: np.ndarray | None = None,
    region: str | os.PathLike[str] | None = None,
    graph: Any = None,
    max_snap_m: float = 1000.0,
) -> LocationCheck:
    """Check coordinate ranges, swaps, region membership and road distance.

    Rows whose coordinates are NaN are expected to have been reported already and are skipped.
    Coordinates are not changed: a swapped point is reported, not silently fixed.

    Parameters
    ----------
    lat, lon
        Parsed coordinates (NaN where missing).
    rows
        1-based row number of each entry.
    issues
        Collector that receives the problems.
    lat_col, lon_col
        Column names to name in messages.
    lat_text, lon_text
        Values as written in the file, to quote in messages.
    region, graph
        Region name/path (the graph is loaded with
        :func:`planner.roads.network.load_region`), or the
        graph itself. When both are None only the coordinate ranges are checked.
    max_snap_m
        Farther than this from any road is reported as ``too_far_from_road``; it is also the
        margin around the road network's bounding box for ``outside_region``.

    Returns
    -------
    LocationCheck
        ``error`` marks rows with a location problem; ``snap_distance_m`` is NaN where not
        snapped.
    """
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    n = lat.size
    lat_text = _as_text(lat) if lat_text is None else lat_text
    lon_text = _as_text(lon) if lon_text is None else lon_text
    present = np.isfinite(lat) & np.isfinite(lon)
    error = np.zeros(n, dtype=bool)
    snap_distance = np.full(n, np.nan)
    pair = f"{lat_col}/{lon_col}" if lat_col and lon_col else "coordinates"

    def value(i: int | np.integer) -> str:
        return f"{lat_text[i]}, {lon_text[i]}"

    valid_range = present & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    swapped_range = present & ~valid_range & (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
    for i in np.flatnonzero(swapped_range):
        issues.add(
            int(rows[i]),
            pair,
            value(i),
            f"latitude {lat_text[i]} is beyond ±90: latitude and longitude look swapped",
            f"swap the {pair} values (latitude is north-south, longitude east-west)",
            code="swapped_lat_lon",
        )
    for i in np.flatnonzero(present & ~valid_range & ~swapped_range):
        column = lat_col if abs(lat[i]) > 90 else lon_col
        issues.add(
            int(rows[i]),
            column,
            lat_text[i] if abs(lat[i]) > 90 else lon_text[i],
            "not a valid coordinate (latitude must be within ±90, longitude within ±180)",
            "write WGS84 decimal degrees (for example 35.8989, 14.5146); for projected x/y "
            "columns give the CRS",
            code="invalid_coordinate",
        )
    error |= present & ~valid_range
    if graph is None and region is not None:
        graph = load_region(region if isinstance(region, str) else Path(region))
    if graph is None:
        return LocationCheck(lat=lat, lon=lon, snap_distance_m=snap_distance, error=error)

    region_name = str(region) if region is not None else "the region"
    bbox = graph_bbox(graph)
    inside = valid_range & _inside(lon, lat, bbox, max_snap_m)
    outside = valid_range & ~inside
    swapped = outside & _inside(lat, lon, bbox, max_snap_m)
    bbox_text = ", ".join(f"{v:.4f}" for v in bbox)
    for i in np.flatnonzero(swapped):
        issues.add(
            int(rows[i]),
            pair,
            value(i),
            f"the point is outside {region_name} but would be inside with latitude and longitude "
            "swapped",
            f"swap the {pair} values of this row (or the two column headers if every row is "
            "swapped)",
            code="swapped_lat_lon",
        )
    for i in np.flatnonzero(outside & ~swapped):
        issues.add(
            int(rows[i]),
            pair,
            value(i),
            f"the point is outside {region_name} (road network bounds west, south, east, north: "
            f"{bbox_text})",
            "correct the coordinates, or choose the region these customers are in",
            code="outside_region",
        )
    error |= outside
    idx = np.flatnonzero(inside)
    if idx.size:
        snapped = snap_points(graph, lon[idx], lat[idx], max_snap_m=max_snap_m)
        snap_distance[idx] = np.asarray(snapped.snap_distance_m, dtype=float)
        far = idx[np.asarray(snapped.too_far, dtype=bool)]
        for i in far:
            issues.add(
                int(rows[i]),
                pair,
                value(i),
                f"the point is {snap_distance[i]:,.0f} m from the nearest road, more than the "
                f"{max_snap_m:,.0f} m allowed (an island without a road link, the sea, or a "
                "typo?)",
                "check the coordinates; the row is left out of a solve until it is within "
                f"{max_snap_m:,.0f} m of a road",
                code="too_far_from_road",
            )
        error[far] = True
    return LocationCheck(lat=lat, lon=lon, snap_distance_m=snap_distance, error=error)


def _as_text(values: np.ndarray) -> np.ndarray:
    return np.array([None if not np.isfinite(v) else f"{v:g}" for v in values], dtype=object)


def check_ids(
    ids: np.ndarray, rows: np.ndarray, issues: IssueCollector, *, column: str | None, prefix: str
) -> np.ndarray:
    """Fill missing ids from the row number and report missing and duplicate ids.

    Returns
    -------
    numpy.ndarray
        Object array of ids (str); duplicates keep their value (the row is marked as error).
    """
    out = ids.copy()
    for i in np.flatnonzero(pd.isna(pd.Series(ids)).to_numpy()):
        out[i] = f"{prefix}{rows[i]}"
        issues.add(
            int(rows[i]),
            column,
            None,
            f"the row has no id; it was given the id {out[i]!r}",
            "give every row a unique id so results can be matched back",
            code="missing_id",
            severity="warning",
        )
    series = pd.Series(out, dtype=object)
    dup = series.duplicated(keep="first").to_numpy()
    if dup.any():
        first_row = dict(zip(series[~dup], rows[~dup], strict=True))
        for i in np.flatnonzero(dup):
            issues.add(
                int(rows[i]),
                column,
                out[i],
                f"duplicate id: the same id is used in row {first_row[out[i]]}",
                "give every row its own id (or merge the two rows and add up their weights); "
                "this row is left out of a solve",
                code="duplicate_id",
            )
    return out


@dataclass(frozen=True)
class Located:
    """Coordinates parsed from a table, before range and region checks."""

    lat: np.ndarray
    lon: np.ndarray
    lat_text: np.ndarray
    lon_text: np.ndarray
    lat_col: str | None
    lon_col: str | None
    notes: tuple[str, ...]


def locate_rows(
    frame: pd.DataFrame,
    found: Mapping[str, str],
    rows: np.ndarray,
    issues: IssueCollector,
    *,
    crs: str | None = None,
    explicit: Iterable[str] = (),
) -> Located | None:
    """Read each row's location from lat/lon columns, x/y with a CRS, WKT or a geometry.

    Missing and non-numeric coordinates are reported (rows with only an address are told to
    get coordinates first). Returns None, after adding a file-level issue, when the file has
    no location at all.

    Parameters
    ----------
    frame
        The table as read (a GeoDataFrame for geometry formats).
    found
        Detected columns (:func:`detect_columns`).
    rows
        1-based row numbers.
    issues
        Receives the problems.
    crs
        CRS of x/y or WKT columns, or of a geometry column that has none.
    explicit
        Fields the user mapped explicitly (they win over a geometry column).
    """
    import geopandas as gpd
    import shapely

    n = len(frame)
    notes: list[str] = []
    explicit = set(explicit)
    address = (
        text_values(frame[found["address"]]) if "address" in found else np.full(n, None, object)
    )
    geometry = (
        frame.geometry
        if isinstance(frame, gpd.GeoDataFrame) and frame._geometry_column_name in frame
        else None
    )
    use_geometry = geometry is not None and not ({"lat", "lon"} & explicit)
    if use_geometry or ("wkt" in found and not {"lat", "lon"} <= set(found)):
        if geometry is not None and use_geometry:
            geoms = geometry
            source_crs = geoms.crs or crs
            label = geometry.name
        else:
            wkt = frame[found["wkt"]]
            geoms = gpd.GeoSeries(shapely.from_wkt(text_values(wkt), on_invalid="ignore"), crs=None)
            source_crs = crs
            label = found["wkt"]
        geoms = geoms.copy()
        if source_crs is None:
            bounds = geoms.total_bounds
            if np.all(np.isfinite(bounds)) and (
                np.abs(bounds[[0, 2]]).max() > 180 or np.abs(bounds[[1, 3]]).max() > 90
            ):
                issues.add(
                    None,
                    label,
                    None,
                    "the geometries have no CRS and are not in degrees",
                    "save the file with its CRS, or pass crs= (for example 'EPSG:32633')",
                    code="no_location_columns",
                )
                return None
            source_crs = "EPSG:4326"
        geoms = gpd.GeoSeries(geoms.to_numpy(), crs=source_crs)
        if geoms.crs is not None and not geoms.crs.equals("EPSG:4326"):
            notes.append(f"coordinates converted from {geoms.crs.to_string()} to EPSG:4326")
            geoms = geoms.to_crs(4326)
        values = geoms.to_numpy()
        empty = shapely.is_missing(values) | shapely.is_empty(values)
        kinds = shapely.get_type_id(values)
        non_point = ~empty & (kinds != 0)
        if non_point.any():
            notes.append(
                f"{int(non_point.sum())} non-point geometries located by a point inside them"
            )
            values = values.copy()
            values[non_point] = shapely.point_on_surface(values[non_point])
        lon = np.where(empty, np.nan, shapely.get_x(np.where(empty, None, values)))
        lat = np.where(empty, np.nan, shapely.get_y(np.where(empty, None, values)))
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        for i in np.flatnonzero(empty):
            if address[i] is not None:
                _address_only(issues, int(rows[i]), found.get("address"), address[i])
            else:
                issues.add(
                    int(rows[i]),
                    label,
                    None,
                    "the row has no geometry (no coordinates)",
                    "add a point geometry, or lat/lon values",
                    code="missing_coordinates",
                )
        notes.append(f"locations from the geometry column {label!r}")
        return Located(lat, lon, _as_text(lat), _as_text(lon), "lat", "lon", tuple(notes))

    if {"lat", "lon"} <= set(found):
        lat_col, lon_col = found["lat"], found["lon"]
        lat, lat_missing, lat_bad = parse_numbers(frame[lat_col])
        lon, lon_missing, lon_bad = parse_numbers(frame[lon_col])
        lat_text, lon_text = text_values(frame[lat_col]), text_values(frame[lon_col])
        notes.append(f"locations from columns {lat_col!r} (latitude) and {lon_col!r} (longitude)")
    elif {"x", "y"} <= set(found):
        lat_col, lon_col = found["y"], found["x"]
        y, lat_missing, lat_bad = parse_numbers(frame[lat_col])
        x, lon_missing, lon_bad = parse_numbers(frame[lon_col])
        lat_text, lon_text = text_values(frame[lat_col]), text_values(frame[lon_col])
        if crs is None:
            ok = np.isfinite(x) & np.isfinite(y)
            if ok.any() and (np.abs(x[ok]).max() > 180 or np.abs(y[ok]).max() > 90):
                issues.add(
                    None,
                    f"{lon_col}/{lat_col}",
                    None,
                    "the x/y columns hold projected coordinates but no CRS was given",
                    "pass the CRS of the x/y columns (for example --crs EPSG:32633 on the "
                    "command line, crs='EPSG:32633' in Python), or add lat/lon columns in WGS84 "
                    "degrees",
                    code="no_location_columns",
                )
                return None
            notes.append(f"x/y columns {lon_col!r}/{lat_col!r} read as longitude/latitude")
            lat, lon = y, x
        else:
            from pyproj import Transformer

            transformer = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
            lon, lat = transformer.transform(x, y)
            lon, lat = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
            notes.append(f"x/y columns {lon_col!r}/{lat_col!r} converted from {crs} to EPSG:4326")
    else:
        if "address" in found:
            notes.append(f"no coordinate columns; addresses in column {found['address']!r}")
            for j in range(n):
                if address[j] is not None:
                    _address_only(issues, int(rows[j]), found["address"], address[j])
                else:
                    issues.add(
                        int(rows[j]),
                        found["address"],
                        None,
                        "the row has neither coordinates nor an address",
                        "add lat/lon in WGS84 degrees",
                        code="missing_coordinates",
                    )
            nan = np.full(n, np.nan)
            empty = np.full(n, None, dtype=object)
            return Located(nan, nan.copy(), empty, empty.copy(), None, None, tuple(notes))
        issues.add(
            None,
            None,
            None,
            "no location columns found (looked for lat/lon, latitude/longitude, x/y, a WKT "
            f"geometry or an address); the file has: {', '.join(map(repr, frame.columns))}",
            "name the columns lat and lon (WGS84 degrees), or pass a mapping such as "
            "{'lat': 'Breite', 'lon': 'Laenge'}",
            code="no_location_columns",
        )
        return None

    missing = lat_missing | lon_missing
    for i in np.flatnonzero(missing):
        if address[i] is not None:
            _address_only(issues, int(rows[i]), found.get("address"), address[i])
            continue
        column = (
            f"{lat_col}/{lon_col}"
            if lat_missing[i] and lon_missing[i]
            else (lat_col if lat_missing[i] else lon_col)
        )
        issues.add(
            int(rows[i]),
            column,
            None,
            "the coordinates are missing",
            "fill in latitude and longitude in WGS84 decimal degrees (for example 35.8989 and "
            "14.5146)",
            code="missing_coordinates",
        )
    for bad, column, text in ((lat_bad, lat_col, lat_text), (lon_bad, lon_col, lon_text)):
        for i in np.flatnonzero(bad):
            issues.add(
                int(rows[i]),
                column,
                text[i],
                "the coordinate is not a number",
                "write decimal degrees with a decimal point, for example 35.8989 (not "
                "degrees-minutes-seconds or text)",
                code="non_numeric_coord",
            )
    lat = np.where(lat_bad | lon_bad, np.nan, lat)
    lon = np.where(lat_bad | lon_bad, np.nan, lon)
    return Located(lat, lon, lat_text, lon_text, lat_col, lon_col, tuple(notes))


def _address_only(issues: IssueCollector, row: int, column: str | None, value: str) -> None:
    issues.add(
        row,
        column,
        value,
        "the row has an address but no coordinates; addresses must be turned into "
        "coordinates first",
        "add lat/lon, or geocode the addresses when online with `planner geocode FILE --out "
        "NEW.csv` (or planner.inputs.customers.geocode_missing(frame, online=True); "
        "Nominatim, 1 request "
        "per second)",
        code="address_only",
    )


# --------------------------------------------------------------------------------------------
# entry point


@dataclass
class TableCheck:
    """The kind-independent part of checking a customer or site table.

    :meth:`start` drops blank rows, detects the columns and sets up the issue collector;
    :meth:`empty_report` is the report of a table without data rows; :meth:`locate` reads and
    checks every row's location; :meth:`report` closes the check. ``check_customers`` and
    ``check_sites`` add only the checks of their own fields in between.
    """

    data: pd.DataFrame
    rows: np.ndarray
    found: dict[str, str]
    issues: IssueCollector
    notes: list[str]
    kind: str
    path: str | None
    region_label: str | None

    @classmethod
    def start(
        cls,
        data: pd.DataFrame,
        *,
        kind: str,
        fields: Any,
        mapping: Mapping[str, str] | None,
        path: str | os.PathLike[str] | None,
        region: object | None,
        graph: object | None,
    ) -> TableCheck:
        fmt = str(data.attrs.get("format", "table"))
        header_lines, unit = row_unit(fmt)
        data, rows = drop_blank_rows(data)
        found = detect_columns(data.columns, fields=fields, mapping=mapping)
        region_label = (
            None if region is None and graph is None else str(region or "the given graph")
        )
        return cls(
            data=data,
            rows=rows,
            found=dict(found),
            issues=IssueCollector(header_lines=header_lines, unit=unit),
            notes=[format_note(data.attrs, fmt), columns_note(found)],
            kind=kind,
            path=None if path is None else str(path),
            region_label=region_label,
        )

    @property
    def n(self) -> int:
        """Number of data rows (blank rows excluded)."""
        return len(self.data)

    def text(self, field_name: str) -> np.ndarray:
        """The text of an optional field, or None for every row when the column is absent."""
        if field_name not in self.found:
            return np.full(self.n, None, dtype=object)
        return text_values(self.data[self.found[field_name]])

    def parts(
        self,
    ) -> tuple[pd.DataFrame, np.ndarray, dict[str, str], IssueCollector, list[str], int]:
        """``(data, rows, found, issues, notes, n)``: what every table check works with."""
        return self.data, self.rows, self.found, self.issues, self.notes, self.n

    def ids(self, *, prefix: str, noun: str) -> np.ndarray:
        """Each row's id, checked for blanks and duplicates; ``<prefix><row>`` without an id
        column (and a note saying so)."""
        if "id" in self.found:
            return check_ids(
                self.text("id"), self.rows, self.issues, column=self.found["id"], prefix=prefix
            )
        self.notes.append(f"no id column: {noun} are named {prefix}1, {prefix}2, ... by their row")
        return np.array([f"{prefix}{r}" for r in self.rows], dtype=object)

    def empty_report(self, fix: str) -> ValidationReport:
        """The (fatal) report of a table that has a header but no data rows."""
        self.issues.add(None, None, None, "the file has no data rows", fix, code="unreadable")
        return self.report(fatal=True)

    def locate(
        self,
        *,
        crs: str | None,
        mapping: Mapping[str, str] | None,
        region: Any,
        graph: Any,
        max_snap_m: float,
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """Each row's checked (lat, lon), NaN where unusable, and whether the file is unusable."""
        located = locate_rows(
            self.data,
            self.found,
            self.rows,
            self.issues,
            crs=crs,
            explicit=(mapping or {}).keys(),
        )
        if located is None:
            return np.full(self.n, np.nan), np.full(self.n, np.nan), True
        self.notes += located.notes
        checked = check_locations(
            located.lat,
            located.lon,
            self.rows,
            self.issues,
            lat_col=located.lat_col,
            lon_col=located.lon_col,
            lat_text=located.lat_text,
            lon_text=located.lon_text,
            region=region,
            graph=graph,
            max_snap_m=max_snap_m,
        )
        return checked.lat, checked.lon, False

    def report(self, *, fatal: bool) -> ValidationReport:
        """The validation report of everything found so far."""
        return ValidationReport(
            path=self.path,
            kind=self.kind,
            n_rows=self.n,
            issues=self.issues.sorted(),
            fatal=fatal,
            region=self.region_label,
            notes=tuple(self.notes),
        )


def unreadable_report(
    path: str | os.PathLike[str] | None, kind: str, exc: Exception
) -> ValidationReport:
    """A fatal report for a file that cannot be read."""
    message = str(exc)
    prefix = f"{path}: "
    if path is not None and message.startswith(prefix):
        message = message[len(prefix) :]
    fix = getattr(exc, "fix", None)
    if isinstance(fix, str):  # a refusal that knows its own fix (e.g. too many rows)
        issue = ValidationIssue(
            row=getattr(exc, "row", None),
            column=None,
            value=None,
            problem=message.split("; ")[0],
            fix=fix,
            code=str(getattr(exc, "code", "unreadable")),
        )
    else:
        issue = ValidationIssue(
            row=None,
            column=None,
            value=None,
            problem=f"the file cannot be read: {message}",
            fix="save the file as CSV (UTF-8) or XLSX with a header row, or as GeoJSON, "
            "GeoPackage or Parquet",
            code="unreadable",
        )
    return ValidationReport(
        path=None if path is None else str(path), kind=kind, n_rows=0, issues=(issue,), fatal=True
    )
