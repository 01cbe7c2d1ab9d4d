"""Country scale: array loader, CCH vs Dijkstra matrices, in-process vs a LocalCluster, peak RSS.

Build the network first (``benchmarks/make_tiled_pbf.py``), then::

    python benchmarks/bench_scale.py --pbf /tmp/tiled8.osm.pbf \\
        --customers 100000 --candidates 2000 --workers 2 --dijkstra-sample 8

Steps, all in this process unless said otherwise, with a fresh cache directory:

1. load the ``.osm.pbf`` with the array loader, cold, then from its ``.npz`` cache;
2. snap customers and candidates (random points up to ~50 m around random graph nodes);
3. the CCH preprocessing (node order, contraction, customization), then the customers x
   candidates matrix with the CCH kernel on ``$PLANNER_THREADS`` threads (default: the cores);
4. the same customers against ``--dijkstra-sample`` candidates with scipy's Dijkstra, the time
   scaled to all candidates, the ratio, and the largest difference on those columns;
5. the CCH matrix on a ``--workers``-process LocalCluster (including its start), the ratio to
   step 3, and whether the result is identical.

Peak resident memory of this process is printed after each step (the Dask workers are separate
processes).
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from planner.roads.network import load_region
from planner.roads.snapping import snap_points
from planner.routing import _cch
from planner.routing.matrix import _graph_arrays, _node_coords, snapped_travel_time_matrix
from planner.routing.parallel import Backend, close_clients, cpu_threads


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbf", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster size (0: skip)")
    parser.add_argument("--dijkstra-sample", type=int, default=8, help="candidates (0: skip)")
    parser.add_argument("--dtype", default="float64")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    cache = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    os.environ["PLANNER_CACHE_DIR"] = str(cache)
    try:
        t = time.perf_counter()
        G = load_region(args.pbf, loader="arrays")
        cold = time.perf_counter() - t
        rep = G.graph["planner_report"]
        print(
            f"load cold {cold:.1f} s (read {rep.get('read_time_s')} s, build "
            f"{rep.get('build_time_s')} s); {G.number_of_nodes():,} nodes, "
            f"{G.number_of_edges():,} edges, {rep.get('osm_nodes', 0):,} OSM road nodes; "
            f"peak RSS {_peak_rss_gb():.2f} GB",
            flush=True,
        )
        t = time.perf_counter()
        G = load_region(args.pbf, loader="arrays")
        print(f"load from cache {time.perf_counter() - t:.2f} s", flush=True)

        rng = np.random.default_rng(0)
        pick = rng.integers(0, G.number_of_nodes(), args.customers + args.candidates)
        lon = G.x[pick] + rng.normal(0, 0.0005, pick.size)
        lat = G.y[pick] + rng.normal(0, 0.0005, pick.size)
        t = time.perf_counter()
        cust = snap_points(G, lon[: args.customers], lat[: args.customers])
        sites = snap_points(G, lon[args.customers :], lat[args.customers :])
        print(f"snap {pick.size:,} points {time.perf_counter() - t:.1f} s", flush=True)

        t = time.perf_counter()
        ga = _graph_arrays(G, "travel_time")
        inp = _cch.cch_input(ga.csr, *_node_coords(G, ga.nodes))
        t_order = time.perf_counter() - t
        t = time.perf_counter()
        _cch.prepare(inp)
        t_build = time.perf_counter() - t
        print(
            f"CCH preprocessing: node order {t_order:.1f} s (cached on disk afterwards), "
            f"contraction + customization {t_build:.1f} s; peak RSS {_peak_rss_gb():.2f} GB",
            flush=True,
        )
        threads = cpu_threads()
        t = time.perf_counter()
        local = snapped_travel_time_matrix(
            G, cust, sites, cache=False, dtype=args.dtype, method="cch"
        )
        t_cch = time.perf_counter() - t
        print(
            f"matrix {args.customers:,} x {args.candidates:,} CCH in-process ({threads} "
            f"threads) {t_cch:.1f} s; peak RSS {_peak_rss_gb():.2f} GB",
            flush=True,
        )

        k = min(args.dijkstra_sample, args.candidates)
        if k:
            lo, hi = args.customers, args.customers + k
            few = snap_points(G, lon[lo:hi], lat[lo:hi])
            t = time.perf_counter()
            dij = snapped_travel_time_matrix(G, cust, few, cache=False, method="dijkstra")
            t_dij = time.perf_counter() - t
            scaled = t_dij / k * args.candidates
            finite = np.isfinite(dij)
            diff = float(np.abs(dij[finite] - local[:, :k][finite]).max()) if finite.any() else 0.0
            same_inf = bool(np.array_equal(~finite, ~np.isfinite(local[:, :k])))
            print(
                f"Dijkstra {args.customers:,} x {k} {t_dij:.1f} s, scaled to "
                f"{args.candidates:,} candidates {scaled:.0f} s; Dijkstra / CCH "
                f"{scaled / t_cch:.1f}; max |CCH - Dijkstra| {diff * 1000:.1f} ms, same "
                f"unreachable pairs: {same_inf}",
                flush=True,
            )

        if args.workers:
            t = time.perf_counter()
            dask = snapped_travel_time_matrix(
                G,
                cust,
                sites,
                cache=False,
                dtype=args.dtype,
                method="cch",
                backend=Backend(workers=args.workers),
            )
            t_dask = time.perf_counter() - t
            print(
                f"matrix CCH on a {args.workers}-worker LocalCluster {t_dask:.1f} s (incl. "
                f"cluster start and each worker's CCH build); in-process / cluster "
                f"{t_cch / t_dask:.2f}; identical: {np.array_equal(local, dask)}",
                flush=True,
            )
            close_clients()
        print(f"peak RSS of this process {_peak_rss_gb():.2f} GB")
    finally:
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
