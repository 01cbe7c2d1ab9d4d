"""Validate a customer or site file without solving: the report behind ``planner validate``."""

from __future__ import annotations

import os
from collections.abc import Mapping

from planner.errors import InputError
from planner.inputs.customers import read_customers
from planner.inputs.sites import read_sites
from planner.inputs.tables import read_table
from planner.inputs.validation import (
    SITE_FIELDS,
    SITE_MARKERS,
    STATUS_ALIASES,
    VALIDATION_KINDS,
    ValidationReport,
    detect_columns,
    normalize_column,
    text_values,
    unreadable_report,
)
from planner.settings import DEFAULT_MAX_SNAP_M


def detect_kind(path: str | os.PathLike[str]) -> str:
    """Guess whether a file is a customer or a site list from its column names."""
    frame = read_table(path)
    found = detect_columns(frame.columns, fields=SITE_FIELDS)
    if any(k in found for k in SITE_MARKERS):
        return "sites"
    if "status" in found:
        statuses = {a for names in STATUS_ALIASES.values() for a in names}
        values = [normalize_column(v) for v in text_values(frame[found["status"]]) if v]
        if values and sum(v in statuses for v in values) > len(values) / 2:
            return "sites"
    return "customers"


def validate_file(
    path: str | os.PathLike[str],
    *,
    region: str | os.PathLike[str] | None = None,
    kind: str = "auto",
    mapping: Mapping[str, str] | None = None,
    crs: str | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> ValidationReport:
    """Validate a customer or site file and return the report (never raises for bad files).

    Parameters
    ----------
    path
        CSV, XLSX, GeoJSON, GeoPackage or Parquet file.
    region
        Region name or road file; when given, points are checked for being inside the region,
        swapped, and close enough to a road.
    kind
        ``"auto"`` (sites when the file has a kind/status/fixed_cost/capacity column),
        ``"customers"`` or ``"sites"``.
    mapping
        Explicit ``{field: column}`` mapping (see :data:`COLUMN_ALIASES` for the fields).
    crs
        CRS of x/y columns (for example ``"EPSG:32633"``).
    max_snap_m
        Maximum distance to a road.

    Returns
    -------
    ValidationReport
        ``exit_code`` 0 when clean, 1 when some rows have problems, 2 when unreadable.
    """
    if kind not in VALIDATION_KINDS:
        raise ValueError(f"kind must be one of {VALIDATION_KINDS}, got {kind!r}")
    if kind == "auto":
        try:
            kind = detect_kind(path)
        except InputError as exc:
            return unreadable_report(path, "customers", exc)
    if kind == "sites":
        return read_sites(
            path, mapping=mapping, region=region, crs=crs, max_snap_m=max_snap_m
        ).report
    return read_customers(
        path, mapping=mapping, region=region, crs=crs, max_snap_m=max_snap_m
    ).report
