"""The Data page's region paths: an uploaded .osm.pbf, a place name offline, address lookup.

Driven headlessly with ``streamlit.testing.v1.AppTest`` (see tests/test_app.py); nothing here
touches the network: "online" tests only check what the page offers.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _apptest import TIMEOUT_S
from _apptest import ok as _ok
from _apptest import wait_for_job as _wait_for_job
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
LON0, LAT0, STEP = 14.40, 35.90, 0.004


pytestmark = pytest.mark.usefixtures("offline_app")


def _open(region: str = "liechtenstein") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = region
    return at


def _grid_pbf(path: Path) -> bytes:
    """A 6 x 6 grid of named streets (400 m apart) as .osm.pbf, with no buildings."""
    import osmium

    writer = osmium.SimpleWriter(str(path))
    ids = {}
    for i in range(6):
        for j in range(6):
            ids[i, j] = 1 + 6 * i + j
            loc = (LON0 + STEP * i, LAT0 + STEP * j)
            writer.add_node(osmium.osm.mutable.Node(id=ids[i, j], location=loc, version=1))
    for i in range(6):
        tags = {"highway": "primary", "name": f"Street {i}"}
        nodes = [ids[i, j] for j in range(6)]
        writer.add_way(osmium.osm.mutable.Way(id=1 + i, nodes=nodes, version=1, tags=tags))
    for j in range(6):
        tags = {"highway": "residential", "name": f"Lane {j}"}
        nodes = [ids[i, j] for i in range(6)]
        writer.add_way(osmium.osm.mutable.Way(id=10 + j, nodes=nodes, version=1, tags=tags))
    writer.close()
    return path.read_bytes()


def test_uploaded_pbf_becomes_the_region_and_is_solved_on(tmp_path: Path) -> None:
    data = _grid_pbf(tmp_path / "grid.osm.pbf")
    at = _ok(_open().run())
    at.file_uploader(key="roads_file").upload("grid.osm.pbf", data, "application/octet-stream")
    _ok(at.run())
    (use,) = [b for b in at.button if b.label == "Use these roads"]
    use.click()
    _wait_for_job(_ok(at.run()), "roads")  # the roads load in the background
    region = at.session_state["region"]
    assert region.endswith("grid.osm.pbf")
    assert Path(region).read_bytes() == data  # kept in the workspace
    assert any("Upload customers for grid.osm.pbf (uploaded roads)" in i.value for i in at.info), [
        i.value for i in at.info
    ]
    rng = np.random.default_rng(1)
    customers = pd.DataFrame(
        {
            "id": [f"c{i}" for i in range(30)],
            "lat": LAT0 + rng.uniform(0, 5 * STEP, 30),
            "lon": LON0 + rng.uniform(0, 5 * STEP, 30),
        }
    ).to_csv(index=False)
    at.file_uploader(key="customers_file").upload("grid.csv", customers.encode(), "text/csv")
    _ok(at.run())
    assert any("30 customers from grid.csv in grid.osm.pbf" in i.value for i in at.info)

    at.switch_page("app_pages/plan.py")
    _ok(at.run())
    at.number_input(key="workshops").set_value(2)
    _ok(at.run())
    (run,) = [b for b in at.button if b.label == "Run"]
    run.click()
    _wait_for_job(_ok(at.run()), "plan")
    entry = at.session_state["plan"]
    result = entry["result"]
    assert entry["spec"].region == region
    assert len(result.sites) == 2
    assert "30 customers" in entry["solved_on"]
    assert "roads of grid.osm.pbf (uploaded roads)" in entry["solved_on"]
    names = {f"Street {i}" for i in range(6)} | {f"Lane {j}" for j in range(6)}
    assert set(result.sites["name"]) <= names
    assert result.kpis["customers"] == 30


def test_place_name_offline_gives_a_clear_message_at_once() -> None:
    at = _open()
    at.session_state["region"] = "Vaduz, Liechtenstein"  # e.g. a reopened scenario
    t0 = time.perf_counter()
    _ok(at.run())
    assert time.perf_counter() - t0 < 60  # no hang on a download
    errors = [e.value for e in at.error]
    assert any(
        "Could not load the roads of **Vaduz, Liechtenstein**" in e
        and "set offline" in e
        and "upload a road file" in e
        for e in errors
    ), errors
    assert not any("planner run" in e for e in errors)  # no CLI command inside the app
    # offline, the page offers no place box and says why the internet switch is off
    assert not [t for t in at.text_input if t.key == "place"]
    assert at.toggle(key="online").disabled


ADDRESSES = "id,address\nA1,Städtle 1 Vaduz\nA2,Landstrasse 10 Schaan\n"


def test_address_only_file_offers_geocoding_only_online(monkeypatch: pytest.MonkeyPatch) -> None:
    from planner.outputs import assets

    monkeypatch.setattr(assets, "check_tiles_reachable", lambda *a, **k: False)
    at = _ok(_open().run())
    at.file_uploader(key="customers_file").upload("addr.csv", ADDRESSES.encode(), "text/csv")
    _ok(at.run())
    assert any("addresses but no coordinates" in w.value for w in at.warning)
    assert not [b for b in at.button if b.label == "Find coordinates"]
    assert any("Turn on **Use the internet**" in c.value for c in at.caption)

    monkeypatch.delenv("PLANNER_OFFLINE")
    _ok(at.run())
    assert not at.toggle(key="online").disabled
    at.toggle(key="online").set_value(True)
    _ok(at.run())
    assert [b.label for b in at.button if b.label == "Find coordinates"] == ["Find coordinates"]
    assert [t.key for t in at.text_input if t.key == "place"] == ["place"]  # place names too
