"""Capacitated p-median on the Malta demo: does a solve keep its time limit?

The single-sourcing MIP of ``planner.models.capacitated_p_median`` has one binary per reachable
customer-candidate pair (Malta demo customers x 500 candidates: 976,500). HiGHS's full MIP
presolve does not check the time limit, so above ``_mip.FULL_PRESOLVE_MAX_COLS`` columns the
light presolve runs instead; and when the relaxation's answer already fits the capacities the
solve returns it without building the MIP. Each case is solved twice in the same process: as
shipped, and as before (full presolve: ``FULL_PRESOLVE_MAX_COLS`` set to infinity; no early
return: ``fixed_charge.OPTIMALITY_GAP`` set below any gap); "over" is wall time / time limit.

Cases, p = 8, 20 s limit:

- ``binding``: every site holds 1.05 x demand / p (weight units), so the capacities bind and
  the MIP runs;
- ``loose``: every site holds the whole demand; the relaxation's answer fits.

Since issue 26 the capacitated models run :mod:`planner.models._single_source` (Lagrangian
knapsack bound, local search, reduced MIP): the "before" path's early-return switch no longer
applies (it only raises the presolve threshold now); ``--paths shipped`` gives the current
figures, recorded in ``benchmarks/README.md`` beside the old ones.

Command (under the shared CPU lock)::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_capacitated.py
"""

from __future__ import annotations

import argparse
import importlib
import math
import time

from bench_exact import malta_matrix

from planner.models import _mip, capacitated_p_median

fixed_charge = importlib.import_module("planner.models.fixed_charge")


def run(cost, w, p: int, capacity: float, limit: float, *, before: bool):
    shipped = _mip.FULL_PRESOLVE_MAX_COLS, fixed_charge.OPTIMALITY_GAP
    if before:
        _mip.FULL_PRESOLVE_MAX_COLS = math.inf
        fixed_charge.OPTIMALITY_GAP = -math.inf
    try:
        t0 = time.perf_counter()
        sol = capacitated_p_median(cost, p, capacity, w, time_limit=limit)
        return sol, time.perf_counter() - t0
    finally:
        _mip.FULL_PRESOLVE_MAX_COLS, fixed_charge.OPTIMALITY_GAP = shipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--limit", type=float, default=20.0)
    parser.add_argument("--p", type=int, default=8)
    parser.add_argument("--paths", nargs="+", choices=["shipped", "before"], default=None)
    args = parser.parse_args()
    print("| candidates | case | path | time s | over | status | objective | gap | solver |")
    print("|---|---|---|---|---|---|---|---|---|")
    for m in args.candidates:
        cost, w, _ = malta_matrix(m)
        demand = float(w.sum())
        cases = {"binding": 1.05 * demand / args.p, "loose": demand}
        for case, capacity in cases.items():
            for before in [path == "before" for path in args.paths or ["shipped", "before"]]:
                sol, t = run(cost, w, args.p, capacity, args.limit, before=before)
                print(
                    f"| {m:,} | {case} | {'before' if before else 'shipped'} | "
                    f"{t:.1f} | {t / args.limit:.2f} | {sol.status} | {sol.objective:,.1f} | "
                    f"{100 * sol.gap:.2f} % | {sol.solver} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
