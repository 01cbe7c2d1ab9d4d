"""The LP bound of the 10,000 x 1,000, p = 20 instance (``bench_exact.py --only large``).

1. ``settle``: the LP bound itself, by the grouped Benders loop of ``planner.models._lp_bound``
   started from the heuristic's row costs (no subgradient), with its bracket
   ``master value <= LP <= F(y)``; then the subgradient alone for the same time from the same
   start, as the comparison.
2. ``solve``: ``planner.models.p_median`` with the LP bound raised in the large Lagrangian
   branch and the LP rounding heuristic at the LP's points (shipped), against the same path
   without the rounding, and without the LP step at all (``_lp_bound.raise_bound`` replaced by
   a function that returns the subgradient's result unchanged), same process, 60 s each;
   ``--repeat K`` runs the shipped path K times (its run-to-run spread).
3. ``shapes`` (not in the default run): 50,000 x 60, p = 10 and 30,000 x 200, p = 15, shipped
   against without the LP step, same process.

Command (under the shared CPU lock)::

    flock /tmp/cpu.lock timeout 900 env PYTHONPATH=. .venv/bin/python benchmarks/bench_lp_bound.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from bench_exact import euclidean_instance

from planner.models import _lagrangian, _local_search, _lp_bound, p_median


def settle(cost: np.ndarray, w: np.ndarray, p: int) -> None:
    a = cost * w[:, None]
    m = a.shape[1]
    fix = np.zeros(m)
    req = np.empty(0, dtype=np.int64)
    allowed = np.ones(m, dtype=bool)
    t0 = time.perf_counter()
    open_sites, ub = _local_search.local_search(
        a, fix, p=p, required=req, allowed=allowed, deadline=t0 + 60
    )
    print(f"heuristic: {ub:,.1f} in {time.perf_counter() - t0:.1f} s", flush=True)
    start = a[:, open_sites].min(axis=1)
    t1 = time.perf_counter()
    lp = _lp_bound.lp_bound(
        a,
        fix,
        p=p,
        required=req,
        start_levels=[start],
        start_open=open_sites,
        deadline=t1 + 300,
    )
    t_lp = time.perf_counter() - t1
    print(
        f"LP loop from the heuristic's row costs: {lp.bound:,.2f} <= LP <= {lp.lp_upper:,.2f} "
        f"({lp.rounds} rounds, {lp.cuts} group cuts, converged {lp.converged}) in {t_lp:.1f} s; "
        f"y > 0 on {(lp.y > 1e-6).sum()} candidates, max y {lp.y.max():.3f}",
        flush=True,
    )
    t2 = time.perf_counter()
    sg = _lagrangian.subgradient(
        a,
        fix,
        p=p,
        required=req,
        allowed=allowed,
        upper_bound=ub,
        start=start,
        deadline=t2 + t_lp,
        max_restarts=3,
    )
    print(
        f"subgradient alone, same start and time: {sg.bound:,.2f} ({sg.iterations} iterations, "
        f"converged {sg.converged}); LP - subgradient = {lp.bound - sg.bound:,.1f}",
        flush=True,
    )


PATHS = {
    "shipped": "LP bound + LP rounding (shipped)",
    "no-rounding": "LP bound, no LP rounding",
    "off": "without LP bound",
}


def run_path(cost: np.ndarray, w: np.ndarray, p: int, limit: float, path: str):
    """``p_median`` with the large-instance LP step as shipped, without its LP rounding
    heuristic (``_local_search.lp_rounding`` finding nothing), or without the LP step at all
    (``_lp_bound.raise_bound`` returning the subgradient's result unchanged)."""
    shipped_raise, shipped_rounding = _lp_bound.raise_bound, _local_search.lp_rounding

    def unchanged(a, fixed, lag, **_):
        nothing = np.empty(0)
        return lag, _lp_bound.LpBoundResult(np.nan, np.nan, nothing, nothing, 0, 0, False, "off")

    def nothing_found(*_, **__):
        return np.empty(0, dtype=np.int64), np.inf

    if path == "off":
        _lp_bound.raise_bound = unchanged
    if path == "no-rounding":
        _local_search.lp_rounding = nothing_found
    try:
        t0 = time.perf_counter()
        sol = p_median(cost, p, w, time_limit=limit)
        return sol, time.perf_counter() - t0
    finally:
        _lp_bound.raise_bound, _local_search.lp_rounding = shipped_raise, shipped_rounding


def print_runs(cost: np.ndarray, w: np.ndarray, p: int, limit: float, paths: list[str]) -> None:
    columns = ["path", "time s", "objective", "bound", "gap", "lp_bound (rounds, status)"]
    columns += ["Lagrangian rounds", "LP roundings improving"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for path in paths:
        sol, t = run_path(cost, w, p, limit, path)
        lp_bound = sol.extras.get("lp_bound")
        print(
            f"| {PATHS[path]} | {t:.2f} | "
            f"{sol.objective:,.1f} | {sol.lower_bound:,.1f} | {100 * sol.gap:.3f} % | "
            f"{'-' if lp_bound is None or np.isnan(lp_bound) else f'{lp_bound:,.1f}'} "
            f"({sol.extras.get('lp_bound_rounds')}, {sol.extras.get('lp_bound_status')}; "
            f"tree {sol.extras.get('lp_tree_bound')}, {sol.extras.get('lp_tree_nodes')} nodes) | "
            f"{sol.extras.get('lagrangian_rounds')} | {sol.extras.get('lp_rounding_improved')} of "
            f"{sol.extras.get('lp_rounding_calls')} |",
            flush=True,
        )


def solve(
    cost: np.ndarray, w: np.ndarray, p: int, limit: float, *, off_first: bool, repeat: int
) -> None:
    paths = ["off", "shipped", "no-rounding"] if off_first else ["shipped", "no-rounding", "off"]
    paths += ["shipped"] * (repeat - 1)  # run-to-run spread of the shipped path
    print_runs(cost, w, p, limit, paths)


def shapes(limit: float) -> None:
    """Two other shapes above ``LARGE_PAIRS`` (``euclidean_instance(n, m, seed=3)``)."""
    for n, m, p in ((50_000, 60, 10), (30_000, 200, 15)):
        print(f"\n{n:,} x {m:,}, p = {p}, {limit:.0f} s limit", flush=True)
        cost, w = euclidean_instance(n, m, seed=3)
        print_runs(cost, w, p, limit, ["shipped", "off"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["settle", "solve", "shapes"], action="append")
    parser.add_argument("--limit", type=float, default=60.0)
    parser.add_argument("--off-first", action="store_true", help="solve: the path without first")
    parser.add_argument("--repeat", type=int, default=1, help="solve: runs of the shipped path")
    args = parser.parse_args()
    cost, w = euclidean_instance(10_000, 1_000, seed=2)
    parts = args.only or ["settle", "solve"]
    if "shapes" in parts:
        shapes(args.limit)
    if "settle" in parts:
        settle(cost, w, 20)
    if "solve" in parts:
        solve(cost, w, 20, args.limit, off_first=args.off_first, repeat=args.repeat)


if __name__ == "__main__":
    main()
