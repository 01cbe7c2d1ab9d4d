"""Demand trends from a job history: counts per period, yearly growth with an interval, flags.

Method (see ``docs/register.md``): the jobs of one group (a segment, or a segment in one area)
are counted per calendar month over the history window. A Poisson GLM (statsmodels) with a
linear time term in years and, when the window spans at least 24 months, month-of-year terms
(seasonality taken out) is fitted to the counts::

    log E[jobs in month m] = a + b * t_years(m) + s[month of year(m)]

The yearly growth is ``exp(b) - 1``. Its interval comes from the standard error of ``b``
scaled by the Pearson dispersion (quasi-Poisson; never scaled below 1), so overdispersed
counts give wider intervals. Intervals are *simultaneous* over the groups of one table
(Bonferroni): with ``level = 0.95`` and 12 groups each interval is a 99.58 % interval, so the
chance that any group of a flat history is flagged stays at most 5 %. A group is flagged
``rising`` only when the whole interval lies above 0, ``falling`` only when it lies below 0,
else ``stable``. Groups with fewer than ``min_jobs`` jobs are ``stable`` with no estimate.

The history window runs from the first month with a job to ``as_of`` (default: the last day
of the month of the latest job); only whole months are used.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtri

from planner.register.store import (
    JobSource,
    customer_codes,
    date_range,
    job_connection,
    memo_of,
    scratch_connection,
)

logger = logging.getLogger(__name__)

__all__ = [
    "PERIODS",
    "TRENDS",
    "TrendFit",
    "area_trends",
    "assign_areas",
    "classify_trend",
    "count_jobs",
    "fit_trend",
    "history_window",
    "job_window",
    "jobs_with_customers",
    "monthly_counts",
    "periods_from_monthly",
    "segment_counts",
    "segment_trends",
    "window_of_range",
]

PERIODS: tuple[str, ...] = ("month", "quarter", "year")
TRENDS: tuple[str, ...] = ("rising", "stable", "falling")
#: Default H3 resolution of area trends (cells of about 36 km², edge about 3.7 km).
DEFAULT_H3_RESOLUTION = 6
#: Groups with fewer jobs than this get no trend estimate.
DEFAULT_MIN_JOBS = 30

SEGMENT_TREND_COLUMNS: tuple[str, ...] = (
    "segment",
    "growth_per_year",
    "low",
    "high",
    "trend",
    "jobs_last_12m",
    "jobs_prev_12m",
    "jobs",
    "dispersion",
)
AREA_TREND_COLUMNS: tuple[str, ...] = ("area_id", "lat", "lon", *SEGMENT_TREND_COLUMNS)


@dataclass(frozen=True)
class TrendFit:
    """Trend of one group's monthly job counts.

    Attributes
    ----------
    growth_per_year
        ``exp(b) - 1`` (0.3 = +30 % per year); NaN when not estimated.
    low, high
        Interval of the growth at the level asked for.
    trend
        ``rising``, ``stable`` or ``falling``.
    jobs
        Jobs in the window.
    dispersion
        Pearson dispersion used to widen the interval (>= 1).
    """

    growth_per_year: float
    low: float
    high: float
    trend: str
    jobs: int
    dispersion: float


def classify_trend(low: float, high: float) -> str:
    """``rising`` when the interval lies above 0, ``falling`` below 0, else ``stable``."""
    if np.isfinite(low) and low > 0:
        return "rising"
    if np.isfinite(high) and high < 0:
        return "falling"
    return "stable"


def history_window(
    dates: pd.Series, *, as_of: str | pd.Timestamp | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First month (start day) and last whole month (start day) of a history.

    ``as_of`` default: the last day of the month of the latest date. A month counts only when
    it ends on or before ``as_of``.
    """
    d = pd.to_datetime(dates).dropna()
    if d.empty:
        raise ValueError("the job history has no dated jobs")
    return window_of_range(d.min(), d.max(), as_of=as_of)


def window_of_range(
    first_date: object, last_date: object, *, as_of: str | pd.Timestamp | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """:func:`history_window` of a history whose first and last dates are given."""
    if first_date is None or last_date is None or pd.isna(first_date) or pd.isna(last_date):
        raise ValueError("the job history has no dated jobs")
    lo, hi = pd.Timestamp(first_date), pd.Timestamp(last_date)  # type: ignore[arg-type]
    end = (
        hi.to_period("M").to_timestamp(how="end").normalize()
        if as_of is None
        else pd.Timestamp(as_of).normalize()
    )
    last = (end + pd.Timedelta(days=1)).to_period("M").to_timestamp() - pd.offsets.MonthBegin(1)
    first = lo.to_period("M").to_timestamp()
    if last < first:
        raise ValueError(f"as_of {end.date()} lies before the first whole month of the history")
    return first, last


def job_window(
    jobs: JobSource, *, as_of: str | pd.Timestamp | None = None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """:func:`history_window` of all jobs of a frame or a stored register (min/max in SQL)."""
    with job_connection(jobs) as con:
        lo, hi = date_range(con)
    return window_of_range(lo, hi, as_of=as_of)


def jobs_with_customers(jobs: pd.DataFrame, customers: pd.DataFrame) -> pd.DataFrame:
    """Jobs with their customer's ``segment``, ``lat``, ``lon`` (jobs of unknown ids left out).

    Jobs of customers missing from ``customers`` are expected to have been reported by
    :func:`planner.inputs.jobs.read_jobs` already (``unknown_customer``).
    """
    cols = [c for c in ("customer_id", "segment", "lat", "lon", "area_id") if c in customers]
    info = customers[cols].drop_duplicates("customer_id")
    info = info.assign(customer_id=info["customer_id"].astype(str))
    out = jobs.assign(customer_id=jobs["customer_id"].astype(str)).merge(
        info, on="customer_id", how="inner"
    )
    lost = len(jobs) - len(out)
    if lost:
        logger.warning("%d jobs of customers not in the register left out of the trends", lost)
    return out


def count_jobs(
    jobs: pd.DataFrame,
    *,
    by: Sequence[str] = ("segment",),
    period: str = "month",
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Jobs per group and period over the whole window, zeros included.

    Parameters
    ----------
    jobs
        Jobs with ``date`` and the ``by`` columns (see :func:`jobs_with_customers`).
    by
        Grouping columns.
    period
        ``month``, ``quarter`` or ``year``.
    as_of
        End of the window (see :func:`history_window`).

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``period`` (start day) and ``jobs``.
    """
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; allowed: {list(PERIODS)}")
    frame = pd.DataFrame({c: jobs[c] for c in [*by, "date"]})
    monthly = _monthly_sql(frame, "SELECT * FROM counted", by, date="date")
    return periods_from_monthly(monthly, by=by, period=period, as_of=as_of)


def _monthly_sql(
    frame: pd.DataFrame, relation: str, by: Sequence[str], *, date: str
) -> pd.DataFrame:
    con = scratch_connection()
    try:
        con.register("counted", frame)
        return _monthly(con, relation, by, date=date)
    finally:
        con.close()


def _monthly(con: Any, relation: str, by: Sequence[str], *, date: str) -> pd.DataFrame:
    """Jobs per ``by`` group and calendar month of ``relation`` (SQL; the one count)."""
    keys = ", ".join(f'"{c}"' for c in by)
    sql = (
        f"SELECT {keys}{', ' if keys else ''}date_trunc('month', {date}) AS month, "
        f"count(*) AS jobs FROM ({relation}) WHERE {date} IS NOT NULL GROUP BY ALL"
    )
    out = con.execute(sql).df()
    out["month"] = pd.to_datetime(out["month"]).astype("datetime64[ns]")
    out["jobs"] = out["jobs"].astype(np.int64)
    return out


def monthly_counts(
    jobs: JobSource, customers: pd.DataFrame, *, by: Sequence[str] = ("segment",)
) -> pd.DataFrame:
    """Jobs per group of customer columns ``by`` and calendar month, counted in SQL.

    Jobs of customers missing from ``customers`` are left out (and logged), as in
    :func:`jobs_with_customers`. ``customers`` needs ``customer_id`` and the ``by`` columns.
    A stored register keeps the answer for the same customers while it is open.
    """
    info = customers[["customer_id", *by]].drop_duplicates("customer_id")
    info = pd.DataFrame(info.assign(customer_id=info["customer_id"].astype(str)))
    memo = memo_of(jobs)
    key = ("monthly", tuple(by), int(pd.util.hash_pandas_object(info, index=False).sum()))
    if key in memo:
        return memo[key].copy()
    # each customer's group as an integer code: the jobs are counted per code and month
    codes = info.groupby(list(by), sort=False, dropna=False).ngroup().to_numpy(np.int32)
    groups = info.assign(g=codes).drop_duplicates("g").set_index("g").sort_index()
    coded = pd.DataFrame({"customer_id": info["customer_id"].to_numpy(), "g": codes})
    with job_connection(jobs, {"customer_codes": coded}) as con:
        counted = _monthly(con, customer_codes(jobs, "customer_codes"), ["g"], date="date")
    unknown = counted["g"].isna().to_numpy()
    if unknown.any():
        logger.warning(
            "%d jobs of customers not in the register left out of the trends",
            int(counted.loc[unknown, "jobs"].sum()),
        )
    counted = counted.loc[~unknown]
    picked = groups.loc[counted["g"].astype(np.int64).to_numpy()]
    out = pd.DataFrame(
        {
            **{b: picked[b].astype(object).to_numpy() for b in by},
            "month": counted["month"].to_numpy(),
            "jobs": counted["jobs"].to_numpy(),
        }
    )
    memo[key] = out.copy()
    return out


def periods_from_monthly(
    monthly: pd.DataFrame,
    *,
    by: Sequence[str] = ("segment",),
    period: str = "month",
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """:func:`count_jobs` from monthly counts (``by``, ``month``, ``jobs``)."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r}; allowed: {list(PERIODS)}")
    if monthly.empty:
        raise ValueError("the job history has no dated jobs")
    first, last = window_of_range(monthly["month"].min(), monthly["month"].max(), as_of=as_of)
    freq = {"month": "M", "quarter": "Q", "year": "Y"}[period]
    inside = monthly[(monthly["month"] >= first) & (monthly["month"] <= last)]
    periods = pd.period_range(first, last, freq=freq).to_timestamp()
    # start month of each month's period (months counted from 1970-01, a quarter's start)
    months = inside["month"].to_numpy().astype("datetime64[M]").astype(np.int64)
    step = {"month": 1, "quarter": 3, "year": 12}[period]
    keys = (months - months % step).astype("datetime64[M]").astype(periods.dtype)
    counted = inside.assign(period=keys).groupby([*by, "period"])["jobs"].sum()
    groups = inside[list(by)].drop_duplicates().sort_values(list(by))
    full = groups.merge(pd.DataFrame({"period": periods}), how="cross")
    out = full.merge(counted.reset_index(), on=[*by, "period"], how="left")
    out["jobs"] = out["jobs"].fillna(0).astype(np.int64)
    return out.reset_index(drop=True)


def segment_counts(
    jobs: JobSource,
    customers: pd.DataFrame,
    *,
    period: str = "month",
    as_of: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Jobs per segment and period (``segment_counts.csv``), counted in SQL."""
    monthly = monthly_counts(jobs, customers, by=("segment",))
    return periods_from_monthly(monthly, by=("segment",), period=period, as_of=as_of)


def fit_trend(
    counts: np.ndarray,
    months: pd.DatetimeIndex | Sequence[pd.Timestamp],
    *,
    level: float = 0.95,
    min_jobs: int = DEFAULT_MIN_JOBS,
) -> TrendFit:
    """Yearly growth of monthly counts with a quasi-Poisson GLM (see the module docstring).

    Parameters
    ----------
    counts
        Jobs per month, one per entry of ``months``.
    months
        Start day of each month (consecutive).
    level
        Confidence level of this one interval (callers pass a Bonferroni-adjusted level).
    min_jobs
        Fewer jobs than this: no estimate (``stable``, NaN growth).
    """
    # the GLM alone (statsmodels.api imports every model: twice the import time)
    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    y = np.asarray(counts, dtype=float)
    total = int(y.sum())
    nan = TrendFit(np.nan, np.nan, np.nan, "stable", total, np.nan)
    idx = pd.DatetimeIndex(months)
    if total < min_jobs or y.size < 6:
        return nan
    t = (np.arange(y.size) - (y.size - 1) / 2.0) / 12.0
    columns = [np.ones_like(t), t]
    if y.size >= 24:
        moy = idx.month.to_numpy()
        columns += [(moy == k).astype(float) for k in range(2, 13)]
    x = np.column_stack(columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", PerfectSeparationWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            fit = GLM(y, x, family=families.Poisson()).fit()
        except (ValueError, np.linalg.LinAlgError):
            return nan
    df = max(int(fit.df_resid), 1)
    dispersion = max(1.0, float(fit.pearson_chi2) / df)
    b = float(fit.params[1])
    se = float(fit.bse[1]) * np.sqrt(dispersion)
    if not (np.isfinite(b) and np.isfinite(se)):
        return nan
    z = float(ndtri(0.5 + level / 2.0))
    low, high = np.expm1(b - z * se), np.expm1(b + z * se)
    return TrendFit(
        float(np.expm1(b)), float(low), float(high), classify_trend(low, high), total, dispersion
    )


def _trend_table(
    monthly: pd.DataFrame, by: Sequence[str], *, level: float, min_jobs: int
) -> pd.DataFrame:
    groups = list(monthly.groupby(list(by), sort=True))
    n_tests = sum(int(g["jobs"].sum()) >= min_jobs for _, g in groups) or 1
    per_test = 1.0 - (1.0 - level) / n_tests
    last = monthly["period"].max()
    rows = []
    for key, unsorted in groups:
        g = unsorted.sort_values("period")
        fit = fit_trend(g["jobs"].to_numpy(), g["period"], level=per_test, min_jobs=min_jobs)
        recent = g["period"] > last - pd.DateOffset(months=12)
        prev = (g["period"] > last - pd.DateOffset(months=24)) & ~recent
        keys = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(by, keys, strict=True)),
                "growth_per_year": fit.growth_per_year,
                "low": fit.low,
                "high": fit.high,
                "trend": fit.trend,
                "jobs_last_12m": int(g.loc[recent, "jobs"].sum()),
                "jobs_prev_12m": int(g.loc[prev, "jobs"].sum()),
                "jobs": fit.jobs,
                "dispersion": fit.dispersion,
            }
        )
    return pd.DataFrame(rows)


def _kept_trend_table(
    jobs: JobSource, monthly: pd.DataFrame, by: Sequence[str], *, level: float, min_jobs: int
) -> pd.DataFrame:
    """:func:`_trend_table`, fitted once per history and counts (the forecast asks again)."""
    memo = memo_of(jobs)
    key = (
        "trend_table",
        tuple(by),
        level,
        min_jobs,
        int(pd.util.hash_pandas_object(monthly, index=False).sum()),
    )
    if key not in memo:
        memo[key] = _trend_table(monthly, by, level=level, min_jobs=min_jobs)
    return memo[key].copy()


def segment_trends(
    jobs: JobSource,
    customers: pd.DataFrame,
    *,
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
    min_jobs: int = DEFAULT_MIN_JOBS,
) -> pd.DataFrame:
    """Yearly growth, interval and flag of each segment's jobs.

    Parameters
    ----------
    jobs
        Valid jobs (``customer_id``, ``date``), e.g. ``read_jobs(...).valid``, or the
        stored register (:class:`~planner.register.store.RegisterStore`).
    customers
        The register (``customer_id``, ``segment``).
    as_of
        End of the history window (see :func:`history_window`).
    level
        Simultaneous confidence level over the segments (Bonferroni).
    min_jobs
        Segments with fewer jobs get no estimate.

    Returns
    -------
    pandas.DataFrame
        :data:`SEGMENT_TREND_COLUMNS`, one row per segment.
    """
    monthly = segment_counts(jobs, customers, as_of=as_of)
    table = _kept_trend_table(jobs, monthly, ("segment",), level=level, min_jobs=min_jobs)
    return table.reindex(columns=list(SEGMENT_TREND_COLUMNS))


def assign_areas(
    customers: pd.DataFrame,
    *,
    h3_resolution: int = DEFAULT_H3_RESOLUTION,
) -> pd.Series:
    """H3 cell id of each customer (index aligned with ``customers``), '' without location."""
    import h3

    lat = pd.to_numeric(customers["lat"], errors="coerce").to_numpy(float)
    lon = pd.to_numeric(customers["lon"], errors="coerce").to_numpy(float)
    key = (h3_resolution, len(lat), hash(lat.tobytes()), hash(lon.tobytes()))
    cells = _AREA_CELLS.get(key)
    if cells is None:  # the trends and the forecast of one run ask for the same customers
        cells = np.array(
            [
                h3.latlng_to_cell(a, b, h3_resolution) if np.isfinite(a) and np.isfinite(b) else ""
                for a, b in zip(lat, lon, strict=True)
            ],
            dtype=object,
        )
        if len(_AREA_CELLS) >= 4:
            _AREA_CELLS.pop(next(iter(_AREA_CELLS)))
        _AREA_CELLS[key] = cells
    return pd.Series(cells.copy(), index=customers.index, dtype=object, name="area_id")


#: H3 cells of the last customer locations asked for: (resolution, n, hashes) -> cells.
_AREA_CELLS: dict[tuple[int, int, int, int], np.ndarray] = {}


def _area_centres(
    area_ids: Sequence[str], jobs: JobSource, customers: pd.DataFrame, *, h3_cells: bool
) -> dict[str, tuple[float, float]]:
    if h3_cells:
        import h3

        return {a: h3.cell_to_latlng(a) for a in area_ids if a}
    info = customers[["customer_id", "area_id", "lat", "lon"]].drop_duplicates("customer_id")
    with job_connection(jobs, {"customer_info": pd.DataFrame(info)}) as con:
        means = (  # mean location of the area's jobs
            con.execute(
                "SELECT area_id, avg(lat) AS lat, avg(lon) AS lon FROM jobs "
                "JOIN customer_info USING (customer_id) GROUP BY area_id"
            )
            .df()
            .set_index("area_id")
        )
    return {a: (float(r["lat"]), float(r["lon"])) for a, r in means.iterrows()}


def area_trends(
    jobs: JobSource,
    customers: pd.DataFrame,
    *,
    areas: Mapping[str, str] | None = None,
    h3_resolution: int = DEFAULT_H3_RESOLUTION,
    as_of: str | pd.Timestamp | None = None,
    level: float = 0.95,
    min_jobs: int = DEFAULT_MIN_JOBS,
) -> pd.DataFrame:
    """Yearly growth, interval and flag of each segment in each area.

    Parameters
    ----------
    jobs, customers, as_of, min_jobs
        As for :func:`segment_trends`.
    areas
        ``{customer_id: area_id}``, for example the current territories (the site id each
        customer is assigned to in a result); None: H3 hexagons of ``h3_resolution``.
    h3_resolution
        H3 resolution of the hexagon grid when ``areas`` is None.
    level
        Simultaneous confidence level over every (area, segment) group with an estimate.

    Returns
    -------
    pandas.DataFrame
        :data:`AREA_TREND_COLUMNS`; ``lat``/``lon`` is the hexagon centre (or the mean location
        of the area's customers for given areas).
    """
    cust = customers.copy()
    cust["customer_id"] = cust["customer_id"].astype(str)
    if areas is None:
        cust["area_id"] = assign_areas(cust, h3_resolution=h3_resolution).to_numpy()
    else:
        cust["area_id"] = cust["customer_id"].map({str(k): str(a) for k, a in areas.items()})
        cust["area_id"] = cust["area_id"].fillna("")
    by = ("area_id", "segment")
    located = cust[cust["area_id"] != ""]
    monthly = periods_from_monthly(monthly_counts(jobs, located, by=by), by=by, as_of=as_of)
    table = _kept_trend_table(jobs, monthly, by, level=level, min_jobs=min_jobs)
    if table.empty:
        return pd.DataFrame(columns=list(AREA_TREND_COLUMNS))
    centres = _area_centres(list(table["area_id"].unique()), jobs, located, h3_cells=areas is None)
    table["lat"] = table["area_id"].map(lambda a: centres[a][0])
    table["lon"] = table["area_id"].map(lambda a: centres[a][1])
    return table.reindex(columns=list(AREA_TREND_COLUMNS))
