"""Country scale: array loader, chunked matrix in-process vs a 2-worker LocalCluster, peak RSS.

Build the network first (``benchmarks/make_tiled_pbf.py``), then::

    PLANNER_CACHE_DIR=/tmp/bench-cache python benchmarks/bench_scale.py \
        --pbf /tmp/tiled2.osm.pbf --customers 20000 --candidates 200 --workers 2

Prints the load times (cold, from cache), the matrix time in this process and on the local
Dask cluster with their ratio, and the peak resident memory of this process (the Dask workers
are separate processes and report their own peak).
"""

from __future__ import annotations

import argparse
import logging
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from planner.roads.network import load_region
from planner.roads.snapping import snap_points
from planner.routing.matrix import snapped_travel_time_matrix
from planner.routing.parallel import Backend


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbf", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dtype", default="float64")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cache = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    import os

    os.environ["PLANNER_CACHE_DIR"] = str(cache)
    try:
        t = time.perf_counter()
        G = load_region(args.pbf, loader="arrays")
        cold = time.perf_counter() - t
        t = time.perf_counter()
        G = load_region(args.pbf, loader="arrays")
        warm = time.perf_counter() - t
        rep = G.graph["planner_report"]
        print(
            f"load cold {cold:.1f} s (read {rep.get('read_time_s')} s), from cache {warm:.2f} s; "
            f"{G.number_of_nodes():,} nodes, {G.number_of_edges():,} edges, "
            f"{rep.get('osm_nodes', 0):,} OSM road nodes; peak RSS {_peak_rss_gb():.2f} GB"
        )
        rng = np.random.default_rng(0)
        pick = rng.integers(0, G.number_of_nodes(), args.customers + args.candidates)
        lon = G.x[pick] + rng.normal(0, 0.0005, pick.size)
        lat = G.y[pick] + rng.normal(0, 0.0005, pick.size)
        t = time.perf_counter()
        cust = snap_points(G, lon[: args.customers], lat[: args.customers])
        sites = snap_points(G, lon[args.customers :], lat[args.customers :])
        print(f"snap {pick.size:,} points {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        local = snapped_travel_time_matrix(G, cust, sites, cache=False, dtype=args.dtype)
        t_local = time.perf_counter() - t
        print(
            f"matrix {args.customers:,} x {args.candidates:,} in-process {t_local:.1f} s; "
            f"peak RSS {_peak_rss_gb():.2f} GB"
        )
        if args.workers:
            t = time.perf_counter()
            dask = snapped_travel_time_matrix(
                G, cust, sites, cache=False, dtype=args.dtype, backend=Backend(workers=args.workers)
            )
            t_dask = time.perf_counter() - t
            same = np.array_equal(local, dask)
            print(
                f"matrix on a {args.workers}-worker LocalCluster {t_dask:.1f} s (incl. cluster "
                f"start); ratio in-process/cluster {t_local / t_dask:.2f}; identical: {same}"
            )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
