"""Frozen result objects and the service KPIs computed from them.

A :class:`ScenarioResult` is what every solve hands to the clients (app, CLI, notebooks,
exports): the proposed sites, each customer's assigned site and travel time, the KPIs, the
optimizer's :class:`~planner.models.Solution` (which says whether it is proven optimal and its
gap), and the provenance needed to reproduce the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.models import Solution

#: Thresholds (minutes) for which ``compute_kpis`` reports the share of demand served within.
DEFAULT_THRESHOLDS_MIN: tuple[float, ...] = (15.0, 30.0)

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
]
ASSIGNMENT_COLUMNS = ["customer_id", "site_id", "travel_min"]


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Return the weighted ``q``-quantile of ``values`` (lower value at ties).

    The result is the smallest value ``v`` such that the weight of values ``<= v`` is at least
    ``q`` times the total weight: for 90 % of the demand the travel time is at most ``v``.
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    if values.size == 0 or weights.sum() <= 0:
        return float("nan")
    order = np.argsort(values, kind="stable")
    cum = np.cumsum(weights[order])
    k = int(np.searchsorted(cum, q * cum[-1] - 1e-12 * cum[-1], side="left"))
    return float(values[order][min(k, values.size - 1)])


def compute_kpis(
    travel_min: np.ndarray,
    weights: np.ndarray,
    *,
    thresholds_min: tuple[float, ...] = DEFAULT_THRESHOLDS_MIN,
) -> dict[str, float]:
    """Demand-weighted service KPIs of one assignment.

    Parameters
    ----------
    travel_min
        Travel minutes of each customer to its assigned site; ``inf`` or ``nan`` for customers
        that are not served (unreachable, or left out of the solve).
    weights
        Demand of each customer (jobs per year).
    thresholds_min
        Report ``share_within_{t}_min`` for each threshold, as a share of *all* demand.

    Returns
    -------
    dict
        ``mean_travel_min``, ``p90_travel_min``, ``max_travel_min`` over served demand,
        ``share_within_{t}_min`` for each threshold, ``served_demand_share``, ``total_demand``,
        ``customers``.
    """
    t = np.asarray(travel_min, dtype=float)
    w = np.asarray(weights, dtype=float)
    if t.shape != w.shape:
        raise ValueError(f"travel_min has shape {t.shape} but weights has shape {w.shape}")
    served = np.isfinite(t)
    total = float(w.sum())
    ws, ts = w[served], t[served]
    kpis: dict[str, float] = {
        "customers": float(t.size),
        "total_demand": total,
        "served_demand_share": float(ws.sum() / total) if total > 0 else float("nan"),
        "mean_travel_min": float(np.average(ts, weights=ws)) if ws.sum() > 0 else float("nan"),
        "p90_travel_min": weighted_quantile(ts, ws, 0.9),
        "max_travel_min": float(ts.max()) if ts.size else float("nan"),
    }
    for thr in thresholds_min:
        within = float(w[served & (t <= thr)].sum())
        kpis[f"share_within_{thr:g}_min"] = within / total if total > 0 else float("nan")
    return kpis


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
        return pd.DataFrame(self.sites[SHORTLIST_COLUMNS]).reset_index(drop=True)

    def assignments(self) -> pd.DataFrame:
        """Each customer's service point (``site_id``) and travel minutes to it."""
        return pd.DataFrame(self.customers[ASSIGNMENT_COLUMNS]).reset_index(drop=True)

    def kpi_table(self) -> pd.DataFrame:
        """KPIs and solver facts as a two-column table (``kpi``, ``value``)."""
        rows: list[tuple[str, Any]] = [(k, v) for k, v in self.kpis.items()]
        sol = self.solution
        rows += [
            ("sites", len(self.sites)),
            ("objective", sol.objective),
            ("lower_bound", sol.lower_bound),
            ("gap", sol.gap),
            ("proven_optimal", sol.optimal),
            ("solver", sol.solver),
            ("solve_time_s", sol.solve_time_s),
        ]
        return pd.DataFrame(rows, columns=["kpi", "value"])
