"""Frozen result types: what the engine hands to every client.

A :class:`LayoutResult` is the one result of one layout (what :func:`planner.engine.run`
returns): its :class:`ScenarioResult` tables (the proposed sites, each customer's assigned site
and travel time, the KPIs, the optimizer's :class:`~planner.models.Solution`, which says whether
it is proven optimal and its gap, and the provenance needed to reproduce the figures), plus the
annual costs and the site loads. A :class:`Comparison` holds several layouts solved on the same
data, a :class:`Robustness` the sites chosen under changed demand and road speeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import pandas as pd

from planner.models import Solution
from planner.results.costs import CostBreakdown, CostParameters
from planner.results.market import MarketOutcome

SHORTLIST_COLUMNS = [
    "site_id",
    "role",
    "name",
    "lat",
    "lon",
    "customers",
    "demand_share",
    "mean_travel_min",
    "max_travel_min",
    "kind",
    "status",
]
ASSIGNMENT_COLUMNS = ["customer_id", "site_id", "travel_min"]


@dataclass(frozen=True)
class ScenarioResult:
    """The outcome of one solve, ready for maps, tables and exports.

    Attributes
    ----------
    customers
        One row per customer (EPSG:4326): ``customer_id, lat, lon, weight, segment, site_id,
        travel_min, snap_distance_m`` (``site_id`` empty and ``travel_min`` NaN for customers
        left out of the solve; ``excluded_reason`` says why).
    sites
        One row per opened site: the columns of :data:`SHORTLIST_COLUMNS` plus ``kind``,
        ``status`` and ``geometry``.
    kpis
        See :func:`compute_kpis`.
    solution
        The optimizer's answer, including ``optimal``, ``lower_bound`` and ``gap``.
    provenance
        Region, OSM date, data hashes, package and solver versions.
    warnings
        Things the user must see next to the result (customers left out, far snaps...).
    """

    customers: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame
    kpis: Mapping[str, float]
    solution: Solution
    provenance: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def shortlist(self) -> pd.DataFrame:
        """The proposed sites, one row each, with the figures that justify them."""
        columns = SHORTLIST_COLUMNS + [c for c in ("size",) if c in self.sites]
        return pd.DataFrame(self.sites[columns]).reset_index(drop=True)

    def assignments(self) -> pd.DataFrame:
        """Each customer's service point (``site_id``) and travel minutes to it."""
        return pd.DataFrame(self.customers[ASSIGNMENT_COLUMNS]).reset_index(drop=True)

    def kpi_table(self) -> pd.DataFrame:
        """KPIs and solver facts as a two-column table (``kpi``, ``value``)."""
        sol = self.solution
        facts: dict[str, Any] = {
            "sites": int(self.kpis.get("sites", len(self.sites))),
            "objective": sol.objective,
            "lower_bound": sol.lower_bound,
            "gap": sol.gap,
            "proven_optimal": sol.optimal,
            "solver": sol.solver,
            "solve_time_s": sol.solve_time_s,
        }
        rows: list[tuple[str, Any]] = [
            (k, v) for k, v in self.kpis.items() if k not in facts and k != "optimal"
        ]
        rows += list(facts.items())
        return pd.DataFrame(rows, columns=["kpi", "value"])


@dataclass(frozen=True)
class LayoutResult:
    """One solved layout: the result tables plus its costs and loads.

    Attributes
    ----------
    layout
        One of :data:`planner.engine.LAYOUTS`.
    result
        :class:`planner.results.types.ScenarioResult`; its ``kpis`` are the full scenario KPIs of
        :func:`planner.results.kpis.scenario_kpis` and its ``provenance`` the full record.
    costs
        Annual cost split.
    loads
        Jobs, capacity and utilisation per site.
    office_id
        ``site_id`` of the central office (two-tier), else ``None``.
    link_time_s
        One-way office -> workshop seconds per workshop ``site_id`` (two-tier).
    parameters
        The cost parameters used.
    market
        What the plan wins under the market model (jobs won and lost per site and customer,
        expected share, the competitors, the decay used), or ``None`` for a ``min_travel``
        plan.
    """

    layout: str
    result: ScenarioResult
    costs: CostBreakdown
    loads: pd.DataFrame
    office_id: str | None
    link_time_s: Mapping[str, float]
    parameters: CostParameters
    market: MarketOutcome | None = None

    @property
    def kpis(self) -> Mapping[str, float]:
        """Shortcut to ``result.kpis``."""
        return self.result.kpis

    @property
    def warnings(self) -> tuple[str, ...]:
        """Shortcut to ``result.warnings``: what the user must see next to this result."""
        return self.result.warnings

    @property
    def customers(self) -> gpd.GeoDataFrame:
        """Shortcut to ``result.customers``."""
        return self.result.customers

    @property
    def sites(self) -> gpd.GeoDataFrame:
        """Shortcut to ``result.sites``."""
        return self.result.sites

    @property
    def solution(self) -> Solution:
        """Shortcut to ``result.solution``: says whether the answer is proven optimal."""
        return self.result.solution

    @property
    def provenance(self) -> Mapping[str, Any]:
        """Shortcut to ``result.provenance``."""
        return self.result.provenance

    def shortlist(self) -> pd.DataFrame:
        """The proposed sites with the figures that justify them (see ScenarioResult)."""
        return self.result.shortlist()

    def assignments(self) -> pd.DataFrame:
        """Each customer's service point and travel minutes (see ScenarioResult)."""
        return self.result.assignments()

    def kpi_table(self) -> pd.DataFrame:
        """KPIs and solver facts as a two-column table (see ScenarioResult)."""
        return self.result.kpi_table()


@dataclass(frozen=True)
class Comparison:
    """The layouts solved on the same data.

    Attributes
    ----------
    results
        ``{layout: LayoutResult}``.
    table
        One row per layout: ``layout, sites, offices, mean_travel_min, p90_travel_min,
        max_travel_min, share_within_sla, annual_cost, cost_per_job, fixed_eur, fees_eur,
        deliveries_eur, leakage_eur, customer_time_eur, max_utilisation, optimal, gap, solver``.
    site_diff
        One row per site used by any layout: ``site_id, name, kind, lat, lon``, one boolean
        column per layout, ``layouts`` (count) and ``presence`` (``"all"``, ``"only <layout>"``
        or the list of layouts).
    """

    results: Mapping[str, LayoutResult]
    table: pd.DataFrame
    site_diff: pd.DataFrame


@dataclass(frozen=True)
class Robustness:
    """Sites chosen under each case of demand growth and road speed.

    Attributes
    ----------
    cases
        One row per case: ``case, sites (list of site_id), mean_travel_min, p90_travel_min,
        annual_cost, optimal, gap``.
    sites
        One row per site chosen in any case: ``site_id``, one boolean column per case,
        ``chosen_in`` (count) and ``stable`` (chosen in every case).
    """

    cases: pd.DataFrame
    sites: pd.DataFrame

    @property
    def stable_sites(self) -> list[str]:
        """Site ids chosen in every case."""
        return self.sites.loc[self.sites["stable"], "site_id"].tolist()
