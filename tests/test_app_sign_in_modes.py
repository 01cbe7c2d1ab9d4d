"""The sign-in modes in the app (AppTest): the warning on every page when served without
sign-in on purpose, no app without the proxy's header, and the local mode as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from _apptest import TIMEOUT_S
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "app.py"
pytestmark = pytest.mark.usefixtures("offline_app")


def _costs_page() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.switch_page("app_pages/costs.py")
    return at.run()


def test_no_auth_warns_on_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_AUTH", "none")
    at = _costs_page()
    assert not at.exception
    assert any("Served without sign-in" in w.value for w in at.warning)
    assert any(t.value == "Cost assumptions" for t in at.title)


def test_header_mode_without_the_header_shows_no_app(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_AUTH", "header")
    monkeypatch.setenv("PLANNER_AUTH_HEADER", "X-Forwarded-Email")
    at = _costs_page()
    assert any("no X-Forwarded-Email header" in e.value for e in at.error)
    assert not [t for t in at.title if t.value == "Cost assumptions"]


def test_local_mode_needs_no_sign_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANNER_AUTH", raising=False)
    at = _costs_page()
    assert not at.exception
    assert not at.warning
    assert any(t.value == "Cost assumptions" for t in at.title)
    assert not [b for b in at.button if b.label == "Sign out"]
