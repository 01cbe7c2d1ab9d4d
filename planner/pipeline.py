"""The one code path from a region and its customers to a :class:`~planner.results.ScenarioResult`.

``region -> road graph -> customers and candidates snapped -> travel-time matrix -> model ->
result``. :func:`prepare_instance` does everything up to the matrix, :func:`build_result` turns a
model's :class:`~planner.models.Solution` back into per-customer and per-site tables, and
:func:`plan_workshops` is the walking-skeleton entry point used by the CLI and the app: the
bundled demo customers, generated candidate sites and an exact p-median.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from os import PathLike
from typing import Any, TypeAlias

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from planner import __version__
from planner.errors import InputError
from planner.matrix import snapped_travel_time_matrix
from planner.models import Solution, p_median
from planner.network import load_region
from planner.results import ScenarioResult, compute_kpis
from planner.snapping import SnappedPoints, snap_points

logger = logging.getLogger(__name__)

#: Number of candidate workshop sites generated when the user gives none.
DEFAULT_CANDIDATES = 60

CustomersArg: TypeAlias = gpd.GeoDataFrame | str | PathLike[str] | None
ProgressCallback = Callable[[str, float], None]


@dataclass(frozen=True)
class Instance:
    """A solvable instance: customers and candidates on one road graph, with the cost matrix.

    Customers that snap to the same network position are aggregated into one demand point
    (weights summed); ``demand_of_customer`` maps each customer row to its demand point, or -1
    when the customer was left out of the solve (see ``customers['excluded_reason']``).

    Attributes
    ----------
    region
        Region name or path the graph came from.
    graph
        Road graph (osmnx MultiDiGraph, edges carry ``travel_time`` in seconds).
    customers, candidates
        Input tables (EPSG:4326) with ``customer_id`` / ``site_id`` columns.
    customer_snap, candidate_snap
        Where each point meets the road network.
    demand_of_customer
        Demand point index per customer row (-1 when left out).
    demand_weight
        Summed weight of each demand point.
    access_offset_s
        Per customer: its own access time to the road minus that of its demand point's
        representative. A customer's travel time to a site is its demand point's cost plus this
        offset (the offset does not depend on the site, so it does not change the optimum).
    cost_s
        Travel time in seconds from each demand point to each candidate (inf: unreachable).
    """

    region: str
    graph: nx.MultiDiGraph
    customers: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    customer_snap: SnappedPoints
    candidate_snap: SnappedPoints
    demand_of_customer: np.ndarray
    demand_weight: np.ndarray
    cost_s: np.ndarray
    warnings: tuple[str, ...] = field(default=())
    access_offset_s: np.ndarray | None = None

    @property
    def required(self) -> np.ndarray:
        """Column indices of candidates that must stay open (status ``existing``)."""
        return _status_columns(self.candidates, "existing")

    @property
    def excluded(self) -> np.ndarray:
        """Column indices of candidates that must never open (status ``excluded``)."""
        return _status_columns(self.candidates, "excluded")


def _status_columns(candidates: pd.DataFrame, status: str) -> np.ndarray:
    if "status" not in candidates:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(candidates["status"].astype(str).to_numpy() == status)


def _noop_progress(message: str, fraction: float) -> None:
    logger.info("%3.0f%% %s", 100 * fraction, message)


def _problem_rows_warning(report: Any, path: object, what: str) -> tuple[str, ...]:
    """A warning for rows left out of a solve, so that they are never dropped silently."""
    n_bad = len(report.error_rows)
    if not n_bad:
        return ()
    return (
        f"{n_bad:,} {what} row{'s' if n_bad != 1 else ''} of {path} "
        f"{'have' if n_bad != 1 else 'has'} problems and {'were' if n_bad != 1 else 'was'} left "
        f"out of the solve; run `planner validate {path}` for the report. {report.summary()}",
    )


def load_customers(
    customers: CustomersArg,
    region: str,
    *,
    graph: nx.MultiDiGraph | None = None,
    crs: str | None = None,
) -> tuple[gpd.GeoDataFrame, tuple[str, ...]]:
    """The customers of a solve and the warnings the user must see with its result.

    ``None`` gives the region's demo customers; a GeoDataFrame is used as is; a path is read
    and validated with :func:`planner.demand.read_customers` (``crs`` names the CRS of x/y
    columns, e.g. ``"EPSG:32633"``): an unreadable file raises
    :class:`~planner.errors.InputError`, rows with problems are left out with a warning.
    """
    from planner import demand

    if customers is None:
        return demand.load_demo_customers(region), ()
    if isinstance(customers, gpd.GeoDataFrame):
        return customers, ()
    table = demand.read_customers(customers, region=region, graph=graph, crs=crs)
    if table.report.fatal:
        raise InputError(str(table.report), file=customers)
    return table.valid, _problem_rows_warning(table.report, customers, "customer")


def load_sites(
    sites: gpd.GeoDataFrame | str | PathLike[str],
    region: str,
    *,
    graph: nx.MultiDiGraph | None = None,
    crs: str | None = None,
) -> tuple[gpd.GeoDataFrame, tuple[str, ...]]:
    """Candidate sites from a GeoDataFrame or a validated site file (see :func:`load_customers`)."""
    from planner import sites as sites_mod

    if isinstance(sites, gpd.GeoDataFrame):
        return sites, ()
    table = sites_mod.read_sites(sites, region=region, graph=graph, crs=crs)
    if table.report.fatal:
        raise InputError(str(table.report), file=sites)
    return table.valid, _problem_rows_warning(table.report, sites, "site")


def prepare_instance(
    region: str,
    customers: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    graph: nx.MultiDiGraph | None = None,
    max_snap_m: float = 1000.0,
    progress: ProgressCallback | None = None,
) -> Instance:
    """Snap customers and candidates to the region's roads and compute the cost matrix.

    Customers farther than ``max_snap_m`` from any road are not moved: they are left out of the
    solve with ``excluded_reason`` set and a warning in the instance. Candidates that far from a
    road are marked ``excluded``.
    """
    report = progress or _noop_progress
    if graph is None:
        report(f"Loading road network of {region}", 0.05)
        graph = load_region(region)
    customers = customers.reset_index(drop=True).copy()
    candidates = candidates.reset_index(drop=True).copy()
    if len(customers) == 0:
        raise InputError("there are no customers to serve", field="customers")
    if len(candidates) == 0:
        raise InputError("there are no candidate sites", field="sites")

    report(f"Snapping {len(customers):,} customers and {len(candidates):,} sites", 0.3)
    c_snap = snap_points(
        graph,
        customers["lon"].to_numpy(float),
        customers["lat"].to_numpy(float),
        max_snap_m=max_snap_m,
    )
    s_snap = snap_points(
        graph,
        candidates["lon"].to_numpy(float),
        candidates["lat"].to_numpy(float),
        max_snap_m=max_snap_m,
    )
    warnings: list[str] = []
    customers["snap_distance_m"] = c_snap.snap_distance_m
    customers["excluded_reason"] = ""
    far = np.asarray(c_snap.too_far, dtype=bool)
    if far.any():
        customers.loc[far, "excluded_reason"] = f"farther than {max_snap_m:g} m from any road"
        ids = ", ".join(map(str, customers.loc[far, "customer_id"].head(10)))
        warnings.append(
            f"{int(far.sum())} customers are farther than {max_snap_m:g} m from any road and "
            f"were left out of the solve (ids {ids}{'...' if far.sum() > 10 else ''})"
        )
    s_far = np.asarray(s_snap.too_far, dtype=bool)
    if s_far.any():
        if "status" not in candidates:
            candidates["status"] = "candidate"
        candidates.loc[s_far, "status"] = "excluded"
        warnings.append(
            f"{int(s_far.sum())} candidate sites are farther than {max_snap_m:g} m from any road "
            "and were excluded"
        )

    report("Computing the travel-time matrix", 0.5)
    cost_all = snapped_travel_time_matrix(graph, c_snap, s_snap)

    keys = np.asarray(c_snap.position_key)
    used = np.flatnonzero(~far)
    _, first, inverse = np.unique(keys[used], return_index=True, return_inverse=True)
    demand_of_customer = np.full(len(customers), -1, dtype=np.int64)
    demand_of_customer[used] = inverse
    weights = customers["weight"].to_numpy(float)
    demand_weight = np.bincount(inverse, weights=weights[used], minlength=first.size)
    cost_s = cost_all[used[first]]
    access = np.asarray(c_snap.access_time_s, dtype=float)
    access_offset_s = np.zeros(len(customers))
    access_offset_s[used] = access[used] - access[used[first]][inverse]
    logger.info("%d customers aggregated into %d demand points", used.size, first.size)
    return Instance(
        region=str(region),
        graph=graph,
        customers=customers,
        candidates=candidates,
        customer_snap=c_snap,
        candidate_snap=s_snap,
        demand_of_customer=demand_of_customer,
        demand_weight=demand_weight,
        access_offset_s=access_offset_s,
        cost_s=cost_s,
        warnings=tuple(warnings),
    )


def _package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "planner": __version__}
    for pkg in ("osmnx", "networkx", "numpy", "scipy", "highspy", "geopandas", "shapely"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover - optional package
            continue
    return out


def build_result(
    instance: Instance,
    solution: Solution,
    *,
    roles: dict[int, str] | None = None,
    provenance: dict[str, Any] | None = None,
) -> ScenarioResult:
    """Turn a model's solution on ``instance`` into per-customer and per-site tables.

    Parameters
    ----------
    instance
        The instance the solution was computed on (its ``cost_s`` columns are the candidates).
    solution
        A model solution; ``solution.assignment`` holds one candidate column per demand point.
    roles
        Role of some opened columns (``"office"``, ``"partner"``); others are ``"workshop"``
        unless the candidate's ``kind`` says ``partner`` or ``office``.
    provenance
        Extra facts to record (scenario spec, seed...).
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
    kpis = compute_kpis(travel_min, weights)
    report = dict(instance.graph.graph.get("planner_report", {}))
    prov: dict[str, Any] = {
        "region": instance.region,
        "osm_date": report.get("osm_date"),
        "graph_source": report.get("source"),
        "graph_sha256": report.get("sha256"),
        "model": solution.model,
        "solver": solution.solver,
        "versions": _package_versions(),
    }
    prov.update(provenance or {})
    return ScenarioResult(
        customers=gpd.GeoDataFrame(customers, geometry="geometry", crs="EPSG:4326")
        if "geometry" in customers
        else gpd.GeoDataFrame(
            customers,
            geometry=gpd.points_from_xy(customers["lon"], customers["lat"]),
            crs="EPSG:4326",
        ),
        sites=sites_gdf,
        kpis=kpis,
        solution=solution,
        provenance=prov,
        warnings=warnings,
    )


def plan_workshops(
    region: str = "malta",
    workshops: int = 5,
    customers: CustomersArg = None,
    sites: gpd.GeoDataFrame | str | PathLike[str] | None = None,
    *,
    n_candidates: int = DEFAULT_CANDIDATES,
    time_limit: float | None = 60.0,
    seed: int = 0,
    crs: str | None = None,
    graph: nx.MultiDiGraph | None = None,
    progress: ProgressCallback | None = None,
) -> ScenarioResult:
    """Propose ``workshops`` sites that minimise demand-weighted customer travel time.

    Parameters
    ----------
    region
        A bundled region name (``"malta"``, ``"liechtenstein"``, ``"andorra"``) or a road file.
    workshops
        Number of workshops to open (p of the p-median).
    customers
        ``None`` for the region's demo customers, a file path, or a GeoDataFrame with
        ``customer_id, lat, lon, weight, segment``.
    sites
        ``None`` to generate ``n_candidates`` candidate sites on main roads, a file path of a
        site list, or a GeoDataFrame in the site schema.
    time_limit
        Seconds the optimizer may use; the result says whether it is proven optimal.
    crs
        CRS of x/y columns in the customer and site files (lat/lon files need none).
    """
    from planner import sites as sites_mod

    report = progress or _noop_progress
    if graph is None:
        report(f"Loading road network of {region}", 0.0)
        graph = load_region(region)
    cust, input_warnings = load_customers(customers, region, graph=graph, crs=crs)
    if sites is None:
        report("Generating candidate sites", 0.2)
        cands = sites_mod.generate_candidates(graph, cust, n_candidates, seed=seed)
    else:
        cands, site_warnings = load_sites(sites, region, graph=graph, crs=crs)
        input_warnings += site_warnings
        if "kind" in cands:
            office = cands["kind"].astype(str).to_numpy() == "office"
            if office.any():
                # an office deals with customers and supplies workshops; it is not a service
                # point of this p-median, whatever its status
                where = "the site list" if isinstance(sites, gpd.GeoDataFrame) else str(sites)
                input_warnings += (
                    f"{int(office.sum())} office site(s) in {where} were not used as service "
                    "points; place the central office with a two-tier layout "
                    "(`planner compare`)",
                )
                cands = cands[~office]
    instance = prepare_instance(region, cust, cands, graph=graph, progress=report)
    instance = replace(instance, warnings=input_warnings + instance.warnings)
    report(f"Choosing {workshops} sites (p-median)", 0.7)
    solution = p_median(
        instance.cost_s,
        workshops,
        instance.demand_weight,
        required=instance.required,
        excluded=instance.excluded,
        time_limit=time_limit,
        allow_unreachable=True,
    )
    report("Done", 1.0)
    return build_result(
        instance,
        solution,
        provenance={"workshops": workshops, "seed": seed, "n_candidates": len(cands)},
    )
