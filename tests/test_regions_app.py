"""The Data page's region picker (AppTest): search the catalog of a loopback download server,
download a region with progress and plan on it, keep only a box, the "these customers are in
Malta: download Malta?" hint, and the offline picker."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from _apptest import TIMEOUT_S, wait_for_job
from _apptest import ok as _ok
from streamlit.testing.v1 import AppTest

from app_pages import _regions
from tests._regions_server import RegionServer, closed_port_url, region_server

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
MALTA_CUSTOMERS = REPO / "data" / "demo" / "malta_customers.csv"

pytestmark = pytest.mark.slow


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RegionServer]:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PLANNER_WORKSPACE_DIR", str(tmp_path / "workspace"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    _regions._CATALOGS.clear()
    with region_server() as state:
        monkeypatch.setenv("PLANNER_DOWNLOAD_URL", state.url)
        yield state
    _regions._CATALOGS.clear()


def _open(region: str = "liechtenstein") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = region
    return _ok(at.run())


def _button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, [b.label for b in at.button]
    return found[0]


def test_search_download_and_use(server: RegionServer) -> None:
    at = _open()
    at.text_input(key="region_search").input("liech")
    _ok(at.run())
    pick = at.selectbox(key="region_pick")
    assert pick.options[:2] == [
        "Liechtenstein (liechtenstein, 371 kB, bundled)",
        "Liechtenstein (europe/liechtenstein)",
    ]
    pick.set_value("europe/liechtenstein")
    _ok(at.run())
    _button(at, "Download Liechtenstein (3.3 MB)").click()
    _ok(at.run())
    region = at.session_state["region"]
    assert region.endswith("regions/europe/liechtenstein-latest.osm.pbf")
    assert Path(region).is_file()
    assert any("Downloaded Liechtenstein (3.3 MB)" in s.value for s in at.success)
    # the preview loads the downloaded roads (in the background: the roads job); the picker
    # now offers to use it, not download it
    wait_for_job(at, "roads")
    assert not at.error, [e.value for e in at.error]
    infos = [i.value for i in at.info]
    assert "Upload customers for liechtenstein-latest.osm.pbf" in " ".join(infos), infos
    at.selectbox(key="region_pick").set_value("europe/liechtenstein")
    _ok(at.run())
    assert "Use liechtenstein-latest.osm.pbf" in [b.label for b in at.button]
    assert len(server.gets("/europe/liechtenstein-latest.osm.pbf")) == 1


def test_box_keeps_only_its_roads(server: RegionServer) -> None:
    at = _open()
    at.text_input(key="region_bbox").input("9.50,47.10,9.56,47.16")
    _ok(at.run())
    _button(at, "Keep only the roads in this box").click()
    _ok(at.run())
    # the box is the scenario's bbox: the region stays, the engine trims while reading
    assert at.session_state["region"] == "liechtenstein"
    assert at.session_state["area_box"]["bbox"] == [9.5, 47.1, 9.56, 47.16]
    assert any("in the box 9.5,47.1,9.56,47.16" in s.value for s in at.success)
    wait_for_job(at, "roads")
    assert not at.error, [e.value for e in at.error]
    kept = [i.value for i in at.info if i.value.startswith("Kept the roads of ")]
    assert len(kept) == 1, [i.value for i in at.info]
    assert "in the box 9.5,47.1,9.56,47.16, from liechtenstein" in kept[0]
    ways = re.search(r"\(([\d,]+) of ([\d,]+) drivable ways\)", kept[0])
    assert ways is not None, kept[0]
    n_kept, n_read = (int(g.replace(",", "")) for g in ways.groups())
    assert 0 < n_kept < n_read
    # back to the whole region (a bundled one has no customers' area)
    _button(at, "Forget the box").click()
    _ok(at.run())
    assert "area_box" not in at.session_state


def test_customers_elsewhere_offer_their_region(server: RegionServer) -> None:
    at = _open()
    data = pd.read_csv(MALTA_CUSTOMERS).head(80).to_csv(index=False).encode()
    at.file_uploader(key="customers_file").upload("malta.csv", data, "text/csv")
    _ok(at.run())
    warnings = [w.value for w in at.warning]
    assert "These customers are in Malta: download Malta, 3.9 MB?" in warnings, warnings
    _button(at, "Download Malta")  # what it does is the picker's download (tested above)


def test_offline_picker_lists_what_is_on_disk(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PLANNER_WORKSPACE_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("PLANNER_DOWNLOAD_URL", closed_port_url())
    _regions._CATALOGS.clear()
    at = _open()
    started = time.perf_counter()
    at.text_input(key="region_search").input("a")
    _ok(at.run())
    assert time.perf_counter() - started < 30  # a whole page run, the catalog not asked again
    notes = [c.value for c in at.caption if c.value.startswith("No region catalog")]
    assert len(notes) == 1
    assert "planner regions list" in notes[0]
    labels = at.selectbox(key="region_pick").options
    assert "Malta (malta, 1.2 MB, bundled)" in labels
    _regions._CATALOGS.clear()
