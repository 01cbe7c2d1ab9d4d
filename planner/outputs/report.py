"""A short, self-contained HTML report of a scenario or a layout comparison.

The report holds the map (embedded, works offline), the KPIs, the annual cost split with a
chart, the sites that appear in all or only one layout, the assumptions (cost parameters and
service standards), the K-curve and robustness tables when given, and the provenance needed
to reproduce the figures.

Figures are written for people: plain-word labels and units from
:data:`planner.results.tables.KPI_LABELS` (the app uses the same table), thousands
separators, shares in per cent, coordinates with 5 decimals. The page prints on A4 portrait
without cutting columns (``@page`` size, fixed table layout, wrapping cells, smaller print
fonts): print it to PDF from a browser when a PDF is needed.
"""

from __future__ import annotations

import html
import io
import logging
from collections.abc import Mapping

import geopandas as gpd
import pandas as pd

from planner._meta import OSM_CREDIT, OSM_LICENSE
from planner.outputs import maps
from planner.results.capacity import not_at_nearest, utilisation_table
from planner.results.costs import CostParameters, describe_parameters
from planner.results.display import COST_PARTS
from planner.results.market import market_map_layers, market_tables
from planner.results.site_figures import join_site_loads
from planner.results.tables import (
    comparison_row,
    display_table,
    format_value,
    provenance_table,
)
from planner.results.types import Comparison, LayoutResult, Robustness

logger = logging.getLogger(__name__)

__all__ = ["cost_chart_svg", "report_html"]

_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")

_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2em auto;
       max-width: 1100px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.9em; width: 100%;
        table-layout: auto; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: right; vertical-align: top;
         overflow-wrap: anywhere; word-break: break-word; }
th { background: #f3f3f3; font-weight: 600; }
td:first-child, th:first-child, td.txt, th.txt { text-align: left; }
.scroll { overflow-x: auto; }
.muted { color: #666; font-size: 0.9em; } .warn { color: #8a4b00; }
iframe.map { width: 100%; height: 520px; border: 1px solid #ccc; }
svg { max-width: 100%; height: auto; }
@page { size: A4 portrait; margin: 12mm 10mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9pt; }
  h1 { font-size: 15pt; } h2 { font-size: 12pt; break-after: avoid; }
  h3 { font-size: 10pt; break-after: avoid; }
  .scroll { overflow: visible; }
  table { font-size: 7.5pt; table-layout: fixed; width: 100%; }
  th, td { padding: 1px 3px; }
  tr { break-inside: avoid; }
  iframe.map { height: 380px; break-inside: avoid; }
}
"""


def _table(frame: pd.DataFrame) -> str:
    """An HTML table of a result table, with people's labels, units and number formats."""
    shown = display_table(frame)
    text_cols = {
        label
        for col, label in zip(frame.columns, shown.columns, strict=True)
        if not pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col])
    }
    head = "".join(
        f"<th{' class=txt' if c in text_cols else ''}>{html.escape(str(c))}</th>"
        for c in shown.columns
    )
    rows = []
    for rec in shown.itertuples(index=False):
        cells = [
            f"<td{' class=txt' if col in text_cols else ''}>{html.escape(str(value))}</td>"
            for col, value in zip(shown.columns, rec, strict=True)
        ]
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


def _map_iframe(result: LayoutResult, roads: gpd.GeoDataFrame | None) -> str:
    doc = maps.map_html(
        maps.result_map(result.result, roads=roads, **market_map_layers(result.market))
    )
    return f'<iframe class="map" srcdoc="{html.escape(doc, quote=True)}"></iframe>'


def _assumptions(parameters: CostParameters, standards: Mapping[str, float] | None) -> str:
    parts = []
    rows = pd.DataFrame(describe_parameters(parameters))
    changed = rows["value"] != rows["default"]
    frame = pd.DataFrame(
        {
            "parameter": rows["parameter"],
            "meaning": rows["meaning"],
            "value": [format_value(v, "number") for v in rows["value"]],
            "default": [format_value(v, "number") for v in rows["default"]],
            "changed": ["yes" if c else "" for c in changed],
        }
    )
    parts.append(_table(frame))
    if standards:
        std = pd.DataFrame(
            {
                "segment": list(standards),
                "service standard (min)": [
                    format_value(v, "min", with_unit=False) for v in standards.values()
                ],
            }
        )
        parts.append(_table(std))
    return "\n".join(parts)


def _provenance(prov: Mapping[str, object]) -> str:
    table = provenance_table({k: v for k, v in prov.items() if k != "scenario"})
    return _table(table)


def _status(lr: LayoutResult) -> str:
    sol = lr.solution
    if sol.optimal:
        return "proven optimal"
    return f"not proven optimal: gap {100 * float(sol.gap):.2f} % to the lower bound"


def _layout_section(name: str, lr: LayoutResult, roads: gpd.GeoDataFrame | None) -> str:
    res = lr.result
    sol = res.solution
    short = res.shortlist()
    if len(lr.loads):
        short = join_site_loads(short, lr.loads)
    parts = [
        f"<h2>{html.escape(name)}</h2>",
        f"<p class='muted'>{html.escape(sol.model)} with {html.escape(str(sol.solver))}: "
        f"{html.escape(_status(lr))}, solved in {float(sol.solve_time_s):.1f} s.</p>",
        _map_iframe(lr, roads),
        "<h3>Sites</h3>",
        _table(short),
        _capacity_note(lr),
        "<h3>Key figures</h3>",
        _table(res.kpi_table()),
    ]
    if lr.market is not None:
        tables = market_tables(lr.market)
        parts += [
            "<h3>Customers won (market model)</h3>",
            _table(tables["market"]),
            "<p class='muted'>Per site: expected jobs won a year, the jobs the plan would lose "
            "without the site, and the jobs it takes from our other sites (cannibalised).</p>",
            _table(tables["market sites"]),
        ]
    if res.warnings:
        parts.append(
            "<ul class='warn'>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in res.warnings)
            + "</ul>"
        )
    return "\n".join(parts)


def _capacity_note(lr: LayoutResult) -> str:
    """How full the sites are, and who drives further because their nearest site is full."""
    table = utilisation_table(lr)
    if not len(table):
        return ""
    over = table[table["over_capacity"]]
    parts = [
        "<p>Load: jobs a year against each site's capacity (its own from the sites file, "
        "else the cost assumptions); "
        + (
            f"{len(over)} site(s) above 100 %: "
            + html.escape(
                ", ".join(
                    f"{s} {u:.0%}" for s, u in zip(over["site"], over["utilisation"], strict=True)
                )
            )
            if len(over)
            else "no site above 100 %"
        )
        + ".</p>"
    ]
    displaced = not_at_nearest(lr)
    if len(displaced):
        mean = float(lr.kpis.get("extra_min_not_at_nearest", float("nan")))
        parts.append(
            f"<p>{len(displaced):,} customers are not served by their nearest site because "
            f"it is full; they drive {mean:,.1f} min more on average.</p>"
        )
    return "\n".join(parts)


def _k_curve_section(curve: pd.DataFrame) -> str:
    shown = [
        c
        for c in (
            "workshops",
            "mean_travel_min",
            "p90_travel_min",
            "share_within_sla",
            "annual_cost",
            "cost_per_job",
            "saved_min",
            "extra_cost",
            "eur_per_saved_hour",
            "pays",
            "optimal",
            "gap",
        )
        if c in curve
    ]
    layout = curve.attrs.get("layout")
    best = curve.attrs.get("best_k")
    note = []
    if layout:
        note.append(f"layout {layout}")
    if best is not None:
        note.append(f"cheapest number of workshops counting customer time: {best}")
    text = f"<p class='muted'>{html.escape('; '.join(note))}</p>" if note else ""
    return "<h2>Number of workshops (K-curve)</h2>" + text + _table(curve[shown])


def _robustness_section(rob: Robustness) -> str:
    stable = ", ".join(rob.stable_sites) or "none"
    return (
        "<h2>Robustness</h2>"
        f"<p>Sites chosen in every case: {html.escape(stable)}.</p>"
        + _table(rob.cases)
        + _table(rob.sites)
    )


def report_html(
    results: Comparison | LayoutResult,
    *,
    roads: gpd.GeoDataFrame | None = None,
    title: str | None = None,
    k_curve: pd.DataFrame | None = None,
    robustness: Robustness | None = None,
) -> str:
    """Build the report as one HTML document (no external assets; prints on A4 portrait).

    Parameters
    ----------
    results
        A :class:`planner.results.types.Comparison` or a
        :class:`planner.results.types.LayoutResult`.
    roads
        Main roads drawn on the maps (see :func:`planner.outputs.road_layer.map_roads`).
    title
        Title; default from the scenario name.
    k_curve
        The K-curve of :func:`planner.engine.k_curve`: adds a "Number of workshops" section.
    robustness
        The result of :func:`planner.engine.robustness`: adds a "Robustness" section.

    Returns
    -------
    str
    """
    if isinstance(results, Comparison):
        per_layout: Mapping[str, LayoutResult] = results.results
        table = results.table
        diff: pd.DataFrame | None = results.site_diff
    elif isinstance(results, LayoutResult):
        per_layout = {results.layout or "result": results}
        table = pd.DataFrame([comparison_row(results)])
        diff = None
    else:
        raise TypeError(
            f"report_html expects a Comparison or a LayoutResult, got {type(results).__name__}"
        )
    first = next(iter(per_layout.values()))
    prov = dict(first.provenance)
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
        _table(table[shown]),
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
    if k_curve is not None and len(k_curve):
        body.append(_k_curve_section(k_curve))
    if robustness is not None:
        body.append(_robustness_section(robustness))
    body += [
        "<h2>Assumptions</h2>",
        _assumptions(first.parameters, scenario.get("service_standard_min")),
        "<h2>Provenance</h2>",
        _provenance(prov),
    ]
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>"
    )
