"""A box drawn with the mouse on the Data page map, in a real headless Chromium (offline):
Leaflet.draw is served by the app itself (no CDN), the drawn rectangle fills the W,S,E,N field
and "Keep only the roads in this box" trims the roads to it (the library's sentence says so)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_browser import (  # noqa: F401
    _assert_only_local_requests,
    _scroll_to_map,
    page,
    start_app,
    sync_api,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: What the map frame knows: Leaflet.draw loaded (from where), the map's bounds.
_DRAW_JS = """
() => {
if (typeof L === 'undefined' || !window.map || !L.Control || !L.Control.Draw) { return null; }
const tool = document.querySelector('.leaflet-draw-draw-rectangle');
const b = window.map.getBounds();
return {
    tool: !!tool,
    bounds: [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()],
    scripts: Array.from(document.querySelectorAll('script[src]')).map(e => e.src),
};
}
"""


@pytest.fixture
def app(tmp_path: Path) -> Iterator[str]:
    proc, url = start_app(
        tmp_path,
        env={
            "PLANNER_OFFLINE": "1",
            "PLANNER_CACHE_DIR": str(tmp_path / "cache"),
            "PLANNER_WORKSPACE_DIR": str(tmp_path / "workspace"),
        },
    )
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _draw_frame(pg: Any, timeout_s: float = 300) -> tuple[Any, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _scroll_to_map(pg)
        for frame in pg.frames:
            if frame == pg.main_frame:
                continue
            try:
                info = frame.evaluate(_DRAW_JS)
            except sync_api.Error:  # the frame is being replaced by a rerun
                info = None
            if info and info["tool"]:
                return frame, info
        time.sleep(0.5)
    pytest.fail("no map with the draw tool")


def test_draw_a_box_on_the_map_with_the_mouse(app: str, page: Any, tmp_path: Path) -> None:  # noqa: F811
    pg = page
    pg.goto(f"{app}/?region=liechtenstein")
    pg.get_by_text("demo customers in Liechtenstein").wait_for()
    frame, info = _draw_frame(pg)
    assert any(
        s.endswith("/app/static/vendor/leaflet.draw/leaflet.draw.js") for s in info["scripts"]
    )
    frame.locator(".leaflet-draw-draw-rectangle").click()
    box = frame.locator(".leaflet-container").bounding_box()
    assert box is not None
    # drag from 30 % to 60 % of the map's width and height (page coordinates: the frame is
    # inside the page, and bounding_box() of a frame's element is given in page coordinates)
    x0, y0 = box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"]
    x1, y1 = box["x"] + 0.6 * box["width"], box["y"] + 0.6 * box["height"]
    pg.mouse.move(x0, y0)
    pg.mouse.down()
    for step in range(1, 11):
        pg.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
        pg.wait_for_timeout(50)
    pg.mouse.move(x1, y1)  # Leaflet.draw ends the box where the last move put it
    pg.wait_for_timeout(200)
    pg.mouse.up()
    field = pg.get_by_role("textbox", name="Box W,S,E,N (degrees)")
    deadline = time.monotonic() + 120
    while not (field.count() and field.input_value()):
        assert time.monotonic() < deadline, "the drawn box did not reach the W,S,E,N field"
        pg.wait_for_timeout(500)
    west, south, east, north = (float(v) for v in field.input_value().split(","))
    # the box is the dragged part of the map: 30 % to 60 % of the bounds the map showed
    w0, s0, e0, n0 = info["bounds"]
    width, height = e0 - w0, n0 - s0
    assert west == pytest.approx(w0 + 0.3 * width, abs=0.05 * width)
    assert east == pytest.approx(w0 + 0.6 * width, abs=0.05 * width)
    assert north == pytest.approx(n0 - 0.3 * height, abs=0.06 * height)  # Mercator: close
    assert south == pytest.approx(n0 - 0.6 * height, abs=0.06 * height)
    pg.get_by_text("Box drawn:", exact=False).first.wait_for()
    pg.get_by_role("button", name="Keep only the roads in this box").click()
    kept = pg.get_by_text(re.compile(r"^Kept the roads of [\d,]+ km2 in the box ")).first
    kept.wait_for()
    pg.screenshot(path=str(tmp_path / "drawn-box.png"), full_page=True)
    assert f"in the box {field.input_value()}, from liechtenstein" in kept.inner_text()
    _assert_only_local_requests(pg.requested)
