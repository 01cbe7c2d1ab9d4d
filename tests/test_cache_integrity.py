"""Caches self-heal: a cache entry that is truncated, zero-filled or swapped is recomputed.

Every test breaks real cache files written by the library, runs again, and checks that the
answer equals a computation without any cache, that exactly one warning line names the entry,
and that the entry was rewritten (the next run is silent).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from planner.engine import ScenarioSpec, run
from planner.roads import _cache, _graph_cache
from planner.roads.network import graph_fingerprint, load_region
from planner.routing.matrix import travel_time_matrix

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_determinism import merged_ways_osm


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(root))
    return root


def grid_graph(n: int = 6) -> nx.MultiDiGraph:
    """An n x n grid of two-way streets with distinct travel times (built in code)."""
    G = nx.MultiDiGraph(crs="epsg:4326")
    for i in range(n):
        for j in range(n):
            G.add_node(i * n + j, x=9.5 + 0.001 * j, y=47.1 + 0.001 * i)
    for i in range(n):
        for j in range(n):
            a = i * n + j
            for b in ([a + 1] if j + 1 < n else []) + ([a + n] if i + 1 < n else []):
                G.add_edge(a, b, travel_time=10.0 + (a * 7 + b) % 13, length=80.0)
                G.add_edge(b, a, travel_time=11.0 + (a * 5 + b) % 11, length=80.0)
    return G


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def matrix_files(cache: Path) -> list[Path]:
    return sorted((cache / "matrices").glob("*.npz"))


# ----------------------------------------------------------------------------------------------
# Travel-time matrices (.npz with a header)
# ----------------------------------------------------------------------------------------------

ORIGINS_A = [0, 5, 17, 30]
ORIGINS_B = [35, 2, 14, 20]
DESTS = [1, 8, 21, 33, 35]


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def zero_fill(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)


def zero_matrix_same_header(path: Path) -> None:
    """A well-formed file: the entry's own header, but a zeroed matrix."""
    with np.load(path, allow_pickle=False) as npz:
        header, arr = npz["header"], npz["travel_time_s"]
    np.savez(path, travel_time_s=np.zeros_like(arr), header=header)


def zero_matrix_no_header(path: Path) -> None:
    """A well-formed file as the old cache wrote it, holding a zeroed matrix."""
    with np.load(path, allow_pickle=False) as npz:
        arr = npz["travel_time_s"]
    np.savez(path, travel_time_s=np.zeros_like(arr))


@pytest.mark.parametrize(
    "damage", [truncate, zero_fill, zero_matrix_same_header, zero_matrix_no_header]
)
def test_damaged_matrix_entry_is_recomputed_with_one_warning(
    cache: Path, caplog: pytest.LogCaptureFixture, damage: object
) -> None:
    G = grid_graph()
    truth = travel_time_matrix(G, ORIGINS_A, DESTS, cache=False)
    assert np.all(truth > 0)
    first = travel_time_matrix(G, ORIGINS_A, DESTS)
    np.testing.assert_array_equal(first, truth)
    (path,) = matrix_files(cache)
    damage(path)  # type: ignore[operator]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = travel_time_matrix(G, ORIGINS_A, DESTS)
    np.testing.assert_array_equal(again, truth)
    msgs = warnings_of(caplog)
    assert len(msgs) == 1, msgs
    assert "matrix cache entry" in msgs[0]
    assert path.name in msgs[0]
    assert "recomputing" in msgs[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        healed = travel_time_matrix(G, ORIGINS_A, DESTS)
    np.testing.assert_array_equal(healed, truth)
    assert warnings_of(caplog) == []  # the entry was rewritten


def test_swapped_matrix_entries_are_both_recomputed(
    cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    G = grid_graph()
    truth_a = travel_time_matrix(G, ORIGINS_A, DESTS, cache=False)
    truth_b = travel_time_matrix(G, ORIGINS_B, DESTS, cache=False)
    assert not np.array_equal(truth_a, truth_b)
    travel_time_matrix(G, ORIGINS_A, DESTS)
    before = set(matrix_files(cache))
    travel_time_matrix(G, ORIGINS_B, DESTS)
    (path_b,) = set(matrix_files(cache)) - before
    (path_a,) = before
    tmp = path_a.with_suffix(".swap")
    path_a.rename(tmp)
    path_b.rename(path_a)
    tmp.rename(path_b)
    with caplog.at_level(logging.WARNING):
        got_a = travel_time_matrix(G, ORIGINS_A, DESTS)
        got_b = travel_time_matrix(G, ORIGINS_B, DESTS)
    np.testing.assert_array_equal(got_a, truth_a)
    np.testing.assert_array_equal(got_b, truth_b)
    msgs = warnings_of(caplog)
    assert len(msgs) == 2, msgs
    assert all("built from key=" in m for m in msgs), msgs


def test_check_header_names_what_is_wrong() -> None:
    header = _cache.make_header(
        built_from={"key": "abc", "code": "x-1", "shape": (2, 3)}, payload_sha256={"p": "00"}
    )
    ok = {"key": "abc", "code": "x-1", "shape": [2, 3]}
    assert _cache.check_header(header, built_from=ok, payload_sha256={"p": "00"}) is None
    assert _cache.check_header(None, built_from=ok, payload_sha256={"p": "00"}) == "no header"
    assert "code" in str(
        _cache.check_header(header, built_from={**ok, "code": "x-2"}, payload_sha256={"p": "00"})
    )
    assert "shape" in str(
        _cache.check_header(header, built_from={**ok, "shape": [3, 2]}, payload_sha256={"p": "00"})
    )
    reason = _cache.check_header(header, built_from=ok, payload_sha256={"p": "01"})
    assert reason == "checksum mismatch in p"


# ----------------------------------------------------------------------------------------------
# Prepared road graphs (Parquet directory + graph.json header)
# ----------------------------------------------------------------------------------------------


@pytest.fixture
def road_file(tmp_path: Path) -> Path:
    path = tmp_path / "merged.osm"
    path.write_text(merged_ways_osm(), encoding="utf-8")
    return path


def graph_dirs(cache: Path) -> list[Path]:
    return sorted(p for p in (cache / "graphs").iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize("part", ["edges.parquet", "nodes.parquet", "graph.json"])
@pytest.mark.parametrize("damage", [truncate, zero_fill])
def test_damaged_graph_entry_is_rebuilt_with_one_warning(
    cache: Path,
    road_file: Path,
    caplog: pytest.LogCaptureFixture,
    part: str,
    damage: object,
) -> None:
    truth = graph_fingerprint(load_region(road_file, cache=False))
    assert load_region(road_file).graph["planner_report"]["cache_hit"] is False
    (entry,) = graph_dirs(cache)
    damage(entry / part)  # type: ignore[operator]
    with caplog.at_level(logging.WARNING):
        G = load_region(road_file)
    assert G.graph["planner_report"]["cache_hit"] is False
    assert graph_fingerprint(G) == truth
    msgs = warnings_of(caplog)
    assert len(msgs) == 1, msgs
    assert "graph cache entry" in msgs[0], msgs
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        warm = load_region(road_file)
    assert warm.graph["planner_report"]["cache_hit"] is True
    assert graph_fingerprint(warm) == truth
    assert warnings_of(caplog) == []


def test_swapped_graph_files_and_entries_are_rebuilt(
    cache: Path, road_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    truth_free = graph_fingerprint(load_region(road_file, cache=False))
    truth_slow = graph_fingerprint(load_region(road_file, congestion=1.5, cache=False))
    load_region(road_file)
    (free,) = graph_dirs(cache)
    load_region(road_file, congestion=1.5)
    (slow,) = set(graph_dirs(cache)) - {free}
    # well-formed Parquet from the other entry: same shape, other travel times
    shutil.copyfile(slow / "edges.parquet", free / "edges.parquet")
    with caplog.at_level(logging.WARNING):
        G = load_region(road_file)
    assert graph_fingerprint(G) == truth_free
    assert "checksum mismatch in edges.parquet" in " ".join(warnings_of(caplog))
    # whole entries swapped (each directory consistent in itself)
    tmp = free.with_name("swap")
    free.rename(tmp)
    slow.rename(free)
    tmp.rename(slow)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        a = load_region(road_file)
        b = load_region(road_file, congestion=1.5)
    assert graph_fingerprint(a) == truth_free
    assert graph_fingerprint(b) == truth_slow
    msgs = warnings_of(caplog)
    assert len(msgs) == 2, msgs
    assert all("built from key=" in m for m in msgs), msgs


def test_graph_header_records_source_code_shape_and_checksums(cache: Path, road_file: Path) -> None:
    G = load_region(road_file)
    (entry,) = graph_dirs(cache)
    header = json.loads((entry / "graph.json").read_text(encoding="utf-8"))["cache"]
    built = header["built_from"]
    assert built["key"] == entry.name
    assert built["source"].startswith("sha256:")
    assert built["code"] == G.graph["planner_report"]["code_version"]
    assert (built["nodes"], built["edges"]) == (G.number_of_nodes(), G.number_of_edges())
    for name in ("nodes.parquet", "edges.parquet"):
        assert header["payload_sha256"][name] == _cache.sha256_hex((entry / name).read_bytes())
    assert _graph_cache.read_graph(entry, built_from={"key": "other"}) is None


# ----------------------------------------------------------------------------------------------
# OSM features (Parquet + .json header)
# ----------------------------------------------------------------------------------------------


def osm_with_shops(path: Path, names: list[str]) -> Path:
    shops = "".join(
        f'  <node id="{9001 + i}" version="1" lat="{47.131 + 0.001 * i}" lon="9.511">\n'
        f'    <tag k="shop" v="car_repair"/>\n    <tag k="name" v="{name}"/>\n  </node>\n'
        for i, name in enumerate(names)
    )
    path.write_text(merged_ways_osm().replace("</osm>", shops + "</osm>"), encoding="utf-8")
    return path


def test_damaged_or_swapped_features_entry_is_rebuilt(
    cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from planner.roads.features import read_osm_features

    mine = osm_with_shops(tmp_path / "mine.osm", ["Garage A", "Garage B"])
    other = osm_with_shops(tmp_path / "other.osm", ["Other X", "Other Y"])
    truth = read_osm_features(mine)
    assert sorted(truth["name"]) == ["Garage A", "Garage B"]
    (entry,) = sorted((cache / "features").glob("*.parquet"))
    for damage in (truncate, zero_fill):
        damage(entry)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            got = read_osm_features(mine)
        pd.testing.assert_frame_equal(got, truth)
        msgs = warnings_of(caplog)
        assert len(msgs) == 1, msgs
        assert "features cache entry" in msgs[0], msgs
    # a well-formed Parquet file of another entry, same shape
    assert sorted(read_osm_features(other)["name"]) == ["Other X", "Other Y"]
    (other_entry,) = set((cache / "features").glob("*.parquet")) - {entry}
    shutil.copyfile(other_entry, entry)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        got = read_osm_features(mine)
    pd.testing.assert_frame_equal(got, truth)
    msgs = warnings_of(caplog)
    assert len(msgs) == 1, msgs
    assert "checksum mismatch" in msgs[0], msgs


# ----------------------------------------------------------------------------------------------
# End to end: break every cache file, run the scenario again, get the same answer
# ----------------------------------------------------------------------------------------------


def test_run_after_breaking_every_cache_file_gives_the_cache_free_answer(
    cache: Path, road_file: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(3)
    customers = tmp_path / "customers.csv"
    pd.DataFrame(
        {
            "id": [f"C{i}" for i in range(40)],
            "lat": 47.13 + rng.uniform(0, 0.012, 40),
            "lon": 9.51 + rng.uniform(0, 0.012, 40),
        }
    ).to_csv(customers, index=False)
    sites = tmp_path / "sites.csv"
    sites.write_text(
        "id,lat,lon,kind,status\nO1,47.136,9.516,office,existing\n"
        "W1,47.1302,9.5102,workshop,candidate\nW2,47.1412,9.5205,workshop,candidate\n"
        "W3,47.1385,9.5118,workshop,candidate\nW4,47.1318,9.5195,workshop,candidate\n",
        encoding="utf-8",
    )
    spec = ScenarioSpec(region=str(road_file), customers=customers, sites=sites, workshops=2)
    cold = run(spec)
    files = matrix_files(cache)
    assert files
    for i, path in enumerate(files):
        (truncate if i % 2 else zero_matrix_no_header)(path)
    (entry,) = graph_dirs(cache)
    zero_fill(entry / "edges.parquet")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        again = run(spec)
    cache_msgs = [m for m in warnings_of(caplog) if "cache entry" in m]
    assert len(cache_msgs) == len(files) + 1, cache_msgs
    assert dict(again.kpis) == dict(cold.kpis)
    pd.testing.assert_frame_equal(
        pd.DataFrame(again.result.customers.drop(columns="geometry")),
        pd.DataFrame(cold.result.customers.drop(columns="geometry")),
    )
    assert cold.kpis["mean_travel_min"] > 0


def test_features_read_again_in_process_are_an_independent_copy(
    cache: Path, tmp_path: Path
) -> None:
    from planner.roads.features import read_osm_features

    path = osm_with_shops(tmp_path / "mine.osm", ["Garage A", "Garage B"])
    first = read_osm_features(path)
    first.loc[0, "name"] = "changed by the caller"
    again = read_osm_features(path)  # from the in-process memo
    assert sorted(again["name"]) == ["Garage A", "Garage B"]
    # a new OSM file at the same path is read anew
    osm_with_shops(path, ["Garage C"])
    assert list(read_osm_features(path)["name"]) == ["Garage C"]


def test_threads_reading_the_same_features_at_once_parse_the_file_once(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several users' solves on one server ask for a region's features together: one parse."""
    import threading

    import osmnx as ox

    from planner.roads.features import read_osm_features

    path = osm_with_shops(tmp_path / "mine.osm", ["Garage A", "Garage B"])
    parses: list[str] = []
    real = ox.features_from_xml

    def counted(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        parses.append(str(args[0]))
        threading.Event().wait(0.3)  # long enough for every thread to be waiting
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ox, "features_from_xml", counted)
    got: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda: got.append(sorted(read_osm_features(path)["name"])))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert parses == [str(path)]
    assert got == [["Garage A", "Garage B"]] * 4


# ----------------------------------------------------------------------------------------------
# The array caches (.npz without a header): road arrays, snapping index, road layer
# ----------------------------------------------------------------------------------------------


def _read_array_graph(path: Path) -> object:
    from planner.roads.arrays import ArrayGraph

    return ArrayGraph.load(path)


def _read_snap_index(path: Path) -> object:
    from planner.roads.snapping import _read_index_arrays

    return _read_index_arrays(path)


def _read_road_layer(path: Path) -> object:
    from planner.outputs.road_layer import _read

    return _read(path)


@pytest.mark.parametrize("damage", [truncate, zero_fill])
@pytest.mark.parametrize("read", [_read_array_graph, _read_snap_index, _read_road_layer])
def test_damaged_array_cache_file_is_ignored_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage, read
) -> None:
    path = tmp_path / "entry.npz"
    arrays = {"coords": np.arange(4000.0).reshape(-1, 2), "meta": np.frombuffer(b"{}", np.uint8)}
    _cache.write_npz(path, arrays, "test")
    read_back = _cache.read_npz(path, "test")
    assert read_back is not None
    assert set(read_back) == set(arrays)
    np.testing.assert_array_equal(read_back["coords"], arrays["coords"])
    damage(path)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert read(path) is None  # a truncated zip raised BadZipFile before
    assert len([m for m in warnings_of(caplog) if "cache entry" in m]) == 1, warnings_of(caplog)
