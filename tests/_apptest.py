"""Helpers shared by the AppTests (``test_app.py``, ``test_app_data.py``, ``test_compare_cli.py``):
checking a run and waiting for a background job (the ``offline_app`` fixture is in conftest)."""

from __future__ import annotations

import time

from streamlit.testing.v1 import AppTest

TIMEOUT_S = 600  # cold cache: graph parse + matrix + solve on a busy machine


def ok(at: AppTest) -> AppTest:
    """``at`` after checking that its last run raised nothing."""
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_job(at: AppTest, kind: str, timeout_s: float = TIMEOUT_S) -> AppTest:
    """Rerun the page until the background job of ``kind`` has been collected."""
    deadline = time.monotonic() + timeout_s
    while f"{kind}_job" in at.session_state:
        at.session_state[f"{kind}_job"].finished.wait(max(0.0, deadline - time.monotonic()))
        ok(at.run())
        assert time.monotonic() < deadline, f"{kind} did not finish"
    return at
