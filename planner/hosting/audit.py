"""The audit log: one line per sign-in, save, open, delete and export.

Each line is a JSON object with ``time`` (UTC, ISO 8601), ``user``, ``action`` and ``what``
(a scenario's name or an export's kind): who did what and when, never customer data. The log
is ``$PLANNER_AUDIT_LOG``, else ``audit.log`` in the workspace folder.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

__all__ = ["ACTIONS", "AUDIT_LOG_ENV_VAR", "audit", "audit_log_path"]

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
