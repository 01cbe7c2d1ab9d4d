"""Scenario KPIs: service standards per segment, site loads, and the annual cost split.

The basic travel-time KPIs (demand-weighted mean, p90, max, shares within thresholds) come from
:func:`compute_kpis`; this module adds what a layout comparison needs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from planner.results.capacity import not_at_nearest_kpis
from planner.results.costs import CostBreakdown, CostParameters
from planner.results.types import ScenarioResult

__all__ = [
    "DEFAULT_SERVICE_STANDARD_MIN",
    "DEFAULT_THRESHOLDS_MIN",
    "annual_costs",
    "compute_kpis",
    "customer_service_limits",
    "scenario_kpis",
    "service_standard_minutes",
    "share_within_service_standard",
    "site_loads",
    "weighted_quantile",
]

#: Thresholds (minutes) for which ``compute_kpis`` reports the share of demand served within.
DEFAULT_THRESHOLDS_MIN: tuple[float, ...] = (15.0, 30.0)

#: Service standard (minutes of travel) for segments not listed in a scenario.
DEFAULT_SERVICE_STANDARD_MIN = 30.0


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Return the weighted ``q``-quantile of ``values`` (lower value at ties).

    The result is the smallest value ``v`` such that the weight of values ``<= v`` is at least
    ``q`` times the total weight: for 90 % of the demand the travel time is at most ``v``.
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if values.size == 0 or weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    k = int(np.searchsorted(cum, q * cum[-1] - 1e-12 * cum[-1], side="left"))
    return float(values[order][min(k, values.size - 1)])


def compute_kpis(
    travel_min: np.ndarray,
    weights: np.ndarray,
    *,
    thresholds_min: tuple[float, ...] = DEFAULT_THRESHOLDS_MIN,
) -> dict[str, float]:
    """Demand-weighted service KPIs of one assignment.

    Parameters
    ----------
    travel_min
        Travel minutes of each customer to its assigned site; ``inf`` or ``nan`` for customers
        that are not served (unreachable, or left out of the solve).
    weights
        Demand of each customer (jobs per year).
    thresholds_min
        Report ``share_within_{t}_min`` for each threshold, as a share of *all* demand.

    Returns
    -------
    dict
        ``mean_travel_min``, ``p90_travel_min``, ``max_travel_min`` over served demand,
        ``share_within_{t}_min`` for each threshold, ``served_demand_share``, ``total_demand``,
        ``customers``.
    """
    t = np.asarray(travel_min, dtype=float)
    w = np.asarray(weights, dtype=float)
    if t.shape != w.shape:
        raise ValueError(f"travel_min has shape {t.shape} but weights has shape {w.shape}")
    served = np.isfinite(t)
    total = float(w.sum())
    ws, ts = w[served], t[served]
    kpis: dict[str, float] = {
        "customers": float(t.size),
        "total_demand": total,
        "served_demand_share": float(ws.sum() / total) if total > 0 else float("nan"),
        "mean_travel_min": float(np.average(ts, weights=ws)) if ws.sum() > 0 else float("nan"),
        "p90_travel_min": weighted_quantile(ts, ws, 0.9),
        "max_travel_min": float(ts.max()) if ts.size else float("nan"),
    }
    for thr in thresholds_min:
        within = float(w[served & (t <= thr)].sum())
        kpis[f"share_within_{thr:g}_min"] = within / total if total > 0 else float("nan")
    return kpis


def _customer_jobs(result: ScenarioResult, parameters: CostParameters) -> np.ndarray:
    return result.customers["weight"].to_numpy(float) * parameters.jobs_per_weight


def service_standard_minutes(
    segments: pd.Series | np.ndarray, standards_min: Mapping[str, float] | None = None
) -> np.ndarray:
    """Return each customer's service standard in minutes.

    Parameters
    ----------
    segments
        Segment name of each customer.
    standards_min
        ``{segment: minutes}``; the key ``"default"`` (or
        :data:`DEFAULT_SERVICE_STANDARD_MIN`) applies to segments not listed.
    """
    standards = dict(standards_min or {})
    default = float(standards.pop("default", DEFAULT_SERVICE_STANDARD_MIN))
    seg = pd.Series(np.asarray(segments, dtype=object)).astype(str)
    return seg.map(lambda s: float(standards.get(s, default))).to_numpy(float)


def customer_service_limits(
    customers: pd.DataFrame, standards_min: Mapping[str, float] | None = None
) -> np.ndarray:
    """Each customer row's service standard in minutes: its own ``service_max_min`` where the
    customer file gives one, otherwise its segment's standard (see
    :func:`service_standard_minutes`)."""
    segments = (
        customers["segment"] if "segment" in customers else np.full(len(customers), "default")
    )
    limit = service_standard_minutes(segments, standards_min)
    if "service_max_min" in customers:
        own = pd.to_numeric(customers["service_max_min"], errors="coerce").to_numpy(float)
        limit = np.where(np.isfinite(own) & (own > 0), own, limit)
    return limit


def share_within_service_standard(
    result: ScenarioResult, standards_min: Mapping[str, float] | None = None
) -> float:
    """Share of all demand whose travel time is within its service standard.

    A customer's standard is its own ``service_max_min`` where the customer file gives one,
    otherwise its segment's standard from ``standards_min``. Unserved customers count as
    outside the standard.
    """
    cust = result.customers
    weights = cust["weight"].to_numpy(float)
    total = weights.sum()
    if total <= 0:
        return float("nan")
    limit = customer_service_limits(cust, standards_min)
    t = cust["travel_min"].to_numpy(float)
    ok = np.isfinite(t) & (t <= limit)
    return float(weights[ok].sum() / total)


def site_loads(
    result: ScenarioResult,
    parameters: CostParameters | None = None,
    *,
    jobs_by_site: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Jobs per year, capacity and utilisation of every site of ``result``.

    A site's jobs are those of the customers assigned to it, or ``jobs_by_site[site_id]``
    when given (0 for the sites it leaves out): under the market model, the jobs each site is
    expected to win (:attr:`planner.results.market.MarketOutcome.sites`), as the others go to
    competitors or nowhere.

    Each site's capacity is its own (the result's ``capacity_jobs`` column, from the sites
    file or the defaults: :func:`planner.results.site_figures.site_figures`); without that
    column own workshops (role ``workshop``) have ``parameters.workshop_capacity_jobs`` and
    partners ``parameters.partner_capacity_jobs``. Offices have no capacity (NaN).

    Returns
    -------
    pandas.DataFrame
        ``site_id, role, customers, jobs, capacity_jobs, utilisation`` and, when the result
        carries them, ``capacity_source``, ``fixed_cost_eur`` and ``fixed_cost_source``.
    """
    parameters = parameters or CostParameters()
    if jobs_by_site is None:
        jobs = pd.Series(_customer_jobs(result, parameters), index=result.customers.index)
        by_site = jobs.groupby(result.customers["site_id"].astype(str)).sum()
    else:
        by_site = pd.Series(dict(jobs_by_site), dtype=float)
    sites = result.sites
    site_ids = sites["site_id"].astype(str)
    load = site_ids.map(by_site).fillna(0.0).to_numpy(float)
    roles = sites["role"].astype(str).to_numpy()
    if "capacity_jobs" in sites:
        capacity = pd.to_numeric(sites["capacity_jobs"], errors="coerce").to_numpy(float)
    else:
        capacity = np.where(
            roles == "workshop",
            parameters.workshop_capacity_jobs,
            np.where(roles == "partner", parameters.partner_capacity_jobs, np.nan),
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.where(capacity > 0, load / capacity, np.nan)
    out = pd.DataFrame(
        {
            "site_id": site_ids.to_numpy(),
            "role": roles,
            "customers": sites["customers"].to_numpy(int),
            "jobs": load,
            "capacity_jobs": capacity,
            "utilisation": util,
        }
    )
    for column in ("capacity_source", "fixed_cost_eur", "fixed_cost_source"):
        if column in sites:
            out[column] = sites[column].to_numpy()
    return out


def annual_costs(
    result: ScenarioResult,
    parameters: CostParameters,
    *,
    layout: str,
    link_time_s: Mapping[str, float] | None = None,
) -> CostBreakdown:
    """Annual cost of a layout's result, split into fixed costs, fees, deliveries, leakage, time.

    Parameters
    ----------
    result
        The solved scenario (site roles ``workshop``, ``partner``, ``office``).
    parameters
        Cost assumptions.
    layout
        ``"in-house"``, ``"outsourced"`` or ``"two-tier"``; sets the fixed cost of own workshops.
    link_time_s
        Two-tier only: one-way travel seconds from the office to each workshop ``site_id``.

    Returns
    -------
    CostBreakdown
    """
    sites = result.sites
    roles = sites["role"].astype(str).to_numpy()
    n_own = int(np.sum(roles == "workshop"))
    n_office = int(np.sum(roles == "office"))
    if "fixed_cost_eur" in sites:  # each site's own (see planner.results.site_figures)
        own = pd.to_numeric(sites["fixed_cost_eur"], errors="coerce").to_numpy(float)
        fixed = float(np.nansum(np.where(np.isin(roles, ["workshop", "office"]), own, 0.0)))
    else:
        workshop_layout = "two-tier" if layout == "two-tier" else "in-house"
        fixed = n_own * parameters.workshop_fixed_cost_eur(layout=workshop_layout)
        fixed += n_office * parameters.office_fixed_cost_eur

    cust = result.customers
    jobs = _customer_jobs(result, parameters)
    served = cust["site_id"].astype(str).to_numpy() != ""
    partner_ids = set(sites.loc[roles == "partner", "site_id"].astype(str))
    at_partner = cust["site_id"].astype(str).isin(partner_ids).to_numpy()
    partner_jobs = float(jobs[at_partner].sum())

    deliveries = 0.0
    if link_time_s:
        times = np.array(
            [
                link_time_s[s]
                for s, r in zip(sites["site_id"].astype(str), roles, strict=True)
                if r != "office" and s in link_time_s
            ],
            dtype=float,
        )
        deliveries = float(np.sum(parameters.delivery_cost_eur(times)))
    travel_s = cust["travel_min"].to_numpy(float) * 60.0
    return CostBreakdown(
        fixed_eur=float(fixed),
        fees_eur=partner_jobs * parameters.partner_fee_per_job_eur,
        deliveries_eur=deliveries,
        leakage_eur=parameters.leakage_cost_eur(partner_jobs),
        customer_time_eur=parameters.customer_time_cost_eur(jobs[served], travel_s[served]),
        jobs=float(jobs[served].sum()),
    )


def scenario_kpis(
    result: ScenarioResult,
    *,
    costs: CostBreakdown,
    loads: pd.DataFrame,
    service_standard_min: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """All KPIs of one layout: travel times, service standard, sites by kind, load, costs.

    ``costs`` and ``loads`` are those of :func:`annual_costs` and :func:`site_loads` for the
    same result (computed once by the caller and quoted here).

    Returns
    -------
    dict
        The keys of :func:`compute_kpis` plus ``share_within_sla`` (all
        demand) and ``share_within_sla_<segment>`` (each segment's own demand),
        ``sites``, ``sites_workshop``, ``sites_partner``, ``sites_office``,
        ``max_utilisation``, ``mean_utilisation`` (own workshops), the customers served by
        another site than their nearest open one (:func:`planner.results.capacity.
        not_at_nearest_kpis`: ``customers_not_at_nearest``, ``demand_not_at_nearest``,
        ``extra_min_not_at_nearest``), ``fixed_eur``, ``fees_eur``,
        ``deliveries_eur``, ``leakage_eur``, ``customer_time_eur``, ``annual_cost_eur``,
        ``jobs`` and ``cost_per_job_eur``.
    """
    cust = result.customers
    kpis = dict(compute_kpis(cust["travel_min"].to_numpy(float), cust["weight"].to_numpy(float)))
    kpis["share_within_sla"] = share_within_service_standard(result, service_standard_min)
    if "segment" in cust:
        segments = cust["segment"].astype(str)
        for segment in sorted(segments.unique()):
            mine = (segments == segment).to_numpy()
            part = dataclasses.replace(result, customers=cust[mine])
            kpis[f"share_within_sla_{segment}"] = share_within_service_standard(
                part, service_standard_min
            )
    roles = result.sites["role"].astype(str)
    kpis["sites"] = float(int((roles != "office").sum()))
    for kind in ("workshop", "partner", "office"):
        kpis[f"sites_{kind}"] = float(int((roles == kind).sum()))
    kpis.update(not_at_nearest_kpis(cust))
    util = loads.loc[loads["role"].astype(str) == "workshop", "utilisation"].to_numpy(float)
    util = util[np.isfinite(util)]
    kpis["max_utilisation"] = float(util.max()) if util.size else float("nan")
    kpis["mean_utilisation"] = float(util.mean()) if util.size else float("nan")
    split = costs.to_dict()
    kpis.update(
        {
            "fixed_eur": split["fixed_eur"],
            "fees_eur": split["fees_eur"],
            "deliveries_eur": split["deliveries_eur"],
            "leakage_eur": split["leakage_eur"],
            "customer_time_eur": split["customer_time_eur"],
            "annual_cost_eur": split["total_eur"],
            "jobs": split["jobs"],
            "cost_per_job_eur": split["cost_per_job_eur"],
        }
    )
    return kpis
