"""The register page, driven headlessly with ``streamlit.testing.v1.AppTest``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from _apptest import wait_for_job
from streamlit.testing.v1 import AppTest

from planner.inputs import customers as demand
from planner.inputs.jobs import read_jobs
from planner.register import segment_trends

PAGE = Path(__file__).resolve().parent.parent / "app_pages" / "register.py"
DEMO_JOBS = demand.DEMO_DIR / "malta_jobs.csv"
TIMEOUT_S = 300


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_OFFLINE", "1")


def _open() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_shows_the_demo_trends_of_the_library() -> None:
    at = _open()
    shown = at.session_state["register"]["segments"]
    customers = demand.load_demo_customers("malta")
    jobs = read_jobs(DEMO_JOBS, customer_ids=customers["customer_id"]).valid
    pd.testing.assert_frame_equal(shown, segment_trends(jobs, customers))
    assert dict(zip(shown["segment"], shown["trend"], strict=True)) == {
        "business": "rising",
        "private": "falling",
    }
    assert [s.value for s in at.subheader][:3] == [
        "Demand trends by segment",
        "Trends by area",
        "Forecast of yearly jobs",
    ]
    assert len(at.dataframe) >= 3


@pytest.mark.slow
def test_page_plans_phases() -> None:
    at = _open()
    at.session_state["layout"] = "two-tier"  # chosen on the Plan page: phases are in-house
    at.text_input(key="phase_workshops").set_value("2,3").run()
    (button,) = [b for b in at.button if b.label == "Plan phases"]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    wait_for_job(at, "register_phases", timeout_s=TIMEOUT_S)  # through the server's queue
    plan = at.session_state["register_phases"]
    assert plan.summary["workshops"].tolist() == [2, 3]
    assert plan.phases.groupby("year").size().tolist() == [2, 3]
    assert any("customers move" in m.value for m in at.markdown)
    assert [w.value for w in at.warning if "not used" in w.value] == list(plan.warnings)[:1]
    assert "layout 'two-tier'" in plan.warnings[0]
