"""Economics of each relationship: jobs, revenue, cost to serve, margin, complaints.

From a job history and a solved layout (:class:`~planner.results.types.LayoutResult`), over the
last ``window_months`` months of the history (default 12, so that annual costs match):

* **site cost share**: each opened site's annual fixed cost (own workshop of the layout, the
  central office, and in two-tier its parts deliveries) is shared over the customers it serves
  in proportion to their jobs; the office is shared over all jobs;
* **partner fee** and **leakage**: jobs of customers assigned to a partner pay
  ``partner_fee_per_job_eur`` and lose ``leakage_share x margin_per_job_eur``;
* **travel cost**: the value of the customer's round trips (``customer_time_eur_per_hour``,
  0 by default);
* ``margin_eur = revenue_eur - cost_to_serve_eur``.

Complaints are counted by the site that actually served each job (``served_by``). A site is
flagged when the lower end of the Wilson interval of its complaint rate lies above the pooled
rate of all other sites (and it served at least ``min_jobs`` jobs): its rate is *well above*
the rest, not just unlucky. :func:`exclude_sites` sets flagged partners' status to
``excluded`` in a site table, which every engine solve respects.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy.special import ndtri

from planner.register.store import JobSource, RegisterStore, job_connection
from planner.register.trends import job_window
from planner.results.types import LayoutResult

logger = logging.getLogger(__name__)

__all__ = [
    "CUSTOMER_ECONOMICS_COLUMNS",
    "SITE_ECONOMICS_COLUMNS",
    "complaint_flags",
    "customer_economics",
    "exclude_sites",
    "segment_economics",
    "site_economics",
    "wilson_interval",
    "window_stats",
]

CUSTOMER_ECONOMICS_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "segment",
    "site_id",
    "role",
    "jobs",
    "revenue_eur",
    "site_cost_eur",
    "partner_fee_eur",
    "leakage_eur",
    "travel_cost_eur",
    "cost_to_serve_eur",
    "margin_eur",
    "complaints",
    "complaint_rate",
    "travel_min",
)
_SUMS: tuple[str, ...] = (
    "jobs",
    "revenue_eur",
    "site_cost_eur",
    "partner_fee_eur",
    "leakage_eur",
    "travel_cost_eur",
    "cost_to_serve_eur",
    "margin_eur",
    "complaints",
)
SITE_ECONOMICS_COLUMNS: tuple[str, ...] = (
    "site_id",
    "role",
    "customers",
    *_SUMS,
    "complaint_rate",
    "served_jobs",
    "served_complaints",
    "served_complaint_rate",
    "rate_elsewhere",
    "wilson_low",
    "flagged",
)
#: Sites with fewer served jobs are never flagged.
DEFAULT_MIN_JOBS = 30


def wilson_interval(
    successes: np.ndarray, trials: np.ndarray, *, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion (NaN where ``trials`` is 0)."""
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    z = float(ndtri(0.5 + level / 2.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return np.where(n > 0, centre - half, np.nan), np.where(n > 0, centre + half, np.nan)


def window_stats(jobs: JobSource, *, as_of: object = None, window_months: int = 12) -> pd.DataFrame:
    """Per customer (index ``customer_id``): ``jobs``, ``revenue_eur`` and ``complaints`` of
    the last ``window_months`` whole months of the history; counted in SQL."""
    _, last = job_window(jobs, as_of=as_of)  # type: ignore[arg-type]
    end = last + pd.offsets.MonthBegin(1)
    start = end - pd.DateOffset(months=int(window_months))
    with job_connection(jobs) as con:
        out = con.execute(
            "SELECT customer_id, count(*) AS jobs, sum(revenue_eur) AS revenue_eur, "
            "sum(complaint) AS complaints FROM jobs WHERE date >= ? AND date < ? "
            "GROUP BY customer_id",
            [start.to_pydatetime(), end.to_pydatetime()],
        ).df()
    return out.set_index("customer_id").astype(float)


def customer_economics(
    jobs: JobSource,
    layout: LayoutResult,
    *,
    as_of: str | pd.Timestamp | None = None,
    window_months: int = 12,
) -> pd.DataFrame:
    """Per customer: jobs, revenue, cost to serve (site share, partner fee, travel), margin.

    Parameters
    ----------
    jobs
        Valid jobs (``customer_id``, ``date``, ``revenue_eur``, ``complaint``).
    layout
        A solved layout (its customers' ``site_id`` and ``travel_min``, its sites' roles).
    as_of, window_months
        The months of history counted (default: the last 12 whole months).

    Returns
    -------
    pandas.DataFrame
        :data:`CUSTOMER_ECONOMICS_COLUMNS`, one row per customer of the layout.
    """
    params = layout.parameters
    by_customer = window_stats(jobs, as_of=as_of, window_months=window_months)
    cust = pd.DataFrame(layout.customers.drop(columns="geometry", errors="ignore"))
    out = pd.DataFrame(
        {
            "customer_id": cust["customer_id"].astype(str).to_numpy(),
            "segment": cust["segment"].astype(str).to_numpy(),
            "site_id": cust["site_id"].astype(str).to_numpy(),
            "travel_min": cust["travel_min"].to_numpy(float),
        }
    )
    stats_ = by_customer.reindex(out["customer_id"]).fillna(0.0)
    out["jobs"] = stats_["jobs"].to_numpy(float)
    out["revenue_eur"] = stats_["revenue_eur"].to_numpy(float)
    out["complaints"] = stats_["complaints"].to_numpy(float)
    sites = layout.sites
    role_of = dict(zip(sites["site_id"].astype(str), sites["role"].astype(str), strict=True))
    out["role"] = out["site_id"].map(role_of).fillna("")
    layout_kind = "two-tier" if layout.layout == "two-tier" else "in-house"
    own_fixed = (  # each site's own fixed cost (planner.results.site_figures), when known
        dict(zip(sites["site_id"].astype(str), sites["fixed_cost_eur"].astype(float), strict=True))
        if "fixed_cost_eur" in sites
        else {}
    )
    site_fixed = {
        s: own_fixed.get(s, params.workshop_fixed_cost_eur(layout=layout_kind))
        if r == "workshop"
        else 0.0
        for s, r in role_of.items()
    }
    for s, link in (layout.link_time_s or {}).items():
        if role_of.get(s) != "office":
            site_fixed[s] = site_fixed.get(s, 0.0) + float(params.delivery_cost_eur(link))
    jobs_at = out.groupby("site_id")["jobs"].sum()
    share = out["jobs"] / out["site_id"].map(jobs_at).replace(0.0, np.nan)
    out["site_cost_eur"] = (share * out["site_id"].map(site_fixed)).fillna(0.0)
    n_office = int(np.sum(sites["role"].astype(str) == "office"))
    total_jobs = float(out["jobs"].sum())
    if n_office and total_jobs > 0:
        office_fixed = sum(
            own_fixed.get(s, params.office_fixed_cost_eur)
            for s, r in role_of.items()
            if r == "office"
        )
        out["site_cost_eur"] += office_fixed * out["jobs"] / total_jobs
    partner = (out["role"] == "partner").to_numpy()
    out["partner_fee_eur"] = np.where(partner, out["jobs"] * params.partner_fee_per_job_eur, 0.0)
    out["leakage_eur"] = np.where(
        partner, out["jobs"] * params.leakage_share * params.margin_per_job_eur, 0.0
    )
    travel_s = out["travel_min"].to_numpy(float) * 60.0
    ok = np.isfinite(travel_s)
    out["travel_cost_eur"] = np.where(
        ok,
        out["jobs"] * 2.0 * np.nan_to_num(travel_s) / 3600.0 * params.customer_time_eur_per_hour,
        0.0,
    )
    out["cost_to_serve_eur"] = (
        out["site_cost_eur"] + out["partner_fee_eur"] + out["leakage_eur"] + out["travel_cost_eur"]
    )
    out["margin_eur"] = out["revenue_eur"] - out["cost_to_serve_eur"]
    with np.errstate(invalid="ignore", divide="ignore"):
        out["complaint_rate"] = np.where(out["jobs"] > 0, out["complaints"] / out["jobs"], np.nan)
    return out.reindex(columns=list(CUSTOMER_ECONOMICS_COLUMNS))


def segment_economics(customers: pd.DataFrame) -> pd.DataFrame:
    """Sums of :func:`customer_economics` per segment, with the complaint rate and margin/job."""
    out = customers.groupby("segment")[list(_SUMS)].sum().reset_index()
    out.insert(1, "customers", customers.groupby("segment").size().to_numpy())
    with np.errstate(invalid="ignore", divide="ignore"):
        out["complaint_rate"] = out["complaints"] / out["jobs"]
        out["margin_per_job_eur"] = out["margin_eur"] / out["jobs"]
    return out


def complaint_flags(
    jobs: JobSource,
    *,
    level: float = 0.95,
    min_jobs: int = DEFAULT_MIN_JOBS,
) -> pd.DataFrame:
    """Complaint rate of each site that served jobs, flagged when well above the rest.

    Returns
    -------
    pandas.DataFrame
        ``site_id``, ``served_jobs``, ``served_complaints``, ``served_complaint_rate``,
        ``rate_elsewhere`` (pooled rate of all other sites), ``wilson_low`` and ``flagged``.
    """
    with job_connection(jobs) as con:
        table = con.execute(
            "SELECT served_by AS site_id, count(*) AS served_jobs, "
            "sum(complaint)::BIGINT AS served_complaints FROM jobs WHERE served_by IS NOT NULL "
            "GROUP BY served_by ORDER BY served_by"
        ).df()
    n = table["served_jobs"].to_numpy(float)
    k = table["served_complaints"].to_numpy(float)
    total_n, total_k = n.sum(), k.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        table["served_complaint_rate"] = k / n
        table["rate_elsewhere"] = (total_k - k) / (total_n - n)
    low, _ = wilson_interval(k, n, level=level)
    table["wilson_low"] = low
    table["flagged"] = (n >= min_jobs) & (low > table["rate_elsewhere"].to_numpy())
    return table


def site_economics(
    customers: pd.DataFrame,
    layout: LayoutResult,
    jobs: JobSource,
    *,
    level: float = 0.95,
    min_jobs: int = DEFAULT_MIN_JOBS,
) -> pd.DataFrame:
    """Per site: the plan's customers, jobs, revenue, costs and margin, plus served complaints.

    Sites of the plan come first; sites that only appear as ``served_by`` in the history follow
    with their complaint figures (role empty).
    """
    plan = customers[customers["site_id"] != ""].groupby("site_id")
    table = plan[list(_SUMS)].sum()
    table.insert(0, "customers", plan.size())
    table = table.reset_index()
    roles = layout.sites[["site_id", "role"]].astype(str)
    table = roles.merge(table, on="site_id", how="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        table["complaint_rate"] = table["complaints"] / table["jobs"]
    if isinstance(jobs, RegisterStore) or "served_by" in jobs:
        flags = complaint_flags(jobs, level=level, min_jobs=min_jobs)
        table = table.merge(flags, on="site_id", how="outer")
    table["role"] = table["role"].fillna("")
    table["flagged"] = table.get("flagged", pd.Series(False, index=table.index)).fillna(False)
    table["flagged"] = table["flagged"].astype(bool)
    return table.reindex(columns=list(SITE_ECONOMICS_COLUMNS))


def exclude_sites(sites: pd.DataFrame, site_ids: Iterable[str]) -> pd.DataFrame:
    """A copy of a site table with the given sites' ``status`` set to ``excluded``.

    Use it with the flagged sites of :func:`complaint_flags` to keep those partners out of the
    outsourced layout: pass the returned table as the scenario's sites.
    """
    out = sites.copy()
    ids = {str(s) for s in site_ids}
    if "status" not in out:
        out["status"] = "candidate"
    hit = out["site_id"].astype(str).isin(ids)
    out.loc[hit, "status"] = "excluded"
    logger.info("%d sites excluded", int(hit.sum()))
    return out
