"""Prepared instances: customers and candidate sites snapped to one road graph, with the matrix.

``region -> road graph -> customers and candidates snapped -> travel-time matrix``.
:func:`prepare_scenario` gathers every input a :class:`~planner.engine.spec.ScenarioSpec` names
(the road graph is loaded once and passed down; the warnings of every input file are passed up)
and :func:`prepare_instance` snaps and computes the matrix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.engine._progress import ProgressCallback, log_progress
from planner.engine.spec import LAYOUTS, ScenarioSpec
from planner.errors import InputError
from planner.inputs.customers import load_demo_customers, read_customers
from planner.inputs.sites import (
    generate_candidates,
    office_candidates,
    optional_region_features,
    osm_competitor_sites,
    osm_partner_sites,
    read_sites,
    sites_frame,
)
from planner.inputs.tables import TableSource, source_name
from planner.inputs.validation import KIND_ALIASES, ValidationReport, normalize_column
from planner.roads.features import is_no_features_error
from planner.roads.network import REGIONS, RoadGraph, fingerprint_once, load_region
from planner.roads.snapping import SnappedPoints, snap_points
from planner.roads.trim import Area, area_around, area_from_bbox
from planner.routing.matrix import snapped_travel_time_matrix
from planner.settings import DEFAULT_MAX_SNAP_M, DEFAULT_OFFICE_CANDIDATES

logger = logging.getLogger(__name__)

__all__ = [
    "Instance",
    "ScenarioInstance",
    "competitor_matrix",
    "gather_candidates",
    "gather_competitors",
    "load_customers",
    "load_graph",
    "load_sites",
    "prepare_instance",
    "prepare_scenario",
]

#: Customers or sites as the engine takes them: a validated table, or a file to read.
InputArg: TypeAlias = gpd.GeoDataFrame | TableSource


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
    graph: RoadGraph
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


def prepare_instance(
    region: str,
    customers: gpd.GeoDataFrame,
    candidates: gpd.GeoDataFrame,
    *,
    graph: RoadGraph | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
    progress: ProgressCallback | None = None,
) -> Instance:
    """Snap customers and candidates to the region's roads and compute the cost matrix.

    Customers farther than ``max_snap_m`` from any road are not moved: they are left out of the
    solve with ``excluded_reason`` set and a warning in the instance. Candidates that far from a
    road are marked ``excluded``.
    """
    report = progress or log_progress
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
    cost_all = snapped_travel_time_matrix(
        graph, c_snap, s_snap, progress=lambda m, f: report(m, 0.5 + 0.45 * f)
    )

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


def rows_left_out_warning(
    report: ValidationReport, path: object, what: str, *, uploaded: bool = False
) -> tuple[str, ...]:
    """The warning for rows of a file left out of a solve, so that none disappears silently.

    For a file on disk the fix is ``planner validate PATH``; for an uploaded file (read from
    memory, as the app does) it is to fix the rows and upload the file again, using the
    upload's own check, which lists them by problem and offers them for download.
    """
    n_bad = len(report.error_rows)
    if not n_bad:
        return ()
    fix = (
        "fix them in your file and upload it again (the check shown with the upload lists "
        "them by problem and offers them for download)"
        if uploaded
        else f"run `planner validate {path}` for the report"
    )
    return (
        f"{n_bad:,} {what} row{'s' if n_bad != 1 else ''} of {path} "
        f"{'have' if n_bad != 1 else 'has'} problems and {'were' if n_bad != 1 else 'was'} left "
        f"out of the solve; {fix}. {report.summary()}",
    )


def load_customers(
    customers: InputArg | None,
    region: str,
    *,
    graph: RoadGraph | None = None,
    crs: str | None = None,
    seed: int = 0,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> tuple[gpd.GeoDataFrame, tuple[str, ...]]:
    """The customers of a solve and the warnings the user must see with its result.

    ``None`` gives the region's demo customers; a GeoDataFrame is used as is; a path is read
    and validated with :func:`planner.inputs.customers.read_customers` (``crs`` names the CRS
    of x/y columns): an unreadable file raises :class:`~planner.errors.InputError`, rows with
    problems are left out with a warning.
    """
    if customers is None:
        return load_demo_customers(region, seed=seed), ()
    if isinstance(customers, gpd.GeoDataFrame):
        return customers, ()
    table = read_customers(customers, region=region, graph=graph, crs=crs, max_snap_m=max_snap_m)
    if table.report.fatal:
        raise InputError(str(table.report), file=source_name(customers))
    return table.valid, rows_left_out_warning(
        table.report,
        source_name(customers),
        "customer",
        uploaded=not isinstance(customers, str | os.PathLike),
    )


def load_sites(
    sites: InputArg,
    region: str,
    *,
    graph: RoadGraph | None = None,
    crs: str | None = None,
    max_snap_m: float = DEFAULT_MAX_SNAP_M,
) -> tuple[gpd.GeoDataFrame, tuple[str, ...]]:
    """Candidate sites from a GeoDataFrame or a validated site file (see :func:`load_customers`)."""
    if isinstance(sites, gpd.GeoDataFrame):
        return sites, ()
    table = read_sites(sites, region=region, graph=graph, crs=crs, max_snap_m=max_snap_m)
    if table.report.fatal:
        raise InputError(str(table.report), file=source_name(sites))
    return table.valid, rows_left_out_warning(
        table.report, source_name(sites), "site", uploaded=not isinstance(sites, str | os.PathLike)
    )


@dataclass(frozen=True)
class ScenarioInstance:
    """One prepared instance shared by all layouts of a scenario.

    Attributes
    ----------
    spec
        The scenario.
    instance
        :class:`planner.engine.instance.Instance` over the union of all candidate sites.
    columns
        Candidate column indices by kind: ``"own"``, ``"partner"``, ``"office"``.
    office_link_s
        Travel seconds from each office candidate (rows, in ``columns["office"]`` order) to
        every candidate column, or ``None`` when no two-tier layout was prepared.
    competitors
        Competing shops (site schema plus ``attractiveness``) for the market objectives, or
        ``None`` when the spec's objective is ``min_travel``.
    competitor_cost_s
        Travel seconds from each demand point to each competitor (inf: unreachable).
    """

    spec: ScenarioSpec
    instance: Instance
    columns: Mapping[str, np.ndarray]
    office_link_s: np.ndarray | None = None
    competitors: gpd.GeoDataFrame | None = None
    competitor_cost_s: np.ndarray | None = None

    @property
    def graph(self) -> RoadGraph:
        """The road graph."""
        return self.instance.graph

    @property
    def warnings(self) -> tuple[str, ...]:
        """Input and snapping warnings, shown with every result solved on this instance."""
        return self.instance.warnings


def _site_kind(kind: object) -> str:
    """Canonical kind (``workshop``, ``partner``, ``office``) of a site-kind spelling."""
    k = normalize_column(kind) if kind is not None else ""
    for canonical, spellings in KIND_ALIASES.items():
        if k in spellings:
            return canonical
    return "workshop"


def _with_kind(frame: pd.DataFrame, kind: str, prefix: str) -> gpd.GeoDataFrame:
    out = frame.copy()
    out["kind"] = kind
    if "site_id" not in out:
        out["site_id"] = [f"{prefix}{i + 1}" for i in range(len(out))]
    if "name" not in out:
        out["name"] = ""
    if "status" not in out:
        out["status"] = "candidate"
    if not isinstance(out, gpd.GeoDataFrame) or out.geometry.name not in out:
        out = gpd.GeoDataFrame(
            out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs="EPSG:4326"
        )
    return out


def _wants_generated(spec: ScenarioSpec, own: gpd.GeoDataFrame | None) -> bool:
    if spec.generate_candidates is not None:
        return spec.generate_candidates
    if own is None or len(own) == 0:
        return True
    statuses = own["status"].astype(str) if "status" in own else pd.Series("candidate")
    return not bool((statuses == "candidate").any())


def gather_candidates(
    spec: ScenarioSpec,
    graph: RoadGraph,
    customers: gpd.GeoDataFrame,
    layouts: Sequence[str],
    *,
    sites: gpd.GeoDataFrame | None = None,
    sites_label: str = "the site list",
) -> tuple[gpd.GeoDataFrame, tuple[str, ...]]:
    """Union of own, partner and office candidates with a ``kind`` column, and warnings.

    Own workshop candidates are the user's ``kind = workshop`` rows (existing ones stay open)
    plus, as :attr:`ScenarioSpec.generate_candidates` says, ``spec.n_candidates`` generated
    ones; partners are the user's ``kind = partner`` rows or OSM repair businesses; offices
    the user's ``kind = office`` rows or OSM office buildings.
    """
    parts: list[gpd.GeoDataFrame] = []
    warnings: list[str] = []
    user = None
    if sites is not None:
        user = sites.copy()
        kinds = user["kind"].map(_site_kind) if "kind" in user else "workshop"
        user["kind"] = kinds if isinstance(kinds, str) else kinds.to_numpy()
    need_own = any(layout in ("in-house", "two-tier") for layout in layouts)
    if need_own:
        own = user[user["kind"] == "workshop"] if user is not None else None
        if _wants_generated(spec, own):
            generated = generate_candidates(
                graph,
                customers,
                spec.n_candidates,
                seed=spec.seed,
                features=optional_region_features(spec.region),
            )
            own = generated if own is None or len(own) == 0 else pd.concat([own, generated])
        if own is None or len(own) == 0:
            raise InputError(
                f"{sites_label} has no own workshop sites (kind = workshop) and generated "
                "candidates are switched off; add workshop rows or allow generated candidates",
                field="sites",
            )
        parts.append(_with_kind(own, "workshop", "C"))
    if "outsourced" in layouts or ("two-tier" in layouts and spec.two_tier_partners):
        partners = user[user["kind"] == "partner"] if user is not None else None
        if partners is None or len(partners) == 0:
            partners = osm_partner_sites(spec.region, product_class=spec.product_class)
        if len(partners) == 0:
            raise InputError(
                "the outsourced layout needs partner repair shops, but none were found in the "
                "site list (kind = partner) or in OpenStreetMap for this region "
                f"(repair businesses of the product class {spec.product_class!r})",
                field="sites",
            )
        parts.append(_with_kind(partners, "partner", "P"))
    if "two-tier" in layouts:
        offices = user[user["kind"] == "office"] if user is not None else None
        if offices is None or len(offices) == 0:
            offices = office_candidates(spec.region, n=DEFAULT_OFFICE_CANDIDATES, seed=spec.seed)
        if len(offices) == 0:
            warnings.append(
                "no office candidates were found; the own workshop candidates are used as "
                "office candidates"
            )
            offices = parts[0].copy()
            offices["site_id"] = "O-" + offices["site_id"].astype(str)
        parts.append(_with_kind(offices, "office", "O"))
    elif user is not None:
        n_office = int((user["kind"] == "office").sum())
        if n_office:
            warnings.append(
                f"{n_office} office site(s) in {sites_label} were not used as service points; "
                "place the central office with a two-tier layout (`planner compare`)"
            )
    frame = pd.concat(parts, ignore_index=True)
    frame["site_id"] = frame["site_id"].astype(str)
    dup = frame["site_id"].duplicated(keep="first")
    if dup.any():
        frame.loc[dup, "site_id"] = (
            frame.loc[dup, "kind"].str[0].str.upper() + "-" + frame.loc[dup, "site_id"]
        )
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326"), tuple(warnings)


def graph_area(spec: ScenarioSpec, customers: InputArg | None = None) -> Area | None:
    """The area the road network of ``spec`` is trimmed to, or None (the whole region).

    ``spec.bbox`` when set; else, for a road file (not a bundled region) with a customer file
    (``customers`` or ``spec.customers``) and ``spec.margin_km`` set, the customers' extent
    plus that margin (:func:`planner.roads.trim.area_around`). The customers' coordinates
    are read without the road graph (only their ranges are checked here).
    """
    if spec.bbox is not None:
        return area_from_bbox(spec.bbox)
    source = spec.customers if customers is None else customers
    if spec.margin_km is None or source is None or str(spec.region).strip().lower() in REGIONS:
        return None
    if isinstance(source, gpd.GeoDataFrame):
        lon, lat = source["lon"].to_numpy(float), source["lat"].to_numpy(float)
    else:
        table = read_customers(source, crs=spec.crs)
        if hasattr(source, "seek"):
            source.seek(0)
        if table.report.fatal:
            return None  # the customer reader reports it, with the graph loaded
        valid = table.valid
        lon, lat = valid["lon"].to_numpy(float), valid["lat"].to_numpy(float)
    if not np.isfinite(lon).any():
        return None
    return area_around(lon, lat, margin_km=spec.margin_km)


def load_graph(
    spec: ScenarioSpec,
    progress: ProgressCallback | None = None,
    *,
    customers: InputArg | None = None,
) -> RoadGraph:
    """The road graph of ``spec``: its region with its speeds and congestion, trimmed to
    :func:`graph_area` (``customers``: an uploaded customer file instead of the spec's)."""
    speeds = None if spec.speeds is None else dict(spec.speeds)
    return load_region(
        spec.region,
        congestion=spec.congestion,
        speeds=speeds,
        progress=progress,
        area=graph_area(spec, customers),
    )


def prepare_scenario(
    spec: ScenarioSpec,
    *,
    layouts: Sequence[str] | None = None,
    graph: RoadGraph | None = None,
    customers: InputArg | None = None,
    sites: InputArg | None = None,
    candidates: gpd.GeoDataFrame | None = None,
    progress: ProgressCallback | None = None,
) -> ScenarioInstance:
    """Load the graph, customers and candidate sites of ``spec`` and compute the matrices.

    The road graph is loaded once and passed to every reader; the warnings of every input
    (rows left out, offices not used, points far from roads) travel up in the instance and
    reach every result solved on it.

    Parameters
    ----------
    spec
        The scenario.
    layouts
        Layouts the instance must support (default: ``[spec.layout]``); partner and office
        candidates are only gathered when needed.
    graph, customers, sites
        Inputs to use instead of the spec's region, customer file and site file: a loaded
        graph; validated tables, or uploaded files (file-like objects with a ``name``), which
        are read and validated exactly like the spec's files, warnings included.
    candidates
        A ready candidate table (with a ``kind`` column) to use as is.
    progress
        ``progress(message, fraction)`` callback for long steps.
    """
    report = progress or log_progress
    layouts = list(layouts or [spec.layout])
    for layout in layouts:
        if layout not in LAYOUTS:
            raise InputError(f"unknown layout {layout!r}; allowed: {list(LAYOUTS)}", field="layout")
    if graph is None:
        report(f"Loading the road network of {spec.region}", 0.02)
        graph = load_graph(
            spec, progress=lambda m, f: report(m, 0.02 + 0.04 * f), customers=customers
        )
        info = graph.graph.get("planner_report", {})
        if info.get("kept"):
            report(f"Kept the {info['kept']}", 0.06)
        report(
            f"Road network: {graph.number_of_nodes():,} nodes, {graph.number_of_edges():,} "
            f"edges ({info.get('loader', 'osmnx')} loader"
            f"{', from cache' if info.get('cache_hit') else ''})",
            0.06,
        )
    # one graph for every step below (snapping customers, sites, offices; the matrices):
    # hash it once instead of at each step (it is not edited meanwhile)
    with fingerprint_once(graph):
        report("Loading customers", 0.08)
        customer_table, warnings = load_customers(
            spec.customers if customers is None else customers,
            spec.region,
            graph=graph,
            crs=spec.crs,
            seed=spec.seed,
            max_snap_m=spec.max_snap_m,
        )
        site_source = spec.sites if sites is None else sites
        site_table = None
        competitors: gpd.GeoDataFrame | None = None
        if candidates is None:
            report("Gathering candidate sites", 0.12)
            label = "the site list"
            if site_source is not None:
                site_table, site_warnings = load_sites(
                    site_source, spec.region, graph=graph, crs=spec.crs, max_snap_m=spec.max_snap_m
                )
                warnings += site_warnings
                if not isinstance(site_source, gpd.GeoDataFrame):
                    label = source_name(site_source)
            candidates, gather_warnings = gather_candidates(
                spec, graph, customer_table, layouts, sites=site_table, sites_label=label
            )
            warnings += gather_warnings
        if spec.objective != "min_travel":
            report("Gathering competitors", 0.14)
            competitors, comp_warnings = gather_competitors(spec, site_table, candidates)
            warnings += comp_warnings
        instance = prepare_instance(
            spec.region,
            customer_table,
            candidates,
            graph=graph,
            max_snap_m=spec.max_snap_m,
            progress=lambda m, f: report(m, 0.15 + 0.3 * f),
        )
        instance = replace(instance, warnings=warnings + instance.warnings)
        kinds = instance.candidates["kind"].map(_site_kind).to_numpy()
        columns = {k: np.flatnonzero(kinds == k) for k in ("workshop", "partner", "office")}
        columns["own"] = columns.pop("workshop")
        link = None
        if "two-tier" in layouts and columns["office"].size:
            report("Computing office -> workshop travel times", 0.45)
            link = office_link_matrix(graph, instance, columns["office"])
        comp_cost = None
        if competitors is not None:
            report("Computing travel times to the competitors", 0.46)
            comp_cost = competitor_matrix(graph, instance, competitors)
        return ScenarioInstance(
            spec=spec,
            instance=instance,
            columns=columns,
            office_link_s=link,
            competitors=competitors,
            competitor_cost_s=comp_cost,
        )


def gather_competitors(
    spec: ScenarioSpec,
    sites: gpd.GeoDataFrame | None,
    candidates: gpd.GeoDataFrame,
) -> tuple[gpd.GeoDataFrame, tuple[str, ...]]:
    """The competing shops of a market objective, and warnings.

    The site file's ``kind = competitor`` rows (with their ``attractiveness``, default 1),
    plus the region's OSM repair shops of ``spec.product_class`` that are not ours: an OSM
    shop within :data:`planner.inputs.sites.PARTNER_MATCH_M` of one of the file's partner,
    existing workshop or competitor rows is that row, not another competitor. OSM shops
    that are partner candidates stay competitors here; a layout counts each of them once when
    it solves, as its partner column (the outsourced layout: a competitor while not
    contracted; see :func:`planner.engine.market.market_inputs`).
    """
    warnings: list[str] = []
    parts: list[gpd.GeoDataFrame] = []
    ours = None
    if sites is not None and len(sites):
        kinds = sites["kind"].map(_site_kind) if "kind" in sites else pd.Series("workshop")
        kinds = pd.Series(np.asarray(kinds), index=sites.index)
        mine = sites[kinds == "competitor"].copy()
        if len(mine):
            a = (
                pd.to_numeric(mine["attractiveness"], errors="coerce")
                if "attractiveness" in mine
                else pd.Series(np.nan, index=mine.index)
            )
            mine["attractiveness"] = a.fillna(1.0).to_numpy(float)
            mine["kind"] = "competitor"
            mine["status"] = "excluded"
            parts.append(sites_frame(mine))
        status = sites["status"].astype(str) if "status" in sites else pd.Series("candidate")
        status = pd.Series(np.asarray(status), index=sites.index)
        keep = (kinds == "partner") | (kinds == "competitor")
        keep |= (kinds == "workshop") & (status == "existing")
        ours = sites[keep]
    try:
        osm = osm_competitor_sites(spec.region, product_class=spec.product_class, partners=ours)
    except Exception as exc:
        if not (isinstance(exc, InputError) or is_no_features_error(exc)):
            raise
        logger.info("no OSM competitors for %s: %s", spec.region, exc)
        warnings.append(
            "no OpenStreetMap features for this region, so competitors come only from the "
            "site list (kind = competitor)"
        )
    else:
        if len(osm):
            parts.append(osm)
    if not parts:
        warnings.append(
            "no competitors were found (no competitor rows in the site list and no "
            f"{spec.product_class} repair shops in OpenStreetMap): customers choose only "
            "between our sites and not coming at all"
        )
        empty = sites_frame(pd.DataFrame({"site_id": pd.Series(dtype=str)}))
        empty["attractiveness"] = pd.Series(dtype=float)
        return empty, tuple(warnings)
    frame = pd.concat(parts, ignore_index=True)
    frame["site_id"] = frame["site_id"].astype(str)
    frame = frame.drop_duplicates("site_id").reset_index(drop=True)
    frame = frame[np.isfinite(frame["lat"]) & np.isfinite(frame["lon"])].reset_index(drop=True)
    del candidates
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326"), tuple(warnings)


def competitor_matrix(
    graph: RoadGraph, instance: Instance, competitors: gpd.GeoDataFrame
) -> np.ndarray:
    """Travel seconds from each demand point of ``instance`` to each competitor."""
    n_points = instance.demand_weight.size
    if len(competitors) == 0:
        return np.zeros((n_points, 0))
    c_snap = snap_points(
        graph, competitors["lon"].to_numpy(float), competitors["lat"].to_numpy(float)
    )
    full = snapped_travel_time_matrix(graph, instance.customer_snap, c_snap)
    d_of_c = instance.demand_of_customer
    rows = np.flatnonzero(d_of_c >= 0)
    _, first = np.unique(d_of_c[rows], return_index=True)
    out = np.asarray(full, dtype=float)[rows[first]]
    far = np.asarray(c_snap.too_far, dtype=bool)
    out[:, far] = np.inf
    return out


def office_link_matrix(
    graph: RoadGraph, instance: Instance, office_columns: np.ndarray
) -> np.ndarray:
    """Travel seconds from each office candidate to every candidate site of ``instance``."""
    offices = instance.candidates.iloc[office_columns]
    o_snap = snap_points(graph, offices["lon"].to_numpy(float), offices["lat"].to_numpy(float))
    return snapped_travel_time_matrix(graph, o_snap, instance.candidate_snap)
