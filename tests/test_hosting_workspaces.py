"""Private workspaces: a user lists, opens, downloads and overwrites only their own scenarios
(and their teams'), whatever name or path is tried; delete, leftovers and the audit log."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from planner.engine import ScenarioSpec
from planner.engine.workspace import SCENARIO_FILE, InputFile
from planner.hosting.audit import SignIns, sign_in_token
from planner.hosting.users import (
    SignInError,
    User,
    safe_user_id,
    user_from_claims,
    user_from_headers,
)
from planner.hosting.workspaces import (
    AccessDenied,
    UploadJanitor,
    Workspace,
    clean_leftovers,
    read_teams,
)

ANN = User("ann@example.com", "Ann")
BOB = User("bob@example.com", "Bob")
CYD = User("cyd@example.com", "Cyd")
TEAMS = {"sales": frozenset({"ann@example.com", "cyd@example.com"})}
CUSTOMERS = b"id,lat,lon,weight\nA,35.90,14.45,2\n"


def spec(name: str) -> ScenarioSpec:
    return ScenarioSpec(name=name, region="malta", workshops=3)


def spaces(root: Path) -> tuple[Workspace, Workspace, Workspace]:
    return (
        Workspace(ANN, root, teams=TEAMS),
        Workspace(BOB, root, teams=TEAMS),
        Workspace(CYD, root, teams=TEAMS),
    )


def test_each_user_lists_and_opens_only_their_own_scenarios(tmp_path: Path) -> None:
    ann, bob, _cyd = spaces(tmp_path)
    ann.save(spec("Client A"), {"customers": InputFile("a.csv", CUSTOMERS)})
    bob.save(spec("Client B"))
    assert ann.list_scenarios() == [("me", "client-a")]
    assert bob.list_scenarios() == [("me", "client-b")]
    assert ann.open("me", "client-a").inputs["customers"].data == CUSTOMERS
    # Bob asks for Ann's scenario by its name: his own space has no such scenario
    with pytest.raises(AccessDenied):
        bob.open("me", "client-a")
    with pytest.raises(AccessDenied):
        bob.bundle("me", "client-a")
    # same names in two workspaces are two scenarios
    bob.save(spec("Client A").replace(workshops=7))
    assert ann.open("me", "client-a").spec.workshops == 3
    assert bob.open("me", "client-a").spec.workshops == 7


@pytest.mark.parametrize(
    "name",
    [
        "../",
        "..",
        "../client-a",
        "../../users",
        "%2e%2e%2fclient-a",
        "..%2fclient-a",
        "client-a/../../x",
        "/etc",
        "/tmp",
        "users",
        "",
        "Client-A",
        "client-a/",
        "client-a\x00",
    ],
)
def test_crafted_names_are_refused(tmp_path: Path, name: str) -> None:
    ann, bob, _cyd = spaces(tmp_path)
    ann.save(spec("Client A"))
    with pytest.raises(AccessDenied):
        bob.open("me", name)
    with pytest.raises(AccessDenied):
        bob.delete("me", name)
    assert ann.list_scenarios() == [("me", "client-a")]


def test_other_users_folder_and_absolute_paths_are_refused(tmp_path: Path) -> None:
    ann, bob, _cyd = spaces(tmp_path)
    path = ann.save(spec("Client A"))
    folder = path.parent
    for name in (str(folder), folder.name, f"../{ANN.folder}/client-a", ANN.folder):
        with pytest.raises(AccessDenied):
            bob.open("me", name)
    for space in (f"users/{ANN.folder}", "../", str(folder.parent), "team:other", "ann"):
        with pytest.raises(AccessDenied):
            bob.open(space, "client-a")
    assert (folder / SCENARIO_FILE).is_file()


def test_symlinks_to_another_users_scenario_or_file_are_refused(tmp_path: Path) -> None:
    ann, bob, _cyd = spaces(tmp_path)
    secret = ann.save(spec("Client A"), {"customers": InputFile("a.csv", CUSTOMERS)}).parent
    # a link planted in Bob's folder to Ann's scenario folder
    os.symlink(secret, bob.home / "stolen")
    assert bob.list_scenarios() == []
    with pytest.raises(AccessDenied):
        bob.open("me", "stolen")
    # a scenario of Bob's whose input file is a link to Ann's customers
    bob.save(spec("Mine"), {"customers": InputFile("b.csv", b"id,lat,lon\n")})
    target = bob.home / "mine" / "inputs" / "b.csv"
    target.unlink()
    os.symlink(secret / "inputs" / "a.csv", target)
    with pytest.raises(Exception, match="outside"):
        bob.open("me", "mine")


def test_overwrite_only_with_consent_and_only_in_own_space(tmp_path: Path) -> None:
    ann, bob, _cyd = spaces(tmp_path)
    ann.save(spec("Client A"))
    bob.save(spec("Client A").replace(workshops=9))  # his own, not Ann's
    with pytest.raises(FileExistsError):
        ann.save(spec("Client A").replace(workshops=4))
    assert ann.open("me", "client-a").spec.workshops == 3
    with pytest.raises(AccessDenied):
        bob.save(spec("Client A"), space="team:sales", overwrite=True)


def test_team_folder_is_shared_on_purpose(tmp_path: Path) -> None:
    ann, bob, cyd = spaces(tmp_path)
    ann.save(spec("Shared plan"), space="team:sales")
    assert ("team:sales", "shared-plan") in cyd.list_scenarios()
    assert cyd.open("team:sales", "shared-plan").spec.name == "Shared plan"
    assert bob.list_scenarios() == []
    with pytest.raises(AccessDenied):
        bob.open("team:sales", "shared-plan")


def test_delete_removes_the_scenario_and_its_files(tmp_path: Path) -> None:
    ann, _bob, _cyd = spaces(tmp_path)
    folder = ann.save(spec("Client A"), {"customers": InputFile("a.csv", CUSTOMERS)}).parent
    ann.delete("me", "client-a")
    assert not folder.exists()
    assert ann.list_scenarios() == []
    assert not [p for p in ann.home.iterdir() if p.name != "uploads"]
    with pytest.raises(AccessDenied):
        ann.delete("me", "client-a")


def test_audit_log_says_who_did_what_and_when_without_customer_data(tmp_path: Path) -> None:
    ann, _bob, _cyd = spaces(tmp_path)
    ann.save(spec("Client A"), {"customers": InputFile("a.csv", CUSTOMERS)})
    ann.open("me", "client-a")
    ann.bundle("me", "client-a")
    ann.delete("me", "client-a")
    lines = [json.loads(x) for x in (tmp_path / "audit.log").read_text().splitlines()]
    assert [x["action"] for x in lines] == ["save", "open", "export", "delete"]
    assert {x["user"] for x in lines} == {"ann@example.com"}
    assert all(x["time"].endswith("+00:00") for x in lines)
    assert "35.90" not in (tmp_path / "audit.log").read_text()


def test_one_sign_in_is_one_sign_in_however_many_tabs_and_reruns() -> None:
    seen = SignIns()
    first = sign_in_token(claims={"email": "ann@example.com", "iat": 1700000000, "nonce": "a"})
    again = sign_in_token(claims={"email": "ann@example.com", "iat": 1700000000, "nonce": "a"})
    later = sign_in_token(claims={"email": "ann@example.com", "iat": 1700003600, "nonce": "b"})
    assert first == again != later
    # reruns and new tabs carry the same identity token: one sign-in
    assert [seen.first("ann@example.com", t) for t in (first, again, first)] == [
        True,
        False,
        False,
    ]
    assert seen.first("bob@example.com", first)  # another user is another sign-in
    assert seen.first("ann@example.com", later)  # signed in again: a new token
    # behind a proxy: its session cookie tells sign-ins apart, and is not kept as it is
    proxy = sign_in_token(cookie="secret-session-value")
    assert "secret-session-value" not in proxy
    assert seen.first("cyd@example.com", proxy)
    assert not seen.first("cyd@example.com", sign_in_token(cookie="secret-session-value"))
    assert seen.first("cyd@example.com", sign_in_token(cookie="next-session"))
    # nothing to tell sign-ins apart: the first visit since the server started; after Sign
    # out the next visit is a sign-in again
    assert sign_in_token() == ""
    assert seen.first("dan@example.com", "")
    assert not seen.first("dan@example.com", "")
    seen.forget("dan@example.com")
    assert seen.first("dan@example.com", "")


def test_leftovers_of_a_stopped_server_are_removed_saved_scenarios_kept(tmp_path: Path) -> None:
    ann, _bob, _cyd = spaces(tmp_path)
    ann.save(spec("Client A"))
    uploads = ann.uploads_dir("session-1")
    (uploads / "roads.osm.pbf").write_bytes(b"x")
    half = ann.home / ".client-b-abc123"  # a save cut short by a crash
    (half / "inputs").mkdir(parents=True)
    removed = clean_leftovers(tmp_path)
    assert set(removed) >= {ann.home / "uploads", half}
    assert not uploads.exists()
    assert not half.exists()
    assert ann.list_scenarios() == [("me", "client-a")]


def test_uploads_of_a_closed_session_are_deleted(tmp_path: Path) -> None:
    ann, _bob, _cyd = spaces(tmp_path)
    open_, closed = ann.uploads_dir("s-open"), ann.uploads_dir("s-closed")
    janitor = UploadJanitor(grace_s=0.0)
    janitor.register(open_, lambda: True)
    janitor.register(closed, lambda: False)
    assert janitor.sweep() == [closed]
    assert open_.exists()
    assert not closed.exists()


def test_user_ids_become_safe_distinct_folder_names() -> None:
    names = {safe_user_id(x) for x in ("../ann", "ann", "a/nn", "a_nn", "ANN", "/etc/passwd")}
    assert len(names) == 5  # "ann" and "ANN" are one user
    assert all("/" not in n and not n.startswith(".") for n in names)
    with pytest.raises(SignInError):
        safe_user_id(" ")


def test_users_from_sign_in_claims_and_trusted_headers() -> None:
    user = user_from_claims({"email": "ann@example.com", "name": "Ann A", "sub": "1"})
    assert user == User("ann@example.com", "Ann A")
    assert user_from_claims({"sub": "42"}).id == "42"
    assert user_from_headers({"x-forwarded-email": "bob@x.org"}, "X-Forwarded-Email").id == (
        "bob@x.org"
    )
    with pytest.raises(SignInError, match="X-Forwarded-User"):
        user_from_headers({"x-forwarded-email": "bob@x.org"}, "X-Forwarded-User")


def test_teams_from_the_environment_or_a_file(tmp_path: Path) -> None:
    env = {"PLANNER_TEAMS": "sales=Ann@x.com, bob@x.com; ops=cyd@x.com"}
    assert read_teams(tmp_path, env) == {
        "sales": frozenset({"ann@x.com", "bob@x.com"}),
        "ops": frozenset({"cyd@x.com"}),
    }
    (tmp_path / "teams.toml").write_text('[teams]\nsales = ["ann@x.com"]\n')
    assert read_teams(tmp_path, {}) == {"sales": frozenset({"ann@x.com"})}
    with pytest.raises(ValueError, match="team name"):
        read_teams(tmp_path, {"PLANNER_TEAMS": "../x=ann@x.com"})


def test_a_save_that_fails_midway_leaves_the_saved_scenario_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from planner.engine import workspace as engine_ws

    ann, _bob, _cyd = spaces(tmp_path)
    ann.save(spec("Client A"), {"customers": InputFile("a.csv", CUSTOMERS)})

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(engine_ws, "save_scenario", disk_full)
    with pytest.raises(OSError, match="No space"):
        ann.save(spec("Client A").replace(workshops=8), overwrite=True)
    monkeypatch.undo()
    reopened = ann.open("me", "client-a")
    assert reopened.spec.workshops == 3
    assert reopened.inputs["customers"].data == CUSTOMERS
    assert [p.name for p in ann.home.iterdir()] == ["client-a"]
