"""Forecast of each customer's yearly jobs from its segment and area trends.

For customer ``i`` of segment ``s`` in area ``a`` (see ``docs/register.md``)::

    jobs_i(k) = base_i * (1 + g_i) ** k          k = 1 .. years

* ``base_i`` is the customer's jobs in the last 12 months of the history; a customer whose
  ``first_contact`` (or first job) lies inside those 12 months is annualised over the months it
  has been a customer (at least :data:`MIN_ACTIVE_MONTHS`).
* ``log(1 + g_i) = w * log(1 + g_as) + (1 - w) * log(1 + g_s)`` with
  ``w = n_as / (n_as + shrink_jobs)``: the segment-in-area growth ``g_as`` is shrunk toward the
  segment growth ``g_s`` when the area has few jobs ``n_as``. A missing estimate counts as the
  next level up (area -> segment -> 0).

Year ``k`` is the k-th 12 months after the end of the history window. The forecast of one year
becomes the demand weight of a scenario with :func:`forecast_weights`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.register.store import JobSource, RegisterStore, job_connection
from planner.register.trends import (
    DEFAULT_H3_RESOLUTION,
    DEFAULT_MIN_JOBS,
    area_trends,
    assign_areas,
    job_window,
    segment_trends,
)

logger = logging.getLogger(__name__)

__all__ = [
    "FORECAST_COLUMNS",
    "forecast_jobs",
    "forecast_summary",
    "forecast_weights",
    "recent_jobs",
]

FORECAST_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "lat",
    "lon",
    "segment",
    "year",
    "jobs",
    "area_id",
    "base_jobs",
    "growth_per_year",
)
#: Default number of area jobs at which area and segment growth weigh equally.
DEFAULT_SHRINK_JOBS = 200.0
#: A customer new in the last 12 months is annualised over at least this many months.
MIN_ACTIVE_MONTHS = 3
MAX_YEARS = 5


def recent_jobs(jobs: JobSource, *, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Per customer (index ``customer_id``): ``jobs`` dated in ``[start, end)`` and the date of
    its ``first_job`` (of the whole history); counted in SQL."""
    keyed = isinstance(jobs, RegisterStore) and jobs.keyed
    per = "customer_no" if keyed else "customer_id"
    sql = (
        f"SELECT {per}, count(*) FILTER (WHERE date >= ? AND date < ?) AS jobs, "
        f"min(date) AS first_job FROM jobs GROUP BY {per}"
    )
    if keyed:  # grouped on the integer, named afterwards
        sql = (
            f"SELECT k.customer_id, r.jobs, r.first_job FROM ({sql}) r "
            "JOIN customer_keys k USING (customer_no)"
        )
    with job_connection(jobs) as con:
        out = con.execute(sql, [start.to_pydatetime(), end.to_pydatetime()]).df()
    out["first_job"] = pd.to_datetime(out["first_job"]).astype("datetime64[ns]")
    return out.set_index("customer_id")


def _growth_log(values: pd.Series) -> pd.Series:
    return np.log1p(values.astype(float))


def forecast_jobs(
    jobs: JobSource,
    customers: pd.DataFrame,
    *,
    years: int = 3,
    as_of: str | pd.Timestamp | None = None,
    areas: Mapping[str, str] | None = None,
    h3_resolution: int = DEFAULT_H3_RESOLUTION,
    shrink_jobs: float = DEFAULT_SHRINK_JOBS,
    min_jobs: int = DEFAULT_MIN_JOBS,
    trends: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Expected jobs of every register customer in each of the next ``years`` years.

    Parameters
    ----------
    jobs
        Valid jobs (``customer_id``, ``date``), or the stored register
        (:class:`~planner.register.store.RegisterStore`).
    customers
        The register (``customer_id``, ``lat``, ``lon``, ``segment``, optional
        ``first_contact``).
    years
        Years to forecast, 1 to 5.
    as_of
        End of the history window.
    areas, h3_resolution, min_jobs
        As for :func:`planner.register.trends.area_trends`.
    shrink_jobs
        Area jobs at which area and segment growth weigh equally (see the module docstring).
    trends
        The segment and area trends of the same history and arguments when already computed
        (:func:`segment_trends`, :func:`area_trends`); default: computed here.

    Returns
    -------
    pandas.DataFrame
        :data:`FORECAST_COLUMNS`, one row per customer and year (``year`` 1..years).
    """
    if not (1 <= int(years) <= MAX_YEARS):
        raise ValueError(f"years must be 1 to {MAX_YEARS}, got {years!r}")
    if shrink_jobs < 0:
        raise ValueError(f"shrink_jobs must be >= 0, got {shrink_jobs!r}")
    cust = pd.DataFrame(customers.drop(columns="geometry", errors="ignore")).copy()
    cust["customer_id"] = cust["customer_id"].astype(str)
    first, last = job_window(jobs, as_of=as_of)
    end = last + pd.offsets.MonthBegin(1)  # first day after the window
    if trends is None:
        seg = segment_trends(jobs, cust, as_of=as_of, min_jobs=min_jobs)
        area = area_trends(
            jobs, cust, areas=areas, h3_resolution=h3_resolution, as_of=as_of, min_jobs=min_jobs
        )
    else:
        seg, area = trends
    if areas is None:
        cust["area_id"] = assign_areas(cust, h3_resolution=h3_resolution).to_numpy()
    else:
        cust["area_id"] = cust["customer_id"].map({str(k): str(a) for k, a in areas.items()})
        cust["area_id"] = cust["area_id"].fillna("")

    g_seg = _growth_log(seg.set_index("segment")["growth_per_year"])
    g_area = area.set_index(["area_id", "segment"])
    log_s = cust["segment"].map(g_seg).astype(float).fillna(0.0).to_numpy()
    key = pd.MultiIndex.from_arrays([cust["area_id"], cust["segment"]])
    log_a = _growth_log(g_area["growth_per_year"]).reindex(key).to_numpy()
    n_a = g_area["jobs"].reindex(key).fillna(0).to_numpy(float)
    w = np.where(np.isfinite(log_a), n_a / (n_a + shrink_jobs) if shrink_jobs else 1.0, 0.0)
    log_g = w * np.nan_to_num(log_a) + (1.0 - w) * log_s

    start12 = end - pd.DateOffset(months=12)
    per_customer = recent_jobs(jobs, start=start12, end=end)
    count12 = cust["customer_id"].map(per_customer["jobs"]).fillna(0).to_numpy(float)
    since = cust["customer_id"].map(per_customer["first_job"])
    if "first_contact" in cust:
        contact = pd.to_datetime(cust["first_contact"], errors="coerce")
        since = since.where(contact.isna() | (contact > since), contact)
    months_active = ((end - pd.to_datetime(since)).dt.days / 30.4375).to_numpy(float)
    months_active = np.where(np.isfinite(months_active), months_active, 12.0)
    months_active = np.clip(months_active, MIN_ACTIVE_MONTHS, 12.0)
    base = count12 * 12.0 / months_active

    growth = np.expm1(log_g)
    rows = []
    for k in range(1, int(years) + 1):
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": cust["customer_id"].to_numpy(),
                    "lat": cust["lat"].to_numpy(float),
                    "lon": cust["lon"].to_numpy(float),
                    "segment": cust["segment"].astype(str).to_numpy(),
                    "year": k,
                    "jobs": base * np.exp(log_g * k),
                    "area_id": cust["area_id"].to_numpy(),
                    "base_jobs": base,
                    "growth_per_year": growth,
                }
            )
        )
    logger.info("forecast of %d customers for %d years from %s", len(cust), years, first.date())
    return pd.concat(rows, ignore_index=True).reindex(columns=list(FORECAST_COLUMNS))


def forecast_weights(
    customers: gpd.GeoDataFrame, forecast: pd.DataFrame, *, year: int
) -> gpd.GeoDataFrame:
    """The customers with ``weight`` = forecast jobs in ``year`` (jobs basis of a scenario).

    Customers without a forecast row get weight 0 (they bring no jobs).
    """
    rows = forecast[forecast["year"] == int(year)]
    if rows.empty:
        raise ValueError(
            f"the forecast has no year {year}; it covers years {sorted(forecast['year'].unique())}"
        )
    jobs = rows.set_index(rows["customer_id"].astype(str))["jobs"]
    out = customers.copy()
    out["weight"] = out["customer_id"].astype(str).map(jobs).fillna(0.0).astype(float).to_numpy()
    return out


def forecast_summary(forecast: pd.DataFrame) -> pd.DataFrame:
    """Forecast jobs per segment and year (rows: segment, columns: year), with a total row."""
    table = forecast.pivot_table(
        index="segment", columns="year", values="jobs", aggfunc="sum"
    ).rename(columns=lambda k: f"year {k}")
    table.loc["total"] = table.sum(axis=0)
    return table
