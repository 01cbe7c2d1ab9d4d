"""Multi-period p-median benchmark: a phased plan against re-planning every year from scratch.

Everything runs in one process on seeded weighted Euclidean instances (demand shifting across
the square over the years), so the printed ratios compare like with like:

* baseline: one ``p_median`` per year (re-planning from scratch, sites may close), its time and
  total objective;
* ours: ``multi_period_p_median`` (sites once open stay open, exact HiGHS MIP when small
  enough, a proven gap always), its time, gap and the price of consistency (its objective over
  the baseline's).

Also times the trend analysis of the Malta demo history (segment + area trends + forecast).

Usage::

    .venv/bin/python benchmarks/bench_phases.py            # about 2 minutes
    .venv/bin/python benchmarks/bench_phases.py --quick    # small instances only
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from planner.models import multi_period_p_median, p_median

ROOT = Path(__file__).resolve().parent.parent


def instance(n: int, m: int, years: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Customers and sites in a 50 km square; demand moves from west to east year by year."""
    rng = np.random.default_rng(seed)
    customers = rng.random((n, 2)) * 50_000.0
    sites = rng.random((m, 2)) * 50_000.0
    cost = np.linalg.norm(customers[:, None] - sites[None], axis=2) / 13.9
    east = customers[:, 0] / 50_000.0
    base = rng.integers(1, 10, n).astype(float)
    weights = np.array(
        [base * (1.0 + t * east - 0.5 * t * (1 - east)).clip(0.1) for t in range(years)]
    )
    return cost, weights


def bench_models(quick: bool) -> None:
    cases = [(200, 40, (3, 4, 5)), (1_000, 60, (3, 4, 5))]
    if not quick:
        cases.append((2_000, 100, (4, 6, 8, 10)))
    print("n x m, p per year | replan s | phased s | ratio | gap | price of consistency")
    for n, m, p in cases:
        cost, weights = instance(n, m, len(p), seed=7)
        t0 = time.perf_counter()
        replanned = sum(p_median(cost, p[t], weights[t]).objective for t in range(len(p)))
        t_replan = time.perf_counter() - t0
        t0 = time.perf_counter()
        sol = multi_period_p_median(cost, p, weights, time_limit=60)
        t_phased = time.perf_counter() - t0
        print(
            f"{n:,} x {m}, {p} | {t_replan:.2f} | {t_phased:.2f} | {t_phased / t_replan:.1f} | "
            f"{sol.gap:.3%} ({sol.status}, MIP pairs {sol.extras['mip_pairs']:,}) | "
            f"{sol.objective / replanned - 1:+.3%}"
        )


def bench_trends() -> None:
    from planner.inputs.jobs import read_jobs, read_register
    from planner.register import area_trends, forecast_jobs, segment_trends

    demo = ROOT / "data" / "demo"
    customers = read_register(demo / "malta_customers.csv").valid
    t0 = time.perf_counter()
    jobs = read_jobs(demo / "malta_jobs.csv", customer_ids=customers["customer_id"]).valid
    t_read = time.perf_counter() - t0
    segment_trends(jobs, customers)  # warm-up: statsmodels import
    t0 = time.perf_counter()
    segment_trends(jobs, customers)
    area_trends(jobs, customers)
    forecast_jobs(jobs, customers, years=5)
    t_trends = time.perf_counter() - t0
    print(
        f"Malta demo: read + validate {len(jobs):,} jobs {t_read:.2f} s; "
        f"trends + forecast {t_trends:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    bench_models(args.quick)
    bench_trends()


if __name__ == "__main__":
    main()
