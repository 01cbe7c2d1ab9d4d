"""Benchmark the layout comparison against solving each layout on its own.

Run from the repository root::

    .venv/bin/python benchmarks/bench_compare.py                      # Malta, 6 workshops
    .venv/bin/python benchmarks/bench_compare.py --region liechtenstein --workshops 3

Baseline, in the same process on the same road graph and customers: the obvious way to compare
the three layouts, one :func:`planner.run` per layout, each snapping the customers and computing
its own travel-time matrix. Ours: :func:`planner.compare`, which prepares one instance over the
union of own, partner and office candidates (one snap, one matrix) and solves the three layouts
on it. The matrix disk cache is emptied before every run so neither side reads the other's
matrices. Both must give the same annual cost and mean travel time per layout; the script checks
it.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="malta")
    parser.add_argument("--workshops", type=int, default=6)
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs (default 2)")
    args = parser.parse_args()

    cache = Path(tempfile.mkdtemp(prefix="bench-compare-"))
    os.environ["PLANNER_CACHE_DIR"] = str(cache)
    logging.basicConfig(level=logging.ERROR)

    from planner import LAYOUTS, ScenarioSpec, compare, load_region, run

    graph = load_region(args.region)
    spec = ScenarioSpec(name="bench", region=args.region, workshops=args.workshops)
    # warm up the customer and OSM feature caches so both sides start equal
    compare(spec, graph=graph)

    def clear_matrices() -> None:
        shutil.rmtree(cache / "matrices", ignore_errors=True)

    def baseline() -> dict[str, tuple[float, float]]:
        out = {}
        for layout in LAYOUTS:
            lr = run(spec.replace(layout=layout), graph=graph)
            out[layout] = (lr.costs.total_eur, lr.kpis["mean_travel_min"])
        return out

    def ours() -> dict[str, tuple[float, float]]:
        comp = compare(spec, graph=graph)
        return {
            k: (lr.costs.total_eur, lr.kpis["mean_travel_min"]) for k, lr in comp.results.items()
        }

    times: dict[str, float] = {}
    results = {}
    for name, func in (("baseline", baseline), ("ours", ours)):
        best = float("inf")
        for _ in range(args.repeat):
            clear_matrices()
            t0 = time.perf_counter()
            results[name] = func()
            best = min(best, time.perf_counter() - t0)
        times[name] = best
    for layout in LAYOUTS:
        b, o = results["baseline"][layout], results["ours"][layout]
        if abs(b[0] - o[0]) > 1e-6 * max(1.0, abs(b[0])) or abs(b[1] - o[1]) > 1e-9:
            raise SystemExit(f"results differ for {layout}: baseline {b}, ours {o}")
    print(f"region {args.region}, {args.workshops} workshops, best of {args.repeat}")
    print("| method | seconds | ratio to baseline |")
    print("| --- | ---: | ---: |")
    print(f"| 3 x run (baseline) | {times['baseline']:.2f} | 1.00 |")
    print(
        f"| compare (one instance) | {times['ours']:.2f} | "
        f"{times['ours'] / times['baseline']:.2f} |"
    )
    print("same annual cost and mean travel per layout: yes")
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
