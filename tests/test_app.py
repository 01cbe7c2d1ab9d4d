"""The Streamlit app, driven headlessly with ``streamlit.testing.v1.AppTest``.

AppTest does not render custom components (the st_folium map), so the map itself is checked
in tests/test_browser.py; here the page flow, the numbers it shows and the downloads are
compared with direct library calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from planner.engine import plan_workshops
from planner.inputs import customers as demand
from planner.outputs import maps
from planner.roads import network

APP = Path(__file__).resolve().parent.parent / "app.py"
TIMEOUT_S = 300  # cold cache: Malta graph parse + matrix + solve


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # the app checks whether the OSM tile server answers; tests never touch the network
    monkeypatch.setenv("PLANNER_OFFLINE", "1")


def _open(region: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    if region is not None:
        at.query_params["region"] = region
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _press_run(at: AppTest) -> None:
    (run,) = [b for b in at.button if b.label == "Run"]
    run.click().run()
    assert not at.exception, [e.value for e in at.exception]


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _download_file_id(data: str, mimetype: str, filename: str) -> str:
    # Streamlit names a download by a hash of its bytes, type and file name: comparing the
    # URL with the hash of the expected CSV checks the exact content of the download.
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    return _calculate_file_id(data.encode("utf-8"), mimetype, filename)


def _assert_result_matches_library(at: AppTest, region: str, workshops: int) -> None:
    expected = plan_workshops(region, workshops, graph=network.load_region(region))
    shown = at.session_state["plan"]["result"]
    # same sites, same assignment quality as a direct library call
    assert shown.shortlist()["site_id"].tolist() == expected.shortlist()["site_id"].tolist()
    assert shown.solution.objective == pytest.approx(expected.solution.objective, rel=1e-9)

    shortlist_table = at.dataframe[0].value
    assert shortlist_table["site_id"].tolist() == expected.shortlist()["site_id"].tolist()
    np.testing.assert_allclose(
        shortlist_table["mean_travel_min"], expected.shortlist()["mean_travel_min"]
    )
    kpi_table = at.dataframe[1].value.set_index("kpi")["value"]
    assert kpi_table["sites"] == str(workshops)
    assert float(kpi_table["mean_travel_min"]) == pytest.approx(
        expected.kpis["mean_travel_min"], rel=1e-3
    )
    metrics = _metrics(at)
    assert metrics["Mean travel"] == f"{expected.kpis['mean_travel_min']:.1f} min"
    assert metrics["Demand within 15 min"] == f"{100 * expected.kpis['share_within_15_min']:.0f} %"

    downloads = {d.label: d for d in at.get("download_button")}
    csv = downloads["Download shortlist (CSV)"]
    file_id = _download_file_id(
        expected.shortlist().to_csv(index=False), "text/csv", "shortlist.csv"
    )
    assert csv.proto.url.endswith(f"/{file_id}.csv")
    assert "Download map (HTML, works offline)" in downloads

    # the map the page draws, built by the library from the shown result
    m = maps.result_map(shown)
    customers = [g for g in _all(m) if getattr(g, "layer_name", None) == "Customers"]
    assert len(customers[0].data["features"]) == len(shown.customers)


def _all(element: object) -> list:
    out = [element]
    for child in getattr(element, "_children", {}).values():
        out.extend(_all(child))
    return out


def test_static_url_follows_base_url_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    monkeypatch.syspath_prepend(str(APP.parent))
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


@pytest.mark.slow
def test_default_opens_on_malta_demo_and_runs() -> None:
    at = _open()
    assert at.selectbox(key="region").value == "malta"
    assert at.number_input(key="workshops").value == 5
    n = len(demand.load_demo_customers("malta"))
    assert f"{n:,} demo customers in Malta" in at.info[0].value
    assert _metrics(at) == {}
    assert "OpenStreetMap contributors" in at.main.caption[-1].value

    _press_run(at)
    _assert_result_matches_library(at, "malta", 5)
    assert "OpenStreetMap contributors" in at.main.caption[-1].value


@pytest.mark.slow
def test_result_survives_reruns_and_follows_the_inputs() -> None:
    at = _open("liechtenstein")
    assert at.selectbox(key="region").value == "liechtenstein"
    at.number_input(key="workshops").set_value(3).run()
    _press_run(at)
    _assert_result_matches_library(at, "liechtenstein", 3)
    shown = _metrics(at)

    at.run()  # any rerun (a download click, a widget) keeps the result
    assert _metrics(at) == shown

    at.number_input(key="workshops").set_value(4).run()  # stale result is not shown
    assert _metrics(at) == {}
    assert "press **Run**" in at.info[0].value

    at.number_input(key="workshops").set_value(3).run()  # back to the solved input
    assert _metrics(at) == shown


@pytest.mark.slow
def test_uploaded_customer_file_is_checked_and_planned(tmp_path: Path) -> None:
    demo = demand.load_demo_customers("liechtenstein").head(300)
    rows = demo[["customer_id", "lat", "lon", "weight", "segment"]].rename(
        columns={"customer_id": "id"}
    )
    csv = rows.to_csv(index=False) + "BAD1,not-a-latitude,9.52,1,private\n"
    path = tmp_path / "my_customers.csv"
    path.write_text(csv, encoding="utf-8")

    at = _open("liechtenstein")
    at.number_input(key="workshops").set_value(3)
    at.file_uploader(key="customers_file").upload("my_customers.csv", csv.encode(), "text/csv")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # the bad row is reported and left out; the 300 good ones are shown
    assert "300 customers from my_customers.csv can be used" in at.warning[0].value
    assert "300 customers from my_customers.csv in Liechtenstein" in at.info[0].value
    assert "my_customers.csv" in at.expander[0].text[0].value
    assert "planner-upload-" not in at.expander[0].text[0].value

    _press_run(at)
    shown = at.session_state["plan"]["result"]
    expected = plan_workshops(
        "liechtenstein", 3, customers=path, graph=network.load_region("liechtenstein")
    )
    assert len(shown.customers) == 300
    assert shown.shortlist()["site_id"].tolist() == expected.shortlist()["site_id"].tolist()
    assert shown.kpis["mean_travel_min"] == pytest.approx(expected.kpis["mean_travel_min"])
