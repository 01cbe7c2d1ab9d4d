"""Benchmark the app as a user sees it, in headless Chromium (Debian's, through Playwright).

Run from the repository root::

    .venv/bin/python benchmarks/bench_app.py            # all four cases
    .venv/bin/python benchmarks/bench_app.py --skip-10k # without the 10,000-customer map

Cases and targets (issue 12):

1. cold start to the demo map: a fresh ``streamlit run app.py`` process, the browser opens the
   app and waits until the demo customers are drawn. The library's disk cache is the one an
   install prepares (``python -m planner.roads.network`` / the first run), the Streamlit
   process is new: target < 15 s. Also reported: the same with an empty cache (first run
   ever, no target).
2. a rerun with another number of workshops: Plan page, change the number, press Run, until
   the new result is shown: target < 2 s.
3. a 10,000-customer result map: switch to the Results page until all 10,000 customers are
   drawn: target < 3 s.
4. compare the three layouts on 2,000 uploaded customers: press Compare until the table is
   shown: target < 10 s.

Each case prints its time, the target, and the ratio against the baseline measured in this
process: the direct library call for the same work (``planner.run`` / ``planner.compare`` on
the same spec and file, warm caches), i.e. what the app adds on top of the engine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STATS_JS = """
() => {
if (typeof L === 'undefined' || !window.map || !window.map.eachLayer) { return null; }
let sites = 0, customers = 0;
window.map.eachLayer(function (layer) {
  if (layer instanceof L.CircleMarker && layer.options.interactive) {
    if (layer.getRadius() >= 9) { sites++; } else { customers++; }
  }
});
let inked = 0;
for (const c of document.querySelectorAll('.leaflet-container canvas')) {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  for (let i = 3; i < d.length; i += 400) { if (d[i] > 0) { inked++; } }
}
return {sites: sites, customers: customers, inked: inked};
}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_app(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log.open("w") as out:
        proc = _popen(out, port, env)
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"streamlit did not start, see {log}")


def _popen(out: Any, port: int, env: dict[str, str]) -> subprocess.Popen:
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
            "--browser.gatherUsageStats=false",
            "--server.fileWatcherType=none",
        ],
        cwd=REPO,
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def wait_map(page: Any, *, customers: int = 1, sites: int = 0, timeout_s: float = 600) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        frames = page.locator("iframe[title*='st_folium']")
        if frames.count():  # Streamlit mounts a component only when it is in view
            frames.last.scroll_into_view_if_needed()
        else:
            page.mouse.move(700, 500)
            page.mouse.wheel(0, 700)
        for frame in page.frames[1:]:
            try:
                stats = frame.evaluate(STATS_JS)
            except Exception:
                continue
            if (
                stats
                and stats["customers"] >= customers
                and stats["sites"] >= sites
                and stats["inked"] > 0
            ):
                return stats
        time.sleep(0.05)
    raise TimeoutError("map not drawn")


def go(page: Any, title: str, heading: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.get_by_role("heading", level=1, name=heading).wait_for()


def write_customers(path: Path, n: int, region: str, seed: int = 1) -> Path:
    import numpy as np

    from planner.inputs.customers import load_demo_customers

    demo = load_demo_customers(region)
    rng = np.random.default_rng(seed)
    pick = demo.sample(n, replace=n > len(demo), random_state=seed)
    frame = pick[["lat", "lon", "weight", "segment"]].copy()
    frame["lat"] += rng.normal(0, 0.0005, n)
    frame["lon"] += rng.normal(0, 0.0005, n)
    frame.insert(0, "id", [f"U{i}" for i in range(n)])
    frame.to_csv(path, index=False)
    return path


def row(case: str, seconds: float, target: float | None, baseline: float | None) -> None:
    tgt = f"{target:.0f} s" if target else "–"
    ok = "" if target is None else ("met" if seconds < target else "MISSED")
    base = f"{baseline:.2f} s" if baseline is not None else "–"
    ratio = f"{seconds / baseline:.1f}" if baseline else "–"
    print(f"| {case} | {seconds:.2f} s | {tgt} {ok} | {base} | {ratio} |", flush=True)


def apptest_rerun(region: str, counts: tuple[int, ...] = (5, 6, 7)) -> None:
    """The Plan page's Run, in-process with AppTest, for each number of workshops in turn."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=900)
    at.query_params["region"] = region
    at.switch_page("app_pages/plan.py")
    at.run()
    for k in counts:
        at.number_input(key="workshops").set_value(k).run()
        t0 = time.perf_counter()
        next(b for b in at.button if b.label == "Run").click().run()
        while "plan_job" in at.session_state:  # a solve longer than QUICK_WAIT_S: poll
            at.session_state["plan_job"].finished.wait()
            at.run()
        app_s = time.perf_counter() - t0
        result = at.session_state["plan"]["result"]
        row(f"Run with {k} workshops (AppTest)", app_s, 2, result.solution.solve_time_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="malta")
    parser.add_argument("--skip-10k", action="store_true")
    parser.add_argument("--skip-cold", action="store_true", help="skip the empty-cache start")
    parser.add_argument(
        "--skip-compare", action="store_true", help="stop after the rerun (skips the 10k map)"
    )
    parser.add_argument(
        "--apptest-rerun",
        action="store_true",
        help="only time the Plan page's Run for 5, 6, 7 workshops in-process (baseline: solver)",
    )
    args = parser.parse_args()
    if args.apptest_rerun:
        os.environ.setdefault("PLANNER_OFFLINE", "1")
        print("| case | app | target | solver alone (baseline) | ratio |")
        print("|---|---:|---:|---:|---:|")
        apptest_rerun(args.region)
        return

    from playwright.sync_api import sync_playwright

    import planner

    work = Path(tempfile.mkdtemp(prefix="bench-app-"))
    cache = Path(os.environ.get("PLANNER_CACHE_DIR") or work / "cache")
    env = {
        "PLANNER_OFFLINE": "1",
        "PLANNER_CACHE_DIR": str(cache),
        "PLANNER_WORKSPACE_DIR": str(work / "workspace"),
    }
    os.environ.update(env)

    print("| case | app | target | library, same work (baseline) | ratio |")
    print("|---|---:|---:|---:|---:|")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)

        def session(url: str) -> Any:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.set_default_timeout(600_000)
            page.goto(f"{url}/?region={args.region}")
            return page

        if not args.skip_cold:
            cold_env = {**env, "PLANNER_CACHE_DIR": str(work / "empty-cache")}
            t0 = time.perf_counter()
            proc, url = start_app(cold_env, work / "cold.log")
            page = session(url)
            wait_map(page, customers=1000)
            row(
                "first start ever (empty cache) to the demo map",
                time.perf_counter() - t0,
                None,
                None,
            )
            page.context.close()
            proc.terminate()
            proc.wait()

        # an install prepares the disk cache (graph, demo customers): warm it in this process
        t0 = time.perf_counter()
        graph = planner.load_region(args.region)
        planner.load_demo_customers(args.region)
        prepare_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        proc, url = start_app(env, work / "warm.log")
        try:
            page = session(url)
            wait_map(page, customers=1000)
            row(
                "cold start (new server process, installed cache) to the demo map",
                time.perf_counter() - t0,
                15,
                prepare_s,
            )

            # rerun with another number of workshops (the first Run prepares the matrix)
            go(page, "Plan", "Plan")
            box = page.get_by_label("Number of workshops (existing ones included)")
            page.get_by_role("button", name="Run").click()
            page.get_by_text("Solved for 5 workshops").wait_for()
            box.fill("6")
            box.press("Enter")
            page.wait_for_timeout(500)
            t0 = time.perf_counter()
            page.get_by_role("button", name="Run").click()
            page.get_by_text("Solved on").wait_for()
            page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidget]')")
            app_s = time.perf_counter() - t0
            spec = planner.ScenarioSpec(region=args.region, workshops=7)
            t0 = time.perf_counter()
            sinst = planner.prepare_scenario(spec, graph=graph)
            planner.run(spec, sinst=sinst)
            lib_s = time.perf_counter() - t0
            row("rerun with another number of workshops", app_s, 2, lib_s)

            if args.skip_compare:
                return
            # compare on 2,000 uploaded customers
            upload = write_customers(work / "customers-2000.csv", 2000, args.region)
            go(page, "Data", "Your data")
            page.get_by_test_id("stFileUploader").filter(has_text="Upload customers").locator(
                "input[type=file]"
            ).set_input_files(str(upload))
            page.get_by_text("2,000 customers from customers-2000.csv").wait_for()
            go(page, "Compare", "Compare layouts")
            t0 = time.perf_counter()
            page.get_by_role("button", name="Compare", exact=True).click()
            page.get_by_role("heading", name="Side by side").wait_for()
            app_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            planner.compare(
                planner.ScenarioSpec(region=args.region, workshops=6), customers=upload, graph=graph
            )
            lib_s = time.perf_counter() - t0
            row("compare 3 layouts on 2,000 uploaded customers", app_s, 10, lib_s)

            if not args.skip_10k:
                big = write_customers(work / "customers-10000.csv", 10_000, args.region)
                go(page, "Data", "Your data")
                page.get_by_test_id("stFileUploader").filter(has_text="Upload customers").locator(
                    "input[type=file]"
                ).set_input_files(str(big))
                page.get_by_text("10,000 customers from customers-10000.csv").wait_for()
                go(page, "Plan", "Plan")
                page.get_by_role("button", name="Run").click()
                page.get_by_text("on 10,000 customers").wait_for()
                go(page, "Export", "Export")
                t0 = time.perf_counter()
                go(page, "Results", "Results")
                wait_map(page, customers=10_000, sites=1)
                app_s = time.perf_counter() - t0
                from app_pages import _shared  # noqa: F401  (same map code as the page)
                from planner.outputs import maps

                result = planner.run(
                    planner.ScenarioSpec(region=args.region, workshops=6),
                    customers=big,
                    graph=graph,
                )
                t0 = time.perf_counter()
                maps.map_html(maps.result_map(result.result, roads=maps.main_roads(graph)))
                lib_s = time.perf_counter() - t0
                row("10,000-customer result map drawn", app_s, 3, lib_s)
        finally:
            proc.terminate()
            proc.wait()
            browser.close()
    print(f"\n(work folder {work}; server logs there)")


if __name__ == "__main__":
    main()
