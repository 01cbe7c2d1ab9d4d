"""Matrix chunks and sweeps on a Dask LocalCluster (loopback only) give the in-process result."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_scenarios import make_sinst

from planner.engine.sweeps import k_curve, robustness, slow_down_roads
from planner.errors import InputError
from planner.roads.arrays import ArrayGraph, _Ways, build_array_graph
from planner.roads.snapping import snap_points
from planner.routing import parallel
from planner.routing.matrix import snapped_travel_time_matrix
from planner.routing.parallel import Backend, backend_from_settings, close_clients, run_chunks

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
# chunk functions of this test module are pickled by value (workers cannot import it)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _grid(size: int = 12) -> ArrayGraph:
    """A size x size street grid of 100 m blocks; every third row is one-way eastbound."""
    ways = _Ways()

    def add(refs: list[int], hwy: str, oneway: int) -> None:
        arr = np.asarray(refs, dtype=np.int64)
        ways.refs.append(arr + 1000)
        ways.lon.append(14.4 + 0.0011 * (arr % size))
        ways.lat.append(35.9 + 0.0009 * (arr // size))
        ways.oneway.append(oneway)
        ways.highway.append(ways.highway_names.setdefault(hwy, len(ways.highway_names)))
        ways.maxspeed.append(-1)

    for r in range(size):
        add(
            [r * size + c for c in range(size)],
            "primary" if r % 4 == 0 else "residential",
            1 if r % 3 == 1 else 0,
        )
    for c in range(size):
        add([r * size + c for r in range(size)], "secondary" if c % 5 == 0 else "residential", 0)
    speeds = {"primary": 70.0, "secondary": 60.0, "residential": 30.0}
    return build_array_graph(ways, speed_rule=lambda h, m: (speeds[h[0]], True))


def _points(G: ArrayGraph, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(G.x.min(), G.x.max(), k), rng.uniform(G.y.min(), G.y.max(), k)


def _times_ten(shared: int, chunk: int) -> int:
    return shared * chunk


def _die_once(shared: str, chunk: int) -> int:
    """Kill the worker process the first time chunk 3 runs (marker file in ``shared``)."""
    marker = Path(shared)
    if chunk == 3 and not marker.exists():
        marker.write_text("died")
        os._exit(1)
    return chunk * 10


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as lc:
        yield lc


def test_backend_checks_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="tcp://"):
        Backend(scheduler="localhost")
    monkeypatch.delenv("PLANNER_SCHEDULER", raising=False)
    monkeypatch.delenv("PLANNER_WORKERS", raising=False)
    assert not backend_from_settings().uses_dask
    monkeypatch.setenv("PLANNER_WORKERS", "2")
    assert backend_from_settings() == Backend(workers=2)
    monkeypatch.setenv("PLANNER_SCHEDULER", "tcp://127.0.0.1:8786")
    assert backend_from_settings().scheduler == "tcp://127.0.0.1:8786"


def test_in_process_run_does_not_import_dask() -> None:
    import subprocess

    code = (
        "import sys; from planner.routing.parallel import run_chunks, Backend;"
        "assert run_chunks(lambda s, c: s + c, 1, [1, 2], backend=Backend()) == [2, 3];"
        "print('distributed' in sys.modules, 'dask' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


@pytest.mark.slow
def test_snapped_matrix_on_local_cluster_equals_in_process(cluster) -> None:
    G = _grid()
    lon, lat = _points(G, 300, 1)
    customers = snap_points(G, lon, lat)
    slon, slat = _points(G, 9, 2)
    sites = snap_points(G, slon, slat)
    messages: list[str] = []
    # a small chunk bound makes many chunks of a few rows each
    here = snapped_travel_time_matrix(G, customers, sites, cache=False, max_chunk_bytes=4096)
    there = snapped_travel_time_matrix(
        G,
        customers,
        sites,
        cache=False,
        max_chunk_bytes=4096,
        backend=Backend(scheduler=cluster.scheduler_address),
        progress=lambda message, fraction: messages.append(message),
    )
    np.testing.assert_array_equal(here, there)
    assert np.isfinite(here).all()
    assert messages
    assert "ETA" in messages[-1]
    # float32: stated precision (relative 3e-7: the cast and two float32 additions)
    f32 = snapped_travel_time_matrix(G, customers, sites, cache=False, dtype="float32")
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, here, rtol=3e-7)


@pytest.mark.slow
def test_lost_worker_is_retried_without_losing_finished_chunks(cluster, tmp_path: Path) -> None:
    marker = tmp_path / "died.txt"
    backend = Backend(scheduler=cluster.scheduler_address)
    out = run_chunks(_die_once, str(marker), list(range(8)), backend=backend)
    assert marker.read_text() == "died"  # a worker really died mid-run
    assert out == [c * 10 for c in range(8)]
    assert run_chunks(_times_ten, 10, [1, 2, 3], backend=backend) == [10, 20, 30]


@pytest.mark.slow
def test_local_cluster_backend_starts_once_and_closes_on_loopback() -> None:
    backend = Backend(workers=1)
    try:
        assert run_chunks(_times_ten, 10, [4, 5], backend=backend) == [40, 50]
        client = parallel._clients[backend][0]
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        # a second call reuses the same cluster instead of starting another one
        assert run_chunks(_times_ten, 10, [6], backend=backend) == [60]
        assert parallel._clients[backend][0] is client
    finally:
        close_clients()
    assert backend not in parallel._clients
    assert client.status == "closed"


@pytest.mark.slow
def test_cch_matrix_on_local_cluster_equals_in_process(cluster) -> None:
    G = _grid()
    customers = snap_points(G, *_points(G, 200, 3))
    sites = snap_points(G, *_points(G, 7, 4))
    here = snapped_travel_time_matrix(
        G, customers, sites, cache=False, method="cch", max_chunk_bytes=4096
    )
    there = snapped_travel_time_matrix(
        G,
        customers,
        sites,
        cache=False,
        method="cch",
        max_chunk_bytes=4096,
        backend=Backend(scheduler=cluster.scheduler_address),
    )
    np.testing.assert_array_equal(here, there)
    dij = snapped_travel_time_matrix(G, customers, sites, cache=False, method="dijkstra")
    assert np.abs(here - dij).max() < 0.05  # 1 ms rounding per edge, at most 24 edges


@pytest.mark.slow
def test_sweeps_on_local_cluster_equal_in_process(cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    sinst = make_sinst(seed=21, n=12)
    curve = k_curve(sinst, 4)
    rob = robustness(sinst, growth={"business": 2.0}, slowdown=1.0)
    monkeypatch.setenv("PLANNER_SCHEDULER", cluster.scheduler_address)
    messages: list[str] = []
    curve_there = k_curve(sinst, 4, progress=lambda m, f: messages.append(m))
    rob_there = robustness(sinst, growth={"business": 2.0}, slowdown=1.0)
    pd.testing.assert_frame_equal(curve, curve_there)
    assert curve.attrs == curve_there.attrs
    pd.testing.assert_frame_equal(rob.cases, rob_there.cases)
    pd.testing.assert_frame_equal(rob.sites, rob_there.sites)
    assert any("solves on a Dask cluster" in m for m in messages)
    close_clients()


def test_slow_down_roads_on_an_array_graph() -> None:
    G = _grid()
    H = slow_down_roads(G, 1.5, highways=["primary"])
    primary = np.array([G.highway_names[c] == "primary" for c in G.highway_code])
    assert primary.any()
    assert (~primary).any()
    np.testing.assert_allclose(H.travel_time_s[primary], G.travel_time_s[primary] * 1.5)
    np.testing.assert_array_equal(H.travel_time_s[~primary], G.travel_time_s[~primary])
    np.testing.assert_allclose(H.speed_kph[primary], G.speed_kph[primary] / 1.5)
    assert H.graph["planner_report"]["slowdown"]["factor"] == 1.5
    assert "slowdown" not in G.graph.get("planner_report", {})  # the input is not modified
    every = slow_down_roads(G, 2.0, highways=None)
    np.testing.assert_allclose(every.travel_time_s, G.travel_time_s * 2.0)
    # matrices see the slower roads: every trip is exactly twice as long
    pts = snap_points(G, *_points(G, 5, 9))
    base = snapped_travel_time_matrix(G, pts, pts, cache=False)
    slow_pts = snap_points(every, *_points(G, 5, 9))
    slow = snapped_travel_time_matrix(every, slow_pts, slow_pts, cache=False)
    road = base - pts.access_time_s[:, None] - pts.access_time_s[None, :]
    slow_road = slow - pts.access_time_s[:, None] - pts.access_time_s[None, :]
    np.testing.assert_allclose(slow_road, 2.0 * road, atol=1e-9)
