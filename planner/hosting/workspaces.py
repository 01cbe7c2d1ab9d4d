"""Private workspaces: each user's own saved scenarios and uploads, and team folders.

Under the workspace folder (``$PLANNER_WORKSPACE_DIR``, see
:func:`planner.engine.workspace.workspace_dir`)::

    WORKSPACE/
      users/<safe id>/            one user's saved scenarios (see planner.engine.workspace)
      users/<safe id>/uploads/<session>/   files uploaded by a session not yet saved
      teams/<team>/               scenarios shared on purpose by the members of a team
      audit.log                   who saved, opened, deleted, exported what, and when

Without sign-in (one person on this machine) the workspace folder itself is that person's,
as before. Teams come from ``$PLANNER_TEAMS`` (``sales=ann@x.com,bob@x.com;ops=cyd@x.com``, or
the path of a TOML file with a ``[teams]`` table of lists) or else ``WORKSPACE/teams.toml``.

A user reaches a scenario only through :class:`Workspace`, by the key of one of their own
spaces (``"me"`` or ``"team:<name>"``) and a scenario's folder name as
:func:`~planner.engine.workspace.scenario_slug` makes it: ``../``, absolute paths, encoded
names, symbolic links and other users' folders are refused with :class:`AccessDenied`.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from planner.engine import workspace as ws
from planner.engine.spec import ScenarioSpec
from planner.errors import PlannerError
from planner.hosting.audit import audit
from planner.hosting.users import User

__all__ = [
    "TEAMS_ENV_VAR",
    "AccessDenied",
    "Space",
    "UploadJanitor",
    "Workspace",
    "clean_leftovers",
    "read_teams",
]

logger = logging.getLogger(__name__)

TEAMS_ENV_VAR = "PLANNER_TEAMS"
USERS_DIR = "users"
TEAMS_DIR = "teams"
UPLOADS_DIR = "uploads"
#: A scenario folder's name, exactly as ``scenario_slug`` makes it.
SCENARIO_NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?")
TEAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,59}")
#: Folder names inside a workspace that are never scenarios.
RESERVED = frozenset({USERS_DIR, TEAMS_DIR, UPLOADS_DIR, "roads"})


class AccessDenied(PlannerError, PermissionError):
    """A scenario or folder that is not the user's to see."""


def _parse_teams_text(raw: str, source: str) -> dict[str, frozenset[str]]:
    teams: dict[str, frozenset[str]] = {}
    for part in filter(None, (p.strip() for p in raw.split(";"))):
        name, sep, members = part.partition("=")
        if not sep:
            raise ValueError(f"{source}: {part!r} is not team=user,user")
        teams[name.strip()] = frozenset(m.strip().lower() for m in members.split(",") if m.strip())
    return teams


def _parse_teams_file(path: Path) -> dict[str, frozenset[str]]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    table = data.get("teams", {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [teams] must be a table of team = [users]")
    out: dict[str, frozenset[str]] = {}
    for name, members in table.items():
        if not isinstance(members, list):
            raise ValueError(f"{path}: teams.{name} must be a list of user e-mails")
        out[str(name)] = frozenset(str(m).strip().lower() for m in members)
    return out


def read_teams(root: Path, environ: Mapping[str, str] | None = None) -> dict[str, frozenset[str]]:
    """Which users share which team folder: ``{team: {user ids}}`` (ids lower-cased).

    Raises
    ------
    ValueError
        For a malformed setting or a team name that cannot be a folder name.
    """
    env = os.environ if environ is None else environ
    raw = env.get(TEAMS_ENV_VAR, "").strip()
    if raw and "=" not in raw:
        teams = _parse_teams_file(Path(raw).expanduser())
    elif raw:
        teams = _parse_teams_text(raw, TEAMS_ENV_VAR)
    elif (root / "teams.toml").is_file():
        teams = _parse_teams_file(root / "teams.toml")
    else:
        teams = {}
    for name in teams:
        if not TEAM_NAME.fullmatch(name):
            raise ValueError(f"team name {name!r}: use letters, digits, spaces, _ and - (up to 60)")
    return teams


@dataclass(frozen=True)
class Space:
    """A folder of scenarios a user may use: their own (``"me"``) or a team's."""

    key: str
    label: str
    root: Path


class Workspace:
    """One user's view of the workspace folder: their spaces, scenarios and uploads.

    Parameters
    ----------
    user
        Who is asking.
    root
        The workspace folder (default :func:`planner.engine.workspace.workspace_dir`).
    private
        True (signed-in users): the user's own space is ``users/<safe id>/``. False (no
        sign-in, one person): it is the workspace folder itself.
    teams
        ``{team: user ids}`` (default :func:`read_teams`).
    """

    def __init__(
        self,
        user: User,
        root: Path | None = None,
        *,
        private: bool = True,
        teams: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        self.user = user
        self.root = (root if root is not None else ws.workspace_dir()).resolve()
        self.private = private
        all_teams = read_teams(self.root) if teams is None else teams
        me = user.id.strip().lower()
        self.teams = sorted(name for name, members in all_teams.items() if me in members)

    # -- spaces ---------------------------------------------------------------------------

    @property
    def home(self) -> Path:
        """The user's own folder (created)."""
        folder = self.root / USERS_DIR / self.user.folder if self.private else self.root
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder

    @property
    def spaces(self) -> list[Space]:
        """The user's own space first, then their teams'."""
        out = [Space("me", "My scenarios", self.home)]
        for team in self.teams:
            folder = self.root / TEAMS_DIR / team
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            out.append(Space(f"team:{team}", f"Team {team}", folder))
        return out

    def space(self, key: str) -> Space:
        """The space of ``key``, if it is this user's.

        Raises
        ------
        AccessDenied
            For any other key.
        """
        for space in self.spaces:
            if space.key == key:
                return space
        raise AccessDenied(f"{key!r} is not one of your folders")

    def scenario_folder(self, space: str, name: str) -> Path:
        """The folder of the saved scenario ``name`` in the user's ``space``.

        Raises
        ------
        AccessDenied
            When ``name`` is not a plain scenario name, leads out of the space (``..``, ``/``,
            encoded characters, a symbolic link) or is not the user's.
        """
        base = self.space(space).root
        if not isinstance(name, str) or not SCENARIO_NAME.fullmatch(name) or name in RESERVED:
            raise AccessDenied(f"{name!r} is not the name of a saved scenario")
        folder = base / name
        if folder.is_symlink() or folder.resolve().parent != base.resolve():
            raise AccessDenied(f"{name!r} is not a scenario of yours")
        if not (folder / ws.SCENARIO_FILE).is_file():
            raise AccessDenied(f"no saved scenario {name!r} in your folder")
        return folder

    # -- scenarios ------------------------------------------------------------------------

    def list_scenarios(self) -> list[tuple[str, str]]:
        """``(space key, scenario name)`` of every scenario the user may open."""
        out: list[tuple[str, str]] = []
        for space in self.spaces:
            for name in ws.list_saved_scenarios(space.root):
                if name in RESERVED or not SCENARIO_NAME.fullmatch(name):
                    continue
                if (space.root / name).is_symlink():
                    continue
                out.append((space.key, name))
        return out

    def open(self, space: str, name: str) -> ws.SavedScenario:
        """Reopen a saved scenario (its files may lie only inside its space)."""
        folder = self.scenario_folder(space, name)
        saved = ws.open_saved_scenario(folder, workspace=self.space(space).root)
        self._audit("open", f"{space}/{name}")
        return saved

    def save(
        self,
        spec: ScenarioSpec,
        inputs: Mapping[str, ws.InputFile] | None = None,
        *,
        space: str = "me",
        overwrite: bool = False,
    ) -> Path:
        """Save a scenario (and its input files) in one of the user's spaces; see
        :func:`planner.engine.workspace.save_to_workspace`."""
        root = self.space(space).root
        name = ws.scenario_slug(spec.name)
        if name in RESERVED:
            raise AccessDenied(f"{name!r} is a reserved name; choose another scenario name")
        path = ws.save_to_workspace(spec, inputs, workspace=root, overwrite=overwrite)
        self._audit("save", f"{space}/{name}")
        return path

    def delete(self, space: str, name: str) -> None:
        """Delete a saved scenario and all its files."""
        folder = self.scenario_folder(space, name)
        trash = folder.with_name(f".deleting-{name}-{time.monotonic_ns()}")
        folder.rename(trash)  # atomic: the scenario is gone from every list at once
        shutil.rmtree(trash)
        self._audit("delete", f"{space}/{name}")

    def bundle(self, space: str, name: str) -> bytes:
        """A saved scenario as a downloadable ``.zip`` bundle."""
        saved = ws.open_saved_scenario(
            self.scenario_folder(space, name), workspace=self.space(space).root
        )
        data = ws.bundle_bytes(saved.spec, saved.inputs)
        self._audit("export", f"{space}/{name} bundle")
        return data

    def open_bundle(self, data: bytes, name: str) -> ws.SavedScenario:
        """Unpack an uploaded bundle into the user's own space and reopen it."""
        saved = ws.open_bundle(data, name=name, workspace=self.home)
        self._audit("open", f"me/{saved.folder.name} (uploaded)")
        return saved

    # -- uploads and the log --------------------------------------------------------------

    def uploads_dir(self, session: str) -> Path:
        """Folder for files a session uploads (deleted when the session ends)."""
        safe = re.sub(r"[^A-Za-z0-9-]", "_", session)[:64] or "session"
        folder = self.home / UPLOADS_DIR / safe
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        return folder

    def _audit(self, action: str, what: str) -> None:
        audit(self.root, self.user.id, action, what)


def clean_leftovers(root: Path) -> list[Path]:
    """Remove what a stopped server left: session uploads and half-written scenario folders
    (hidden staging folders). Call at server start; returns the paths removed."""
    removed: list[Path] = []
    homes = [root, *(p for p in (root / USERS_DIR).glob("*") if p.is_dir())]
    homes += [p for p in (root / TEAMS_DIR).glob("*") if p.is_dir()]
    for home in homes:
        if home.is_symlink():
            continue
        candidates = [home / UPLOADS_DIR] + [
            p for p in home.glob(".*") if p.is_dir() and not p.is_symlink()
        ]
        for path in candidates:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


class UploadJanitor:
    """Deletes a session's upload folder once its page has been closed for ``grace_s``."""

    def __init__(self, *, grace_s: float = 5.0, watch_s: float = 1.0) -> None:
        self.grace_s = grace_s
        self.watch_s = watch_s
        self._lock = threading.Lock()
        self._folders: dict[Path, tuple[Callable[[], bool], float | None]] = {}
        self._thread: threading.Thread | None = None

    def register(self, folder: Path, alive: Callable[[], bool]) -> None:
        """Watch ``folder``: it goes when ``alive()`` has said False for ``grace_s``."""
        with self._lock:
            self._folders[folder] = (alive, None)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="planner-uploads", daemon=True
                )
                self._thread.start()

    def sweep(self) -> list[Path]:
        """One look: delete the folders of sessions gone for ``grace_s``; returns them."""
        now = time.monotonic()
        gone: list[Path] = []
        with self._lock:
            items = list(self._folders.items())
        for folder, (alive, first_seen_gone) in items:
            try:
                ok = bool(alive())
            except Exception:
                ok = False
            with self._lock:
                if ok:
                    self._folders[folder] = (alive, None)
                    continue
                since = now if first_seen_gone is None else first_seen_gone
                self._folders[folder] = (alive, since)
                if now - since < self.grace_s:
                    continue
                del self._folders[folder]
            shutil.rmtree(folder, ignore_errors=True)
            gone.append(folder)
        return gone

    def _run(self) -> None:
        while True:
            time.sleep(self.watch_s)
            self.sweep()
            with self._lock:
                if not self._folders:
                    self._thread = None
                    return
