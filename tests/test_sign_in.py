"""Sign-in for real, in Chromium: Streamlit's OpenID Connect against a local OpenID provider
(``oidc-provider-mock``, on loopback), two users each with their own workspace, Sign out.

Also the trusted-header mode: the user comes from the proxy's header, and a request without it
gets no app.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # the mock provider imports Authlib's old jose module
    pytest.mark.filterwarnings("ignore::DeprecationWarning:oidc_provider_mock.*"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:authlib.*"),
]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
WAIT_MS = 120_000

if not os.path.exists(CHROMIUM):
    pytest.skip("needs Chromium (Debian: apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright")
oidc_mock = pytest.importorskip("oidc_provider_mock", reason="needs oidc-provider-mock")
pytest.importorskip("authlib", reason="Streamlit's st.login needs Authlib")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_streamlit(folder: Path, port: int, env: dict[str, str], *args: str) -> Any:
    with (folder / "streamlit.log").open("w") as log:
        proc = _popen(port, env, log, args)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2):
                return proc
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.terminate()
                raise RuntimeError((folder / "streamlit.log").read_text()) from None
            time.sleep(0.5)


def _popen(port: int, env: dict[str, str], log: Any, args: tuple[str, ...]) -> Any:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.headless=true",
            f"--server.port={port}",
            "--server.fileWatcherType=none",
            *args,
        ],
        cwd=REPO,
        env={**os.environ, "PLANNER_OFFLINE": "1", **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop(proc: Any) -> None:
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def oidc_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("oidc")
    users = [
        oidc_mock.User(sub="ann", claims={"email": "ann@example.com", "name": "Ann Example"}),
        oidc_mock.User(sub="bob", claims={"email": "bob@example.com", "name": "Bob Example"}),
    ]
    with oidc_mock.run_server_in_thread(user_claims=users) as provider:
        port = _free_port()
        secrets = folder / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
            'cookie_secret = "a-test-cookie-secret-that-is-long-enough"\n'
            'client_id = "planner-test"\n'
            'client_secret = "planner-test-secret"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}'
            '/.well-known/openid-configuration"\n'
        )
        workspace = folder / "workspace"
        proc = start_streamlit(
            folder,
            port,
            {"PLANNER_AUTH": "oidc", "PLANNER_WORKSPACE_DIR": str(workspace)},
            f"--secrets.files={secrets}",
        )
        try:
            yield f"http://localhost:{port}", workspace
        finally:
            stop(proc)


@pytest.fixture
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


def sign_in(browser: Any, url: str, who: str) -> Any:
    page = browser.new_context(viewport={"width": 1300, "height": 1000}).new_page()
    page.set_default_timeout(WAIT_MS)
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    # the provider's page: one button per known user
    page.get_by_role("button", name=who, exact=True).click()
    page.get_by_text("Signed in as").wait_for()
    return page


def save_scenario(page: Any, name: str) -> None:
    box = page.get_by_label("Scenario name")
    box.fill(name)
    box.press("Enter")
    page.get_by_role("button", name="Save scenario").click()
    page.get_by_text("Saved as").wait_for()


def settle(page: Any) -> None:
    """Wait until the page's script has run to its end (the OSM credit closes every page)."""
    page.wait_for_timeout(1000)
    page.get_by_text("ODbL 1.0").last.wait_for()
    page.locator("[data-testid='stStatusWidget']").wait_for(state="detached")


def options_become(page: Any, expected: list[str], timeout_s: float = 60) -> list[str]:
    """The saved-scenario options once they equal ``expected`` (or the last seen)."""
    deadline = time.monotonic() + timeout_s
    while True:
        seen = saved_options(page)
        if seen == expected or time.monotonic() > deadline:
            return seen
        page.wait_for_timeout(1000)


def saved_options(page: Any) -> list[str]:
    settle(page)
    select = page.get_by_label("Saved scenarios")
    select.wait_for()
    if select.is_disabled():  # "No options to select"
        return []
    select.click()
    options = page.get_by_role("option")
    try:
        options.first.wait_for(timeout=3000)
    except sync_api.TimeoutError:
        return []
    texts = [t.strip() for t in options.all_inner_texts()]
    page.keyboard.press("Escape")
    return texts


def test_two_users_sign_in_with_openid_connect_and_keep_their_scenarios_apart(
    oidc_app: tuple[str, Path], browser: Any
) -> None:
    url, workspace = oidc_app
    ann = sign_in(browser, url, "ann")
    assert "Ann Example" in ann.locator("section[data-testid='stSidebar']").inner_text()
    save_scenario(ann, "Ann secret plan")

    bob = sign_in(browser, url, "bob")
    assert "Bob Example" in bob.locator("section[data-testid='stSidebar']").inner_text()
    assert "ann-secret-plan" not in saved_options(bob)
    save_scenario(bob, "Bob plan")
    assert options_become(bob, ["bob-plan"]) == ["bob-plan"]

    ann.reload()
    ann.get_by_text("Signed in as").wait_for()
    assert options_become(ann, ["ann-secret-plan"]) == ["ann-secret-plan"]
    folders = sorted(p.name for p in (workspace / "users").iterdir())
    assert [f.split("-")[0] for f in folders] == ["ann@example.com", "bob@example.com"]

    # every page shows who is signed in; Sign out leads back to the sign-in page
    ann.get_by_role("link", name="Plan").click()
    ann.get_by_text("Signed in as").wait_for()
    ann.get_by_role("button", name="Sign out").click()
    # the provider ends its session too (the mock asks to confirm) and sends Ann back
    ann.get_by_role("button", name="End session").click()
    ann.goto(url)
    ann.get_by_role("button", name="Sign in").wait_for()
    assert ann.get_by_text("Signed in as").count() == 0

    log = [json.loads(x) for x in (workspace / "audit.log").read_text().splitlines()]
    actions = [(x["user"], x["action"]) for x in log]
    # one line per sign-in: Ann's reload (a new session) and page switches add none
    assert actions.count(("ann@example.com", "sign-in")) == 1
    assert actions.count(("bob@example.com", "sign-in")) == 1
    assert ("ann@example.com", "save") in actions
    assert ("ann@example.com", "sign-out") in actions


def test_trusted_header_mode_takes_the_user_from_the_proxys_header(
    tmp_path: Path, browser: Any
) -> None:
    port = _free_port()
    proc = start_streamlit(
        tmp_path,
        port,
        {
            "PLANNER_AUTH": "header",
            "PLANNER_AUTH_HEADER": "X-Forwarded-User",
            "PLANNER_WORKSPACE_DIR": str(tmp_path / "workspace"),
        },
    )
    try:
        context = browser.new_context(extra_http_headers={"X-Forwarded-User": "cyd@example.com"})
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"http://localhost:{port}")
        page.get_by_text("Signed in as").wait_for()
        assert "cyd@example.com" in page.locator("section[data-testid='stSidebar']").inner_text()
        # a second tab and a reload of the same signed-in user are not new sign-ins
        second = context.new_page()
        second.set_default_timeout(WAIT_MS)
        second.goto(f"http://localhost:{port}")
        second.get_by_text("Signed in as").wait_for()
        page.reload()
        page.get_by_text("Signed in as").wait_for()
        audit_log = tmp_path / "workspace" / "audit.log"
        lines = [json.loads(x) for x in audit_log.read_text().splitlines()]
        assert [(x["user"], x["action"]) for x in lines] == [("cyd@example.com", "sign-in")]
        # straight to the app, past the proxy: no header, no app
        direct = browser.new_context().new_page()
        direct.set_default_timeout(WAIT_MS)
        direct.goto(f"http://localhost:{port}")
        direct.get_by_text("no X-Forwarded-User header").wait_for()
        assert direct.get_by_text("Your data").count() == 0
    finally:
        stop(proc)
