"""``planner regions list|download`` and ``planner run|compare --region ID`` with a catalog id,
``--bbox`` and ``--margin-km``, against a loopback download server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from planner.cli import main
from tests._regions_server import RegionServer, closed_port_url, region_server

REPO = Path(__file__).resolve().parent.parent
MALTA_CUSTOMERS = REPO / "data" / "demo" / "malta_customers.csv"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RegionServer]:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    with region_server() as state:
        monkeypatch.setenv("PLANNER_DOWNLOAD_URL", state.url)
        yield state


def _customers(tmp_path: Path, *, east_of: float, n: int) -> Path:
    frame = pd.read_csv(MALTA_CUSTOMERS)
    frame = frame[frame["lon"] > east_of].head(n)
    path = tmp_path / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def test_regions_list_and_search(server: RegionServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regions", "list"]) == 0
    out = capsys.readouterr().out
    assert "europe/malta" in out
    assert "north-america/us/georgia" in out
    assert "andorra" in out  # bundled
    assert "fetched" in out
    assert "© OpenStreetMap contributors" in out
    assert main(["regions", "list", "--search", "liech"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:1] == ["liechtenstein"]
    assert lines[0].rstrip().endswith("bundled")
    assert lines[1].split()[:1] == ["europe/liechtenstein"]
    assert not any("malta" in line for line in lines)


def test_regions_list_offline_in_seconds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    monkeypatch.setenv("PLANNER_DOWNLOAD_URL", closed_port_url())
    started = time.perf_counter()
    assert main(["regions", "list"]) == 0
    assert time.perf_counter() - started < 5.0
    out = capsys.readouterr().out
    assert "malta" in out  # what is on disk
    notes = [line for line in out.splitlines() if line.startswith("No region catalog")]
    assert len(notes) == 1
    assert "planner regions list" in notes[0]


def test_regions_download_once(server: RegionServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regions", "download", "malta"]) == 0
    captured = capsys.readouterr()
    assert "downloaded: europe/malta ->" in captured.out
    assert "Downloading malta-latest.osm.pbf" in captured.err
    assert main(["regions", "download", "europe/malta"]) == 0
    assert "already downloaded: europe/malta" in capsys.readouterr().out
    assert len(server.gets("/europe/malta-latest.osm.pbf")) == 1
    assert main(["regions", "download", "georgia"]) == 2
    err = capsys.readouterr().err
    assert "ambiguous" in err
    assert "europe/georgia" in err
    assert "north-america/us/georgia" in err
    assert main(["regions", "download", "asia/armenia"]) == 2
    assert "HTTP 404" in capsys.readouterr().err


@pytest.mark.slow
def test_run_with_a_catalog_id_downloads_and_trims(
    server: RegionServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PLANNER_ARRAY_LOADER_MB", "1")  # the country-extract path
    customers = _customers(tmp_path, east_of=14.48, n=300)
    out = tmp_path / "out"
    args = ["run", "--region", "europe/malta", "--customers", str(customers)]
    args += ["--workshops", "2", "--margin-km", "5", "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "Downloading malta-latest.osm.pbf" in captured.err
    kept = [line for line in captured.out.splitlines() if line.startswith("Kept the roads of")]
    assert len(kept) == 1
    assert (
        "km2 around your 300 customers (+5 km), from malta-latest.osm.pbf of 2018-08-27"
        in (kept[0])
    )
    assert len(pd.read_csv(out / "shortlist.csv")) == 2
    assert len(server.gets("/europe/malta-latest.osm.pbf")) == 1
    # a box, through `planner compare`: the file is on disk, no second download
    out2 = tmp_path / "out2"
    args = ["compare", "--region", "europe/malta", "--customers", str(customers)]
    args += ["--layouts", "in-house", "--workshops", "2", "--out", str(out2)]
    args += ["--bbox", "14.42,35.80,14.60,36.00"]
    assert main(args) == 0
    out_text = capsys.readouterr().out
    assert "Kept the roads of 361 km2 in the box 14.42,35.8,14.6,36, from malta-latest" in out_text
    assert (out2 / "comparison.csv").exists()
    assert len(server.gets("/europe/malta-latest.osm.pbf")) == 1


def test_customers_elsewhere_name_the_region_that_holds_them(
    server: RegionServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = _customers(tmp_path, east_of=14.3, n=50)
    args = ["run", "--region", "europe/liechtenstein", "--customers", str(customers)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "50 of the 50 customers" in err
    assert "lie outside Liechtenstein (europe/liechtenstein)" in err
    assert "run with --region europe/malta" in err
    # checked before any road is read: nothing was downloaded
    assert server.gets("/europe/liechtenstein-latest.osm.pbf") == [None]


def test_a_scenario_file_with_a_catalog_id_downloads_like_the_flag(
    server: RegionServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = _customers(tmp_path, east_of=14.48, n=120)
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(
        f'name = "from the catalog"\nregion = "europe/malta"\nworkshops = 2\n'
        f"customers = {str(customers)!r}\nmargin_km = 5.0\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    assert main(["run", str(scenario), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Downloading malta-latest.osm.pbf" in captured.err
    assert "around your 120 customers (+5 km), from malta-latest.osm.pbf" in captured.out
    assert len(pd.read_csv(out / "shortlist.csv")) == 2
    # the flag and the file give the same plan, and the extract is fetched once
    out2 = tmp_path / "out2"
    args = ["run", "--region", "europe/malta", "--customers", str(customers)]
    assert main([*args, "--workshops", "2", "--margin-km", "5", "--out", str(out2)]) == 0
    capsys.readouterr()
    assert (
        pd.read_csv(out / "shortlist.csv")["site_id"].tolist()
        == pd.read_csv(out2 / "shortlist.csv")["site_id"].tolist()
    )
    assert len(server.gets("/europe/malta-latest.osm.pbf")) == 1
