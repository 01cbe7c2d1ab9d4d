"""Exports of scenario results: CSV, XLSX, GeoJSON, GeoPackage, map HTML and the report.

Every writer takes ``overwrite: bool = False`` and refuses to replace an existing file with
:class:`OutputExistsError` (a :class:`FileExistsError`) that names the file and says how to
allow it. Writers accept a :class:`planner.results.types.ScenarioResult` or a
:class:`planner.results.types.LayoutResult` (its ``result`` is used).

GIS layers (:func:`result_layers`, all EPSG:4326):

``customers``
    Points, one per customer, with its ``site_id`` and ``travel_min``.
``sites``
    Points, one per opened site, with role, load and travel statistics.
``assignments``
    Lines from each served customer to its site.
``catchments``
    Polygons, one per site: the convex hull of its customers, buffered by
    :data:`CATCHMENT_BUFFER_M` so that sites with one or two customers get an area too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner.errors import PlannerError
from planner.outputs import maps
from planner.outputs.report import report_html
from planner.results.costs import describe_parameters
from planner.results.tables import provenance_table, territories

logger = logging.getLogger(__name__)

__all__ = [
    "CATCHMENT_BUFFER_M",
    "GIS_LAYERS",
    "OutputExistsError",
    "check_writable",
    "comparison_outputs",
    "layout_outputs",
    "result_layers",
    "write_comparison_bundle",
    "write_comparison_csv",
    "write_geojson",
    "write_geopackage",
    "write_layout_bundle",
    "write_map_html",
    "write_report_html",
    "write_shortlist_csv",
    "write_territories_csv",
    "write_xlsx",
]

#: Layers written to GeoPackage / GeoJSON, in order.
GIS_LAYERS: tuple[str, ...] = ("customers", "sites", "assignments", "catchments")

#: Buffer (m) around each site's customers that makes its catchment polygon.
CATCHMENT_BUFFER_M = 150.0

_EXCEL_SHEET_CHARS = 31


class OutputExistsError(PlannerError, FileExistsError):
    """An export would replace an existing file and ``overwrite`` was not given."""


def check_writable(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Return ``path`` as a Path after checking it may be written.

    Raises
    ------
    OutputExistsError
        When the file exists and ``overwrite`` is false.
    """
    p = Path(path)
    if p.exists() and not overwrite:
        raise OutputExistsError(
            f"{p} already exists; pass overwrite=True (or --overwrite on the command line) to "
            "replace it, or choose another name"
        )
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _result(obj: Any) -> Any:
    """Unwrap a LayoutResult into its ScenarioResult."""
    return getattr(obj, "result", obj)


# ============================================================================ tables


def write_shortlist_csv(
    result: Any, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the shortlist (one row per proposed site) as UTF-8 CSV.

    Returns
    -------
    pathlib.Path
    """
    p = check_writable(path, overwrite=overwrite)
    _shortlist(result).to_csv(p, index=False, encoding="utf-8")
    return p


def _shortlist(obj: Any) -> pd.DataFrame:
    res = _result(obj)
    table = res.shortlist()
    loads = getattr(obj, "loads", None)
    if loads is not None and len(loads):
        extra = loads.set_index("site_id")[["jobs", "capacity_jobs", "utilisation"]]
        table["site_id"] = table["site_id"].astype(str)
        table = table.join(extra, on="site_id")
    return table


def write_territories_csv(
    layout_result: Any, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the territory list (every customer's workshop, and office in two-tier) as CSV."""
    p = check_writable(path, overwrite=overwrite)
    territories(layout_result).to_csv(p, index=False, encoding="utf-8")
    return p


def write_comparison_csv(
    comparison: Any, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write the comparison table (one row per layout) as CSV."""
    p = check_writable(path, overwrite=overwrite)
    comparison.table.to_csv(p, index=False, encoding="utf-8")
    return p


def _sheet_name(name: str, used: set[str]) -> str:
    base = "".join(c for c in name if c not in "[]:*?/\\")[:_EXCEL_SHEET_CHARS] or "sheet"
    out, i = base, 2
    while out.lower() in used:
        suffix = f" {i}"
        out = base[: _EXCEL_SHEET_CHARS - len(suffix)] + suffix
        i += 1
    used.add(out.lower())
    return out


def write_xlsx(results: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write an Excel workbook: the comparison, a shortlist sheet per layout, and more.

    Parameters
    ----------
    results
        A :class:`planner.results.types.Comparison` (sheets ``comparison``, ``site diff``, one per
        layout, ``assumptions``, ``provenance``), a single layout / scenario result, or a
        mapping ``{name: result}``.
    path
        ``.xlsx`` file.
    overwrite
        Replace an existing file.
    """
    p = check_writable(path, overwrite=overwrite)
    if hasattr(results, "table") and hasattr(results, "results"):
        per_layout: Mapping[str, Any] = results.results
        comparison: pd.DataFrame | None = results.table
        diff: pd.DataFrame | None = results.site_diff
    elif isinstance(results, Mapping):
        per_layout, comparison, diff = results, None, None
    else:
        name = str(getattr(results, "layout", "") or "shortlist")
        per_layout, comparison, diff = {name: results}, None, None
    used: set[str] = set()
    first = next(iter(per_layout.values()))
    with pd.ExcelWriter(p, engine="openpyxl") as writer:
        if comparison is not None:
            comparison.to_excel(writer, sheet_name=_sheet_name("comparison", used), index=False)
        for name, obj in per_layout.items():
            _shortlist(obj).to_excel(writer, sheet_name=_sheet_name(str(name), used), index=False)
        if diff is not None:
            diff.to_excel(writer, sheet_name=_sheet_name("site diff", used), index=False)
        params = getattr(first, "parameters", None)
        if params is not None:
            pd.DataFrame(describe_parameters(params)).to_excel(
                writer, sheet_name=_sheet_name("assumptions", used), index=False
            )
        provenance_table(_result(first).provenance).to_excel(
            writer, sheet_name=_sheet_name("provenance", used), index=False
        )
    return p


# ============================================================================ GIS


def _utm(frame: gpd.GeoDataFrame) -> Any:
    try:
        return frame.estimate_utm_crs()
    except (RuntimeError, ValueError):  # empty frames
        return "EPSG:3857"


def result_layers(result: Any) -> dict[str, gpd.GeoDataFrame]:
    """The GIS layers of a result: customers, sites, assignments, catchments (EPSG:4326).

    Returns
    -------
    dict
        ``{layer name: GeoDataFrame}`` in the order of :data:`GIS_LAYERS`.
    """
    res = _result(result)
    cust = res.customers
    keep_c = [
        c
        for c in (
            "customer_id",
            "segment",
            "weight",
            "site_id",
            "travel_min",
            "snap_distance_m",
            "excluded_reason",
        )
        if c in cust
    ]
    customers = gpd.GeoDataFrame(
        _plain(cust[keep_c]),
        geometry=gpd.points_from_xy(cust["lon"], cust["lat"]),
        crs="EPSG:4326",
    )
    s = res.sites
    sites_tab = _plain(pd.DataFrame(s.drop(columns=s.geometry.name)))
    loads = getattr(result, "loads", None)
    if loads is not None and len(loads):
        extra = loads.set_index("site_id")[["jobs", "capacity_jobs", "utilisation"]]
        sites_tab = sites_tab.join(extra, on="site_id")
    sites = gpd.GeoDataFrame(
        sites_tab, geometry=gpd.points_from_xy(s["lon"], s["lat"]), crs="EPSG:4326"
    )
    site_xy = {str(r.site_id): (float(r.lon), float(r.lat)) for r in s.itertuples(index=False)}
    sid = cust["site_id"].fillna("").astype(str).to_numpy()
    served = np.array([x in site_xy for x in sid], dtype=bool)
    lines = [
        shapely.LineString([(lon, lat), site_xy[x]])
        for lon, lat, x in zip(
            cust["lon"].to_numpy(float)[served],
            cust["lat"].to_numpy(float)[served],
            sid[served],
            strict=True,
        )
    ]
    assignments = gpd.GeoDataFrame(
        {
            "customer_id": cust["customer_id"].astype(str).to_numpy()[served],
            "site_id": sid[served],
            "travel_min": cust["travel_min"].to_numpy(float)[served],
        },
        geometry=gpd.GeoSeries(lines, crs="EPSG:4326"),
    )
    catchments = _catchments(customers[served], sites)
    return {
        "customers": customers,
        "sites": sites,
        "assignments": assignments,
        "catchments": catchments,
    }


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy with object columns as str (GIS drivers reject mixed objects)."""
    out = pd.DataFrame(frame).copy()
    for col in out.columns:
        if out[col].dtype == object or str(out[col].dtype) in ("string", "str"):
            out[col] = (
                out[col].map(lambda v: "" if v is None or v is pd.NA else str(v)).astype(object)
            )
        elif out[col].dtype == bool:
            out[col] = out[col].astype(int)
    return out


def _catchments(customers: gpd.GeoDataFrame, sites: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    utm = _utm(sites if len(sites) else customers)
    pts = customers.to_crs(utm)
    site_pts = sites.to_crs(utm)
    rows = []
    geoms = []
    for site in site_pts.itertuples(index=False):
        sid = str(site.site_id)
        mine = pts[pts["site_id"].astype(str) == sid]
        if len(mine) == 0:
            continue
        union = shapely.union_all([*mine.geometry.to_numpy(), site.geometry])
        geoms.append(shapely.convex_hull(union).buffer(CATCHMENT_BUFFER_M))
        rows.append(
            {
                "site_id": sid,
                "role": str(getattr(site, "role", "")),
                "customers": len(mine),
                "demand": float(mine["weight"].sum()) if "weight" in mine else float(len(mine)),
            }
        )
    frame = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=["site_id", "role", "customers", "demand"]),
        geometry=gpd.GeoSeries(geoms, crs=utm),
    )
    return frame.to_crs("EPSG:4326")


def write_geojson(
    result: Any,
    path: str | os.PathLike[str],
    *,
    layer: str = "sites",
    overwrite: bool = False,
) -> Path:
    """Write one GIS layer of a result as GeoJSON (RFC 7946, EPSG:4326).

    Parameters
    ----------
    result
        Scenario or layout result.
    path
        ``.geojson`` file.
    layer
        One of :data:`GIS_LAYERS`.
    overwrite
        Replace an existing file.
    """
    if layer not in GIS_LAYERS:
        raise ValueError(f"unknown layer {layer!r}; allowed: {list(GIS_LAYERS)}")
    p = check_writable(path, overwrite=overwrite)
    if p.exists():
        p.unlink()
    result_layers(result)[layer].to_file(p, driver="GeoJSON")
    return p


def write_geopackage(result: Any, path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Write all GIS layers (:data:`GIS_LAYERS`) into one GeoPackage that opens in QGIS."""
    p = check_writable(path, overwrite=overwrite)
    if p.exists():
        p.unlink()
    for name, frame in result_layers(result).items():
        frame.to_file(p, layer=name, driver="GPKG")
    return p


# ============================================================================ HTML


def write_map_html(
    result: Any,
    path: str | os.PathLike[str],
    *,
    roads: gpd.GeoDataFrame | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the result map as one standalone HTML file that opens offline.

    Delegates to :func:`planner.outputs.maps.result_map` and :func:`planner.outputs.maps.save_map`.
    """
    p = check_writable(path, overwrite=overwrite)
    return maps.save_map(maps.result_map(_result(result), roads=roads), p)


def write_report_html(
    results: Any,
    path: str | os.PathLike[str],
    *,
    roads: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the short HTML report: map, KPIs, costs, assumptions and provenance.

    Parameters
    ----------
    results
        A :class:`planner.results.types.Comparison` or one layout result.
    path
        ``.html`` file (self-contained, works offline).
    roads
        Main roads drawn on the map.
    title
        Report title.
    overwrite
        Replace an existing file.
    """
    p = check_writable(path, overwrite=overwrite)
    p.write_text(report_html(results, roads=roads, title=title), encoding="utf-8")
    return p


# ============================================================================ bundles


def comparison_outputs(folder: str | os.PathLike[str], layouts: Any) -> dict[str, Path]:
    """The files :func:`write_comparison_bundle` writes into ``folder``, by role."""
    out = Path(folder)
    files = {
        "comparison": out / "comparison.csv",
        "site_diff": out / "site_diff.csv",
        "xlsx": out / "comparison.xlsx",
        "report": out / "report.html",
    }
    for layout in layouts:
        files[f"shortlist:{layout}"] = out / f"shortlist_{layout}.csv"
        files[f"territories:{layout}"] = out / f"territories_{layout}.csv"
        files[f"sites_geojson:{layout}"] = out / f"sites_{layout}.geojson"
        files[f"gpkg:{layout}"] = out / f"{layout}.gpkg"
    return files


def write_comparison_bundle(
    comparison: Any,
    folder: str | os.PathLike[str],
    *,
    roads: gpd.GeoDataFrame | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write everything of a layout comparison into ``folder``.

    ``comparison.csv`` (one row per layout), ``site_diff.csv``, ``shortlist_<layout>.csv`` and
    ``territories_<layout>.csv`` per layout, ``sites_<layout>.geojson`` and ``<layout>.gpkg``
    (customers, sites, assignments, catchments) per layout, ``comparison.xlsx`` and
    ``report.html``. Nothing is written when any of the files exists and ``overwrite`` is false.

    Returns
    -------
    dict
        Role -> written path.
    """
    files = comparison_outputs(folder, comparison.results)
    for p in files.values():
        check_writable(p, overwrite=overwrite)
    write_comparison_csv(comparison, files["comparison"], overwrite=True)
    comparison.site_diff.to_csv(files["site_diff"], index=False, encoding="utf-8")
    for layout, lr in comparison.results.items():
        write_shortlist_csv(lr, files[f"shortlist:{layout}"], overwrite=True)
        write_territories_csv(lr, files[f"territories:{layout}"], overwrite=True)
        write_geojson(lr, files[f"sites_geojson:{layout}"], layer="sites", overwrite=True)
        write_geopackage(lr, files[f"gpkg:{layout}"], overwrite=True)
    write_xlsx(comparison, files["xlsx"], overwrite=True)
    write_report_html(comparison, files["report"], roads=roads, overwrite=True)
    return files


def layout_outputs(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """The files :func:`write_layout_bundle` writes into ``folder``, by role."""
    out = Path(folder)
    return {
        "shortlist": out / "shortlist.csv",
        "assignments": out / "assignments.csv",
        "territories": out / "territories.csv",
        "xlsx": out / "plan.xlsx",
        "gpkg": out / "plan.gpkg",
        "map": out / "map.html",
        "report": out / "report.html",
    }


def write_layout_bundle(
    layout_result: Any,
    folder: str | os.PathLike[str],
    *,
    roads: gpd.GeoDataFrame | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the exports of one solved scenario into ``folder``.

    ``shortlist.csv``, ``assignments.csv`` (customer_id, site_id, travel_min),
    ``territories.csv``, ``plan.xlsx``, ``plan.gpkg`` (customers, sites,
    assignments, catchments), ``map.html`` and ``report.html``. Nothing is written when any of
    the files exists and ``overwrite`` is false.
    """
    files = layout_outputs(folder)
    for p in files.values():
        check_writable(p, overwrite=overwrite)
    write_shortlist_csv(layout_result, files["shortlist"], overwrite=True)
    layout_result.result.assignments().to_csv(files["assignments"], index=False, encoding="utf-8")
    write_territories_csv(layout_result, files["territories"], overwrite=True)
    write_xlsx(layout_result, files["xlsx"], overwrite=True)
    write_geopackage(layout_result, files["gpkg"], overwrite=True)
    write_map_html(layout_result, files["map"], roads=roads, overwrite=True)
    write_report_html(layout_result, files["report"], roads=roads, overwrite=True)
    return files
