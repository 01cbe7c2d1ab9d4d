"""One engine behind every front door: the same question gets the same answer everywhere.

The same spec (Liechtenstein, 3 in-house workshops, a customer file with one bad row) goes
through the library (``planner.run`` and the in-house row of ``planner.compare``), ``planner run``
with flags, ``planner run SCENARIO.toml`` and the in-house row of ``planner compare``. Every path
must give the same sites (ids and coordinates), the same per-customer travel times (hence the
same objective) and the same warning for the bad row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import planner
from planner import cli

pytestmark = pytest.mark.slow

REGION = "liechtenstein"
WORKSHOPS = 3


@pytest.fixture(scope="module")
def bad_customers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    demo = planner.load_demo_customers(REGION).head(300)
    rows = demo[["customer_id", "lat", "lon", "weight", "segment"]].rename(
        columns={"customer_id": "id"}
    )
    text = rows.to_csv(index=False) + "BAD1,not-a-latitude,9.52,1,private\n"
    path = tmp_path_factory.mktemp("inputs") / "my_customers.csv"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def spec(bad_customers: Path) -> planner.ScenarioSpec:
    return planner.ScenarioSpec(
        name="same question", region=REGION, workshops=WORKSHOPS, customers=bad_customers
    )


@pytest.fixture(scope="module")
def library(spec: planner.ScenarioSpec) -> planner.LayoutResult:
    return planner.run(spec)


def _bad_row_warning(warnings: tuple[str, ...] | list[str]) -> str:
    found = [w for w in warnings if "my_customers.csv" in w and "left out" in w]
    assert len(found) == 1, warnings
    return found[0]


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return [line.removeprefix("warning: ") for line in captured.err.splitlines()]


def _assert_same_sites(shortlist: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert shortlist["site_id"].astype(str).tolist() == expected["site_id"].astype(str).tolist()
    np.testing.assert_allclose(shortlist["lat"], expected["lat"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(shortlist["lon"], expected["lon"], rtol=0, atol=1e-9)


def _assert_same_travel(frame: pd.DataFrame, expected: planner.LayoutResult) -> None:
    got = frame.set_index(frame["customer_id"].astype(str))["travel_min"]
    want = expected.assignments().set_index(expected.assignments()["customer_id"].astype(str))[
        "travel_min"
    ]
    pd.testing.assert_series_equal(
        got.sort_index(), want.sort_index(), check_names=False, rtol=1e-12
    )


def test_library_result_names_the_bad_row(library: planner.LayoutResult) -> None:
    warning = _bad_row_warning(library.warnings)
    assert warning.startswith("1 customer row of ")
    assert len(library.customers) == 300
    assert len(library.sites) == WORKSHOPS


def test_cli_flags_toml_and_compare_give_the_library_answer(
    spec: planner.ScenarioSpec,
    library: planner.LayoutResult,
    bad_customers: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expected_sites = library.shortlist()
    expected_warning = _bad_row_warning(library.warnings)

    flags = tmp_path / "flags"
    err = _cli(
        [
            "run",
            "--region",
            REGION,
            "--workshops",
            str(WORKSHOPS),
            "--customers",
            str(bad_customers),
            "--out",
            str(flags),
        ],
        capsys,
    )
    assert _bad_row_warning(err) == expected_warning

    toml = planner.save_scenario(spec, tmp_path / "scenario" / "same.toml")
    from_file = tmp_path / "toml"
    err = _cli(["run", str(toml), "--out", str(from_file)], capsys)
    assert _bad_row_warning(err) == expected_warning

    # the two ways of calling `planner run` write the same files, byte for byte
    for name in ("shortlist.csv", "assignments.csv", "territories.csv"):
        assert (flags / name).read_bytes() == (from_file / name).read_bytes(), name
    shortlist = pd.read_csv(flags / "shortlist.csv", dtype={"site_id": str})
    _assert_same_sites(shortlist, expected_sites)
    _assert_same_travel(pd.read_csv(flags / "assignments.csv", dtype={"customer_id": str}), library)

    compared = tmp_path / "compare"
    err = _cli(
        [
            "compare",
            "--region",
            REGION,
            "--workshops",
            str(WORKSHOPS),
            "--customers",
            str(bad_customers),
            "--layouts",
            "in-house,outsourced",
            "--out",
            str(compared),
        ],
        capsys,
    )
    assert _bad_row_warning(err) == expected_warning
    in_house = pd.read_csv(compared / "shortlist_in-house.csv", dtype={"site_id": str})
    _assert_same_sites(in_house, expected_sites)
    territories = pd.read_csv(compared / "territories_in-house.csv", dtype={"customer_id": str})
    _assert_same_travel(territories, library)


def test_library_compare_in_house_row_is_run(
    spec: planner.ScenarioSpec, library: planner.LayoutResult
) -> None:
    comparison = planner.compare(spec, layouts=["in-house", "two-tier"])
    row = comparison.results["in-house"]
    _assert_same_sites(row.shortlist(), library.shortlist())
    assert row.solution.objective == library.solution.objective
    assert row.kpis["mean_travel_min"] == library.kpis["mean_travel_min"]
    assert _bad_row_warning(row.warnings) == _bad_row_warning(library.warnings)
    assert _bad_row_warning(comparison.results["two-tier"].warnings)


def test_uploaded_file_gives_the_same_answer_and_warning(
    spec: planner.ScenarioSpec, library: planner.LayoutResult, bad_customers: Path
) -> None:
    import io

    upload = io.BytesIO(bad_customers.read_bytes())
    upload.name = "my_customers.csv"
    result = planner.run(spec.replace(customers=None), customers=upload)
    _assert_same_sites(result.shortlist(), library.shortlist())
    assert result.solution.objective == library.solution.objective
    assert _bad_row_warning(result.warnings).startswith("1 customer row of my_customers.csv")


def test_keep_two_existing_workshops_and_find_three_more(
    bad_customers: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = planner.read_customers(bad_customers).valid
    first, second = customers.iloc[10], customers.iloc[200]
    sites = tmp_path / "my_workshops.csv"
    sites.write_text(
        "id,name,lat,lon,kind,status\n"
        f"W1,Main street shop,{first.lat},{first.lon},workshop,existing\n"
        f"W2,Station shop,{second.lat},{second.lon},workshop,existing\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    _cli(
        [
            "run",
            "--region",
            REGION,
            "--customers",
            str(bad_customers),
            "--sites",
            str(sites),
            "--workshops",
            "5",
            "--out",
            str(out),
        ],
        capsys,
    )
    shortlist = pd.read_csv(out / "shortlist.csv", dtype={"site_id": str})
    assert len(shortlist) == 5
    assert {"W1", "W2"} <= set(shortlist["site_id"])
    status = dict(zip(shortlist["site_id"], shortlist["status"], strict=True))
    assert status["W1"] == status["W2"] == "existing"
    assert sorted(status.values()).count("candidate") == 3

    # switched off, the two existing workshops are all there is
    spec = planner.ScenarioSpec(
        region=REGION,
        customers=bad_customers,
        sites=sites,
        workshops=5,
        generate_candidates=False,
    )
    only_two = planner.run(spec)
    assert sorted(only_two.sites["site_id"]) == ["W1", "W2"]
    assert any("5 workshops were asked for, but only 2" in w for w in only_two.warnings)
