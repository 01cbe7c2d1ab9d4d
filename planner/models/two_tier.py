"""Two-tier network: one central office and the workshops, chosen together.

Objective (money per year, every multiplier explicit)::

    time_value * sum_i weights[i] * cost[i, workshop(i)]          customers -> workshops
  + time_value * sum_i office_weights[i] * office_cost[i, office]  customers -> office (direct)
  + link_value * sum_{j open} deliveries[j] * office_link[office, j]  parts deliveries
  + sum_{j open} fixed_cost_workshop[j] + fixed_cost_office[office]

Units: ``cost``, ``office_cost`` and ``office_link`` in seconds; ``weights`` and
``office_weights`` in trips per year; ``deliveries`` in deliveries per year per workshop;
``time_value`` and ``link_value`` in money per second; fixed costs in money per year. With the
defaults (values 1, no fixed costs, no direct office customers) the objective is in weighted
seconds.

Exact approach: ONE model, office and workshops chosen jointly, solved by enumerating the
office with bound-based pruning. For a given office the link term is a fixed cost per workshop
candidate and the rest is a p-median (``p`` given) or a fixed-charge problem (``p=None``), solved
by the common median solve path (Benders decomposition on large instances). Before the
enumeration every office gets a lower bound: the largest of

* the LP bound of the problem without link terms, plus the cheapest link terms of any allowed
  workshop set, plus the office's direct-travel and fixed costs;
* the LP bound of its own problem, computed for all offices on ONE Benders master (the cuts depend
  on the customer costs only, so each office resumes the cut loop with the cuts of the others;
  up to 30 % of the time limit).

With capacities (single sourcing) each office's problem is the capacitated model of
:mod:`planner.models._single_source`; the a-priori bounds above (without capacities) stay valid
lower bounds and prune offices the same way.

Offices are solved in increasing bound; an office whose bound is not below the best objective
found is pruned without a solve, and an office solve stops as soon as its bound reaches the best
objective (status ``"pruned"``). The reported lower bound is the minimum over offices of their
proven bounds (solved or a priori), so a solve stopped early still reports an honest gap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from planner.errors import InfeasibleError, InputError
from planner.models._base import (
    OPTIMALITY_GAP,
    ProgressCallback,
    ProgressReporter,
    Solution,
    StopCallback,
    assign_nearest,
    check_cost,
    check_index_set,
    check_p,
    check_required_excluded,
    check_time_limit,
    check_weights,
    format_ids,
    make_solution,
    relative_gap,
    unreachable_rows,
)
from planner.models._benders import lp_bounds
from planner.models._local_search import evaluate, local_search, penalize_inf
from planner.models._median import LAGRANGIAN_FIRST_PAIRS, solve_median
from planner.models._single_source import solve_single_source

logger = logging.getLogger(__name__)


def _vector(value: object, size: int, *, name: str, what: str) -> np.ndarray:
    arr = np.asarray(0.0 if value is None else value, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(size, float(arr))
    arr = arr.reshape(-1)
    if arr.size != size:
        raise InputError(f"{name} has {arr.size} entries but there are {size} {what}")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise InputError(f"{name} must be finite and >= 0")
    return arr


def two_tier(
    cost: np.ndarray,
    office_link: np.ndarray,
    p: int | None,
    weights: np.ndarray | None = None,
    *,
    office_cost: np.ndarray | None = None,
    office_weights: np.ndarray | None = None,
    deliveries: np.ndarray | float = 1.0,
    time_value: float = 1.0,
    link_value: float = 1.0,
    fixed_cost_workshop: np.ndarray | float | None = None,
    fixed_cost_office: np.ndarray | float | None = None,
    required: Iterable[int] | np.ndarray | None = None,
    excluded: Iterable[int] | np.ndarray | None = None,
    required_office: int | None = None,
    excluded_offices: Iterable[int] | np.ndarray | None = None,
    capacity: np.ndarray | float | None = None,
    size_fixed_cost: np.ndarray | None = None,
    size_capacity: np.ndarray | None = None,
    time_limit: float | None = None,
    seed: int | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Choose one office among ``k`` candidates and the workshops; see the module docstring.

    Parameters
    ----------
    cost
        Customer -> workshop candidate travel times (n x m, seconds; inf = unreachable).
    office_link
        Office candidate -> workshop candidate travel times (k x m, seconds; inf = the workshop
        cannot be supplied from that office).
    p
        Number of workshops, or None to let the costs decide (fixed-charge).
    weights
        Customer trips per year to their workshop (default 1 each).
    office_cost
        Customer -> office candidate travel times (n x k, seconds); needed when
        ``office_weights`` has a positive entry.
    office_weights
        Customer trips per year to the office directly (default 0).
    deliveries
        Parts deliveries per year from the office to each open workshop (scalar or per
        workshop candidate).
    time_value
        Money per weighted second of customer travel.
    link_value
        Money per second of one office -> workshop delivery.
    fixed_cost_workshop, fixed_cost_office
        Annual fixed costs (scalar or per candidate); default 0.
    required, excluded
        Workshop columns that must / must not open.
    required_office
        Office row that must be chosen (e.g. the existing office), or None.
    excluded_offices
        Office rows that may not be chosen.
    capacity
        Weight each workshop candidate can serve (scalar or per candidate), or None. With
        capacities each customer goes to one workshop within its capacity (single sourcing)
        and each office's problem is the single-source capacitated model
        (:mod:`planner.models._single_source`: Lagrangian knapsack bound, local search,
        reduced MIP), in the same office enumeration and pruning.
    time_limit
        Seconds for the whole solve (default 60), shared among the office candidates.
    seed
        Accepted for interface symmetry; the solve is deterministic.
    progress
        Called with a :class:`~planner.models.SolveProgress` (best objective, proven bound,
        gap) as the solve advances.
    should_stop
        Polled during the solve; True stops it with the best answer so far, its proven gap and
        status ``"stopped"``.

    Returns
    -------
    Solution
        ``open`` and ``assignment`` refer to workshops; ``extras["office"]`` is the chosen
        office row; ``extras`` also has the cost terms (``customer_travel_cost``,
        ``office_travel_cost``, ``link_cost``, ``fixed_cost_workshops``, ``fixed_cost_office``)
        and ``offices`` (objective, lower bound and status per office candidate; status
        ``"pruned"`` when its a-priori bound showed it cannot beat the answer).
    """
    t0 = time.perf_counter()
    cost = check_cost(cost)
    n, m = cost.shape
    link = check_cost(office_link, name="office_link")
    if link.shape[1] != m:
        raise InputError(f"office_link has {link.shape[1]} workshop columns but cost has {m}")
    k = link.shape[0]
    w = check_weights(weights, n)
    ow = np.zeros(n) if office_weights is None else check_weights(office_weights, n)
    if office_cost is None:
        if (ow > 0).any():
            raise InputError("office_weights needs office_cost (customers x office candidates)")
        oc = np.zeros((n, k))
    else:
        oc = check_cost(office_cost, name="office_cost")
        if oc.shape != (n, k):
            raise InputError(f"office_cost must have shape {(n, k)}, got {oc.shape}")
    req, exc = check_required_excluded(required, excluded, m)
    if p is not None:
        p = check_p(p, m, req, exc)
    limit = check_time_limit(time_limit)
    tv = float(time_value)
    lv = float(link_value)
    if not (np.isfinite(tv) and tv >= 0 and np.isfinite(lv) and lv >= 0):
        raise InputError("time_value and link_value must be finite and >= 0")
    dl = _vector(deliveries, m, name="deliveries", what="workshop candidates")
    f_of = _vector(fixed_cost_office, k, name="fixed_cost_office", what="office candidates")
    sizes: tuple[np.ndarray, np.ndarray] | None = None
    if size_fixed_cost is not None or size_capacity is not None:
        if fixed_cost_workshop is not None or capacity is not None:
            raise InputError(
                "with sizes, each size's fixed cost and capacity replace fixed_cost_workshop "
                "and capacity; give one or the other"
            )
        sizes = _size_tables(size_fixed_cost, size_capacity, m)
        # the cheapest allowed size bounds each workshop's fixed cost from below (what the
        # a-priori office bounds use); a candidate with no allowed size cannot open
        no_size = ~np.isfinite(sizes[0]).any(axis=1)
        if np.isin(req, np.flatnonzero(no_size)).any():
            bad = req[no_size[req]]
            raise InfeasibleError(
                f"required workshop candidates {format_ids(bad)} allow no size; allow one "
                "or do not require them"
            )
        exc = np.union1d(exc, np.flatnonzero(no_size)).astype(exc.dtype)
        f_ws = np.where(no_size, 0.0, sizes[0].min(axis=1))
        cap: np.ndarray | None = sizes[1]
    else:
        f_ws = _vector(
            fixed_cost_workshop, m, name="fixed_cost_workshop", what="workshop candidates"
        )
        cap = None if capacity is None else _vector(capacity, m, name="capacity", what="workshops")
    exc_o = check_index_set(excluded_offices, k, name="excluded_offices")
    offices = np.setdiff1d(np.arange(k), exc_o)
    if required_office is not None:
        ro = int(required_office)
        if not 0 <= ro < k:
            raise InputError(f"required_office must be in 0..{k - 1}, got {required_office!r}")
        if ro in exc_o:
            raise InfeasibleError(f"office {ro} is both required and excluded")
        offices = np.array([ro])
    if offices.size == 0:
        raise InfeasibleError(f"all {k} office candidates are excluded")
    far = unreachable_rows(cost, exc)
    far = far[w[far] > 0]
    if far.size:
        raise InfeasibleError(
            f"{far.size} customers cannot reach any workshop candidate: rows {format_ids(far)}"
        )
    rows = np.flatnonzero(w > 0)
    a = cost[rows] * (tv * w[rows])[:, None]
    a[~np.isfinite(cost[rows])] = np.inf

    stop = should_stop or (lambda: False)
    reporter = ProgressReporter(progress, t0)
    reasons: list[str] = []
    results: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    plans: list[dict[str, Any]] = []
    for o in offices:
        reason = _office_problem(o, link=link, oc=oc, ow=ow, cost=cost, w=w, req=req, exc=exc, p=p)
        if reason:
            reasons.append(reason)
            results.append({"office": int(o), "status": "infeasible", "reason": reason})
            continue
        const = float(f_of[o] + tv * (ow[ow > 0] * oc[ow > 0, o]).sum())
        link_part = lv * dl * np.where(np.isfinite(link[o]), link[o], 0.0)
        exc_o_ws = np.union1d(exc, np.flatnonzero(~np.isfinite(link[o])))
        plans.append(
            {
                "office": int(o),
                "const": const,
                "link_part": link_part,
                "excluded": exc_o_ws,
                "bound": const + _cheapest_links(link_part, exc_o_ws, req, p),
            }
        )
    if rows.size and plans and not stop() and cap is None:
        # a first answer at once (before the LP bounds, which take up to 30 % of the time
        # limit), so progress shows a best value and a gap from the start and a stop has an
        # answer to keep; the office solves below only have to beat it
        best = _first_answer(a, f_ws, plans, p=p, required=req, deadline=t0 + 0.05 * limit)
        if best is not None:
            reporter(
                "First answer (heuristic)",
                objective=best["objective"],
                bound=min(plan["bound"] for plan in plans),
            )
    # LP bounds of every office's problem from ONE Benders master (the cuts depend on the
    # customer costs only): offices whose bound is not below the best answer are never solved
    # (on small instances the offices' own solves, stopped by the Lagrangian bound at the best
    # answer so far, are cheaper than the LP bounds: Malta demo x 60 candidates, 13 offices,
    # 8 s of LP bounds against 0.1 s per office solve)
    small = int(np.isfinite(a).sum()) <= LAGRANGIAN_FIRST_PAIRS
    if len(plans) > 1 and rows.size and not stop() and not small:
        # first the problem without link terms (its bound plus the cheapest links bounds every
        # office, should the time run out before an office's own LP bound)
        bounds = lp_bounds(
            a,
            np.stack([f_ws] + [f_ws + plan["link_part"] for plan in plans]),
            p=p,
            required=req,
            excluded=[exc] + [plan["excluded"] for plan in plans],
            deadline=t0 + 0.3 * limit,
            should_stop=stop,
        )
        base = bounds[0] if np.isfinite(bounds[0]) else 0.0
        for plan, bound in zip(plans, bounds[1:], strict=True):
            plan["bound"] = max(plan["bound"] + base, plan["const"] + bound)
    plans.sort(key=lambda plan: plan["bound"])

    def global_bound(done: int) -> float:
        proven = [r["lower_bound"] for r in results if "lower_bound" in r]
        pending = [plan["bound"] for plan in plans[done:]]
        return min(proven + pending) if proven or pending else -np.inf

    stopped = False
    for idx, plan in enumerate(plans):
        o = plan["office"]
        const = plan["const"]
        fixed = f_ws + plan["link_part"]
        exc_o_ws = plan["excluded"]
        if best is not None and plan["bound"] >= best["objective"] - 1e-9 * abs(best["objective"]):
            results.append(
                {
                    "office": o,
                    "lower_bound": plan["bound"],
                    "status": "pruned",
                }
            )
            continue
        if best is not None and (stop() or time.perf_counter() - t0 >= limit):
            stopped = True
            results.extend(
                {"office": q["office"], "lower_bound": q["bound"], "status": "not solved"}
                for q in plans[idx:]
            )
            break
        remaining = limit - (time.perf_counter() - t0)
        share = max(remaining / (len(plans) - idx), 0.05)
        if rows.size == 0:
            if req.size:
                open_ws = req
            else:
                cheapest = np.where(np.isin(np.arange(m), exc_o_ws), np.inf, fixed)
                open_ws = np.array([int(np.argmin(cheapest))])
            if p is not None and open_ws.size < p:
                free = np.setdiff1d(np.setdiff1d(np.arange(m), exc_o_ws), open_ws)
                free = free[np.argsort(fixed[free], kind="stable")][: p - open_ws.size]
                open_ws = np.sort(np.concatenate([open_ws, free]))
            obj = float(fixed[open_ws].sum())
            res: dict[str, Any] = {
                "open": open_ws,
                # no demand: each open workshop in its cheapest allowed size
                **(
                    {}
                    if sizes is None
                    else {"size": np.where(np.isin(np.arange(m), open_ws), _cheapest(sizes), -1)}
                ),
                "objective": obj,
                "lower_bound": obj,
                "status": "optimal",
                "solver": "trivial (no demand)",
                "optimal": True,
            }
        elif cap is not None:
            try:
                res = _capacitated_office(
                    a,
                    w[rows],
                    fixed if sizes is None else sizes[0] + plan["link_part"][:, None],
                    cap,
                    p=p,
                    req=req,
                    exc=exc_o_ws,
                    limit=share,
                    stop=stop,
                )
            except InfeasibleError as err:
                reasons.append(f"office {o}: {err}")
                results.append({"office": int(o), "status": "infeasible", "reason": str(err)})
                continue
        else:
            try:
                r = solve_median(
                    a,
                    fixed,
                    p=p,
                    required=req,
                    excluded=exc_o_ws,
                    time_limit=share,
                    should_stop=stop,
                    cutoff=np.inf if best is None else best["objective"] - const,
                )
            except InfeasibleError as err:
                reasons.append(f"office {o}: {err}")
                results.append({"office": int(o), "status": "infeasible", "reason": str(err)})
                continue
            res = {
                "open": r.open,
                "objective": r.objective,
                "lower_bound": r.lower_bound,
                # stopped once its bound showed it cannot beat the best office
                "status": "pruned" if r.status == "cutoff" else r.status,
                "solver": r.solver,
                "optimal": r.optimal,
            }
        res["objective"] += const
        res["lower_bound"] = max(res["lower_bound"] + const, min(plan["bound"], res["objective"]))
        results.append(
            {
                "office": int(o),
                "objective": res["objective"],
                "lower_bound": res["lower_bound"],
                "status": res["status"],
            }
        )
        if best is None or res["objective"] < best["objective"]:
            best = {**res, "office": int(o)}
        if best is not None:
            reporter(
                f"Office {idx + 1} of {len(plans)} solved",
                objective=best["objective"],
                bound=global_bound(idx + 1),
            )
    if best is None:
        raise InfeasibleError("no office candidate works: " + "; ".join(reasons))
    lower_bound = min(r["lower_bound"] for r in results if "lower_bound" in r)
    o = best["office"]
    open_ws = best["open"]
    assignment = assign_nearest(cost, open_ws)
    cap_extras: dict[str, Any] = {}
    fixed_ws = float(f_ws[open_ws].sum())
    if sizes is not None:
        size_of = np.asarray(best["size"])
        cap_ws = sizes[1][open_ws, size_of[open_ws]]
        fixed_ws = float(sizes[0][open_ws, size_of[open_ws]].sum())
        cap_extras["size"] = {int(j): int(size_of[j]) for j in open_ws}
    elif cap is not None:
        cap_ws = cap[open_ws]
    if "assign" in best and cap is not None:  # single sourcing within the capacities
        assignment[rows] = best["assign"]
        used = assignment >= 0
        load = np.bincount(assignment[used], weights=w[used], minlength=m)
        cap_extras["load"] = {int(j): float(load[j]) for j in open_ws}
        cap_extras["capacity"] = {int(j): float(q) for j, q in zip(open_ws, cap_ws, strict=True)}
    served = assignment >= 0
    customer_travel = float(tv * (w[served] * cost[served, assignment[served]]).sum())
    office_travel = float(tv * (ow[ow > 0] * oc[ow > 0, o]).sum())
    link_cost = float(lv * (dl[open_ws] * link[o, open_ws]).sum())
    all_optimal = all(r.get("status") in ("optimal", "infeasible", "pruned") for r in results)
    gap = relative_gap(best["objective"], lower_bound)
    if all_optimal or gap <= OPTIMALITY_GAP:
        status = "optimal"
    else:
        status = "stopped" if stopped or stop() else "time_limit"
    return make_solution(
        "two_tier",
        open_sites=open_ws,
        assignment=assignment,
        objective=best["objective"],
        lower_bound=lower_bound,
        status=status,
        solver=best["solver"],
        started=t0,
        extras={
            "office": o,
            "customer_travel_cost": customer_travel,
            "office_travel_cost": office_travel,
            "link_cost": link_cost,
            "fixed_cost_workshops": fixed_ws,
            "fixed_cost_office": float(f_of[o]),
            "offices": results,
            **cap_extras,
        },
    )


def _capacitated_office(
    a: np.ndarray,
    w: np.ndarray,
    fixed: np.ndarray,
    cap: np.ndarray,
    *,
    p: int | None,
    req: np.ndarray,
    exc: np.ndarray,
    limit: float,
    stop: StopCallback,
) -> dict[str, Any]:
    """One office's workshops with capacities: the single-source model on the customers
    with demand (``a`` = their weighted costs, ``fixed`` with the office's link terms)."""
    t0 = time.perf_counter()
    c = a.copy()
    c[:, exc] = np.inf
    f2 = (fixed[:, None] if fixed.ndim == 1 else fixed).astype(float)
    f2[exc] = np.inf
    r = solve_single_source(
        c,
        w,
        f2,
        cap[:, None] if cap.ndim == 1 else cap,
        p=p,
        required=req,
        time_limit=limit,
        started=t0,
        report=ProgressReporter(None, t0),
        should_stop=stop,
    )
    open_ws = np.flatnonzero(r.size >= 0)
    return {
        "open": open_ws,
        "size": r.size,
        "assign": r.assign,
        "objective": r.objective,
        "lower_bound": r.lower_bound,
        "status": r.status,
        "solver": r.solver,
        "optimal": r.status == "optimal",
    }


def _size_tables(
    fixed: np.ndarray | None, capacity: np.ndarray | None, m: int
) -> tuple[np.ndarray, np.ndarray]:
    """Checked (m x S) size tables: fixed costs (>= 0, inf = not allowed), capacities."""
    if fixed is None or capacity is None:
        raise InputError("size_fixed_cost and size_capacity are given together")
    sf = np.array(fixed, dtype=np.float64, ndmin=2)
    sq = np.array(capacity, dtype=np.float64, ndmin=2)
    if sf.shape != sq.shape or sf.shape[0] != m or sf.shape[1] < 1:
        raise InputError(
            f"size_fixed_cost and size_capacity must both be (workshop candidates x sizes) = "
            f"({m} x S), got {sf.shape} and {sq.shape}"
        )
    if np.isnan(sf).any() or (sf < 0).any():
        raise InputError("size_fixed_cost must be >= 0 (np.inf where a size is not allowed)")
    if not np.isfinite(sq).all() or (sq < 0).any():
        raise InputError("size_capacity must be finite and >= 0")
    return sf, sq


def _cheapest(sizes: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each candidate's cheapest allowed size (index)."""
    return np.argmin(sizes[0], axis=1).astype(np.intp)


def _first_answer(
    a: np.ndarray,
    f_ws: np.ndarray,
    plans: list[dict[str, Any]],
    *,
    p: int | None,
    required: np.ndarray,
    deadline: float,
) -> dict[str, Any] | None:
    """A quick answer: the heuristic workshops without link terms, the office for which they
    cost least, then a local search with that office's link terms (None if none fits)."""
    pen, _ = penalize_inf(a)
    allowed = np.ones(a.shape[1], dtype=bool)
    allowed[np.unique(np.concatenate([plan["excluded"] for plan in plans]))] = False
    if p is not None and int(allowed.sum()) < p:
        return None
    start, _ = local_search(pen, f_ws, p=p, required=required, allowed=allowed, deadline=deadline)
    travel = evaluate(a, np.zeros_like(f_ws), start)
    if not np.isfinite(travel):
        return None
    plan = min(
        plans,
        key=lambda q: q["const"] + float((f_ws + q["link_part"])[start].sum()),
    )
    fixed = f_ws + plan["link_part"]
    allowed = np.ones(a.shape[1], dtype=bool)
    allowed[plan["excluded"]] = False
    open_ws, _ = local_search(
        pen, fixed, p=p, required=required, allowed=allowed, deadline=deadline, start=start
    )
    objective = evaluate(a, fixed, open_ws)
    if not np.isfinite(objective):
        return None
    return {
        "open": open_ws,
        "objective": objective + plan["const"],
        "lower_bound": -np.inf,
        "status": "heuristic",
        "solver": "greedy + interchange (two-tier first answer)",
        "optimal": False,
        "office": plan["office"],
    }


def _cheapest_links(
    link_part: np.ndarray, excluded: np.ndarray, required: np.ndarray, p: int | None
) -> float:
    """Least total link cost of any allowed workshop set (required ones, then the cheapest)."""
    allowed = np.ones(link_part.size, dtype=bool)
    allowed[excluded] = False
    allowed[required] = False
    total = float(link_part[required].sum())
    others = np.sort(link_part[allowed])
    if p is None:
        return total if required.size or others.size == 0 else total + float(others[0])
    return total + float(others[: max(p - required.size, 0)].sum())


def _office_problem(
    o: int,
    *,
    link: np.ndarray,
    oc: np.ndarray,
    ow: np.ndarray,
    cost: np.ndarray,
    w: np.ndarray,
    req: np.ndarray,
    exc: np.ndarray,
    p: int | None,
) -> str | None:
    """Why office ``o`` cannot work, or None."""
    cut = np.flatnonzero(~np.isfinite(link[o]))
    bad_req = np.intersect1d(req, cut)
    if bad_req.size:
        return f"office {o} cannot supply required workshops {format_ids(bad_req)}"
    if (ow > 0).any() and not np.isfinite(oc[ow > 0, o]).all():
        bad = np.flatnonzero((ow > 0) & ~np.isfinite(oc[:, o]))
        return f"office {o} is unreachable for customers {format_ids(bad)}"
    exc_all = np.union1d(exc, cut)
    if p is not None and p > cost.shape[1] - exc_all.size:
        return f"office {o} can supply only {cost.shape[1] - exc_all.size} workshops < p={p}"
    far = unreachable_rows(cost, exc_all)
    far = far[w[far] > 0]
    if far.size:
        return f"with office {o}, customers {format_ids(far)} reach no workshop it can supply"
    return None
