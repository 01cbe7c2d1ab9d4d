"""Regions in the app, from picking the region to the map, in headless Chromium: search the
catalog of a loopback download server, download the 8 x 8 tiled Malta extract, upload the
customers of one quarter of it (the roads are trimmed to them + 30 km while read), plan 5
workshops, see them on the Results map. Baseline, in this same run: ``planner run --region
europe/tiled --customers FILE --workshops 5`` (the CLI target of issue 23), cold and warm.

Builds nothing itself: give it the tiled extract and its customers
(``benchmarks/make_tiled_pbf.py --tiles 8 --customers 4000 --out /tmp/tiled8.osm.pbf``); the
customers kept are those of the 4 x 4 south-west tiles, as in ``bench_regions.py``.

Parts, in this order (each under its own ``flock /tmp/cpu.lock``: one lock hold stays under
10 minutes); ``--work DIR`` keeps the caches between parts::

    for part in cli-cold cli-warm app-cold app-warm; do
      flock /tmp/cpu.lock python benchmarks/bench_regions_app.py --pbf /tmp/tiled8.osm.pbf \
        --work /tmp/bra --part $part
    done

``cli-cold``: ``planner run`` on an empty cache (download + trim + build + solve);
``cli-warm``: the same again. ``app-cold``: a fresh app server on an empty cache (the
download, the trimmed load, the matrix and the solve); ``app-warm``: a new server on that
cache (a restarted app: the extract on disk), then a second browser session on the same
server (everything in memory). The app parts print their stages and the ratio against the
CLI figure of the same kind measured with the same ``--work``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_app import ARGS, CHROMIUM, go, start_app, wait_map  # noqa: E402
from bench_regions import DX, DY, _child, _tiled_feature  # noqa: E402

from tests._regions_server import index_document, region_server  # noqa: E402

WORKSHOPS = 5


def quarter_customers(customers: Path, work: Path) -> tuple[Path, int]:
    """The customers of the 4 x 4 south-west tiles (as ``bench_regions.bench_run``)."""
    frame = pd.read_csv(customers)
    quarter = frame[(frame["lon"] < 15.35) & (frame["lat"] < 35.78 + 4 * DY)]
    assert DX > 0
    path = work / "quarter.csv"
    quarter.to_csv(path, index=False)
    return path, len(quarter)


def serve(state: Any, pbf: Path) -> None:
    state.files["/europe/tiled-latest.osm.pbf"] = pbf.read_bytes()
    state.files["/index-v1.json"] = index_document(state.url).replace(
        b'"features": [', b'"features": [' + _tiled_feature(state.url) + b", ", 1
    )


def _figures(work: Path) -> dict[str, float]:
    path = work / "cli.json"
    return json.loads(path.read_text()) if path.is_file() else {}  # type: ignore[no-any-return]


def part_cli(state: Any, quarter: Path, work: Path, label: str) -> None:
    env = {
        "PYTHONPATH": str(REPO),
        "PLANNER_DOWNLOAD_URL": state.url,
        "PLANNER_CACHE_DIR": str(work / "cache-cli"),
    }
    cli = [sys.executable, "-m", "planner.cli", "run", "--region", "europe/tiled"]
    cli += ["--customers", str(quarter), "--workshops", str(WORKSHOPS), "--overwrite"]
    if label == "cold":
        shutil.rmtree(env["PLANNER_CACHE_DIR"], ignore_errors=True)
    s, gb, out = _child([*cli, "--out", str(work / "out-cli")], env)
    kept = [line for line in out.splitlines() if line.startswith("Kept")]
    status = [line for line in out.splitlines() if "proven" in line or "gap" in line]
    print(f"planner run {label}: {s:.1f} s, peak {gb:.2f} GB; {kept[:1]} {status[-1:]}")
    (work / "cli.json").write_text(json.dumps({**_figures(work), label: s}))


class Clock:
    """Stage times of one pass through the app."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.last = self.t0
        self.stages: list[tuple[str, float]] = []

    def mark(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages.append((stage, now - self.last))
        self.last = now

    @property
    def total(self) -> float:
        return self.last - self.t0

    def line(self) -> str:
        return ", ".join(f"{name} {s:.1f} s" for name, s in self.stages)


def pick_to_map(page: Any, url: str, quarter: Path, n_customers: int) -> Clock:
    """Pick the region in the catalog, download or use it, upload the customers, plan, map."""
    clock = Clock()
    page.goto(f"{url}/?region=liechtenstein")
    page.get_by_role("heading", level=1, name="Your data").wait_for()
    page.get_by_text("Find a region", exact=False).click()
    search = page.get_by_role("textbox", name="Search regions")
    search.fill("tiled")
    search.press("Enter")
    action = page.get_by_role("button", name=re.compile(r"^(Download Tiled Malta|Use tiled-)"))
    action.wait_for()
    clock.mark("catalog search")
    downloading = action.inner_text().startswith("Download")
    action.click()
    if downloading:
        page.get_by_text("Downloaded Tiled Malta", exact=False).wait_for()
        clock.mark("download")
    page.get_by_text("is a large road file", exact=False).wait_for()
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Upload customers")
    uploader.locator("input[type=file]").set_input_files(str(quarter))
    page.get_by_text("Kept the roads of", exact=False).wait_for()  # after the upload's check
    clock.mark("trimmed roads loaded, customers checked")
    page.get_by_text(f"{n_customers:,} customers from {quarter.name} in").wait_for()
    wait_map(page, customers=n_customers)
    clock.mark("Data map drawn")
    go(page, "Plan", "Plan")
    page.get_by_role("button", name="Run").click()
    page.get_by_text(f"Solved for {WORKSHOPS}", exact=False).wait_for()
    clock.mark(f"plan {WORKSHOPS} workshops")
    go(page, "Results", "Results")
    wait_map(page, customers=n_customers, sites=WORKSHOPS)
    clock.mark("results map")
    return clock


def _browser_pass(url: str, quarter: Path, n: int, shots: Path) -> Clock:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            page = context.new_page()
            page.set_default_timeout(600_000)
            try:
                return pick_to_map(page, url, quarter, n)
            finally:
                page.screenshot(path=str(shots), full_page=True)
                context.close()
        finally:
            browser.close()


def part_app(state: Any, quarter: Path, n: int, work: Path, label: str) -> None:
    cli = _figures(work)
    env = {
        "PLANNER_DOWNLOAD_URL": state.url,
        "PLANNER_CACHE_DIR": str(work / "cache-app"),
        "PLANNER_WORKSPACE_DIR": str(work / "workspace"),
        "PLANNER_OFFLINE": "",
    }

    def report(label: str, clock: Clock, baseline: float | None) -> None:
        ratio = f", app / planner run {clock.total / baseline:.2f}" if baseline else ""
        print(f"app {label}: {clock.total:.1f} s ({clock.line()}){ratio}", flush=True)

    passes: list[tuple[str, str | None, bool]] = (
        [("cold (fresh server, empty cache)", "cold", True)]
        if label == "cold"
        else [
            ("warm (restarted server, same cache)", "warm", True),
            ("warm (second session, same server)", "warm", False),
        ]
    )
    if label == "cold":
        shutil.rmtree(env["PLANNER_CACHE_DIR"], ignore_errors=True)
    proc = None
    try:
        for k, (name, base, restart) in enumerate(passes):
            if restart:
                if proc is not None:
                    proc.terminate()
                    proc.wait(timeout=60)
                proc, url = start_app(env, work / f"streamlit-{k}.log")
            clock = _browser_pass(url, quarter, n, work / f"app-{k}.png")
            report(name, clock, cli.get(base) if base else None)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbf", type=Path, required=True, help="the 8 x 8 tiled extract")
    parser.add_argument("--customers", type=Path, help="default: <pbf>.customers.csv")
    parser.add_argument("--work", type=Path, required=True, help="caches kept between parts")
    parser.add_argument(
        "--part", choices=("cli-cold", "cli-warm", "app-cold", "app-warm"), required=True
    )
    args = parser.parse_args()
    customers = args.customers or args.pbf.with_suffix(".customers.csv")
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    quarter, n = quarter_customers(customers, work)
    print(f"{args.pbf.name}: {args.pbf.stat().st_size / 1e6:.1f} MB, {n:,} customers kept")
    kind, label = args.part.split("-")
    part: Callable[..., None] = part_cli if kind == "cli" else part_app
    extra = () if kind == "cli" else (n,)
    with region_server() as state:
        serve(state, args.pbf)
        part(state, quarter, *extra, work, label)


if __name__ == "__main__":
    main()
