"""Tables derived from results: the comparison row, the site diff, territories, provenance.

Pure functions of the frozen result types; the exports, the report and the app all take their
tables from here, so each figure is computed in one place.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from planner.results.types import LayoutResult

__all__ = [
    "COMPARISON_COLUMNS",
    "KPI_LABELS",
    "KPI_UNITS",
    "comparison_row",
    "diff_sites",
    "display_table",
    "format_kpi",
    "format_value",
    "kpi_label",
    "kpi_unit",
    "provenance_table",
    "territories",
]

COMPARISON_COLUMNS: tuple[str, ...] = (
    "layout",
    "sites",
    "offices",
    "mean_travel_min",
    "p90_travel_min",
    "max_travel_min",
    "share_within_sla",
    "annual_cost",
    "cost_per_job",
    "fixed_eur",
    "fees_eur",
    "deliveries_eur",
    "leakage_eur",
    "customer_time_eur",
    "max_utilisation",
    "optimal",
    "gap",
    "solver",
)


def comparison_row(lr: LayoutResult) -> dict[str, Any]:
    """One row of the comparison table for a solved layout."""
    k = lr.kpis
    sol = lr.result.solution
    return {
        "layout": lr.layout,
        "sites": int(k["sites"]),
        "offices": int(k["sites_office"]),
        "mean_travel_min": k["mean_travel_min"],
        "p90_travel_min": k["p90_travel_min"],
        "max_travel_min": k["max_travel_min"],
        "share_within_sla": k["share_within_sla"],
        "annual_cost": lr.costs.total_eur,
        "cost_per_job": lr.costs.cost_per_job_eur,
        "fixed_eur": lr.costs.fixed_eur,
        "fees_eur": lr.costs.fees_eur,
        "deliveries_eur": lr.costs.deliveries_eur,
        "leakage_eur": lr.costs.leakage_eur,
        "customer_time_eur": lr.costs.customer_time_eur,
        "max_utilisation": k["max_utilisation"],
        "optimal": bool(sol.optimal),
        "gap": float(sol.gap),
        "solver": str(sol.solver),
    }


def diff_sites(results: Mapping[str, LayoutResult]) -> pd.DataFrame:
    """Which sites appear in all layouts and which in only one."""
    names = list(results)
    rows: dict[str, dict[str, Any]] = {}
    for layout, lr in results.items():
        for site in lr.result.sites.itertuples(index=False):
            sid = str(site.site_id)
            row = rows.setdefault(
                sid,
                {
                    "site_id": sid,
                    "name": str(site.name),
                    "kind": str(getattr(site, "kind", site.role)),
                    "lat": float(site.lat),
                    "lon": float(site.lon),
                    **dict.fromkeys(names, False),
                },
            )
            row[layout] = True
    frame = pd.DataFrame(
        list(rows.values()), columns=["site_id", "name", "kind", "lat", "lon", *names]
    )
    frame["layouts"] = frame[names].sum(axis=1).astype(int)

    def presence(r: pd.Series) -> str:
        used = [n for n in names if r[n]]
        if len(used) == len(names):
            return "all"
        if len(used) == 1:
            return f"only {used[0]}"
        return ", ".join(used)

    frame["presence"] = frame.apply(presence, axis=1) if len(frame) else pd.Series(dtype=str)
    return frame.sort_values(["layouts", "site_id"], ascending=[False, True]).reset_index(drop=True)


def territories(lr: LayoutResult) -> pd.DataFrame:
    """The territory list: every customer's service point (and office in two-tier).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, segment, weight, site_id, site_name, site_role, office_id,
        travel_min``; customers left out of the solve have an empty ``site_id``.
    """
    res = lr.result
    cust = res.customers
    sites = res.sites.set_index(res.sites["site_id"].astype(str))
    sid = cust["site_id"].astype(str)
    out = pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy(),
            "segment": cust["segment"].to_numpy() if "segment" in cust else "",
            "weight": cust["weight"].to_numpy(float),
            "site_id": sid.to_numpy(),
            "site_name": sid.map(sites["name"].astype(str)).fillna("").to_numpy(),
            "site_role": sid.map(sites["role"].astype(str)).fillna("").to_numpy(),
            "office_id": np.where(sid.to_numpy() != "", lr.office_id or "", ""),
            "travel_min": cust["travel_min"].to_numpy(float),
        }
    )
    return out


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append(
            (prefix, json.dumps(value, default=str) if not isinstance(value, str) else value)
        )


def provenance_table(provenance: Mapping[str, Any]) -> pd.DataFrame:
    """Flatten a provenance record into ``key, value`` rows (nested keys joined by dots)."""
    rows: list[tuple[str, str]] = []
    _flatten("", dict(provenance), rows)
    return pd.DataFrame(rows, columns=["key", "value"])


# ============================================================================ labels and formats

#: Plain-word label and unit of every KPI and table column people see (report, app, workbook).
#: Units: ``min``, ``EUR``, ``%`` (a share 0..1 shown in per cent), ``count``, ``jobs``,
#: ``s``, ``deg`` (coordinates, 5 decimals), ``yes/no`` and ``text``.
KPI_LABELS: dict[str, tuple[str, str]] = {
    "layout": ("layout", "text"),
    "workshops": ("workshops", "count"),
    "site_id": ("site", "text"),
    "name": ("name", "text"),
    "role": ("role", "text"),
    "kind": ("kind", "text"),
    "status": ("status", "text"),
    "locality": ("place", "text"),
    "lat": ("latitude", "deg"),
    "lon": ("longitude", "deg"),
    "customers": ("customers", "count"),
    "total_demand": ("total demand", "jobs"),
    "served_demand_share": ("served demand", "%"),
    "demand_share": ("share of demand", "%"),
    "mean_travel_min": ("mean travel time", "min"),
    "p90_travel_min": ("90 % reach within", "min"),
    "max_travel_min": ("longest travel time", "min"),
    "share_within_sla": ("within the service standard", "%"),
    "sites": ("service points", "count"),
    "sites_workshop": ("own workshops", "count"),
    "sites_partner": ("partner shops", "count"),
    "sites_office": ("offices", "count"),
    "offices": ("offices", "count"),
    "max_utilisation": ("highest workshop load", "%"),
    "mean_utilisation": ("mean workshop load", "%"),
    "utilisation": ("load", "%"),
    "jobs": ("jobs per year", "jobs"),
    "capacity_jobs": ("capacity (jobs per year)", "jobs"),
    "capacity_source": ("capacity from", "text"),
    "fixed_cost_eur": ("fixed cost per year", "EUR"),
    "fixed_cost_source": ("fixed cost from", "text"),
    "fixed_eur": ("fixed costs", "EUR"),
    "fees_eur": ("partner fees", "EUR"),
    "deliveries_eur": ("parts deliveries", "EUR"),
    "leakage_eur": ("leakage (lost margin)", "EUR"),
    "customer_time_eur": ("customer time", "EUR"),
    "annual_cost": ("annual cost", "EUR"),
    "annual_cost_eur": ("annual cost", "EUR"),
    "cost_per_job": ("cost per job", "EUR"),
    "cost_per_job_eur": ("cost per job", "EUR"),
    "saved_min": ("mean travel time saved", "min"),
    "extra_cost": ("extra annual cost", "EUR"),
    "eur_per_saved_hour": ("cost per customer hour saved", "EUR"),
    "pays": ("pays for itself", "yes/no"),
    "optimal": ("proven optimal", "yes/no"),
    "proven_optimal": ("proven optimal", "yes/no"),
    "gap": ("optimality gap", "%"),
    "objective": ("objective", "number"),
    "lower_bound": ("lower bound", "number"),
    "solver": ("solver", "text"),
    "solve_time_s": ("solve time", "s"),
    "case": ("case", "text"),
    "chosen_in": ("chosen in cases", "count"),
    "stable": ("chosen in every case", "yes/no"),
    "layouts": ("layouts using it", "count"),
    "presence": ("used by", "text"),
}
#: The unit of every name in :data:`KPI_LABELS` (a shortcut).
KPI_UNITS: dict[str, str] = {name: unit for name, (_, unit) in KPI_LABELS.items()}

_DYNAMIC: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"^share_within_sla_(.+)$"), "within the service standard ({0})", "%"),
    (re.compile(r"^share_within_(\d+(?:\.\d+)?)_min$"), "within {0} min", "%"),
)


def _lookup(name: str) -> tuple[str, str]:
    if name in KPI_LABELS:
        return KPI_LABELS[name]
    for pattern, label, unit in _DYNAMIC:
        match = pattern.match(name)
        if match:
            return label.format(match.group(1)), unit
    return name.replace("_", " "), "number"


def kpi_label(name: str) -> str:
    """The plain-word label of a KPI or column name (``"served_demand_share"`` -> ``"served
    demand"``); unknown names get their underscores replaced by spaces."""
    return _lookup(name)[0]


def kpi_unit(name: str) -> str:
    """The unit of a KPI or column name (see :data:`KPI_LABELS`); ``"number"`` when unknown."""
    return _lookup(name)[1]


def format_value(value: object, unit: str, *, with_unit: bool = True) -> str:
    """Format one value for people: thousands separators, sensible decimals, units.

    Parameters
    ----------
    value
        A number, bool, text, list or missing value.
    unit
        One of the units of :data:`KPI_LABELS` (``"number"`` for plain numbers).
    with_unit
        Append the unit (``"12.3 min"``); tables put it in the header instead.

    Returns
    -------
    str
        ``"–"`` for missing values, ``"∞"`` for infinite ones.
    """
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()  # numpy scalars
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, bool) or unit == "yes/no":
        if isinstance(value, float) and math.isnan(value):
            return "–"
        return "yes" if bool(value) else "no"
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    if not isinstance(value, int | float):
        return str(value)
    x = float(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if unit == "%":
        text, suffix = f"{100 * x:,.1f}", " %"
    elif unit == "min":
        text, suffix = f"{x:,.1f}", " min"
    elif unit == "s":
        text, suffix = f"{x:,.1f}", " s"
    elif unit == "EUR":
        text, suffix = (f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}"), " EUR"
    elif unit in ("count", "jobs"):
        text, suffix = f"{x:,.0f}", (" jobs" if unit == "jobs" else "")
    elif unit == "deg":
        text, suffix = f"{x:.5f}", ""
    elif isinstance(value, int) or x.is_integer() or abs(x) >= 100:
        text, suffix = f"{x:,.0f}", ""
    else:
        text, suffix = f"{x:,.2f}", ""
    return text + suffix if with_unit else text


def format_kpi(name: str, value: object) -> str:
    """Format a KPI value with its unit (``format_kpi("served_demand_share", 0.95)`` ->
    ``"95.0 %"``); see :data:`KPI_LABELS`."""
    return format_value(value, kpi_unit(name))


def _header(name: str) -> str:
    label, unit = _lookup(name)
    if unit in ("min", "EUR", "%", "s"):
        return f"{label} ({unit})"
    return label


def display_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` for people: plain-word headers with units, every cell formatted text.

    Headers come from :data:`KPI_LABELS` with the unit in brackets (``"annual cost (EUR)"``);
    cells are formatted by :func:`format_value` without the unit. A two-column ``kpi, value``
    table (as from ``kpi_table()``) gets labelled KPI names and values with their units.

    Parameters
    ----------
    frame
        Any result table (comparison, shortlist, loads, K-curve, robustness...).

    Returns
    -------
    pandas.DataFrame
        All cells are strings.
    """
    if list(frame.columns) == ["kpi", "value"]:
        return pd.DataFrame(
            {
                "KPI": [kpi_label(str(k)) for k in frame["kpi"]],
                "value": [
                    format_kpi(str(k), v) for k, v in zip(frame["kpi"], frame["value"], strict=True)
                ],
            }
        )
    out = {}
    for col in frame.columns:
        unit = kpi_unit(str(col))
        out[_header(str(col))] = [format_value(v, unit, with_unit=False) for v in frame[col]]
    return pd.DataFrame(out, columns=list(out))
