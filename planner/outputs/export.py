"""Exports of scenario results: CSV, XLSX, GeoJSON, GeoPackage, map HTML and the report.

Every writer takes ``overwrite: bool = False`` and refuses to replace an existing file with
:class:`OutputExistsError` (a :class:`FileExistsError`) that names the file and says how to
allow it. Every writer also accepts a binary buffer (:class:`io.BytesIO`) instead of a path, so
the app can offer downloads without temporary files. Writers take a
:class:`planner.results.types.LayoutResult` (or its
:class:`~planner.results.types.ScenarioResult`); the workbook and the report also a
:class:`~planner.results.types.Comparison`.

Every table written to CSV, XLSX, GeoJSON or GeoPackage first passes through
:func:`planner.outputs.safe.spreadsheet_safe`: text that a spreadsheet would run as a formula
(``=HYPERLINK(...)``, ``@SUM(...)``, ``+cmd|...``, ``-2+3``) is written with a leading ``'``,
and the workbook stores every text cell as text (never as a formula).

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

import io
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from planner.engine.workspace import InputFile
from planner.errors import PlannerError
from planner.inputs.tables import read_table
from planner.inputs.validation import ValidationReport
from planner.outputs import maps, road_layer
from planner.outputs.report import report_html
from planner.outputs.safe import csv_text, spreadsheet_safe, to_csv_bytes
from planner.results.capacity import not_at_nearest
from planner.results.costs import describe_parameters
from planner.results.market import market_map_layers, market_tables
from planner.results.site_figures import join_site_loads
from planner.results.tables import provenance_table, territories
from planner.results.types import Comparison, LayoutResult, Robustness, ScenarioResult

logger = logging.getLogger(__name__)

__all__ = [
    "CATCHMENT_BUFFER_M",
    "GIS_LAYERS",
    "OutputExistsError",
    "Target",
    "bad_rows_csv",
    "check_writable",
    "comparison_outputs",
    "layout_outputs",
    "result_layers",
    "shortlist_table",
    "write_assignments_csv",
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
CATCHMENT_BUFFER_M = maps.CATCHMENT_BUFFER_M

#: Where a writer writes: a file path, or a binary buffer such as :class:`io.BytesIO`.
Target = str | os.PathLike[str] | IO[bytes]

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


def _is_buffer(target: Target) -> bool:
    return not isinstance(target, str | os.PathLike)


def _check_target(target: Target, *, overwrite: bool) -> None:
    if not _is_buffer(target):
        check_writable(target, overwrite=overwrite)  # type: ignore[arg-type]


def _write_bytes(data: bytes, target: Target, *, overwrite: bool) -> Path | IO[bytes]:
    """Write ``data`` to a path (checked with :func:`check_writable`) or into a buffer."""
    if _is_buffer(target):
        buffer: IO[bytes] = target  # type: ignore[assignment]
        buffer.write(data)
        return buffer
    p = check_writable(target, overwrite=overwrite)  # type: ignore[arg-type]
    p.write_bytes(data)
    return p


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    return csv_text(frame).encode("utf-8")


def _scenario(result: LayoutResult | ScenarioResult) -> ScenarioResult:
    if isinstance(result, LayoutResult):
        return result.result
    if isinstance(result, ScenarioResult):
        return result
    raise TypeError(f"expected a LayoutResult or ScenarioResult, got {type(result).__name__}")


def _loads(result: LayoutResult | ScenarioResult) -> pd.DataFrame | None:
    return result.loads if isinstance(result, LayoutResult) and len(result.loads) else None


# ============================================================================ tables


def write_shortlist_csv(
    result: LayoutResult | ScenarioResult, path: Target, *, overwrite: bool = False
) -> Path | IO[bytes]:
    """Write the shortlist (one row per proposed site) as UTF-8 CSV.

    Parameters
    ----------
    result
        The solved layout.
    path
        ``.csv`` file or binary buffer.
    overwrite
        Replace an existing file.

    Returns
    -------
    pathlib.Path or buffer
        What was written to.
    """
    _check_target(path, overwrite=overwrite)
    return _write_bytes(_csv_bytes(shortlist_table(result)), path, overwrite=overwrite)


def shortlist_table(result: LayoutResult | ScenarioResult) -> pd.DataFrame:
    """The shortlist with each site's jobs, capacity and utilisation (when known)."""
    table = _scenario(result).shortlist()
    loads = _loads(result)
    if loads is not None:
        table = join_site_loads(table, loads)
    return table


def write_assignments_csv(
    result: LayoutResult | ScenarioResult, path: Target, *, overwrite: bool = False
) -> Path | IO[bytes]:
    """Write every customer's site and travel minutes (``customer_id, site_id, travel_min``)."""
    _check_target(path, overwrite=overwrite)
    return _write_bytes(_csv_bytes(_scenario(result).assignments()), path, overwrite=overwrite)


def write_territories_csv(
    layout_result: LayoutResult, path: Target, *, overwrite: bool = False
) -> Path | IO[bytes]:
    """Write the territory list (every customer's workshop, and office in two-tier) as CSV."""
    _check_target(path, overwrite=overwrite)
    return _write_bytes(_csv_bytes(territories(layout_result)), path, overwrite=overwrite)


def write_comparison_csv(
    comparison: Comparison, path: Target, *, overwrite: bool = False
) -> Path | IO[bytes]:
    """Write the comparison table (one row per layout) as CSV."""
    _check_target(path, overwrite=overwrite)
    return _write_bytes(_csv_bytes(comparison.table), path, overwrite=overwrite)


def _sheet_name(name: str, used: set[str]) -> str:
    base = "".join(c for c in name if c not in "[]:*?/\\")[:_EXCEL_SHEET_CHARS] or "sheet"
    out, i = base, 2
    while out.lower() in used:
        suffix = f" {i}"
        out = base[: _EXCEL_SHEET_CHARS - len(suffix)] + suffix
        i += 1
    used.add(out.lower())
    return out


def write_xlsx(
    results: Comparison | LayoutResult | Mapping[str, LayoutResult],
    path: Target,
    *,
    overwrite: bool = False,
    k_curve: pd.DataFrame | None = None,
    robustness: Robustness | None = None,
) -> Path | IO[bytes]:
    """Write an Excel workbook: the comparison, a shortlist sheet per layout, and more.

    Every text cell is stored as text (never a formula) and text that starts like a formula is
    prefixed with ``'`` (see :func:`planner.outputs.safe.spreadsheet_safe`).

    Parameters
    ----------
    results
        A :class:`planner.results.types.Comparison` (sheets ``comparison``, one per layout
        with each site's load, capacity, utilisation and fixed cost, ``<layout> not nearest``
        when customers are sent past a full site, ``site diff``, ``assumptions``,
        ``provenance``), one layout result, or a mapping ``{name: layout result}``.
    path
        ``.xlsx`` file or binary buffer.
    overwrite
        Replace an existing file.
    k_curve
        The K-curve (:func:`planner.engine.k_curve`): adds a ``k-curve`` sheet.
    robustness
        The robustness cases (:func:`planner.engine.robustness`): adds ``robustness cases``
        and ``robustness sites`` sheets.
    """
    _check_target(path, overwrite=overwrite)
    if isinstance(results, Comparison):
        per_layout: Mapping[str, LayoutResult] = results.results
        comparison: pd.DataFrame | None = results.table
        diff: pd.DataFrame | None = results.site_diff
    elif isinstance(results, LayoutResult):
        per_layout, comparison, diff = {results.layout or "shortlist": results}, None, None
    elif isinstance(results, Mapping):
        per_layout, comparison, diff = results, None, None
    else:
        raise TypeError(
            f"expected a Comparison, a LayoutResult or a mapping, got {type(results).__name__}"
        )
    if not per_layout:
        raise ValueError("write_xlsx needs at least one layout result")
    sheets: list[tuple[str, pd.DataFrame]] = []
    if comparison is not None:
        sheets.append(("comparison", comparison))
    sheets += [(str(name), shortlist_table(lr)) for name, lr in per_layout.items()]
    # customers sent past their nearest site because it is full (capacitated plans)
    for name, lr in per_layout.items():
        displaced = not_at_nearest(lr)
        if len(displaced):
            sheets.append((f"{name} not nearest", displaced))
    for name, lr in per_layout.items():
        if lr.market is not None:
            prefix = "" if len(per_layout) == 1 else f"{name} "
            sheets += [(prefix + key, t) for key, t in market_tables(lr.market).items()]
    if diff is not None:
        sheets.append(("site diff", diff))
    if k_curve is not None:
        sheets.append(("k-curve", k_curve))
    if robustness is not None:
        sheets += [("robustness cases", robustness.cases), ("robustness sites", robustness.sites)]
    first = next(iter(per_layout.values()))
    sheets.append(("assumptions", pd.DataFrame(describe_parameters(first.parameters))))
    sheets.append(("provenance", provenance_table(first.result.provenance)))
    buffer = io.BytesIO()
    used: set[str] = set()
    with pd.ExcelWriter(buffer, engine="openpyxl") as writer:
        for name, frame in sheets:
            _excel_frame(frame).to_excel(writer, sheet_name=_sheet_name(name, used), index=False)
        for sheet in writer.book.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if cell.data_type == "f":  # nothing the planner writes is a formula
                        cell.data_type = "s"
    return _write_bytes(buffer.getvalue(), path, overwrite=overwrite)


def _excel_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Spreadsheet-safe copy with lists as text (openpyxl cannot write lists)."""
    out = pd.DataFrame(frame).copy()
    for col in out.columns:
        if out[col].dtype == object and out[col].map(lambda v: isinstance(v, list | tuple)).any():
            out[col] = out[col].map(
                lambda v: ", ".join(map(str, v)) if isinstance(v, list | tuple) else v
            )
    return spreadsheet_safe(out)


# ============================================================================ GIS


def result_layers(result: LayoutResult | ScenarioResult) -> dict[str, gpd.GeoDataFrame]:
    """The GIS layers of a result: customers, sites, assignments, catchments (EPSG:4326).

    Returns
    -------
    dict
        ``{layer name: GeoDataFrame}`` in the order of :data:`GIS_LAYERS`.
    """
    res = _scenario(result)
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
    loads = _loads(result)
    if loads is not None:
        sites_tab = join_site_loads(sites_tab, loads)
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
    catchments = maps.catchment_polygons(cust[served], s, buffer_m=CATCHMENT_BUFFER_M)
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


def _gis_bytes(layers: Mapping[str, gpd.GeoDataFrame], *, driver: str, suffix: str) -> bytes:
    """Write spreadsheet-safe layers to a private temporary file and return its bytes."""
    with tempfile.TemporaryDirectory(prefix="planner-export-") as folder:
        tmp = Path(folder) / f"layers{suffix}"
        for name, frame in layers.items():
            spreadsheet_safe(frame).to_file(tmp, layer=name, driver=driver)
        return tmp.read_bytes()


def write_geojson(
    result: LayoutResult | ScenarioResult,
    path: Target,
    *,
    layer: str = "sites",
    overwrite: bool = False,
) -> Path | IO[bytes]:
    """Write one GIS layer of a result as GeoJSON (RFC 7946, EPSG:4326).

    Parameters
    ----------
    result
        Scenario or layout result.
    path
        ``.geojson`` file or binary buffer.
    layer
        One of :data:`GIS_LAYERS`.
    overwrite
        Replace an existing file.
    """
    if layer not in GIS_LAYERS:
        raise ValueError(f"unknown layer {layer!r}; allowed: {list(GIS_LAYERS)}")
    _check_target(path, overwrite=overwrite)
    frame = result_layers(result)[layer]
    data = _gis_bytes({layer: frame}, driver="GeoJSON", suffix=".geojson")
    return _write_bytes(data, path, overwrite=overwrite)


def write_geopackage(
    result: LayoutResult | ScenarioResult, path: Target, *, overwrite: bool = False
) -> Path | IO[bytes]:
    """Write all GIS layers (:data:`GIS_LAYERS`) into one GeoPackage that opens in QGIS.

    ``path`` is a ``.gpkg`` file or a binary buffer.
    """
    _check_target(path, overwrite=overwrite)
    data = _gis_bytes(result_layers(result), driver="GPKG", suffix=".gpkg")
    return _write_bytes(data, path, overwrite=overwrite)


# ============================================================================ HTML


def write_map_html(
    result: LayoutResult | ScenarioResult,
    path: Target,
    *,
    roads: gpd.GeoDataFrame | None = None,
    graph: nx.MultiDiGraph | None = None,
    overwrite: bool = False,
) -> Path | IO[bytes]:
    """Write the result map as one standalone HTML file that opens offline.

    Parameters
    ----------
    result
        The solved layout.
    path
        ``.html`` file or binary buffer.
    roads
        The road layer (:func:`planner.outputs.road_layer.map_roads`), drawn as the app draws it.
    graph
        The road graph; its road layer is drawn when ``roads`` is not given.
    overwrite
        Replace an existing file.

    Delegates to :func:`planner.outputs.maps.result_map` and :func:`planner.outputs.maps.map_html`.
    """
    _check_target(path, overwrite=overwrite)
    if roads is None and graph is not None:
        roads = road_layer.map_roads(graph)
    layers = market_map_layers(result.market) if isinstance(result, LayoutResult) else {}
    doc = maps.map_html(maps.result_map(_scenario(result), roads=roads, **layers))
    return _write_bytes(doc.encode("utf-8"), path, overwrite=overwrite)


def write_report_html(
    results: Comparison | LayoutResult,
    path: Target,
    *,
    roads: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    overwrite: bool = False,
    k_curve: pd.DataFrame | None = None,
    robustness: Robustness | None = None,
) -> Path | IO[bytes]:
    """Write the short HTML report: map, KPIs, costs, assumptions and provenance.

    Parameters
    ----------
    results
        A :class:`planner.results.types.Comparison` or one layout result.
    path
        ``.html`` file (self-contained, works offline, prints on A4) or binary buffer.
    roads
        Main roads drawn on the map.
    title
        Report title.
    overwrite
        Replace an existing file.
    k_curve, robustness
        Add the K-curve and robustness tables (see :func:`planner.outputs.report.report_html`).
    """
    _check_target(path, overwrite=overwrite)
    doc = report_html(results, roads=roads, title=title, k_curve=k_curve, robustness=robustness)
    return _write_bytes(doc.encode("utf-8"), path, overwrite=overwrite)


# ============================================================================ bundles


def comparison_outputs(
    folder: str | os.PathLike[str], layouts: Mapping[str, Any] | list[str] | tuple[str, ...]
) -> dict[str, Path]:
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
    comparison: Comparison,
    folder: str | os.PathLike[str],
    *,
    roads: gpd.GeoDataFrame | None = None,
    overwrite: bool = False,
    k_curve: pd.DataFrame | None = None,
    robustness: Robustness | None = None,
) -> dict[str, Path]:
    """Write everything of a layout comparison into ``folder``.

    ``comparison.csv`` (one row per layout), ``site_diff.csv``, ``shortlist_<layout>.csv`` and
    ``territories_<layout>.csv`` per layout, ``sites_<layout>.geojson`` and ``<layout>.gpkg``
    (customers, sites, assignments, catchments) per layout, ``comparison.xlsx`` and
    ``report.html`` (both with the K-curve and robustness tables when given). Nothing is
    written when any of the files exists and ``overwrite`` is false.

    Returns
    -------
    dict
        Role -> written path.
    """
    files = comparison_outputs(folder, comparison.results)
    for p in files.values():
        check_writable(p, overwrite=overwrite)
    write_comparison_csv(comparison, files["comparison"], overwrite=True)
    files["site_diff"].write_bytes(_csv_bytes(comparison.site_diff))
    for layout, lr in comparison.results.items():
        write_shortlist_csv(lr, files[f"shortlist:{layout}"], overwrite=True)
        write_territories_csv(lr, files[f"territories:{layout}"], overwrite=True)
        write_geojson(lr, files[f"sites_geojson:{layout}"], layer="sites", overwrite=True)
        write_geopackage(lr, files[f"gpkg:{layout}"], overwrite=True)
    write_xlsx(comparison, files["xlsx"], overwrite=True, k_curve=k_curve, robustness=robustness)
    write_report_html(
        comparison,
        files["report"],
        roads=roads,
        overwrite=True,
        k_curve=k_curve,
        robustness=robustness,
    )
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
    layout_result: LayoutResult,
    folder: str | os.PathLike[str],
    *,
    roads: gpd.GeoDataFrame | None = None,
    graph: nx.MultiDiGraph | None = None,
    overwrite: bool = False,
    k_curve: pd.DataFrame | None = None,
    robustness: Robustness | None = None,
) -> dict[str, Path]:
    """Write the exports of one solved scenario into ``folder``.

    ``shortlist.csv``, ``assignments.csv`` (customer_id, site_id, travel_min),
    ``territories.csv``, ``plan.xlsx``, ``plan.gpkg`` (customers, sites,
    assignments, catchments), ``map.html`` and ``report.html``. Nothing is written when any of
    the files exists and ``overwrite`` is false.

    Parameters
    ----------
    layout_result
        The solved layout.
    folder
        Output folder (created when missing).
    roads
        The road layer of the maps (:func:`planner.outputs.road_layer.map_roads`).
    graph
        The road graph; its road layer is drawn when ``roads`` is not given.
    overwrite
        Replace existing files.
    k_curve, robustness
        Add the K-curve and robustness tables to the workbook and the report.
    """
    files = layout_outputs(folder)
    for p in files.values():
        check_writable(p, overwrite=overwrite)
    if roads is None and graph is not None:
        roads = road_layer.map_roads(graph)
    write_shortlist_csv(layout_result, files["shortlist"], overwrite=True)
    write_assignments_csv(layout_result, files["assignments"], overwrite=True)
    write_territories_csv(layout_result, files["territories"], overwrite=True)
    write_xlsx(layout_result, files["xlsx"], overwrite=True, k_curve=k_curve, robustness=robustness)
    write_geopackage(layout_result, files["gpkg"], overwrite=True)
    write_map_html(layout_result, files["map"], roads=roads, overwrite=True)
    write_report_html(
        layout_result,
        files["report"],
        roads=roads,
        overwrite=True,
        k_curve=k_curve,
        robustness=robustness,
    )
    return files


def bad_rows_csv(upload: InputFile, report: ValidationReport) -> bytes:
    """The rows of ``upload`` that have problems, as CSV, with ``row`` and ``problems`` columns.

    The user fixes these rows and uploads them again; nothing is dropped silently.
    """
    table = pd.DataFrame(read_table(upload.open()))
    if "geometry" in table:
        table = table.drop(columns="geometry")
    issues = report.to_frame().dropna(subset=["row"])
    rows = sorted({int(r) for r in issues["row"]})
    problems = issues.groupby("row")["problem"].agg("; ".join)
    picked = table.iloc[[r - 1 for r in rows if 0 < r <= len(table)]].copy()
    picked.insert(0, "row", [r for r in rows if 0 < r <= len(table)])
    picked["problems"] = [problems.get(r, "") for r in picked["row"]]
    return to_csv_bytes(picked)
