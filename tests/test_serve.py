"""Private by default: `streamlit run app.py` answers on localhost only, and `planner serve`
refuses to serve the app to others without sign-in."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from planner.cli import main
from planner.hosting.serve import plan_serve
from planner.hosting.users import SignInError, is_local_address, oidc_configured

REPO = Path(__file__).resolve().parent.parent
OIDC = """[auth]
redirect_uri = "http://planner.example.org/oauth2callback"
cookie_secret = "a long random secret"
client_id = "planner"
client_secret = "s3cret"
server_metadata_url = "https://login.example.org/.well-known/openid-configuration"
"""


@pytest.fixture
def no_secrets(tmp_path: Path) -> list[Path]:
    return [tmp_path / "none.toml"]


def test_local_addresses() -> None:
    for host in ("localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]", "unix:///tmp/p.sock"):
        assert is_local_address(host), host
    for host in ("0.0.0.0", "", "::", "192.168.1.20", "planner.example.org", None):
        assert not is_local_address(host), host


def test_serve_refuses_a_public_host_without_sign_in(no_secrets: list[Path]) -> None:
    with pytest.raises(SignInError, match=r"refusing to serve on '0\.0\.0\.0' without sign-in"):
        plan_serve(host="0.0.0.0", secrets=no_secrets)
    plan = plan_serve(host="localhost", secrets=no_secrets)
    assert plan.mode == "local"
    assert plan.command[plan.command.index("--server.address") + 1] == "localhost"


def test_serve_without_sign_in_only_when_said(no_secrets: list[Path]) -> None:
    plan = plan_serve(host="0.0.0.0", port=9000, no_auth=True, secrets=no_secrets)
    assert plan.mode == "none"
    assert plan.env["PLANNER_AUTH"] == "none"
    assert plan.command[plan.command.index("--server.port") + 1] == "9000"


def test_serve_with_openid_connect_configured(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(OIDC)
    assert oidc_configured([secrets])
    plan = plan_serve(host="0.0.0.0", secrets=[secrets])
    assert plan.mode == "oidc"
    assert str(secrets) in plan.command
    # an [auth] section without a provider's client secret is not sign-in
    secrets.write_text(OIDC.replace('client_secret = "s3cret"\n', ""))
    assert not oidc_configured([secrets])
    with pytest.raises(SignInError):
        plan_serve(host="0.0.0.0", secrets=[secrets])
    # a provider section counts too
    secrets.write_text(OIDC.replace("client_id", "[auth.keycloak]\nclient_id"))
    assert oidc_configured([secrets])


def test_trusted_header_mode_only_where_the_proxy_alone_reaches_the_app(
    no_secrets: list[Path],
) -> None:
    for host in ("0.0.0.0", "192.168.1.20"):
        with pytest.raises(SignInError, match="only the proxy can reach it"):
            plan_serve(host=host, auth_header="X-Forwarded-Email", secrets=no_secrets)
    plan = plan_serve(host="127.0.0.1", auth_header="X-Forwarded-User", secrets=no_secrets)
    assert plan.mode == "header"
    assert plan.env["PLANNER_AUTH_HEADER"] == "X-Forwarded-User"
    sock = plan_serve(host="unix:///tmp/planner.sock", auth_header="X-Auth", secrets=no_secrets)
    assert "--server.port" not in sock.command
    with pytest.raises(SignInError, match="not both"):
        plan_serve(auth_header="X-Auth", no_auth=True, secrets=no_secrets)


def test_cli_serve_refuses_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["serve", "--host", "0.0.0.0", "--secrets", str(tmp_path / "none.toml")])
    assert code == 2
    err = capsys.readouterr().err
    assert "without sign-in" in err
    assert "--no-auth" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lan_addresses() -> list[str]:
    return [
        a.address
        for addrs in psutil.net_if_addrs().values()
        for a in addrs
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]


@pytest.mark.slow
def test_streamlit_run_app_py_listens_on_localhost_only(tmp_path: Path) -> None:
    """The README's first command, on a free port: localhost answers, the LAN address does
    not, and no "Network URL" is printed."""
    port = _free_port()
    log = tmp_path / "streamlit.log"
    env = {
        **os.environ,
        "PLANNER_OFFLINE": "1",
        "PLANNER_WORKSPACE_DIR": str(tmp_path / "ws"),
    }
    env.pop("PLANNER_AUTH", None)
    with log.open("w") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
            cwd=REPO,
            env={**env, "BROWSER": "none"},
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        listening = {
            c.laddr.ip
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port
        }
        assert listening
        assert listening <= {"127.0.0.1", "::1"}, listening
        for address in _lan_addresses():
            with (
                pytest.raises(ConnectionRefusedError),
                socket.create_connection((address, port), timeout=2),
            ):
                pass
        time.sleep(0.5)
        out = log.read_text()
        assert f"URL: http://localhost:{port}" in out
        assert "Network URL" not in out
        assert "External URL" not in out
    finally:
        proc.terminate()
        proc.wait(timeout=30)
