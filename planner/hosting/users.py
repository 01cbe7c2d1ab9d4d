"""Who is using the app: the ways to sign in, and a user's safe identity.

Four modes, chosen by ``planner serve`` (or by the app itself when started with
``streamlit run app.py``) and handed to the app in ``$PLANNER_AUTH``:

``local``
    No sign-in: one person on this machine (the app listens on localhost only).
``oidc``
    Streamlit's own OpenID Connect sign-in (``st.login``), configured in the ``[auth]``
    section of ``.streamlit/secrets.toml`` (Google, Microsoft, Keycloak...).
``header``
    Behind an authenticating reverse proxy (oauth2-proxy and the like) that passes the user in
    a trusted header (``X-Forwarded-Email`` by default, ``$PLANNER_AUTH_HEADER``). Allowed
    only while the app listens where the proxy alone can reach it (localhost or a unix
    socket), so no one can forge the header from outside.
``none``
    Served to others without sign-in, said explicitly (``planner serve --no-auth``): every
    page warns about it.

No Streamlit here: the app reads ``st.user`` or ``st.context.headers`` and passes the values.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from planner.errors import PlannerError

__all__ = [
    "AUTH_ENV_VAR",
    "AUTH_HEADER_ENV_VAR",
    "AUTH_MODES",
    "DEFAULT_AUTH_HEADER",
    "SignInError",
    "User",
    "auth_header",
    "auth_mode",
    "is_local_address",
    "oidc_configured",
    "safe_user_id",
    "user_from_claims",
    "user_from_headers",
]

#: Environment variable naming the sign-in mode (see the module docstring).
AUTH_ENV_VAR = "PLANNER_AUTH"
#: Environment variable naming the trusted header of the ``header`` mode.
AUTH_HEADER_ENV_VAR = "PLANNER_AUTH_HEADER"
DEFAULT_AUTH_HEADER = "X-Forwarded-Email"
AUTH_MODES: tuple[str, ...] = ("local", "oidc", "header", "none")
#: The one user of the ``local`` and ``none`` modes.
LOCAL_USER = "local"


class SignInError(PlannerError, PermissionError):
    """Sign-in is missing or misconfigured; the message says what to do."""


@dataclass(frozen=True)
class User:
    """A person using the app.

    Attributes
    ----------
    id
        What identifies them: the e-mail of their sign-in (or the provider's subject), or
        ``"local"`` without sign-in.
    name
        Their name for display.
    """

    id: str
    name: str

    @property
    def folder(self) -> str:
        """Their private folder's name (see :func:`safe_user_id`)."""
        return safe_user_id(self.id)

    @property
    def signed_in(self) -> bool:
        """Whether they signed in (False in the ``local`` and ``none`` modes)."""
        return self.id != LOCAL_USER


def safe_user_id(user_id: str) -> str:
    """A folder name for a user id: readable, free of ``/``, ``..`` and such, and unique.

    ``ann@example.com`` -> ``ann@example.com-<8 hex digits of its sha256>``: the digest keeps
    two ids apart that differ only in characters replaced here.
    """
    raw = str(user_id).strip().lower()
    if not raw:
        raise SignInError("empty user id")
    readable = re.sub(r"[^a-z0-9@._-]+", "_", raw).strip("._") or "user"
    return f"{readable[:48]}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def auth_mode(environ: Mapping[str, str] | None = None) -> str | None:
    """The sign-in mode given in ``$PLANNER_AUTH`` (None: not given).

    Raises
    ------
    SignInError
        When the variable names no known mode.
    """
    env = os.environ if environ is None else environ
    raw = env.get(AUTH_ENV_VAR, "").strip().lower()
    if not raw:
        return None
    if raw not in AUTH_MODES:
        raise SignInError(f"{AUTH_ENV_VAR}={raw!r}: choose one of {', '.join(AUTH_MODES)}")
    return raw


def auth_header(environ: Mapping[str, str] | None = None) -> str:
    """The trusted header of the ``header`` mode (``$PLANNER_AUTH_HEADER``)."""
    env = os.environ if environ is None else environ
    return env.get(AUTH_HEADER_ENV_VAR, "").strip() or DEFAULT_AUTH_HEADER


def is_local_address(address: str | None) -> bool:
    """Whether a listening address is reachable from this machine only.

    ``localhost``, loopback addresses (``127.0.0.1``, ``::1``) and unix sockets
    (``unix:///path``) are; an empty address (every interface) and any other are not.
    """
    host = (address or "").strip()
    if host.startswith("unix://"):
        return True
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _secrets_auth(paths: Iterable[str | os.PathLike[str]]) -> dict[str, object]:
    merged: dict[str, object] = {}
    for path in paths:
        p = Path(path)
        if p.is_file():
            try:
                data = tomllib.loads(p.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SignInError(f"{p}: not a readable TOML file ({exc})") from exc
            section = data.get("auth")
            if isinstance(section, dict):
                merged.update(section)
    return merged


def oidc_configured(secrets_files: Iterable[str | os.PathLike[str]]) -> bool:
    """Whether the ``[auth]`` section of the secrets files sets OpenID Connect sign-in up.

    Needs ``redirect_uri`` and ``cookie_secret`` and a provider with ``client_id``,
    ``client_secret`` and ``server_metadata_url`` (in ``[auth]`` itself or a sub-table such as
    ``[auth.microsoft]``), as Streamlit's ``st.login`` does.
    """
    auth = _secrets_auth(secrets_files)
    if not auth.get("redirect_uri") or not auth.get("cookie_secret"):
        return False
    needed = ("client_id", "client_secret", "server_metadata_url")
    providers = [auth] + [v for v in auth.values() if isinstance(v, dict)]
    return any(all(p.get(k) for k in needed) for p in providers)


def user_from_claims(claims: Mapping[str, object]) -> User:
    """The user of an OpenID Connect identity (``st.user``): e-mail, else the subject."""
    ident = str(claims.get("email") or claims.get("sub") or "").strip()
    if not ident:
        raise SignInError("the sign-in did not say who you are (no email or sub claim)")
    name = str(claims.get("name") or claims.get("email") or ident)
    return User(id=ident, name=name)


def user_from_headers(headers: Mapping[str, str], header: str) -> User:
    """The user named by the trusted header (case-insensitive), as the proxy set it.

    Raises
    ------
    SignInError
        When the header is missing or empty (the request did not come through the proxy).
    """
    wanted = header.lower()
    value = next((str(v) for k, v in headers.items() if k.lower() == wanted), "").strip()
    if not value:
        raise SignInError(
            f"no {header} header: open the app through the signing-in proxy, not directly"
        )
    return User(id=value, name=value)
