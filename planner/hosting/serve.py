"""``planner serve``: start the app for others, refusing to serve it open by mistake.

The app listens on localhost unless a host is given. A host others can reach needs sign-in:
OpenID Connect set up in ``.streamlit/secrets.toml`` (``[auth]``), or an explicit
``--no-auth`` (then every page warns). The trusted-header mode (``--auth-header``, behind an
authenticating reverse proxy) listens on localhost or a unix socket only, so that no one but
the proxy can reach the app and forge the header.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from planner.hosting.users import (
    AUTH_ENV_VAR,
    AUTH_HEADER_ENV_VAR,
    SignInError,
    is_local_address,
    oidc_configured,
)

__all__ = ["ServePlan", "plan_serve", "serve"]

logger = logging.getLogger(__name__)

#: The app's entry point, next to the ``planner`` package in a checkout.
APP_FILE = Path(__file__).resolve().parent.parent.parent / "app.py"
#: What the app says on every page when served without sign-in on purpose.
NO_AUTH_WARNING = "Anyone who can reach this server can use the app and every saved scenario."


@dataclass(frozen=True)
class ServePlan:
    """How the app will be started: the command line and the environment it gets."""

    command: list[str]
    env: dict[str, str]
    mode: str
    url: str


def _default_secrets(app_file: Path) -> list[Path]:
    return [
        Path.home() / ".streamlit" / "secrets.toml",
        app_file.parent / ".streamlit" / "secrets.toml",
    ]


def plan_serve(
    *,
    host: str = "localhost",
    port: int = 8501,
    no_auth: bool = False,
    auth_header: str | None = None,
    secrets: Sequence[str | os.PathLike[str]] | None = None,
    app_file: Path = APP_FILE,
    environ: Mapping[str, str] | None = None,
) -> ServePlan:
    """Check the serving options and build the ``streamlit run`` command.

    Parameters
    ----------
    host
        Address to listen on: ``localhost`` (default), an IP address, ``0.0.0.0`` for every
        interface, or ``unix:///path/to.sock``.
    port
        TCP port (ignored for a unix socket).
    no_auth
        Serve to others without sign-in, on purpose.
    auth_header
        Take the user from this header set by an authenticating reverse proxy.
    secrets
        Secrets files searched for the ``[auth]`` section (default: ``~/.streamlit`` and the
        app's ``.streamlit`` folder, as Streamlit does).

    Raises
    ------
    SignInError
        When the options would serve the app to others without sign-in, or put the header
        mode where others can reach it.
    """
    if not app_file.is_file():
        raise SignInError(f"the app ({app_file}) is not installed; run from a checkout")
    secrets_files = (
        [Path(s) for s in secrets] if secrets is not None else _default_secrets(app_file)
    )
    local = is_local_address(host)
    if auth_header is not None and no_auth:
        raise SignInError("choose either --auth-header or --no-auth, not both")
    if auth_header is not None:
        if not local:
            raise SignInError(
                f"--auth-header trusts the {auth_header} header, so the app must listen where "
                f"only the proxy can reach it: localhost or unix:///path.sock, not {host!r}. "
                "Point the proxy at http://localhost:PORT"
            )
        mode = "header"
    elif no_auth:
        mode = "none"
    elif oidc_configured(secrets_files):
        mode = "oidc"
    elif local:
        mode = "local"
    else:
        raise SignInError(
            f"refusing to serve on {host!r} without sign-in: anyone who can reach it could "
            "open every saved scenario. Set up sign-in in .streamlit/secrets.toml ([auth] with "
            "redirect_uri, cookie_secret, client_id, client_secret, server_metadata_url), serve "
            "behind a signing-in proxy with --auth-header X-Forwarded-Email on localhost, or "
            "say --no-auth"
        )
    env = dict(os.environ if environ is None else environ)
    env[AUTH_ENV_VAR] = mode
    if auth_header is not None:
        env[AUTH_HEADER_ENV_VAR] = auth_header
    else:
        env.pop(AUTH_HEADER_ENV_VAR, None)
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app_file),
        "--server.address",
        host,
        "--server.headless",
        "true",
    ]
    if not host.startswith("unix://"):
        command += ["--server.port", str(int(port))]
    if secrets is not None:
        for path in secrets_files:
            command += ["--secrets.files", str(path)]
    shown = host if host not in ("0.0.0.0", "::") else "<this machine's address>"
    url = host if host.startswith("unix://") else f"http://{shown}:{int(port)}"
    return ServePlan(command=command, env=env, mode=mode, url=url)


def serve(plan: ServePlan) -> int:
    """Start the app as planned by :func:`plan_serve` and wait for it; returns its exit code."""
    if plan.mode == "none":
        logger.warning("serving without sign-in (--no-auth): %s", NO_AUTH_WARNING)
    print(f"Serving the planner at {plan.url} (sign-in: {plan.mode})", file=sys.stderr)
    try:
        return subprocess.call(plan.command, env=plan.env, cwd=str(APP_FILE.parent))
    except KeyboardInterrupt:
        return 0
