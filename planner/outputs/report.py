"""A short, self-contained HTML report of a scenario or a layout comparison.

The report holds the map (embedded, works offline), the KPIs, the annual cost split with a
chart, the sites that appear in all or only one layout, the assumptions (cost parameters and
service standards) and the provenance needed to reproduce the figures. Print it to PDF from a
browser if a PDF is needed.
"""

from __future__ import annotations

import html
import io
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import pandas as pd

from planner._meta import OSM_CREDIT, OSM_LICENSE
from planner.outputs import maps
from planner.results.costs import describe_parameters
from planner.results.tables import comparison_row, provenance_table

logger = logging.getLogger(__name__)

__all__ = ["cost_chart_svg", "report_html"]

COST_PARTS: tuple[tuple[str, str], ...] = (
    ("fixed_eur", "fixed costs"),
    ("fees_eur", "partner fees"),
    ("deliveries_eur", "parts deliveries"),
    ("leakage_eur", "leakage (lost margin)"),
    ("customer_time_eur", "customer time"),
)
_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child, td.txt { text-align: left; }
.scroll { overflow-x: auto; }
.muted { color: #666; font-size: 0.9em; } .warn { color: #8a4b00; }
iframe.map { width: 100%; height: 520px; border: 1px solid #ccc; }
@media print { iframe.map { height: 420px; } }
"""


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:,.2f}"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return str(value)


def _table(frame: pd.DataFrame, *, percent: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for rec in frame.itertuples(index=False):
        cells = []
        for col, value in zip(frame.columns, rec, strict=True):
            if col in percent and isinstance(value, float) and not math.isnan(value):
                text = f"{100 * value:.1f} %"
            else:
                text = _fmt(value.item() if hasattr(value, "item") else value)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            align = "" if numeric else " class='txt'"
            cells.append(f"<td{align}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<div class='scroll'><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def cost_chart_svg(table: pd.DataFrame, *, label_column: str = "layout") -> str:
    """Stacked bars of the annual cost split per row of ``table``, as inline SVG text.

    Parameters
    ----------
    table
        Rows with ``label_column`` and the cost columns of :data:`COST_PARTS`.
    label_column
        Column naming each bar.
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.0, 1.4 + 0.55 * max(1, len(table))))
    ax = fig.add_subplot()
    labels = table[label_column].astype(str).tolist()
    left = [0.0] * len(table)
    for (col, name), color in zip(COST_PARTS, _COLORS, strict=True):
        if col not in table:
            continue
        values = (table[col].astype(float) / 1000.0).tolist()
        if not any(v > 0 for v in values):
            continue
        ax.barh(labels, values, left=left, label=name, color=color)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("annual cost, thousand EUR")
    ax.invert_yaxis()
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.35), ncol=3, fontsize="small")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    svg = buf.getvalue()
    return svg[svg.find("<svg") :]


def _map_iframe(result: Any, roads: gpd.GeoDataFrame | None) -> str:
    doc = maps.map_html(maps.result_map(result, roads=roads))
    return f'<iframe class="map" srcdoc="{html.escape(doc, quote=True)}"></iframe>'


def _assumptions(parameters: Any, standards: Mapping[str, float] | None) -> str:
    parts = []
    if parameters is not None:
        rows = pd.DataFrame(describe_parameters(parameters))
        rows["changed"] = rows["value"] != rows["default"]
        parts.append(_table(rows[["parameter", "value", "default", "changed", "meaning"]]))
    if standards:
        frame = pd.DataFrame(
            {"segment": list(standards), "service standard (min)": list(standards.values())}
        )
        parts.append(_table(frame))
    return "\n".join(parts)


def _provenance(prov: Mapping[str, Any]) -> str:
    table = provenance_table({k: v for k, v in prov.items() if k != "scenario"})
    return _table(table)


def _layout_section(name: str, lr: Any, roads: gpd.GeoDataFrame | None) -> str:
    res = getattr(lr, "result", lr)
    kpis = pd.DataFrame([(k, v) for k, v in res.kpis.items()], columns=["kpi", "value"])
    sol = res.solution
    status = (
        "proven optimal"
        if sol.optimal
        else f"not proven optimal: gap {100 * float(sol.gap):.2f} % to the lower bound"
    )
    short = res.shortlist()
    loads = getattr(lr, "loads", None)
    if loads is not None and len(loads):
        short = short.assign(site_id=short["site_id"].astype(str)).join(
            loads.set_index("site_id")[["jobs", "utilisation"]], on="site_id"
        )
    parts = [
        f"<h2>{html.escape(name)}</h2>",
        f"<p class='muted'>{html.escape(sol.model)} with {html.escape(str(sol.solver))}: "
        f"{html.escape(status)}, solved in {float(sol.solve_time_s):.1f} s.</p>",
        _map_iframe(res, roads),
        "<h3>Sites</h3>",
        _table(short, percent=("demand_share", "utilisation")),
        "<h3>KPIs</h3>",
        _table(kpis),
    ]
    if res.warnings:
        parts.append(
            "<ul class='warn'>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in res.warnings)
            + "</ul>"
        )
    return "\n".join(parts)


def report_html(
    results: Any,
    *,
    roads: gpd.GeoDataFrame | None = None,
    title: str | None = None,
) -> str:
    """Build the report as one HTML document (no external assets).

    Parameters
    ----------
    results
        A :class:`planner.results.types.Comparison`, a
        :class:`planner.results.types.LayoutResult` or
        a :class:`planner.results.types.ScenarioResult`.
    roads
        Main roads drawn on the maps (see :func:`planner.outputs.maps.main_roads`).
    title
        Title; default from the scenario name.

    Returns
    -------
    str
    """
    if hasattr(results, "table") and hasattr(results, "results"):
        per_layout: Mapping[str, Any] = results.results
        table: pd.DataFrame | None = results.table
        diff: pd.DataFrame | None = results.site_diff
    else:
        name = str(getattr(results, "layout", "") or "result")
        per_layout = {name: results}
        table = pd.DataFrame([comparison_row(results)]) if hasattr(results, "costs") else None
        diff = None
    first = next(iter(per_layout.values()))
    res0 = getattr(first, "result", first)
    prov = dict(res0.provenance)
    scenario = prov.get("scenario") or {}
    title = title or str(scenario.get("name") or "Service site plan")
    region = prov.get("region") or scenario.get("region") or ""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p class='muted'>Region {html.escape(str(region))}, OSM data of "
        f"{html.escape(str(prov.get('osm_date') or 'unknown date'))}; created "
        f"{html.escape(str(prov.get('created_utc', '')))}. Road data {html.escape(OSM_CREDIT)}"
        f" ({html.escape(OSM_LICENSE)}).</p>",
    ]
    if table is not None:
        shown = [
            c
            for c in (
                "layout",
                "sites",
                "offices",
                "mean_travel_min",
                "p90_travel_min",
                "max_travel_min",
                "share_within_sla",
                "annual_cost",
                "cost_per_job",
                "optimal",
                "gap",
            )
            if c in table
        ]
        body += [
            "<h2>Summary</h2>",
            _table(table[shown], percent=("share_within_sla", "gap")),
            "<h3>Annual cost split (EUR)</h3>",
            cost_chart_svg(table),
            _table(table[["layout", *[c for c, _ in COST_PARTS if c in table]]]),
        ]
    if diff is not None and len(diff):
        body += [
            "<h3>Sites across layouts</h3>",
            _table(diff.drop(columns=["lat", "lon"], errors="ignore")),
        ]
    for name, lr in per_layout.items():
        body.append(_layout_section(str(name), lr, roads))
    body += [
        "<h2>Assumptions</h2>",
        _assumptions(getattr(first, "parameters", None), scenario.get("service_standard_min")),
        "<h2>Provenance</h2>",
        _provenance(prov),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
