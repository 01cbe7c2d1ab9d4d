"""The Data page keeps the roads that matter (AppTest, offline): a large road file waits for
the customers and is then trimmed to their extent plus the margin, as ``planner run`` does,
and says so with the library's sentence; a box drawn on the map fills the W,S,E,N field and
is kept through the same button as a typed box."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _apptest import TIMEOUT_S, wait_for_job
from _apptest import ok as _ok
from streamlit.testing.v1 import AppTest

from app_pages import _regions, _shared
from planner.roads.network import load_region
from planner.roads.trim import area_around

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app.py"
PBF = REPO / "data" / "osm" / "liechtenstein-2026-03-29.osm.pbf"

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("offline_app")]


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _customers() -> pd.DataFrame:
    """30 customers around Vaduz, in a 2 x 1.5 km patch."""
    rows = [
        {"id": f"C{i:02d}", "lat": 47.135 + 0.0025 * (i % 6), "lon": 9.515 + 0.005 * (i // 6)}
        for i in range(30)
    ]
    return pd.DataFrame(rows).assign(weight=1, segment="private")


def _open(region: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.session_state["region"] = region
    return _ok(at.run())


def _infos(at: AppTest) -> list[str]:
    return [i.value for i in at.info]


def test_large_road_file_is_trimmed_around_the_customers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cache: Path
) -> None:
    road_file = tmp_path / "liechtenstein.osm.pbf"
    shutil.copyfile(PBF, road_file)
    monkeypatch.setattr(_regions, "LARGE_ROADS_MB", 1.0)  # Liechtenstein is 3.3 MB
    at = _open(str(road_file))
    # no customers yet: the whole file is not loaded, the page says what it waits for
    assert "roads_job" not in at.session_state
    waiting = [i for i in _infos(at) if "is a large road file" in i]
    assert len(waiting) == 1, _infos(at)
    assert "upload your customers" in waiting[0]
    at.number_input(key="margin_km").set_value(2.0)
    customers = _customers()
    at.file_uploader(key="customers_file").upload(
        "customers.csv", customers.to_csv(index=False).encode(), "text/csv"
    )
    _ok(at.run())
    wait_for_job(at, "roads")
    assert not at.error, [e.value for e in at.error]
    # the library's sentence for the same file and area (as `planner run` prints it)
    area = area_around(customers["lon"], customers["lat"], margin_km=2)
    expected = load_region(str(road_file), area=area).graph["planner_report"]["kept"]
    assert "around your 30 customers (+2 km), from liechtenstein.osm.pbf of 2026-" in expected
    assert f"Kept the {expected}." in _infos(at), _infos(at)
    assert "30 customers from customers.csv" in " ".join(_infos(at))


def test_box_drawn_on_the_map_fills_the_box_field(
    monkeypatch: pytest.MonkeyPatch, cache: Path
) -> None:
    drawn: dict[str, Any] = {
        "type": "Feature",
        "properties": {},
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[9.5, 47.1], [9.5, 47.16], [9.56, 47.16], [9.56, 47.1], [9.5, 47.1]]],
        },
    }
    returned: dict[str, Any] = {"last_active_drawing": None}

    def fake_cached_map(build: Any, **kwargs: Any) -> dict[str, Any]:
        assert kwargs["returned_objects"] == ["last_active_drawing"]
        m = _shared.assets.localize_map(build(), base_url=_shared.static_url())
        html = m.get_root().render()
        assert "L.Control.Draw" in html
        assert "leaflet.draw/leaflet.draw.js" in html  # served by the app, no CDN
        return dict(returned)

    # the Data page's map goes through the server-wide map cache (_shared.cached_map)
    monkeypatch.setattr(_shared, "cached_map", fake_cached_map)
    at = _open("liechtenstein")
    wait_for_job(at, "roads")
    assert not at.text_input(key="region_bbox").value
    returned["last_active_drawing"] = drawn  # the user draws a rectangle
    _ok(at.run())
    assert at.text_input(key="region_bbox").value == "9.5,47.1,9.56,47.16"
    assert any("Box drawn: 9.5,47.1,9.56,47.16" in s.value for s in at.success)
    _ok(at.run())  # the same drawing returned again is not applied twice
    assert not any("Box drawn" in s.value for s in at.success)
    keep = [b for b in at.button if b.label == "Keep only the roads in this box"]
    keep[0].click()
    _ok(at.run())
    assert at.session_state["area_box"]["bbox"] == [9.5, 47.1, 9.56, 47.16]
    wait_for_job(at, "roads")
    kept = [i for i in _infos(at) if i.startswith("Kept the roads of ")]
    assert len(kept) == 1, _infos(at)
    assert "in the box 9.5,47.1,9.56,47.16" in kept[0]
