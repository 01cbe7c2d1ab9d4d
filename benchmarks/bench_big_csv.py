"""Benchmark: a 1,000,000-row customer CSV, loaded or refused, with peak memory.

Run from the repository root::

    .venv/bin/python benchmarks/bench_big_csv.py                 # 1,000,000 rows
    .venv/bin/python benchmarks/bench_big_csv.py --rows 200000   # quicker

Writes a customer CSV of ``--rows`` random Malta customers (the generator of ``bench_import.py``)
and one of twice as many rows, then measures, each in a fresh child process so that peak memory
is its own:

* baseline ``pandas.read_csv`` of the file, against :func:`planner.inputs.customers.read_customers`
  (parse + per-row validation, no region);
* the refusal of the file with twice the rows when the limit (``$PLANNER_MAX_ROWS``) is
  ``--rows``: a streamed line count, then a fatal report.

Peak memory is the child's peak RSS (``VmHWM`` of ``/proc/self/status``, which, unlike
``ru_maxrss``, does not inherit the parent's peak across ``exec``); the growth is that minus its
RSS after the imports, so it is what reading the file costs. Ratios are ours ÷ baseline.
Linux only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

CHILD = r"""
import json, sys, time
def status_mb(key):
    with open("/proc/self/status") as fh:
        line = next(x for x in fh if x.startswith(key + ":"))
    return int(line.split()[1]) * 1024 / 1e6
def rss_mb():
    return status_mb("VmRSS")
import pandas as pd
from planner.inputs.customers import read_customers
base = rss_mb()
started = time.perf_counter()
if sys.argv[1] == "pandas":
    rows = len(pd.read_csv(sys.argv[2]))
    fatal = False
else:
    table = read_customers(sys.argv[2])
    rows, fatal = len(table.frame), bool(table.report.fatal)
elapsed = time.perf_counter() - started
peak = status_mb("VmHWM")
print(json.dumps({"s": elapsed, "peak_mb": peak, "delta_mb": peak - base, "rows": rows,
                  "fatal": fatal}))
"""


def measure(kind: str, path: Path, env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    from bench_import import make_customers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PLANNER_MAX_ROWS", None)
    with tempfile.TemporaryDirectory(prefix="bench-big-csv-") as tmp:
        path = Path(tmp) / "customers.csv"
        make_customers(args.rows).to_csv(path, index=False)
        double = Path(tmp) / "customers_x2.csv"
        with double.open("wb") as out:
            out.write(path.read_bytes())
            out.write(b"".join(path.read_bytes().splitlines(keepends=True)[1:]))
        size_mb = path.stat().st_size / 1e6
        base = measure("pandas", path, env)
        ours = measure("planner", path, env)
        assert ours["rows"] == args.rows, ours
        assert not ours["fatal"], ours
        refuse_env = {**env, "PLANNER_MAX_ROWS": str(args.rows)}
        refused = measure("planner", double, refuse_env)
        assert refused["fatal"], refused
        assert refused["rows"] == 0, refused
    print(f"{args.rows:,} rows, {size_mb:.1f} MB CSV (refusal: {2 * args.rows:,} rows)")
    print("| step | time (s) | peak RSS (MB) | RSS growth (MB) | time ÷ pandas | growth ÷ pandas |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, r in (
        ("`pandas.read_csv` (baseline)", base),
        ("`read_customers`: parse + validate", ours),
        (f"refusal over the limit ({2 * args.rows:,} rows)", refused),
    ):
        print(
            f"| {label} | {r['s']:.2f} | {r['peak_mb']:.0f} | {r['delta_mb']:.0f} | "
            f"{r['s'] / base['s']:.2f} | {r['delta_mb'] / max(base['delta_mb'], 1.0):.2f} |"
        )


if __name__ == "__main__":
    main()
