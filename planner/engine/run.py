"""The front door of the engine: a spec in, a result out.

:func:`run` is the ONE function that turns a :class:`~planner.engine.spec.ScenarioSpec` into a
:class:`~planner.results.types.LayoutResult`; :func:`compare` solves several layouts of the same
spec on the same prepared data. ``planner run`` (flags or a TOML file), ``planner compare``,
every app page and the notebooks build a spec and call these two. :func:`plan_workshops` is a
convenience that builds an in-house spec and calls :func:`run`.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import networkx as nx
import pandas as pd

from planner.engine._progress import (
    ProgressCallback,
    SolveProgressCallback,
    StopCallback,
    log_progress,
    scaled,
)
from planner.engine.instance import InputArg, ScenarioInstance, prepare_scenario
from planner.engine.solve import solve_layout
from planner.engine.spec import LAYOUTS, ScenarioSpec, load_scenario
from planner.engine.sweeps import solve_cases
from planner.results.tables import comparison_columns, comparison_row, diff_sites
from planner.results.types import Comparison, LayoutResult
from planner.settings import DEFAULT_REGION, DEFAULT_WORKSHOPS

__all__ = ["compare", "plan_workshops", "run"]


def run(
    spec: ScenarioSpec | str | os.PathLike[str],
    *,
    graph: nx.MultiDiGraph | None = None,
    customers: InputArg | None = None,
    sites: InputArg | None = None,
    sinst: ScenarioInstance | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    solve_progress: SolveProgressCallback | None = None,
) -> LayoutResult:
    """Solve the question a spec asks: its layout with its number of workshops.

    Parameters
    ----------
    spec
        The scenario, or the path of its TOML file.
    graph, customers, sites
        Inputs to use instead of the spec's region, customer file and site file: a loaded
        graph, validated tables or uploaded files (see
        :func:`planner.engine.instance.prepare_scenario`).
    sinst
        A prepared instance to reuse (for example from a comparison on the same data); it
        must have been prepared from a spec with the same region, customers and sites. The
        question asked of it (layout, workshops, costs...) is ``spec``'s.
    progress
        ``progress(message, fraction)`` callback; while solving, its messages carry the
        current bound, the best answer and the gap.
    should_stop
        Polled during the solve: True ends it with the best answer so far, marked not optimal
        with its proven gap (see :func:`planner.engine.solve.solve_layout`).
    solve_progress
        Receives every :class:`~planner.models.SolveProgress` report of the solve.

    Returns
    -------
    LayoutResult
        Sites, assignments, KPIs, costs, loads, provenance and every input warning.
    """
    if not isinstance(spec, ScenarioSpec):
        spec = load_scenario(spec)
    report = progress or log_progress
    if sinst is None:
        sinst = prepare_scenario(
            spec, graph=graph, customers=customers, sites=sites, progress=scaled(report, 0, 0.5)
        )
    else:
        sinst = dataclasses.replace(sinst, spec=spec)
    return solve_layout(
        sinst,
        spec.layout,
        progress=scaled(report, 0.5, 1.0),
        should_stop=should_stop,
        solve_progress=solve_progress,
    )


def compare(
    spec: ScenarioSpec | str | os.PathLike[str],
    *,
    layouts: Sequence[str] = LAYOUTS,
    graph: nx.MultiDiGraph | None = None,
    customers: InputArg | None = None,
    sites: InputArg | None = None,
    sinst: ScenarioInstance | None = None,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Comparison:
    """Solve ``layouts`` on the same customers, candidates and road network and compare them.

    Each layout is the spec with its ``layout`` changed, solved by the same code as
    :func:`run`, so the in-house row of a comparison is exactly ``run(spec)`` for an in-house
    spec.

    Parameters
    ----------
    spec
        The scenario (its ``layout`` is ignored), or the path of its TOML file.
    layouts
        Which layouts (default all three).
    graph, customers, sites, sinst
        As for :func:`run`; ``sinst`` must have been prepared for these layouts.
    progress
        ``progress(message, fraction)`` callback (with bound and gap while solving).
    should_stop
        As for :func:`run`: once it returns True, the layout being solved ends with its best
        answer so far, and the layouts after it are solved to their first answer only.
    """
    if not isinstance(spec, ScenarioSpec):
        spec = load_scenario(spec)
    report = progress or log_progress
    layouts = list(layouts)
    if sinst is None:
        sinst = prepare_scenario(
            spec,
            layouts=layouts,
            graph=graph,
            customers=customers,
            sites=sites,
            progress=scaled(report, 0, 0.4),
        )
    else:
        sinst = dataclasses.replace(sinst, spec=spec)
    solved = solve_cases(
        sinst,
        [{"layout": layout} for layout in layouts],
        labels=layouts,
        progress=scaled(report, 0.4, 1.0),
        what="Layouts",
        should_stop=should_stop,
    )
    results: dict[str, LayoutResult] = dict(zip(layouts, solved, strict=True))
    rows = [comparison_row(r) for r in results.values()]
    table = pd.DataFrame(rows, columns=comparison_columns(rows))
    return Comparison(results=results, table=table, site_diff=diff_sites(results))


def plan_workshops(
    region: str = DEFAULT_REGION,
    workshops: int = DEFAULT_WORKSHOPS,
    customers: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    sites: gpd.GeoDataFrame | str | os.PathLike[str] | None = None,
    *,
    graph: nx.MultiDiGraph | None = None,
    progress: ProgressCallback | None = None,
    **options: object,
) -> LayoutResult:
    """Propose ``workshops`` in-house workshops: :func:`run` on an in-house spec.

    Parameters
    ----------
    region
        A bundled region name (``"malta"``, ``"liechtenstein"``, ``"andorra"``) or a road file.
    workshops
        Number of workshops to open (p of the p-median).
    customers, sites
        ``None`` (demo customers; generated candidates), a file path, or a GeoDataFrame.
    graph
        A loaded road graph to reuse.
    options
        Any other :class:`~planner.engine.spec.ScenarioSpec` field (``time_limit_s``,
        ``n_candidates``, ``crs``, ``seed``...).
    """
    frames: dict[str, gpd.GeoDataFrame] = {}
    files: dict[str, Path] = {}
    for key, value in (("customers", customers), ("sites", sites)):
        if isinstance(value, gpd.GeoDataFrame):
            frames[key] = value
        elif value is not None:
            files[key] = Path(value)
    spec = ScenarioSpec(
        name=f"{region} in-house",
        region=str(region),
        layout="in-house",
        workshops=workshops,
        **files,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )
    return run(spec, graph=graph, progress=progress, **frames)
