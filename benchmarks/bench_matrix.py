"""Benchmark travel-time matrices against networkx, plus a scaling table.

Run from the repository root::

    .venv/bin/python benchmarks/bench_matrix.py            # Malta, 200 origins x all nodes
    .venv/bin/python benchmarks/bench_matrix.py --region liechtenstein --origins 50

Part 1 runs networkx per-source Dijkstra (``single_source_dijkstra_path_length`` on
``travel_time``) and :func:`planner.routing.matrix.travel_time_matrix` in the same process on
the same
origins x all nodes, checks they agree within 1e-6 s (and on which pairs are unreachable) and
prints the speed-up. networkx runs in slices of origins, each slice followed by one complete call
of ours (all origins, graph-to-CSR conversion included), so both see the same machine load; the
speed-up is networkx's total over the median of our calls.

``--kernels`` runs only part 3: snapped matrices through scipy's Dijkstra and through the CCH
kernel (``method="cch"``) on the same points in the same process, with the CCH's first call
(preprocessing included) shown apart; it is how ``CCH_MIN_NODES`` was chosen.

Part 2 times node matrices and snapped point matrices from 1,000 x 100 up to 10,000 x 1,000,
with their peak traced memory (``tracemalloc`` traces numpy and scipy allocations; memory is
measured in a separate call so tracing does not slow the timed one). Disk caching is off so
every number is a computation.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import networkx as nx
import numpy as np

os.environ.setdefault("PLANNER_CACHE_DIR", tempfile.mkdtemp(prefix="bench-matrix-"))

from planner.roads.network import load_region
from planner.roads.snapping import snap_points
from planner.routing import _cch
from planner.routing.matrix import snapped_travel_time_matrix, travel_time_matrix
from planner.routing.parallel import cpu_threads

SIZES = [(1_000, 100), (2_000, 200), (5_000, 500), (10_000, 1_000)]


def timed(fn: Callable[[], Any], *, repeats: int = 1) -> tuple[Any, float]:
    """Return (result, best seconds of ``repeats`` calls); no tracing, so Python is not slowed."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return result, best


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak traced memory (MiB) of a separate call under tracemalloc."""
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def networkx_rows(G: nx.MultiDiGraph, origins: np.ndarray, nodes: list[int]) -> np.ndarray:
    out = np.full((origins.size, len(nodes)), np.inf)
    col = {n: j for j, n in enumerate(nodes)}
    for i, o in enumerate(origins.tolist()):
        for node, dist in nx.single_source_dijkstra_path_length(G, o, weight="travel_time").items():
            out[i, col[node]] = dist
    return out


def random_points(G: nx.MultiDiGraph, n: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """Points scattered up to ~300 m around random graph nodes (like buildings near roads)."""
    nodes = list(G.nodes)
    picks = rng.integers(0, len(nodes), n)
    lon = np.array([G.nodes[nodes[k]]["x"] for k in picks]) + rng.normal(0, 0.002, n)
    lat = np.array([G.nodes[nodes[k]]["y"] for k in picks]) + rng.normal(0, 0.002, n)
    return lon, lat


def compare_kernels(region: str, seed: int) -> int:
    """Part 3: snapped matrices with ``method="dijkstra"`` and ``method="cch"`` (the CCH's
    first call includes its preprocessing: node order, contraction, customization)."""
    G = load_region(region)
    rng = np.random.default_rng(seed)
    print(f"region={region} nodes={G.number_of_nodes():,} threads={cpu_threads()}")
    header = (
        f"{'rows x cols':>14} | {'dijkstra s':>10} | {'cch first s':>11} | {'cch s':>7} | "
        f"{'dijkstra / cch':>14} | {'max diff ms':>11}"
    )
    print(header)
    print("-" * len(header))
    for rows, cols in [(2_000, 60), *SIZES]:
        po = snap_points(G, *random_points(G, rows, rng))
        pd_ = snap_points(G, *random_points(G, cols, rng))
        _cch._indexes.clear()
        with tempfile.TemporaryDirectory(prefix="bench-cch-") as fresh:
            saved = os.environ["PLANNER_CACHE_DIR"]
            os.environ["PLANNER_CACHE_DIR"] = fresh  # no cached node order
            _, t_first = timed(
                lambda po=po, pd_=pd_: snapped_travel_time_matrix(
                    G, po, pd_, cache=False, method="cch"
                )
            )
            os.environ["PLANNER_CACHE_DIR"] = saved
        cch, t_cch = timed(
            lambda po=po, pd_=pd_: snapped_travel_time_matrix(
                G, po, pd_, cache=False, method="cch"
            ),
            repeats=2,
        )
        dij, t_dij = timed(
            lambda po=po, pd_=pd_: snapped_travel_time_matrix(
                G, po, pd_, cache=False, method="dijkstra"
            ),
            repeats=2,
        )
        fin = np.isfinite(dij)
        diff = float(np.abs(dij[fin] - cch[fin]).max()) * 1000
        print(
            f"{rows:>6,} x {cols:>5,} | {t_dij:10.3f} | {t_first:11.3f} | {t_cch:7.3f} | "
            f"{t_dij / t_cch:14.1f} | {diff:11.1f}"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--region", default="malta")
    parser.add_argument("--origins", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--slices", type=int, default=10, help="networkx slices to interleave")
    parser.add_argument("--max-rows", type=int, default=10_000, help="largest scaling size")
    parser.add_argument(
        "--kernels",
        action="store_true",
        help="only part 3: scipy Dijkstra against the CCH kernel, same process, same points",
    )
    args = parser.parse_args(argv)
    if args.kernels:
        return compare_kernels(args.region, args.seed)

    G = load_region(args.region)
    nodes = list(G.nodes)
    rng = np.random.default_rng(args.seed)
    print(
        f"region={args.region} nodes={len(nodes):,} edges={G.number_of_edges():,} "
        f"python={sys.version.split()[0]} networkx={nx.__version__}"
    )

    # ---- part 1: equality and speed-up against networkx --------------------------------------
    origins = rng.choice(np.array(nodes), args.origins, replace=False)
    # networkx in slices of origins, each followed by one full call of ours: both see the same
    # machine load (other processes share the 2 cores), so the ratio is fair
    slices = np.array_split(np.arange(origins.size), args.slices)
    ref = np.full((origins.size, len(nodes)), np.inf)
    t_nx = 0.0
    ours: list[float] = []
    got = None
    for rows in slices:
        part, t_part = timed(lambda rows=rows: networkx_rows(G, origins[rows], nodes))
        ref[rows] = part
        t_nx += t_part
        got, t_call = timed(lambda: travel_time_matrix(G, origins, nodes, cache=False))
        ours.append(t_call)
    t_ours = float(np.median(ours))
    mem = peak_mib(lambda: travel_time_matrix(G, origins, nodes, cache=False))
    same_inf = bool(np.array_equal(np.isinf(ref), np.isinf(got)))
    finite = np.isfinite(ref)
    max_diff = float(np.abs(ref[finite] - got[finite]).max())
    print(f"\n{args.origins} origins x {len(nodes):,} nodes")
    print(f"  networkx per-source Dijkstra : {t_nx:8.3f} s")
    print(
        f"  planner travel_time_matrix   : {t_ours:8.3f} s   (median of {len(ours)} calls "
        f"interleaved with networkx, min {min(ours):.3f} s; peak {mem:.0f} MiB)"
    )
    print(f"  speed-up                     : {t_nx / t_ours:8.1f}x")
    print(f"  max |difference|             : {max_diff:.3e} s   same unreachable pairs: {same_inf}")
    ok = max_diff <= 1e-6 and same_inf and t_nx / t_ours >= 30
    print(f"  equal within 1e-6 s and >= 30x faster: {'PASS' if ok else 'FAIL'}")
    saved = os.environ["PLANNER_CACHE_DIR"]
    with tempfile.TemporaryDirectory(prefix="bench-matrix-cache-") as fresh:
        os.environ["PLANNER_CACHE_DIR"] = fresh  # an empty matrix cache
        _, t_cold = timed(lambda: travel_time_matrix(G, origins, nodes, cache=True))
        _, t_warm = timed(lambda: travel_time_matrix(G, origins, nodes, cache=True))
    os.environ["PLANNER_CACHE_DIR"] = saved
    print(f"  disk cache: first {t_cold:.3f} s (compute + write), repeat {t_warm:.3f} s")

    # ---- part 2: scaling ------------------------------------------------------------------------
    print("\nscaling (cache off, best of 2); node matrix = node ids, snapped = points on edges")
    header = (
        f"{'rows x cols':>14} | {'node matrix s':>13} | {'peak MiB':>8} | "
        f"{'snap s':>7} | {'snapped matrix s':>16} | {'peak MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    node_arr = np.array(nodes)
    for rows, cols in SIZES:
        if rows > args.max_rows:
            continue
        o = rng.choice(node_arr, rows, replace=rows > len(nodes))
        d = rng.choice(node_arr, cols, replace=False)
        _, t_node = timed(lambda o=o, d=d: travel_time_matrix(G, o, d, cache=False), repeats=2)
        m_node = peak_mib(lambda o=o, d=d: travel_time_matrix(G, o, d, cache=False))
        o_lon, o_lat = random_points(G, rows, rng)
        d_lon, d_lat = random_points(G, cols, rng)
        started = time.perf_counter()
        po = snap_points(G, o_lon, o_lat)
        pd_ = snap_points(G, d_lon, d_lat)
        t_snap = time.perf_counter() - started
        _, t_pts = timed(
            lambda po=po, pd_=pd_: snapped_travel_time_matrix(G, po, pd_, cache=False), repeats=2
        )
        m_pts = peak_mib(lambda po=po, pd_=pd_: snapped_travel_time_matrix(G, po, pd_, cache=False))
        print(
            f"{rows:>6,} x {cols:>5,} | {t_node:13.3f} | {m_node:8.0f} | "
            f"{t_snap:7.3f} | {t_pts:16.3f} | {m_pts:8.0f}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
