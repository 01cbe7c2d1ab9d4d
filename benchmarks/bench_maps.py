"""Benchmark the result map against folium's usual one-marker-per-customer map.

Run from the repository root::

    .venv/bin/python benchmarks/bench_maps.py                 # 2,000 and 10,000 customers
    .venv/bin/python benchmarks/bench_maps.py --sizes 1000 20000 --no-browser

Baseline, built in the same process on the same synthetic customers (uniform over Malta, each
assigned to the nearest of 5 sites): a ``folium.Map`` with one ``folium.CircleMarker`` (with a
tooltip) per customer, as folium's examples do; Leaflet's default SVG renderer then creates one
DOM element per customer. Ours: :func:`planner.outputs.maps.result_map`, one GeoJSON layer drawn as
circle markers on a canvas. Both are written as standalone offline HTML with the same inlined
Leaflet, so only the map content differs.

Measured: Python time to build and render the HTML (best of 3), HTML size, and, in headless
Chromium (skipped with ``--no-browser`` or when Chromium is missing), the time from navigation
start until the map is painted and the time of one zoom step until the next frame (best of 3
page loads each).
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd

from planner.outputs import assets, maps

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def synthetic_result(n: int, *, seed: int = 0) -> SimpleNamespace:
    rng = np.random.default_rng(seed)
    lat = 35.82 + 0.16 * rng.random(n)
    lon = 14.34 + 0.22 * rng.random(n)
    sites = pd.DataFrame(
        {
            "site_id": [f"S{i}" for i in range(5)],
            "role": ["workshop"] * 5,
            "name": [f"Site {i}" for i in range(5)],
            "lat": 35.82 + 0.16 * rng.random(5),
            "lon": 14.34 + 0.22 * rng.random(5),
        }
    )
    d2 = (lat[:, None] - sites["lat"].to_numpy()) ** 2 + (
        lon[:, None] - sites["lon"].to_numpy()
    ) ** 2
    nearest = d2.argmin(axis=1)
    travel_min = 60 * np.sqrt(d2.min(axis=1))
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i:06d}" for i in range(n)],
            "lat": lat,
            "lon": lon,
            "site_id": sites["site_id"].to_numpy()[nearest],
            "travel_min": travel_min,
        }
    )
    shares = np.bincount(nearest, minlength=5) / n
    sites["customers"] = np.bincount(nearest, minlength=5)
    sites["demand_share"] = shares
    sites["mean_travel_min"] = [travel_min[nearest == j].mean() for j in range(5)]
    sites["max_travel_min"] = [travel_min[nearest == j].max() for j in range(5)]
    return SimpleNamespace(
        customers=gpd.GeoDataFrame(customers, geometry=gpd.points_from_xy(lon, lat), crs=4326),
        sites=gpd.GeoDataFrame(
            sites, geometry=gpd.points_from_xy(sites["lon"], sites["lat"]), crs=4326
        ),
    )


def baseline_map(result: SimpleNamespace) -> folium.Map:
    """folium's usual way: one CircleMarker with a tooltip per customer (SVG renderer)."""
    customers, sites = result.customers, result.sites
    colors = maps.site_colors(sites["site_id"].tolist())
    m = folium.Map(location=[35.9, 14.45], zoom_start=11, tiles=None)
    for row in customers.itertuples():
        folium.CircleMarker(
            location=[row.lat, row.lon],
            radius=3,
            color=colors[row.site_id],
            fill=True,
            fill_opacity=0.7,
            weight=1,
            tooltip=f"{row.customer_id} → {row.site_id} · {row.travel_min:.1f} min",
        ).add_to(m)
    for row in sites.itertuples():
        folium.CircleMarker(
            location=[row.lat, row.lon],
            radius=10,
            color="#ffffff",
            fill_color=colors[row.site_id],
            fill=True,
            fill_opacity=1.0,
            popup=row.name,
        ).add_to(m)
    return m


def ours_map(result: SimpleNamespace) -> folium.Map:
    return maps.result_map(result)


def timed(fn: Callable[[], Any], *, repeats: int = 3) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(repeats):
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


_PAINT_JS = """
const done = arguments[arguments.length - 1];
const map = window[arguments[0]];
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));
"""

_ZOOM_JS = """
const done = arguments[arguments.length - 1];
const map = window[arguments[0]];
const t0 = performance.now();
map.setView(map.getCenter(), map.getZoom() + 1, {animate: false});
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
"""


def browser_times(
    driver: Any, path: Path, map_name: str, *, repeats: int = 3
) -> tuple[float, float]:
    """Best of ``repeats`` page loads: seconds to first paint, seconds of one zoom step."""
    paint, zoom = float("inf"), float("inf")
    for _ in range(repeats):
        driver.get(path.as_uri())  # returns after the load event: scripts have run
        paint = min(paint, driver.execute_async_script(_PAINT_JS, map_name) / 1000.0)
        zoom = min(zoom, driver.execute_async_script(_ZOOM_JS, map_name) / 1000.0)
    return paint, zoom


def make_driver(profile: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

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
        f"--user-data-dir={profile}",
        "--window-size=1200,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(300)
    driver.set_page_load_timeout(300)
    return driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    use_browser = not args.no_browser and os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)
    workdir = Path(tempfile.mkdtemp(prefix="bench-maps-"))
    driver = make_driver(str(workdir / "profile")) if use_browser else None
    header = f"{'customers':>9}  {'map':<8} {'build+html s':>12} {'HTML MB':>8}" + (
        f" {'paint s':>8} {'zoom s':>7}" if driver else ""
    )
    print(header)
    try:
        for n in args.sizes:
            result = synthetic_result(n)
            rows = {}
            for label, build in (("baseline", baseline_map), ("ours", ours_map)):

                def build_html(
                    build: Callable[[SimpleNamespace], folium.Map] = build,
                    result: SimpleNamespace = result,
                ) -> Any:
                    m = build(result)
                    return m, assets.render_standalone_html(m)

                (m, html), seconds = timed(build_html)
                path = workdir / f"{label}-{n}.html"
                path.write_text(html, encoding="utf-8")
                row = {"build": seconds, "mb": len(html.encode()) / 1e6}
                if driver is not None:
                    row["paint"], row["zoom"] = browser_times(driver, path, m.get_name())
                rows[label] = row
                line = f"{n:>9,}  {label:<8} {row['build']:>12.2f} {row['mb']:>8.2f}"
                if driver is not None:
                    line += f" {row['paint']:>8.2f} {row['zoom']:>7.3f}"
                print(line, flush=True)
            base, ours = rows["baseline"], rows["ours"]
            ratio = (
                f"{n:>9,}  {'speed-up':<8} {base['build'] / ours['build']:>11.1f}x"
                f" {base['mb'] / ours['mb']:>7.1f}x"
            )
            if driver is not None:
                ratio += (
                    f" {base['paint'] / ours['paint']:>7.1f}x {base['zoom'] / ours['zoom']:>6.1f}x"
                )
            print(ratio, flush=True)
    finally:
        if driver is not None:
            driver.quit()


if __name__ == "__main__":
    main()
