"""The Data page's region picker in a real headless Chromium: search the catalog of a loopback
download server, download a region (the progress bar shows bytes, speed and time left), and
the downloaded roads become the region; every browser request stays on localhost."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._regions_server import RegionServer, region_server
from tests.test_browser import (  # noqa: F401
    _assert_only_local_requests,
    page,
    start_app,
    sync_api,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RegionServer, str]]:
    with region_server() as state:
        state.throttle_s = 0.08  # about 3 s for Liechtenstein: the progress bar is seen
        proc, url = start_app(
            tmp_path,
            env={
                "PLANNER_DOWNLOAD_URL": state.url,
                "PLANNER_CACHE_DIR": str(tmp_path / "cache"),
                "PLANNER_WORKSPACE_DIR": str(tmp_path / "workspace"),
                "PLANNER_OFFLINE": "",
            },
        )
        try:
            yield state, url
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def _shown(combobox: Any) -> str:
    """What a Streamlit selectbox shows (an input's value, or its text)."""
    try:
        return str(combobox.input_value(timeout=2000))
    except sync_api.Error:
        return str(combobox.inner_text(timeout=2000))


def test_pick_search_and_download_a_region(
    served: tuple[RegionServer, str],
    page: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    state, url = served
    pg = page
    pg.goto(f"{url}/?region=liechtenstein")
    pg.get_by_text("demo customers in Liechtenstein").wait_for()
    pg.get_by_text("Find a region", exact=False).click()
    search = pg.get_by_role("textbox", name="Search regions")
    search.fill("liech")
    search.press("Enter")
    # the list is filtered once the page has rerun: the bundled Liechtenstein comes first
    regions = pg.get_by_role("combobox", name="Regions")
    deadline = time.monotonic() + 300
    while "liechtenstein, 371 kB" not in _shown(regions):
        assert time.monotonic() < deadline, _shown(regions)
        pg.wait_for_timeout(500)
    for attempt in range(5):  # a rerun may redraw the open list: open it again
        pg.get_by_role("combobox", name="Regions").click()
        try:
            pg.get_by_role("option", name="Liechtenstein (europe/liechtenstein)").click(
                timeout=10_000
            )
            break
        except sync_api.TimeoutError:
            assert attempt < 4
    download = pg.get_by_role("button", name="Download Liechtenstein (3.3 MB)")
    download.click()
    pg.get_by_text("Downloading liechtenstein-latest.osm.pbf:", exact=False).first.wait_for()
    pg.get_by_text("Downloaded Liechtenstein (3.3 MB).").wait_for()
    pg.get_by_text("Upload customers for liechtenstein-latest.osm.pbf").wait_for()
    pg.screenshot(path=str(tmp_path / "region-picker.png"), full_page=True)
    assert (tmp_path / "cache" / "regions" / "europe" / "liechtenstein-latest.osm.pbf").is_file()
    assert len(state.gets("/europe/liechtenstein-latest.osm.pbf")) == 1
    _assert_only_local_requests(pg.requested)
