"""The maps in a real headless Chromium, with no internet.

- The app: ``streamlit run app.py`` on a free localhost port, press "Run", and check that
  Leaflet really rendered inside the streamlit-folium iframe (map, customers and sites drawn
  on the canvas, OSM credit visible) and that no request left localhost: the machine has no
  internet, so a CDN script would just fail and leave an empty frame.
- The exported standalone ``map.html``, opened from ``file://``.

Screenshots go to the test's tmp dir (``--basetemp`` to keep them).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
WAIT_S = 180

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip(
        "needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    env = dict(os.environ, PLANNER_OFFLINE="1")  # no tile check: tiles off, fully local
    with log.open("w") as out:
        proc = subprocess.Popen(
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
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,1100",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def _requested_urls(browser: webdriver.Chrome) -> list[str]:
    urls = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") in ("Network.requestWillBeSent", "Network.webSocketCreated"):
            params = message["params"]
            urls.append(params.get("request", {}).get("url") or params.get("url", ""))
    return urls


def _assert_only_local_requests(urls: list[str]) -> None:
    remote = [
        u
        for u in urls
        if urlparse(u).scheme in ("http", "https", "ws", "wss")
        and urlparse(u).hostname not in LOCAL_HOSTS
    ]
    assert remote == [], f"requests left localhost: {remote}"
    assert not [u for u in urls if urlparse(u).scheme == "file" and "cdn" in u]


def _assert_local_tags(browser: webdriver.Chrome) -> None:
    refs = [e.get_attribute("src") for e in browser.find_elements(By.CSS_SELECTOR, "script[src]")]
    refs += [
        e.get_attribute("href")
        for e in browser.find_elements(By.CSS_SELECTOR, "link[rel=stylesheet][href]")
    ]
    for ref in refs:
        parsed = urlparse(ref)
        assert parsed.scheme in ("http", "file", "data"), ref
        if parsed.scheme == "http":
            assert parsed.hostname in LOCAL_HOSTS, ref


_MAP_STATS_JS = """
const map = arguments[0] ? window[arguments[0]] : window.map;
if (!map || !map.eachLayer) { return null; }
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
    legend: legend ? legend.innerText : ''
};
"""


_CUSTOMER_POINT_JS = """
const map = arguments[0] ? window[arguments[0]] : window.map;
const size = map.getSize();
const points = [];
map.eachLayer(function (layer) {
    if (layer instanceof L.CircleMarker && layer.options.interactive) {
        const p = map.latLngToContainerPoint(layer.getLatLng());
        points.push({layer: layer, p: p});
    }
});
// the customer farthest from any other marker (sites included), inside the view
let found = null, best = -1;
for (const a of points) {
    const inside = a.p.x > 40 && a.p.y > 40 && a.p.x < size.x - 40 && a.p.y < size.y - 40;
    if (!a.layer.feature || !inside) { continue; }
    let nearest = Infinity;
    for (const b of points) {
        if (a !== b) { nearest = Math.min(nearest, a.p.distanceTo(b.p)); }
    }
    if (nearest > best) { best = nearest; found = a.layer; }
}
const p = map.latLngToContainerPoint(found.getLatLng());
return {x: p.x - size.x / 2, y: p.y - size.y / 2, text: found.feature.properties.t};
"""


def _hover_customer(browser: webdriver.Chrome, map_name: str | None) -> tuple[str, str]:
    """Move the real mouse over one customer; return (expected text, shown tooltip)."""
    container = browser.find_element(By.CSS_SELECTOR, ".leaflet-container")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        point = browser.execute_script(_CUSTOMER_POINT_JS, map_name)
        # from an empty corner of the map onto the customer, so "mouseover" really fires
        corner = (-container.size["width"] // 2 + 60, -container.size["height"] // 2 + 12)
        chain = ActionChains(browser).move_to_element_with_offset(container, *corner)
        chain.move_to_element_with_offset(container, round(point["x"]), round(point["y"]))
        chain.perform()
        time.sleep(0.3)
        tooltips = browser.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip")
        if tooltips and tooltips[0].text:
            return point["text"], tooltips[0].text
    pytest.fail("no tooltip when hovering a customer")


def _wait_for_result_map(browser: webdriver.Chrome) -> dict:
    """Switch into the st_folium iframe that shows site markers, return its map stats."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        browser.switch_to.default_content()
        for frame in browser.find_elements(By.CSS_SELECTOR, "iframe[title*='st_folium']"):
            browser.switch_to.frame(frame)
            try:
                stats = browser.execute_script(
                    "return (typeof L === 'undefined') ? null : (function(){"
                    + _MAP_STATS_JS.replace("arguments[0]", "null")
                    + "})();"
                )
            except Exception:  # the frame is being replaced by a rerun
                stats = None
            if stats and stats["sites"] > 0 and stats["inked"] > 0:
                return stats
            browser.switch_to.default_content()
        time.sleep(0.5)
    pytest.fail("the result map did not render in the streamlit-folium iframe")


def test_app_map_renders_offline(app_url: str, driver: webdriver.Chrome, tmp_path: Path) -> None:
    driver.get(f"{app_url}/?region=liechtenstein")
    wait = WebDriverWait(driver, WAIT_S)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "iframe[title*='st_folium']"))
    run = wait.until(
        lambda d: next((b for b in d.find_elements(By.TAG_NAME, "button") if b.text == "Run"), None)
    )
    run.click()
    wait.until(lambda d: any(h.text == "Shortlist" for h in d.find_elements(By.TAG_NAME, "h3")))

    stats = _wait_for_result_map(driver)
    assert stats["version"] == "1.9.3"  # Leaflet from xstatic-leaflet, not a CDN
    assert stats["containers"] == 1
    assert stats["sites"] == 5  # the default number of workshops
    assert stats["customers"] >= 1000  # the demo customers, as canvas circle markers
    assert stats["tiles"] == 0
    assert stats["inked"] > 5000, "nothing was drawn on the map canvas"
    assert "OpenStreetMap contributors" in stats["attribution"]
    assert stats["attributionVisible"]
    assert stats["legend"].startswith("Sites")
    assert stats["legend"].count("\n") >= 5  # title + one row per workshop
    _assert_local_tags(driver)  # inside the iframe
    expected, shown = _hover_customer(driver, None)
    assert shown == expected
    assert " min" in shown
    driver.switch_to.default_content()
    _assert_local_tags(driver)
    time.sleep(1.0)
    driver.save_screenshot(str(tmp_path / "app-result.png"))
    _assert_only_local_requests(_requested_urls(driver))


def test_exported_map_opens_from_file(driver: webdriver.Chrome, tmp_path: Path) -> None:
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

    driver.get(path.as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, ".leaflet-container canvas")
    )
    stats = driver.execute_script(_MAP_STATS_JS, m.get_name())
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
    ]
    _assert_local_tags(driver)
    expected, shown = _hover_customer(driver, m.get_name())
    assert shown == expected
    assert shown.startswith("C")
    driver.save_screenshot(str(tmp_path / "map-html.png"))
    _assert_only_local_requests(_requested_urls(driver))
