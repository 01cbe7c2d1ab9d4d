"""Tables derived from results: the comparison row, the site diff, territories, provenance.

Pure functions of the frozen result types; the exports, the report and the app all take their
tables from here, so each figure is computed in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from planner.results.types import LayoutResult

__all__ = [
    "COMPARISON_COLUMNS",
    "comparison_row",
    "diff_sites",
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
