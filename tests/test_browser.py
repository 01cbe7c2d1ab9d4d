"""The app and its maps in a real headless Chromium (Debian's, driven by Playwright), offline.

- The workflow: ``streamlit run app.py`` on a free localhost port; upload a customer file and a
  file of two existing workshops, plan 5 workshops (the 2 kept, 3 added), see them on the map,
  compare the three layouts on the upload, switch pages and come back with nothing lost. Every
  request must stay on localhost (the machine has no internet: a CDN script would just fail
  and leave an empty map frame).
- The exported standalone ``map.html``, opened from ``file://``.

Screenshots are kept as test artifacts in ``$PLANNER_TEST_ARTIFACTS`` (default: the test's
tmp dir; ``--basetemp`` keeps them).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
WAIT_MS = int(os.environ.get("PLANNER_TEST_WAIT_MS", "300000"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not os.path.exists(CHROMIUM):
    pytest.skip(
        "needs Chromium (Debian: apt-get install chromium; .ci/run installs it)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="needs playwright (pip install -e '.[test]')"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _popen(log: Any, port: int, env: dict[str, str] | None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "app.py"),
            "--server.headless=true",
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            "--browser.serverAddress=127.0.0.1",
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
        ],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def start_app(folder: Path, *, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """Start ``streamlit run app.py`` on a free loopback port; return the process and URL."""
    port = _free_port()
    with (folder / "streamlit.log").open("w") as log:
        proc = _popen(log, port, env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError(f"streamlit did not start; see {folder / 'streamlit.log'}")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("streamlit")
    proc, url = start_app(
        folder,
        env={"PLANNER_OFFLINE": "1", "PLANNER_WORKSPACE_DIR": str(folder / "workspace")},
    )
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PLANNER_TEST_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1100})
        pg = context.new_page()
        pg.set_default_timeout(WAIT_MS)
        pg.requested = []  # type: ignore[attr-defined]
        pg.on("request", lambda r: pg.requested.append(r.url))  # type: ignore[attr-defined]
        pg.on("websocket", lambda ws: pg.requested.append(ws.url))  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            context.close()
            browser.close()


def _assert_only_local_requests(urls: list[str]) -> None:
    remote = [
        u
        for u in urls
        if urlparse(u).scheme in ("http", "https", "ws", "wss")
        and urlparse(u).hostname not in LOCAL_HOSTS
    ]
    assert remote == [], f"requests left localhost: {remote}"
    assert not [u for u in urls if urlparse(u).scheme == "file" and "cdn" in u]


_MAP_STATS_JS = """
(name) => {
const map = name ? window[name] : window.map;
if (typeof L === 'undefined' || !map || !map.eachLayer) { return null; }
let layers = 0, sites = 0, customers = 0, tiles = 0;
map.eachLayer(function (layer) {
    layers++;
    if (layer instanceof L.TileLayer) { tiles++; }
    if (layer instanceof L.CircleMarker) {
        if (!layer.options.interactive) { return; }
        if (layer.getRadius() >= 9) { sites++; } else { customers++; }
    }
});
let inked = 0;
for (const canvas of document.querySelectorAll('.leaflet-container canvas')) {
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) { if (data[i] > 0) { inked++; } }
}
const legend = document.querySelector('.planner-legend');
const attribution = document.querySelector('.leaflet-control-attribution');
const box = attribution ? attribution.getBoundingClientRect() : null;
return {
    version: L.version, layers: layers, sites: sites, customers: customers, tiles: tiles,
    inked: inked, containers: document.querySelectorAll('.leaflet-container').length,
    attribution: attribution ? attribution.innerText : '',
    attributionVisible: !!box && box.width > 0 && box.height > 0,
    legend: legend ? legend.innerText : '',
    scripts: Array.from(document.querySelectorAll('script[src]')).map(e => e.src),
    styles: Array.from(document.querySelectorAll('link[rel=stylesheet][href]')).map(e => e.href)
};
}
"""


def _scroll_to_map(pg: Any) -> None:
    """Streamlit mounts a component's iframe only when it scrolls into view."""
    frames = pg.locator("iframe[title*='st_folium']")
    if frames.count():
        frames.last.scroll_into_view_if_needed()
    else:
        pg.mouse.move(700, 500)
        pg.mouse.wheel(0, 700)


def _map_stats(pg: Any, *, min_sites: int = 0, timeout_s: float = 300) -> dict:
    """Stats of the st_folium map frame that shows at least ``min_sites`` sites."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _scroll_to_map(pg)
        for frame in pg.frames:
            if frame == pg.main_frame:
                continue
            try:
                stats = frame.evaluate(_MAP_STATS_JS, None)
            except Exception:  # the frame is being replaced by a rerun
                stats = None
            if stats and stats["sites"] >= min_sites and stats["inked"] > 0:
                return stats
        time.sleep(0.5)
    pytest.fail("the map did not render in the streamlit-folium iframe")


def _local_refs(stats: dict) -> None:
    for ref in stats["scripts"] + stats["styles"]:
        parsed = urlparse(ref)
        assert parsed.scheme in ("http", "file", "data"), ref
        if parsed.scheme == "http":
            assert parsed.hostname in LOCAL_HOSTS, ref


HEADINGS = {"Data": "Your data", "Compare": "Compare layouts", "Costs": "Cost assumptions"}


def _go(pg: Any, title: str) -> None:
    pg.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    pg.get_by_role("heading", level=1, name=HEADINGS.get(title, title)).wait_for()


def _upload(pg: Any, label: str, path: Path) -> None:
    uploader = pg.get_by_test_id("stFileUploader").filter(has_text=label)
    uploader.locator("input[type=file]").set_input_files(str(path))


def _customer_file(folder: Path) -> Path:
    from planner.inputs import customers as demand

    demo = demand.load_demo_customers("liechtenstein").head(300)
    rows = demo[["customer_id", "lat", "lon", "weight", "segment"]].rename(
        columns={"customer_id": "id"}
    )
    path = folder / "my_customers.csv"
    path.write_text(rows.to_csv(index=False) + "BAD1,not-a-latitude,9.52,1,private\n")
    return path


def test_workflow_upload_keep_two_add_three_compare_and_come_back(
    app_url: str, page: Any, tmp_path: Path, artifacts: Path
) -> None:
    pg = page
    customers = _customer_file(tmp_path)
    existing = tmp_path / "existing.csv"
    existing.write_text(
        "name,lat,lon\nVaduz workshop,47.1410,9.5215\nSchaan workshop,47.1650,9.5100\n"
    )
    pg.goto(f"{app_url}/?region=liechtenstein")
    pg.get_by_text("demo customers in Liechtenstein").wait_for()
    demo = _map_stats(pg)
    assert demo["customers"] >= 1000
    pg.screenshot(path=str(artifacts / "1-data-demo.png"))

    _upload(pg, "Upload customers", customers)
    pg.get_by_text("300 rows of my_customers.csv can be used").wait_for()
    pg.get_by_text("300 customers from my_customers.csv in Liechtenstein").wait_for()
    pg.get_by_text("Existing workshops", exact=True).click()
    _upload(pg, "Upload your existing workshops", existing)
    pg.get_by_text("2 rows of existing.csv, no problems.").wait_for()
    pg.screenshot(path=str(artifacts / "2-data-uploaded.png"), full_page=True)

    _go(pg, "Plan")
    workshops = pg.get_by_label("Number of workshops (existing ones included)")
    sync_api.expect(workshops).to_have_value("5", timeout=30_000)
    pg.get_by_role("button", name="Run").click()
    pg.get_by_text("300 customers, 62 candidate sites (2 existing)").wait_for()
    pg.screenshot(path=str(artifacts / "3-plan.png"))

    _go(pg, "Results")
    stats = _map_stats(pg, min_sites=5)
    assert stats["sites"] == 5
    assert stats["customers"] == 300
    assert stats["version"] == "1.9.3"  # Leaflet from xstatic-leaflet, not a CDN
    assert stats["tiles"] == 0
    assert "OpenStreetMap contributors" in stats["attribution"]
    assert stats["attributionVisible"]
    _local_refs(stats)
    assert "Vaduz workshop" in stats["legend"]  # the existing workshops are on the map
    assert "Schaan workshop" in stats["legend"]
    time.sleep(1.0)
    pg.screenshot(path=str(artifacts / "4-results.png"), full_page=True)

    _go(pg, "Compare")
    pg.get_by_role("button", name="Compare", exact=True).click()
    pg.get_by_role("heading", name="Side by side").wait_for()
    for layout in ("in-house", "outsourced", "two-tier"):
        pg.get_by_role("tab", name=layout).wait_for()
    pg.screenshot(path=str(artifacts / "5-compare.png"), full_page=True)

    # leave, change something elsewhere, come back: nothing lost
    _go(pg, "Costs")
    fee = pg.get_by_role("spinbutton", name="Fee paid to a partner repair shop per job, EUR")
    fee.fill("99")
    fee.press("Enter")
    pg.wait_for_timeout(1000)
    _go(pg, "Data")
    pg.get_by_text("Using my_customers.csv (uploaded earlier).").wait_for()
    _go(pg, "Costs")
    sync_api.expect(
        pg.get_by_role("spinbutton", name="Fee paid to a partner repair shop per job, EUR")
    ).to_have_value("99.00", timeout=30_000)
    _go(pg, "Results")
    assert _map_stats(pg, min_sites=5)["sites"] == 5
    pg.screenshot(path=str(artifacts / "6-back-to-results.png"))

    # the scenario bundle is built when its button is pressed (not on every rerun) and
    # reopens as the same scenario with the user's files
    from planner.engine.workspace import open_bundle

    _go(pg, "Export")
    bundle_button = pg.get_by_role(
        "button", name="Scenario bundle (.zip: scenario.toml + your files)"
    )
    bundle_button.wait_for()
    # a click while the page's script still runs (the exports are built) can be lost in the
    # rerun it starts: click when the app is idle
    pg.locator("[data-testid='stStatusWidget']").wait_for(state="detached", timeout=120_000)
    with pg.expect_download(timeout=120_000) as download:
        bundle_button.click()
    bundle = tmp_path / "bundle.zip"
    download.value.save_as(bundle)
    saved = open_bundle(bundle.read_bytes(), workspace=tmp_path / "opened")
    assert saved.spec.parameters.partner_fee_per_job_eur == 99.0
    assert saved.inputs["customers"].data == customers.read_bytes()
    _assert_only_local_requests(pg.requested)


def test_exported_map_opens_from_file(page: Any, tmp_path: Path, artifacts: Path) -> None:
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    from planner.outputs import maps

    rng = np.random.default_rng(3)
    n = 3000
    lat = 35.85 + 0.1 * rng.random(n)
    lon = 14.40 + 0.1 * rng.random(n)
    sites = pd.DataFrame(
        {
            "site_id": ["W1", "W2", "HQ"],
            "role": ["workshop", "workshop", "office"],
            "name": ["North", "South", "Office"],
            "lat": [35.93, 35.87, 35.90],
            "lon": [14.43, 14.47, 14.45],
            "customers": [1500, 1000, 500],
            "demand_share": [0.5, 0.33, 0.17],
            "mean_travel_min": [5.0, 6.0, 2.0],
            "max_travel_min": [9.0, 11.0, 4.0],
        }
    )
    nearest = np.argmin(
        (lat[:, None] - sites["lat"].to_numpy()) ** 2
        + (lon[:, None] - sites["lon"].to_numpy()) ** 2,
        axis=1,
    )
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "lat": lat,
            "lon": lon,
            "weight": 1.0,
            "segment": "private",
            "site_id": sites["site_id"].to_numpy()[nearest],
            "travel_min": 10 * rng.random(n),
        }
    )
    result = SimpleNamespace(
        customers=gpd.GeoDataFrame(customers, geometry=gpd.points_from_xy(lon, lat), crs=4326),
        sites=gpd.GeoDataFrame(
            sites, geometry=gpd.points_from_xy(sites["lon"], sites["lat"]), crs=4326
        ),
    )
    m = maps.result_map(result)
    path = maps.save_map(m, tmp_path / "map.html")

    page.goto(path.as_uri())
    page.locator(".leaflet-container canvas").first.wait_for()
    stats = page.evaluate(_MAP_STATS_JS, m.get_name())
    assert stats["version"] == "1.9.3"
    assert stats["customers"] == n
    assert stats["sites"] == 3
    assert stats["inked"] > 5000
    assert "OpenStreetMap contributors" in stats["attribution"]
    assert stats["attributionVisible"]
    assert stats["legend"].split("\n") == [
        "Sites",
        "W1 · North",
        "W2 · South",
        "HQ · Office (office)",
        # the symbols of the roles present (no status column: own workshops count as new)
        "central office",
        "own workshop, new",
    ]
    _local_refs(stats)
    page.screenshot(path=str(artifacts / "map-html.png"))
    _assert_only_local_requests(page.requested)


def test_stop_in_the_browser_keeps_the_best_answer_with_its_gap(
    app_url: str, page: Any, artifacts: Path
) -> None:
    """A long solve (two-tier, 500 new sites: about 15 s to prove on this machine) shows its
    progress line with bound and gap and a Stop button; Stop keeps the best answer so far,
    says it is not proven and shows it on the map."""
    import planner

    # the test's own cache starts empty: the OSM places and the candidates' travel times are
    # prepared here first (on the shared disk cache), so the app's job reaches the solve soon
    planner.prepare_scenario(
        planner.ScenarioSpec(region="malta", layout="two-tier", n_candidates=500, workshops=5)
    )
    pg = page
    pg.goto(app_url)
    pg.get_by_text("demo customers in Malta").wait_for()
    _go(pg, "Plan")
    pg.get_by_role("combobox", name="Layout").click()
    pg.get_by_role("option", name="two-tier").click()
    pg.get_by_text("Advanced", exact=True).click()
    new_sites = pg.get_by_role("spinbutton", name="New sites to consider")
    new_sites.fill("500")
    new_sites.press("Enter")
    pg.wait_for_timeout(1000)
    pg.get_by_role("button", name="Run").click()
    stop = pg.get_by_role("button", name="Stop")
    stop.wait_for()
    # wait until the solver reports a bound and a best answer, then stop it
    try:
        pg.get_by_test_id("stProgress").filter(
            has_text=re.compile(r"bound .*, best .*, gap \d")
        ).wait_for()
    finally:
        pg.screenshot(path=str(artifacts / "stop-1-running.png"), full_page=True)
    stop.click()
    pg.get_by_text("Stopped: the best answer found so far").wait_for()
    pg.get_by_text("Stopped by you").wait_for()
    assert pg.get_by_role("button", name="Stop").count() == 0
    pg.screenshot(path=str(artifacts / "stop-2-stopped.png"), full_page=True)
    _go(pg, "Results")
    stats = _map_stats(pg, min_sites=6)  # 5 workshops and the central office
    assert stats["sites"] == 6
    _assert_only_local_requests(pg.requested)


@pytest.fixture(scope="module")
def road_upload(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A road file to upload that takes seconds to load, so its progress shows: the bundled
    Malta extract tiled 3 x 3 (``benchmarks/make_tiled_pbf.py``, 12 MB, 124,000 drivable ways;
    Malta alone now loads in under a second, before any progress is drawn), and 400 of the
    Malta demo customers (tile 0, 0 is Malta itself)."""
    from planner.inputs import customers as demand

    folder = tmp_path_factory.mktemp("roads")
    roads = folder / "my-roads.osm.pbf"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "make_tiled_pbf.py"),
            "--tiles",
            "3",
            "--out",
            str(roads),
        ],
        check=True,
        capture_output=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    demo = demand.load_demo_customers("malta").head(400)
    customers = folder / "my_malta_customers.csv"
    demo[["customer_id", "lat", "lon", "weight", "segment"]].rename(
        columns={"customer_id": "id"}
    ).to_csv(customers, index=False)
    return roads, customers


def test_uploaded_road_file_shows_progress_then_plans_to_the_map(
    road_upload: tuple[Path, Path], page: Any, tmp_path: Path, artifacts: Path
) -> None:
    """Issue 23 item 7: a road file uploaded on the Data page loads with its progress line
    (the array loader's stages and ETA, reported through the background job, never drawn from
    cached work), and every later rerun that needs the graph works: the Data preview with
    uploaded customers, Plan -> Run, the Results map. Before, each of these showed
    ``CacheReplayClosureError``. ``PLANNER_ARRAY_LOADER_MB=1`` sends the 3.9 MB file through
    the array loader, which big extracts (from 20 MB) take and which reports progress; the
    Malta tiled 2 x 2 (``benchmarks/make_tiled_pbf.py``) works the same and takes four times
    as long."""
    import planner

    roads, customers = road_upload
    # the page it opens on, then the uploaded file's graph: from the shared disk cache
    planner.load_region("liechtenstein")
    planner.load_demo_customers("liechtenstein")
    proc, url = start_app(
        tmp_path,
        env={
            "PLANNER_OFFLINE": "1",
            "PLANNER_WORKSPACE_DIR": str(tmp_path / "workspace"),
            "PLANNER_ARRAY_LOADER_MB": "1",
            # a cache of its own: the uploaded file's graph is built here, with its progress,
            # not read at once from a disk cache that an earlier run of this test filled
            "PLANNER_CACHE_DIR": str(tmp_path / "cache"),
        },
    )
    pg = page
    try:
        pg.goto(f"{url}/?region=liechtenstein")
        pg.get_by_text("demo customers in Liechtenstein").wait_for()
        _upload(pg, "Or upload a road file", roads)
        pg.get_by_role("button", name="Use these roads").click()
        loading = pg.get_by_test_id("stProgress").filter(
            has_text=re.compile(r"Reading roads of .*my-roads\.osm\.pbf|Building the road")
        )
        loading.first.wait_for()
        pg.screenshot(path=str(artifacts / "roads-1-loading.png"), full_page=True)
        pg.get_by_text("Upload customers for my-roads.osm.pbf (uploaded roads)").wait_for()

        _upload(pg, "Upload customers", customers)
        pg.get_by_text("400 customers from my_malta_customers.csv in my-roads.osm.pbf").wait_for()
        demo = _map_stats(pg)
        assert demo["customers"] == 400
        pg.screenshot(path=str(artifacts / "roads-2-customers.png"), full_page=True)

        _go(pg, "Plan")
        pg.get_by_role("button", name="Run").click()
        try:
            pg.get_by_text(re.compile(r"400 customers, \d+ candidate sites")).wait_for()
            pg.get_by_text("roads of my-roads.osm.pbf (uploaded roads)").first.wait_for()
        finally:
            pg.screenshot(path=str(artifacts / "roads-3-plan.png"), full_page=True)

        _go(pg, "Results")
        stats = _map_stats(pg, min_sites=5)
        assert stats["sites"] == 5
        assert stats["customers"] == 400
        pg.screenshot(path=str(artifacts / "roads-4-results.png"), full_page=True)
        _go(pg, "Data")  # back to the preview: the graph is shared, nothing is redrawn from a cache
        pg.get_by_text("400 customers from my_malta_customers.csv in my-roads.osm.pbf").wait_for()
        assert pg.get_by_test_id("stException").count() == 0
        assert "CacheReplayClosureError" not in pg.content()
        _assert_only_local_requests(pg.requested)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
