"""Build a big test road network: the bundled Malta extract tiled N x N into one .osm.pbf.

Tile (i, j) is a copy of every drivable way of ``data/osm/malta-2018-08-27.osm.pbf`` (and its
nodes) shifted by ``i * 0.3`` degrees of longitude and ``j * 0.22`` of latitude, with node and
way ids offset per tile; neighbouring tiles are joined by two-way ``primary`` connector roads
between the eastmost/northmost primary-road intersection of Malta's main island (the largest
strongly connected component) in one tile and the westmost/southmost one of the next. Also
writes ``<out>.customers.csv`` with customers spread over the tiles (Malta demo customers,
shifted like the roads).

Usage::

    python benchmarks/make_tiled_pbf.py --tiles 2 --out /tmp/tiled2.osm.pbf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import osmium
import pandas as pd

from planner.roads.network import load_region

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "data" / "osm" / "malta-2018-08-27.osm.pbf"
CUSTOMERS = REPO / "data" / "demo" / "malta_customers.csv"
DX, DY = 0.3, 0.22
NODE_STRIDE = 10**10
WAY_STRIDE = 10**9


def _read_roads() -> tuple[dict[int, tuple[float, float]], list[tuple[list[int], dict[str, str]]]]:
    ways: list[tuple[list[int], dict[str, str]]] = []
    needed: set[int] = set()
    for w in osmium.FileProcessor(str(SOURCE), osmium.osm.WAY):
        tags = dict(w.tags)
        if "highway" not in tags:
            continue
        refs = [n.ref for n in w.nodes]
        ways.append((refs, tags))
        needed.update(refs)
    nodes = {
        n.id: (n.location.lon, n.location.lat)
        for n in osmium.FileProcessor(str(SOURCE), osmium.osm.NODE)
        if n.id in needed
    }
    return nodes, ways


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=2, help="N of the N x N tiling")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=0, help="customers to write (0: none)")
    args = parser.parse_args()
    nodes, ways = _read_roads()
    ids = np.fromiter(nodes, dtype=np.int64)
    xy = np.array([nodes[i] for i in ids.tolist()])
    primary_nodes = {r for refs, t in ways if t.get("highway") == "primary" for r in refs}
    # connectors join intersections of the main island's road network (its largest strongly
    # connected component): Gozo has no road link to Malta, so a connector ending there would
    # leave the tiles apart in the strongly connected graph
    main = set(load_region(str(SOURCE), loader="arrays").node_id.tolist())
    prim = np.array([i in primary_nodes and i in main for i in ids.tolist()])
    east = int(ids[prim][np.argmax(xy[prim, 0])])
    west = int(ids[prim][np.argmin(xy[prim, 0])])
    north = int(ids[prim][np.argmax(xy[prim, 1])])
    south = int(ids[prim][np.argmin(xy[prim, 1])])
    n = args.tiles
    args.out.unlink(missing_ok=True)
    writer = osmium.SimpleWriter(str(args.out))
    try:
        for t in range(n * n):
            i, j = divmod(t, n)
            for nid, (lon, lat) in nodes.items():
                writer.add_node(
                    osmium.osm.mutable.Node(
                        id=nid + (t + 1) * NODE_STRIDE, location=(lon + i * DX, lat + j * DY)
                    )
                )
        way_id = 1
        for t in range(n * n):
            for refs, tags in ways:
                writer.add_way(
                    osmium.osm.mutable.Way(
                        id=way_id + (t + 1) * WAY_STRIDE,
                        nodes=[r + (t + 1) * NODE_STRIDE for r in refs],
                        tags=tags,
                    )
                )
                way_id += 1
        connector = 1
        for t in range(n * n):
            i, j = divmod(t, n)
            links = []
            if i + 1 < n:
                links.append((east, t, west, t + n))
            if j + 1 < n:
                links.append((north, t, south, t + 1))
            for a, ta, b, tb in links:
                writer.add_way(
                    osmium.osm.mutable.Way(
                        id=connector,
                        nodes=[a + (ta + 1) * NODE_STRIDE, b + (tb + 1) * NODE_STRIDE],
                        tags={"highway": "primary", "maxspeed": "80"},
                    )
                )
                connector += 1
    finally:
        writer.close()
    if args.customers:
        demo = pd.read_csv(CUSTOMERS)
        rng = np.random.default_rng(0)
        pick = demo.sample(args.customers, replace=True, random_state=0).reset_index(drop=True)
        tile = rng.integers(0, n * n, len(pick))
        pick["lon"] = pick["lon"] + (tile // n) * DX
        pick["lat"] = pick["lat"] + (tile % n) * DY
        pick["id"] = [f"T{k}" for k in range(len(pick))]
        pick.to_csv(args.out.with_suffix(".customers.csv"), index=False)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB, {n * n} tiles)")


if __name__ == "__main__":
    main()
