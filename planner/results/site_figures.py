"""Each site's own yearly fixed cost and capacity: from the user's sites file, or the defaults.

A sites file may give a site's ``fixed_cost`` (its own yearly rent and upkeep, EUR) and its
``capacity`` (jobs per year). Every model, KPI, cost split and export uses the figures this
module derives, so a site is costed and loaded the same way everywhere:

=========  ==========================================================================  =========
kind       fixed cost per year (EUR)                                                   capacity
=========  ==========================================================================  =========
workshop   the file's ``fixed_cost`` in place of ``workshop_rent_eur``, plus staff     the file's
           (technicians x salary, receptionist) and the layout's store from the Costs  ``capacity``,
           page; without a value, :meth:`CostParameters.workshop_fixed_cost_eur`        else
                                                                                       technicians
                                                                                       x jobs per
                                                                                       technician
partner    none (partners are paid per job; a ``fixed_cost`` on a partner row is not   the file's
           used)                                                                       ``capacity``,
                                                                                       else
                                                                                       ``partner_
                                                                                       capacity_jobs``
office     the file's ``fixed_cost`` in place of ``office_rent_eur``, plus staff and   none
           the central store; without a value, ``office_fixed_cost_eur``
=========  ==========================================================================  =========

``fixed_cost_source`` and ``capacity_source`` say ``"file"`` or ``"default"`` per site (and
``"none"`` where the kind has no such figure), so the shortlist shows which came from where.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.results.costs import CostParameters

__all__ = [
    "FIGURE_COLUMNS",
    "SITE_LOAD_COLUMNS",
    "join_site_loads",
    "site_figures",
    "unused_partner_fixed_costs",
]

#: Columns :func:`site_figures` returns, one row per site.
FIGURE_COLUMNS: tuple[str, ...] = (
    "fixed_cost_eur",
    "fixed_cost_source",
    "capacity_jobs",
    "capacity_source",
)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(float)
    return np.where(np.isfinite(values) & (values >= 0), values, np.nan)


def _kinds(frame: pd.DataFrame) -> np.ndarray:
    if "kind" not in frame:
        return np.full(len(frame), "workshop", dtype=object)
    kinds = frame["kind"].astype(str).str.strip().str.lower().to_numpy(dtype=object)
    return np.where(np.isin(kinds, ["partner", "office"]), kinds, "workshop")


def site_figures(
    sites: pd.DataFrame, parameters: CostParameters, *, layout: str = "in-house"
) -> pd.DataFrame:
    """Each site's yearly fixed cost and capacity, and where each figure came from.

    Parameters
    ----------
    sites
        Sites with ``kind`` (``workshop``, ``partner``, ``office``; missing means workshop)
        and optional ``fixed_cost`` / ``capacity`` columns as read from a sites file (NaN
        where a row gives none).
    parameters
        The Costs page's figures: defaults for rows without their own, and the staff and
        stores added to a site's own rent.
    layout
        ``"two-tier"`` costs own workshops without their own parts store (see
        :meth:`CostParameters.workshop_fixed_cost_eur`); any other layout with it.

    Returns
    -------
    pandas.DataFrame
        :data:`FIGURE_COLUMNS`, indexed like ``sites``.
    """
    kinds = _kinds(sites)
    own_cost = _numbers(sites, "fixed_cost")
    own_cap = _numbers(sites, "capacity")
    ws_layout = "two-tier" if layout == "two-tier" else "in-house"
    ws_default = parameters.workshop_fixed_cost_eur(layout=ws_layout)
    ws_upkeep = ws_default - parameters.workshop_rent_eur
    office_default = parameters.office_fixed_cost_eur
    office_upkeep = office_default - parameters.office_rent_eur
    is_ws = kinds == "workshop"
    is_partner = kinds == "partner"
    is_office = kinds == "office"
    has_cost = np.isfinite(own_cost)
    has_cap = np.isfinite(own_cap)

    fixed = np.zeros(len(sites))
    fixed[is_ws] = np.where(has_cost[is_ws], own_cost[is_ws] + ws_upkeep, ws_default)
    fixed[is_office] = np.where(
        has_cost[is_office], own_cost[is_office] + office_upkeep, office_default
    )
    fixed_source = np.where(has_cost, "file", "default").astype(object)
    fixed_source[is_partner] = "none"

    capacity = np.full(len(sites), np.nan)
    capacity[is_ws] = np.where(has_cap[is_ws], own_cap[is_ws], parameters.workshop_capacity_jobs)
    capacity[is_partner] = np.where(
        has_cap[is_partner], own_cap[is_partner], parameters.partner_capacity_jobs
    )
    capacity_source = np.where(has_cap, "file", "default").astype(object)
    capacity_source[is_office] = "none"
    return pd.DataFrame(
        {
            "fixed_cost_eur": fixed,
            "fixed_cost_source": fixed_source,
            "capacity_jobs": capacity,
            "capacity_source": capacity_source,
        },
        index=sites.index,
    )


def unused_partner_fixed_costs(sites: pd.DataFrame) -> int:
    """How many partner rows carry a ``fixed_cost`` (not used: partners are paid per job)."""
    return int(np.sum((_kinds(sites) == "partner") & np.isfinite(_numbers(sites, "fixed_cost"))))


#: Per-site figures the shortlist, the report and the sites layer carry: load, capacity,
#: utilisation and each site's own fixed cost, with where each figure came from.
SITE_LOAD_COLUMNS: tuple[str, ...] = (
    "jobs",
    "capacity_jobs",
    "utilisation",
    "capacity_source",
    "fixed_cost_eur",
    "fixed_cost_source",
)


def join_site_loads(table: pd.DataFrame, loads: pd.DataFrame) -> pd.DataFrame:
    """``table`` (one row per site, ``site_id``) with the :data:`SITE_LOAD_COLUMNS` of
    ``loads`` (:func:`planner.results.kpis.site_loads`) it lacks."""
    keep = [c for c in SITE_LOAD_COLUMNS if c in loads and c not in table]
    extra = loads.assign(site_id=loads["site_id"].astype(str)).drop_duplicates("site_id")
    return table.assign(site_id=table["site_id"].astype(str)).join(
        extra.set_index("site_id")[keep], on="site_id"
    )
