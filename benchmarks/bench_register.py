"""The register database at company scale (issue 27).

Generates its own histories (DuckDB ``COPY``, not timed) and measures:

1. ``planner register import`` of N customers and M jobs (one CSV file), target < 60 s for
   100,000 customers and 10,000,000 jobs;
2. ``planner trends --db`` in a fresh process: wall time (< 10 s) and peak memory (< 2 GB,
   ``ru_maxrss`` of the child);
3. a monthly append of 200,000 jobs (< 5 s), and a re-import of the same month (nothing new);
4. the demo history (data/demo): the trend statistics through the stored register and from the
   file, against the pandas implementation they replaced (``--baseline-ref``, loaded from git
   into this process), as ratios.

Command (what benchmarks/README.md records)::

    flock /tmp/cpu.lock /work/venv/bin/python benchmarks/bench_register.py

``--customers 10000 --jobs 1000000`` gives a quick run. One lock hold should stay under ten
minutes on the shared machine, so the parts can run one at a time on data kept in a folder::

    flock /tmp/cpu.lock python benchmarks/bench_register.py --part demo
    flock /tmp/cpu.lock python benchmarks/bench_register.py --data /tmp/reg --part import
    flock /tmp/cpu.lock python benchmarks/bench_register.py --data /tmp/reg --part trends
    flock /tmp/cpu.lock python benchmarks/bench_register.py --data /tmp/reg --part append
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import resource
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from planner.inputs.jobs import read_jobs, read_register  # noqa: E402
from planner.register import forecast_jobs, segment_trends  # noqa: E402
from planner.register.imports import import_register  # noqa: E402
from planner.register.store import open_store  # noqa: E402
from planner.register.trends import area_trends, segment_counts  # noqa: E402

DEMO_CUSTOMERS = REPO / "data" / "demo" / "malta_customers.csv"
DEMO_JOBS = REPO / "data" / "demo" / "malta_jobs.csv"


def generate(folder: Path, *, customers: int, jobs: int, append: int) -> dict[str, Path]:
    """Customers inside Malta with a segment, five years of jobs, and one more month."""
    con = duckdb.connect()
    paths = {
        "customers": folder / "customers.csv",
        "jobs": folder / "jobs.csv",
        "month": folder / "month.csv",
    }
    con.execute(
        "COPY (SELECT 'C' || lpad(i::VARCHAR, 7, '0') AS id, "
        "round(35.82 + 0.14 * random(), 6) AS lat, round(14.35 + 0.20 * random(), 6) AS lon, "
        "1 AS weight, ['private', 'business', 'fleet'][1 + i % 3] AS segment "
        f"FROM range({customers}) t(i)) TO '{paths['customers']}' (HEADER)"
    )
    job_sql = (
        "SELECT 'J' || lpad(i::VARCHAR, 9, '0') AS job_id, "
        f"'C' || lpad(((i * 7919) % {customers})::VARCHAR, 7, '0') AS customer_id, "
        "strftime(DATE '{start}' + ((i * 13) % {days})::INTEGER, '%Y-%m-%d') AS date, "
        "round(50 + (i % 400), 2) AS revenue_eur, (i % 23 = 0)::INTEGER AS complaint, "
        "['W1', 'W2', 'P1', 'P2'][1 + i % 4] AS served_by FROM range({lo}, {hi}) t(i)"
    )
    con.execute(
        "COPY ("
        + job_sql.format(start="2021-01-01", days=5 * 365, lo=0, hi=jobs)
        + f") TO '{paths['jobs']}' (HEADER)"
    )
    con.execute(
        "COPY ("
        + job_sql.format(start="2026-01-01", days=31, lo=jobs, hi=jobs + append)
        + f") TO '{paths['month']}' (HEADER)"
    )
    con.close()
    return paths


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def baseline_module(ref: str) -> types.SimpleNamespace | None:
    """The pandas trends and forecast of git ``ref`` (before the register store), loaded into
    this process under other names."""
    modules = {}
    for name in ("trends", "forecast"):
        try:
            text = subprocess.run(
                ["git", "-C", str(REPO), "show", f"{ref}:planner/register/{name}.py"],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        except subprocess.CalledProcessError:
            return None
        text = text.replace("planner.register.trends", "baseline_register_trends")
        spec = importlib.util.spec_from_loader(f"baseline_register_{name}", loader=None)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        exec(compile(text, f"{ref}:{name}.py", "exec"), module.__dict__)
        modules[name] = module
    return types.SimpleNamespace(**modules)


def bench_demo(ref: str, repeats: int) -> None:
    register = read_register(DEMO_CUSTOMERS)
    table = read_jobs(DEMO_JOBS, customer_ids=register.frame["customer_id"])
    customers, valid = register.valid, table.valid
    base = baseline_module(ref)
    with tempfile.TemporaryDirectory() as tmp:
        with open_store(Path(tmp) / "demo.duckdb") as store:
            import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)

        def ours_file() -> None:
            jobs = valid.copy()  # a new frame each time: nothing kept from the last repeat
            segment_trends(jobs, customers)
            area_trends(jobs, customers)
            forecast_jobs(jobs, customers, years=3)
            segment_counts(jobs, customers)

        def ours_store() -> None:
            with open_store(Path(tmp) / "demo.duckdb", read_only=True) as store:
                stored = store.customers()
                segment_trends(store, stored)
                area_trends(store, stored)
                forecast_jobs(store, stored, years=3)
                segment_counts(store, stored)

        def baseline() -> None:
            assert base is not None
            jobs = valid.copy()
            base.trends.segment_trends(jobs, customers)
            base.trends.area_trends(jobs, customers)
            base.forecast.forecast_jobs(jobs, customers, years=3)
            base.trends.count_jobs(
                base.trends.jobs_with_customers(jobs, customers), by=("segment",)
            )

        best = {}
        for label, fn in (("file", ours_file), ("register", ours_store), ("baseline", baseline)):
            if label == "baseline" and base is None:
                continue
            best[label] = min(timed(fn)[0] for _ in range(repeats))
    print(f"demo history ({len(valid):,} jobs, {len(customers):,} customers), best of {repeats}:")
    for label, seconds in best.items():
        ratio = (
            f", {seconds / best['baseline']:.2f} x the pandas path" if "baseline" in best else ""
        )
        print(f"  {label:9s} {seconds:6.2f} s{ratio}")


def bench_import(folder: Path, paths: dict[str, Path]) -> Path:
    db = folder / "register.duckdb"
    db.unlink(missing_ok=True)
    with open_store(db) as store:
        t_import, result = timed(
            import_register, store, customers=paths["customers"], jobs=paths["jobs"]
        )
    print(f"import: {t_import:.1f} s (target < 60 s); " + "; ".join(str(s) for s in result))
    print(f"  database file: {db.stat().st_size / 1e6:,.0f} MB")
    return db


def bench_trends(folder: Path, db: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = folder / "trends"
    cmd = [sys.executable, "-m", "planner.cli", "trends", "--db", str(db), "--out", str(out)]
    cmd.append("--overwrite")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    t_trends = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"planner trends --db: {t_trends:.1f} s (target < 10 s), peak memory "
        f"{peak_mb:,.0f} MB (target < 2,048 MB)"
    )


def bench_append(db: Path, paths: dict[str, Path]) -> None:
    with open_store(db) as store:
        t_month, (month,) = timed(import_register, store, jobs=paths["month"])
        t_again, (again,) = timed(import_register, store, jobs=paths["month"])
    print(f"monthly append: {t_month:.1f} s (target < 5 s); {month}")
    print(f"same month again: {t_again:.1f} s; {again}")


PARTS = ("demo", "import", "trends", "append")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--jobs", type=int, default=10_000_000)
    parser.add_argument("--append", type=int, default=200_000)
    parser.add_argument("--baseline-ref", default="8dd5f9f", help="git ref of the pandas path")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--folder", help="work folder (default: a temporary one)")
    parser.add_argument(
        "--data",
        help="keep the generated files and the database in this folder and reuse them, so "
        "that the parts can run one at a time (each under its own lock hold)",
    )
    parser.add_argument(
        "--part",
        choices=("all", *PARTS),
        default="all",
        help="run one part (import needs the data; trends and append need the import)",
    )
    args = parser.parse_args()
    parts = PARTS if args.part == "all" else (args.part,)

    if "demo" in parts:
        bench_demo(args.baseline_ref, args.repeats)
    if parts == ("demo",):
        return
    with contextlib.ExitStack() as stack:
        if args.data:
            folder = Path(args.data)
            folder.mkdir(parents=True, exist_ok=True)
        else:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.folder)))
        paths = {name: folder / f"{name}.csv" for name in ("customers", "jobs", "month")}
        if not all(p.is_file() for p in paths.values()):
            t_gen, paths = timed(
                generate, folder, customers=args.customers, jobs=args.jobs, append=args.append
            )
            size_mb = paths["jobs"].stat().st_size / 1e6
            print(
                f"generated {args.customers:,} customers and {args.jobs:,} jobs "
                f"({size_mb:,.0f} MB CSV) in {t_gen:.1f} s"
            )
        db = folder / "register.duckdb"
        if "import" in parts:
            db = bench_import(folder, paths)
        if "trends" in parts:
            bench_trends(folder, db)
        if "append" in parts:
            bench_append(db, paths)


if __name__ == "__main__":
    main()
