"""Benchmark: import a 100,000-row customer CSV and snap it to Malta's roads.

Run from the repository root::

    .venv/bin/python benchmarks/bench_import.py            # 100,000 customers, best of 3
    .venv/bin/python benchmarks/bench_import.py --rows 20000 --repeat 1

The customers are random points on Malta's main island: the committed demo customers
(``data/demo/malta_customers.csv``) jittered by about 150 m, with ids, weights and segments, written
as a CSV in a temporary folder. Timed in the same process, best of ``--repeat`` runs:

* baseline ``pandas.read_csv`` of the file, against :func:`planner.inputs.customers.read_customers`
  without a region (delimiter/encoding sniffing, column detection, per-row validation);
* baseline ``osmnx.distance.nearest_edges`` on the same graph, against
  :func:`planner.roads.snapping.snap_points` (nearest edge, position on it, access times);
* the total the aim refers to: ``read_customers(path, region=..., graph=G)``, which parses,
  validates and snaps (outside-region, swapped and too-far checks).

Loading the graph is excluded from those numbers and reported separately (cold parse of the
OSM file with an empty cache, and a warm load from the cache).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def make_customers(n: int, seed: int = 0) -> pd.DataFrame:
    demo = pd.read_csv(ROOT / "data" / "demo" / "malta_customers.csv")
    rng = np.random.default_rng(seed)
    base = demo.iloc[rng.integers(0, len(demo), n)].reset_index(drop=True)
    jitter = 150.0 / 111_320.0
    return pd.DataFrame(
        {
            "id": [f"K{i:06d}" for i in range(n)],
            "lat": (base["lat"] + rng.normal(0, jitter, n)).round(6),
            "lon": (base["lon"] + rng.normal(0, jitter, n)).round(6),
            "weight": rng.integers(1, 13, n),
            "segment": np.where(rng.random(n) < 0.2, "business", "private"),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLANNER_CACHE_DIR"] = str(Path(tmp) / "cache")
        import osmnx as ox

        from planner.inputs.customers import read_customers
        from planner.roads.network import load_region
        from planner.roads.snapping import snap_points

        started = time.perf_counter()
        load_region("malta")
        cold_s = time.perf_counter() - started
        warm_s, G = best_of(lambda: load_region("malta"), 1)

        path = Path(tmp) / "customers.csv"
        make_customers(args.rows).to_csv(path, index=False)
        size_mb = path.stat().st_size / 1e6

        t_pandas, _ = best_of(lambda: pd.read_csv(path), args.repeat)
        t_read, table = best_of(lambda: read_customers(path), args.repeat)
        assert table.report.exit_code == 0, str(table.report)[:2000]
        lon = table.frame["lon"].to_numpy()
        lat = table.frame["lat"].to_numpy()

        t_snap, snapped = best_of(lambda: snap_points(G, lon, lat), args.repeat)
        t_ox, ox_edges = best_of(lambda: ox.distance.nearest_edges(G, lon, lat), args.repeat)
        same = np.mean(
            [
                {int(u), int(v)} == {int(a), int(b)}
                for (u, v, _k), a, b in zip(ox_edges, snapped.edge_u, snapped.edge_v, strict=True)
            ]
        )
        t_total, full = best_of(lambda: read_customers(path, region="malta", graph=G), args.repeat)
        problems = full.report.to_frame()["code"].value_counts().to_dict()

    print(f"Malta, {args.rows:,} customers, CSV {size_mb:.1f} MB, best of {args.repeat}")
    print(f"graph load (excluded below): cold {cold_s:.1f} s, warm from cache {warm_s:.2f} s")
    print("| step | ours (s) | baseline (s) | ratio ours/baseline |")
    print("| --- | ---: | ---: | ---: |")
    print(
        f"| parse + validate vs pandas.read_csv | {t_read:.2f} | {t_pandas:.2f} "
        f"| {t_read / t_pandas:.1f} |"
    )
    print(
        f"| snap_points vs osmnx nearest_edges | {t_snap:.2f} | {t_ox:.2f} | {t_snap / t_ox:.2f} |"
    )
    print(f"| read_customers(region='malta'): parse + validate + snap | {t_total:.2f} | | |")
    print(f"same nearest edge as osmnx: {same:.1%}; report problems: {problems or 'none'}")


if __name__ == "__main__":
    main()
