"""The market objective through the engine on Malta, and the decay calibration's speed.

1. ``max_capture`` on the Malta demo customers x 500 generated candidates, with the island's
   OpenStreetMap car repair shops as competitors and the default decay (power, lambda 1.5),
   for p = 3..10, each through :func:`planner.engine.solve_layout` (the ONE engine) with a
   30 s limit. Printed per p: wall time, time / limit ("over", target < 1), proven or not and
   the gap, jobs won, and the first answer (greedy + swaps) against the proven one.
2. :func:`planner.register.calibration.fit_decay` after
   :func:`~planner.register.calibration.customer_history` on a synthetic history of 100,000
   jobs (20,000 customers, 10 competitors, power decay lambda 1.8): wall time against the 5 s
   target, and whether the 95 % interval holds the true lambda.

Command (under the shared CPU lock)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_market_malta.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from bench_market import add_processes_argument, use_processes

from planner.engine import ScenarioSpec, prepare_scenario, solve_layout
from planner.register.calibration import customer_history, fit_decay
from planner.results.market import DemandModel, decay


def bench_capture(candidates: int, ps: list[int], limit: float) -> None:
    spec = ScenarioSpec(
        region="malta",
        n_candidates=candidates,
        objective="max_capture",
        time_limit_s=limit,
    )
    t0 = time.perf_counter()
    sinst = prepare_scenario(spec)
    inst = sinst.instance
    print(
        f"prepared in {time.perf_counter() - t0:.1f} s: {inst.cost_s.shape[0]:,} demand points x "
        f"{sinst.columns['own'].size} candidates, {len(sinst.competitors)} OSM competitors"
    )
    print("| p | time s | over | proven | gap | jobs won | share | first answer / proven |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    for p in ps:
        t0 = time.perf_counter()
        lr = solve_layout(sinst, "in-house", workshops=p)
        t = time.perf_counter() - t0
        sol = lr.solution
        first = float(sol.extras.get("first_objective", np.nan))
        print(
            f"| {p} | {t:.1f} | {t / limit:.2f} | {'yes' if sol.optimal else 'no'} | "
            f"{100 * sol.gap:.3f} % | {lr.market.kpis['jobs_won']:,.1f} | "
            f"{lr.market.kpis['expected_share']:.1%} | {first / sol.objective:.4f} |",
            flush=True,
        )


def synthetic_jobs(n_jobs: int, n_customers: int, k: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    truth = DemandModel(parameter=1.8)
    t = rng.uniform(2, 45, n_customers)
    comp = rng.uniform(2, 60, (n_customers, k))
    own = 1.3 * decay(t, truth)
    rest = decay(comp, truth).sum(axis=1) + truth.outside_utility
    share = own / (own + rest)
    who = rng.choice(n_customers, size=n_jobs, p=share / share.sum())
    days = rng.integers(0, 3 * 365, size=n_jobs)
    jobs = pd.DataFrame(
        {
            "customer_id": who.astype(str),
            "date": pd.Timestamp("2023-01-01") + pd.to_timedelta(days, unit="D"),
            "served_by": "W1",
        }
    )
    customers = pd.DataFrame({"customer_id": np.arange(n_customers).astype(str)})
    return jobs, customers, t, comp


def bench_calibration(n_jobs: int) -> None:
    jobs, customers, t, comp = synthetic_jobs(n_jobs, 20_000, 10)
    t0 = time.perf_counter()
    history = customer_history(jobs, customers)
    t1 = time.perf_counter()
    fit = fit_decay(history["jobs"], history["years"], t, competitor_min=comp)
    t2 = time.perf_counter()
    lo, hi = fit.model.interval  # type: ignore[misc]
    print(
        f"calibration on {n_jobs:,} jobs: history {t1 - t0:.2f} s + fit {t2 - t1:.2f} s = "
        f"{t2 - t0:.2f} s (target 5 s: {(t2 - t0) / 5:.2f} of it); lambda {fit.model.value:.3f}, "
        f"95 % CI {lo:.3f}-{hi:.3f} (true 1.8: {'inside' if lo <= 1.8 <= hi else 'OUTSIDE'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=500)
    parser.add_argument("--p", type=int, nargs="+", default=list(range(3, 11)))
    parser.add_argument("--limit", type=float, default=30.0)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--skip-capture", action="store_true")
    add_processes_argument(parser)
    args = parser.parse_args()
    print(f"max_capture tree processes: {use_processes(args)}")
    bench_calibration(args.jobs)
    if not args.skip_capture:
        bench_capture(args.candidates, args.p, args.limit)


if __name__ == "__main__":
    main()
