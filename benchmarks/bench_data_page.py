"""The Python time of a Data page rerun (issue 24): a user with an uploaded customer file on
Liechtenstein, the roads loaded, reruns where nothing changed (what a page switch back to the
Data page costs the server's interpreter, which every other user's page waits for).

Run from the repository root (offline; AppTest, no browser)::

    flock /tmp/cpu.lock env PYTHONPATH=$PWD /work/venv/bin/python benchmarks/bench_data_page.py

Prints the first rerun after the upload (the file checked, the map built) and the median and
p90 of ``--reruns`` reruns after it. AppTest compiles the page scripts again on every rerun
(the server keeps their bytecode): that time is measured and subtracted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=200)
    parser.add_argument("--reruns", type=int, default=30)
    args = parser.parse_args()
    os.environ["PLANNER_OFFLINE"] = "1"
    os.environ.setdefault("PLANNER_WORKSPACE_DIR", tempfile.mkdtemp(prefix="bench-data-"))
    from streamlit.runtime.scriptrunner import script_cache
    from streamlit.testing.v1 import AppTest

    from planner.inputs import customers as demand

    compile_s: list[float] = []
    real_get = script_cache.ScriptCache.get_bytecode

    def timed_get(self: script_cache.ScriptCache, path: str) -> object:
        t = time.perf_counter()
        try:
            return real_get(self, path)
        finally:
            compile_s.append(time.perf_counter() - t)

    script_cache.ScriptCache.get_bytecode = timed_get  # type: ignore[method-assign]
    demo = demand.load_demo_customers("liechtenstein")
    rows = demo[["customer_id", "lat", "lon", "weight", "segment"]]
    rows = rows.rename(columns={"customer_id": "id"}).sample(n=args.customers, random_state=1)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=600)
    at.query_params["region"] = "liechtenstein"
    at.run()
    at.switch_page("app_pages/data.py").run()
    while "roads_job" in at.session_state:
        at.session_state["roads_job"].finished.wait(600)
        at.run()
    at.file_uploader(key="customers_file").upload(
        "customers.csv", rows.to_csv(index=False).encode(), "text/csv"
    )
    compile_s.clear()
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t - sum(compile_s)
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"{args.customers} customers from customers.csv" in i.value for i in at.info)
    times = []
    for _ in range(args.reruns):
        compile_s.clear()
        t = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t - sum(compile_s))
    times.sort()
    print(
        f"Data page, {args.customers} uploaded customers on Liechtenstein: first rerun after "
        f"the upload {first * 1000:.0f} ms; {args.reruns} reruns: median "
        f"{statistics.median(times) * 1000:.0f} ms, p90 {times[int(0.9 * len(times))] * 1000:.0f}"
        f" ms (script compile subtracted)"
    )


if __name__ == "__main__":
    main()
