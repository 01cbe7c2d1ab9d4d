"""The signed-in user, their workspace and the server's job queue: the app's side of
:mod:`planner.hosting` (which holds the logic and never imports Streamlit or the pages).

``app.py`` calls :func:`require_user` before routing, so no page runs for someone who has not
signed in, and :func:`user_box` on every page (name and "Sign out", or the no-sign-in
warning). Pages reach the user's scenarios through :func:`my_workspace` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from planner.engine import workspace as ws
from planner.hosting.audit import SignIns, audit, sign_in_token
from planner.hosting.queue import JobQueue
from planner.hosting.serve import NO_AUTH_WARNING
from planner.hosting.users import (
    LOCAL_USER,
    SignInError,
    User,
    auth_header,
    auth_mode,
    is_local_address,
    user_from_claims,
    user_from_headers,
)
from planner.hosting.workspaces import UploadJanitor, Workspace, clean_leftovers

#: Where "Sign out" leads in the trusted-header mode (oauth2-proxy's default path).
SIGN_OUT_URL_ENV_VAR = "PLANNER_SIGN_OUT_URL"
DEFAULT_SIGN_OUT_URL = "/oauth2/sign_out"
#: The proxy's session cookie in the trusted-header mode (oauth2-proxy's default name): a new
#: value is a new sign-in, for the audit log.
PROXY_COOKIE_ENV_VAR = "PLANNER_AUTH_COOKIE"
DEFAULT_PROXY_COOKIE = "_oauth2_proxy"
_USER_KEY = "_planner_user"


def _auth_section() -> Mapping[str, object]:
    try:
        section = st.secrets.get("auth")
    except (FileNotFoundError, OSError, ValueError):  # no or unreadable secrets.toml
        return {}
    return section if isinstance(section, Mapping) else {}


def sign_in_mode() -> str:
    """``$PLANNER_AUTH`` (set by ``planner serve``); else ``oidc`` when ``[auth]`` is in the
    secrets, else ``local``."""
    return auth_mode() or ("oidc" if _auth_section() else "local")


def session_id() -> str:
    """The Streamlit session's id (one browser tab)."""
    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


def session_alive(sid: str | None = None) -> Callable[[], bool]:
    """A callable saying whether the session (its tab) is still connected."""
    sid = sid or session_id()

    def alive() -> bool:
        if not Runtime.exists():  # AppTest: no server, the "tab" lives as long as the test
            return True
        return bool(Runtime.instance().is_active_session(sid))

    return alive


def _stop_with(message: str) -> None:
    st.error(message)
    st.stop()


def _sign_in_page() -> None:
    st.title("Service Site Planner")
    st.write("Sign in to plan with your own data; your scenarios stay private to you.")
    providers = [k for k, v in _auth_section().items() if isinstance(v, Mapping)]
    if not providers:
        st.button("Sign in", type="primary", on_click=st.login)
    for name in providers:
        st.button(f"Sign in with {name}", on_click=st.login, args=(name,), key=f"login_{name}")
    st.stop()


def require_user() -> User:
    """The user of this session, or a sign-in page (the script stops there).

    Refuses to run without sign-in on an address others can reach, and the trusted-header
    mode anywhere but on localhost or a unix socket.
    """
    mode = sign_in_mode()
    address = str(st.get_option("server.address") or "")
    if mode == "local":
        if not is_local_address(address) and Runtime.exists():
            _stop_with(
                f"This app listens on {address or 'every network interface'} without "
                "sign-in. Stop it and start it with `planner serve` (see the README, "
                "'Serving it to others')."
            )
        user = User(LOCAL_USER, "you")
    elif mode == "none":
        user = User(LOCAL_USER, "everyone")
    elif mode == "header":
        if not is_local_address(address):
            _stop_with(
                "The trusted-header sign-in needs the app to listen on localhost or a unix "
                f"socket (only the proxy may reach it), not {address or 'every interface'}."
            )
        try:
            user = user_from_headers(dict(st.context.headers), auth_header())
        except SignInError as exc:
            _stop_with(str(exc))
            raise
    else:
        if not st.user.is_logged_in:
            _sign_in_page()
        user = user_from_claims(st.user.to_dict())
    state = st.session_state
    if state.get(_USER_KEY) != user:
        state[_USER_KEY] = user
        if user.signed_in and _sign_ins().first(user.id, _sign_in_token(mode)):
            audit(ws.workspace_dir(), user.id, "sign-in", mode)
    _startup()
    return user


@st.cache_resource(show_spinner=False)
def _sign_ins() -> SignIns:
    """The sign-ins this server has logged (one audit line each, not one per tab)."""
    return SignIns()


def _sign_in_token(mode: str) -> str:
    if mode == "oidc":
        return sign_in_token(claims=st.user.to_dict())
    name = os.environ.get(PROXY_COOKIE_ENV_VAR, "").strip() or DEFAULT_PROXY_COOKIE
    try:
        cookie = st.context.cookies.get(name)
    except Exception:  # no cookies in this context (AppTest)
        cookie = None
    return sign_in_token(cookie=cookie)


def current_user() -> User:
    """The user :func:`require_user` found (pages run alone, in tests: the local user)."""
    user = st.session_state.get(_USER_KEY)
    return user if isinstance(user, User) else User(LOCAL_USER, "you")


def _sign_out() -> None:
    user = current_user()
    audit(ws.workspace_dir(), user.id, "sign-out")
    _sign_ins().forget(user.id)
    st.session_state.pop(_USER_KEY, None)
    st.logout()


def user_box() -> None:
    """Sidebar: who is signed in and "Sign out"; the warning when served without sign-in."""
    mode = sign_in_mode()
    user = current_user()
    if mode == "none":
        st.warning(f"Served without sign-in (--no-auth). {NO_AUTH_WARNING}", icon="⚠️")
    with st.sidebar:
        if mode == "oidc" and user.signed_in:
            st.caption(f"Signed in as **{user.name}**")
            st.button("Sign out", key="sign_out", on_click=_sign_out)
        elif mode == "header" and user.signed_in:
            st.caption(f"Signed in as **{user.name}**")
            url = os.environ.get(SIGN_OUT_URL_ENV_VAR, "").strip() or DEFAULT_SIGN_OUT_URL
            st.link_button("Sign out", url)


def private_workspaces() -> bool:
    """Whether each user has a private workspace (signed-in modes)."""
    return sign_in_mode() in ("oidc", "header")


def my_workspace() -> Workspace:
    """The current user's view of the workspace folder."""
    return Workspace(current_user(), ws.workspace_dir(), private=private_workspaces())


def queue_user() -> str:
    """Whose turn a job takes in the queue: the signed-in user, else the browser tab."""
    user = current_user()
    return user.id if user.signed_in else f"session:{session_id()}"


@st.cache_resource(show_spinner=False)
def job_queue() -> JobQueue:
    """The server's one job queue (``$PLANNER_MAX_JOBS`` at once)."""
    return JobQueue()


@st.cache_resource(show_spinner=False)
def _janitor() -> UploadJanitor:
    return UploadJanitor()


@st.cache_resource(show_spinner=False)
def _startup() -> list[str]:
    """Once per server: remove the uploads and half-written folders of a previous run."""
    return [str(p) for p in clean_leftovers(ws.workspace_dir())]


def uploads_dir() -> Path:
    """This session's folder for uploaded files, deleted when the tab has been closed."""
    folder = my_workspace().uploads_dir(session_id())
    _janitor().register(folder, session_alive())
    return folder


def audit_export(what: str) -> None:
    """``on_click`` of a download button: one audit line."""
    audit(ws.workspace_dir(), current_user().id, "export", what)
