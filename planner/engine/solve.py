"""Solving: one layout on a prepared instance, turned into its one :class:`LayoutResult`.

``in-house``
    Own workshops chosen among own candidate sites: a p-median on customer travel time
    (capacitated when ``capacitated = true``), or a fixed-charge model when ``workshops`` is
    ``None`` ("auto": workshop fixed cost against the value of customer time).
``outsourced``
    Partner repair shops: a p-median over partner sites; every job pays the partner fee and
    a share of jobs leaks.
``two-tier``
    One central office plus own workshops that cost less (no own parts store) and, with
    ``two_tier_partners``, partner shops supplied from the office; parts deliveries from the
    office to each workshop are costed by their travel time.

Every model is built from the instance's cost matrix (:mod:`planner.models`); the result's
KPIs, costs, loads and provenance are computed once, here.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from planner import models
from planner.engine._progress import (
    ProgressCallback,
    SolveProgressCallback,
    SolveWatch,
    StopCallback,
    log_progress,
    scaled,
)
from planner.engine.instance import Instance, ScenarioInstance
from planner.engine.market import market_inputs, market_outcome
from planner.engine.sizes import (
    allowed_sizes,
    site_sizes_warnings,
    size_tables,
    solve_sized,
    with_sizes,
)
from planner.engine.spec import LAYOUTS, WorkshopSize
from planner.errors import InfeasibleError, InputError
from planner.inputs.sites import PARTNER_MATCH_M
from planner.models import Solution
from planner.models.budget import budget_p_median
from planner.models.coverage import min_sites_to_reach
from planner.results.costs import CostParameters
from planner.results.kpis import (
    annual_costs,
    customer_service_limits,
    scenario_kpis,
    site_loads,
)
from planner.results.market import MarketOutcome
from planner.results.provenance import collect_provenance
from planner.results.site_figures import FIGURE_COLUMNS, site_figures, unused_partner_fixed_costs
from planner.results.types import LayoutResult, ScenarioResult

logger = logging.getLogger(__name__)

__all__ = ["build_result", "network_cost_eur", "solve_layout", "within_standard"]


def build_result(
    instance: Instance,
    solution: Solution,
    *,
    roles: dict[int, str] | None = None,
) -> ScenarioResult:
    """Turn a model's solution on ``instance`` into per-customer and per-site tables.

    The KPIs and provenance are left empty: :func:`solve_layout` computes them once, from
    these tables, for the layout's full result.

    Parameters
    ----------
    instance
        The instance the solution was computed on (its ``cost_s`` columns are the candidates).
    solution
        A model solution; ``solution.assignment`` holds one candidate column per demand point.
    roles
        Role of some opened columns (``"office"``, ``"partner"``); others are ``"workshop"``
        unless the candidate's ``kind`` says ``partner`` or ``office``.
    """
    cands = instance.candidates
    customers = instance.customers.copy()
    d_of_c = instance.demand_of_customer
    served = d_of_c >= 0
    col = np.full(len(customers), -1, dtype=np.int64)
    col[served] = np.asarray(solution.assignment)[d_of_c[served]]
    assigned = col >= 0
    travel_s = np.full(len(customers), np.inf)
    idx = np.flatnonzero(assigned)
    travel_s[idx] = instance.cost_s[d_of_c[idx], col[idx]]
    if instance.access_offset_s is not None:
        travel_s[idx] += instance.access_offset_s[idx]
    travel_min = travel_s / 60.0
    customers["site_id"] = ""
    customers.loc[assigned, "site_id"] = cands["site_id"].astype(str).to_numpy()[col[assigned]]
    customers["travel_min"] = np.where(np.isfinite(travel_min), travel_min, np.nan)
    # each customer's nearest open service point (offices serve no customer): a customer
    # served elsewhere (a full site, in a capacitated plan) drives the difference extra
    serving = np.asarray(
        [
            j
            for j in np.asarray(solution.open, dtype=np.int64)
            if (roles or {}).get(int(j)) != "office"
        ],
        dtype=np.int64,
    )
    customers["nearest_site_id"] = ""
    customers["nearest_travel_min"] = np.nan
    rows_ = np.flatnonzero(served)
    if serving.size and rows_.size:
        sub = instance.cost_s[np.ix_(d_of_c[rows_], serving)]
        best = np.argmin(np.where(np.isfinite(sub), sub, np.inf), axis=1)
        best_s = sub[np.arange(rows_.size), best]
        if instance.access_offset_s is not None:
            best_s = best_s + instance.access_offset_s[rows_]
        ok = np.isfinite(best_s)
        site_ids = cands["site_id"].astype(str).to_numpy()
        customers.loc[rows_[ok], "nearest_site_id"] = site_ids[serving[best[ok]]]
        customers.loc[rows_[ok], "nearest_travel_min"] = best_s[ok] / 60.0
    unserved = served & ~assigned
    customers.loc[unserved, "excluded_reason"] = "cannot reach any opened site"
    warnings = instance.warnings
    if unserved.any():
        ids = ", ".join(map(str, customers.loc[unserved, "customer_id"].head(10)))
        more = "..." if unserved.sum() > 10 else ""
        n = int(unserved.sum())
        warnings += (
            f"{n} customer{'s' if n != 1 else ''} cannot reach any opened site by road and "
            f"{'are' if n != 1 else 'is'} not served (ids {ids}{more})",
        )

    weights = customers["weight"].to_numpy(float)
    total = weights.sum()
    rows = []
    for j in np.asarray(solution.open, dtype=np.int64):
        mine = col == j
        w = weights[mine]
        t = travel_min[mine]
        site = cands.iloc[int(j)]
        kind = str(site.get("kind", "workshop"))
        role = (roles or {}).get(int(j)) or (kind if kind in ("partner", "office") else "workshop")
        rows.append(
            {
                "site_id": str(site["site_id"]),
                "role": role,
                "name": str(site.get("name", "") or ""),
                "lat": float(site["lat"]),
                "lon": float(site["lon"]),
                "customers": int(mine.sum()),
                "demand_share": float(w.sum() / total) if total > 0 else 0.0,
                "mean_travel_min": float(np.average(t, weights=w)) if w.sum() > 0 else np.nan,
                "max_travel_min": float(t.max()) if t.size else np.nan,
                "kind": kind,
                "status": str(site.get("status", "candidate")),
            }
        )
    sites = pd.DataFrame(rows)
    sites_gdf = gpd.GeoDataFrame(
        sites,
        geometry=gpd.points_from_xy(sites.get("lon", []), sites.get("lat", [])),
        crs="EPSG:4326",
    )
    return ScenarioResult(
        customers=gpd.GeoDataFrame(customers, geometry="geometry", crs="EPSG:4326")
        if "geometry" in customers
        else gpd.GeoDataFrame(
            customers,
            geometry=gpd.points_from_xy(customers["lon"], customers["lat"]),
            crs="EPSG:4326",
        ),
        sites=sites_gdf,
        kpis={},
        solution=solution,
        provenance={},
        warnings=warnings,
    )


def _time_value_per_weight_s(parameters: CostParameters) -> float:
    """EUR per unit of weight per second of one-way travel (round trip valued)."""
    return parameters.customer_time_eur_per_hour * parameters.jobs_per_weight * 2.0 / 3600.0


def _solve_columns(
    sinst: ScenarioInstance,
    cols: np.ndarray,
    *,
    workshops: int | None,
    fixed_cost_eur: np.ndarray,
    capacity_weight: np.ndarray | None,
    weights: np.ndarray,
    time_limit_s: float,
    cost_s: np.ndarray | None = None,
    progress: SolveWatch | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Solve a location model restricted to candidate columns ``cols``; returns a Solution
    whose ``open`` / ``assignment`` index into ``cols``.

    ``fixed_cost_eur`` (EUR/year) and ``capacity_weight`` (in weight units, ``None``:
    uncapacitated) hold one figure per candidate column of the instance (each site's own,
    :func:`planner.results.site_figures.site_figures`). ``progress`` receives the model's bound
    and gap reports and ``should_stop`` can end the solve early (the capacitated models too).
    """
    inst = sinst.instance
    cost = (inst.cost_s if cost_s is None else cost_s)[:, cols]
    fixed = np.asarray(fixed_cost_eur, dtype=float)[cols]
    cap = None if capacity_weight is None else np.asarray(capacity_weight, dtype=float)[cols]
    required = np.flatnonzero(np.isin(cols, inst.required))
    excluded = np.flatnonzero(np.isin(cols, inst.excluded))
    if cap is None:  # with capacities two sites at one place may both be needed
        excluded = _with_dominated(
            cost, fixed, None, required=required, excluded=excluded, workshops=workshops
        )
    if workshops is None:
        tv = _time_value_per_weight_s(sinst.spec.parameters)
        if np.any(fixed > 0) and tv <= 0:
            raise InputError(
                "workshops = 'auto' lets the model trade fixed costs against customer time, "
                "so customer_time_eur_per_hour must be > 0; set it or give a number of workshops",
                field="workshops",
            )
        kwargs: dict[str, Any] = {
            "time_value": tv if tv > 0 else 1.0,
            "required": required,
            "excluded": excluded,
            "time_limit": time_limit_s,
            "progress": progress,
            "should_stop": should_stop,
        }
        if cap is not None:
            kwargs["capacity"] = cap
        return models.fixed_charge(cost, fixed, weights, **kwargs)
    p = min(int(workshops), cols.size - excluded.size)
    if p < 1:
        raise InfeasibleError("no usable candidate sites for this layout")
    if cap is not None:
        sol = models.capacitated_p_median(
            cost,
            p,
            cap,
            weights,
            required=required,
            excluded=excluded,
            time_limit=time_limit_s,
            progress=progress,
            should_stop=should_stop,
        )
        return _swap_dominated(sol, cost, fixed, cap, required=required, excluded=excluded)
    sol = models.p_median(
        cost,
        p,
        weights,
        required=required,
        excluded=excluded,
        time_limit=time_limit_s,
        allow_unreachable=True,
        progress=progress,
        should_stop=should_stop,
    )
    return _with_nearest_site_bound(sol, cost, weights, excluded)


def _with_dominated(
    cost: np.ndarray,
    fixed: np.ndarray,
    cap: np.ndarray | None,
    *,
    required: np.ndarray,
    excluded: np.ndarray,
    workshops: int | None,
) -> np.ndarray:
    """``excluded`` plus the candidates another candidate dominates: one at the same place on
    the road network (the same travel time from every customer) that costs no more and has
    no less room. Opening the dominated one instead can never be better, so no model opens a
    9,000,000 EUR unit when an equivalent cheaper one exists; among exact equals the first is
    kept. Required (existing) sites are never excluded, and with a fixed number of workshops
    only as many are excluded as leave that many usable candidates.
    """
    m = cost.shape[1]
    if m < 2:
        return excluded
    keys: dict[bytes, list[int]] = {}
    skip = np.zeros(m, dtype=bool)
    skip[excluded] = True
    for j in np.flatnonzero(~skip).tolist():
        keys.setdefault(np.ascontiguousarray(cost[:, j]).tobytes(), []).append(int(j))
    room = np.full(m, np.inf) if cap is None else cap
    keep_required = set(required.tolist())
    dominated: list[int] = []
    for group in keys.values():
        if len(group) < 2:
            continue
        # best first: cheapest, then most room, then file order
        order = sorted(group, key=lambda j: (float(fixed[j]), -float(room[j]), j))
        for j in order[1:]:
            if j in keep_required:
                continue
            if any(
                fixed[b] <= fixed[j] and room[b] >= room[j]
                for b in order
                if b != j and b not in dominated
            ):
                dominated.append(j)
    if not dominated:
        return excluded
    usable = m - excluded.size
    if workshops is not None:
        dominated = dominated[: max(0, usable - int(workshops))]
    return np.union1d(excluded, np.asarray(dominated, dtype=np.int64)).astype(np.int64)


def _swap_dominated(
    sol: Solution,
    cost: np.ndarray,
    fixed: np.ndarray,
    cap: np.ndarray,
    *,
    required: np.ndarray,
    excluded: np.ndarray,
) -> Solution:
    """A capacitated p-median answer (travel only) with each open site replaced by a closed
    one at the same place (the same travel time from every customer) that costs less and has
    no less room: the travel and every load stay the same, the rent goes down."""
    m = cost.shape[1]
    closed = np.ones(m, dtype=bool)
    closed[np.asarray(sol.open, dtype=np.int64)] = False
    closed[excluded] = False
    if not closed.any():
        return sol
    keys = {j: np.ascontiguousarray(cost[:, j]).tobytes() for j in range(m)}
    keep = set(required.tolist())
    open_now = [int(j) for j in np.asarray(sol.open)]
    assignment = np.asarray(sol.assignment).copy()
    moved: dict[int, int] = {}
    for j in open_now:
        if j in keep:
            continue
        better = [
            b
            for b in np.flatnonzero(closed).tolist()
            if keys[b] == keys[j] and fixed[b] < fixed[j] and cap[b] >= cap[j]
        ]
        if better:
            b = min(better, key=lambda c: (float(fixed[c]), c))
            closed[b], closed[j] = False, True
            assignment[assignment == j] = b
            moved[j] = b
    if not moved:
        return sol
    extras = dict(sol.extras)
    if isinstance(extras.get("load"), dict):
        extras["load"] = {moved.get(int(k), int(k)): v for k, v in extras["load"].items()}
    if isinstance(extras.get("capacity"), dict):
        extras["capacity"] = {
            moved.get(int(k), int(k)): float(cap[moved.get(int(k), int(k))])
            for k in extras["capacity"]
        }
    opened = np.sort([moved.get(j, j) for j in open_now]).astype(np.int64)
    return dataclasses.replace(sol, open=opened, assignment=assignment, extras=extras)


def _with_nearest_site_bound(
    sol: Solution, cost: np.ndarray, weights: np.ndarray, excluded: np.ndarray
) -> Solution:
    """A p-median answer stopped before any bound was proven gets the simplest valid one.

    Every customer at its nearest usable candidate is a relaxation of the p-median, so
    ``sum_i w_i min_j cost[i, j]`` (customers that reach no candidate left out, as the model
    leaves them out) bounds the optimum from below.
    """
    if np.isfinite(sol.lower_bound) or sol.optimal:
        return sol
    usable = np.ones(cost.shape[1], dtype=bool)
    usable[excluded] = False
    nearest = cost[:, usable].min(axis=1)
    ok = np.isfinite(nearest) & (weights > 0)
    bound = min(float(np.sum(weights[ok] * nearest[ok])), float(sol.objective))
    gap = (sol.objective - bound) / sol.objective if sol.objective > 0 else 0.0
    return dataclasses.replace(sol, lower_bound=bound, gap=max(0.0, float(gap)))


def _to_full_columns(
    solution: Solution, cols: np.ndarray, extra_open: Sequence[int] = ()
) -> Solution:
    """Map a sub-problem solution's column indices back to the full candidate table."""
    assignment = np.asarray(solution.assignment)
    full_assign = np.where(assignment >= 0, cols[np.clip(assignment, 0, None)], -1)
    open_cols = np.sort(np.concatenate([cols[np.asarray(solution.open)], list(extra_open)]))
    return dataclasses.replace(
        solution, open=open_cols.astype(np.int64), assignment=full_assign.astype(np.int64)
    )


def solve_layout(
    sinst: ScenarioInstance,
    layout: str | None = None,
    *,
    workshops: int | str | None = "spec",
    parameters: CostParameters | None = None,
    demand_weight: np.ndarray | None = None,
    customer_weight: np.ndarray | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    solve_progress: SolveProgressCallback | None = None,
) -> LayoutResult:
    """Solve one layout on a prepared scenario instance.

    Parameters
    ----------
    sinst
        From :func:`prepare_scenario` (prepared for ``layout``).
    layout
        One of :data:`LAYOUTS`; default ``sinst.spec.layout``.
    workshops
        Number of workshops, ``None`` for a fixed-charge decision; default the spec's.
    parameters
        Cost parameters; default the spec's.
    demand_weight, customer_weight
        Override the demand per demand point / per customer row (robustness cases).
    progress
        ``progress(message, fraction)`` callback; during the solve its messages read
        ``"Solving the <layout> layout: bound X, best Y, gap Z %"``.
    should_stop
        Polled during the solve; when it returns True the solve ends with the best answer
        found so far, marked not optimal, with its proven gap (status ``"stopped"``) and a
        warning saying so.
    solve_progress
        Receives every :class:`~planner.models.SolveProgress` report of the model (incumbent
        objective, proven bound, gap) in the model's units.

    Returns
    -------
    LayoutResult
    """
    report = progress or log_progress
    spec = sinst.spec
    layout = layout or spec.layout
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; allowed: {list(LAYOUTS)}", field="layout")
    if workshops == "spec" and (spec.budget_per_year is not None or spec.meet_standard):
        # the budget and the service standard choose the number of workshops; each number
        # they try is this function's fixed-number solve, with the same options
        def solve_k(k: int, on: ScenarioInstance = sinst) -> LayoutResult:
            return solve_layout(
                on,
                layout,
                workshops=k,
                parameters=parameters,
                demand_weight=demand_weight,
                customer_weight=customer_weight,
                progress=report,
                should_stop=should_stop,
                solve_progress=solve_progress,
            )

        if spec.budget_per_year is not None:
            return _solve_within_budget(
                sinst,
                layout,
                spec.budget_per_year,
                params=parameters or spec.parameters,
                solve_k=solve_k,
                progress=report,
            )
        return _solve_meeting_standard(sinst, layout, solve_k, report)
    n_ws: int | None = spec.workshops if workshops == "spec" else workshops  # type: ignore[assignment]
    params = parameters or spec.parameters
    inst = sinst.instance
    allowed_sizes(inst.candidates, spec.sizes)  # a site naming an unknown size is an error
    if spec.sizes and spec.objective != "min_travel":
        raise InputError(
            f"workshop sizes are chosen for the least-travel objective only, not for "
            f"{spec.objective!r}; remove sizes or plan with objective = 'min_travel'",
            field="sizes",
        )
    weights = inst.demand_weight if demand_weight is None else np.asarray(demand_weight, float)
    # each site's own yearly fixed cost and capacity (the sites file's, else the Costs page's)
    figures = site_figures(inst.candidates, params, layout=layout)
    fixed_all = figures["fixed_cost_eur"].to_numpy(float)
    capacity = (
        figures["capacity_jobs"].to_numpy(float) / params.jobs_per_weight
        if spec.capacitated and params.jobs_per_weight > 0
        else None
    )
    roles: dict[int, str] = {}
    layout_warnings: list[str] = []
    link_time: dict[str, float] = {}
    office_id: str | None = None
    report(f"Solving the {layout} layout", 0.5)
    watch = SolveWatch(
        scaled(report, 0.5, 0.95),
        f"Solving the {layout} layout",
        _describe_market(spec.objective)
        if spec.objective != "min_travel"
        else _describe_objective(layout, n_ws, params, weights),
        spec.time_limit_s,
        solve_progress,
    )
    market: MarketOutcome | None = None
    if spec.objective != "min_travel":
        full, roles, office_id, link_time, market, more = _solve_market(
            sinst,
            layout,
            n_ws,
            params,
            weights,
            fixed_all=fixed_all,
            progress=watch,
            should_stop=should_stop,
        )
        layout_warnings += more
    elif layout == "in-house" and spec.sizes:
        # sites and sizes together (planner.engine.sizes)
        cols = sinst.columns["own"]
        _require(cols, "own candidate sites", layout)
        sol = solve_sized(
            sinst,
            cols,
            workshops=n_ws,
            params=params,
            weights=weights,
            time_value=_time_value_per_weight_s(params),
            progress=watch,
            should_stop=should_stop,
        )
        full = _to_full_columns(sol, cols)
        full = dataclasses.replace(
            full,
            extras={
                **full.extras,
                "size": {int(cols[j]): int(k) for j, k in sol.extras["size"].items()},
            },
        )
    elif layout == "in-house":
        cols = sinst.columns["own"]
        _require(cols, "own candidate sites", layout)
        sol = _solve_columns(
            sinst,
            cols,
            workshops=n_ws,
            fixed_cost_eur=fixed_all,
            capacity_weight=capacity,
            weights=weights,
            time_limit_s=spec.time_limit_s,
            progress=watch,
            should_stop=should_stop,
        )
        full = _to_full_columns(sol, cols)
    elif layout == "outsourced":
        cols = sinst.columns["partner"]
        _require(cols, "partner repair shops", layout)
        p = cols.size if n_ws is None else n_ws
        if spec.sizes:
            layout_warnings.append(
                "the outsourced layout uses existing partner shops, which have no sizes: the "
                "scenario's workshop sizes apply to the in-house and two-tier layouts only"
            )
        usable = cols.size - int(np.isin(cols, inst.excluded).sum())
        if p > usable:
            layout_warnings.append(
                f"{p} partner shops were asked for but only {usable} "
                f"{'is' if usable == 1 else 'are'} available; the outsourced layout uses "
                f"{usable}. Add partner rows (kind = partner) to the site list for more"
            )
        sol = _solve_columns(
            sinst,
            cols,
            workshops=p,
            fixed_cost_eur=np.zeros(len(fixed_all)),
            capacity_weight=capacity,
            weights=weights,
            time_limit_s=spec.time_limit_s,
            progress=watch,
            should_stop=should_stop,
        )
        full = _to_full_columns(sol, cols)
        for j in full.open:
            roles[int(j)] = "partner"
    else:
        full, office_col, link_time = _solve_two_tier(
            sinst,
            n_ws,
            params,
            weights,
            capacity,
            fixed_cost_eur=fixed_all,
            progress=watch,
            should_stop=should_stop,
        )
        roles[office_col] = "office"
        office_id = str(inst.candidates["site_id"].iloc[office_col])
    res = build_result(inst, full, roles=roles)
    res = _with_site_figures(res, inst.candidates, figures)
    if "size" in full.extras:  # sized workshops: each one's size, capacity and fixed cost
        res = with_sizes(res, full, inst.candidates, spec.sizes)
    if customer_weight is not None:
        cust = res.customers.copy()
        cust["weight"] = np.asarray(customer_weight, float)
        res = dataclasses.replace(res, customers=cust)
    costs = annual_costs(res, params, layout=layout, link_time_s=link_time)
    # under the market model a site serves the jobs it is expected to win, not its catchment's
    won = (
        None
        if market is None
        else dict(zip(market.sites["site_id"].astype(str), market.sites["jobs_won"], strict=True))
    )
    loads = site_loads(res, params, jobs_by_site=won)
    kpis = scenario_kpis(
        res,
        service_standard_min=spec.service_standard_min,
        costs=costs,
        loads=loads,
    )
    kpis["optimal"] = float(bool(full.optimal))
    kpis["gap"] = float(full.gap)
    if market is not None:
        kpis.update({f"market_{k}": float(v) for k, v in market.kpis.items()})
    graph_report = inst.graph.graph.get("planner_report", {})
    prov = collect_provenance(
        files={"customers": spec.customers, "sites": spec.sites},
        graph_report=graph_report,
        solver=full.solver,
        seed=spec.seed,
        scenario=spec.replace(layout=layout, workshops=n_ws, parameters=params).to_dict(),
    )
    prov.update(
        {
            "region": inst.region,
            "osm_date": graph_report.get("osm_date"),
            "graph_source": graph_report.get("source"),
            "graph_sha256": graph_report.get("sha256"),
            "model": full.model,
            "layout": layout,
        }
    )
    if market is not None:
        prov.update(
            {
                "objective": spec.objective,
                "demand_model": market.model.describe(),
                "competitors": len(market.competitors),
            }
        )
    warnings = list(res.warnings) + layout_warnings + _capacity_warnings(loads, res.sites)
    warnings += site_sizes_warnings(inst.candidates, spec.sizes)
    n_partner_cost = unused_partner_fixed_costs(inst.candidates.iloc[full.open])
    if n_partner_cost:
        warnings.append(
            f"{n_partner_cost} partner shop(s) in use have a fixed_cost in the site list; it is "
            "not used (partners are paid per job: partner_fee_per_job_eur)"
        )
    if full.status == "stopped" or (should_stop is not None and should_stop() and not full.optimal):
        warnings.append(
            "Stopped before the optimum was proven: this is the best answer found so far, "
            + (
                f"at most {100 * full.gap:.2f} % above the best possible"
                if np.isfinite(full.gap)
                else "with no proven bound yet"
            )
        )
    opened = int(kpis["sites"])
    # partners: above; target_share and max_profit choose how many (workshops: a cap)
    fewer = n_ws is not None and opened < n_ws and spec.objective in ("min_travel", "max_capture")
    if fewer and layout != "outsourced":
        warnings.append(
            f"{n_ws} workshops were asked for, but only {opened} usable candidate site(s) exist "
            f"for the {layout} layout, so {opened} are open; add candidate sites or allow "
            "generated candidates"
        )
    res = ScenarioResult(
        customers=res.customers,
        sites=res.sites,
        kpis=kpis,
        solution=full,
        provenance=prov,
        warnings=tuple(warnings),
    )
    report(f"Solved the {layout} layout", 1.0)
    return LayoutResult(
        layout=layout,
        result=res,
        costs=costs,
        loads=loads,
        office_id=office_id,
        link_time_s=link_time,
        parameters=params,
        market=market,
    )


def _describe_market(objective: str) -> Callable[[float], str]:
    """The market model's progress objective (:func:`planner.models.max_capture` reports its
    internal minimisation: jobs not won, or fixed costs + margin x jobs not won)."""
    if objective == "max_profit":
        return lambda value: f"€ {value:,.0f} fixed costs and lost margin a year"
    return lambda value: f"{value:,.1f} jobs a year not won"


def _solve_market(
    sinst: ScenarioInstance,
    layout: str,
    n_ws: int | None,
    params: CostParameters,
    weights: np.ndarray,
    *,
    fixed_all: np.ndarray,
    progress: SolveWatch | None = None,
    should_stop: StopCallback | None = None,
) -> tuple[Solution, dict[int, str], str | None, dict[str, float], MarketOutcome, list[str]]:
    """A market objective (:attr:`ScenarioSpec.objective`) on the layout's columns.

    Returns the solution over full columns, the roles, the office id, the office link seconds
    per workshop, the market outcome and warnings. Outsourced: the partner shops by
    :func:`planner.models.max_capture_partners` (every partner shop exists, and those not
    contracted compete with us). In-house: the own workshops by
    :func:`planner.models.max_capture`. Two-tier: the workshops by
    :func:`planner.models.max_capture` (with ``two_tier_partners``, workshops and partners
    together by :func:`planner.models.max_capture_mixed`: partners not contracted compete),
    then the office cheapest to supply them (a second step; the proven gap is the workshops').
    """
    spec = sinst.spec
    inst = sinst.instance
    warnings: list[str] = []
    if layout == "outsourced":
        cols = np.asarray(sinst.columns["partner"])
        _require(cols, "partner repair shops", layout)
        fixed = np.zeros(cols.size)
    else:
        cols = np.asarray(sinst.columns["own"])
        if layout == "two-tier" and spec.two_tier_partners:
            cols = np.sort(np.concatenate([cols, sinst.columns["partner"]]))
        _require(cols, "own candidate sites", layout)
        # each site's own fixed cost (site_figures: the sites file's, else the Costs page's)
        fixed = np.where(np.isin(cols, sinst.columns["partner"]), 0.0, fixed_all[cols])
    outsourced = layout == "outsourced"
    # partner shops exist either way: those not contracted compete (outsourced, two-tier)
    inputs = market_inputs(sinst, cols, partners_compete=True)
    compete = bool(inputs.closed_compete.any())  # some columns are partners
    dropped = int((~inputs.competitor_rows).sum())
    if dropped and not compete:
        warnings.append(
            f"{dropped} competing repair shop(s) are partner candidates of the {layout} layout "
            "and are not counted as competitors (contracted they are ours; the model assumes "
            "the others do not compete for our customers, so the share is overstated). List "
            "shops that compete in the site file with kind = competitor"
        )
    for comp_id, site_id in inputs.twins.items():
        warnings.append(
            f"competitor {comp_id} of the site list is the partner shop {site_id} (within "
            f"{PARTNER_MATCH_M:g} m): counted once, as that partner"
            + (" (a competitor while not contracted)" if compete else "")
        )
    jobs = np.asarray(weights, dtype=float) * params.jobs_per_weight
    required = np.flatnonzero(np.isin(cols, inst.required))
    excluded = np.flatnonzero(np.isin(cols, inst.excluded))
    usable = cols.size - excluded.size
    p = n_ws
    if p is not None and p > usable:
        warnings.append(
            f"{p} sites were asked for but only {usable} usable candidate site(s) exist for "
            f"the {layout} layout, so at most {usable} open"
        )
        p = usable
    if p is not None and p < required.size and spec.objective != "target_share":
        warnings.append(
            f"{p} sites were asked for but {required.size} existing sites stay open; "
            f"planning {required.size}"
        )
        p = int(required.size)
    common: dict[str, Any] = {
        "outside": inputs.outside,
        "required": required,
        "excluded": excluded,
        "time_limit": spec.time_limit_s,
        "progress": progress,
        "should_stop": should_stop,
    }
    if outsourced:  # partners exist either way: the share is linear in the contracted set
        capture: Callable[..., Solution] = models.max_capture_partners
    elif compete:  # own sites and partners together
        capture = functools.partial(models.max_capture_mixed, partners=inputs.closed_compete)
    else:
        capture = models.max_capture
    if spec.objective == "max_capture":
        sol = capture(inputs.utility, p, jobs, **common)
    elif spec.objective == "target_share":
        sol = capture(inputs.utility, None, jobs, target_share=spec.target_share, **common)
    else:
        sol = capture(
            inputs.utility,
            p,
            jobs,
            fixed_cost=fixed,
            margin=params.margin_per_job_eur,
            **common,
        )
    roles: dict[int, str] = {}
    office_id: str | None = None
    link_time: dict[str, float] = {}
    extra_open: list[int] = []
    if layout == "two-tier":
        off_cols = np.asarray(sinst.columns["office"])
        _require(off_cols, "office candidates", layout)
        if sinst.office_link_s is None:
            raise InputError("prepare the instance with layouts=['two-tier'] first")
        open_local = np.asarray(sol.open, dtype=np.int64)
        link = sinst.office_link_s[:, cols[open_local]]
        totals = np.asarray(params.delivery_cost_eur(link), dtype=float).sum(axis=1)
        totals = totals + fixed_all[off_cols]
        totals[np.isin(off_cols, inst.excluded)] = np.inf
        office_local = int(np.argmin(totals))
        if not np.isfinite(totals[office_local]):
            raise InfeasibleError("no office candidate can reach all chosen workshops by road")
        office_col = int(off_cols[office_local])
        extra_open = [office_col]
        roles[office_col] = "office"
        sites = inst.candidates["site_id"].astype(str).to_numpy()
        office_id = str(sites[office_col])
        link_time = {
            sites[int(cols[j])]: float(sinst.office_link_s[office_local, cols[j]])
            for j in open_local
        }
        sol = dataclasses.replace(
            sol,
            status=f"{sol.status}; office: the cheapest (fixed cost and deliveries) for them",
            extras={**sol.extras, "office": office_local, "office_choice": "min delivery cost"},
        )
    full = _to_full_columns(sol, cols, extra_open=extra_open)
    for j in np.asarray(full.open):
        if int(j) not in roles and int(j) in set(np.asarray(sinst.columns["partner"]).tolist()):
            roles[int(j)] = "partner"
    outcome = market_outcome(
        sinst, inputs, full, weights=jobs, params=params, fixed_cost_eur=fixed, roles=roles
    )
    profit = float(outcome.kpis["profit_eur"])
    if spec.objective == "max_profit" and profit < 0:
        warnings.append(
            f"no plan with at least one site makes a profit at a margin of "
            f"{params.margin_per_job_eur:,.0f} EUR a job: the best, {len(sol.open)} site(s), "
            f"loses {-profit:,.0f} EUR a year"
            + (" before the office's costs" if layout == "two-tier" else "")
            + "; check the margin per job and the sites' fixed costs"
        )
    return full, roles, office_id, link_time, outcome, warnings


def _with_site_figures(
    res: ScenarioResult, candidates: pd.DataFrame, figures: pd.DataFrame
) -> ScenarioResult:
    """The result's sites with each one's own fixed cost and capacity and their sources."""
    by_id = figures.set_axis(candidates["site_id"].astype(str).to_numpy())
    by_id = by_id[~by_id.index.duplicated(keep="first")]
    sites = res.sites.copy()
    ids = sites["site_id"].astype(str)
    for column in FIGURE_COLUMNS:
        sites[column] = ids.map(by_id[column]).to_numpy()
    roles = sites["role"].astype(str).to_numpy()
    # a partner used as a two-tier workshop has no fixed cost; an office has no capacity
    sites.loc[roles == "partner", "fixed_cost_eur"] = 0.0
    sites.loc[roles == "partner", "fixed_cost_source"] = "none"
    sites.loc[roles == "office", "capacity_jobs"] = np.nan
    sites.loc[roles == "office", "capacity_source"] = "none"
    return dataclasses.replace(res, sites=sites)


def _capacity_warnings(loads: pd.DataFrame, sites: pd.DataFrame) -> list[str]:
    """One warning per role for sites above their own capacity, each with its figures."""
    names = dict(
        zip(sites["site_id"].astype(str), sites["name"].fillna("").astype(str), strict=True)
    )
    out: list[str] = []
    util = loads["utilisation"].to_numpy(float)
    over = loads[np.isfinite(util) & (util > 1.0 + 1e-9)]
    for role, what, fix in (
        ("workshop", "workshop(s) over capacity", "add workshops or technicians"),
        ("partner", "partner shop(s) would take more than their capacity", "add partners"),
    ):
        mine = over[over["role"] == role]
        if not len(mine):
            continue
        listed = ", ".join(
            f"{sid}{' ' + names[str(sid)] if names.get(str(sid)) else ''} "
            f"({jobs:,.0f} jobs, capacity {cap:,.0f} jobs/year, {u:.0%})"
            for sid, jobs, cap, u in zip(
                mine["site_id"],
                mine["jobs"],
                mine["capacity_jobs"],
                mine["utilisation"],
                strict=True,
            )
        )
        out.append(f"{len(mine)} {what}: {listed}; {fix}, or set capacitated = true")
    return out


def network_cost_eur(result: LayoutResult) -> float:
    """The yearly cost of running the network: everything but the customers' time (EUR)."""
    costs = result.costs
    return float(costs.total_eur - costs.customer_time_eur)


#: ``solve_k(k, on=sinst)``: the layout solved with ``k`` workshops on ``on``.
SolveK = Callable[..., LayoutResult]


def _solve_within_budget(
    sinst: ScenarioInstance,
    layout: str,
    budget_eur: float,
    *,
    params: CostParameters,
    solve_k: SolveK,
    progress: ProgressCallback,
) -> LayoutResult:
    """The number of workshops (and sites) with the least customer travel whose yearly
    network cost fits ``budget_eur``.

    Each site costs its own fixed cost (:func:`planner.results.site_figures.site_figures`).
    In-house, when those differ between sites (and capacities are not respected), one model
    finds the least-travel set of any size whose fixed costs fit
    (:func:`planner.models.budget.budget_p_median`, exact with its proven gap). Otherwise at
    most ``k_max`` workshops fit (as many of the cheapest sites as the budget pays for beyond
    the cheapest office); each ``k`` from ``k_max`` down is solved by the same p-median as a
    fixed number of workshops, and the first whose network cost fits is kept.
    More workshops never lengthen the optimal travel, so for in-house and outsourced layouts
    (whose network cost depends on the number of sites only) this is the best layout within
    the budget. For two-tier, whose delivery cost depends on where the workshops are, it is
    the best layout of the first number of workshops whose least-travel sites fit.
    """
    own = layout != "outsourced"
    inst = sinst.instance
    cols = _standard_columns(sinst, layout)
    usable_cols = cols[~np.isin(cols, inst.excluded)]
    usable = int(usable_cols.size)
    required = int(np.isin(cols, inst.required).sum())
    k_max = usable
    # each site's own fixed cost (partners serving as two-tier workshops have none)
    fixed = site_figures(inst.candidates, params, layout=layout)["fixed_cost_eur"].to_numpy(float)
    sized = bool(sinst.spec.sizes) and own
    if sized:
        # an own workshop costs at least its cheapest allowed size (not the Costs page's)
        own_cols = sinst.columns["own"]
        size_fixed = size_tables(inst.candidates.iloc[own_cols], sinst.spec.sizes, params)[0]
        fixed = fixed.copy()
        fixed[own_cols] = size_fixed.min(axis=1)
        usable_cols = usable_cols[np.isfinite(fixed[usable_cols])]
    if own:
        offices = sinst.columns["office"][~np.isin(sinst.columns["office"], inst.excluded)]
        office = float(fixed[offices].min()) if layout == "two-tier" and offices.size else 0.0
        is_req = np.isin(usable_cols, inst.required)
        spare = budget_eur - office - float(fixed[usable_cols[is_req]].sum())
        cum = np.cumsum(np.sort(fixed[usable_cols[~is_req]]))
        k_max = required + int(np.searchsorted(cum, spare * (1 + 1e-12), side="right"))
        if spare < -1e-9 * budget_eur:
            k_max = 0
        own_fixed = fixed[usable_cols[np.isin(usable_cols, sinst.columns["own"])]]
        if (
            layout == "in-house"
            and not sinst.spec.capacitated
            and own_fixed.size
            and np.ptp(own_fixed) > 0
            and k_max >= max(1, required)
        ):
            return _solve_budget_mip(
                sinst,
                cols,
                fixed=fixed,
                budget_eur=budget_eur,
                solve_k=solve_k,
                progress=progress,
            )
    k_min = max(1, required)
    cheapest: LayoutResult | None = None
    for k in range(k_max, k_min - 1, -1):
        progress(f"Budget € {budget_eur:,.0f} a year: trying {k} workshops", 0.0)
        result = solve_k(k)
        cost = network_cost_eur(result)
        if cost <= budget_eur * (1 + 1e-9):
            res = dataclasses.replace(
                result.result,
                provenance={
                    **result.result.provenance,
                    "budget_per_year": budget_eur,
                    "network_cost_per_year": cost,
                },
            )
            if sized:
                res = dataclasses.replace(
                    res,
                    warnings=(
                        *res.warnings,
                        f"with workshop sizes, the budget keeps the largest number of workshops "
                        f"({k}) whose best sized plan fits € {budget_eur:,.0f} a year; that plan "
                        "is proven for fixed costs plus customer time at this number, not as "
                        "the least travel of every plan within the budget",
                    ),
                )
            return dataclasses.replace(result, result=res)
        if cheapest is None or cost < network_cost_eur(cheapest):
            cheapest = result
    floor = (
        ""
        if cheapest is None
        else f"; the cheapest layout tried costs € {network_cost_eur(cheapest):,.0f}"
    )
    raise InfeasibleError(
        f"a budget of € {budget_eur:,.0f} a year pays for no {layout} layout"
        + (f" with the {required} existing workshops kept" if required else "")
        + f" (at most {max(k_max, 0)} workshops fit the fixed costs{floor}); "
        "raise the budget or lower the fixed costs"
    )


def _solve_budget_mip(
    sinst: ScenarioInstance,
    cols: np.ndarray,
    *,
    fixed: np.ndarray,
    budget_eur: float,
    solve_k: SolveK,
    progress: ProgressCallback,
) -> LayoutResult:
    """In-house within a budget when sites cost different amounts: the least-travel set of
    any size whose own fixed costs fit (:func:`planner.models.budget.budget_p_median`), then
    that set solved as a fixed number of workshops so the result is assembled as always."""
    inst = sinst.instance
    progress(f"Budget € {budget_eur:,.0f} a year: sites with their own fixed costs", 0.0)
    sol = budget_p_median(
        inst.cost_s[:, cols],
        None,
        fixed[cols],
        budget_eur,
        inst.demand_weight,
        required=np.flatnonzero(np.isin(cols, inst.required)),
        excluded=np.flatnonzero(np.isin(cols, inst.excluded)),
        time_limit=sinst.spec.time_limit_s,
    )
    chosen = cols[np.asarray(sol.open)]
    status = inst.candidates.get("status", pd.Series("candidate", index=inst.candidates.index))
    status = status.astype(object).copy()
    status.iloc[np.setdiff1d(cols, chosen)] = "excluded"
    forced = dataclasses.replace(
        sinst, instance=dataclasses.replace(inst, candidates=inst.candidates.assign(status=status))
    )
    result = solve_k(int(chosen.size), forced)
    full = dataclasses.replace(
        result.result.solution,
        model=sol.model,
        lower_bound=sol.lower_bound,
        gap=sol.gap,
        optimal=sol.optimal,
        status=sol.status,
        solver=sol.solver,
    )
    kpis = {**result.result.kpis, "optimal": float(sol.optimal), "gap": float(sol.gap)}
    cost = network_cost_eur(result)
    res = dataclasses.replace(
        result.result,
        solution=full,
        kpis=kpis,
        provenance={
            **result.result.provenance,
            "model": sol.model,
            "budget_per_year": budget_eur,
            "network_cost_per_year": cost,
        },
    )
    return dataclasses.replace(result, result=res)


def _standard_columns(sinst: ScenarioInstance, layout: str) -> np.ndarray:
    """Candidate columns whose sites serve customers in ``layout`` (budget and standard modes)."""
    if layout == "outsourced":
        return np.asarray(sinst.columns["partner"])
    cols = np.asarray(sinst.columns["own"])
    if layout == "two-tier" and sinst.spec.two_tier_partners:
        cols = np.concatenate([cols, sinst.columns["partner"]])
    return cols


def within_standard(sinst: ScenarioInstance, cols: np.ndarray) -> np.ndarray:
    """(customers x ``cols``) bool: which candidate reaches each customer row within its
    service standard (its own ``service_max_min`` or its segment's ``service_standard_min``),
    by the same travel time the KPIs report. Customers left out of the solve reach none."""
    inst = sinst.instance
    d_of_c = inst.demand_of_customer
    limit_s = 60.0 * customer_service_limits(inst.customers, sinst.spec.service_standard_min)
    reach = np.zeros((d_of_c.size, cols.size), dtype=bool)
    rows = np.flatnonzero(d_of_c >= 0)
    travel = inst.cost_s[np.ix_(d_of_c[rows], cols)]
    if inst.access_offset_s is not None:
        travel = travel + inst.access_offset_s[rows, None]
    reach[rows] = np.isfinite(travel) & (travel <= limit_s[rows, None] + 1e-6)
    return reach


def _outside_standard(result: LayoutResult, sinst: ScenarioInstance, rows: np.ndarray) -> int:
    """How many customers of ``rows`` (bool per customer) travel longer than their standard."""
    cust = result.result.customers
    limit = customer_service_limits(cust, sinst.spec.service_standard_min)
    travel = cust["travel_min"].to_numpy(float)
    return int(np.sum(rows & ~(np.isfinite(travel) & (travel <= limit + 1e-6))))


def _solve_meeting_standard(
    sinst: ScenarioInstance, layout: str, solve_k: SolveK, progress: ProgressCallback
) -> LayoutResult:
    """The fewest workshops from which every customer is within its service standard.

    The count is the smallest set cover of :func:`within_standard`
    (:func:`planner.models.coverage.min_sites_to_reach`, existing sites kept, excluded ones
    never opened); the sites are then chosen by the same p-median as a fixed number of
    workshops. The p-median minimises travel, not coverage: when its sites leave customers
    outside the standard that the cover reaches, the cover's own sites are opened instead
    (in-house and outsourced; two-tier says so in a warning). Customers no candidate
    reaches within their standard are counted in a warning, never dropped.
    """
    inst = sinst.instance
    cols = _standard_columns(sinst, layout)
    _require(cols, "candidate sites", layout)
    reach = within_standard(sinst, cols)
    required = np.flatnonzero(np.isin(cols, inst.required))
    excluded = np.flatnonzero(np.isin(cols, inst.excluded))
    allowed = np.ones(cols.size, dtype=bool)
    allowed[excluded] = False
    active = inst.demand_of_customer >= 0
    uncoverable = int(np.sum(active & ~(reach & allowed[None, :]).any(axis=1)))
    progress("Finding the fewest workshops that meet the service standard", 0.0)
    cover, min_count = min_sites_to_reach(
        reach, required=required, excluded=excluded, time_limit=sinst.spec.time_limit_s
    )
    if cover is None:
        raise InfeasibleError(
            "no set of sites meeting the service standard was found within "
            f"time_limit_s = {sinst.spec.time_limit_s:g} s (at least {min_count} are needed); "
            "raise time_limit_s or give a number of workshops"
        )
    k = max(1, int(cover.size))
    proven = int(cover.size) <= min_count
    progress(f"Service standard: planning {k} workshop{'s' if k != 1 else ''}", 0.05)
    result = solve_k(k)
    coverable = active & (reach & allowed[None, :]).any(axis=1)
    missed = _outside_standard(result, sinst, coverable)
    chosen = "least total travel"
    if missed and layout != "two-tier":
        # the least-travel sites leave customers outside the standard that the cover reaches:
        # open the cover itself (every other candidate of the layout excluded), so the
        # standard is met wherever any site can meet it
        status = inst.candidates.get("status", pd.Series("new", index=inst.candidates.index))
        status = status.astype(object).copy()
        others = np.setdiff1d(cols, cols[cover])
        status.iloc[others] = "excluded"
        forced = dataclasses.replace(
            sinst,
            instance=dataclasses.replace(inst, candidates=inst.candidates.assign(status=status)),
        )
        result = solve_k(k, forced)
        missed = _outside_standard(result, sinst, coverable)
        chosen = "a smallest cover of the standard (not the least travel among such covers)"
    warnings = list(result.result.warnings)
    if uncoverable:
        warnings.append(
            f"{uncoverable} customer{'s' if uncoverable != 1 else ''} cannot reach any candidate "
            "site within the service standard; they are served by the nearest open site, "
            "outside the standard. Add candidate sites near them or relax the standard"
        )
    if missed:
        warnings.append(
            f"{k} workshops could reach every customer that any site reaches within the "
            f"service standard, but the sites chosen for the shortest total travel leave "
            f"{missed} of them outside it (the p-median minimises travel, not coverage)"
        )
    if not proven:
        warnings.append(
            f"{k} workshops meet the service standard, but fewer were not ruled out in the "
            f"time limit (at least {min_count} are needed)"
        )
    res = dataclasses.replace(
        result.result,
        warnings=tuple(warnings),
        provenance={
            **result.result.provenance,
            "meet_standard": True,
            "standard_workshops": k,
            "standard_workshops_lower_bound": min_count,
            "standard_workshops_proven_minimal": proven,
            "customers_outside_standard_unavoidable": uncoverable,
            "standard_sites_chosen_by": chosen,
        },
    )
    return dataclasses.replace(result, result=res)


def _describe_objective(
    layout: str, n_ws: int | None, params: CostParameters, weights: np.ndarray
) -> Callable[[float], str]:
    """How to write the objective of the layout's model for people (see ``_solve_columns``
    and ``_solve_two_tier`` for the units)."""
    total = float(np.sum(weights))
    money_models = n_ws is None or (layout == "two-tier" and _time_value_per_weight_s(params) > 0)
    if money_models:
        return lambda value: f"€ {value:,.0f} a year"
    if layout == "two-tier":  # round-trip seconds per year
        return lambda value: f"{value / 3600:,.0f} h of driving a year"
    return lambda value: f"{value / max(total, 1e-12) / 60:,.2f} min average drive"


def _require(cols: np.ndarray, what: str, layout: str) -> None:
    if cols.size == 0:
        raise InputError(
            f"the {layout} layout needs {what}, but the instance has none; prepare it with "
            f"prepare_scenario(spec, layouts=[{layout!r}])"
        )


def _solve_two_tier(
    sinst: ScenarioInstance,
    n_ws: int | None,
    params: CostParameters,
    weights: np.ndarray,
    capacity: np.ndarray | None,
    *,
    fixed_cost_eur: np.ndarray,
    progress: SolveWatch | None = None,
    should_stop: StopCallback | None = None,
) -> tuple[Solution, int, dict[str, float]]:
    """Choose workshops and the office; returns (solution over full columns, office column,
    link seconds per workshop site_id)."""
    inst = sinst.instance
    ws_cols = sinst.columns["own"]
    if sinst.spec.two_tier_partners:
        ws_cols = np.sort(np.concatenate([ws_cols, sinst.columns["partner"]]))
    off_cols = sinst.columns["office"]
    _require(ws_cols, "own workshop candidates", "two-tier")
    _require(off_cols, "office candidates", "two-tier")
    if sinst.office_link_s is None:
        raise InputError("prepare the instance with layouts=['two-tier'] first")
    link = sinst.office_link_s[:, ws_cols]  # offices x workshop candidates
    delivery_eur = np.asarray(params.delivery_cost_eur(link), dtype=float)
    tv = _time_value_per_weight_s(params)
    # each workshop column's own capacity (partner shops' too), weight units
    ws_capacity = None if capacity is None else np.asarray(capacity, dtype=float)[ws_cols]
    sizes = sinst.spec.sizes
    if sizes and tv <= 0:
        raise InputError(
            "sizes let the model trade each size's fixed cost against customer time, so "
            "customer_time_eur_per_hour must be > 0; set it in the parameters",
            field="sizes",
        )
    if tv > 0 or n_ws is not None:
        # ONE model: office and workshops chosen together. With customer time valued, on money
        # (EUR/year); otherwise on time: customer round trips weighted by jobs plus the office
        # -> workshop supply round trips, both in seconds per year
        if tv > 0:
            ws_sol = _call_two_tier(
                sinst=sinst,
                ws_cols=ws_cols,
                n_ws=n_ws,
                params=params,
                weights=weights,
                time_value=tv,
                capacity=ws_capacity,
                fixed_cost_eur=fixed_cost_eur,
                sizes=sizes,
                progress=progress,
                should_stop=should_stop,
            )
        else:
            ws_sol = models.two_tier(
                inst.cost_s[:, ws_cols],
                link,
                n_ws,
                weights * params.jobs_per_weight,
                deliveries=params.deliveries_per_workshop,
                time_value=2.0,
                link_value=2.0,
                required=np.flatnonzero(np.isin(ws_cols, inst.required)),
                excluded=np.flatnonzero(np.isin(ws_cols, inst.excluded)),
                excluded_offices=np.flatnonzero(np.isin(off_cols, inst.excluded)),
                capacity=None if ws_capacity is None else ws_capacity * params.jobs_per_weight,
                time_limit=sinst.spec.time_limit_s,
                progress=progress,
                should_stop=should_stop,
            )
        office_local = int(ws_sol.extras["office"])
    else:
        # 'auto' without a value of time: two steps, stated as such. The workshops of the
        # (capacitated) fixed-charge model, then the office that minimises the delivery cost
        # to them. Not proven for the joint problem: the gap is against the workshop step's
        # lower bound (deliveries cost at least nothing).
        ws_sol = _solve_columns(
            sinst,
            ws_cols,
            workshops=n_ws,
            fixed_cost_eur=fixed_cost_eur,
            capacity_weight=capacity,
            weights=weights,
            time_limit_s=sinst.spec.time_limit_s,
            progress=progress,
            should_stop=should_stop,
        )
        totals = delivery_eur[:, np.asarray(ws_sol.open)].sum(axis=1) + fixed_cost_eur[off_cols]
        totals[np.isin(off_cols, inst.excluded)] = np.inf  # offices too far from any road
        office_local = int(np.argmin(totals))
        if not np.isfinite(totals[office_local]):
            raise InfeasibleError("no office candidate can reach all chosen workshops by road")
        step_optimal = bool(ws_sol.optimal)
        # the joint objective in round-trip seconds per year, and a valid lower bound for it
        jobs_s = 2.0 * params.jobs_per_weight
        supply_s = (
            2.0
            * params.deliveries_per_workshop
            * float(link[office_local, np.asarray(ws_sol.open)].sum())
        )
        joint = jobs_s * float(ws_sol.objective) + supply_s
        bound = jobs_s * float(ws_sol.lower_bound)
        ws_sol = dataclasses.replace(
            ws_sol,
            model=f"two_tier (two steps: {ws_sol.model}, then the office)",
            objective=joint,
            lower_bound=bound,
            gap=max(0.0, (joint - bound) / joint) if joint > 0 else 0.0,
            optimal=False,
            status=(
                "two steps: workshops "
                + ("proven optimal" if step_optimal else f"within {ws_sol.gap:.2%}")
                + ", office the cheapest to supply them; not proven for the joint problem"
            ),
            extras={
                **ws_sol.extras,
                "office": office_local,
                "office_choice": "min delivery cost",
                "workshop_step_optimal": step_optimal,
            },
        )
    office_col = int(off_cols[office_local])
    full = _to_full_columns(ws_sol, ws_cols, extra_open=[office_col])
    if "size" in ws_sol.extras:  # sized own workshops (partners have no size)
        own = np.isin(ws_cols, sinst.columns["own"])
        full = dataclasses.replace(
            full,
            extras={
                **full.extras,
                "size": {
                    int(ws_cols[j]): int(k) for j, k in ws_sol.extras["size"].items() if own[j]
                },
            },
        )
    sites = inst.candidates["site_id"].astype(str).to_numpy()
    link_time = {
        sites[int(ws_cols[j])]: float(link[office_local, int(j)]) for j in np.asarray(ws_sol.open)
    }
    return full, office_col, link_time


def _call_two_tier(
    *,
    sinst: ScenarioInstance,
    ws_cols: np.ndarray,
    n_ws: int | None,
    params: CostParameters,
    weights: np.ndarray,
    time_value: float,
    fixed_cost_eur: np.ndarray,
    capacity: np.ndarray | None = None,
    sizes: Sequence[WorkshopSize] = (),
    progress: SolveWatch | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Solve office and workshops jointly with :func:`planner.models.two_tier`, in EUR/year
    (with ``capacity``, weight per workshop column, single sourcing within it).

    With ``sizes`` (the scenario's workshop sizes) each own workshop opens in one of the sizes
    its site allows, at the size's fixed cost and capacity, chosen with the sites and the office
    (:func:`planner.engine.sizes.size_tables`); partner workshops keep no fixed cost and their
    own capacity (none: room for all).

    Customer travel is valued at ``time_value`` EUR per weight-second (round trips), each
    delivery costs ``2 * link_s / 60 * delivery_cost_per_min_eur``, and the fixed costs are the
    two-tier workshop and office costs, each site's own (``fixed_cost_eur`` per candidate
    column, from :func:`planner.results.site_figures.site_figures`). Partner workshops
    (``two_tier_partners``) have no fixed cost; their fee and leaked margin per job are added
    to the customers' cost of going there.
    """
    inst = sinst.instance
    cost = inst.cost_s[:, ws_cols]
    is_partner = np.isin(ws_cols, sinst.columns["partner"])
    fixed = np.where(is_partner, 0.0, fixed_cost_eur[ws_cols])
    if is_partner.any():
        # a job at a partner costs its fee and the leaked margin: as seconds of customer time
        per_job = params.partner_fee_per_job_eur + params.leakage_cost_eur(1.0)
        extra_s = per_job * params.jobs_per_weight / time_value
        cost = cost + np.where(is_partner, extra_s, 0.0)[None, :]
    if sinst.office_link_s is None:
        raise InputError("prepare the instance with layouts=['two-tier'] first")
    link = sinst.office_link_s[:, ws_cols]
    size_kw: dict[str, Any] = {"fixed_cost_workshop": fixed, "capacity": capacity}
    if sizes:
        size_fixed, size_capacity = size_tables(
            inst.candidates.iloc[ws_cols],
            sizes,
            params,
            partner=is_partner,
            partner_capacity=capacity,
            total_weight=float(np.sum(weights)),
        )
        size_kw = {"size_fixed_cost": size_fixed, "size_capacity": size_capacity}
    return models.two_tier(
        cost,
        link,
        n_ws,
        weights,
        deliveries=params.deliveries_per_workshop,
        time_value=time_value,
        link_value=2.0 * params.delivery_cost_per_min_eur / 60.0,
        **size_kw,
        fixed_cost_office=fixed_cost_eur[sinst.columns["office"]],
        required=np.flatnonzero(np.isin(ws_cols, inst.required)),
        excluded=np.flatnonzero(np.isin(ws_cols, inst.excluded)),
        excluded_offices=np.flatnonzero(np.isin(sinst.columns["office"], inst.excluded)),
        time_limit=sinst.spec.time_limit_s,
        progress=progress,
        should_stop=should_stop,
    )
