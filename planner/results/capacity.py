"""How full each site is, and who drives further because their nearest site is full.

Computed once from a solved layout for the app's Results and Compare pages, the report and
the exports; pages only render these tables.

Utilisation is a site's jobs per year divided by its capacity (its own from the sites file,
else the Costs page's technicians x jobs per technician, or ``partner_capacity_jobs`` for a
partner). Above 100 % the site cannot do its work with its staff; a plan that respects
capacities keeps every site at or below 100 % by sending some customers to another site, and
:func:`not_at_nearest` lists them with the minutes that costs them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.results.types import LayoutResult

__all__ = [
    "OVER_CAPACITY_COLOUR",
    "UNDER_CAPACITY_COLOUR",
    "not_at_nearest",
    "not_at_nearest_kpis",
    "utilisation_table",
]

#: Bar colour of a site above 100 % of its capacity (red) and at or below it (blue).
OVER_CAPACITY_COLOUR = "#d62728"
UNDER_CAPACITY_COLOUR = "#1f77b4"

#: Minutes below which a customer counts as served at its nearest site (rounding).
_TOLERANCE_MIN = 1e-6


def utilisation_table(result: LayoutResult) -> pd.DataFrame:
    """One row per site with a capacity: how full it is.

    Returns
    -------
    pandas.DataFrame
        ``site`` (name, or id when unnamed), ``site_id``, ``role``, ``jobs``,
        ``capacity_jobs``, ``capacity_source``, ``utilisation`` (share, 1.0 = full),
        ``utilisation_pct``, ``over_capacity`` and ``colour`` (red above 100 %), for a bar
        per site.
    """
    loads = result.loads
    columns = [
        "site",
        "site_id",
        "role",
        "jobs",
        "capacity_jobs",
        "capacity_source",
        "utilisation",
        "utilisation_pct",
        "over_capacity",
        "colour",
    ]
    if not len(loads):
        return pd.DataFrame(columns=columns)
    sites = result.sites
    names = dict(
        zip(sites["site_id"].astype(str), sites["name"].fillna("").astype(str), strict=True)
    )
    table = loads[np.isfinite(loads["capacity_jobs"].to_numpy(float))].copy()
    ids = table["site_id"].astype(str)
    labels = [f"{names.get(s) or s} ({s})" if names.get(s) else s for s in ids]
    util = table["utilisation"].to_numpy(float)
    over = util > 1.0 + 1e-9
    return pd.DataFrame(
        {
            "site": labels,
            "site_id": ids.to_numpy(),
            "role": table["role"].to_numpy(),
            "jobs": table["jobs"].to_numpy(float),
            "capacity_jobs": table["capacity_jobs"].to_numpy(float),
            "capacity_source": table.get(
                "capacity_source", pd.Series("default", index=table.index)
            ).to_numpy(),
            "utilisation": util,
            "utilisation_pct": 100.0 * util,
            "over_capacity": over,
            "colour": np.where(over, OVER_CAPACITY_COLOUR, UNDER_CAPACITY_COLOUR),
        },
        columns=columns,
    )


def not_at_nearest(result: LayoutResult) -> pd.DataFrame:
    """Customers served by another site than their nearest open one, with the extra minutes.

    In a plan that respects capacities this happens only because the nearest site is full
    (``nearest_utilisation`` says how full it is); without capacities every customer goes to
    its nearest site and the table is empty.

    Returns
    -------
    pandas.DataFrame
        ``customer_id``, ``name``, ``weight``, ``site_id``, ``travel_min``,
        ``nearest_site_id``, ``nearest_travel_min``, ``extra_min``, ``nearest_utilisation``,
        most extra minutes first.
    """
    columns = [
        "customer_id",
        "name",
        "weight",
        "site_id",
        "travel_min",
        "nearest_site_id",
        "nearest_travel_min",
        "extra_min",
        "nearest_utilisation",
    ]
    cust = result.customers
    if "nearest_site_id" not in cust or not len(cust):
        return pd.DataFrame(columns=columns)
    extra = cust["travel_min"].to_numpy(float) - cust["nearest_travel_min"].to_numpy(float)
    moved = (
        np.isfinite(extra)
        & (extra > _TOLERANCE_MIN)
        & (cust["site_id"].astype(str).to_numpy() != cust["nearest_site_id"].astype(str).to_numpy())
    )
    part = cust[moved]
    util = dict(zip(result.loads["site_id"].astype(str), result.loads["utilisation"], strict=True))
    out = pd.DataFrame(
        {
            "customer_id": part["customer_id"].astype(str).to_numpy(),
            "name": part["name"].fillna("").astype(str).to_numpy()
            if "name" in part
            else [""] * len(part),
            "weight": part["weight"].to_numpy(float),
            "site_id": part["site_id"].astype(str).to_numpy(),
            "travel_min": part["travel_min"].to_numpy(float),
            "nearest_site_id": part["nearest_site_id"].astype(str).to_numpy(),
            "nearest_travel_min": part["nearest_travel_min"].to_numpy(float),
            "extra_min": extra[moved],
            "nearest_utilisation": part["nearest_site_id"].astype(str).map(util).to_numpy(float),
        },
        columns=columns,
    )
    return out.sort_values("extra_min", ascending=False, kind="stable").reset_index(drop=True)


def not_at_nearest_kpis(customers: pd.DataFrame) -> dict[str, float]:
    """``customers_not_at_nearest`` (count), ``demand_not_at_nearest`` (their weight) and
    ``extra_min_not_at_nearest`` (their demand-weighted mean extra minutes; 0 when none), from
    a result's customers with ``nearest_travel_min``; empty without that column."""
    if "nearest_travel_min" not in customers:
        return {}
    extra = customers["travel_min"].to_numpy(float) - customers["nearest_travel_min"].to_numpy(
        float
    )
    moved = np.isfinite(extra) & (extra > _TOLERANCE_MIN)
    w = customers["weight"].to_numpy(float)[moved]
    return {
        "customers_not_at_nearest": float(moved.sum()),
        "demand_not_at_nearest": float(w.sum()),
        "extra_min_not_at_nearest": float(np.average(extra[moved], weights=w))
        if w.sum() > 0
        else 0.0,
    }
