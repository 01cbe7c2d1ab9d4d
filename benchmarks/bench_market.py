"""Maximum capture (``planner.models.max_capture``) against a reference MILP in HiGHS.

Instances are built like those of Haase and Mueller (2014, EJOR 232): ``n`` customers and ``m``
candidate sites (50-800 x 25-100) uniform in a 10 x 10 square; customer ``i``'s utility of site
``j`` is ``exp(-beta * d_ij)`` (``d`` Euclidean); the outside option is the summed utility of
``c`` competitor sites (uniform in the square, ``c = max(2, m // 10)``) plus a no-purchase
utility ``exp(-beta * 2.5)``; weights are whole numbers 1..10; ``p`` sites open. Every instance
comes from its seed, so runs are comparable.

Reference: Haase's linear formulation (Haase 2009; the one Haase and Mueller 2014 found best),
``x_ij`` = probability that customer ``i`` chooses site ``j``, ``x_i0`` that it chooses the
outside option::

    max  sum_i w_i sum_j x_ij
    s.t. sum_j x_ij + x_i0 = 1                       (every i)
         x_ij <= (u_ij / o_i) x_i0                   (every i, j with u_ij > 0)
         x_ij <= u_ij / (u_ij + o_i) y_j              (every i, j)
         sum_j y_j = p,  y binary,  x >= 0

solved by HiGHS (``planner.models._mip.solve_mip``, one thread) in the same process, with a
time limit. The ratio is the reference's time over ``max_capture``'s (a lower bound on the true
ratio when the reference hits its limit, marked ``>``).

Command (under the shared CPU lock)::

    flock /tmp/cpu.lock env PYTHONPATH=. /work/venv/bin/python benchmarks/bench_market.py
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp

from planner.models import max_capture
from planner.models._mip import solve_mip


def make_instance(n: int, m: int, beta: float, seed: int):
    """(utility n x m, outside n, weights n) of one Haase-Mueller-like instance."""
    rng = np.random.default_rng(seed)
    side = 10.0
    customers = rng.uniform(0, side, size=(n, 2))
    sites = rng.uniform(0, side, size=(m, 2))
    competitors = rng.uniform(0, side, size=(max(2, m // 10), 2))
    d = np.linalg.norm(customers[:, None] - sites[None], axis=2)
    dc = np.linalg.norm(customers[:, None] - competitors[None], axis=2)
    utility = np.exp(-beta * d)
    outside = np.exp(-beta * dc).sum(axis=1) + np.exp(-beta * 2.5)
    weights = rng.integers(1, 11, size=n).astype(float)
    return utility, outside, weights


def add_processes_argument(parser: argparse.ArgumentParser) -> None:
    """``--processes``, shared by the market benchmarks (see :func:`use_processes`)."""
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="processes max_capture's tree is split among (sets PLANNER_SOLVER_PROCESSES)",
    )


def use_processes(args: argparse.Namespace) -> str:
    """Set ``PLANNER_SOLVER_PROCESSES`` from ``--processes``; returns the count in force."""
    if args.processes is not None:
        os.environ["PLANNER_SOLVER_PROCESSES"] = str(args.processes)
    return os.environ.get("PLANNER_SOLVER_PROCESSES", "1")


def reference_milp(u: np.ndarray, o: np.ndarray, w: np.ndarray, p: int, limit: float):
    """Haase's MILP in HiGHS; returns (objective, bound, status, seconds)."""
    n, m = u.shape
    # columns: y (m), x (n*m, row-major), x0 (n)
    nx = n * m
    xcol = m + np.arange(nx).reshape(n, m)
    x0col = m + nx + np.arange(n)
    rows, cols, vals = [], [], []
    lo, hi = [], []
    r = 0
    # sum_j x_ij + x_i0 = 1
    rows.append(np.repeat(np.arange(n), m + 1))
    cols.append(np.column_stack([xcol, x0col]).reshape(-1))
    vals.append(np.ones(n * (m + 1)))
    lo.append(np.ones(n))
    hi.append(np.ones(n))
    r += n
    # x_ij - (u_ij / o_i) x_i0 <= 0
    ii, jj = np.nonzero(u > 0)
    k = ii.size
    rid = r + np.arange(k)
    rows += [rid, rid]
    cols += [xcol[ii, jj], x0col[ii]]
    vals += [np.ones(k), -(u[ii, jj] / o[ii])]
    lo.append(np.full(k, -np.inf))
    hi.append(np.zeros(k))
    r += k
    # x_ij - u_ij / (u_ij + o_i) y_j <= 0
    rid = r + np.arange(k)
    rows += [rid, rid]
    cols += [xcol[ii, jj], jj]
    vals += [np.ones(k), -(u[ii, jj] / (u[ii, jj] + o[ii]))]
    lo.append(np.full(k, -np.inf))
    hi.append(np.zeros(k))
    r += k
    # sum y = p
    rows.append(np.full(m, r))
    cols.append(np.arange(m))
    vals.append(np.ones(m))
    lo.append(np.array([float(p)]))
    hi.append(np.array([float(p)]))
    r += 1
    ncol = m + nx + n
    a = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, ncol)
    )
    c = np.zeros(ncol)
    c[xcol.reshape(-1)] = np.repeat(w, m)
    col_upper = np.ones(ncol)
    col_upper[xcol[u <= 0]] = 0.0
    integer = np.zeros(ncol, dtype=bool)
    integer[:m] = True
    t0 = time.perf_counter()
    res = solve_mip(
        c,
        a,
        row_lower=np.concatenate(lo),
        row_upper=np.concatenate(hi),
        col_lower=np.zeros(ncol),
        col_upper=col_upper,
        integer=integer,
        time_limit=limit,
        maximize=True,
        mip_rel_gap=1e-6,
    )
    return res.objective, res.bound, res.status, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, nargs="+", default=[50, 100, 200, 400, 800])
    parser.add_argument("--candidates", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--p", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--beta", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    parser.add_argument("--limit", type=float, default=10.0, help="max_capture time limit, s")
    parser.add_argument(
        "--reference-limit", type=float, default=60.0, help="reference MILP limit, s (0: skip)"
    )
    parser.add_argument("--seed", type=int, default=1)
    add_processes_argument(parser)
    args = parser.parse_args()
    print(f"max_capture tree processes: {use_processes(args)}")
    print(
        "| n | m | beta | p | max_capture s | status | gap | nodes | captured | reference s | "
        "reference status | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    worst = 0.0
    unproven = 0
    for n in args.customers:
        for m in args.candidates:
            for beta in args.beta:
                seed = args.seed * 1_000_003 + n * 1009 + m * 17 + int(beta * 10)
                u, o, w = make_instance(n, m, beta, seed)
                for p in args.p:
                    t0 = time.perf_counter()
                    sol = max_capture(u, p, w, outside=o, time_limit=args.limit)
                    t = time.perf_counter() - t0
                    worst = max(worst, t)
                    unproven += not sol.optimal
                    ref = "-"
                    ref_status = "-"
                    ratio = "-"
                    if args.reference_limit > 0:
                        obj, ref_bound, status, t_ref = reference_milp(
                            u, o, w, p, args.reference_limit
                        )
                        ref = f"{t_ref:.2f}"
                        ref_status = status
                        if status == "optimal" and abs(obj - sol.objective) > 1e-5 * obj:
                            ref_status += f" (objective {obj:.6f} differs)"
                        elif status != "optimal":
                            ref_status += f", gap {100 * (ref_bound - obj) / max(obj, 1e-9):.1f} %"
                        ratio = (">" if status != "optimal" else "") + f"{t_ref / t:.1f}"
                    print(
                        f"| {n} | {m} | {beta:g} | {p} | {t:.2f} | {sol.status} | "
                        f"{100 * sol.gap:.2f} % | {sol.extras.get('nodes', 0)} | "
                        f"{sol.objective:.2f} | {ref} | "
                        f"{ref_status} | {ratio} |",
                        flush=True,
                    )
    print(f"\nslowest max_capture solve: {worst:.2f} s; not proven optimal: {unproven}")


if __name__ == "__main__":
    main()
