"""Entered values survive what Streamlit does to widget-keyed state.

Streamlit stores a widget-keyed value under the widget's id; a run of a job panel (a fragment,
which does not call ``init_state``) leaves it only there, and a page switch right after drops
it. The region then fell back to Malta on the next page (and Malta's roads were loaded for
nothing, about 45 s once per 20-user run of ``benchmarks/bench_hosted.py``), and the Plan page's
choices went back to their defaults. ``init_state`` keeps a plain copy and restores from it.

- AppTest: the outcome of the drop (the key gone from the session) on the app's own pages.
- Chromium (``browser``, ``slow``): the drop itself, on a page with a ticking fragment and the
  app's ``init_state``, then a page switch in a real browser.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from _apptest import TIMEOUT_S
from _apptest import ok as _ok
from streamlit.testing.v1 import AppTest

from app_pages import _shared

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"


def _go(at: AppTest, page: str) -> AppTest:
    at.switch_page(f"app_pages/{page}.py")
    return _ok(at.run())


@pytest.mark.usefixtures("offline_app")
def test_values_streamlit_dropped_come_back_from_the_plain_copy_not_the_defaults() -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.switch_page("app_pages/plan.py")  # no query string: the default region is Malta
    _ok(at.run())
    at.session_state["region"] = "liechtenstein"  # as the Data page's select would
    at.number_input(key="workshops").set_value(7)
    at.selectbox(key="layout").set_value("outsourced")
    _ok(at.run())
    _go(at, "costs")
    for key in ("region", "workshops", "layout"):  # what the page switch drops
        del at.session_state[key]
    _go(at, "costs")
    assert at.session_state["region"] == "liechtenstein"  # not Malta, whose roads would load
    _go(at, "plan")
    assert at.number_input(key="workshops").value == 7
    assert at.selectbox(key="layout").value == "outsourced"


def test_a_value_set_after_init_state_is_kept_too(monkeypatch: pytest.MonkeyPatch) -> None:
    state: dict[str, object] = {}
    monkeypatch.setattr(_shared.st, "session_state", state)
    monkeypatch.setattr(_shared.st, "query_params", {})
    _shared.init_state()
    assert state["region"] == _shared.REGIONS[0]
    _shared.keep_value("region", "liechtenstein")  # a region chosen by a button
    del state["region"]  # dropped by Streamlit before the next init_state
    _shared.init_state()
    assert state["region"] == "liechtenstein"


TICKING_APP = """
import time
import streamlit as st
from app_pages import _shared as shared

shared.init_state()

def data():
    st.title("Data")
    st.selectbox("Region", shared.REGIONS, key="region")
    panel()

@st.fragment(run_every=0.3)  # as a job panel does while a job runs
def panel():
    st.caption(f"working {time.time():.1f}")

def plan():
    st.title("Plan")
    st.write(f"region: {st.session_state['region']}.")

st.navigation([st.Page(data, title="Data", default=True), st.Page(plan, title="Plan")]).run()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.browser
@pytest.mark.slow
def test_a_page_switch_after_a_job_panels_run_keeps_the_region(tmp_path: Path) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(chromium):
        pytest.skip("needs Chromium (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    script = tmp_path / "ticking_app.py"
    script.write_text(TICKING_APP)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    log = (tmp_path / "server.log").open("w")
    command = [sys.executable, "-m", "streamlit", "run", str(script), "--server.headless=true"]
    command += [f"--server.port={port}", "--server.address=127.0.0.1"]
    command += ["--browser.gatherUsageStats=false", "--server.fileWatcherType=none"]
    server = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, args=["--headless", "--no-sandbox"]
            )
            page = browser.new_page()
            page.set_default_timeout(120_000)
            page.goto(f"{url}/?region=liechtenstein")
            page.get_by_role("heading", name="Data").wait_for()
            nav = page.get_by_test_id("stSidebarNav")
            for _ in range(2):
                page.wait_for_timeout(1500)  # the panel runs a few times
                nav.get_by_text("Plan", exact=True).click()
                shown = page.get_by_text("region: ")
                shown.wait_for()
                assert shown.inner_text() == "region: liechtenstein."
                nav.get_by_text("Data", exact=True).click()
                page.get_by_role("heading", name="Data").wait_for()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
