"""Economics per customer, segment and site, and complaint flags, on hand-made results."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from planner.models import Solution
from planner.register import (
    complaint_flags,
    customer_economics,
    exclude_sites,
    segment_economics,
    site_economics,
)
from planner.register.economics import wilson_interval
from planner.results.costs import CostBreakdown, CostParameters
from planner.results.types import LayoutResult, ScenarioResult


def _layout(parameters: CostParameters, layout: str = "in-house") -> LayoutResult:
    customers = gpd.GeoDataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "segment": ["private", "business", "business", "private"],
            "site_id": ["W1", "W1", "P1", "P1"],
            "travel_min": [10.0, 20.0, 30.0, 5.0],
            "weight": [1.0, 1.0, 1.0, 1.0],
            "lat": [35.9] * 4,
            "lon": [14.4] * 4,
        },
        geometry=gpd.points_from_xy([14.4] * 4, [35.9] * 4),
        crs=4326,
    )
    sites = gpd.GeoDataFrame(
        {
            "site_id": ["W1", "P1"],
            "role": ["workshop", "partner"],
            "lat": [35.9] * 2,
            "lon": [14.4] * 2,
        },
        geometry=gpd.points_from_xy([14.4] * 2, [35.9] * 2),
        crs=4326,
    )
    sol = Solution(
        "p_median",
        np.array([0, 1]),
        np.array([0, 0, 1, 1]),
        0.0,
        0.0,
        0.0,
        True,
        "optimal",
        0.0,
        "test",
    )
    result = ScenarioResult(customers=customers, sites=sites, kpis={}, solution=sol)
    return LayoutResult(
        layout=layout,
        result=result,
        costs=CostBreakdown(0, 0, 0, 0, 0, 0),
        loads=pd.DataFrame(),
        office_id=None,
        link_time_s={},
        parameters=parameters,
    )


def _jobs() -> pd.DataFrame:
    rows = (
        [("a", "2025-03-01", 100.0, 0, "W1")] * 3
        + [("b", "2025-05-01", 200.0, 1, "W1")]
        + [("c", "2025-06-01", 300.0, 0, "P1")] * 2
        + [("d", "2025-07-01", 50.0, 0, "P1")]
        + [("a", "2023-01-01", 999.0, 1, "W1")]  # outside the last 12 months
        + [("d", "2025-12-20", 10.0, 0, "P1")]
    )
    frame = pd.DataFrame(
        rows, columns=["customer_id", "date", "revenue_eur", "complaint", "served_by"]
    )
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_customer_economics_by_hand() -> None:
    params = CostParameters(partner_fee_per_job_eur=100.0, customer_time_eur_per_hour=30.0)
    econ = customer_economics(_jobs(), _layout(params)).set_index("customer_id")
    fixed = params.workshop_fixed_cost_eur()
    assert econ["jobs"].tolist() == [3.0, 1.0, 2.0, 2.0]
    assert econ["revenue_eur"].tolist() == [300.0, 200.0, 600.0, 60.0]
    # W1's fixed cost shared 3:1 by jobs; partners have no fixed cost
    assert econ.loc["a", "site_cost_eur"] == pytest.approx(fixed * 3 / 4)
    assert econ.loc["b", "site_cost_eur"] == pytest.approx(fixed / 4)
    assert econ.loc["c", "site_cost_eur"] == 0.0
    assert econ.loc["c", "partner_fee_eur"] == pytest.approx(200.0)
    assert econ.loc["c", "leakage_eur"] == pytest.approx(2 * 0.15 * 60.0)
    # round trips valued at 30 EUR/h: 3 jobs x 2 x 10 min = 1 h
    assert econ.loc["a", "travel_cost_eur"] == pytest.approx(30.0)
    assert econ.loc["a", "margin_eur"] == pytest.approx(300.0 - fixed * 3 / 4 - 30.0)
    assert econ.loc["b", "complaint_rate"] == 1.0
    seg = segment_economics(econ.reset_index()).set_index("segment")
    assert seg.loc["business", "jobs"] == 3.0
    assert seg.loc["business", "complaint_rate"] == pytest.approx(1 / 3)
    assert seg["site_cost_eur"].sum() == pytest.approx(fixed)


def test_site_economics_sums_and_flags() -> None:
    params = CostParameters()
    layout = _layout(params)
    jobs = _jobs()
    econ = customer_economics(jobs, layout)
    sites = site_economics(econ, layout, jobs, min_jobs=1).set_index("site_id")
    assert sites.loc["W1", "customers"] == 2
    assert sites.loc["W1", "jobs"] == 4.0
    assert sites.loc["W1", "cost_to_serve_eur"] == pytest.approx(params.workshop_fixed_cost_eur())
    assert sites.loc["P1", "served_jobs"] == 4
    assert sites.loc["W1", "served_complaints"] == 2


def test_wilson_interval_matches_formula() -> None:
    low, high = wilson_interval(np.array([10]), np.array([100]))
    # Wilson 95 % interval for 10/100: 0.0552 to 0.1744
    assert low[0] == pytest.approx(0.0552, abs=1e-4)
    assert high[0] == pytest.approx(0.1744, abs=1e-4)


def test_partner_with_many_complaints_is_flagged_and_can_be_excluded() -> None:
    rng = np.random.default_rng(1)
    rows = []
    for site, rate in (("P1", 0.04), ("P2", 0.15), ("P3", 0.04), ("W1", 0.04)):
        complaints = rng.random(400) < rate
        rows += [(site, int(c)) for c in complaints]
    jobs = pd.DataFrame(rows, columns=["served_by", "complaint"])
    flags = complaint_flags(jobs).set_index("site_id")
    assert flags["flagged"].tolist() == [False, True, False, False]
    # a small site with a bad run is not flagged: too few jobs
    small = pd.concat([jobs, pd.DataFrame({"served_by": ["P4"] * 3, "complaint": [1, 1, 0]})])
    assert not complaint_flags(small).set_index("site_id").loc["P4", "flagged"]
    sites = pd.DataFrame({"site_id": ["P1", "P2", "P3"], "kind": ["partner"] * 3})
    out = exclude_sites(sites, flags.index[flags["flagged"]])
    assert out["status"].tolist() == ["candidate", "excluded", "candidate"]
    assert "status" not in sites
