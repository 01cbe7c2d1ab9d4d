"""Load test: ten browser sessions at once on one app server, on loopback.

Run from the repository root::

    .venv/bin/python benchmarks/load_app.py                 # 10 sessions, Liechtenstein
    .venv/bin/python benchmarks/load_app.py --sessions 5 --region malta

Starts ``streamlit run app.py`` with an empty library cache, opens N headless Chromium
sessions (Debian's chromium through Playwright) at the same moment, and in each goes to the
Plan page and presses Run for the same question. Reports each session's time to its result,
and checks that every session got the same result and that the shared caches (prepared
instance with its travel-time matrix, solved result) were built once, not N times: the app
writes one line per shared-cache build to ``$PLANNER_APP_BUILD_LOG``. Baseline: one session
alone on a fresh server, measured first in this process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_app import ARGS, CHROMIUM, start_app


async def one_session(browser, url: str, region: str) -> tuple[float, str]:
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(900_000)
    t0 = time.perf_counter()
    await page.goto(f"{url}/?region={region}")
    await page.get_by_role("heading", level=1, name="Your data").wait_for()
    await page.get_by_test_id("stSidebarNav").get_by_text("Plan", exact=True).click()
    await page.get_by_role("button", name="Run").click()
    solved = page.get_by_text("Solved for")
    await solved.wait_for()
    text = await solved.inner_text()
    metric = await page.get_by_test_id("stMetricValue").first.inner_text()
    await context.close()
    return time.perf_counter() - t0, f"{text} | {metric}"


async def wave(url: str, region: str, n: int) -> list[tuple[float, str]]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            return await asyncio.gather(*(one_session(browser, url, region) for _ in range(n)))
        finally:
            await browser.close()


def serve_and_run(work: Path, tag: str, region: str, n: int) -> tuple[list, collections.Counter]:
    build_log = work / f"builds-{tag}.tsv"
    env = {
        "PLANNER_OFFLINE": "1",
        "PLANNER_CACHE_DIR": str(work / f"cache-{tag}"),
        "PLANNER_WORKSPACE_DIR": str(work / f"ws-{tag}"),
        "PLANNER_APP_BUILD_LOG": str(build_log),
    }
    proc, url = start_app(env, work / f"server-{tag}.log")
    try:
        results = asyncio.run(wave(url, region, n))
    finally:
        proc.terminate()
        proc.wait()
    builds = collections.Counter(
        line.split("\t")[0] for line in build_log.read_text().splitlines() if line
    )
    return results, builds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--region", default="liechtenstein")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="load-app-"))
    try:
        alone, alone_builds = serve_and_run(work, "one", args.region, 1)
        many, many_builds = serve_and_run(work, "many", args.region, args.sessions)
    finally:
        pass
    base = alone[0][0]
    times = sorted(t for t, _ in many)
    answers = {a for _, a in many}
    print(f"one session alone, fresh server and cache: {base:.1f} s; builds {dict(alone_builds)}")
    print(
        f"{args.sessions} sessions at once: all got a result: {len(many) == args.sessions}; "
        f"same result: {len(answers) == 1}; first {times[0]:.1f} s, median "
        f"{times[len(times) // 2]:.1f} s, last {times[-1]:.1f} s "
        f"(last / alone = {times[-1] / base:.2f})"
    )
    print(f"shared-cache builds with {args.sessions} sessions: {dict(many_builds)}")
    once = all(v == 1 for v in many_builds.values())
    print("each shared cache entry built once:", once)
    print(f"(work folder {work})")
    if not once or len(answers) != 1:
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PLANNER_OFFLINE", "1")
    main()
