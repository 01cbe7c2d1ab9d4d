"""The Streamlit app, driven headlessly with ``streamlit.testing.v1.AppTest``.

AppTest does not render custom components (the st_folium map), so the map itself is checked
in tests/test_browser.py; here each page runs with session state pre-filled or filled through
the pages' own widgets, and what the pages show and offer for download is compared with direct
library calls on the same spec and files.

Widget and state keys a test uses (see app_pages/_shared.py): ``region`` (Data page select),
``customers_file`` / ``existing_file`` / ``candidates_file`` / ``partners_file`` (uploads),
``workshops``, ``layout``, ``sla_min``, ``generate_candidates`` (Plan), ``cost_<parameter>``
(Costs), the "Run" (Plan) and "Compare" (Compare) buttons; results in
``st.session_state["plan"]["result"]`` and ``st.session_state["compare"]["comparison"]``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from _apptest import TIMEOUT_S
from _apptest import ok as _ok
from _apptest import wait_for_job as _wait_for_job
from streamlit.testing.v1 import AppTest

from planner.engine import LAYOUTS, ScenarioSpec, compare, run
from planner.engine.workspace import InputFile
from planner.hosting import solves
from planner.inputs import customers as demand
from planner.outputs.export import bad_rows_csv
from planner.outputs.safe import to_csv_bytes
from planner.results.costs import CostParameters
from planner.roads import network

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
PAGES = REPO / "app_pages"
REGION = "liechtenstein"


pytestmark = pytest.mark.usefixtures("offline_app")


def _open(page: str | None = None, *, region: str = REGION) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = region
    if page is not None:  # start on a page without running the Data page first
        at.switch_page(f"app_pages/{page}.py")
    return _ok(at.run())


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py")
    return _ok(at.run())


def _button(at: AppTest, label: str):
    (button,) = [b for b in at.button if b.label == label]
    return button


def _downloads(at: AppTest) -> dict[str, object]:
    return {d.label: d for d in at.get("download_button")}


def _file_id(data: bytes, mimetype: str, filename: str) -> str:
    # Streamlit names a download by a hash of its bytes, type and file name: comparing the
    # URL with the hash of the expected bytes checks the exact content of the download.
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    return _calculate_file_id(data, mimetype, filename)


def _assert_download(at: AppTest, label: str, data: bytes, mime: str, name: str) -> None:
    url = _downloads(at)[label].proto.url
    assert url.endswith(_file_id(data, mime, name) + Path(name).suffix), label


# ------------------------------------------------------------------------------------------
# fast: no road network needed


def test_static_url_follows_base_url_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    from app_pages import _shared

    for base, expected in (
        ("", "/app/static/vendor"),
        ("/planner/", "/planner/app/static/vendor"),
        ("a/b", "/a/b/app/static/vendor"),
    ):
        monkeypatch.setattr(
            st, "get_option", lambda name, base=base: base if name == "server.baseUrlPath" else None
        )
        assert _shared.static_url() == expected


def test_shared_cache_builds_each_key_once_under_concurrency() -> None:
    from app_pages._shared import _Memo

    memo = _Memo(4)
    calls: list[str] = []

    def build(key: str) -> str:
        calls.append(key)
        time.sleep(0.2)  # ten sessions arrive while the first one is still building
        return key.upper()

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda k=k: results.append(memo.get(k, lambda: build(k))))
        for k in ["a"] * 10 + ["b"] * 5
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == ["a", "b"]
    assert sorted(results) == ["A"] * 10 + ["B"] * 5
    for k in "cdef":  # least recently used entries are evicted
        memo.get(k, lambda k=k: k)
    assert memo.get("a", lambda: "rebuilt") == "rebuilt"


def test_costs_page_offers_every_parameter_and_feeds_the_spec() -> None:
    at = _open("costs")
    defaults = CostParameters()
    for f in dataclasses.fields(CostParameters):
        assert at.number_input(key=f"cost_{f.name}").value == pytest.approx(
            getattr(defaults, f.name)
        ), f.name
    at.number_input(key="cost_partner_fee_per_job_eur").set_value(99.0)
    at.number_input(key="cost_office_rent_eur").set_value(12_345.0)
    _ok(at.run())
    # switch pages and come back: nothing entered is lost
    _go(at, "plan")
    at.number_input(key="workshops").set_value(4)
    _ok(at.run())
    _go(at, "export")
    _go(at, "costs")
    assert at.number_input(key="cost_partner_fee_per_job_eur").value == 99.0
    assert at.number_input(key="cost_office_rent_eur").value == 12_345.0
    _go(at, "plan")
    assert at.number_input(key="workshops").value == 4
    _go(at, "costs")
    _button(at, "Reset all to the defaults").click()
    _ok(at.run())
    assert at.number_input(key="cost_partner_fee_per_job_eur").value == 140.0


def test_pages_without_results_say_what_to_do() -> None:
    at = _open("results")
    assert "press **Run** on **Plan**" in at.info[0].value
    _go(at, "export")
    assert "Press **Run** on the Plan page first." in at.info[0].value
    # the scenario bundle is always downloadable
    assert "Scenario bundle (.zip: scenario.toml + your files)" in _downloads(at)
    _go(at, "compare")
    assert "Press **Compare**" in at.info[0].value
    for page in ("results", "export", "compare", "plan", "costs"):
        _go(at, page)
        assert "OpenStreetMap contributors" in at.main.caption[-1].value, page


def test_navigation_lists_the_workflow_and_optional_pages() -> None:
    source = APP.read_text(encoding="utf-8")
    for name in ("data.py", "plan.py", "results.py", "compare.py", "costs.py", "export.py"):
        assert (PAGES / name).is_file()
        assert f'"{name}"' in source
    assert '"register.py"' in source  # added to the navigation when the file exists
    assert "is_file()" in source


# ------------------------------------------------------------------------------------------
# slow: real road network


def _customer_csv() -> str:
    demo = demand.load_demo_customers(REGION).head(300)
    rows = demo[["customer_id", "lat", "lon", "weight", "segment"]].rename(
        columns={"customer_id": "id"}
    )
    return rows.to_csv(index=False) + "BAD1,not-a-latitude,9.52,1,private\n"


EXISTING_CSV = "name,lat,lon\nVaduz workshop,47.1410,9.5215\nSchaan workshop,47.1650,9.5100\n"


@pytest.mark.slow
def test_keep_two_existing_add_three_on_uploaded_customers(tmp_path: Path) -> None:
    customers_csv = _customer_csv()
    at = _open()
    assert at.selectbox(key="region").value == REGION
    at.file_uploader(key="customers_file").upload(
        "my_customers.csv", customers_csv.encode(), "text/csv"
    )
    at.file_uploader(key="existing_file").upload("existing.csv", EXISTING_CSV.encode(), "text/csv")
    _ok(at.run())
    # the bad row is reported by type, downloadable, and the 300 good rows are shown
    assert any("300 rows of **my_customers.csv** can be used" in w.value for w in at.warning)
    upload = InputFile("my_customers.csv", customers_csv.encode())
    report = demand.read_customers(
        upload.open(), region=REGION, graph=network.load_region(REGION)
    ).report
    bad_rows = bad_rows_csv(upload, report)
    assert b"BAD1" in bad_rows
    _assert_download(
        at,
        "Download the rows with problems (CSV)",
        bad_rows,
        "text/csv",
        "problems-my_customers.csv",
    )
    assert any("2 rows of **existing.csv**" in i.value for i in at.info)
    assert any("300 customers from my_customers.csv in Liechtenstein" in i.value for i in at.info)

    _go(at, "plan")
    at.number_input(key="workshops").set_value(5)
    _ok(at.run())
    _button(at, "Run").click()
    _wait_for_job(_ok(at.run()), "plan")
    entry = at.session_state["plan"]
    shown = entry["result"]

    # the same question through the library, on the same files
    (tmp_path / "my_customers.csv").write_text(customers_csv, encoding="utf-8")
    (tmp_path / "existing.csv").write_text(
        "name,lat,lon,kind,status\n"
        "Vaduz workshop,47.1410,9.5215,workshop,existing\n"
        "Schaan workshop,47.1650,9.5100,workshop,existing\n",
        encoding="utf-8",
    )
    spec = entry["spec"].replace(
        customers=tmp_path / "my_customers.csv", sites=tmp_path / "existing.csv"
    )
    expected = run(spec)
    assert shown.shortlist()["site_id"].tolist() == expected.shortlist()["site_id"].tolist()
    assert shown.solution.objective == pytest.approx(expected.solution.objective, rel=1e-9)
    assert len(shown.warnings) == len(expected.warnings) >= 1
    assert "my_customers.csv" in shown.warnings[0]
    # both existing workshops kept, three new ones added
    status = shown.sites["status"].astype(str).tolist()
    assert status.count("existing") == 2
    assert len(status) == 5
    assert set(shown.sites.loc[shown.sites["status"] == "existing", "name"]) == {
        "Vaduz workshop",
        "Schaan workshop",
    }
    assert "300 customers, 62 candidate sites (2 existing)" in at.success[0].value

    # Results: shortlist with existing/new, exact downloads, plain KPIs
    _go(at, "results")
    table = at.dataframe[0].value
    assert table["site_id"].tolist() == expected.shortlist()["site_id"].tolist()
    assert sorted(table["existing_or_new"]) == ["existing"] * 2 + ["new"] * 3
    _assert_download(
        at,
        "Download shortlist (CSV)",
        to_csv_bytes(expected.shortlist()),
        "text/csv",
        "shortlist.csv",
    )
    plain = at.dataframe[1].value.set_index("measure")["value"]
    assert plain["Average drive to the workshop"] == f"{expected.kpis['mean_travel_min']:,.1f} min"
    assert plain["Optimizer"] in ("proven optimal",) or "within" in plain["Optimizer"]
    assignments = at.dataframe[2].value
    assert len(assignments) == 300
    assert set(assignments["site_id"]) <= set(table["site_id"])

    # Compare the three layouts on the same upload; in-house equals the plan
    _go(at, "compare")
    _button(at, "Compare").click()
    _wait_for_job(_ok(at.run()), "compare")
    comparison = at.session_state["compare"]["comparison"]
    assert list(comparison.results) == list(LAYOUTS)
    inhouse = comparison.results["in-house"]
    assert inhouse.sites["site_id"].tolist() == shown.sites["site_id"].tolist()
    assert inhouse.solution.objective == pytest.approx(shown.solution.objective, rel=1e-9)
    direct = compare(spec)
    assert comparison.table["annual_cost"].tolist() == pytest.approx(
        direct.table["annual_cost"].tolist()
    )

    # leave and come back: uploads, inputs and results are all still there
    _go(at, "costs")
    _go(at, "data")
    assert any("Using **my_customers.csv**" in s.value for s in at.success)
    assert any("Using **existing.csv**" in s.value for s in at.success)
    _go(at, "plan")
    assert at.number_input(key="workshops").value == 5
    assert at.session_state["plan"]["result"] is shown
    assert not [w for w in at.warning if "inputs changed" in w.value]


@pytest.mark.slow
def test_results_and_export_pages_from_prefilled_state() -> None:
    spec = ScenarioSpec(name="prefilled", region=REGION, workshops=3)
    result = run(spec, graph=network.load_region(REGION))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = REGION
    at.session_state["workshops"] = 3
    at.session_state["plan"] = {
        "key": None,
        "spec": spec,
        "result": result,
        "solved_on": "test data",
        "inputs": {"customers": None, "sites": None},
    }
    at.switch_page("app_pages/results.py")
    _ok(at.run())
    assert any("inputs changed" in w.value for w in at.warning)  # key None: marked stale
    assert at.dataframe[0].value["site_id"].tolist() == result.shortlist()["site_id"].tolist()
    assert "OpenStreetMap contributors" in at.main.caption[-1].value
    _go(at, "export")
    _assert_download(
        at,
        "Shortlist (CSV)",
        to_csv_bytes(result.shortlist()),
        "text/csv",
        "shortlist.csv",
    )
    labels = set(_downloads(at))
    assert {
        "Assignments (CSV)",
        "Territories (CSV)",
        "Map (HTML, works offline)",
        "Report (HTML, prints on A4)",
        "Workbook (XLSX)",
        "Sites (GeoJSON)",
        "All GIS layers (GeoPackage, for QGIS)",
    } <= labels


@pytest.mark.slow
def test_other_region_file_gets_a_plain_hint_and_scenarios_save_and_reopen() -> None:
    at = _open()
    malta = "id,lat,lon\nA,35.90,14.45\nB,35.88,14.50\n"
    at.file_uploader(key="customers_file").upload("malta.csv", malta.encode(), "text/csv")
    _ok(at.run())
    hints = [w.value for w in at.warning]
    assert any("are in Malta, but the region chosen is Liechtenstein" in h for h in hints)
    assert sum("Malta" in h for h in hints) == 1  # one hint, not one line per row

    at.text_input(key="scenario_name").set_value("Client A")
    _go(at, "plan")
    at.number_input(key="workshops").set_value(2)
    _ok(at.run())
    _go(at, "data")
    _button(at, "Save scenario").click()
    _ok(at.run())
    assert any("Saved as client-a" in s.value for s in at.success)
    _button(at, "Save scenario").click()  # again: never overwritten without asking
    _ok(at.run())
    assert any("already saved" in w.value for w in at.warning)

    fresh = _open()
    fresh.selectbox(key="open_name").set_value("client-a")
    _ok(fresh.run())
    _button(fresh, "Open").click()
    _ok(fresh.run())
    assert fresh.session_state["workshops"] == 2
    assert fresh.session_state["uploads"]["customers"].data == malta.encode()
    assert any("Using **malta.csv**" in s.value for s in fresh.success)


def test_session_state_keys_documented() -> None:
    # the lead's one-engine test relies on these keys; keep them
    from app_pages import _shared

    assert _shared.UPLOAD_KEYS["customers"] == "customers_file"
    assert _shared.UPLOAD_KEYS["existing"] == "existing_file"
    for key in ("region", "workshops", "layout", "sla_min", "generate_candidates"):
        assert key in _shared.DEFAULTS
    assert pd.api.types.is_number(_shared.DEFAULTS["workshops"])


def test_upload_limit_is_deliberate_and_stated() -> None:
    import tomllib

    from app_pages import _shared

    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["server"]["maxUploadSize"] == _shared.MAX_UPLOAD_MB
    data_page = (PAGES / "data.py").read_text(encoding="utf-8")
    assert "MAX_UPLOAD_MB" in data_page  # the limit and the CLI alternative are shown there


def test_stop_keeps_the_best_answer_so_far_with_its_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = threading.Event()
    real_run = solves.run

    def gated_run(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        assert gate.wait(TIMEOUT_S)  # the solve starts once the test lets it
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solves, "run", gated_run)  # the shared solves call the engine
    at = _open("plan")
    at.number_input(key="workshops").set_value(4)
    _ok(at.run())
    _button(at, "Run").click()
    _ok(at.run())
    # the solve is under way: a progress line and a Stop button, no answer yet
    assert "plan_job" in at.session_state
    assert "plan" not in at.session_state
    assert [b.label for b in at.button if b.label == "Stop"] == ["Stop"]
    _button(at, "Stop").click()
    _ok(at.run())
    assert _button(at, "Run").disabled  # one solve at a time
    assert at.session_state["plan_job"].stop.is_set()
    assert any("Stopping" in c.value for c in at.caption)
    gate.set()
    _wait_for_job(at, "plan")
    entry = at.session_state["plan"]
    sol = entry["result"].solution
    assert entry["stopped"]
    assert sol.status == "stopped"
    assert not sol.optimal
    assert 0 <= sol.gap < float("inf")
    assert sol.lower_bound <= sol.objective
    assert sol.open.size == 4
    assert any(w.value.startswith("Stopped: the best answer found so far") for w in at.warning)
    assert any("Stopped by you" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label == "Stop"]
    # a stopped answer is not cached: running again solves to the end, at least as good
    _button(at, "Run").click()
    _ok(at.run())
    _wait_for_job(at, "plan")
    again = at.session_state["plan"]["result"].solution
    assert not at.session_state["plan"]["stopped"]
    assert again.optimal
    assert sol.lower_bound - 1e-6 <= again.objective <= sol.objective + 1e-6
