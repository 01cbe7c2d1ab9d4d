"""Scenario workspaces: save, reopen, bundles, and the files a reopened scenario may read."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from planner.engine import ScenarioSpec
from planner.engine.workspace import (
    SCENARIO_FILE,
    InputFile,
    bundle_bytes,
    check_paths_inside,
    list_saved_scenarios,
    open_bundle,
    open_saved_scenario,
    problem_summary,
    region_hint,
    save_to_workspace,
    scenario_slug,
    workspace_dir,
)
from planner.errors import InputError
from planner.inputs.customers import read_customers
from planner.outputs.export import bad_rows_csv
from planner.results.costs import CostParameters

CUSTOMERS = b"id,lat,lon,weight\nA,35.90,14.45,2\nB,35.88,14.50,1\n"
SITES = b"name,lat,lon,status\nOwn 1,35.89,14.47,existing\nOwn 2,35.92,14.40,existing\n"


def _spec() -> ScenarioSpec:
    return ScenarioSpec(
        name="Keep 2, add 3",
        region="malta",
        workshops=5,
        parameters=CostParameters().replace(partner_fee_per_job_eur=123.0),
        service_standard_min={"default": 25.0, "business": 15.0},
    )


def _inputs() -> dict[str, InputFile]:
    return {
        "customers": InputFile("my customers.csv", CUSTOMERS),
        "sites": InputFile("existing.csv", SITES),
    }


def test_save_and_reopen_round_trips_spec_and_input_bytes(tmp_path: Path) -> None:
    toml = save_to_workspace(_spec(), _inputs(), workspace=tmp_path)
    assert toml == tmp_path.resolve() / "keep-2-add-3" / SCENARIO_FILE
    text = toml.read_text()
    assert 'customers = "inputs/my customers.csv"' in text  # relative: the folder can move
    assert list_saved_scenarios(tmp_path) == ["keep-2-add-3"]

    saved = open_saved_scenario("keep-2-add-3", workspace=tmp_path)
    assert saved.inputs["customers"].data == CUSTOMERS
    assert saved.inputs["sites"].data == SITES
    assert saved.inputs["customers"].name == "my customers.csv"
    expected = _spec().replace(customers=saved.spec.customers, sites=saved.spec.sites)
    assert saved.spec == expected
    assert saved.spec.customers == toml.parent / "inputs" / "my customers.csv"


def test_save_never_overwrites_without_asking(tmp_path: Path) -> None:
    save_to_workspace(_spec(), _inputs(), workspace=tmp_path)
    with pytest.raises(FileExistsError, match="already saved"):
        save_to_workspace(_spec().replace(workshops=2), _inputs(), workspace=tmp_path)
    assert open_saved_scenario("keep-2-add-3", workspace=tmp_path).spec.workshops == 5
    save_to_workspace(_spec().replace(workshops=2), {}, workspace=tmp_path, overwrite=True)
    reopened = open_saved_scenario("keep-2-add-3", workspace=tmp_path)
    assert reopened.spec.workshops == 2
    assert reopened.inputs == {}  # the replaced scenario's inputs are gone, not mixed in


def test_bundle_round_trip_into_a_new_folder(tmp_path: Path) -> None:
    data = bundle_bytes(_spec(), _inputs())
    names = sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())
    assert names == ["inputs/existing.csv", "inputs/my customers.csv", SCENARIO_FILE]
    first = open_bundle(data, name="keep.zip", workspace=tmp_path)
    second = open_bundle(data, name="keep.zip", workspace=tmp_path)
    assert first.folder != second.folder  # never unpacked over an earlier one
    assert first.inputs == second.inputs == dict(_inputs().items())
    assert first.spec.workshops == 5
    assert first.spec.parameters.partner_fee_per_job_eur == 123.0


def test_bundle_rejects_paths_outside_it(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    secret = tmp_path / "secret.csv"
    secret.write_bytes(CUSTOMERS)
    for value in (str(secret), "../../secret.csv"):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            zf.writestr(SCENARIO_FILE, f'region = "malta"\ncustomers = "{value}"\n')
        with pytest.raises(InputError, match="outside the scenario bundle") as err:
            open_bundle(buffer.getvalue(), name="evil.zip", workspace=workspace)
        assert "evil.zip" in str(err.value)
        assert "customers" in str(err.value)
    # a road file named by absolute path is rejected the same way
    with pytest.raises(InputError, match="region ="):
        open_bundle(b'region = "/etc/roads.osm.pbf"\n', name="s.toml", workspace=workspace)
    assert list(workspace.iterdir()) == []  # nothing left behind


def test_bundle_rejects_zip_slip_and_junk(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr(SCENARIO_FILE, 'region = "malta"\n')
        zf.writestr("../escape.csv", "x")
    with pytest.raises(InputError, match="points outside it"):
        open_bundle(buffer.getvalue(), name="slip.zip", workspace=tmp_path)
    assert not (tmp_path.parent / "escape.csv").exists()
    with pytest.raises(InputError, match="not a scenario bundle"):
        open_bundle(b"PK-not-a-zip", name="x.zip", workspace=tmp_path)
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(InputError, match=r"has no scenario\.toml"):
        open_bundle(empty.getvalue(), name="e.zip", workspace=tmp_path)


def test_check_paths_inside_resolves_symlinks(tmp_path: Path) -> None:
    inside = tmp_path / "ws"
    inside.mkdir()
    outside = tmp_path / "outside.csv"
    outside.write_bytes(CUSTOMERS)
    link = inside / "link.csv"
    link.symlink_to(outside)
    with pytest.raises(InputError, match="outside"):
        check_paths_inside(ScenarioSpec(customers=link), [inside], source="s.toml")
    ok = inside / "ok.csv"
    ok.write_bytes(CUSTOMERS)
    check_paths_inside(ScenarioSpec(customers=ok, region="malta"), [inside], source="s.toml")


def test_workspace_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANNER_WORKSPACE_DIR", str(tmp_path / "w"))
    assert workspace_dir() == (tmp_path / "w").resolve()
    assert (tmp_path / "w").is_dir()
    assert scenario_slug("Malta: 5 workshops!") == "malta-5-workshops"
    assert InputFile("../../etc/passwd", b"").name == "passwd"


def test_region_hints() -> None:
    in_malta = InputFile("c.csv", CUSTOMERS)
    assert region_hint(in_malta, "malta") is None
    wrong = region_hint(in_malta, "andorra")
    assert wrong is not None
    assert "2 of 2 located rows of c.csv are in Malta" in wrong
    gozo = InputFile("g.csv", b"id,lat,lon\nG1,36.04,14.24\nG2,35.90,14.45\n")
    hint = region_hint(gozo, "malta")
    assert hint is not None
    assert "1 located rows" in hint
    assert "Gozo" in hint
    addresses = InputFile("a.csv", b"id,address\n1,Republic Street Valletta\n")
    hint = region_hint(addresses, "malta")
    assert hint is not None
    assert "addresses but no coordinates" in hint
    far = InputFile("f.csv", b"id,lat,lon\n1,48.85,2.35\n")
    hint = region_hint(far, "malta")
    assert hint is not None
    assert "none of the 1 located rows" in hint


def test_problem_summary_and_bad_rows_download(tmp_path: Path) -> None:
    raw = (
        b"id,lat,lon,weight\nA,35.90,14.45,2\nB,abc,14.50,1\nC,35.88,14.46,1\nD,,,1\nE,xyz,14.4,1\n"
    )
    upload = InputFile("c.csv", raw)
    table = read_customers(upload.open())
    summary = problem_summary(table.report)
    assert summary["rows"].sum() == len(table.report.problem_rows)
    assert set(summary.columns) == {"problem", "rows", "example_rows", "fix", "severity"}
    bad = pd.read_csv(io.BytesIO(bad_rows_csv(upload, table.report)), dtype=str)
    assert bad["row"].astype(int).tolist() == table.report.problem_rows.tolist()
    assert bad["id"].tolist() == ["B", "D", "E"]
    assert bad["problems"].str.len().gt(0).all()
    assert len(table.valid) + len(bad) == 5  # every row is either used or downloadable
