"""Sweeps: the same spec solved many times with one thing changed.

The K-curve changes the number of workshops, robustness changes demand per segment and road
speeds. Each case is solved by :func:`planner.engine.solve.solve_layout`, the code behind
:func:`planner.engine.run`, on the prepared instance (so the road graph and matrices are built
once, not once per case).

Every sweep funnels into :func:`solve_cases`: in this process, one case after the other, by
default (no Dask import); on Dask when a scheduler or local workers are configured
(``--scheduler``/``--workers``, ``$PLANNER_SCHEDULER``/``$PLANNER_WORKERS``): the prepared
instance is shipped once per worker, each case is a task, and the results are the ones the
in-process run gives (the solves are deterministic). :func:`slow_down_roads` takes either kind
of road graph (networkx or :class:`~planner.roads.arrays.ArrayGraph`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from planner.engine._progress import (
    ProgressCallback,
    SolveProgressCallback,
    StopCallback,
    log_progress,
    scaled,
)
from planner.engine.instance import ScenarioInstance, office_link_matrix, prepare_instance
from planner.engine.solve import solve_layout
from planner.errors import InputError
from planner.results.costs import CostParameters
from planner.results.tables import comparison_row
from planner.results.types import LayoutResult, Robustness
from planner.roads.arrays import ArrayGraph
from planner.roads.classes import MAIN_ROAD_CLASSES
from planner.roads.network import RoadGraph
from planner.routing.parallel import Backend, backend_from_settings, run_chunks

__all__ = ["k_curve", "robustness", "slow_down_roads", "solve_cases"]

#: One case of a sweep: keyword arguments of :func:`planner.engine.solve.solve_layout`, and
#: optionally ``"sinst"``: a different prepared instance for this case only.
Case = Mapping[str, Any]


def _solve_case(sinst: ScenarioInstance, case: Case, **callbacks: Any) -> LayoutResult:
    """Solve one case (module level: shipped to Dask workers); ``callbacks`` in-process only."""
    options = dict(case)
    return solve_layout(options.pop("sinst", None) or sinst, **options, **callbacks)


def solve_cases(
    sinst: ScenarioInstance,
    cases: Sequence[Case],
    *,
    labels: Sequence[str] | None = None,
    backend: Backend | None = None,
    progress: ProgressCallback | None = None,
    what: str = "cases",
    should_stop: StopCallback | None = None,
    solve_progress: SolveProgressCallback | None = None,
) -> list[LayoutResult]:
    """Solve every case of a sweep on the same prepared instance, where ``backend`` says.

    Parameters
    ----------
    sinst
        The prepared scenario instance (shipped once per Dask worker).
    cases
        Keyword arguments of :func:`planner.engine.solve.solve_layout` per case (``layout``,
        ``workshops``, ``demand_weight``...), optionally with ``"sinst"`` for a case on
        another instance.
    labels
        Progress label per case (in-process runs).
    backend
        Default :func:`planner.routing.parallel.backend_from_settings`: in this process
        unless a Dask scheduler or local workers are configured.
    progress
        ``progress(message, fraction)`` callback.
    what
        Name of the sweep in progress messages.
    should_stop, solve_progress
        Passed to every solve in this process (see :func:`~planner.engine.solve.solve_layout`):
        after a stop, the running solve and each later one end at their first check, with the
        best answer found so far and its proven gap.
        On Dask the cases run to their time limit (a callback does not cross processes).

    Returns
    -------
    list of LayoutResult
        In the order of ``cases``; the same results in this process and on Dask.
    """
    report = progress or log_progress
    backend = backend or backend_from_settings()
    if backend.uses_dask:
        report(f"{what}: {len(cases)} solves on a {backend.describe()}", 0.0)
        return run_chunks(
            _solve_case, sinst, list(cases), backend=backend, progress=report, what=what
        )
    results = []
    n = max(1, len(cases))
    for i, case in enumerate(cases):
        label = labels[i] if labels is not None else f"case {i + 1}/{len(cases)}"
        report(f"{what}: {label}", i / n)
        results.append(
            _solve_case(
                sinst,
                case,
                progress=scaled(report, i / n, (i + 1) / n),
                should_stop=should_stop,
                solve_progress=solve_progress,
            )
        )
    return results


def k_curve(
    sinst: ScenarioInstance,
    k_max: int,
    *,
    layout: str = "in-house",
    k_min: int = 1,
    parameters: CostParameters | None = None,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """Mean travel time and annual cost against the number of workshops, ``k_min..k_max``.

    Returns
    -------
    pandas.DataFrame
        One row per ``workshops``: ``mean_travel_min, p90_travel_min, share_within_sla,
        annual_cost, cost_per_job, fixed_eur, ..., optimal, gap``, plus
        ``saved_min`` (drop of the mean travel minutes against one workshop fewer),
        ``extra_cost`` (rise of the annual cost), ``eur_per_saved_hour`` (extra cost per
        customer round-trip hour saved in a year) and ``pays`` (True when that cost is below
        ``customer_time_eur_per_hour``, i.e. the extra workshop pays for itself in customer
        time; always False when customer time is not valued). The frame's ``attrs["best_k"]``
        is the cheapest ``workshops`` counting customer time.
    """
    report = progress or log_progress
    params = parameters or sinst.spec.parameters
    limit = {
        "in-house": sinst.columns["own"].size,
        "two-tier": sinst.columns["own"].size,
        "outsourced": sinst.columns["partner"].size,
    }[layout]
    k_max = min(int(k_max), limit)
    if k_max < k_min:
        raise InputError(f"k_max must be >= {k_min}; the layout has {limit} candidate sites")
    ks = list(range(k_min, k_max + 1))
    solved = solve_cases(
        sinst,
        [{"layout": layout, "workshops": k, "parameters": params} for k in ks],
        labels=[f"{k} workshops" for k in ks],
        progress=report,
        what="K-curve",
    )
    rows = []
    for k, lr in zip(ks, solved, strict=True):
        row = comparison_row(lr)
        row["workshops"] = k
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame[["workshops", *[c for c in frame.columns if c not in ("workshops", "layout")]]]
    jobs = np.array([r["annual_cost"] / r["cost_per_job"] for r in rows], dtype=float)
    frame["saved_min"] = -frame["mean_travel_min"].diff()
    frame["extra_cost"] = frame["annual_cost"].diff()
    saved_hours = frame["saved_min"].to_numpy(float) * 2.0 / 60.0 * jobs
    with np.errstate(divide="ignore", invalid="ignore"):
        frame["eur_per_saved_hour"] = np.where(
            saved_hours > 0, frame["extra_cost"].to_numpy(float) / saved_hours, np.inf
        )
    frame.loc[frame.index[0], "eur_per_saved_hour"] = np.nan
    value = params.customer_time_eur_per_hour
    frame["pays"] = (frame["eur_per_saved_hour"] < value) & (value > 0)
    # annual_cost includes customer time when it is valued, so this is the trade-off optimum
    frame.attrs["best_k"] = int(frame.loc[frame["annual_cost"].idxmin(), "workshops"])
    frame.attrs["layout"] = layout
    report("K-curve done", 1.0)
    return frame


def slow_down_roads(
    graph: RoadGraph,
    factor: float,
    *,
    highways: Sequence[str] | None = MAIN_ROAD_CLASSES,
) -> RoadGraph:
    """Return a copy of ``graph`` whose travel times on ``highways`` are ``factor`` times longer.

    Parameters
    ----------
    graph
        Road graph with ``travel_time`` (s) on every edge: networkx, or an
        :class:`~planner.roads.arrays.ArrayGraph` (whose edges carry one highway class each:
        the one its speed came from).
    factor
        Multiplier of travel times (1.3 = 30 % slower), > 0.
    highways
        OSM ``highway`` classes to slow down; ``None`` slows every road.
    """
    if not factor > 0:
        raise InputError(f"factor must be > 0, got {factor!r}")
    wanted = None if highways is None else set(highways)
    report = dict(graph.graph.get("planner_report", {}))
    report["slowdown"] = {"factor": factor, "highways": None if wanted is None else sorted(wanted)}
    if isinstance(graph, ArrayGraph):
        names = np.array([wanted is None or name in wanted for name in graph.highway_names])
        slow = names[graph.highway_code] if names.size else np.zeros(0, dtype=bool)
        scale = np.where(slow, factor, 1.0)
        return dataclasses.replace(
            graph,
            travel_time_s=graph.travel_time_s * scale,
            speed_kph=graph.speed_kph / scale,
            graph={**graph.graph, "planner_report": report},
        )
    H = graph.copy()
    for _, _, data in H.edges(data=True):
        hw = data.get("highway")
        classes = set(hw) if isinstance(hw, list) else {hw}
        if wanted is None or classes & wanted:
            data["travel_time"] = float(data["travel_time"]) * factor
            if "speed_kph" in data:
                data["speed_kph"] = float(data["speed_kph"]) / factor
    H.graph["planner_report"] = report
    return H


def robustness(
    sinst: ScenarioInstance,
    *,
    layout: str | None = None,
    workshops: int | str | None = "spec",
    growth: Mapping[str, float] | None = None,
    slowdown: float = 1.3,
    slow_highways: Sequence[str] | None = MAIN_ROAD_CLASSES,
    progress: ProgressCallback | None = None,
) -> Robustness:
    """Re-solve with demand growth per segment and with slower roads; report stable sites.

    Parameters
    ----------
    sinst
        Prepared scenario instance.
    layout, workshops
        What to solve (defaults: the spec's).
    growth
        Relative demand growth per segment, e.g. ``{"business": 0.3}`` (+30 %); one case per
        segment plus one with all of them together. Default ``{"business": 0.3}``.
    slowdown
        Travel-time multiplier on ``slow_highways`` for the slower-roads case (1 = skip).
    slow_highways
        Road classes slowed down; ``None`` for all roads.
    progress
        ``progress(message, fraction)`` callback.
    """
    report = progress or log_progress
    layout = layout or sinst.spec.layout
    growth = {"business": 0.3} if growth is None else dict(growth)
    inst = sinst.instance
    cust = inst.customers
    base_w = cust["weight"].to_numpy(float)
    segments = cust["segment"].astype(str).to_numpy() if "segment" in cust else None

    def weights_for(g: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        w = base_w.copy()
        if segments is not None:
            for seg, rate in g.items():
                w[segments == seg] *= 1.0 + float(rate)
        used = inst.demand_of_customer >= 0
        dw = np.bincount(
            inst.demand_of_customer[used], weights=w[used], minlength=inst.demand_weight.size
        )
        return dw, w

    cases: list[tuple[str, ScenarioInstance, np.ndarray | None, np.ndarray | None]] = [
        ("base", sinst, None, None)
    ]
    for seg, rate in growth.items():
        dw, w = weights_for({seg: rate})
        cases.append((f"{seg} {rate:+.0%}", sinst, dw, w))
    if len(growth) > 1:
        dw, w = weights_for(growth)
        cases.append(("all growth", sinst, dw, w))
    if slowdown != 1.0:
        report("Slowing down roads", 0.1)
        slow_graph = slow_down_roads(sinst.graph, slowdown, highways=slow_highways)
        original = [c for c in cust.columns if c not in ("snap_distance_m", "excluded_reason")]
        slow_inst = prepare_instance(inst.region, cust[original], inst.candidates, graph=slow_graph)
        link = sinst.office_link_s
        if link is not None:
            link = office_link_matrix(slow_graph, slow_inst, sinst.columns["office"])
        slow = dataclasses.replace(sinst, instance=slow_inst, office_link_s=link)
        label = "main roads" if slow_highways is not None else "all roads"
        cases.append((f"{label} {slowdown - 1:+.0%} time", slow, None, None))

    solved = solve_cases(
        sinst,
        [
            {
                "layout": layout,
                "workshops": workshops,
                "demand_weight": case_dw,
                "customer_weight": case_w,
                **({"sinst": case_inst} if case_inst is not sinst else {}),
            }
            for _, case_inst, case_dw, case_w in cases
        ],
        labels=[c[0] for c in cases],
        progress=scaled(report, 0.2, 1.0),
        what="Robustness",
    )
    rows = []
    chosen: dict[str, set[str]] = {}
    for (label, *_), lr in zip(cases, solved, strict=True):
        ids = lr.result.sites["site_id"].astype(str).tolist()
        chosen[label] = set(ids)
        rows.append(
            {
                "case": label,
                "sites": sorted(ids),
                "mean_travel_min": lr.kpis["mean_travel_min"],
                "p90_travel_min": lr.kpis["p90_travel_min"],
                "annual_cost": lr.costs.total_eur,
                "optimal": bool(lr.result.solution.optimal),
                "gap": float(lr.result.solution.gap),
            }
        )
    all_ids = sorted(set().union(*chosen.values()))
    sites = pd.DataFrame({"site_id": all_ids})
    for label, ids_in_case in chosen.items():
        sites[label] = [s in ids_in_case for s in all_ids]
    sites["chosen_in"] = sites[list(chosen)].sum(axis=1).astype(int)
    sites["stable"] = sites["chosen_in"] == len(chosen)
    sites = sites.sort_values(["chosen_in", "site_id"], ascending=[False, True])
    report("Robustness done", 1.0)
    return Robustness(cases=pd.DataFrame(rows), sites=sites.reset_index(drop=True))
