"""Single-source capacitated and sized location: proven optima, first answers, gaps.

Three parts, each printing a Markdown table:

``literature``
    Single-source capacitated facility location instances generated like Holmberg, Ronnqvist
    and Yuan (1999), the usual test set of the SSCFLP: customers and candidates uniform in
    [10, 200]^2, demands U[10, 50], capacities U[10, 160] scaled so that total capacity is
    ``ratio`` x total demand (3, 5, 10), fixed costs U[0, 90] + U[100, 110] x sqrt(capacity),
    and the cost of serving a customer's whole demand = demand x distance. 10-30 candidates x
    50-200 customers. Each is solved by ``planner.models.fixed_charge(capacity=...)`` and, in
    the same process, by HiGHS on the textbook MILP (``x_ij <= y_j`` included); "ratio" is our
    time / HiGHS's time (both to proven optimality, 10 s limit each).
``liechtenstein``
    The capacitated fixed-charge layout of the Liechtenstein demo customers x 12 candidates
    (the case that ended its 30 s at an 87 % gap): time to the first answer and the proven gap
    after 30 s.
``malta``
    Malta demo customers x 500 candidates with three workshop sizes (2, 4, 6 technicians) whose
    capacities bind: gap after 60 s, and whether the time limit was kept.

Command (under the shared CPU lock)::

    flock /tmp/cpu.lock env PYTHONPATH=. /work/venv/bin/python benchmarks/bench_sized.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from planner.models import fixed_charge, sized_fixed_charge
from planner.models._mip import solve_mip
from planner.results.costs import CostParameters


def holmberg_instance(
    n: int, m: int, ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(distance n x m, demand, fixed cost, capacity) of a Holmberg-style instance."""
    rng = np.random.default_rng(seed)
    xy_c = rng.uniform(10, 200, size=(n, 2))
    xy_s = rng.uniform(10, 200, size=(m, 2))
    dist = np.hypot(*(xy_c[:, None, :] - xy_s[None, :, :]).transpose(2, 0, 1))
    demand = rng.integers(10, 51, size=n).astype(float)
    cap = rng.uniform(10, 160, size=m)
    cap = np.round(cap * ratio * demand.sum() / cap.sum())
    fixed = rng.uniform(0, 90, size=m) + rng.uniform(100, 110, size=m) * np.sqrt(cap)
    return dist, demand, np.round(fixed), cap


def reference_milp(
    c: np.ndarray, w: np.ndarray, fixed: np.ndarray, cap: np.ndarray, limit: float
) -> tuple[float, float, str, float]:
    """HiGHS on the textbook single-source MILP: (objective, bound, status, seconds)."""
    n, m = c.shape
    k = n * m
    pi = np.repeat(np.arange(n), m)
    pj = np.tile(np.arange(m), n)
    xcol = m + np.arange(k)
    rows = [pi, n + pj, n + np.arange(m), n + m + np.arange(k), n + m + np.arange(k)]
    cols = [xcol, xcol, np.arange(m), xcol, pj]
    vals = [np.ones(k), w[pi], -cap, np.ones(k), -np.ones(k)]
    a = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n + m + k, m + k),
    )
    t0 = time.perf_counter()
    res = solve_mip(
        np.concatenate([fixed, c.reshape(-1)]),
        a,
        row_lower=np.concatenate([np.ones(n), np.full(m + k, -np.inf)]),
        row_upper=np.concatenate([np.ones(n), np.zeros(m + k)]),
        col_lower=np.zeros(m + k),
        col_upper=np.ones(m + k),
        integer=np.ones(m + k, dtype=bool),
        time_limit=limit,
    )
    return res.objective, res.bound, res.status, time.perf_counter() - t0


def literature(limit: float) -> None:
    print(
        "| customers x candidates | capacity ratio | seed | ours s | status | gap | first "
        "answer s | HiGHS MILP s | HiGHS status | objective equal | ours / HiGHS |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, m in [(50, 10), (100, 20), (150, 30), (200, 30)]:
        for ratio in (3.0, 5.0, 10.0):
            for seed in range(2):
                dist, w, fixed, cap = holmberg_instance(n, m, ratio, seed)
                t0 = time.perf_counter()
                sol = fixed_charge(dist, fixed, w, capacity=cap, time_limit=limit)
                ours = time.perf_counter() - t0
                obj, _bound, status, theirs = reference_milp(
                    dist * w[:, None], w, fixed, cap, limit
                )
                same = abs(obj - sol.objective) <= 1e-6 * abs(obj) if status == "optimal" else "-"
                print(
                    f"| {n} x {m} | {ratio:g} | {seed} | {ours:.2f} | {sol.status} | "
                    f"{100 * sol.gap:.3f} % | {sol.extras.get('first_answer_s', 0):.2f} | "
                    f"{theirs:.2f} | {status} | {same} | {ours / theirs:.2f} |",
                    flush=True,
                )


def liechtenstein_matrix() -> tuple[np.ndarray, np.ndarray]:
    """(cost demand points x 12 own candidates, jobs) of the Liechtenstein demo, as the engine
    prepares it for ``planner run`` with ``n_candidates = 12`` (cached)."""
    from bench_exact import CACHE

    from planner.engine import ScenarioSpec
    from planner.engine.instance import prepare_scenario

    path = CACHE / "liechtenstein_12.npz"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        spec = ScenarioSpec(region="liechtenstein", workshops=None, n_candidates=12)
        sinst = prepare_scenario(spec, layouts=["in-house"])
        cols = sinst.columns["own"]
        np.savez(path, cost=sinst.instance.cost_s[:, cols], w=sinst.instance.demand_weight)
    data = np.load(path)
    return data["cost"], data["w"]


def liechtenstein(limit: float) -> None:
    cost, jobs = liechtenstein_matrix()
    params = CostParameters(customer_time_eur_per_hour=60.0)
    tv = params.customer_time_eur_per_hour * 2 / 3600  # round trips, EUR per job-second
    print(
        "| case | first answer s | objective EUR | lower bound | gap | time s | status | "
        "HiGHS MILP: objective, gap, s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    capacity = params.workshop_capacity_jobs
    fixed = params.workshop_fixed_cost_eur()
    t0 = time.perf_counter()
    sol = fixed_charge(cost, fixed, jobs, time_value=tv, capacity=capacity, time_limit=limit)
    took = time.perf_counter() - t0
    m = cost.shape[1]
    obj, bound, status, theirs = reference_milp(
        tv * cost * jobs[:, None], jobs, np.full(m, fixed), np.full(m, capacity), limit
    )
    ref_gap = (obj - bound) / obj if np.isfinite(obj) else float("inf")
    print(
        f"| {cost.shape[0]:,} demand points x {m}, {fixed:,.0f} EUR and {capacity:,.0f} jobs "
        f"per workshop | {sol.extras.get('first_answer_s', 0):.2f} | {sol.objective:,.0f} | "
        f"{sol.lower_bound:,.0f} | {100 * sol.gap:.3f} % | {took:.1f} | {sol.status} | "
        f"{obj:,.0f}, {100 * ref_gap:.1f} %, {theirs:.1f} ({status}) |",
        flush=True,
    )


def malta(limit: float) -> None:
    from bench_exact import malta_matrix

    cost, w, _ = malta_matrix(500)
    demand = float(w.sum())
    params = CostParameters(customer_time_eur_per_hour=60.0)
    tv = params.customer_time_eur_per_hour * 2 / 3600
    # three sizes, 2, 4 and 6 technicians, costed like the engine's workshop (rent, salaries,
    # receptionist, parts store); a technician's capacity such that 6 large workshops hold
    # 1.1 x the demand, so the capacities bind
    techs = np.array([2.0, 4.0, 6.0])
    per_tech = 1.1 * demand / 36
    cap = techs * per_tech
    fixed = (
        params.workshop_rent_eur
        + techs * params.technician_salary_eur
        + params.receptionist_eur
        + params.workshop_parts_store_eur
    )
    m = cost.shape[1]
    print(
        "| case | first answer s | objective EUR | sites | sites per size | lower bound | gap | "
        "time s | limit kept |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    t0 = time.perf_counter()
    sol = sized_fixed_charge(
        cost, np.tile(fixed, (m, 1)), np.tile(cap, (m, 1)), w, time_value=tv, time_limit=limit
    )
    took = time.perf_counter() - t0
    sizes = np.bincount(list(sol.extras["size"].values()), minlength=3)
    print(
        f"| Malta demo {cost.shape[0]:,} x {m}, sizes 2/4/6 technicians | "
        f"{sol.extras.get('first_answer_s', 0):.2f} | {sol.objective:,.0f} | {sol.open.size} | "
        f"{sizes.tolist()} | {sol.lower_bound:,.0f} | {100 * sol.gap:.3f} % | {took:.1f} | "
        f"{took <= limit * 1.05} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "parts", nargs="*", default=["literature", "liechtenstein", "malta"], help="parts to run"
    )
    args = parser.parse_args()
    if "literature" in args.parts:
        literature(10.0)
    if "liechtenstein" in args.parts:
        liechtenstein(30.0)
    if "malta" in args.parts:
        malta(60.0)


if __name__ == "__main__":
    main()
