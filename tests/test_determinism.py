"""Same question, same answer: results do not depend on Python's hash seed or on the cache.

The scenario runs through the ``planner`` command line in fresh subprocesses, cold under
``PYTHONHASHSEED=0`` and ``=1`` (each with an empty cache), then warm from the cache the cold run
wrote; assignments, the shortlist (per-site KPIs) and territories must be byte-identical, and so
must the printed KPI line. The road file is built so that osmnx simplification merges ways of
different highway types into one edge (the ``highway`` lists that used to follow set order).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from planner.roads.network import load_region, prepare_graph
from planner.roads.snapping import _edge_index, snap_points

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULT_FILES = ("assignments.csv", "shortlist.csv", "territories.csv")
HIGHWAYS = ("residential", "tertiary", "unclassified", "secondary", "primary", "living_street")


def merged_ways_osm(size: int = 4, step_deg: float = 0.004) -> str:
    """A grid of two-way streets near Vaduz; every block side is two ways of different types.

    The ways meet at a mid-block node that only they share, so osmnx simplification merges them
    into one edge whose ``highway`` is a two-element list, and no way has a ``maxspeed``: the
    imputed speed depends on how that list is read.
    """
    lat0, lon0 = 47.13, 9.51
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    for i in range(size):
        for j in range(size):
            nodes[1000 + i * size + j] = (lat0 + i * step_deg, lon0 + j * step_deg)
    next_id = 5000
    way_id = 100
    pair = 0
    for i in range(size):
        for j in range(size):
            a = 1000 + i * size + j
            for di, dj in ((0, 1), (1, 0)):
                if i + di >= size or j + dj >= size:
                    continue
                b = 1000 + (i + di) * size + (j + dj)
                mid = next_id
                next_id += 1
                nodes[mid] = (
                    (nodes[a][0] + nodes[b][0]) / 2 + 0.0003 * dj,
                    (nodes[a][1] + nodes[b][1]) / 2 + 0.0003 * di,
                )
                first = HIGHWAYS[pair % len(HIGHWAYS)]
                second = HIGHWAYS[(pair + 1 + pair // len(HIGHWAYS)) % len(HIGHWAYS)]
                if second == first:
                    second = HIGHWAYS[(pair + 2) % len(HIGHWAYS)]
                pair += 1
                ways.append((way_id, [a, mid], {"highway": first, "name": f"Street {way_id}"}))
                ways.append((way_id + 1, [mid, b], {"highway": second, "name": f"Lane {way_id}"}))
                way_id += 2
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", '<osm version="0.6" generator="test">']
    for nid, (lat, lon) in nodes.items():
        lines.append(f'  <node id="{nid}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>')
    for wid, refs, tags in ways:
        lines.append(f'  <way id="{wid}" version="1">')
        lines.extend(f'    <nd ref="{r}"/>' for r in refs)
        lines.extend(f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append("  </way>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


@pytest.fixture
def scenario_files(tmp_path: Path) -> dict[str, Path]:
    road = tmp_path / "merged.osm"
    road.write_text(merged_ways_osm(), encoding="utf-8")
    rng = np.random.default_rng(7)
    lat = 47.13 + rng.uniform(0.0, 0.012, 60)
    lon = 9.51 + rng.uniform(0.0, 0.012, 60)
    customers = tmp_path / "customers.csv"
    customers.write_text(
        "id,lat,lon,weight\n"
        + "".join(
            f"C{i:03d},{a:.6f},{o:.6f},{1 + i % 3}\n"
            for i, (a, o) in enumerate(zip(lat, lon, strict=True))
        ),
        encoding="utf-8",
    )
    sites = tmp_path / "sites.csv"
    rows = ["id,name,lat,lon,kind,status,fixed_cost,capacity"]
    rows.append("O1,Office,47.1360,9.5160,office,existing,60000,")
    for k, (a, o) in enumerate(
        [(47.1302, 9.5102), (47.1318, 9.5195), (47.1385, 9.5118), (47.1412, 9.5205), (47.136, 9.5)]
    ):
        rows.append(f"W{k},Workshop {k},{a},{o},workshop,candidate,18000,")
    sites.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"road": road, "customers": customers, "sites": sites}


def start_cli(args: list[str], *, seed: int, cache: Path) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.update(
        PYTHONHASHSEED=str(seed),
        PLANNER_CACHE_DIR=str(cache),
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "planner.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> str:
    """Wait for a run; return its printed KPI line without the written files (folders differ)."""
    try:
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    line = next(x for x in stdout.splitlines() if "annual cost" in x)
    return line.split("; wrote ")[0]


def run_three_ways(tmp_path: Path, base_args: list[str]) -> None:
    """Cold under hash seeds 0 and 1 (fresh caches, side by side), then warm from seed 1's."""
    outs = {label: tmp_path / f"out-{label}" for label in ("cold0", "cold1", "warm1")}
    cold = {
        label: start_cli([*base_args, "--out", str(outs[label])], seed=seed, cache=cache)
        for label, seed, cache in (("cold0", 0, tmp_path / "c0"), ("cold1", 1, tmp_path / "c1"))
    }
    lines = {label: finish(proc) for label, proc in cold.items()}
    assert any((tmp_path / "c1" / "graphs").iterdir())
    warm = start_cli([*base_args, "--out", str(outs["warm1"])], seed=1, cache=tmp_path / "c1")
    lines["warm1"] = finish(warm)
    for label in ("cold1", "warm1"):
        assert lines[label] == lines["cold0"], label
        for name in RESULT_FILES:
            got, ref = (outs[label] / name).read_bytes(), (outs["cold0"] / name).read_bytes()
            assert got == ref, (label, name)


def test_same_scenario_same_bytes_under_two_hash_seeds_and_warm(
    tmp_path: Path, scenario_files: dict[str, Path]
) -> None:
    args = [
        "run",
        "--region",
        str(scenario_files["road"]),
        "--customers",
        str(scenario_files["customers"]),
        "--sites",
        str(scenario_files["sites"]),
        "--workshops",
        "2",
        "--time-limit",
        "10",
    ]
    run_three_ways(tmp_path, args)


@pytest.mark.slow
def test_malta_cold_under_two_hash_seeds_and_warm_agree(tmp_path: Path) -> None:
    """The reproduction of issue 16: Malta, 3 workshops, demo customers."""
    run_three_ways(tmp_path, ["run", "--region", "malta", "--workshops", "3", "--time-limit", "30"])


# ----------------------------------------------------------------------------------------------
# The pieces, in process
# ----------------------------------------------------------------------------------------------


def test_merged_highway_lists_are_sorted_and_speed_is_their_mean(
    tmp_path: Path, scenario_files: dict[str, Path]
) -> None:
    G = load_region(scenario_files["road"], cache=False)
    merged = [d for _, _, d in G.edges(data=True) if isinstance(d.get("highway"), list)]
    assert len(merged) >= 20  # every block side is two ways of different types
    table = G.graph["planner_report"]["speeds_kph"]
    for d in merged:
        assert d["highway"] == sorted(set(d["highway"]))
        assert d["osmid"] == sorted(d["osmid"])
        expected = sum(table[h] for h in d["highway"]) / len(d["highway"])
        assert d["freeflow_speed_kph"] == pytest.approx(expected, rel=1e-12)
        assert d["travel_time"] == pytest.approx(d["length"] / (expected / 3.6), rel=1e-12)


def test_prepare_graph_does_not_depend_on_list_order() -> None:
    def build(order: int) -> nx.MultiDiGraph:
        G = nx.MultiDiGraph(crs="epsg:4326")
        for n, (x, y) in {1: (9.50, 47.1), 2: (9.51, 47.1), 3: (9.52, 47.1)}.items():
            G.add_node(n, x=x, y=y)
        hwy = ["tertiary", "residential"]
        ids = [7, 3, 5]
        if order:
            hwy, ids = hwy[::-1], ids[::-1]
        for u, v in ((1, 2), (2, 1), (2, 3), (3, 2)):
            G.add_edge(u, v, length=500.0, highway=list(hwy), osmid=list(ids))
        return G

    a, b = prepare_graph(build(0)), prepare_graph(build(1))
    assert list(a.edges(keys=True, data=True)) == list(b.edges(keys=True, data=True))
    speed = a.edges[1, 2, 0]["freeflow_speed_kph"]
    assert speed == (50.0 + 30.0) / 2  # mean of tertiary and residential, not the first one
    assert a.edges[1, 2, 0]["osmid"] == [3, 5, 7]


def test_prepare_graph_keeps_node_and_edge_order_when_dropping_components() -> None:
    G = nx.MultiDiGraph(crs="epsg:4326")
    order = [50, 3, 40, 7, 99, 98]
    for i, n in enumerate(order):
        G.add_node(n, x=9.5 + 0.001 * i, y=47.1)
    for u, v in ((50, 3), (3, 40), (40, 7), (7, 50), (99, 98)):  # a ring, a one-way stub
        G.add_edge(u, v, length=100.0, highway="residential")
    H = prepare_graph(G)
    assert list(H.nodes) == [50, 3, 40, 7]
    assert list(H.edges()) == [(50, 3), (3, 40), (40, 7), (7, 50)]


def v_graph(reverse_insertion: bool) -> nx.MultiDiGraph:
    """Two two-way streets leave node 0 to the north-west and north-east (a V); a point due
    south of node 0 is exactly as near to both (its nearest road position is node 0 itself)."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    nodes = [(0, 9.52, 47.14), (10, 9.51, 47.15), (20, 9.53, 47.15)]
    if reverse_insertion:
        nodes = nodes[::-1]
    for n, x, y in nodes:
        G.add_node(n, x=x, y=y)
    arms = [10, 20][::-1] if reverse_insertion else [10, 20]
    for n in arms:
        G.add_edge(0, n, length=1340.0, travel_time=100.0)
        G.add_edge(n, 0, length=1340.0, travel_time=100.0)
    return G


@pytest.mark.parametrize("reverse_insertion", [False, True])
def test_snapping_ties_break_by_smallest_u_v_key(reverse_insertion: bool) -> None:
    G = v_graph(reverse_insertion)
    index = _edge_index(G)
    tied = sorted(
        (int(u), int(v), int(k))
        for u, v, k in zip(index.u, index.v, index.key, strict=True)
        if 0 in (u, v)
    )
    assert len(tied) == 2  # one canonical edge per street
    pts = snap_points(G, [9.52, 9.52], [47.139, 47.1385])
    for i in range(2):
        assert (int(pts.edge_u[i]), int(pts.edge_v[i]), int(pts.edge_key[i])) == tied[0]
        assert pts.fraction[i] in (0.0, 1.0)  # at node 0
    assert pts.position_key[0] == pts.position_key[1]
