"""p-median benchmark: planner.models.p_median against spopt's PMedian + PuLP/CBC.

Everything runs in one process on seeded instances, so the printed ratios compare like with
like on the same (noisy, shared) machine.

1. ``1,000 x 200``, p = 10 (weighted Euclidean): spopt ``PMedian.from_cost_matrix`` solved with
   CBC (the baseline) and ``p_median``; the objectives must agree (both optimal) and the speed
   ratio is printed.
2. ``10,000 x 1,000``, p = 20: time to the first answer and its gap to the final bound, time to
   a proven gap <= 0.5 % (``gap=0.005``), the best proven gap with a 60 s budget, peak memory.

Peak memory: ``tracemalloc`` peak of the planner solve (numpy reports its buffers to
tracemalloc); for spopt, the growth of this process's peak RSS plus the CBC child's peak RSS.

Usage::

    .venv/bin/python benchmarks/bench_pmedian.py            # full (spopt/CBC takes minutes)
    .venv/bin/python benchmarks/bench_pmedian.py --quick    # 300 x 60 and 3,000 x 300
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

import numpy as np

from planner.models import p_median


def euclidean_instance(
    n: int, m: int, *, seed: int, speed_mps: float = 13.9
) -> tuple[np.ndarray, np.ndarray]:
    """Customers and candidates uniform in a 50 km square; travel time = distance / speed."""
    rng = np.random.default_rng(seed)
    customers = rng.random((n, 2)) * 50_000.0
    sites = rng.random((m, 2)) * 50_000.0
    weights = rng.integers(1, 20, size=n).astype(np.float64)
    diff = customers[:, None, :] - sites[None, :, :]
    cost = np.sqrt((diff**2).sum(axis=2)) / speed_mps
    return cost, weights


def rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # kB on Linux


def run_planner(cost: np.ndarray, weights: np.ndarray, p: int, **kwargs: object):
    tracemalloc.start()
    t0 = time.perf_counter()
    sol = p_median(cost, p, weights, **kwargs)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return sol, elapsed, peak / 2**20


def run_spopt(cost: np.ndarray, weights: np.ndarray, p: int):
    import pulp
    from spopt.locate import PMedian

    rss_before = rss_mib()
    t0 = time.perf_counter()
    model = PMedian.from_cost_matrix(cost, weights, p_facilities=p)
    model = model.solve(pulp.PULP_CBC_CMD(msg=False))
    elapsed = time.perf_counter() - t0
    objective = float(pulp.value(model.problem.objective))
    open_sites = sorted(j for j, clients in enumerate(model.fac2cli) if len(clients) > 0)
    mem = (rss_mib() - rss_before) + rss_mib(resource.RUSAGE_CHILDREN)
    return objective, open_sites, elapsed, mem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (for a smoke run)")
    parser.add_argument("--skip-spopt", action="store_true", help="skip the CBC baseline")
    args = parser.parse_args(argv)
    n1, m1, p1 = (300, 60, 5) if args.quick else (1_000, 200, 10)
    n2, m2, p2 = (3_000, 300, 10) if args.quick else (10_000, 1_000, 20)
    rows: list[tuple[str, str, str]] = []

    # --- 1. against spopt / CBC -------------------------------------------------------
    cost, weights = euclidean_instance(n1, m1, seed=1)
    sol, t_planner, mem_planner = run_planner(cost, weights, p1)
    print(
        f"[{n1}x{m1} p={p1}] planner: {t_planner:.2f} s, objective {sol.objective:.6f}, "
        f"gap {sol.gap:.2e}, optimal={sol.optimal}, solver {sol.solver}",
        flush=True,
    )
    if not args.skip_spopt:
        obj_cbc, open_cbc, t_cbc, mem_cbc = run_spopt(cost, weights, p1)
        same = np.isclose(obj_cbc, sol.objective, rtol=1e-6)
        print(
            f"[{n1}x{m1} p={p1}] spopt+CBC: {t_cbc:.2f} s, objective {obj_cbc:.6f}, "
            f"same objective: {same}, same sites: {open_cbc == sol.open.tolist()}",
            flush=True,
        )
        rows.append(
            (
                f"{n1:,} x {m1:,}, p={p1}: spopt PMedian + CBC",
                f"{t_cbc:.1f} s",
                f"objective {obj_cbc:,.1f}; peak ~{mem_cbc:,.0f} MiB (RSS growth + CBC)",
            )
        )
        rows.append(
            (
                f"{n1:,} x {m1:,}, p={p1}: planner p_median",
                f"{t_planner:.2f} s (**{t_cbc / t_planner:.0f}x faster**)",
                f"objective {sol.objective:,.1f} ({'equal' if same else 'DIFFERENT'}), "
                f"proven optimal={sol.optimal}; peak {mem_planner:,.0f} MiB (tracemalloc)",
            )
        )
    else:
        rows.append(
            (
                f"{n1:,} x {m1:,}, p={p1}: planner p_median",
                f"{t_planner:.2f} s",
                f"objective {sol.objective:,.1f}, optimal={sol.optimal}; "
                f"peak {mem_planner:,.0f} MiB",
            )
        )

    # --- 2. large instance -------------------------------------------------------------
    cost, weights = euclidean_instance(n2, m2, seed=2)
    matrix_mib = cost.nbytes / 2**20
    sol, t_total, mem = run_planner(cost, weights, p2, gap=0.005, time_limit=60.0)
    print(
        f"[{n2}x{m2} p={p2}] gap<=0.5%: proven gap {sol.gap:.3%} after {t_total:.1f} s "
        f"(status {sol.status}); solver {sol.solver}",
        flush=True,
    )
    # the same instance with the full 60 s budget, aiming at optimality
    sol60, t60, mem60 = run_planner(cost, weights, p2, time_limit=60.0)
    print(
        f"[{n2}x{m2} p={p2}] 60 s budget: gap {sol60.gap:.3%} after {t60:.1f} s "
        f"(status {sol60.status}), objective {sol60.objective:.1f}",
        flush=True,
    )
    # the first answer (greedy + fast interchange) against the best bound of both runs
    best_bound = max(sol.lower_bound, sol60.lower_bound)
    first_t = sol.extras["first_solution_time_s"]
    first_obj = sol.extras["first_objective"]
    first_gap = (first_obj - best_bound) / first_obj
    print(f"[{n2}x{m2} p={p2}] first answer after {first_t:.2f} s, {first_gap:.3%} above the bound")
    rows.append(
        (
            f"{n2:,} x {m2:,}, p={p2}: first answer",
            f"{first_t:.1f} s",
            f"proven within {first_gap:.2%} (against the best lower bound)",
        )
    )
    rows.append(
        (
            f"{n2:,} x {m2:,}, p={p2}: proven gap <= 0.5 % (gap=0.005)",
            f"{t_total:.1f} s",
            f"gap {sol.gap:.2%} ({sol.status}); peak {mem:,.0f} MiB "
            f"(the cost matrix itself: {matrix_mib:,.0f} MiB)",
        )
    )
    rows.append(
        (
            f"{n2:,} x {m2:,}, p={p2}: best proven gap in 60 s",
            f"{t60:.1f} s",
            f"gap {sol60.gap:.2%} ({sol60.status}); peak {mem60:,.0f} MiB",
        )
    )
    print()
    print("| case | time | result |")
    print("|---|---|---|")
    for case, t, result in rows:
        print(f"| {case} | {t} | {result} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
