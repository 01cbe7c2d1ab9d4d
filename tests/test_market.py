"""The market model (issue 25): decay, competitors, calibration and the market objectives
through the engine, checked against brute force on the bundled Liechtenstein roads."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _apptest import ok, wait_for_job
from streamlit.testing.v1 import AppTest

from planner.cli import _spec_from_args, build_parser, main
from planner.engine import (
    ScenarioSpec,
    compare,
    load_scenario,
    prepare_scenario,
    run,
    save_scenario,
)
from planner.engine.market import market_inputs
from planner.errors import InputError
from planner.inputs.sites import check_sites, osm_competitor_sites, osm_partner_sites
from planner.outputs import export, maps
from planner.register.calibration import calibration_plot, customer_history, fit_decay
from planner.results.market import (
    DemandModel,
    capture_tables,
    decay,
    share_by_area,
    utility_matrix,
)

SPEC = ScenarioSpec(
    region="liechtenstein",
    workshops=2,
    n_candidates=8,
    time_limit_s=10,
    objective="max_capture",
)


# ------------------------------------------------------------------------------------------
# the vocabulary


def test_decay_forms_and_outside_option() -> None:
    power = DemandModel(form="power", parameter=2.0)
    t = np.array([0.5, 1.0, 2.0, 10.0, np.inf])
    assert decay(t, power) == pytest.approx([1.0, 1.0, 0.25, 0.01, 0.0])
    expo = DemandModel(form="exponential", parameter=0.1)
    assert decay(np.array([1.0, 11.0]), expo) == pytest.approx([1.0, np.exp(-1.0)])
    # not coming at all is an ordinary shop outside_minutes away
    assert power.outside_utility == pytest.approx(30.0**-2)
    assert DemandModel().value == 1.5
    assert DemandModel(form="exponential").value == 0.05
    with pytest.raises(InputError, match="decay form"):
        DemandModel(form="gravity")
    with pytest.raises(InputError, match="> 0"):
        DemandModel(parameter=-1.0)


def test_capture_tables_match_the_formula_and_cannibalisation() -> None:
    rng = np.random.default_rng(3)
    cost_s = rng.uniform(60, 1800, size=(7, 4))
    cost_s[0, 2] = np.inf
    model = DemandModel(parameter=1.7)
    u = utility_matrix(cost_s, model)
    assert u[0, 2] == 0.0
    comp = rng.uniform(0.0, 0.01, 7)
    w = rng.uniform(1, 5, 7)
    points, sites = capture_tables(u, comp, model.outside_utility, w, np.array([0, 2]))
    o = comp + model.outside_utility
    uu = u[:, [0, 2]].sum(axis=1)
    assert points["won"].to_numpy() == pytest.approx(w * uu / (o + uu))
    total = points[["won", "lost_to_competitors", "lost_to_nobody"]].sum(axis=1)
    assert total.to_numpy() == pytest.approx(w)
    # a site's added jobs: the plan's jobs minus the plan's jobs without it
    alone = (w * u[:, 2] / (o + u[:, 2])).sum()
    assert sites.loc[0, "jobs_added"] == pytest.approx(points["won"].sum() - alone)
    assert (sites["cannibalised"] >= -1e-12).all()
    assert sites["jobs_won"].sum() == pytest.approx(points["won"].sum())


def test_capture_tables_stay_exact_when_utilities_span_many_orders_of_magnitude() -> None:
    """Utilities divided by a weak competitor's (as Haase and Mueller's instances are): the
    jobs the plan keeps without the very attractive site are the other site's, not 0
    (``total - utility`` would have lost them)."""
    u = np.array([[1e17, 1.0, 0.0], [1e-3, 2.0, 5.0]])
    w = np.array([3.0, 2.0])
    points, sites = capture_tables(u, 0.0, 1.0, w, np.array([0, 1]))
    keep = float(np.sum(w * u[:, 1] / (1.0 + u[:, 1])))
    assert keep > 2.8
    assert sites.loc[0, "jobs_added"] == pytest.approx(points["won"].sum() - keep, rel=1e-12)


def test_demand_model_round_trips_through_the_scenario(tmp_path: Path) -> None:
    model = DemandModel(
        form="exponential", parameter=0.08, source="calibrated", interval=(0.06, 0.1)
    )
    spec = SPEC.replace(objective="target_share", workshops=3, target_share=0.3).replace(
        demand_model=model
    )
    path = save_scenario(spec, tmp_path / "s.toml")
    text = path.read_text(encoding="utf-8")
    assert "[demand_model]" in text
    assert 'objective = "target_share"' in text
    assert load_scenario(path) == spec
    assert "objective" not in ScenarioSpec().to_dict()
    with pytest.raises(InputError, match="target_share"):
        ScenarioSpec(objective="target_share")
    with pytest.raises(InputError, match="capacitated"):
        ScenarioSpec(objective="max_capture", capacitated=True)
    with pytest.raises(InputError, match="unknown objective"):
        ScenarioSpec(objective="most_money")
    args = build_parser().parse_args(
        ["run", "--out", "x", "--objective", "max_capture", "--decay", "exponential"]
    )
    spec = _spec_from_args(args, scenario=None)
    assert spec.objective == "max_capture"
    assert spec.demand_model.form == "exponential"
    assert spec.demand_model.value == 0.05
    assert spec.demand_model.source == "default"
    args = build_parser().parse_args(["compare", "--out", "x", "--decay-parameter", "2"])
    assert _spec_from_args(args, scenario=None).demand_model.source == "typed"


# ------------------------------------------------------------------------------------------
# competitors


@pytest.mark.slow
@pytest.mark.parametrize("region", ["malta", "liechtenstein", "andorra"])
def test_osm_competitors_are_the_repair_shops_that_are_not_partners(region: str) -> None:
    shops = osm_partner_sites(region)
    comp = osm_competitor_sites(region)
    assert len(comp) == len(shops) > 0
    assert set(comp["kind"]) == {"competitor"}
    assert (comp["attractiveness"] == 1.0).all()
    # a partner by id, and a partner mapped a few metres away, are not competitors
    partners = pd.DataFrame(
        {
            "site_id": [shops["site_id"].iloc[0], "my-partner"],
            "lat": [0.0, shops["lat"].iloc[-1] + 0.0002],
            "lon": [0.0, shops["lon"].iloc[-1]],
        }
    )
    fewer = osm_competitor_sites(region, partners=partners)
    assert len(fewer) == len(shops) - 2
    assert shops["site_id"].iloc[0] not in set(fewer["site_id"])
    assert shops["site_id"].iloc[-1] not in set(fewer["site_id"])


def test_site_file_competitor_rows_and_attractiveness() -> None:
    table = check_sites(
        pd.DataFrame(
            {
                "id": ["W1", "K1", "K2", "K3"],
                "lat": [47.14, 47.15, 47.16, 47.17],
                "lon": [9.52, 9.52, 9.53, 9.54],
                "kind": ["workshop", "competitor", "Wettbewerber", "competitor"],
                "attractiveness": ["", "2.5", "", "0"],
            }
        )
    )
    frame = table.frame
    assert list(frame["kind"]) == ["workshop", "competitor", "competitor", "competitor"]
    assert frame.loc[1, "attractiveness"] == 2.5
    assert np.isnan(frame.loc[2, "attractiveness"])
    (issue,) = [i for i in table.report.issues if i.row == 4]
    assert issue.column == "attractiveness"
    assert "positive" in issue.fix
    assert not bool(frame.loc[3, "valid"])


@pytest.mark.slow
def test_competitors_on_the_map() -> None:
    comp = osm_competitor_sites("liechtenstein")
    result = _result()
    m = maps.result_map(
        result, competitors=comp, share_areas=share_by_area(result.market.customers)
    )
    html = maps.map_html(m)
    assert "Competitors" in html
    assert "Share by area" in html
    assert f"competitor ({len(comp)})" in html


@pytest.mark.slow
def test_exports_and_report_carry_the_market_figures(tmp_path: Path) -> None:
    result = _result()
    files = export.write_layout_bundle(result, tmp_path / "out")
    sheets = pd.read_excel(files["xlsx"], sheet_name=None)
    assert {"market", "market sites", "market areas"} <= set(sheets)
    figures = dict(zip(sheets["market"]["figure"], sheets["market"]["value"], strict=True))
    assert float(figures["expected jobs won a year"]) == pytest.approx(
        result.market.kpis["jobs_won"], rel=1e-4
    )
    assert "power decay, lambda = 1.5" in figures["demand model"]
    areas = sheets["market areas"]
    assert areas["won"].sum() == pytest.approx(result.market.kpis["jobs_won"], rel=1e-6)
    report = files["report"].read_text(encoding="utf-8")
    assert "Customers won (market model)" in report
    assert "lambda = 1.5" in report
    assert "Competitors" in files["map"].read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------
# calibration


def _history(seed: int, *, form: str, theta: float, n: int = 1500, k: int = 4):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    model = DemandModel(form=form, parameter=theta)
    t = rng.uniform(2, 45, n)
    comp = rng.uniform(2, 60, (n, k)) if k else None
    own = 1.3 * decay(t, model)
    rest = (decay(comp, model).sum(axis=1) if k else 0.0) + decay(np.array([25.0]), model)[0]
    jobs = rng.poisson(3.0 * 2.0 * own / (own + rest))
    return jobs, t, comp


def test_calibration_recovers_the_decay_within_its_interval() -> None:
    inside = 0
    for seed in range(100):
        jobs, t, comp = _history(seed, form="power", theta=1.8)
        fit = fit_decay(jobs, 3.0, t, competitor_min=comp)
        lo, hi = fit.model.interval
        inside += lo <= 1.8 <= hi
    assert 88 <= inside <= 100  # a 95 % interval: binomial(100, 0.95) is >= 89 in 98 % of runs
    assert fit.attractiveness_fitted
    assert fit.estimates["own_attractiveness"] == pytest.approx(1.3, rel=0.35)
    assert fit.estimates["potential_jobs_per_year"] == pytest.approx(2.0, rel=0.2)
    assert fit.model.outside_minutes == pytest.approx(25.0, rel=0.5)


def test_calibration_exponential_without_competitors() -> None:
    inside = 0
    for seed in range(30):
        jobs, t, _ = _history(seed, form="exponential", theta=0.06, k=0)
        fit = fit_decay(jobs, 3.0, t, form="exponential")
        lo, hi = fit.model.interval
        inside += lo <= 0.06 <= hi
        assert not fit.attractiveness_fitted
        assert fit.model.own_attractiveness == 1.0
    assert inside >= 24
    png = calibration_plot(fit)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(InputError, match="needs customers with jobs"):
        fit_decay(np.zeros(5), 1.0, np.ones(5))


def test_customer_history_counts_zeros_and_the_serving_site() -> None:
    customers = pd.DataFrame({"customer_id": ["a", "b", "c"]})
    jobs = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b"],
            "date": pd.to_datetime(["2024-01-05", "2024-06-01", "2025-12-01", "2025-03-03"]),
            "served_by": ["W1", "W2", "W1", None],
        }
    )
    h = customer_history(jobs, customers)
    assert list(h["jobs"]) == [3, 1, 0]
    assert h["years"].iloc[0] == pytest.approx(2.0, abs=0.01)
    assert list(h["served_by"]) == ["W1", None, None]


# ------------------------------------------------------------------------------------------
# the engine


@pytest.fixture(scope="module")
def sinst():  # type: ignore[no-untyped-def]
    return prepare_scenario(SPEC, layouts=["in-house", "outsourced", "two-tier"])


_CACHE: dict[str, object] = {}


def _result():  # type: ignore[no-untyped-def]
    if "r" not in _CACHE:
        _CACHE["r"] = run(SPEC)
    return _CACHE["r"]


def _brute(u: np.ndarray, o: np.ndarray, w: np.ndarray, sizes, score=None):  # type: ignore[no-untyped-def]
    best = (-np.inf, ())
    for k in sizes:
        for subset in itertools.combinations(range(u.shape[1]), k):
            uu = u[:, list(subset)].sum(axis=1)
            won = float(np.sum(w * uu / (o + uu)))
            value = won if score is None else score(won, subset)
            best = max(best, (value, subset))
    return best


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["in-house", "two-tier"])
def test_max_capture_through_the_engine_matches_brute_force(sinst, layout: str) -> None:  # type: ignore[no-untyped-def]
    assert len(sinst.competitors) == 5  # Liechtenstein's car repair shops
    lr = run(SPEC.replace(layout=layout), sinst=sinst)
    cols = sinst.columns["own"]
    inputs = market_inputs(sinst, cols)
    w = sinst.instance.demand_weight * lr.parameters.jobs_per_weight
    value, subset = _brute(inputs.utility, inputs.outside, w, [2])
    # the model's proven bound never cuts off the optimum (proving it may take longer than
    # the time limit on a busy machine: then its gap says so)
    sol = lr.solution
    assert sol.upper_bound is not None
    assert sol.upper_bound >= value * (1 - 1e-9)
    assert sol.optimal or sol.gap > 0
    assert lr.market is not None
    assert lr.market.kpis["jobs_won"] == pytest.approx(value, rel=1e-6)
    assert lr.kpis["market_jobs_won"] == pytest.approx(value, rel=1e-6)
    own = set(lr.sites.loc[lr.sites["role"] != "office", "site_id"])
    assert own == set(sinst.instance.candidates["site_id"].to_numpy()[cols[list(subset)]])
    sites = lr.market.sites
    assert sites["jobs_won"].sum() == pytest.approx(value, rel=1e-6)
    assert (sites["cannibalised"] >= -1e-9).all()
    kp = lr.market.kpis
    assert kp["jobs_won"] + kp["jobs_lost_to_competitors"] + kp["jobs_lost_to_nobody"] == (
        pytest.approx(kp["jobs_total"])
    )
    if layout == "two-tier":
        assert lr.office_id is not None
    assert "decay" in lr.provenance["demand_model"]


@pytest.mark.slow
def test_target_share_and_profit_through_the_engine(sinst) -> None:  # type: ignore[no-untyped-def]
    cols = sinst.columns["own"]
    inputs = market_inputs(sinst, cols)
    w = sinst.instance.demand_weight
    total = float(w.sum())
    # every allowed site together reaches some share; ask for a bit less than 2 sites' best
    best2, _ = _brute(inputs.utility, inputs.outside, w, [2])
    target = 0.99 * best2 / total
    lr = run(SPEC.replace(objective="target_share", target_share=target), sinst=sinst)
    best1, _ = _brute(inputs.utility, inputs.outside, w, [1])
    assert lr.kpis["sites"] == (1 if best1 >= target * total else 2)
    assert lr.market.kpis["expected_share"] >= target - 1e-9
    spec = SPEC.replace(objective="max_profit", workshops=None)
    lr = run(spec, sinst=sinst)
    params = lr.parameters
    fixed = params.workshop_fixed_cost_eur(layout="in-house")
    value, subset = _brute(
        inputs.utility,
        inputs.outside,
        w,
        range(1, len(cols) + 1),
        score=lambda won, s: params.margin_per_job_eur * won - fixed * len(s),
    )
    assert lr.market.kpis["profit_eur"] == pytest.approx(value, rel=1e-6)
    assert lr.kpis["sites"] == len(subset)


@pytest.mark.slow
def test_existing_sites_stay_open_and_outsourced_partners_compete_unless_contracted(sinst) -> None:  # type: ignore[no-untyped-def]
    cands = sinst.instance.candidates
    cols = sinst.columns["own"]
    status = cands["status"].astype(object).copy()
    status.iloc[cols[0]] = "existing"
    forced = sinst.__class__(
        spec=sinst.spec,
        instance=sinst.instance.__class__(
            **{**sinst.instance.__dict__, "candidates": cands.assign(status=status)}
        ),
        columns=sinst.columns,
        office_link_s=sinst.office_link_s,
        competitors=sinst.competitors,
        competitor_cost_s=sinst.competitor_cost_s,
    )
    lr = run(SPEC, sinst=forced)
    assert cands["site_id"].iloc[cols[0]] in set(lr.sites["site_id"])
    table = compare(SPEC, sinst=sinst).table
    assert {"jobs_won", "expected_share", "profit_eur"} <= set(table.columns)
    assert list(table["layout"]) == ["in-house", "outsourced", "two-tier"]
    assert (table["jobs_won"] > 0).all()
    out = run(SPEC.replace(layout="outsourced"), sinst=sinst)
    assert table.loc[1, "jobs_won"] == pytest.approx(out.market.kpis["jobs_won"])
    # Liechtenstein's OSM repair shops are the partner candidates: those not contracted are
    # the competitors (tests/test_market_partners.py checks the shares by hand)
    partners = sinst.columns["partner"]
    assert out.market.kpis["competitors"] == partners.size - len(out.market.sites)
    assert set(out.market.competitors["kind"]) == {"partner"}
    assert not any("partner candidates" in w for w in out.warnings)


@pytest.mark.slow
def test_market_plans_load_each_site_with_the_jobs_it_wins(sinst) -> None:  # type: ignore[no-untyped-def]
    """Capacity under the market model: a site serves the jobs it is expected to win (the
    rest of its catchment goes to competitors or nowhere), and the objectives that choose how
    many sites open are not told that candidates are missing."""
    lr = run(SPEC, sinst=sinst)
    assert lr.market is not None
    won = dict(zip(lr.market.sites["site_id"], lr.market.sites["jobs_won"], strict=True))
    loads = lr.loads.set_index("site_id")
    assert set(loads.index) == set(won)
    for site, jobs in won.items():
        assert loads.loc[site, "jobs"] == pytest.approx(jobs, rel=1e-12)
        assert loads.loc[site, "utilisation"] == pytest.approx(
            jobs / loads.loc[site, "capacity_jobs"], rel=1e-12
        )
    assert loads["jobs"].sum() < lr.market.kpis["jobs_total"]  # competitors take a share
    travel = run(SPEC.replace(objective="min_travel"), sinst=sinst)
    assert travel.loads["jobs"].sum() == pytest.approx(lr.market.kpis["jobs_total"], rel=1e-9)
    # one site is enough for a small share, and none is profitable at a margin of 1 EUR
    small = run(SPEC.replace(objective="target_share", target_share=0.01), sinst=sinst)
    assert small.kpis["sites"] == 1
    assert not any("usable candidate site" in w for w in small.warnings)
    poor = SPEC.replace(
        objective="max_profit", parameters=dataclasses.replace(lr.parameters, margin_per_job_eur=1)
    )
    lost = run(poor, sinst=sinst)
    assert lost.kpis["sites"] == 1
    assert lost.market.kpis["profit_eur"] < 0
    assert not any("usable candidate site" in w for w in lost.warnings)
    (said,) = [w for w in lost.warnings if "makes a profit" in w]
    assert f"loses {-lost.market.kpis['profit_eur']:,.0f} EUR a year" in said


@pytest.mark.slow
def test_market_objective_needs_competitor_times() -> None:
    plain = prepare_scenario(SPEC.replace(objective="min_travel"))
    assert plain.competitors is None
    with pytest.raises(InputError, match="competitors' travel times"):
        run(SPEC, sinst=plain)


@pytest.mark.slow
def _calibration_files(tmp_path: Path) -> None:
    """``sites.csv``, ``customers.csv`` and ``jobs.csv`` in ``tmp_path``: jobs drawn from the
    market model (power decay, lambda 1.6) on Liechtenstein's roads, each served by its
    customer's nearest of 3 sites."""
    sinst = prepare_scenario(SPEC)
    inst = sinst.instance
    cust = inst.customers
    cols = sinst.columns["own"][:3]
    cands = inst.candidates.iloc[cols]
    sites = pd.DataFrame(
        {
            "id": cands["site_id"].to_numpy(),
            "lat": cands["lat"].to_numpy(),
            "lon": cands["lon"].to_numpy(),
            "kind": "workshop",
            "status": "existing",
        }
    )
    sites.to_csv(tmp_path / "sites.csv", index=False)
    truth = DemandModel(parameter=1.6)
    d = inst.demand_of_customer
    ok = d >= 0
    t = inst.cost_s[:, cols][d[ok]] / 60.0
    served = np.argmin(t, axis=1)
    own = decay(t[np.arange(t.shape[0]), served], truth)
    comp = decay(sinst.competitor_cost_s[d[ok]] / 60.0, truth).sum(axis=1)
    rng = np.random.default_rng(1)
    mu = 2.0 * 4.0 * own / (own + comp + truth.outside_utility)
    n = rng.poisson(mu)
    ids = cust["customer_id"].astype(str).to_numpy()[ok]
    rows = []
    for cid, k, s in zip(ids, n, served, strict=True):
        for q in range(int(k)):
            day = pd.Timestamp("2022-01-01") + pd.Timedelta(days=int(rng.integers(0, 4 * 365)))
            rows.append((f"{cid}-{q}", cid, day.date().isoformat(), sites["id"].iloc[s]))
    pd.DataFrame(rows, columns=["job_id", "customer_id", "date", "served_by"]).to_csv(
        tmp_path / "jobs.csv", index=False
    )
    register = cust.drop(columns="geometry")[["customer_id", "lat", "lon", "weight"]]
    register.to_csv(tmp_path / "customers.csv", index=False)


def test_calibrate_cli_recovers_a_known_decay(tmp_path: Path) -> None:
    """Jobs drawn from the market model on the real roads; `planner calibrate` finds it."""
    _calibration_files(tmp_path)
    code = main(
        [
            "calibrate",
            str(tmp_path / "jobs.csv"),
            "--customers",
            str(tmp_path / "customers.csv"),
            "--sites",
            str(tmp_path / "sites.csv"),
            "--region",
            "liechtenstein",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    spec = load_scenario(tmp_path / "out" / "scenario.toml")
    assert spec.demand_model.source == "calibrated"
    assert spec.objective == "max_capture"
    lo, hi = spec.demand_model.interval
    assert lo <= 1.6 <= hi
    assert hi - lo < 1.5
    assert (tmp_path / "out" / "calibration.png").read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(tmp_path / "out" / "calibration.csv")
    assert "parameter" in set(summary["estimate"])
    # the same history kept in the register database: `planner calibrate --db` without a jobs
    # file reads it there and fits the same model
    db = str(tmp_path / "register.duckdb")
    args = ["--customers", str(tmp_path / "customers.csv"), "--jobs", str(tmp_path / "jobs.csv")]
    assert main(["register", "import", *args, "--db", db]) == 0
    site_args = ["--sites", str(tmp_path / "sites.csv"), "--region", "liechtenstein"]
    out_db = str(tmp_path / "out_db")
    assert main(["calibrate", *site_args, "--db", db, "--out", out_db]) == 0
    from_db = load_scenario(tmp_path / "out_db" / "scenario.toml").demand_model
    assert from_db.parameter == pytest.approx(spec.demand_model.parameter, rel=1e-9)
    assert from_db.interval == pytest.approx(spec.demand_model.interval, rel=1e-9)


def test_calibrate_warns_about_served_by_sites_not_in_the_site_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A history that names a site the site file does not hold (closed, or a typo): the
    customers it served are measured to their nearest own site, and the user is told which
    ids and how many customers."""
    _calibration_files(tmp_path)
    jobs = pd.read_csv(tmp_path / "jobs.csv", dtype=str)
    first = jobs["customer_id"].drop_duplicates().iloc[:3]
    jobs.loc[jobs["customer_id"].isin(first), "served_by"] = "W-closed"
    jobs.to_csv(tmp_path / "jobs.csv", index=False)
    args = [str(tmp_path / "jobs.csv"), "--customers", str(tmp_path / "customers.csv")]
    args += ["--sites", str(tmp_path / "sites.csv"), "--region", "liechtenstein"]
    with caplog.at_level("WARNING", logger="planner.engine.market"):
        assert main(["calibrate", *args, "--out", str(tmp_path / "out")]) == 0
    said = [r.getMessage() for r in caplog.records if "served by sites" in r.getMessage()]
    assert len(said) == 1
    assert said[0].startswith("3 customers were served by sites that are not ours")
    assert "'W-closed'" in said[0]
    assert load_scenario(tmp_path / "out" / "scenario.toml").demand_model.source == "calibrated"


# ------------------------------------------------------------------------------------------
# the app


@pytest.mark.slow
def test_plan_page_maximise_customers_won(offline_app: None) -> None:
    """The Plan page's "maximise customers won" with a typed decay solves the same question
    as the library, and the Results page shows jobs won per site with the competitors."""
    app = Path(__file__).resolve().parents[1] / "app.py"
    at = AppTest.from_file(str(app), default_timeout=600)
    at.query_params["region"] = "liechtenstein"
    at.switch_page("app_pages/plan.py")
    ok(at.run())
    at.selectbox(key="objective").set_value("max_capture")
    ok(at.run())
    assert at.radio(key="decay_choice").options == ["Literature default", "Type it in"]
    at.radio(key="decay_choice").set_value("typed")
    ok(at.run())
    at.number_input(key="decay_parameter").set_value(2.0)
    at.number_input(key="workshops").set_value(2)
    at.number_input(key="n_candidates").set_value(8)
    at.number_input(key="time_limit_s").set_value(10.0)
    ok(at.run())
    assert any("lambda = 2" in c.value for c in at.caption)
    (button,) = [b for b in at.button if b.label == "Run"]
    button.click()
    wait_for_job(ok(at.run()), "plan")
    entry = at.session_state["plan"]
    spec = entry["spec"]
    assert spec.objective == "max_capture"
    assert spec.demand_model.source == "typed"
    assert spec.demand_model.value == 2.0
    shown = entry["result"]
    assert shown.market is not None
    expected = run(spec)
    assert set(shown.sites["site_id"]) == set(expected.sites["site_id"])
    assert shown.market.kpis["jobs_won"] == pytest.approx(expected.market.kpis["jobs_won"])
    at.switch_page("app_pages/results.py")
    ok(at.run())
    assert [m.label for m in at.metric][4:6] == ["Jobs won a year", "Expected share"]
    assert any("competitors" in c.value for c in at.caption)
