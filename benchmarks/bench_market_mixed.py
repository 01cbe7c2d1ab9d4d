"""Two-tier with partners under the market model: ``max_capture_mixed`` against a reference MILP.

Own workshops (new sites) and partner shops (they exist, and compete unless contracted) are
chosen together (:func:`planner.models.max_capture_mixed`, submodular cuts in a HiGHS master).
The instance is the engine's own: the Malta demo customers, the default own candidates (or
``--candidates N``), the island's OpenStreetMap partner shops and competitors, default decay,
built by :func:`planner.engine.prepare_scenario` and :func:`planner.engine.market.market_inputs`.

Reference, in the same process: Haase's (2009) linear MNL formulation with the partners added
(every partner always in the choice set, ``z_ik <= (u_ik / o_i) s_i`` and
``z_ik <= u_ik / (o_i + P_i) y_k`` for the contracted share), solved by HiGHS with the same
time limit and the same greedy warm start. Printed per p: our time, proven or gap, jobs won;
the reference's time, status and gap; the time ratio (reference / ours; ``>`` when the
reference stopped at its limit).

Command (under the shared CPU lock)::

    flock /tmp/cpu.lock env PYTHONPATH=. /work/venv/bin/python benchmarks/bench_market_mixed.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.sparse as sp

from planner.engine import ScenarioSpec, prepare_scenario
from planner.engine.market import market_inputs
from planner.models import max_capture_mixed
from planner.models._mip import solve_mip
from planner.models.market_mixed import mixed_capture


def instance(candidates: int | None):  # type: ignore[no-untyped-def]
    """(utility, outside, jobs, partner mask) of Malta two-tier with partners."""
    extra = {"n_candidates": candidates} if candidates else {}
    spec = ScenarioSpec(
        region="malta",
        layout="two-tier",
        two_tier_partners=True,
        objective="max_capture",
        **extra,  # type: ignore[arg-type]
    )
    sinst = prepare_scenario(spec, layouts=["two-tier"])
    cols = np.sort(np.concatenate([sinst.columns["own"], sinst.columns["partner"]]))
    inputs = market_inputs(sinst, cols, partners_compete=True)
    jobs = sinst.instance.demand_weight * spec.parameters.jobs_per_weight
    return inputs.utility, inputs.outside, jobs, inputs.closed_compete


def reference_milp(u, o, w, partners, *, p, start, limit):  # type: ignore[no-untyped-def]
    """Haase's MILP with partners in HiGHS; returns (objective, bound, status, seconds)."""
    n, m = u.shape
    c_all = o + u[:, partners].sum(axis=1)
    ii, jj = np.nonzero(u > 0)
    npair = ii.size
    s_col = m + np.arange(n)
    x_col = m + n + np.arange(npair)
    is_p = partners[jj]
    ratio = u[ii, jj] / o[ii]
    cap = np.where(is_p, u[ii, jj] / c_all[ii], u[ii, jj] / (u[ii, jj] + c_all[ii]))
    own = ~is_p
    rows = [np.arange(n), ii[own]]
    cols = [s_col, x_col[own]]
    vals = [c_all / o, np.ones(int(own.sum()))]
    lo, hi = [np.ones(n)], [np.ones(n)]
    r = n
    for coef_col, coef in ((s_col[ii], -ratio), (jj, -cap)):
        rid = r + np.arange(npair)
        rows += [rid, rid]
        cols += [x_col, coef_col]
        vals += [np.ones(npair), coef]
        lo.append(np.full(npair, -np.inf))
        hi.append(np.zeros(npair))
        r += npair
    rows.append(np.full(m, r))
    cols.append(np.arange(m))
    vals.append(np.ones(m))
    lo.append(np.array([float(p)]))
    hi.append(np.array([float(p)]))
    r += 1
    ncol = m + n + npair
    a = sp.csc_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, ncol)
    )
    c = np.zeros(ncol)
    c[x_col] = w[ii]
    upper = np.ones(ncol)
    upper[s_col] = o / c_all
    x0 = np.zeros(ncol)
    x0[start] = 1.0
    a_open = u[:, start[~partners[start]]].sum(axis=1)
    denom = c_all + a_open
    x0[s_col] = o / denom
    opened = np.zeros(m, dtype=bool)
    opened[start] = True
    x0[x_col] = np.where(opened[jj], u[ii, jj] / denom[ii], 0.0)
    t0 = time.perf_counter()
    res = solve_mip(
        c,
        a,
        row_lower=np.concatenate(lo),
        row_upper=np.concatenate(hi),
        col_lower=np.zeros(ncol),
        col_upper=upper,
        integer=np.arange(ncol) < m,
        time_limit=limit,
        start=x0,
        maximize=True,
        mip_rel_gap=1e-7,
    )
    return res.objective, res.bound, res.status, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--candidates", type=int, default=0, help="own candidates (0: default)")
    parser.add_argument("--p", type=int, nargs="+", default=list(range(3, 11)))
    parser.add_argument("--limit", type=float, default=30.0)
    parser.add_argument("--reference-limit", type=float, default=60.0, help="0: skip it")
    args = parser.parse_args()
    u, o, w, partners = instance(args.candidates or None)
    print(
        f"{u.shape[0]:,} demand points x {int((~partners).sum())} own candidates + "
        f"{int(partners.sum())} partner shops; {w.sum():,.0f} jobs a year"
    )
    print(
        "| p | ours s | proven / gap | jobs won | partners | reference s "
        "| ref. status, gap | ratio |"
    )
    print("|---|---:|---|---:|---:|---:|---|---:|")
    for p in args.p:
        t0 = time.perf_counter()
        sol = max_capture_mixed(u, p, w, outside=o, partners=partners, time_limit=args.limit)
        ours = time.perf_counter() - t0
        proven = "proven" if sol.optimal else f"{100 * sol.gap:.2f} %"
        ref = "skipped"
        ref_t = ratio = ""
        if args.reference_limit > 0:
            obj, bound, status, ref_s = reference_milp(
                u, o, w, partners, p=p, start=sol.open, limit=args.reference_limit
            )
            gap = (bound - obj) / obj if np.isfinite(obj) and obj > 0 else np.inf
            assert obj <= mixed_capture(u, w, o, partners, sol.open).sum() * (1 + 1e-6) or (
                not sol.optimal
            ), "the reference found a better plan than a proven optimum"
            ref = f"{status}, {100 * gap:.2f} %"
            ref_t = f"{ref_s:.1f}"
            ratio = f"{'>' if status != 'optimal' else ''}{ref_s / ours:.1f}"
        print(
            f"| {p} | {ours:.1f} | {proven} | {sol.objective:,.1f} | "
            f"{sol.extras['partners_open']} | {ref_t} | {ref} | {ratio} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
