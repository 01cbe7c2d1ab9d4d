"""Capacities in the app (issue 26, item 3): the Plan toggle, utilisation per site and the
customers sent past a full site on Results, the layouts with capacities on Compare.

Driven headlessly with ``streamlit.testing.v1.AppTest`` on the bundled Liechtenstein extract;
what the pages show is compared with :mod:`planner.results.capacity` on the same result.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _apptest import TIMEOUT_S, ok, wait_for_job
from streamlit.testing.v1 import AppTest

from planner.engine import ScenarioSpec
from planner.results.capacity import (
    OVER_CAPACITY_COLOUR,
    UNDER_CAPACITY_COLOUR,
    not_at_nearest,
    utilisation_table,
)
from planner.results.costs import CostParameters

APP = Path(__file__).resolve().parent.parent / "app.py"
REGION = "liechtenstein"

pytestmark = pytest.mark.usefixtures("offline_app")


def _charts(at: AppTest) -> list[dict]:
    """The vega-lite specs of the page's built-in charts, with their data."""
    out = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        out.append(spec)
    return out


def _toggle(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    (toggle,) = [t for t in at.toggle if t.label == label]
    return toggle


@pytest.mark.slow
def test_plan_with_capacity_then_results_show_loads_and_displaced_customers() -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = REGION
    at.switch_page("app_pages/plan.py")
    ok(at.run())
    at.session_state["workshops"] = 3
    at.session_state["n_candidates"] = 10
    at.session_state["time_limit_s"] = 10.0
    at.session_state["cost_technicians_per_workshop"] = 1.5  # 1,500 jobs: capacities bind
    ok(at.run())
    toggle = _toggle(at, "Respect workshop capacity")
    assert not toggle.value
    toggle.set_value(True)
    ok(at.run())
    (run,) = [b for b in at.button if b.label == "Run"]
    run.click()
    ok(at.run())
    wait_for_job(at, "plan")
    entry = at.session_state["plan"]
    spec, result = entry["spec"], entry["result"]
    assert spec.capacitated
    loads = result.loads
    assert (loads["jobs"] <= loads["capacity_jobs"] + 1e-6).all()
    assert (loads["capacity_jobs"] == 1_500).all()

    at.switch_page("app_pages/results.py")
    ok(at.run())
    expected = utilisation_table(result)
    (chart,) = [c for c in _charts(at) if "utilisation_pct" in json.dumps(c)]
    assert chart["mark"]["type"] == "bar"
    assert chart["encoding"]["x"]["field"] == "site"
    assert chart["encoding"]["color"]["field"] == "colour"  # red above 100 %, per site
    tables = [df.value for df in at.dataframe]
    (shown,) = [t for t in tables if "utilisation" in t and "over_capacity" in t]
    assert shown["site_id"].tolist() == expected["site_id"].tolist()
    np.testing.assert_allclose(shown["utilisation"], expected["utilisation"])
    displaced = not_at_nearest(result)
    assert len(displaced) == result.kpis["customers_not_at_nearest"] > 0
    (listed,) = [t for t in tables if "extra_min" in t]
    assert listed["customer_id"].tolist() == displaced["customer_id"].tolist()
    assert (listed["extra_min"] > 0).all()
    assert any(
        f"{len(displaced):,} customers" in m.value and "because it is full" in m.value
        for m in at.markdown
    )

    at.switch_page("app_pages/compare.py")
    ok(at.run())
    assert _toggle(at, "Respect workshop capacity").value  # the Plan page's choice


def test_utilisation_colours_mark_sites_above_capacity(tmp_path: Path) -> None:
    """Red above 100 %, blue at or below, per site (the chart's colour column)."""
    import dataclasses

    from test_scenarios import make_sinst

    from planner.engine import solve_layout

    sinst = make_sinst(seed=1)
    total = float(sinst.instance.demand_weight.sum())
    params = CostParameters(technicians_per_workshop=1.0, jobs_per_technician=total / 3)
    lr = solve_layout(sinst, "in-house", workshops=2, parameters=params)
    table = utilisation_table(lr)
    assert len(table) == 2
    assert table["utilisation"].sum() == pytest.approx(3.0)  # all demand over two sites
    for _, row in table.iterrows():
        over = row["utilisation"] > 1.0
        assert row["over_capacity"] == over
        assert row["colour"] == (OVER_CAPACITY_COLOUR if over else UNDER_CAPACITY_COLOUR)
    assert table["over_capacity"].any()
    # uncapacitated: everyone at the nearest open site, nobody listed
    assert len(not_at_nearest(lr)) == 0
    assert lr.kpis["customers_not_at_nearest"] == 0
    # capacitated: customers past a full site are listed with their extra minutes
    capped = dataclasses.replace(sinst, spec=sinst.spec.replace(capacitated=True))
    roomy = CostParameters(technicians_per_workshop=1.0, jobs_per_technician=total * 0.55)
    lr = solve_layout(capped, "in-house", workshops=2, parameters=roomy)
    table = utilisation_table(lr)
    assert not table["over_capacity"].any()
    displaced = not_at_nearest(lr)
    cust = lr.result.customers.set_index("customer_id")
    for _, row in displaced.iterrows():
        c = cust.loc[row["customer_id"]]
        assert row["site_id"] == c["site_id"] != row["nearest_site_id"]
        assert row["extra_min"] == pytest.approx(c["travel_min"] - c["nearest_travel_min"])
    # the nearest open site really is the nearest: brute force over the open sites
    inst = capped.instance
    open_cols = np.asarray(lr.solution.open)
    ids = inst.candidates["site_id"].astype(str).to_numpy()
    for i, row in enumerate(lr.result.customers.itertuples()):
        d = inst.demand_of_customer[i]
        best = open_cols[np.argmin(inst.cost_s[d, open_cols])]
        assert row.nearest_site_id == ids[best]
    assert lr.kpis["customers_not_at_nearest"] == len(displaced)
    # the report and the workbook say so too
    from planner.outputs import export
    from planner.outputs.report import report_html

    html = report_html(lr)
    assert len(displaced)  # 10 % room: someone goes past a full site
    assert f"{len(displaced):,} customers are not served by their nearest site" in html
    sheets = pd.read_excel(export.write_xlsx(lr, tmp_path / "plan.xlsx"), sheet_name=None)
    (sheet,) = [v for k, v in sheets.items() if k.endswith("not nearest")]
    assert sheet["customer_id"].astype(str).tolist() == displaced["customer_id"].tolist()
    assert "no site above 100 %" in html


def test_scenario_sizes_round_trip_and_are_checked(tmp_path: Path) -> None:
    from planner.engine import load_scenario, save_scenario
    from planner.engine.sizes import allowed_sizes
    from planner.engine.spec import WorkshopSize
    from planner.errors import InputError

    sizes = (
        WorkshopSize("small", 150_000, 2_000, technicians=2),
        WorkshopSize("large", 320_000, 6_000, technicians=6),
    )
    spec = ScenarioSpec(sizes=sizes)
    path = save_scenario(spec, tmp_path / "s.toml")
    assert "large" in path.read_text(encoding="utf-8")
    assert load_scenario(path).sizes == sizes
    assert ScenarioSpec(sizes=[s.to_dict() for s in sizes]).sizes == sizes
    with pytest.raises(InputError, match="capacity_jobs must be > 0"):
        WorkshopSize("none", 1.0, 0.0)
    with pytest.raises(InputError, match="unique"):
        ScenarioSpec(sizes=[sizes[0], sizes[0]])
    with pytest.raises(InputError, match="missing"):
        ScenarioSpec(sizes=[{"name": "x", "fixed_cost_eur": 1.0}])
    sites = pd.DataFrame({"site_id": ["a", "b", "c"], "sizes": ["small", None, "small, large"]})
    allowed = allowed_sizes(sites, sizes)
    assert allowed.tolist() == [[True, False], [True, True], [True, True]]
    with pytest.raises(InputError, match=r"site a: unknown size\(s\) \[.medium.\]"):
        allowed_sizes(sites.assign(sizes=["medium", None, None]), sizes)


@pytest.mark.slow
def test_plan_choosing_workshop_sizes_gives_the_library_answer() -> None:
    """The Plan page's "Choose workshop sizes" plans with the Costs page's three sizes; the
    answer is the library's for the same spec, and every site says its size."""
    from planner.engine import run
    from planner.engine.sizes import default_sizes

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = REGION
    at.switch_page("app_pages/plan.py")
    ok(at.run())
    at.session_state["workshops"] = 2
    at.session_state["n_candidates"] = 8
    at.session_state["time_limit_s"] = 20.0
    ok(at.run())
    toggle = _toggle(at, "Choose workshop sizes")
    toggle.set_value(True)
    ok(at.run())
    # sizes trade fixed costs against customer time: the page asks for its value
    assert any("value of customer time" in w.value for w in at.warning)
    at.session_state["cost_customer_time_eur_per_hour"] = 20.0
    ok(at.run())
    assert not any("value of customer time" in w.value for w in at.warning)
    (run_button,) = [b for b in at.button if b.label == "Run"]
    run_button.click()
    ok(at.run())
    wait_for_job(at, "plan")
    entry = at.session_state["plan"]
    spec, result = entry["spec"], entry["result"]
    assert spec.sizes == default_sizes(spec.parameters)
    assert spec.parameters.customer_time_eur_per_hour == 20.0
    sites = result.result.sites
    assert set(sites["size"]) <= {size.name for size in spec.sizes}
    by_name = {size.name: size for size in spec.sizes}
    for _, site in sites.iterrows():
        assert site["capacity_jobs"] == by_name[site["size"]].capacity_jobs
    assert (result.loads["jobs"] <= result.loads["capacity_jobs"] + 1e-6).all()
    library = run(spec)
    assert sorted(library.result.sites["site_id"]) == sorted(sites["site_id"])
    assert library.result.kpis["annual_cost_eur"] == pytest.approx(
        result.result.kpis["annual_cost_eur"]
    )
