"""`planner trends`, `planner phases` and `planner economics`: the contract files and columns."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _register_history import BASE, TRENDED, synthetic_history

from planner.cli import main
from planner.register import segment_trends

REPO = Path(__file__).resolve().parent.parent
DEMO_CUSTOMERS = REPO / "data" / "demo" / "malta_customers.csv"
DEMO_JOBS = REPO / "data" / "demo" / "malta_jobs.csv"


@pytest.fixture
def history(tmp_path: Path) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    customers, jobs = synthetic_history(TRENDED, base_per_month=BASE, seed=0)
    c_path, j_path = tmp_path / "customers.csv", tmp_path / "jobs.csv"
    customers.rename(columns={"customer_id": "id"}).to_csv(c_path, index=False)
    jobs.assign(date=jobs["date"].dt.strftime("%Y-%m-%d")).to_csv(j_path, index=False)
    return c_path, j_path, customers, jobs


def test_trends_writes_the_contract_files(history, tmp_path: Path, capsys) -> None:
    c_path, j_path, customers, jobs = history
    out = tmp_path / "out"
    assert main(["trends", str(j_path), "--customers", str(c_path), "--out", str(out)]) == 0
    seg = pd.read_csv(out / "segment_trends.csv")
    assert list(seg.columns[:7]) == [
        "segment",
        "growth_per_year",
        "low",
        "high",
        "trend",
        "jobs_last_12m",
        "jobs_prev_12m",
    ]
    expected = segment_trends(jobs, customers)
    pd.testing.assert_series_equal(seg["growth_per_year"], expected["growth_per_year"])
    assert dict(zip(seg["segment"], seg["trend"], strict=True)) == {
        "business": "rising",
        "fleet": "stable",
        "private": "falling",
    }
    area = pd.read_csv(out / "area_trends.csv")
    assert list(area.columns[:9]) == [
        "area_id",
        "lat",
        "lon",
        "segment",
        "growth_per_year",
        "low",
        "high",
        "trend",
        "jobs_last_12m",
    ]
    assert set(area["trend"]) <= {"rising", "stable", "falling"}
    forecast = pd.read_csv(out / "forecast.csv")
    assert list(forecast.columns[:6]) == ["customer_id", "lat", "lon", "segment", "year", "jobs"]
    assert len(forecast) == 3 * len(customers)
    counts = pd.read_csv(out / "segment_counts.csv")
    assert counts["jobs"].sum() == len(jobs)
    assert counts.groupby("segment").size().eq(36).all()
    html = (out / "trends.html").read_text(encoding="utf-8")
    assert "business demand trend" in html
    assert "unpkg.com" not in html  # offline page
    # nothing is overwritten without asking
    assert main(["trends", str(j_path), "--customers", str(c_path), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (
        main(["trends", str(j_path), "--customers", str(c_path), "--out", str(out), "--overwrite"])
        == 0
    )


def test_trends_with_bad_rows_warns_and_continues(history, tmp_path: Path, capsys) -> None:
    c_path, j_path, _, _ = history
    with j_path.open("a", encoding="utf-8") as f:
        f.write("JX,NOBODY,2024-01-01\n")
    out = tmp_path / "out2"
    assert main(["trends", str(j_path), "--customers", str(c_path), "--out", str(out)]) == 0
    assert "1 rows of" in capsys.readouterr().err


@pytest.mark.slow
def test_phases_on_malta(tmp_path: Path) -> None:
    out = tmp_path / "phases"
    argv = [
        "phases",
        "--region",
        "malta",
        "--customers",
        str(DEMO_CUSTOMERS),
        "--jobs",
        str(DEMO_JOBS),
        "--workshops",
        "2,3",
        "--time-limit",
        "20",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    phases = pd.read_csv(out / "phases.csv")
    assert list(phases.columns[:5]) == ["year", "site_id", "lat", "lon", "action"]
    assert phases.groupby("year").size().tolist() == [2, 3]
    assert set(phases.loc[phases["year"] == 1, "site_id"]) <= set(
        phases.loc[phases["year"] == 2, "site_id"]
    )
    assert (phases.loc[phases["year"] == 1, "action"] == "open").all()
    assert (phases.loc[phases["year"] == 2, "action"] == "open").sum() == 1
    moves = pd.read_csv(out / "moves.csv")
    assert list(moves.columns[:6]) == [
        "year",
        "customer_id",
        "from_site",
        "to_site",
        "minutes_before",
        "minutes_after",
    ]
    assert (moves["minutes_before"] - moves["minutes_after"] >= 5.0).all()
    summary = pd.read_csv(out / "phases_summary.csv")
    assert list(summary.columns[:6]) == [
        "year",
        "workshops",
        "mean_travel_min",
        "objective",
        "gap",
        "objective_if_replanned",
    ]
    assert (summary["objective"] >= summary["objective_if_replanned"] - 1e-6).all()
    assert (summary["gap"] >= 0).all()


@pytest.mark.slow
def test_economics_on_malta(tmp_path: Path) -> None:
    out = tmp_path / "eco"
    argv = [
        "economics",
        str(DEMO_JOBS),
        "--customers",
        str(DEMO_CUSTOMERS),
        "--region",
        "malta",
        "--workshops",
        "3",
        "--time-limit",
        "20",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    customers = pd.read_csv(out / "customer_economics.csv")
    sites = pd.read_csv(out / "site_economics.csv")
    jobs = pd.read_csv(DEMO_JOBS, parse_dates=["date"])
    last12 = jobs[jobs["date"] >= "2025-01-01"]
    assert customers["jobs"].sum() == len(last12)
    assert customers["revenue_eur"].sum() == pytest.approx(last12["revenue_eur"].sum())
    own = sites[sites["role"] == "workshop"]
    assert len(own) == 3
    assert own["site_cost_eur"].sum() == pytest.approx(3 * 238_000.0)
    # the demo's partner P2 has 15 % complaints against 4 % elsewhere
    assert sites.loc[sites["flagged"], "site_id"].tolist() == ["P2"]


@pytest.mark.slow
def test_economics_excludes_flagged_partners(tmp_path: Path) -> None:
    sites = tmp_path / "sites.csv"
    sites.write_text(
        "site_id,lat,lon,kind,status\n"
        "P1,35.8989,14.5146,partner,candidate\n"
        "P2,35.9100,14.4500,partner,candidate\n"
        "P3,35.8700,14.4300,partner,candidate\n",
        encoding="utf-8",
    )
    out = tmp_path / "eco"
    argv = [
        "economics",
        str(DEMO_JOBS),
        "--customers",
        str(DEMO_CUSTOMERS),
        "--region",
        "malta",
        "--sites",
        str(sites),
        "--layout",
        "outsourced",
        "--workshops",
        "3",
        "--exclude-flagged",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    kept = pd.read_csv(out / "sites_without_flagged.csv")
    assert dict(zip(kept["site_id"], kept["status"], strict=True)) == {
        "P1": "candidate",
        "P2": "excluded",
        "P3": "candidate",
    }
    econ = pd.read_csv(out / "site_economics.csv")
    planned = set(econ.loc[econ["role"] == "partner", "site_id"])
    assert planned == {"P1", "P3"}
    customers = pd.read_csv(out / "customer_economics.csv")
    assert set(customers["site_id"]) == {"P1", "P3"}
    assert customers["partner_fee_eur"].sum() == pytest.approx(140.0 * customers["jobs"].sum())
