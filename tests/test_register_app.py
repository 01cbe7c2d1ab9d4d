"""The app's register page opens the stored register; an upload can be kept in it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from planner.inputs import customers as demand
from planner.register import segment_trends
from planner.register.imports import import_register
from planner.register.store import open_store

PAGE = Path(__file__).resolve().parent.parent / "app_pages" / "register.py"
DEMO_JOBS = demand.DEMO_DIR / "malta_jobs.csv"
DEMO_CUSTOMERS = demand.DEMO_DIR / "malta_customers.csv"
TIMEOUT_S = 300


@pytest.fixture
def workspace(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PLANNER_OFFLINE", "1")
    monkeypatch.setenv("PLANNER_WORKSPACE_DIR", str(tmp_path / "ws"))
    return tmp_path / "ws"


def _open() -> AppTest:
    at = AppTest.from_file(str(PAGE), default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_page_opens_the_stored_register_without_an_upload(workspace: Path) -> None:
    # a history of 2024 only, so that it differs from the demo history the page shows otherwise
    jobs = pd.read_csv(DEMO_JOBS, dtype=str)
    part = workspace.parent / "jobs_2024.csv"
    jobs[jobs["date"].str.startswith("2024")].to_csv(part, index=False)
    with open_store(workspace / "register.duckdb") as store:
        import_register(store, customers=DEMO_CUSTOMERS, jobs=part)
    at = _open()
    assert any("Showing the stored register" in c.value for c in at.caption)
    with open_store(workspace / "register.duckdb", read_only=True) as store:
        expected = segment_trends(store, store.customers())
    pd.testing.assert_frame_equal(at.session_state["register"]["segments"], expected)
    monthly = at.session_state["register"]["monthly"]
    assert monthly["period"].min() == pd.Timestamp("2024-01-01")
    assert monthly["jobs"].sum() == len(part.read_text().splitlines()) - 1


def test_the_demo_history_can_be_kept_in_the_register(workspace: Path) -> None:
    at = _open()
    assert not (workspace / "register.duckdb").exists()
    (button,) = [b for b in at.button if b.label == "Keep this history in the register"]
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("14,103 new jobs, 0 already stored" in s.value for s in at.success)
    with open_store(workspace / "register.duckdb", read_only=True) as store:
        assert store.count("jobs") == 14103
        assert store.count("customers") == 2000
    at = _open()  # next time the page opens the register
    assert any("Showing the stored register" in c.value for c in at.caption)
