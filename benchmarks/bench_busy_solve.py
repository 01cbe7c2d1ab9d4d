"""Does a busy machine change the p-median's path and proof? (issue 23, item 7)

The app solves in a background thread of the Streamlit server; ``planner run`` has the
machine to itself. Each row solves one instance (n customers x 60 candidates, Euclidean
costs, p = 5: the Benders path's "Lagrangian first" range) three times in one process:
quiet; with two pure-Python threads competing for the GIL (as the server's threads do); and
with a clock that runs four times faster (a machine four times slower). It prints the time,
the solver path, the Lagrangian iterations and the status of each, and the ratio busy / quiet.

Usage::

    PYTHONPATH=. python benchmarks/bench_busy_solve.py
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from planner.models.p_median import p_median


def instance(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    customers = rng.uniform(0, 10, (n, 2))
    sites = rng.uniform(0, 10, (60, 2))
    cost = np.sqrt(((customers[:, None, :] - sites[None, :, :]) ** 2).sum(-1)) * 60
    return cost, rng.integers(1, 4, n).astype(float)


def solve(cost: np.ndarray, weights: np.ndarray, how: str) -> tuple[float, str, int, str, float]:
    stop = threading.Event()
    spinners: list[threading.Thread] = []
    real = time.perf_counter
    if how == "gil":

        def spin() -> None:
            while not stop.is_set():
                sum(range(10_000))

        spinners = [threading.Thread(target=spin, daemon=True) for _ in range(2)]
        for t in spinners:
            t.start()
    if how == "clock x4":
        start = real()
        time.perf_counter = lambda: start + 4 * (real() - start)
    try:
        t0 = real()
        sol = p_median(cost, 5, weights=weights, time_limit=60)
        elapsed = real() - t0
    finally:
        time.perf_counter = real
        stop.set()
        for t in spinners:
            t.join()
    path = "Benders" if "Benders" in sol.solver else "Lagrangian"
    its = int(sol.extras.get("lagrangian_iterations", 0))
    return elapsed, path, its, sol.status, sol.objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,2,3")
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    print("| seed | run | time s | path | Lagrangian iterations | status | busy / quiet |")
    print("|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        cost, weights = instance(seed, args.n)
        quiet = None
        for how in ("quiet", "gil", "clock x4"):
            elapsed, path, its, status, objective = solve(cost, weights, how)
            if quiet is None:
                quiet = (elapsed, objective)
            assert abs(objective - quiet[1]) <= 1e-9 * quiet[1] or status != "optimal"
            print(
                f"| {seed} | {how} | {elapsed:.2f} | {path} | {its} | {status} | "
                f"{elapsed / quiet[0]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
