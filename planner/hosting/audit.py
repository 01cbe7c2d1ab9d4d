"""The audit log: one line per sign-in, save, open, delete and export.

Each line is a JSON object with ``time`` (UTC, ISO 8601), ``user``, ``action`` and ``what``
(a scenario's name or an export's kind): who did what and when, never customer data. The log
is ``$PLANNER_AUDIT_LOG``, else ``audit.log`` in the workspace folder.

A sign-in is one line, however many tabs, reloads and page switches follow it:
:class:`SignIns` remembers the sign-ins a server has logged, told apart by
:func:`sign_in_token`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "ACTIONS",
    "AUDIT_LOG_ENV_VAR",
    "SignIns",
    "audit",
    "audit_log_path",
    "sign_in_token",
]

AUDIT_LOG_ENV_VAR = "PLANNER_AUDIT_LOG"
ACTIONS: tuple[str, ...] = ("sign-in", "sign-out", "save", "open", "delete", "export")
_LOCK = threading.Lock()


def audit_log_path(workspace_root: Path) -> Path:
    """Where audit lines go: ``$PLANNER_AUDIT_LOG`` or ``<workspace>/audit.log``."""
    raw = os.environ.get(AUDIT_LOG_ENV_VAR, "").strip()
    return Path(raw).expanduser() if raw else workspace_root / "audit.log"


def audit(workspace_root: Path, user: str, action: str, what: str = "") -> None:
    """Append one line to the audit log.

    Raises
    ------
    ValueError
        For an action not in :data:`ACTIONS`.
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; allowed: {list(ACTIONS)}")
    line = json.dumps(
        {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "user": user,
            "action": action,
            "what": what,
        },
        ensure_ascii=False,
    )
    path = audit_log_path(workspace_root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, open(path, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def sign_in_token(claims: Mapping[str, object] | None = None, cookie: str | None = None) -> str:
    """What tells one sign-in from the next (not who signed in).

    OpenID Connect: the identity token's ``iat`` (issued at) and ``nonce`` claims, new at every
    sign-in. Behind a proxy: a digest of the proxy's session cookie (new at every sign-in at the
    proxy). Empty when neither is known: then the first visit since the server started counts.
    """
    if claims:
        parts = [str(claims.get(k, "")) for k in ("iat", "nonce")]
        if any(parts):
            return "oidc:" + ":".join(parts)
    if cookie:
        return "cookie:" + hashlib.sha256(cookie.encode()).hexdigest()[:16]
    return ""


class SignIns:
    """The sign-ins a server has seen, so each gets one audit line.

    A signed-in user's reruns, page switches and new tabs carry the same sign-in (the same
    :func:`sign_in_token`): only the first of them is a sign-in. Thread-safe; keeps the last
    ``size`` sign-ins.
    """

    def __init__(self, size: int = 10_000) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def first(self, user_id: str, token: str) -> bool:
        """Whether this is the first time the server sees this sign-in of ``user_id``."""
        key = (user_id, token)
        with self._lock:
            if key in self._seen:
                self._seen.move_to_end(key)
                return False
            self._seen[key] = None
            while len(self._seen) > self._size:
                self._seen.popitem(last=False)
            return True

    def forget(self, user_id: str) -> None:
        """``user_id`` signed out: their next visit is a new sign-in."""
        with self._lock:
            for key in [k for k in self._seen if k[0] == user_id]:
                del self._seen[key]
