"""Benchmark the optional map layers (assignment lines, catchments) and drive-time areas.

Run from the repository root::

    .venv/bin/python benchmarks/bench_map_layers.py                # 10,000 and 20,000 customers
    .venv/bin/python benchmarks/bench_map_layers.py --sizes 2000 --region liechtenstein

Baseline for the assignment lines, built in the same process on the same synthetic customers
(uniform over Malta, each assigned to the nearest of 5 sites, from ``bench_maps.py``): the
default :func:`planner.outputs.maps.result_map` plus one ``folium.PolyLine`` per customer, the
usual folium way. Ours: ``result_map(..., assignment_lines=True, catchments=True)``, one
GeoJSON feature per site with shared style, capped at
:data:`planner.outputs.maps.MAX_ASSIGNMENT_LINES` lines. Measured: time to build and render the
HTML (best of 3) and its size; and :func:`planner.outputs.maps.isochrone` on a bundled road
graph (10 and 20 minutes from the middle of the region, best of 3).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import folium
from bench_maps import synthetic_result

from planner.outputs import maps
from planner.roads.network import load_region


def timed(fn: Callable[[], Any], *, repeats: int = 3) -> tuple[Any, float]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def baseline(result: Any) -> str:
    m = maps.result_map(result)
    xy = {r.site_id: (r.lat, r.lon) for r in result.sites.itertuples()}
    for row in result.customers.itertuples():
        folium.PolyLine([(row.lat, row.lon), xy[row.site_id]], weight=1, opacity=0.5).add_to(m)
    return m.get_root().render()


def ours(result: Any) -> str:
    m = maps.result_map(result, assignment_lines=True, catchments=True)
    return m.get_root().render()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 20_000])
    parser.add_argument("--region", default="malta")
    args = parser.parse_args()
    print("| customers | baseline s | ours s | ratio | baseline MB | ours MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        result = synthetic_result(n)
        base_html, base_s = timed(lambda r=result: baseline(r))
        our_html, our_s = timed(lambda r=result: ours(r))
        print(
            f"| {n:,} | {base_s:.2f} | {our_s:.2f} | {our_s / base_s:.2f} | "
            f"{len(base_html) / 1e6:.1f} | {len(our_html) / 1e6:.1f} |"
        )
    G = load_region(args.region)
    xs = sorted(d["x"] for _, d in G.nodes(data=True))
    ys = sorted(d["y"] for _, d in G.nodes(data=True))
    lon, lat = xs[len(xs) // 2], ys[len(ys) // 2]
    print(f"\nisochrone on {args.region} ({G.number_of_nodes():,} nodes) from {lon:.5f}, {lat:.5f}")
    for minutes in (10, 20):
        area, s = timed(lambda mi=minutes: maps.isochrone(G, lon, lat, mi))
        print(f"  {minutes} min: {s:.2f} s, area polygon with {len(area.wkt):,} WKT characters")


if __name__ == "__main__":
    main()
