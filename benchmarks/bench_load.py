"""Benchmark loading a bundled region: first load vs. a new process with a warm disk cache.

Run from the repository root::

    .venv/bin/python benchmarks/bench_load.py                 # Malta
    .venv/bin/python benchmarks/bench_load.py --region liechtenstein --repeats 3

Every load runs in a fresh Python process (as a CLI run or a restarted app would) against a
temporary ``PLANNER_CACHE_DIR``. Reported per run: the wall time of the whole process
(interpreter start, imports, load) and the time spent inside ``load_region``. The baseline is the
first (cold) load, which parses the OSM XML with osmnx and prepares the graph; the target is a
warm ``load_region`` under 2 s for Malta.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import json, time
t0 = time.perf_counter()
from planner.roads.network import load_region
t1 = time.perf_counter()
G = load_region({region!r})
t2 = time.perf_counter()
r = G.graph["planner_report"]
print(json.dumps({{"import_s": t1 - t0, "load_s": t2 - t1, "cache_hit": r["cache_hit"],
                  "nodes": G.number_of_nodes(), "edges": G.number_of_edges()}}))
"""


def run_child(region: str, cache_dir: Path) -> dict:
    env = dict(os.environ, PLANNER_CACHE_DIR=str(cache_dir))
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(region=region)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="malta")
    parser.add_argument("--repeats", type=int, default=3, help="warm loads to run")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        cache = Path(tmp)
        cold = run_child(args.region, cache)
        assert not cold["cache_hit"]
        warm = [run_child(args.region, cache) for _ in range(args.repeats)]
        assert all(w["cache_hit"] for w in warm)
        size_mb = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) / 1e6

    load = statistics.median(w["load_s"] for w in warm)
    proc = statistics.median(w["process_s"] for w in warm)
    print(f"region={args.region} nodes={cold['nodes']:,} edges={cold['edges']:,}")
    print(f"{'run':<22} | {'load_region s':>13} | {'whole process s':>15}")
    print("-" * 56)
    print(f"{'cold (parse XML)':<22} | {cold['load_s']:13.2f} | {cold['process_s']:15.2f}")
    for i, w in enumerate(warm, 1):
        print(f"{f'warm cache #{i}':<22} | {w['load_s']:13.2f} | {w['process_s']:15.2f}")
    print(f"cache size on disk: {size_mb:.1f} MB")
    print(f"speed-up of load_region (median warm vs cold): {cold['load_s'] / load:.1f}x")
    print(f"whole process, median warm vs cold: {cold['process_s'] / proc:.1f}x")
    ok = load < 2.0
    print(f"warm load_region under 2 s: {'PASS' if ok else 'FAIL'} ({load:.2f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
