"""``planner compare``, ``planner run SCENARIO.toml`` and the app's compare page."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from _apptest import ok, wait_for_job

from planner import cli
from planner.engine import LAYOUTS, ScenarioSpec, compare, load_scenario, save_scenario
from planner.inputs.customers import load_demo_customers

REGION = "liechtenstein"
REQUIRED_COLUMNS = (
    "layout",
    "sites",
    "mean_travel_min",
    "p90_travel_min",
    "share_within_sla",
    "annual_cost",
    "cost_per_job",
    "optimal",
    "gap",
)


@pytest.fixture(scope="module")
def customers_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("in") / "customers.csv"
    frame = load_demo_customers(REGION, n=250, seed=3)
    frame.drop(columns="geometry").to_csv(path, index=False)
    return path


def test_growth_argument_parsing():
    assert cli._parse_growth(["business=0.3", "private=10%"]) == pytest.approx(
        {"business": 0.3, "private": 0.1}
    )
    with pytest.raises(ValueError, match="SEGMENT=RATE"):
        cli._parse_growth(["business"])
    with pytest.raises(ValueError, match="SEGMENT=RATE"):
        cli._parse_growth(["business=lots"])


def test_printed_comparison_shows_the_market_figures_when_there_are_some():
    table = pd.DataFrame(
        {
            "layout": ["in-house", "outsourced"],
            "sites": [3, 3],
            "mean_travel_min": [4.04, 5.1],
            "annual_cost": [1_200_000.0, 700_000.0],
            "cost_per_job": [300.0, 149.0],
            "optimal": [True, True],
            "jobs_won": [2624.36, 4614.26],
            "expected_share": [0.56004, 0.98469],
            "profit_eur": [-2_222_538.1, 276_855.8],
        }
    )
    lines = cli._comparison_summary(table).splitlines()
    assert lines[0].split() == list(cli.COMPARE_SUMMARY)
    assert lines[1].split() == [
        "in-house", "3", "4.0", "1,200,000.0", "300.0", "2,624.4", "56.0%", "-2,222,538.1"
    ]  # fmt: skip
    travel_only = table.drop(columns=["jobs_won", "expected_share", "profit_eur"])
    header = cli._comparison_summary(travel_only).splitlines()[0]
    assert header.split() == list(cli.COMPARE_SUMMARY[:5])


def test_compare_rejects_unknown_layout(tmp_path: Path, capsys):
    code = cli.main(["compare", "--layouts", "in-house,franchise", "--out", str(tmp_path)])
    assert code == 2
    assert "franchise" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_writes_table_and_shortlists(tmp_path: Path, customers_csv: Path, capsys):
    out = tmp_path / "cmp"
    args = [
        "compare",
        "--region",
        REGION,
        "--workshops",
        "2",
        "--customers",
        str(customers_csv),
        "--out",
        str(out),
    ]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "%] " in captured.err  # progress on stderr
    table = pd.read_csv(out / "comparison.csv")
    assert table["layout"].tolist() == list(LAYOUTS)
    for col in REQUIRED_COLUMNS:
        assert col in table.columns
    assert (table["sites"] == 2).all()
    for layout in LAYOUTS:
        short = pd.read_csv(out / f"shortlist_{layout}.csv")
        assert len(short) == 2 + (layout == "two-tier")  # the office is listed too
        terr = pd.read_csv(out / f"territories_{layout}.csv")
        assert len(terr) == 250
        sites = gpd.read_file(out / f"sites_{layout}.geojson")
        assert sorted(sites["site_id"].astype(str)) == sorted(short["site_id"].astype(str))
        layers = set(pyogrio.list_layers(out / f"{layout}.gpkg")[:, 0])
        assert layers == {"customers", "sites", "assignments", "catchments"}
        assert len(gpd.read_file(out / f"{layout}.gpkg", layer="customers")) == 250
    assert (out / "comparison.xlsx").is_file()
    assert "OpenStreetMap" in (out / "report.html").read_text(encoding="utf-8")

    # the same comparison through the library gives the same figures
    spec = ScenarioSpec(
        name=f"{REGION} comparison", region=REGION, workshops=2, customers=customers_csv
    )
    direct = compare(spec)
    pd.testing.assert_series_equal(
        table["annual_cost"], direct.table["annual_cost"], check_names=False
    )
    pd.testing.assert_series_equal(
        table["mean_travel_min"], direct.table["mean_travel_min"], check_names=False
    )

    # a second run refuses to overwrite, and names the flag
    mtime = (out / "comparison.csv").stat().st_mtime_ns
    assert cli.main(args) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "comparison.csv").stat().st_mtime_ns == mtime
    assert cli.main([*args, "--overwrite"]) == 0


@pytest.mark.slow
def test_run_scenario_file(tmp_path: Path, customers_csv: Path, capsys):
    spec = ScenarioSpec(
        name="cli scenario",
        region=REGION,
        layout="outsourced",
        workshops=2,
        customers=customers_csv,
        n_candidates=10,
    )
    toml = save_scenario(spec, tmp_path / "scenario.toml")
    assert load_scenario(toml) == spec
    out = tmp_path / "run"
    assert cli.main(["run", str(toml), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "cli scenario: outsourced, 2 sites" in text
    short = pd.read_csv(out / "shortlist.csv")
    assert set(short["role"]) == {"partner"}
    for name in ("territories.csv", "plan.xlsx", "plan.gpkg", "map.html", "report.html"):
        assert (out / name).is_file()


@pytest.mark.slow
def test_compare_page_runs_and_matches_library():
    from streamlit.testing.v1 import AppTest

    page = Path(__file__).resolve().parent.parent / "app_pages" / "compare.py"
    at = AppTest.from_file(str(page), default_timeout=300)
    at.query_params["region"] = REGION
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="workshops").set_value(2)  # shared with the Plan page
    (button,) = [b for b in at.button if b.label == "Compare"]
    button.click().run()
    ok(wait_for_job(at, "compare", timeout_s=300))  # solved in the background
    shown = at.session_state["compare"]["comparison"]
    # pressing Compare again with the same inputs keeps the same result, without an error
    (button,) = [b for b in at.button if b.label == "Compare"]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["compare"]["comparison"] is shown
    table = at.dataframe[0].value
    assert table["layout"].tolist() == list(LAYOUTS)
    direct = compare(
        ScenarioSpec(
            name="direct", region=REGION, workshops=2, service_standard_min={"default": 30}
        )
    )
    assert table["annual_cost"].tolist() == pytest.approx(direct.table["annual_cost"].tolist())
    assert shown.site_diff["site_id"].tolist() == direct.site_diff["site_id"].tolist()

    # K-curve and robustness sections, against the library
    from planner.engine import k_curve, prepare_scenario, robustness

    at.number_input(key="cmp_kmax").set_value(4)
    at.button(key="cmp_kcurve").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.button(key="cmp_robust").click().run()  # waits in line behind the K-curve (one user)
    assert not at.exception, [e.value for e in at.exception]
    ok(wait_for_job(at, "k_curve", timeout_s=300))
    ok(wait_for_job(at, "robust", timeout_s=300))
    spec = ScenarioSpec(name="direct", region=REGION, workshops=2)
    sinst = prepare_scenario(spec)
    curve = k_curve(sinst, 4)
    shown_curve = at.session_state["k_curve"][2]
    assert shown_curve["annual_cost"].tolist() == pytest.approx(curve["annual_cost"].tolist())
    assert shown_curve["mean_travel_min"].tolist() == pytest.approx(
        curve["mean_travel_min"].tolist()
    )
    rob = robustness(sinst, growth={"business": 0.3}, slowdown=1.3)
    assert at.session_state["robust"][3].stable_sites == rob.stable_sites
