"""Hosted for a team: 20 signed-in users on one app server, on loopback.

Run from the repository root (Debian's chromium through Playwright)::

    flock /tmp/cpu.lock /work/venv/bin/python benchmarks/bench_hosted.py --clients-idle  # 20 users
    flock /tmp/cpu.lock /work/venv/bin/python benchmarks/bench_hosted.py --users 5 --max-jobs 1

or part by part, each under its own lock hold, on one work folder::

    W=/tmp/bench-hosted; for part in users quitter restart; do
      flock /tmp/cpu.lock /work/venv/bin/python benchmarks/bench_hosted.py --part $part --work $W \
        --clients-idle
    done

The twenty browsers stand in for twenty people's own computers; on one machine they use several
times the app server's CPU. ``--clients-idle`` runs them (and this script's Playwright driver)
under Linux's ``SCHED_IDLE`` policy: they get a core only when the app server and the websocket
user leave it free, as browsers on other computers would not take the server's cores at all.
``--clients-nice 10`` lowers their niceness instead (weaker: twenty niced browsers together
still outweigh the server's threads). The app server, its job threads (``PLANNER_JOB_NICE``)
and the websocket user keep their own priorities either way.

Starts ``streamlit run app.py`` in the trusted-header sign-in mode (``PLANNER_AUTH=header``,
each browser context sends its own ``X-Forwarded-User``, as an authenticating proxy would) with
``PLANNER_MAX_JOBS`` slots. Every user at once uploads their own customer file (a different
number of customers each), runs a plan and saves it. Checks and prints:

- every user got their own answer (their customer count in "Solved on ...");
- no user sees another's scenario in "Saved scenarios";
- the queue never ran more than ``PLANNER_MAX_JOBS`` jobs (the server writes each job start
  and end to ``$PLANNER_QUEUE_LOG``);
- page switches while the queue is full (target p95 < 1 s), against the same switches on the
  idle server measured first (the baseline), by two more users, each in a process of its own
  at the script's first priority: one in a Chromium of its own (click to title shown) and one
  speaking Streamlit's websocket protocol (request to the page's title and to the page's end:
  the server's answer, not slowed by a browser drawing it; this one is checked against the
  target, over the whole run and over the spans in which every queue slot was taken);
- the CPU the app server and the browsers used while the users worked;
- a user who closes the tab mid-solve: seconds until the queue frees the slot (target < 10 s);
- a server restart: every saved scenario is listed and opens again, and no half-written file
  or upload is left in the workspace.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_app import ARGS, CHROMIUM, start_app

from planner.hosting.queue import default_job_nice

REGION = "liechtenstein"
HEADINGS = {"Data": "Your data", "Costs": "Cost assumptions", "Export": "Export"}
T0 = time.perf_counter()


def note(message: str) -> None:
    """A timestamped progress line on stderr (where a slow run spends its time)."""
    print(f"[{time.perf_counter() - T0:7.1f} s] {message}", file=sys.stderr, flush=True)


def customer_files(folder: Path, users: int, base: int = 120) -> dict[int, tuple[Path, int]]:
    """One customer file per user, drawn from the region's demo customers: ``base + 7 i``
    customers for user ``i`` (so every answer names its own user)."""
    from planner.inputs import customers as demand

    demo = demand.load_demo_customers(REGION)
    rows = demo[["customer_id", "lat", "lon", "weight", "segment"]].rename(
        columns={"customer_id": "id"}
    )
    largest = base + 7 * (users - 1)
    if largest > len(rows):
        # capping would give two users the same count, and the own-answer check reads it
        raise SystemExit(
            f"--customers {base} with {users} users needs {largest:,} demo customers; "
            f"{REGION} has {len(rows):,}: lower --customers or --users"
        )
    out = {}
    for i in range(users):
        n = base + 7 * i
        path = folder / f"customers-{i:02d}.csv"
        path.write_text(rows.sample(n=n, random_state=i).to_csv(index=False))
        out[i] = (path, n)
    return out


async def new_user(browser, url: str, who: str):
    context = await browser.new_context(
        viewport={"width": 1300, "height": 900}, extra_http_headers={"X-Forwarded-User": who}
    )
    page = await context.new_page()
    page.set_default_timeout(900_000)
    await page.goto(f"{url}/?region={REGION}")
    await page.get_by_role("heading", level=1, name="Your data").wait_for()
    return context, page


async def go(page, title: str) -> float:
    t0 = time.perf_counter()
    await page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    await page.get_by_role("heading", level=1, name=HEADINGS.get(title, title)).wait_for()
    return time.perf_counter() - t0


async def saved_options(
    page, expected: list[str] | None = None, timeout_s: float = 120
) -> list[str]:
    """The "Saved scenarios" options once they equal ``expected`` (or the last seen): on a
    busy server the page may still show the list of the run before the save."""
    deadline = time.monotonic() + timeout_s
    while True:
        await page.get_by_text("ODbL 1.0").last.wait_for()
        await page.wait_for_timeout(1500)
        select = page.get_by_label("Saved scenarios")
        texts: list[str] = []
        if not await select.is_disabled():
            await select.click()
            texts = [t.strip() for t in await page.get_by_role("option").all_inner_texts()]
            await page.keyboard.press("Escape")
        if expected is None or texts == expected or time.monotonic() > deadline:
            return texts


async def one_user(browser, url: str, i: int, path: Path, n: int) -> dict:
    who = f"user{i:02d}@example.com"
    context, page = await new_user(browser, url, who)
    note(f"{who}: Data page shown")
    uploader = page.get_by_test_id("stFileUploader").filter(has_text="Upload customers")
    await uploader.locator("input[type=file]").set_input_files(str(path))
    await page.get_by_text(f"{n:,} customers from {path.name}").wait_for()
    note(f"{who}: upload checked")
    await go(page, "Plan")
    t0 = time.perf_counter()
    await page.get_by_role("button", name="Run").click()
    answer = page.get_by_text("Solved for").or_(page.get_by_text("Could not plan"))
    await answer.first.wait_for()
    solved_s = time.perf_counter() - t0
    solved_on = await answer.first.inner_text()
    note(f"{who}: answered in {solved_s:.1f} s: {solved_on[:100]}")
    await go(page, "Data")
    box = page.get_by_label("Scenario name")
    await box.fill(f"Plan of user {i:02d}")
    await box.press("Enter")
    await page.wait_for_timeout(500)
    await page.get_by_role("button", name="Save scenario").click()
    # "Saved as ..." may be gone before it is seen (a job panel on the page reruns it): the
    # saved list below tells
    seen = await saved_options(page, [f"plan-of-user-{i:02d}"])
    note(f"{who}: saved")
    await context.close()
    return {"who": who, "n": n, "solved_on": solved_on, "solved_s": solved_s, "seen": seen}


async def browse(
    browser, url: str, stop: Callable[[], bool]
) -> list[tuple[float, float, float, str]]:
    """A user in Chromium switching pages while the others' plans run, until ``stop()``: each
    switch as (seconds from the click to the title shown, the same, wall-clock start, page),
    the shape of :func:`socket_switches`."""
    context, page = await new_user(browser, url, "browser@example.com")
    out: list[tuple[float, float, float, str]] = []
    k = 0
    while not stop():
        title = ["Costs", "Export", "Data"][k % 3]
        started = time.time()
        seconds = await go(page, title)
        out.append((seconds, seconds, started, title))
        k += 1
        await asyncio.sleep(0.3)
    await context.close()
    return out


class SocketUser:
    """A signed-in user speaking Streamlit's own websocket protocol (no browser): page switches
    timed on the server's side of the wire, from the request to the page's title (and to the
    end of the page), without the CPU of a browser drawing it."""

    def __init__(self, url: str, who: str) -> None:
        self.uri = url.replace("http", "ws", 1) + "/_stcore/stream"
        self.who = who
        self.pages: dict[str, str] = {}

    async def __aenter__(self) -> SocketUser:
        import websockets

        self._conn = websockets.connect(
            self.uri,
            subprotocols=["streamlit"],
            additional_headers={"X-Forwarded-User": self.who},
            max_size=None,
        )
        self.ws = await self._conn.__aenter__()
        await self._run(f"region={REGION}", "")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._conn.__aexit__(*exc)

    async def _run(self, query: str, page_hash: str, title: str = "") -> tuple[float, float]:
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_script_hash = page_hash
        t0 = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        heading = float("nan")
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(await self.ws.recv())
            kind = fwd.WhichOneof("type")
            if kind == "navigation":
                self.pages = {p.page_name: p.page_script_hash for p in fwd.navigation.app_pages}
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                if element.WhichOneof("type") == "heading" and element.heading.body == title:
                    heading = time.perf_counter() - t0
            elif kind == "script_finished":
                return heading, time.perf_counter() - t0

    async def switch(self, title: str) -> tuple[float, float]:
        """Seconds to the page's title and to its end."""
        return await self._run("", self.pages[title], HEADINGS.get(title, title))


async def socket_switches(
    url: str, who: str, stop: Callable[[], bool] | None, n: int = 12
) -> list[tuple[float, float, float, str]]:
    """Page switches of a websocket user: until ``stop()`` says True, else ``n`` of them; each
    as (seconds to the title, to the page's end, wall-clock start, page)."""
    out: list[tuple[float, float, float, str]] = []
    async with SocketUser(url, who) as user:
        k = 0
        while (stop is None and k < n) or (stop is not None and not stop()):
            title = ["Costs", "Export", "Data"][k % 3]
            started = time.time()
            out.append((*await user.switch(title), started, title))
            k += 1
            await asyncio.sleep(0.3)
    return out


async def wait_for_file(path: Path, proc: subprocess.Popen | None = None) -> None:
    """Until ``path`` exists (or ``proc``, which should write it, has ended)."""
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"a prober process ended with code {proc.returncode}")
        await asyncio.sleep(0.05)


PROBES = ("socket", "browser")
PROBE_COMMAND = (sys.executable, __file__, "--probe")


async def probe(url: str, folder: Path, kind: str) -> None:
    """A page-switching user's own process (``--probe``; ``kind`` "socket": the websocket
    user, "browser": one Chromium user), steered by files in ``folder``: ``baseline`` -> 12
    switches into ``KIND-baseline.json``; ``go`` -> switches until ``stop``, into
    ``KIND-busy.json``. Its own process at the script's first priority, so neither the twenty
    browsers nor their Playwright driver (this script's main process, niced or idle) delay it."""
    stop = folder / "stop"
    if kind == "socket":
        await wait_for_file(folder / "baseline")
        base = await socket_switches(url, "socket-baseline@example.com", None)
        (folder / f"{kind}-baseline.json").write_text(json.dumps(base))
        await wait_for_file(folder / "go")
        busy = await socket_switches(url, "socket-browser@example.com", stop.exists)
    else:
        from playwright.async_api import async_playwright

        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            await wait_for_file(folder / "baseline")
            base = await baseline_switches(browser, url)
            (folder / f"{kind}-baseline.json").write_text(json.dumps(base))
            await wait_for_file(folder / "go")
            busy = await browse(browser, url, stop.exists)
            await browser.close()
    (folder / f"{kind}-busy.json.tmp").write_text(json.dumps(busy))
    (folder / f"{kind}-busy.json.tmp").rename(folder / f"{kind}-busy.json")


def start_probers(url: str, folder: Path) -> list[subprocess.Popen]:
    """The page-switching users' processes (:data:`PROBES`), at this script's priority
    (start them before nicing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        path.unlink()
    return [
        subprocess.Popen(
            [*PROBE_COMMAND, url, "--probe-kind", kind, "--work", str(folder), "--region", REGION],
            stdout=sys.stderr,
        )
        for kind in PROBES
    ]


async def probe_results(folder: Path, name: str, procs: list[subprocess.Popen]) -> list[list]:
    """Each prober's ``KIND-NAME.json`` once written, in :data:`PROBES` order."""
    out = []
    for kind, proc in zip(PROBES, procs, strict=True):
        await wait_for_file(folder / f"{kind}-{name}.json", proc)
        out.append(json.loads((folder / f"{kind}-{name}.json").read_text()))
    return out


def full_intervals(log_lines: list[str], limit: int) -> list[tuple[float, float]]:
    """The spans (start, end, epoch seconds) in which the queue log shows ``limit`` jobs
    running: each line is ``time, event, user, kind, jobs running after the event``."""
    spans, since = [], None
    for line in log_lines:
        t, _event, _user, _kind, running = line.split("\t")
        if int(running) >= limit and since is None:
            since = float(t)
        elif int(running) < limit and since is not None:
            spans.append((since, float(t)))
            since = None
    if since is not None:  # still full when the log ends
        spans.append((since, float("inf")))
    return spans


def pct95(values: list[float]) -> float:
    p = sorted(values)
    return p[min(len(p) - 1, int(0.95 * len(p)))] if p else float("nan")


async def baseline_switches(
    browser, url: str, n: int = 12
) -> list[tuple[float, float, float, str]]:
    """Page switches on the idle server, once the first page has shown the region's roads and
    demo customers (the server's cold start is not part of the baseline); shaped like
    :func:`browse`'s."""
    context, page = await warm_page(browser, url, "baseline@example.com")
    times = []
    for k in range(n):
        title = ["Costs", "Export", "Data"][k % 3]
        started = time.time()
        seconds = await go(page, title)
        times.append((seconds, seconds, started, title))
    await context.close()
    return times


async def warm_page(browser, url: str, who: str):
    """A user's Data page once it shows the region's roads and demo customers (the first one
    to open loads them)."""
    context, page = await new_user(browser, url, who)
    await page.get_by_text("demo customers in").wait_for()
    note("server warm: roads and demo customers shown")
    return context, page


async def quitter(browser, url: str, queue_log: Path) -> float | None:
    """Start a long solve (Malta, 2,000 demo customers, 25 workshops), close the tab, and
    time until the queue frees the slot."""
    context = await browser.new_context(
        viewport={"width": 1300, "height": 900},
        extra_http_headers={"X-Forwarded-User": "quitter@example.com"},
    )
    page = await context.new_page()
    page.set_default_timeout(900_000)
    await page.goto(f"{url}/?region=malta")
    await page.get_by_role("heading", level=1, name="Your data").wait_for()
    await page.get_by_text("demo customers in").wait_for()  # the roads are in
    await go(page, "Plan")
    box = page.get_by_label("Number of workshops (existing ones included)")
    await box.fill("25")
    await box.press("Enter")
    await page.wait_for_timeout(500)
    await page.get_by_role("button", name="Run").click()
    await page.get_by_role("button", name="Stop").wait_for()
    closed = time.time()
    note("quitter: tab closed mid-solve")
    await context.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in queue_log.read_text().splitlines():
            t, event, user, kind, _n = line.split("\t")
            if event in ("end", "abandon") and user == "quitter@example.com" and kind == "plan":
                return float(t) - closed
        await asyncio.sleep(0.2)
    return None


def server_env(work: Path, max_jobs: int) -> dict[str, str]:
    return {
        "PLANNER_OFFLINE": "1",
        "PLANNER_AUTH": "header",
        "PLANNER_AUTH_HEADER": "X-Forwarded-User",
        "PLANNER_MAX_JOBS": str(max_jobs),
        "PLANNER_WORKSPACE_DIR": str(work / "workspace"),
        "PLANNER_QUEUE_LOG": str(work / "queue.tsv"),
        "PLANNER_CACHE_DIR": str(work / "cache"),
    }


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these processes and their ended children
    (Linux /proc; a closed tab's renderer counts in its browser's children)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def browser_pids(*outside: int) -> list[int]:
    """This script's browser processes: its descendants outside the app server and the
    probers (the pids in ``outside``)."""
    parent: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                parent[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    mine, grew = {os.getpid()}, True
    while grew:
        new = {pid for pid, ppid in parent.items() if ppid in mine and pid not in outside}
        grew = not new <= mine
        mine |= new
    return sorted(mine - {os.getpid()})


def load_line() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


async def part_users(args: argparse.Namespace, work: Path) -> bool:
    """Every user uploads, runs a plan and saves, while one more user switches pages."""
    from playwright.async_api import async_playwright

    queue_log = work / "queue.tsv"
    queue_log.touch()
    files = customer_files(work, args.users, args.customers)
    print(f"users part: {load_line()} at the start")
    proc, url = start_app(server_env(work, args.max_jobs), work / "server.log")
    probe_dir = work / "probe"
    probers = start_probers(url, probe_dir)
    if args.clients_nice:
        os.nice(args.clients_nice)  # this process and the browsers it starts from now on
    if args.clients_idle:  # run only when the server and the prober leave a core free
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context, _page = await warm_page(browser, url, "warm-up@example.com")
            await context.close()
            (probe_dir / "baseline").touch()
            socket_base, chromium_base = await probe_results(probe_dir, "baseline", probers)
            note("baseline done")
            (probe_dir / "go").touch()
            t0 = time.perf_counter()
            outside = (proc.pid, *(x.pid for x in probers))
            cpu0 = cpu_seconds([proc.pid]), cpu_seconds(browser_pids(*outside))
            results = await asyncio.gather(
                *(one_user(browser, url, i, *files[i]) for i in range(args.users))
            )
            wall = time.perf_counter() - t0
            (probe_dir / "stop").touch()
            socket_busy, chromium_busy = await probe_results(probe_dir, "busy", probers)
            server_cpu = cpu_seconds([proc.pid]) - cpu0[0]
            browsers_cpu = cpu_seconds(browser_pids(*outside)) - cpu0[1]
            await browser.close()
    finally:
        for prober in probers:
            prober.terminate()
            prober.wait(timeout=60)
        proc.terminate()
        proc.wait(timeout=60)
    print(f"users part: {load_line()} at the end")
    roads_jobs = sum(
        1 for x in queue_log.read_text().splitlines() if "\tstart\t" in x and "\troads\t" in x
    )

    own = all(f"{r['n']:,} customers" in r["solved_on"] for r in results)
    private = all(r["seen"] == [f"plan-of-user-{i:02d}"] for i, r in enumerate(results))
    starts = [x.split("\t") for x in queue_log.read_text().splitlines() if "\tstart\t" in x]
    t_first_run = min((float(x[0]) for x in starts if x[3] == "plan"), default=0.0)
    peak = max((int(x[4]) for x in starts), default=0)
    kinds = sorted({x[3] for x in starts})
    switches = [x[0] for x in chromium_busy]
    p = sorted(switches)
    p95 = pct95(switches)
    b95 = pct95([x[0] for x in chromium_base])
    print(
        f"{args.users} users, PLANNER_MAX_JOBS={args.max_jobs}, region {REGION}, browsers at "
        f"nice {args.clients_nice}{' under SCHED_IDLE' if args.clients_idle else ''}, job "
        f"threads at nice {default_job_nice()}"
    )
    print(
        f"all done in {wall:.1f} s; time to answer per user (Run to result): median "
        f"{statistics.median(r['solved_s'] for r in results):.1f} s, max "
        f"{max(r['solved_s'] for r in results):.1f} s"
    )
    print(f"every user got their own answer: {own}")
    print(f"no user saw another's scenario: {private}")
    for i, r in enumerate(results):
        if r["seen"] != [f"plan-of-user-{i:02d}"]:
            print(f"  {r['who']} saw {r['seen']}")
    print(
        f"CPU while the users worked: app server {server_cpu:.0f} s, the browsers "
        f"{browsers_cpu:.0f} s ({wall:.0f} s wall clock, {os.cpu_count()} cores)"
    )
    print(
        f"queue: {len(starts)} jobs ({', '.join(kinds)}; {roads_jobs} roads loads), at most "
        f"{peak} running at once (limit {args.max_jobs})"
    )
    print(
        f"page switch in Chromium while the queue is busy (one user in a browser of its own, "
        f"at the script's first priority; click to title shown; {len(p)} switches): p50 "
        f"{statistics.median(p):.2f} s, p95 {p95:.2f} s, max {p[-1]:.2f} s; idle server "
        f"p95 {b95:.2f} s (busy / idle = {p95 / b95:.2f})"
    )
    heads = [x[0] for x in socket_busy]
    fulls = [x[1] for x in socket_busy]
    print(
        f"page switch answered by the server while the queue is busy (websocket user in its "
        f"own process, "
        f"{len(heads)} switches): title p50 {statistics.median(heads):.2f} s, p95 "
        f"{pct95(heads):.2f} s; whole page p50 {statistics.median(fulls):.2f} s, p95 "
        f"{pct95(fulls):.2f} s; idle server: title p95 "
        f"{pct95([x[0] for x in socket_base]):.2f} s, whole page p95 "
        f"{pct95([x[1] for x in socket_base]):.2f} s"
    )
    spans = full_intervals(queue_log.read_text().splitlines(), args.max_jobs)
    in_full = [x for x in socket_busy if any(a <= x[2] <= b for a, b in spans)]
    full_heads = [x[0] for x in in_full]
    chromium_full = [x[0] for x in chromium_busy if any(a <= x[2] <= b for a, b in spans)]
    print(
        f"the queue was full ({args.max_jobs} running) for {sum(b - a for a, b in spans):.0f} s "
        f"of the {wall:.0f} s; websocket switches started then ({len(in_full)}): title p50 "
        + (
            f"{statistics.median(full_heads):.2f} s, p95 {pct95(full_heads):.2f} s; whole page "
            f"p95 {pct95([x[1] for x in in_full]):.2f} s"
            if in_full
            else "none"
        )
        + f"; Chromium switches started then ({len(chromium_full)}): "
        + (
            f"p50 {statistics.median(chromium_full):.2f} s, p95 {pct95(chromium_full):.2f} s"
            if chromium_full
            else "none"
        )
    )
    slow = sorted(socket_busy, reverse=True)[: max(1, len(socket_busy) // 20)]
    print(
        "slowest 5 % of the websocket switches (title s, page, seconds after the first Run): "
        + ", ".join(f"{h:.2f} {page} +{start - t_first_run:.0f}" for h, _f, start, page in slow)
    )
    (work / "users.json").write_text(json.dumps({"users": args.users}))
    fast = pct95(heads) < 1.0 and (not full_heads or pct95(full_heads) < 1.0)
    return own and private and peak <= args.max_jobs and fast


async def part_quitter(args: argparse.Namespace, work: Path) -> bool:
    """A user closes the tab mid-solve: seconds until the slot is free."""
    from playwright.async_api import async_playwright

    queue_log = work / "queue.tsv"
    queue_log.touch()
    print(f"quitter part: {load_line()} at the start")
    proc, url = start_app(server_env(work, args.max_jobs), work / "server-quitter.log")
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            freed = await quitter(browser, url, queue_log)
            await browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    print(f"quitter part: {load_line()} at the end")
    print(f"closed tab mid-solve: slot freed after {freed if freed is None else round(freed, 1)} s")
    return freed is not None and freed < 10


async def part_restart(args: argparse.Namespace, work: Path) -> bool:
    """A restart on the users part's workspace: nothing saved lost, nothing half-written."""
    from playwright.async_api import async_playwright

    expected = json.loads((work / "users.json").read_text())["users"]
    workspace = work / "workspace"
    print(f"restart part: {load_line()}")
    proc, url = start_app(server_env(work, args.max_jobs), work / "server-restart.log")
    try:
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            _context, page = await new_user(browser, url, "user00@example.com")
            seen = await saved_options(page, ["plan-of-user-00"])
            await browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    saved = sorted(workspace.glob("users/*/*/scenario.toml"))
    hidden = [q for q in workspace.rglob(".*") if q.name != "."]
    uploads = list(workspace.rglob("uploads/*"))
    print(
        f"after a restart: {len(saved)} saved scenarios on disk (expected {expected}); "
        f"user00 sees {seen}; half-written or hidden folders left: {len(hidden)}; "
        f"uploads left: {len(uploads)}"
    )
    return len(saved) == expected and seen == ["plan-of-user-00"] and not hidden


PARTS = {"users": part_users, "quitter": part_quitter, "restart": part_restart}


async def main_async(args: argparse.Namespace, work: Path) -> int:
    ok = True
    for name in PARTS if args.part == "all" else [args.part]:
        ok &= await PARTS[name](args, work)
    print("PASS" if ok else "FAIL", f"(work folder {work})")
    return 0 if ok else 1


def each_part_apart(args: argparse.Namespace, work: Path) -> int:
    """``--part all`` with ``--clients-nice`` or ``--clients-idle``: each part in a process of
    its own (a niced process cannot start the next part's app server at the normal priority
    again)."""
    ok = True
    for name in PARTS:
        command = [sys.executable, __file__, "--part", name, "--work", str(work)]
        command += ["--users", str(args.users), "--max-jobs", str(args.max_jobs)]
        command += ["--region", REGION, "--customers", str(args.customers)]
        command += ["--clients-nice", str(args.clients_nice)]
        command += ["--clients-idle"] if args.clients_idle else []
        ok &= subprocess.run(command, check=False).returncode == 0
    print("PASS" if ok else "FAIL", f"(work folder {work})")
    return 0 if ok else 1


def main() -> None:
    global REGION  # noqa: PLW0603 (one region for the whole run, the prober's process too)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--max-jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--part",
        choices=["all", *PARTS],
        default="all",
        help="run one part only (each under its own lock hold); restart needs the users "
        "part's --work folder",
    )
    parser.add_argument("--work", type=Path, help="work folder (default: a new temporary one)")
    parser.add_argument(
        "--clients-idle",
        action="store_true",
        help="run the simulated browsers under the SCHED_IDLE policy (Linux)",
    )
    parser.add_argument(
        "--clients-nice",
        type=int,
        default=0,
        help="niceness of the simulated browsers (0-19; the app server and the websocket "
        "user keep the normal priority)",
    )
    parser.add_argument(
        "--region",
        default=REGION,
        choices=["liechtenstein", "andorra", "malta"],
        help="bundled region of the users' plans (default %(default)s; malta: longer solves, "
        "so the queue stays full)",
    )
    parser.add_argument(
        "--customers",
        type=int,
        default=120,
        help="customers in the first user's file (user i has 7 i more; default %(default)s)",
    )
    # a prober's own process (start_probers)
    parser.add_argument("--probe", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--probe-kind", choices=PROBES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    REGION = args.region
    if args.probe:
        asyncio.run(probe(args.probe, args.work, args.probe_kind))
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-hosted-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.part == "all" and (args.clients_nice or args.clients_idle):
        sys.exit(each_part_apart(args, work))
    sys.exit(asyncio.run(main_async(args, work)))


if __name__ == "__main__":
    main()
