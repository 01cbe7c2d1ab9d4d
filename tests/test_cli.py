"""Integration tests of ``planner run`` on the bundled Liechtenstein region (small and fast)."""

from __future__ import annotations

import re
import socket
from html import unescape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner import OSM_CREDIT
from planner.cli import main
from planner.inputs.customers import load_demo_customers

pytestmark = pytest.mark.slow


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switch networking off: any attempt to open a connection fails at once."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "out"
    code = main(["run", "--region", "liechtenstein", "--workshops", "3", "--out", str(out)])
    assert code == 0
    return out


def test_run_writes_shortlist_with_contract_columns(run_dir: Path) -> None:
    shortlist = pd.read_csv(run_dir / "shortlist.csv")
    # the contract columns come first, in this order; later columns are additions
    assert list(shortlist.columns)[:9] == [
        "site_id",
        "role",
        "name",
        "lat",
        "lon",
        "customers",
        "demand_share",
        "mean_travel_min",
        "max_travel_min",
    ]
    assert len(shortlist) == 3
    assert shortlist["site_id"].is_unique
    assert set(shortlist["role"]) == {"workshop"}
    assert shortlist["demand_share"].sum() == pytest.approx(1.0)


def test_assignments_agree_with_shortlist(run_dir: Path) -> None:
    shortlist = pd.read_csv(run_dir / "shortlist.csv", dtype={"site_id": str})
    assignments = pd.read_csv(run_dir / "assignments.csv", dtype={"site_id": str})
    customers = load_demo_customers("liechtenstein")
    assert list(assignments.columns) == ["customer_id", "site_id", "travel_min"]
    assert len(assignments) == len(customers)
    assert set(assignments["site_id"]) == set(shortlist["site_id"])
    merged = assignments.merge(
        customers[["customer_id", "weight"]].astype({"customer_id": assignments.customer_id.dtype}),
        on="customer_id",
    )
    for _, site in shortlist.iterrows():
        mine = merged[merged["site_id"] == site["site_id"]]
        assert len(mine) == site["customers"]
        mean = np.average(mine["travel_min"], weights=mine["weight"])
        assert mean == pytest.approx(site["mean_travel_min"])
        assert mine["travel_min"].max() == pytest.approx(site["max_travel_min"])


def test_map_is_offline_and_credits_osm(run_dir: Path) -> None:
    html = (run_dir / "map.html").read_text(encoding="utf-8")
    # Leaflet attributions are JSON-encoded in the page; decode them as the browser would.
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), html)
    text = unescape(re.sub(r"<[^>]+>", "", text))
    assert OSM_CREDIT in text
    for cdn in ("cdn.jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com", "unpkg.com"):
        assert cdn not in html


def test_run_refuses_to_overwrite(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (run_dir / "shortlist.csv").read_bytes()
    code = main(["run", "--region", "liechtenstein", "--workshops", "2", "--out", str(run_dir)])
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (run_dir / "shortlist.csv").read_bytes() == before


def test_run_with_network_switched_off(tmp_path: Path, no_network: None) -> None:
    out = tmp_path / "offline"
    assert main(["run", "--region", "liechtenstein", "--workshops", "2", "--out", str(out)]) == 0
    assert len(pd.read_csv(out / "shortlist.csv")) == 2


def test_run_leaves_bad_rows_out_with_a_visible_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = load_demo_customers("liechtenstein").head(200)
    table = pd.DataFrame(customers[["customer_id", "lat", "lon", "weight", "segment"]])
    table = table.rename(columns={"customer_id": "id"}).astype({"lat": object})
    table.loc[table.index[3], "lat"] = "not a number"
    path = tmp_path / "customers.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "out"
    args = ["run", "--region", "liechtenstein", "--workshops", "2", "--customers", str(path)]
    assert main([*args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 customer row of" in err
    assert "planner validate" in err
    assignments = pd.read_csv(out / "assignments.csv")
    assert len(assignments) == 199
    assert str(table.loc[table.index[3], "id"]) not in set(assignments["customer_id"].astype(str))


def test_validate_and_run_take_the_crs_of_xy_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pyproj import Transformer

    customers = load_demo_customers("liechtenstein").head(60)
    to_utm = Transformer.from_crs(4326, 32632, always_xy=True)
    x, y = to_utm.transform(customers["lon"].to_numpy(), customers["lat"].to_numpy())
    path = tmp_path / "xy.csv"
    table = {"id": customers["customer_id"], "x": x, "y": y, "weight": customers["weight"]}
    pd.DataFrame(table).to_csv(path, index=False)

    assert main(["validate", str(path), "--region", "liechtenstein"]) == 2
    assert "--crs EPSG:" in capsys.readouterr().out
    assert main(["validate", str(path), "--region", "liechtenstein", "--crs", "EPSG:32632"]) == 0
    out = tmp_path / "out"
    args = ["run", "--region", "liechtenstein", "--workshops", "2", "--customers", str(path)]
    assert main([*args, "--crs", "EPSG:32632", "--out", str(out)]) == 0
    assignments = pd.read_csv(out / "assignments.csv", dtype={"customer_id": str})
    assert set(assignments["customer_id"]) == set(customers["customer_id"].astype(str))


def test_run_on_a_saved_graphml_needs_customers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import osmnx as ox

    from planner.roads.network import load_region

    graphml = tmp_path / "li.graphml"
    ox.save_graphml(load_region("liechtenstein"), graphml)
    out = tmp_path / "out"
    assert main(["run", "--region", str(graphml), "--workshops", "2", "--out", str(out)]) == 2
    assert "--customers FILE" in capsys.readouterr().err
    assert not out.exists()

    customers = load_demo_customers("liechtenstein").head(100)
    path = tmp_path / "customers.csv"
    table = customers[["customer_id", "lat", "lon", "weight", "segment"]]
    table.rename(columns={"customer_id": "id"}).to_csv(path, index=False)
    args = ["run", "--region", str(graphml), "--workshops", "2", "--customers", str(path)]
    assert main([*args, "--out", str(out)]) == 0
    assert len(pd.read_csv(out / "assignments.csv")) == 100


def test_geocode_offline_fails_fast_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_network: None
) -> None:
    import time

    path = tmp_path / "addresses.csv"
    path.write_text('id,address,weight\nA1,"Triq San Pawl, Valletta",2\n', encoding="utf-8")
    out = tmp_path / "geocoded.csv"
    started = time.monotonic()
    assert main(["geocode", str(path), "--out", str(out)]) == 2
    assert time.monotonic() - started < 10
    assert "add lat/lon" in capsys.readouterr().err
    assert not out.exists()
    # and validate says how to get coordinates
    assert main(["validate", str(path)]) == 1
    assert "planner geocode" in capsys.readouterr().out
