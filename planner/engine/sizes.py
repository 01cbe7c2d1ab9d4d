"""Sized workshops: the in-house and two-tier layouts choosing sites and sizes together.

A scenario's ``sizes`` (:class:`~planner.engine.spec.WorkshopSize`: name, yearly fixed cost,
capacity in jobs) are the sizes an own workshop may open in; a site file's ``sizes`` column
limits a site to some of them (names, comma-separated; empty = all). The model is
:func:`planner.models.sized_fixed_charge` on money per year (fixed costs of the chosen sizes
plus the value of customer time), with exactly ``workshops`` sites or, for ``"auto"``, as many
as pay. The result's sites carry ``size``, and the size's capacity and fixed cost as their own
``capacity_jobs`` and ``fixed_cost_eur`` (sources ``"size"``), which the costs, loads and
shortlist use. A size's fixed cost is the whole yearly cost of a workshop of that size, and
its capacity replaces the site's: a site file's ``fixed_cost`` and ``capacity`` do not apply
to sized workshops.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from planner import models
from planner.engine._progress import SolveWatch, StopCallback
from planner.engine.instance import ScenarioInstance
from planner.engine.spec import WorkshopSize
from planner.errors import InfeasibleError, InputError
from planner.models import Solution
from planner.results.costs import CostParameters
from planner.results.types import ScenarioResult

__all__ = [
    "DEFAULT_SIZE_TECHNICIANS",
    "allowed_sizes",
    "default_sizes",
    "site_sizes_warnings",
    "size_tables",
    "solve_sized",
    "with_sizes",
]

#: Technicians of the sizes offered when the user gives none (small, medium, large).
DEFAULT_SIZE_TECHNICIANS: tuple[int, ...] = (2, 4, 6)


def allowed_sizes(candidates: pd.DataFrame, sizes: Sequence[WorkshopSize]) -> np.ndarray:
    """(candidates x sizes) bool: the sizes each candidate allows (its ``sizes`` column).

    Raises
    ------
    InputError
        A site names a size the scenario does not define (the message names the site, the
        unknown size and the defined ones).
    """
    names = [size.name for size in sizes]
    mask = np.ones((len(candidates), len(sizes)), dtype=bool)
    if "sizes" not in candidates:
        return mask
    lookup = {name.casefold(): k for k, name in enumerate(names)}
    ids = candidates["site_id"].astype(str).to_numpy()
    for i, value in enumerate(candidates["sizes"].to_numpy(dtype=object)):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        wanted = [part.strip() for part in str(value).split(",") if part.strip()]
        if not wanted:
            continue
        unknown = [part for part in wanted if part.casefold() not in lookup]
        if unknown:
            raise InputError(
                f"site {ids[i]}: unknown size(s) {unknown} in the sizes column; the scenario "
                f"defines {names}. Write some of these names, comma-separated, or leave it "
                "empty for all",
                field="sizes",
            )
        mask[i] = False
        mask[i, [lookup[part.casefold()] for part in wanted]] = True
    return mask


def solve_sized(
    sinst: ScenarioInstance,
    cols: np.ndarray,
    *,
    workshops: int | None,
    params: CostParameters,
    weights: np.ndarray,
    time_value: float,
    progress: SolveWatch | None = None,
    should_stop: StopCallback | None = None,
) -> Solution:
    """Solve the sized model over candidate columns ``cols`` (indices into ``cols``, as
    ``_solve_columns`` returns them); ``extras["size"]`` maps open columns to size indices."""
    spec = sinst.spec
    sizes = spec.sizes
    if time_value <= 0:
        raise InputError(
            "sizes let the model trade each size's fixed cost against customer time, so "
            "customer_time_eur_per_hour must be > 0; set it in the parameters",
            field="sizes",
        )
    inst = sinst.instance
    mask = allowed_sizes(inst.candidates.iloc[cols], sizes)
    per_weight = params.jobs_per_weight if params.jobs_per_weight > 0 else 1.0
    fixed = np.array([size.fixed_cost_eur for size in sizes], dtype=float)
    capacity = np.array([size.capacity_jobs for size in sizes], dtype=float) / per_weight
    required = np.flatnonzero(np.isin(cols, inst.required))
    excluded = np.flatnonzero(np.isin(cols, inst.excluded))
    p = None
    if workshops is not None:
        p = min(int(workshops), cols.size - excluded.size)
        if p < 1:
            raise InfeasibleError("no usable candidate sites for this layout")
    return models.sized_fixed_charge(
        inst.cost_s[:, cols],
        np.tile(fixed, (cols.size, 1)),
        np.tile(capacity, (cols.size, 1)),
        weights,
        time_value=time_value,
        p=p,
        allowed_sizes=mask,
        required=required,
        excluded=excluded,
        time_limit=spec.time_limit_s,
        progress=progress,
        should_stop=should_stop,
    )


def size_tables(
    candidates: pd.DataFrame,
    sizes: Sequence[WorkshopSize],
    params: CostParameters,
    *,
    partner: np.ndarray | None = None,
    partner_capacity: np.ndarray | None = None,
    total_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(candidates x sizes) fixed costs (``np.inf`` where the site does not allow the size)
    and capacities (weight units) of the sized models.

    Rows flagged in ``partner`` are partner shops: they have no sizes of their own, so their
    first column is their own capacity (``partner_capacity``, weight units; None: room for
    ``total_weight``, i.e. all) at no fixed cost and the other columns are not allowed.
    """
    mask = allowed_sizes(candidates, sizes)
    per_weight = params.jobs_per_weight if params.jobs_per_weight > 0 else 1.0
    fixed = np.where(mask, [size.fixed_cost_eur for size in sizes], np.inf)
    capacity = np.tile(
        np.array([size.capacity_jobs for size in sizes], dtype=float) / per_weight,
        (len(candidates), 1),
    )
    if partner is not None and np.any(partner):
        rows = np.flatnonzero(partner)
        fixed[rows] = np.inf
        fixed[rows, 0] = 0.0
        room = (
            np.full(len(candidates), float(total_weight))
            if partner_capacity is None
            else np.asarray(partner_capacity, dtype=float)
        )
        capacity[rows] = 0.0
        capacity[rows, 0] = room[rows]
    return fixed, capacity


def with_sizes(
    result: ScenarioResult,
    solution: Solution,
    candidates: pd.DataFrame,
    sizes: Sequence[WorkshopSize],
) -> ScenarioResult:
    """``result`` with each sized site's ``size`` and, as its own figures, the size's capacity
    (``capacity_jobs``) and fixed cost (``fixed_cost_eur``), sources ``"size"``
    (``solution.extras["size"]`` over full candidate columns)."""
    chosen: dict[Any, int] = solution.extras.get("size", {})
    ids = candidates["site_id"].astype(str).to_numpy()
    by_id = {ids[int(j)]: sizes[int(s)] for j, s in chosen.items()}
    sites = result.sites.copy()
    sid = sites["site_id"].astype(str)
    sized = sid.isin(list(by_id)).to_numpy()
    sites["size"] = [by_id[x].name if x in by_id else None for x in sid]
    for column, value, source in (
        ("capacity_jobs", lambda size: size.capacity_jobs, "capacity_source"),
        ("fixed_cost_eur", lambda size: size.fixed_cost_eur, "fixed_cost_source"),
    ):
        if column not in sites:
            sites[column] = np.nan
        if source not in sites:
            sites[source] = None
        sites[column] = sites[column].astype(float)
        sites.loc[sized, column] = [value(by_id[x]) for x in sid[sized]]
        sites[source] = sites[source].astype(object)
        sites.loc[sized, source] = "size"
    return dataclasses.replace(result, sites=sites)


def site_sizes_warnings(candidates: pd.DataFrame, sizes: Sequence[WorkshopSize]) -> tuple[str, ...]:
    """A warning when the sites file limits sizes but the scenario has none to choose from."""
    if sizes or "sizes" not in candidates:
        return ()
    n = int(
        sum(
            isinstance(v, str) and bool(v.strip(" ,"))
            for v in candidates["sizes"].to_numpy(dtype=object)
        )
    )
    if not n:
        return ()
    return (
        f"{n} site(s) of the site list name allowed sizes, but the scenario has no sizes to "
        "choose from; each site is planned with its own fixed_cost and capacity",
    )


def default_sizes(
    params: CostParameters, technicians: Sequence[int] = DEFAULT_SIZE_TECHNICIANS
) -> tuple[WorkshopSize, ...]:
    """Workshop sizes from the Costs page's figures, one per number of ``technicians``.

    A size with ``t`` technicians costs the in-house workshop's fixed cost with ``t``
    technicians (rent + ``t`` x salary + receptionist + parts store) and does ``t`` x jobs per
    technician a year: with the defaults, 2 / 4 / 6 technicians cost 193,000 / 283,000 /
    373,000 EUR and do 2,000 / 4,000 / 6,000 jobs a year.
    """
    out = []
    for t in technicians:
        p = params.replace(technicians_per_workshop=float(t))
        out.append(
            WorkshopSize(
                name=f"{t} technicians",
                fixed_cost_eur=p.workshop_fixed_cost_eur(layout="in-house"),
                capacity_jobs=p.workshop_capacity_jobs,
                technicians=float(t),
            )
        )
    return tuple(out)
