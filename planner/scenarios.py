"""Scenarios: the three service layouts, their comparison, the K-curve and robustness.

The consultant's question is *which way of organising service is best for this client's
customers, what does each cost, and what service does each give?* A :class:`ScenarioSpec`
(saved as a TOML file) names the region, the customers, the candidate sites, the layout and
the cost parameters; :func:`run_scenario` solves one layout and :func:`compare_layouts` solves
all three on the same data.

Layouts
-------
``in-house``
    Own workshops chosen among own candidate sites (generated on main roads, or the user's
    site list): a p-median on customer travel time (capacitated when ``capacitated = true``),
    or a fixed-charge model when ``workshops = "auto"`` (workshop fixed cost against the
    value of customer time).
``outsourced``
    Partner repair shops (the user's sites of kind ``partner``, or OSM car repair shops): a
    p-median over partner sites; every job pays the partner fee and a share of jobs leaks.
``two-tier``
    One central office (chosen by the model among office candidates) with the central parts
    store, plus own workshops that cost less (no own parts store) and, with
    ``two_tier_partners = true``, partner shops supplied from the office; parts deliveries
    from the office to each workshop are costed by their travel time. When customer time has
    a value (``customer_time_eur_per_hour > 0``) the office and workshops are chosen together
    on annual cost (:func:`planner.models.two_tier`); otherwise customer travel comes first
    (the workshops of the p-median) and the office minimises the delivery cost to them.

Example TOML::

    name = "Liechtenstein in-house"
    region = "liechtenstein"
    layout = "in-house"
    workshops = 3
    seed = 0

    [service_standard_min]
    default = 30
    business = 20

    [parameters]
    partner_fee_per_job_eur = 150
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd

from planner.costs import CostBreakdown, CostParameters
from planner.errors import InfeasibleError, InputError
from planner.kpis import annual_costs, scenario_kpis, site_loads
from planner.provenance import collect_provenance

logger = logging.getLogger(__name__)

__all__ = [
    "LAYOUTS",
    "Comparison",
    "LayoutResult",
    "Robustness",
    "ScenarioInstance",
    "ScenarioSpec",
    "compare_layouts",
    "k_curve",
    "load_scenario",
    "prepare_scenario",
    "robustness",
    "run_scenario",
    "save_scenario",
    "slow_down_roads",
    "solve_layout",
    "territories",
]

#: The three ways of organising service.
LAYOUTS: tuple[str, ...] = ("in-house", "outsourced", "two-tier")

#: Road classes slowed down by the "slower roads" robustness case.
MAIN_ROAD_CLASSES: tuple[str, ...] = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
)

#: Office candidates taken from OSM (spread over the region) when the site list has none.
OFFICE_CANDIDATES = 15

ProgressCallback = Callable[[str, float], None]

_PATH_SUFFIXES = (".osm", ".pbf", ".bz2", ".gz", ".graphml", ".xml")


def _noop(message: str, fraction: float) -> None:
    logger.info("%3.0f%% %s", 100 * fraction, message)


def _scaled(report: ProgressCallback, lo: float, hi: float) -> ProgressCallback:
    """A progress callback that maps 0..1 onto ``lo..hi`` of ``report``."""

    def inner(message: str, fraction: float) -> None:
        report(message, lo + (hi - lo) * fraction)

    return inner


# ============================================================================ spec


@dataclass(frozen=True)
class ScenarioSpec:
    """Everything needed to reproduce one scenario.

    Attributes
    ----------
    name
        Free label shown in tables and reports.
    region
        Bundled region name (``"malta"``, ``"liechtenstein"``, ``"andorra"``) or a road file.
    customers
        Customer file, or ``None`` for the region's bundled demo customers.
    sites
        Candidate site file (own candidates, ``kind = partner`` rows, ``kind = office`` rows),
        or ``None`` to generate own candidates and take partners and offices from OSM.
    layout
        One of :data:`LAYOUTS`.
    workshops
        Number of workshops (or partners) to use, or ``None`` to let a fixed-charge model
        decide (``"auto"`` in TOML).
    parameters
        Cost assumptions.
    service_standard_min
        Travel-minute standard per customer segment; ``"default"`` applies to the others.
    seed
        Seed for generated candidates and demo data.
    time_limit_s
        Solver time limit per solve.
    congestion
        Travel-time multiplier passed to :func:`planner.network.load_region`.
    speeds
        Speed (km/h) per OSM ``highway`` class overriding the defaults, or ``None``.
    n_candidates
        Own candidate sites generated when ``sites`` has none.
    capacitated
        Respect workshop capacity (technicians x jobs per technician) in own workshops.
    two_tier_partners
        Two-tier only: partner repair shops may serve as workshops too (supplied from the
        office, paid per job, no fixed cost), next to own workshops.
    """

    name: str = "scenario"
    region: str = "liechtenstein"
    customers: Path | None = None
    sites: Path | None = None
    layout: str = "in-house"
    workshops: int | None = 5
    parameters: CostParameters = field(default_factory=CostParameters)
    service_standard_min: Mapping[str, float] = field(default_factory=lambda: {"default": 30.0})
    seed: int = 0
    time_limit_s: float = 60.0
    congestion: float = 1.0
    speeds: Mapping[str, float] | None = None
    n_candidates: int = 40
    capacitated: bool = False
    two_tier_partners: bool = False

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise InputError(
                f"unknown layout {self.layout!r}; allowed: {list(LAYOUTS)}", field="layout"
            )
        if self.workshops is not None and (
            isinstance(self.workshops, bool)
            or not isinstance(self.workshops, int)
            or self.workshops < 1
        ):
            raise InputError(
                f"must be a positive integer or 'auto', got {self.workshops!r}", field="workshops"
            )
        for name in ("customers", "sites"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))
        std = {str(k): float(v) for k, v in dict(self.service_standard_min).items()}
        if any(not math.isfinite(v) or v <= 0 for v in std.values()):
            raise InputError(
                f"service standards must be positive minutes, got {std}",
                field="service_standard_min",
            )
        object.__setattr__(self, "service_standard_min", std)
        if self.speeds is not None:
            object.__setattr__(
                self, "speeds", {str(k): float(v) for k, v in dict(self.speeds).items()}
            )
        if not (self.time_limit_s > 0):
            raise InputError(f"must be > 0, got {self.time_limit_s!r}", field="time_limit_s")
        if not (self.congestion > 0):
            raise InputError(f"must be > 0, got {self.congestion!r}", field="congestion")
        if self.n_candidates < 1:
            raise InputError(f"must be >= 1, got {self.n_candidates!r}", field="n_candidates")
        object.__setattr__(self, "time_limit_s", float(self.time_limit_s))
        object.__setattr__(self, "congestion", float(self.congestion))

    def replace(self, **changes: Any) -> ScenarioSpec:
        """Return a copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict as written to TOML (paths as strings, ``workshops`` ``"auto"`` for None)."""
        out: dict[str, Any] = {
            "name": self.name,
            "region": self.region,
            "layout": self.layout,
            "workshops": "auto" if self.workshops is None else self.workshops,
            "seed": self.seed,
            "time_limit_s": self.time_limit_s,
            "congestion": self.congestion,
            "n_candidates": self.n_candidates,
            "capacitated": self.capacitated,
            "two_tier_partners": self.two_tier_partners,
        }
        if self.customers is not None:
            out["customers"] = str(self.customers)
        if self.sites is not None:
            out["sites"] = str(self.sites)
        out["service_standard_min"] = dict(self.service_standard_min)
        if self.speeds is not None:
            out["speeds"] = dict(self.speeds)
        out["parameters"] = self.parameters.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, base_dir: Path | None = None) -> ScenarioSpec:
        """Build a spec from a mapping (as read from TOML); unknown keys raise InputError.

        Parameters
        ----------
        values
            Keys as in :meth:`to_dict`.
        base_dir
            Folder against which relative ``customers``, ``sites`` and region file paths
            are resolved (the TOML file's folder).
        """
        values = dict(values)
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise InputError(
                f"unknown scenario key(s) {unknown}; allowed keys: {allowed}", field=unknown[0]
            )
        if "parameters" in values:
            params = values["parameters"]
            if not isinstance(params, Mapping):
                raise InputError("must be a table of cost parameters", field="parameters")
            values["parameters"] = CostParameters.from_dict(dict(params))
        if values.get("workshops") == "auto":
            values["workshops"] = None
        for key in ("customers", "sites"):
            if values.get(key) is not None:
                values[key] = _resolve(values[key], base_dir)
        region = values.get("region")
        if isinstance(region, str) and _looks_like_path(region):
            values["region"] = str(_resolve(region, base_dir))
        try:
            return cls(**values)
        except TypeError as exc:
            raise InputError(f"invalid scenario: {exc}") from exc


def _looks_like_path(region: str) -> bool:
    return "/" in region or "\\" in region or region.lower().endswith(_PATH_SUFFIXES)


def _resolve(value: str | os.PathLike[str], base_dir: Path | None) -> Path:
    p = Path(value).expanduser()
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p.resolve() if (p.is_absolute() or base_dir is not None) else p


def load_scenario(path: str | os.PathLike[str]) -> ScenarioSpec:
    """Read a scenario TOML file.

    Relative paths inside the file resolve against the file's folder.

    Raises
    ------
    InputError
        On TOML syntax errors, unknown keys or invalid values (the message names the file).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("scenario file not found", file=path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"invalid TOML: {exc}", file=path) from exc
    try:
        return ScenarioSpec.from_dict(data, base_dir=path.resolve().parent)
    except InputError as exc:
        raise InputError(str(exc), file=path) from exc


def save_scenario(
    spec: ScenarioSpec, path: str | os.PathLike[str], *, overwrite: bool = False
) -> Path:
    """Write ``spec`` as TOML; paths are written relative to the file's folder when possible.

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is false.
    """
    import tomli_w

    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; pass overwrite=True (--overwrite)")
    data = spec.to_dict()
    folder = path.resolve().parent
    for key in ("customers", "sites"):
        if key in data:
            data[key] = _relative(Path(data[key]), folder)
    if _looks_like_path(spec.region) and Path(spec.region).is_absolute():
        data["region"] = _relative(Path(spec.region), folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def _relative(p: Path, folder: Path) -> str:
    if not p.is_absolute():
        return p.as_posix()
    try:
        return Path(os.path.relpath(p, folder)).as_posix()
    except ValueError:  # another drive on Windows
        return p.as_posix()


# ============================================================================ instance


@dataclass(frozen=True)
class ScenarioInstance:
    """One prepared instance shared by all layouts of a scenario.

    Attributes
    ----------
    spec
        The scenario.
    instance
        :class:`planner.pipeline.Instance` over the union of all candidate sites.
    columns
        Candidate column indices by kind: ``"own"``, ``"partner"``, ``"office"``.
    office_link_s
        Travel seconds from each office candidate (rows, in ``columns["office"]`` order) to
        every candidate column, or ``None`` when no two-tier layout was prepared.
    """

    spec: ScenarioSpec
    instance: Any
    columns: Mapping[str, np.ndarray]
    office_link_s: np.ndarray | None = None

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The road graph."""
        return self.instance.graph


def _site_kind(kind: object) -> str:
    k = str(kind).strip().lower() if kind is not None else ""
    if k in ("partner", "partners", "outsourced"):
        return "partner"
    if k in ("office", "central", "hq"):
        return "office"
    return "workshop"


def _load_sites_file(spec: ScenarioSpec) -> gpd.GeoDataFrame:
    from planner import sites as sites_mod

    if spec.sites is None:
        raise InputError("the scenario names no site file", field="sites")
    table = sites_mod.read_sites(spec.sites, region=spec.region)
    if table.report.fatal:
        raise InputError(str(table.report), file=spec.sites)
    return table.valid


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


def _gather_candidates(
    spec: ScenarioSpec,
    graph: nx.MultiDiGraph,
    customers: gpd.GeoDataFrame,
    layouts: Sequence[str],
) -> gpd.GeoDataFrame:
    """Union of own, partner and office candidates with a ``kind`` column."""
    from planner import sites as sites_mod

    parts: list[gpd.GeoDataFrame] = []
    user = _load_sites_file(spec) if spec.sites is not None else None
    if user is not None:
        kinds = (
            user["kind"].map(_site_kind)
            if "kind" in user
            else pd.Series("workshop", index=user.index)
        )
        user = user.copy()
        user["kind"] = kinds.to_numpy()
    need_own = any(layout in ("in-house", "two-tier") for layout in layouts)
    if need_own:
        own = user[user["kind"] == "workshop"] if user is not None else None
        if own is None or len(own) == 0:
            own = sites_mod.generate_candidates(graph, customers, spec.n_candidates, seed=spec.seed)
        parts.append(_with_kind(own, "workshop", "C"))
    if "outsourced" in layouts or ("two-tier" in layouts and spec.two_tier_partners):
        partners = user[user["kind"] == "partner"] if user is not None else None
        if partners is None or len(partners) == 0:
            partners = sites_mod.osm_partner_sites(spec.region)
        if len(partners) == 0:
            raise InputError(
                "the outsourced layout needs partner repair shops, but none were found in the "
                "site list (kind = partner) or in OpenStreetMap for this region",
                field="sites",
            )
        parts.append(_with_kind(partners, "partner", "P"))
    if "two-tier" in layouts:
        offices = user[user["kind"] == "office"] if user is not None else None
        if offices is None or len(offices) == 0:
            offices = sites_mod.office_candidates(spec.region, n=OFFICE_CANDIDATES, seed=spec.seed)
        if len(offices) == 0:
            logger.warning("no office candidates found; the own workshop candidates are used")
            offices = parts[0].copy()
            offices["site_id"] = "O-" + offices["site_id"].astype(str)
        parts.append(_with_kind(offices, "office", "O"))
    frame = pd.concat(parts, ignore_index=True)
    frame["site_id"] = frame["site_id"].astype(str)
    dup = frame["site_id"].duplicated(keep="first")
    if dup.any():
        frame.loc[dup, "site_id"] = (
            frame.loc[dup, "kind"].str[0].str.upper() + "-" + frame.loc[dup, "site_id"]
        )
    return gpd.GeoDataFrame(frame, geometry="geometry", crs="EPSG:4326")


def _customers_of(spec: ScenarioSpec) -> gpd.GeoDataFrame:
    from planner import demand, pipeline

    if spec.customers is None:
        return demand.load_demo_customers(spec.region, seed=spec.seed)
    return pipeline.load_customers(str(spec.customers), spec.region)[0]


def _load_graph(spec: ScenarioSpec) -> nx.MultiDiGraph:
    from planner.network import load_region

    kwargs: dict[str, Any] = {"congestion": spec.congestion}
    if spec.speeds is not None:
        kwargs["speeds"] = dict(spec.speeds)
    return load_region(spec.region, **kwargs)


def prepare_scenario(
    spec: ScenarioSpec,
    *,
    layouts: Sequence[str] | None = None,
    graph: nx.MultiDiGraph | None = None,
    customers: gpd.GeoDataFrame | None = None,
    candidates: gpd.GeoDataFrame | None = None,
    progress: ProgressCallback | None = None,
) -> ScenarioInstance:
    """Load the graph, customers and candidate sites of ``spec`` and compute the matrices.

    Parameters
    ----------
    spec
        The scenario.
    layouts
        Layouts the instance must support (default: ``[spec.layout]``); partner and office
        candidates are only gathered when needed.
    graph, customers, candidates
        Already loaded inputs to reuse (``candidates`` must carry a ``kind`` column).
    progress
        ``progress(message, fraction)`` callback for long steps.
    """
    from planner.matrix import snapped_travel_time_matrix
    from planner.pipeline import prepare_instance
    from planner.snapping import snap_points

    report = progress or _noop
    layouts = list(layouts or [spec.layout])
    for layout in layouts:
        if layout not in LAYOUTS:
            raise InputError(f"unknown layout {layout!r}; allowed: {list(LAYOUTS)}")
    if graph is None:
        report(f"Loading the road network of {spec.region}", 0.02)
        graph = _load_graph(spec)
    if customers is None:
        report("Loading customers", 0.08)
        customers = _customers_of(spec)
    if candidates is None:
        report("Gathering candidate sites", 0.12)
        candidates = _gather_candidates(spec, graph, customers, layouts)
    instance = prepare_instance(
        spec.region,
        customers,
        candidates,
        graph=graph,
        progress=lambda m, f: report(m, 0.15 + 0.3 * f),
    )
    kinds = instance.candidates["kind"].map(_site_kind).to_numpy()
    columns = {k: np.flatnonzero(kinds == k) for k in ("workshop", "partner", "office")}
    columns["own"] = columns.pop("workshop")
    link = None
    if "two-tier" in layouts and columns["office"].size:
        report("Computing office -> workshop travel times", 0.45)
        cands = instance.candidates
        offices = cands.iloc[columns["office"]]
        o_snap = snap_points(graph, offices["lon"].to_numpy(float), offices["lat"].to_numpy(float))
        link = snapped_travel_time_matrix(graph, o_snap, instance.candidate_snap)
    return ScenarioInstance(spec=spec, instance=instance, columns=columns, office_link_s=link)


# ============================================================================ solving


@dataclass(frozen=True)
class LayoutResult:
    """One solved layout: the result tables plus its costs and loads.

    Attributes
    ----------
    layout
        One of :data:`LAYOUTS`.
    result
        :class:`planner.results.ScenarioResult`; its ``kpis`` are the full scenario KPIs of
        :func:`planner.kpis.scenario_kpis` and its ``provenance`` the full record.
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
    """

    layout: str
    result: Any
    costs: CostBreakdown
    loads: pd.DataFrame
    office_id: str | None
    link_time_s: Mapping[str, float]
    parameters: CostParameters

    @property
    def kpis(self) -> Mapping[str, float]:
        """Shortcut to ``result.kpis``."""
        return self.result.kpis


def _models() -> Any:
    from planner import models

    return models


def _time_value_per_weight_s(parameters: CostParameters) -> float:
    """EUR per unit of weight per second of one-way travel (round trip valued)."""
    return parameters.customer_time_eur_per_hour * parameters.jobs_per_weight * 2.0 / 3600.0


def _solve_columns(
    sinst: ScenarioInstance,
    cols: np.ndarray,
    *,
    workshops: int | None,
    fixed_cost_eur: float,
    capacity_weight: float | None,
    weights: np.ndarray,
    time_limit_s: float,
    cost_s: np.ndarray | None = None,
) -> Any:
    """Solve a location model restricted to candidate columns ``cols``; returns a Solution
    whose ``open`` / ``assignment`` index into ``cols``."""
    models = _models()
    inst = sinst.instance
    cost = (inst.cost_s if cost_s is None else cost_s)[:, cols]
    required = np.flatnonzero(np.isin(cols, inst.required))
    excluded = np.flatnonzero(np.isin(cols, inst.excluded))
    if workshops is None:
        tv = _time_value_per_weight_s(sinst.spec.parameters)
        if fixed_cost_eur > 0 and tv <= 0:
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
        }
        if capacity_weight is not None:
            kwargs["capacity"] = capacity_weight
        return models.fixed_charge(cost, np.full(cols.size, fixed_cost_eur), weights, **kwargs)
    p = min(int(workshops), cols.size - excluded.size)
    if p < 1:
        raise InfeasibleError("no usable candidate sites for this layout")
    if capacity_weight is not None:
        return models.capacitated_p_median(
            cost,
            p,
            capacity_weight,
            weights,
            required=required,
            excluded=excluded,
            time_limit=time_limit_s,
        )
    return models.p_median(
        cost, p, weights, required=required, excluded=excluded, time_limit=time_limit_s
    )


def _to_full_columns(solution: Any, cols: np.ndarray, extra_open: Sequence[int] = ()) -> Any:
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
        ``progress(message, fraction)`` callback.

    Returns
    -------
    LayoutResult
    """
    from planner.pipeline import build_result
    from planner.results import ScenarioResult

    report = progress or _noop
    spec = sinst.spec
    layout = layout or spec.layout
    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r}; allowed: {list(LAYOUTS)}", field="layout")
    n_ws: int | None = spec.workshops if workshops == "spec" else workshops  # type: ignore[assignment]
    params = parameters or spec.parameters
    inst = sinst.instance
    weights = inst.demand_weight if demand_weight is None else np.asarray(demand_weight, float)
    capacity = (
        params.workshop_capacity_jobs / params.jobs_per_weight
        if spec.capacitated and params.jobs_per_weight > 0
        else None
    )
    roles: dict[int, str] = {}
    link_time: dict[str, float] = {}
    office_id: str | None = None
    report(f"Solving the {layout} layout", 0.5)
    if layout == "in-house":
        cols = sinst.columns["own"]
        _require(cols, "own candidate sites", layout)
        sol = _solve_columns(
            sinst,
            cols,
            workshops=n_ws,
            fixed_cost_eur=params.workshop_fixed_cost_eur(layout="in-house"),
            capacity_weight=capacity,
            weights=weights,
            time_limit_s=spec.time_limit_s,
        )
        full = _to_full_columns(sol, cols)
    elif layout == "outsourced":
        cols = sinst.columns["partner"]
        _require(cols, "partner repair shops", layout)
        p = cols.size if n_ws is None else n_ws
        sol = _solve_columns(
            sinst,
            cols,
            workshops=p,
            fixed_cost_eur=0.0,
            capacity_weight=None,
            weights=weights,
            time_limit_s=spec.time_limit_s,
        )
        full = _to_full_columns(sol, cols)
        for j in full.open:
            roles[int(j)] = "partner"
    else:
        full, office_col, link_time = _solve_two_tier(sinst, n_ws, params, weights, capacity)
        roles[office_col] = "office"
        office_id = str(inst.candidates["site_id"].iloc[office_col])
    res = build_result(inst, full, roles=roles)
    if customer_weight is not None:
        cust = res.customers.copy()
        cust["weight"] = np.asarray(customer_weight, float)
        res = dataclasses.replace(res, customers=cust)
    kpis = scenario_kpis(
        res,
        params,
        layout=layout,
        service_standard_min=spec.service_standard_min,
        link_time_s=link_time,
    )
    kpis["optimal"] = float(bool(full.optimal))
    kpis["gap"] = float(full.gap)
    costs = annual_costs(res, params, layout=layout, link_time_s=link_time)
    prov = dict(res.provenance)
    prov.update(
        collect_provenance(
            files={"customers": spec.customers, "sites": spec.sites},
            graph_report=inst.graph.graph.get("planner_report", {}),
            solver=full.solver,
            seed=spec.seed,
            scenario=spec.replace(layout=layout, workshops=n_ws, parameters=params).to_dict(),
        )
    )
    prov["layout"] = layout
    loads = site_loads(res, params)
    over = loads[loads["utilisation"] > 1.0 + 1e-9]
    warnings = list(res.warnings)
    if len(over):
        listed = ", ".join(
            f"{sid} ({u:.0%})" for sid, u in zip(over["site_id"], over["utilisation"], strict=True)
        )
        warnings.append(
            f"{len(over)} workshop(s) over capacity "
            f"({params.workshop_capacity_jobs:,.0f} jobs/year each): {listed}; "
            "add workshops or technicians, or set capacitated = true"
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
    )


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
    capacity: float | None,
) -> tuple[Any, int, dict[str, float]]:
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
    if tv > 0 and capacity is None:
        # customer time has a price: office and workshops are chosen together on money
        ws_sol = _call_two_tier(
            sinst=sinst, ws_cols=ws_cols, n_ws=n_ws, params=params, weights=weights, time_value=tv
        )
        office_local = int(ws_sol.extras["office"])
    else:
        # customer travel first (lexicographic): the workshops of the (capacitated) p-median,
        # then the office that minimises the delivery cost to them
        ws_sol = _solve_columns(
            sinst,
            ws_cols,
            workshops=n_ws,
            fixed_cost_eur=params.workshop_fixed_cost_eur(layout="two-tier"),
            capacity_weight=capacity,
            weights=weights,
            time_limit_s=sinst.spec.time_limit_s,
        )
        totals = delivery_eur[:, np.asarray(ws_sol.open)].sum(axis=1)
        totals[np.isin(off_cols, inst.excluded)] = np.inf  # offices too far from any road
        office_local = int(np.argmin(totals))
        if not np.isfinite(totals[office_local]):
            raise InfeasibleError("no office candidate can reach all chosen workshops by road")
        ws_sol = dataclasses.replace(
            ws_sol,
            model=f"two_tier (sequential: {ws_sol.model}, then office)",
            extras={**ws_sol.extras, "office": office_local, "office_choice": "min delivery cost"},
        )
    office_col = int(off_cols[office_local])
    full = _to_full_columns(ws_sol, ws_cols, extra_open=[office_col])
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
) -> Any:
    """Solve office and workshops jointly with :func:`planner.models.two_tier`, in EUR/year.

    Customer travel is valued at ``time_value`` EUR per weight-second (round trips), each
    delivery costs ``2 * link_s / 60 * delivery_cost_per_min_eur``, and the fixed costs are the
    two-tier workshop and office costs. Partner workshops (``two_tier_partners``) have no fixed
    cost; their fee and leaked margin per job are added to the customers' cost of going there.
    """
    models = _models()
    inst = sinst.instance
    cost = inst.cost_s[:, ws_cols]
    is_partner = np.isin(ws_cols, sinst.columns["partner"])
    fixed = np.where(is_partner, 0.0, params.workshop_fixed_cost_eur(layout="two-tier"))
    if is_partner.any():
        # a job at a partner costs its fee and the leaked margin: as seconds of customer time
        per_job = params.partner_fee_per_job_eur + params.leakage_cost_eur(1.0)
        extra_s = per_job * params.jobs_per_weight / time_value
        cost = cost + np.where(is_partner, extra_s, 0.0)[None, :]
    if sinst.office_link_s is None:
        raise InputError("prepare the instance with layouts=['two-tier'] first")
    link = sinst.office_link_s[:, ws_cols]
    return models.two_tier(
        cost,
        link,
        n_ws,
        weights,
        deliveries=params.deliveries_per_workshop,
        time_value=time_value,
        link_value=2.0 * params.delivery_cost_per_min_eur / 60.0,
        fixed_cost_workshop=fixed,
        fixed_cost_office=params.office_fixed_cost_eur,
        required=np.flatnonzero(np.isin(ws_cols, inst.required)),
        excluded=np.flatnonzero(np.isin(ws_cols, inst.excluded)),
        excluded_offices=np.flatnonzero(np.isin(sinst.columns["office"], inst.excluded)),
        time_limit=sinst.spec.time_limit_s,
    )


# ============================================================================ front doors


def run_scenario(
    spec: ScenarioSpec | str | os.PathLike[str],
    *,
    graph: nx.MultiDiGraph | None = None,
    progress: ProgressCallback | None = None,
) -> LayoutResult:
    """Solve one saved scenario (a spec or the path of its TOML file).

    Returns
    -------
    LayoutResult
    """
    if not isinstance(spec, ScenarioSpec):
        spec = load_scenario(spec)
    report = progress or _noop
    sinst = prepare_scenario(spec, graph=graph, progress=report)
    return solve_layout(sinst, progress=lambda m, f: report(m, 0.5 + 0.5 * f))


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


COMPARISON_COLUMNS: tuple[str, ...] = (
    "layout",
    "sites",
    "offices",
    "mean_travel_min",
    "p90_travel_min",
    "max_travel_min",
    "share_within_sla",
    "annual_cost",
    "cost_per_job",
    "fixed_eur",
    "fees_eur",
    "deliveries_eur",
    "leakage_eur",
    "customer_time_eur",
    "max_utilisation",
    "optimal",
    "gap",
    "solver",
)


def comparison_row(lr: LayoutResult) -> dict[str, Any]:
    """One row of the comparison table for a solved layout."""
    k = lr.kpis
    sol = lr.result.solution
    return {
        "layout": lr.layout,
        "sites": int(k["sites"]),
        "offices": int(k["sites_office"]),
        "mean_travel_min": k["mean_travel_min"],
        "p90_travel_min": k["p90_travel_min"],
        "max_travel_min": k["max_travel_min"],
        "share_within_sla": k["share_within_sla"],
        "annual_cost": lr.costs.total_eur,
        "cost_per_job": lr.costs.cost_per_job_eur,
        "fixed_eur": lr.costs.fixed_eur,
        "fees_eur": lr.costs.fees_eur,
        "deliveries_eur": lr.costs.deliveries_eur,
        "leakage_eur": lr.costs.leakage_eur,
        "customer_time_eur": lr.costs.customer_time_eur,
        "max_utilisation": k["max_utilisation"],
        "optimal": bool(sol.optimal),
        "gap": float(sol.gap),
        "solver": str(sol.solver),
    }


def diff_sites(results: Mapping[str, LayoutResult]) -> pd.DataFrame:
    """Which sites appear in all layouts and which in only one."""
    names = list(results)
    rows: dict[str, dict[str, Any]] = {}
    for layout, lr in results.items():
        for site in lr.result.sites.itertuples(index=False):
            sid = str(site.site_id)
            row = rows.setdefault(
                sid,
                {
                    "site_id": sid,
                    "name": str(site.name),
                    "kind": str(getattr(site, "kind", site.role)),
                    "lat": float(site.lat),
                    "lon": float(site.lon),
                    **dict.fromkeys(names, False),
                },
            )
            row[layout] = True
    frame = pd.DataFrame(
        list(rows.values()), columns=["site_id", "name", "kind", "lat", "lon", *names]
    )
    frame["layouts"] = frame[names].sum(axis=1).astype(int)

    def presence(r: pd.Series) -> str:
        used = [n for n in names if r[n]]
        if len(used) == len(names):
            return "all"
        if len(used) == 1:
            return f"only {used[0]}"
        return ", ".join(used)

    frame["presence"] = frame.apply(presence, axis=1) if len(frame) else pd.Series(dtype=str)
    return frame.sort_values(["layouts", "site_id"], ascending=[False, True]).reset_index(drop=True)


def compare_layouts(
    spec: ScenarioSpec | str,
    *,
    workshops: int | str | None = "spec",
    layouts: Sequence[str] = LAYOUTS,
    graph: nx.MultiDiGraph | None = None,
    sinst: ScenarioInstance | None = None,
    progress: ProgressCallback | None = None,
) -> Comparison:
    """Solve ``layouts`` on the same customers and road network and compare them.

    Parameters
    ----------
    spec
        A scenario spec, or a region name (defaults for everything else).
    workshops
        Number of workshops per layout (default the spec's).
    layouts
        Which layouts (default all three).
    graph
        A loaded road graph to reuse.
    sinst
        A prepared instance (from :func:`prepare_scenario` with these layouts) to reuse.
    progress
        ``progress(message, fraction)`` callback.
    """
    if isinstance(spec, str):
        spec = ScenarioSpec(name=f"{spec} comparison", region=spec)
    report = progress or _noop
    if sinst is None:
        sinst = prepare_scenario(
            spec, layouts=layouts, graph=graph, progress=lambda m, f: report(m, 0.4 * f)
        )
    results: dict[str, LayoutResult] = {}
    for i, layout in enumerate(layouts):
        lo, hi = 0.4 + 0.6 * i / len(layouts), 0.4 + 0.6 * (i + 1) / len(layouts)
        results[layout] = solve_layout(
            sinst,
            layout,
            workshops=workshops,
            progress=_scaled(report, lo, hi),
        )
    table = pd.DataFrame([comparison_row(r) for r in results.values()], columns=COMPARISON_COLUMNS)
    return Comparison(results=results, table=table, site_diff=diff_sites(results))


# ============================================================================ K-curve


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
    report = progress or _noop
    params = parameters or sinst.spec.parameters
    limit = {
        "in-house": sinst.columns["own"].size,
        "two-tier": sinst.columns["own"].size,
        "outsourced": sinst.columns["partner"].size,
    }[layout]
    k_max = min(int(k_max), limit)
    if k_max < k_min:
        raise InputError(f"k_max must be >= {k_min}; the layout has {limit} candidate sites")
    rows = []
    for k in range(k_min, k_max + 1):
        report(f"K-curve: {k} workshops", (k - k_min) / max(1, k_max - k_min + 1))
        lr = solve_layout(sinst, layout, workshops=k, parameters=params)
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


# ============================================================================ robustness


def slow_down_roads(
    graph: nx.MultiDiGraph,
    factor: float,
    *,
    highways: Sequence[str] | None = MAIN_ROAD_CLASSES,
) -> nx.MultiDiGraph:
    """Return a copy of ``graph`` whose travel times on ``highways`` are ``factor`` times longer.

    Parameters
    ----------
    graph
        Road graph with ``travel_time`` (s) on every edge.
    factor
        Multiplier of travel times (1.3 = 30 % slower), > 0.
    highways
        OSM ``highway`` classes to slow down; ``None`` slows every road.
    """
    if not factor > 0:
        raise InputError(f"factor must be > 0, got {factor!r}")
    H = graph.copy()
    wanted = None if highways is None else set(highways)
    for _, _, data in H.edges(data=True):
        hw = data.get("highway")
        classes = set(hw) if isinstance(hw, list) else {hw}
        if wanted is None or classes & wanted:
            data["travel_time"] = float(data["travel_time"]) * factor
            if "speed_kph" in data:
                data["speed_kph"] = float(data["speed_kph"]) / factor
    report = dict(H.graph.get("planner_report", {}))
    report["slowdown"] = {"factor": factor, "highways": None if wanted is None else sorted(wanted)}
    H.graph["planner_report"] = report
    return H


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
    from planner.pipeline import prepare_instance

    report = progress or _noop
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
            from planner.matrix import snapped_travel_time_matrix
            from planner.snapping import snap_points

            offices = inst.candidates.iloc[sinst.columns["office"]]
            o_snap = snap_points(
                slow_graph, offices["lon"].to_numpy(float), offices["lat"].to_numpy(float)
            )
            link = snapped_travel_time_matrix(slow_graph, o_snap, slow_inst.candidate_snap)
        slow = dataclasses.replace(sinst, instance=slow_inst, office_link_s=link)
        label = "main roads" if slow_highways is not None else "all roads"
        cases.append((f"{label} {slowdown - 1:+.0%} time", slow, None, None))

    rows = []
    chosen: dict[str, set[str]] = {}
    for i, (label, case_inst, case_dw, case_w) in enumerate(cases):
        report(f"Robustness: {label}", 0.2 + 0.8 * i / len(cases))
        lr = solve_layout(
            case_inst, layout, workshops=workshops, demand_weight=case_dw, customer_weight=case_w
        )
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


# ============================================================================ territories


def territories(lr: LayoutResult) -> pd.DataFrame:
    """The territory list: every customer's service point (and office in two-tier).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, segment, weight, site_id, site_name, site_role, office_id,
        travel_min``; customers left out of the solve have an empty ``site_id``.
    """
    res = lr.result
    cust = res.customers
    sites = res.sites.set_index(res.sites["site_id"].astype(str))
    sid = cust["site_id"].astype(str)
    out = pd.DataFrame(
        {
            "customer_id": cust["customer_id"].to_numpy(),
            "segment": cust["segment"].to_numpy() if "segment" in cust else "",
            "weight": cust["weight"].to_numpy(float),
            "site_id": sid.to_numpy(),
            "site_name": sid.map(sites["name"].astype(str)).fillna("").to_numpy(),
            "site_role": sid.map(sites["role"].astype(str)).fillna("").to_numpy(),
            "office_id": np.where(sid.to_numpy() != "", lr.office_id or "", ""),
            "travel_min": cust["travel_min"].to_numpy(float),
        }
    )
    return out
