"""Phased plan: a spec, a job history and workshops per year in, a :class:`PhasedPlan` out.

``plan_phases`` is a front door over the one engine instance: :func:`prepare_scenario` loads
the graph, the register customers, the candidate sites and the matrix exactly as
:func:`planner.engine.run` does; the forecast of each customer's yearly jobs
(:func:`planner.register.forecast_jobs`) is the demand weight of each year; the
multi-period p-median (:func:`planner.models.multi_period.multi_period_p_median`) chooses
which own workshop sites open in which year (once open, always open, proven gap); and the
stability rule (:mod:`planner.register.stability`) assigns customers year by year, moving a
customer only when it gains at least ``min_gain_min`` minutes.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from planner.engine._progress import ProgressCallback, log_progress, scaled
from planner.engine.instance import (
    InputArg,
    ScenarioInstance,
    load_customers,
    load_graph,
    prepare_scenario,
)
from planner.engine.spec import ScenarioSpec
from planner.errors import InputError
from planner.inputs.jobs import read_jobs
from planner.inputs.tables import TableSource, source_name
from planner.models.multi_period import multi_period_p_median
from planner.register.forecast import forecast_jobs
from planner.register.stability import DEFAULT_MIN_GAIN_MIN, MOVE_COLUMNS, stable_assignment
from planner.register.store import JobSource, RegisterStore
from planner.results.phases import PHASES_COLUMNS, SUMMARY_COLUMNS, PhasedPlan
from planner.results.site_figures import site_figures

logger = logging.getLogger(__name__)

__all__ = ["load_jobs", "plan_phases", "workshops_from_budget"]


def workshops_from_budget(
    budget_per_year_eur: Sequence[float],
    *,
    spec: ScenarioSpec,
    site_fixed_cost_eur: Sequence[float] | np.ndarray | None = None,
) -> list[int]:
    """Workshops each year's budget pays for.

    Without ``site_fixed_cost_eur``: ``floor(budget / workshop fixed cost)``, the fixed cost
    of one own workshop from ``spec.parameters`` (in-house layout). With each candidate's own
    yearly fixed cost (:func:`planner.results.site_figures.site_figures`): as many as the
    cheapest candidates fit (no set of more workshops can fit).
    """
    fixed = spec.parameters.workshop_fixed_cost_eur(layout="in-house")
    if site_fixed_cost_eur is not None:
        cum = np.cumsum(np.sort(np.asarray(site_fixed_cost_eur, dtype=float)))
        out = [
            int(np.searchsorted(cum, float(b) * (1 + 1e-12), side="right"))
            for b in budget_per_year_eur
        ]
        fixed = float(cum[0]) if cum.size else fixed
    else:
        if fixed <= 0:
            raise InputError(
                "the workshop fixed cost is 0, so a budget sets no limit", field="budget"
            )
        out = [math.floor(float(b) / fixed + 1e-9) for b in budget_per_year_eur]
    if any(k < 1 for k in out):
        raise InputError(
            f"a yearly budget below one workshop's fixed cost ({fixed:,.0f} EUR) pays for no "
            f"workshop: budgets {list(budget_per_year_eur)}",
            field="budget",
        )
    return out


def load_jobs(
    jobs: JobSource | TableSource, customers: pd.DataFrame
) -> tuple[JobSource, tuple[str, ...]]:
    """Valid jobs of a history (a frame or the stored register used as is, or a file
    validated against the customers)."""
    if isinstance(jobs, pd.DataFrame | RegisterStore):
        return jobs, ()
    table = read_jobs(jobs, customer_ids=customers["customer_id"].astype(str))
    if table.report.fatal:
        raise InputError(str(table.report), file=source_name(jobs))
    n_bad = len(table.report.error_rows)
    warnings: tuple[str, ...] = ()
    if n_bad:
        warnings = (
            f"{n_bad:,} job rows of {source_name(jobs)} have problems and were left out; "
            f"{table.report.summary()}",
        )
    return table.valid, warnings


def _previous_sites(
    previous: Mapping[str, str] | pd.DataFrame | None, customer_ids: Sequence[str]
) -> list[str | None] | None:
    if previous is None:
        return None
    if isinstance(previous, pd.DataFrame):
        previous = dict(
            zip(
                previous["customer_id"].astype(str),
                previous["site_id"].astype(str),
                strict=True,
            )
        )
    known = {str(k): str(v) for k, v in previous.items()}
    return [known.get(str(c)) for c in customer_ids]


def plan_phases(
    spec: ScenarioSpec,
    workshops_per_year: Sequence[int] | None = None,
    *,
    jobs: JobSource | TableSource,
    customers: InputArg | None = None,
    sites: InputArg | None = None,
    budget_per_year_eur: Sequence[float] | None = None,
    forecast: pd.DataFrame | None = None,
    as_of: str | pd.Timestamp | None = None,
    min_gain_min: float = DEFAULT_MIN_GAIN_MIN,
    previous_assignment: Mapping[str, str] | pd.DataFrame | None = None,
    graph: nx.MultiDiGraph | None = None,
    sinst: ScenarioInstance | None = None,
    progress: ProgressCallback | None = None,
) -> PhasedPlan:
    """Choose which own workshop sites open in which year, and assign customers stably.

    Parameters
    ----------
    spec
        The scenario (region, sites, costs, time limit); its layout is taken as in-house and
        its objective as the least drive time (a warning says so when they differ).
    workshops_per_year
        Workshops open in years 1..N (non-decreasing), e.g. ``[3, 4, 5]``.
    jobs
        Job history: valid jobs (a frame with ``customer_id``, ``date``) or a file, validated
        against the register (rows with problems left out with a warning).
    customers
        The register: a validated frame or a file; default ``spec.customers`` (or the demo).
    sites
        Candidate sites instead of ``spec.sites`` (a validated frame or a file).
    budget_per_year_eur
        Instead of ``workshops_per_year``: a budget per year; each pays for
        :func:`workshops_from_budget` workshops.
    forecast
        A ready forecast (:func:`planner.register.forecast_jobs`); default: computed from
        ``jobs`` for N years.
    as_of
        End of the job history window.
    min_gain_min
        Minutes a customer must gain to change site (see :mod:`planner.register.stability`).
    previous_assignment
        Sites customers had before year 1: ``{customer_id: site_id}`` or a frame with those
        columns; respected by the stability rule.
    graph, sinst
        A loaded graph, or a prepared in-house instance of the same spec, to reuse.
    progress
        ``progress(message, fraction)`` callback.
    """
    report = progress or log_progress
    unused = [
        f"{name} {value!r}"
        for name, value, used in (
            ("layout", spec.layout, "in-house"),
            ("objective", spec.objective, "min_travel"),
        )
        if value != used
    ]
    notes: tuple[str, ...] = ()
    if unused:
        notes = (
            f"the phased plan opens our own workshops for the least drive time (a multi-period "
            f"p-median); the scenario's {' and '.join(unused)} "
            f"{'is' if len(unused) == 1 else 'are'} not used here",
        )
    spec = spec.replace(layout="in-house", objective="min_travel", target_share=None)
    if (workshops_per_year is None) == (budget_per_year_eur is None):
        raise InputError("give either workshops per year or a budget per year", field="workshops")
    if workshops_per_year is None:
        # checked now; counted again below with each site's own fixed cost
        workshops_per_year = workshops_from_budget(budget_per_year_eur or [], spec=spec)
    p = [int(k) for k in workshops_per_year]
    if not 1 <= len(p) <= 5:
        raise InputError(f"plan 1 to 5 years, got {len(p)}", field="workshops")
    if sinst is None:
        if graph is None:
            report(f"Loading the road network of {spec.region}", 0.02)
            graph = load_graph(spec, customers=customers)  # trimmed around them
        source = spec.customers if customers is None else customers
        register, warnings = load_customers(
            source, spec.region, graph=graph, crs=spec.crs, seed=spec.seed
        )
        sinst = prepare_scenario(
            spec,
            graph=graph,
            customers=register,
            sites=sites,
            progress=scaled(report, 0.0, 0.4),
        )
        sinst_warnings = warnings + sinst.warnings
    else:
        sinst_warnings = sinst.warnings
    inst = sinst.instance
    customers_frame: gpd.GeoDataFrame = inst.customers
    valid_jobs, job_warnings = load_jobs(jobs, customers_frame)
    if forecast is None:
        report("Forecasting each customer's jobs", 0.45)
        forecast = forecast_jobs(valid_jobs, customers_frame, years=len(p), as_of=as_of)
    ids = customers_frame["customer_id"].astype(str).to_numpy()
    d_of_c = inst.demand_of_customer
    used = d_of_c >= 0
    n_points = inst.cost_s.shape[0]
    jobs_cy = np.zeros((len(p), len(ids)))
    for t in range(len(p)):
        year = forecast[forecast["year"] == t + 1]
        jobs_cy[t] = (
            pd.Series(ids)
            .map(pd.Series(year["jobs"].to_numpy(float), index=year["customer_id"].astype(str)))
            .fillna(0.0)
        )
    weights = np.vstack(
        [
            np.bincount(d_of_c[used], weights=jobs_cy[t, used], minlength=n_points)
            for t in range(len(p))
        ]
    )
    cols = np.asarray(sinst.columns["own"], dtype=np.int64)
    cost = inst.cost_s[:, cols]
    # each own site's yearly fixed cost: its own rent from the sites file, else the default
    site_fixed = site_figures(inst.candidates.iloc[cols], spec.parameters)[
        "fixed_cost_eur"
    ].to_numpy(float)
    if budget_per_year_eur is not None:
        usable = ~np.isin(cols, inst.excluded)
        p = workshops_from_budget(
            budget_per_year_eur, spec=spec, site_fixed_cost_eur=site_fixed[usable]
        )
    required = np.flatnonzero(np.isin(cols, inst.required))
    excluded = np.flatnonzero(np.isin(cols, inst.excluded))
    report(f"Choosing sites for {len(p)} years", 0.5)
    sol = multi_period_p_median(
        cost, p, weights, required=required, excluded=excluded, time_limit=spec.time_limit_s
    )

    cands = inst.candidates.iloc[cols].reset_index(drop=True)
    site_ids = cands["site_id"].astype(str).to_numpy()
    phase_rows = []
    for t, open_cols in enumerate(sol.open_per_period):
        for j in open_cols:
            phase_rows.append(
                {
                    "year": t + 1,
                    "site_id": site_ids[j],
                    "lat": float(cands["lat"].iloc[j]),
                    "lon": float(cands["lon"].iloc[j]),
                    "action": "open" if sol.open_year[j] == t + 1 else "keep",
                    "name": str(cands["name"].iloc[j] or "") if "name" in cands else "",
                }
            )
    travel_min = np.full((len(ids), cols.size), np.nan)
    offset = inst.access_offset_s if inst.access_offset_s is not None else np.zeros(len(ids))
    travel_min[used] = (cost[d_of_c[used]] + offset[used, None]) / 60.0
    previous = _previous_sites(previous_assignment, ids)
    moves_frames = []
    assignment_frames = []
    summary_rows = []
    for t, open_cols in enumerate(sol.open_per_period):
        site, moves = stable_assignment(
            travel_min,
            site_ids,
            open_cols,
            ids,
            previous=previous,
            min_gain_min=min_gain_min,
            year=t + 1,
        )
        col_of = {s: j for j, s in enumerate(site_ids)}
        minutes = np.array(
            [travel_min[i, col_of[s]] if s else np.nan for i, s in enumerate(site)], dtype=float
        )
        moves_frames.append(moves)
        assignment_frames.append(
            pd.DataFrame(
                {
                    "year": t + 1,
                    "customer_id": ids,
                    "site_id": site,
                    "travel_min": minutes,
                    "jobs": jobs_cy[t],
                }
            )
        )
        ok = np.isfinite(minutes) & (jobs_cy[t] > 0)
        mean = float(np.average(minutes[ok], weights=jobs_cy[t, ok])) if ok.any() else float("nan")
        summary_rows.append(
            {
                "year": t + 1,
                "workshops": int(open_cols.size),
                "mean_travel_min": mean,
                "objective": float(sol.period_objective[t]) / 60.0,
                "gap": sol.gap,
                "objective_if_replanned": float(sol.replanned_objective[t]) / 60.0,
                "jobs": float(jobs_cy[t].sum()),
                "moves": len(moves),
                "optimal": sol.optimal,
                "fixed_cost_eur": float(site_fixed[open_cols].sum()),
            }
        )
        if budget_per_year_eur is not None:
            budget = float(list(budget_per_year_eur)[t])
            if site_fixed[open_cols].sum() > budget * (1 + 1e-9):
                job_warnings += (
                    f"year {t + 1}: the {open_cols.size} sites chosen for the least travel "
                    f"cost {site_fixed[open_cols].sum():,.0f} EUR a year, above the budget of "
                    f"{budget:,.0f} EUR (the multi-period model counts workshops, not each "
                    "site's own rent)",
                )
        previous = [s if s else None for s in site]
    report("Phased plan done", 1.0)
    return PhasedPlan(
        phases=pd.DataFrame(phase_rows, columns=list(PHASES_COLUMNS)),
        moves=pd.concat(moves_frames, ignore_index=True).reindex(columns=list(MOVE_COLUMNS)),
        summary=pd.DataFrame(summary_rows, columns=list(SUMMARY_COLUMNS)),
        assignments=pd.concat(assignment_frames, ignore_index=True),
        forecast=forecast,
        solution=sol,
        warnings=notes + tuple(sinst_warnings) + job_warnings,
    )
