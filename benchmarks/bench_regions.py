"""Regions: catalog search, download from a loopback server (with a cut and resume), and
``planner run --region ID`` on a big extract trimmed to the customers vs the whole extract.

Builds nothing itself: give it the 8 x 8 tiled Malta extract and its customers
(``benchmarks/make_tiled_pbf.py --tiles 8 --customers 4000 --out /tmp/tiled8.osm.pbf``). The
customers kept are those of one quarter of the tiles (the 4 x 4 south-west ones). Every load
and run is a child process, so its peak memory (``ru_maxrss``) is its own; the script prints
clipped / whole ratios measured in this same run.

Usage::

    flock /tmp/cpu.lock python -u benchmarks/bench_regions.py --pbf /tmp/tiled8.osm.pbf

The "load" lines print the child's wall time (imports included), then in the output the
nodes, edges and the load's own seconds as ``load_region`` measured them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from planner.roads import catalog as cat  # noqa: E402
from planner.roads.download import download_region  # noqa: E402
from tests._regions_server import index_document, region_server  # noqa: E402

DX, DY = 0.3, 0.22  # make_tiled_pbf's tile offsets


def _child(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a child process; wall seconds, peak memory (GB) and its output."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert proc.stdout is not None
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}):\n{out[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024 / 1024, out


def _big_index(base: str, n: int = 500, vertices: int = 400) -> bytes:
    """A catalog the size of Geofabrik's (about 500 regions with detailed outlines)."""
    rng = np.random.default_rng(0)
    doc = json.loads(index_document(base))
    for k in range(n):
        lon0, lat0 = rng.uniform(-170, 160), rng.uniform(-60, 70)
        angle = np.linspace(0, 2 * np.pi, vertices)
        ring = np.c_[lon0 + 2 + np.cos(angle), lat0 + 2 + np.sin(angle)].round(5).tolist()
        ring.append(ring[0])
        doc["features"].append(
            {
                "type": "Feature",
                "properties": {
                    "id": f"place-{k}",
                    "name": f"Place {k}",
                    "parent": "europe",
                    "urls": {"pbf": f"{base}/europe/place-{k}-latest.osm.pbf"},
                },
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return json.dumps(doc).encode()


def bench_catalog(state: object) -> None:
    base = state.url  # type: ignore[attr-defined]
    state.files["/index-v1.json"] = _big_index(base)  # type: ignore[attr-defined]
    size_mb = len(state.files["/index-v1.json"]) / 1e6  # type: ignore[attr-defined]
    started = time.perf_counter()
    catalog = cat.load_catalog(refresh=True)
    fetch_s = time.perf_counter() - started
    times = []
    for text in ("gre", "place 4", "liech", "europe/malta", "zz"):
        started = time.perf_counter()
        cat.list_regions(text, catalog=cat.load_catalog())
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    holder = cat.region_for_points([9.52, 9.55], [47.14, 47.2], catalog=catalog)
    pip_s = time.perf_counter() - started
    print(
        f"catalog: {len(catalog.entries)} regions ({size_mb:.1f} MB index) fetched and parsed in "
        f"{fetch_s:.2f} s; search (load_catalog + list_regions) max {max(times) * 1000:.0f} ms, "
        f"mean {np.mean(times) * 1000:.0f} ms (target < 500 ms); "
        f"region_for_points {pip_s * 1000:.0f} ms -> {holder.id if holder else None}"
    )


def bench_download(state: object, pbf: Path) -> None:
    data = pbf.read_bytes()
    path = "/europe/tiled-latest.osm.pbf"
    state.files[path] = data  # type: ignore[attr-defined]
    state.files["/index-v1.json"] = index_document(state.url).replace(  # type: ignore[attr-defined]
        b'"features": [', b'"features": [' + _tiled_feature(state.url) + b", ", 1
    )
    catalog = cat.load_catalog(refresh=True)
    seen = []
    started = time.perf_counter()
    out = download_region("europe/tiled", catalog=catalog, progress=seen.append)
    whole_s = time.perf_counter() - started
    mb = len(data) / 1e6
    print(
        f"download: {mb:.1f} MB in {whole_s:.2f} s ({mb / whole_s:.0f} MB/s), "
        f"{len(seen)} progress reports, last: {seen[-1].message()}"
    )
    out.unlink()
    out.with_name(out.name + ".json").unlink()
    cut = len(data) * 2 // 5
    state.cut_after[path] = cut  # type: ignore[attr-defined]
    stats: dict = {}
    started = time.perf_counter()
    download_region("europe/tiled", catalog=catalog, stats=stats)
    resumed_s = time.perf_counter() - started
    print(
        f"download cut at {cut / 1e6:.1f} MB and resumed: {resumed_s:.2f} s, requests start at "
        f"bytes {stats['range_starts']} (resumed, not restarted)"
    )


def _tiled_feature(base: str) -> bytes:
    feature = {
        "type": "Feature",
        "properties": {
            "id": "tiled",
            "name": "Tiled Malta",
            "parent": "europe",
            "urls": {"pbf": f"{base}/europe/tiled-latest.osm.pbf"},
        },
        "geometry": {
            "type": "Polygon",
            "coordinates": [[[14.0, 35.5], [17.0, 35.5], [17.0, 38.0], [14.0, 38.0], [14.0, 35.5]]],
        },
    }
    return json.dumps(feature).encode()


def bench_run(state: object, pbf: Path, customers: Path, work: Path) -> None:
    frame = pd.read_csv(customers)
    # tiles (i, j) with i, j < 4 (Malta is 0.4 degrees wide: tiles overlap a little in lon)
    quarter = frame[(frame["lon"] < 15.35) & (frame["lat"] < 35.78 + 4 * DY)]
    qpath = work / "quarter.csv"
    quarter.to_csv(qpath, index=False)
    py = sys.executable
    env = {"PYTHONPATH": str(REPO), "PLANNER_DOWNLOAD_URL": state.url}  # type: ignore[attr-defined]
    load = (
        "import sys, time; from pathlib import Path; import pandas as pd;"
        "from planner.roads.network import load_region; from planner.roads.trim import area_around;"
        "f = pd.read_csv(sys.argv[2]);"
        "area = area_around(f['lon'], f['lat'], margin_km=30) if sys.argv[3] == 'clip' else None;"
        "t = time.perf_counter(); G = load_region(Path(sys.argv[1]), area=area, cache=False);"
        "print(G.number_of_nodes(), G.number_of_edges(), round(time.perf_counter() - t, 1),"
        " G.graph['planner_report'].get('kept'))"
    )
    results = {}
    for kind in ("clip", "whole"):
        env_k = {**env, "PLANNER_CACHE_DIR": str(work / f"cache-load-{kind}")}
        s, gb, out = _child([py, "-c", load, str(pbf), str(qpath), kind], env_k)
        results[kind] = (s, gb)
        print(f"load {kind}: {s:.1f} s wall (child), peak {gb:.2f} GB: {out.strip()[-300:]}")
    (cs, cg), (ws_, wg) = results["clip"], results["whole"]
    print(f"clipped / whole: time {cs / ws_:.2f}, peak memory {cg / wg:.2f}")
    run_env = {**env, "PLANNER_CACHE_DIR": str(work / "cache-run")}
    cli = [py, "-m", "planner.cli", "run", "--region", "europe/tiled", "--customers", str(qpath)]
    cli += ["--workshops", "5", "--overwrite"]
    for label in ("cold (download + trim + build + solve)", "warm"):
        s, gb, out = _child([*cli, "--out", str(work / "out")], run_env)
        kept = [line for line in out.splitlines() if line.startswith("Kept")]
        status = [line for line in out.splitlines() if "proven" in line and " with " in line]
        print(f"planner run {label}: {s:.1f} s, peak {gb:.2f} GB; {kept[:1]} {status[-1:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pbf", type=Path, required=True, help="the 8 x 8 tiled extract")
    parser.add_argument("--customers", type=Path, help="default: <pbf>.customers.csv")
    args = parser.parse_args()
    customers = args.customers or args.pbf.with_suffix(".customers.csv")
    with tempfile.TemporaryDirectory(prefix="bench-regions-") as tmp:
        work = Path(tmp)
        os.environ["PLANNER_CACHE_DIR"] = str(work / "cache")
        os.environ.pop("PLANNER_OFFLINE", None)
        with region_server() as state:
            os.environ["PLANNER_DOWNLOAD_URL"] = state.url
            bench_catalog(state)
            bench_download(state, args.pbf)
            bench_run(state, args.pbf, customers, work)


if __name__ == "__main__":
    main()
