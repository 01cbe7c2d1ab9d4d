"""Results in people's words: money, minutes and shares, KPI rows, optimality notes, tables.

Pure functions of the frozen result types (no Streamlit): the app's pages show them, and the
command line and report can use the same words.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd

from planner.results.types import Comparison, LayoutResult

__all__ = [
    "COST_PARTS",
    "PLAIN_KPIS",
    "assignment_table",
    "cost_split",
    "data_summary",
    "minutes",
    "money",
    "percent",
    "plain_kpis",
    "shortlist_table",
    "solution_note",
    "travel_time_distribution",
]


#: Annual cost parts of a comparison table: (column, label), in stacking order.
COST_PARTS: tuple[tuple[str, str], ...] = (
    ("fixed_eur", "fixed costs"),
    ("fees_eur", "partner fees"),
    ("deliveries_eur", "parts deliveries"),
    ("leakage_eur", "leakage (lost margin)"),
    ("customer_time_eur", "customer time"),
)


def money(value: float) -> str:
    """EUR amount for people: ``€ 1,173,627``."""
    return f"€ {value:,.0f}"


def minutes(value: float) -> str:
    """Minutes for people: ``4.5 min``."""
    return "–" if not np.isfinite(value) else f"{value:,.1f} min"


def percent(share: float) -> str:
    """A share as percent: ``93 %``."""
    return "–" if not np.isfinite(share) else f"{100 * share:.0f} %"


#: KPI keys shown in plain words, with their formatter.
PLAIN_KPIS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("customers", "Customers served", lambda v: f"{v:,.0f}"),
    ("served_demand_share", "Share of demand served", percent),
    ("mean_travel_min", "Average drive to the workshop", minutes),
    ("p90_travel_min", "9 in 10 jobs are within", minutes),
    ("max_travel_min", "Longest drive", minutes),
    ("share_within_15_min", "Jobs within 15 minutes", percent),
    ("share_within_30_min", "Jobs within 30 minutes", percent),
    ("share_within_sla", "Jobs within the service standard", percent),
    ("sites", "Service points", lambda v: f"{v:,.0f}"),
    ("max_utilisation", "Busiest workshop's load", percent),
    ("annual_cost_eur", "Annual cost", money),
    ("cost_per_job_eur", "Cost per job", money),
    ("jobs", "Jobs per year", lambda v: f"{v:,.0f}"),
)


def data_summary(
    *,
    customers: int,
    left_out: int = 0,
    sites: int,
    existing: int = 0,
    partners: int = 0,
    roads: str,
    osm_date: str | None = None,
) -> str:
    """What a solve ran on, in one sentence ("Solved on ..."): "300 customers, 62 candidate
    sites (2 existing); roads of Liechtenstein, OpenStreetMap data of 2026-11-30".

    Parameters
    ----------
    customers, left_out
        Customers planned for, and those left out (no road nearby, no demand).
    sites, existing, partners
        Candidate sites of our own, the existing ones among them, and partner shops.
    roads
        The name of the roads (a region's title, an uploaded file's name).
    osm_date
        The date of the OpenStreetMap data (``YYYY-MM-DD``), when known.
    """
    text = f"{customers:,} customers"
    if left_out:
        text += f" ({left_out:,} left out)"
    text += f", {sites:,} candidate sites ({existing} existing)"
    if partners:
        text += f", {partners:,} partner shops"
    text += f"; roads of {roads}"
    if osm_date:
        text += f", OpenStreetMap data of {osm_date}"
    return text


def plain_kpis(result: LayoutResult) -> pd.DataFrame:
    """The KPIs as ``measure`` / ``value`` rows in plain words, formatted for reading."""
    kpis = result.kpis
    rows = [
        (label, fmt(float(kpis[key])))
        for key, label, fmt in PLAIN_KPIS
        if key in kpis and kpis[key] is not None
    ]
    sol = result.solution
    rows.append(
        (
            "Optimizer",
            "proven optimal"
            if sol.optimal
            else f"best found, within {100 * float(sol.gap):.2f} % of the optimum",
        )
    )
    return pd.DataFrame(rows, columns=["measure", "value"])


def solution_note(result: LayoutResult) -> str:
    """Whether the answer is proven optimal, and if not its gap, in words."""
    sol = result.solution
    if sol.optimal:
        return f"Proven optimal ({sol.solver}, {sol.solve_time_s:.1f} s)."
    if sol.status == "stopped":
        bound = (
            f"at most {100 * float(sol.gap):.2f} % worse than the best possible"
            if np.isfinite(sol.gap)
            else "no bound on the best possible was proven yet"
        )
        return f"Stopped by you after {sol.solve_time_s:.1f} s: the best answer so far, {bound}."
    return (
        f"Not proven optimal: at most {100 * float(sol.gap):.2f} % worse than the best possible "
        f"({sol.solver}, stopped after {sol.solve_time_s:.1f} s; raise the time limit on the "
        "Plan page to close the gap)."
    )


def shortlist_table(result: LayoutResult) -> pd.DataFrame:
    """The proposed sites with existing / new, for display."""
    table = result.shortlist()
    status = result.sites.get("status", pd.Series("candidate", index=result.sites.index))
    table.insert(
        1,
        "existing_or_new",
        np.where(status.astype(str).to_numpy() == "existing", "existing", "new"),
    )
    return table


def assignment_table(result: LayoutResult) -> pd.DataFrame:
    """Each customer with its name, assigned site and the site's name, for display/download."""
    customers = pd.DataFrame(result.customers.drop(columns="geometry", errors="ignore"))
    names = dict(
        zip(result.sites["site_id"].astype(str), result.sites["name"].astype(str), strict=False)
    )
    out = pd.DataFrame(
        {
            "customer_id": customers["customer_id"],
            "customer_name": customers.get("name", pd.Series("", index=customers.index)).fillna(""),
            "segment": customers.get("segment", pd.Series("", index=customers.index)),
            "weight": customers.get("weight", pd.Series(1.0, index=customers.index)),
            "site_id": customers["site_id"],
            "site_name": customers["site_id"].astype(str).map(names).fillna(""),
            "travel_min": customers["travel_min"].round(1),
        }
    )
    reason = customers.get("excluded_reason")
    if reason is not None and reason.astype(str).str.len().gt(0).any():
        out["left_out_because"] = reason.fillna("")
    return out


def travel_time_distribution(result: LayoutResult, *, bin_min: float = 5.0) -> pd.DataFrame:
    """Jobs per band of travel minutes (``travel band``, ``jobs``), for a bar chart."""
    customers = result.customers
    minutes_ = customers["travel_min"].to_numpy(float)
    weights = customers.get("weight", pd.Series(1.0, index=customers.index)).to_numpy(float)
    ok = np.isfinite(minutes_)
    if not ok.any():
        return pd.DataFrame({"travel band": [], "jobs": []})
    top = max(bin_min, float(np.ceil(minutes_[ok].max() / bin_min) * bin_min))
    edges = np.arange(0.0, top + bin_min, bin_min)
    counts, _ = np.histogram(minutes_[ok], bins=edges, weights=weights[ok])
    labels = [f"{lo:.0f}–{hi:.0f} min" for lo, hi in itertools.pairwise(edges)]
    return pd.DataFrame(
        {"travel band": pd.Categorical(labels, labels, ordered=True), "jobs": counts}
    )


def cost_split(comparison: Comparison) -> pd.DataFrame:
    """Annual cost parts per layout with readable column names, for a stacked bar chart."""
    table = comparison.table
    frame = pd.DataFrame({"layout": table["layout"]})
    for column, label in COST_PARTS:
        frame[label] = table[column].astype(float)
    return frame
