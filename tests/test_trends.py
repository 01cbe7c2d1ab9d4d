"""Demand trends on synthetic histories with known injected trends, seasonality and noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _register_history import AREAS, BASE, FLAT, TRENDED, synthetic_history

from planner.register import (
    area_trends,
    count_jobs,
    forecast_jobs,
    forecast_weights,
    segment_trends,
)
from planner.register.trends import assign_areas, fit_trend, history_window, jobs_with_customers


@pytest.fixture(scope="module")
def trended() -> tuple[pd.DataFrame, pd.DataFrame]:
    return synthetic_history(TRENDED, base_per_month=BASE, seed=0)


def _area_of(customers: pd.DataFrame, name: str) -> str:
    lat, lon = AREAS[name]
    return assign_areas(pd.DataFrame({"lat": [lat], "lon": [lon]})).iloc[0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_segment_flags_and_growth(seed: int) -> None:
    customers, jobs = synthetic_history(TRENDED, base_per_month=BASE, seed=seed)
    table = segment_trends(jobs, customers).set_index("segment")
    assert table.loc["private", "trend"] == "falling"
    assert table.loc["private", "growth_per_year"] == pytest.approx(-0.25, abs=0.05)
    assert table.loc["fleet", "trend"] == "stable"
    assert table.loc["fleet", "low"] < 0 < table.loc["fleet", "high"]
    # business: +30 % in the north, flat in the south, equal base: about +15 % overall
    assert table.loc["business", "trend"] == "rising"
    assert 0.08 < table.loc["business", "growth_per_year"] < 0.22
    assert (table["low"] <= table["growth_per_year"]).all()
    assert (table["growth_per_year"] <= table["high"]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_area_flags_show_business_rising_in_the_north(seed: int) -> None:
    customers, jobs = synthetic_history(TRENDED, base_per_month=BASE, seed=seed)
    table = area_trends(jobs, customers).set_index(["area_id", "segment"])
    north, south = _area_of(customers, "north"), _area_of(customers, "south")
    assert north != south
    assert table.loc[(north, "business"), "trend"] == "rising"
    assert table.loc[(north, "business"), "growth_per_year"] == pytest.approx(0.30, abs=0.12)
    assert table.loc[(south, "business"), "trend"] == "stable"
    assert table.loc[(north, "private"), "trend"] == "falling"
    assert table.loc[(south, "private"), "trend"] == "falling"
    assert table.loc[(north, "fleet"), "trend"] == "stable"
    assert table.loc[(south, "fleet"), "trend"] == "stable"
    lat, lon = table.loc[(north, "business"), ["lat", "lon"]]
    assert abs(lat - AREAS["north"][0]) < 0.05
    assert abs(lon - AREAS["north"][1]) < 0.05


@pytest.mark.parametrize("seed", range(5))
def test_flat_history_flags_nothing(seed: int) -> None:
    customers, jobs = synthetic_history(FLAT, base_per_month=BASE, seed=100 + seed)
    assert (segment_trends(jobs, customers)["trend"] == "stable").all()
    assert (area_trends(jobs, customers)["trend"] == "stable").all()


def test_territories_as_areas(trended) -> None:
    customers, jobs = trended
    areas = dict(zip(customers["customer_id"], customers["customer_id"].str[1], strict=True))
    table = area_trends(jobs, customers, areas=areas).set_index(["area_id", "segment"])
    assert table.loc[("N", "business"), "trend"] == "rising"
    assert table.loc[("S", "business"), "trend"] == "stable"


def test_counts_per_period_add_up(trended) -> None:
    customers, jobs = trended
    joined = jobs_with_customers(jobs, customers)
    for period, n in (("month", 36), ("quarter", 12), ("year", 3)):
        counts = count_jobs(joined, by=("segment",), period=period)
        assert counts.groupby("segment").size().eq(n).all()
        assert counts["jobs"].sum() == len(jobs)
        expected = joined.groupby("segment").size()
        assert counts.groupby("segment")["jobs"].sum().equals(expected.astype(np.int64))


def test_glm_growth_on_exact_exponential_counts() -> None:
    months = pd.date_range("2022-01-01", periods=36, freq="MS")
    counts = np.round(1000 * 1.2 ** (np.arange(36) / 12.0))
    fit = fit_trend(counts, months, level=0.95)
    assert fit.growth_per_year == pytest.approx(0.2, abs=0.002)
    assert fit.trend == "rising"
    too_few = fit_trend(np.zeros(36), months)
    assert np.isnan(too_few.growth_per_year)
    assert too_few.trend == "stable"


def test_history_window_uses_whole_months() -> None:
    dates = pd.Series(pd.to_datetime(["2023-01-15", "2025-12-03"]))
    assert history_window(dates) == (pd.Timestamp("2023-01-01"), pd.Timestamp("2025-12-01"))
    _first, last = history_window(dates, as_of="2025-11-15")
    assert last == pd.Timestamp("2025-10-01")


def test_forecast_follows_trends_and_becomes_weights(trended) -> None:
    customers, jobs = trended
    fc = forecast_jobs(jobs, customers, years=3)
    assert set(fc["year"]) == {1, 2, 3}
    assert len(fc) == 3 * len(customers)
    # last-12-months jobs x (1 + g) ** k, per customer
    one = fc[fc["customer_id"] == customers["customer_id"].iloc[0]].sort_values("year")
    base, g = one["base_jobs"].iloc[0], one["growth_per_year"].iloc[0]
    np.testing.assert_allclose(one["jobs"], base * (1 + g) ** np.array([1, 2, 3]))
    last12 = jobs[jobs["date"] >= "2025-01-01"]
    assert fc[fc["year"] == 1]["base_jobs"].sum() == pytest.approx(len(last12))
    seg = fc.groupby(["segment", "year"])["jobs"].sum()
    assert seg["private"][3] < seg["private"][1] < seg["private"][1] / 0.7
    assert seg["business"][3] > seg["business"][1]
    # north business grows faster than south business
    north = fc["customer_id"].str.startswith("BN")
    g_n = fc.loc[north & (fc["year"] == 1), "growth_per_year"].mean()
    g_s = fc.loc[fc["customer_id"].str.startswith("BS") & (fc["year"] == 1), "growth_per_year"]
    assert g_n > 0.15 > g_s.mean()
    weighted = forecast_weights(customers, fc, year=2)
    expected = fc[fc["year"] == 2].set_index("customer_id")["jobs"]
    np.testing.assert_allclose(weighted["weight"], expected[customers["customer_id"]].to_numpy())
    with pytest.raises(ValueError, match="no year 9"):
        forecast_weights(customers, fc, year=9)
