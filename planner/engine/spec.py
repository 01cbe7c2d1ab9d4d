"""The scenario spec: the one description of a planning question that every front door builds.

A :class:`ScenarioSpec` names the region, the customers, the candidate sites, the layout, the
number of workshops and the cost parameters. ``planner run`` with flags, ``planner run
SCENARIO.toml``, ``planner compare``, the app's pages and the notebooks all build one and hand it
to :func:`planner.engine.run` (or :func:`planner.engine.compare`). Its defaults are those of
:mod:`planner.settings`. Specs are saved as TOML and load back without loss.

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
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from planner.errors import InputError
from planner.inputs.sites import DEFAULT_PRODUCT_CLASS, PRODUCT_CLASSES
from planner.results.costs import CostParameters
from planner.results.kpis import DEFAULT_SERVICE_STANDARD_MIN
from planner.results.market import OBJECTIVES, DemandModel
from planner.roads.trim import area_from_bbox
from planner.settings import (
    DEFAULT_MARGIN_KM,
    DEFAULT_MAX_SNAP_M,
    DEFAULT_REGION,
    DEFAULT_SEED,
    DEFAULT_WORKSHOPS,
    max_snap_m,
    n_candidates,
    time_limit_s,
)

__all__ = [
    "LAYOUTS",
    "OBJECTIVES",
    "ScenarioSpec",
    "WorkshopSize",
    "load_scenario",
    "save_scenario",
]

#: The three ways of organising service.
LAYOUTS: tuple[str, ...] = ("in-house", "outsourced", "two-tier")

_PATH_SUFFIXES = (".osm", ".pbf", ".bz2", ".gz", ".graphml", ".xml")


@dataclass(frozen=True)
class WorkshopSize:
    """One size an own workshop may open in: its yearly fixed cost and its capacity.

    Attributes
    ----------
    name
        Label used in results and in a sites file's ``sizes`` column (``"small"``, ``"2 tech"``).
    fixed_cost_eur
        Yearly fixed cost of a workshop of this size (EUR; rent, staff, stores).
    capacity_jobs
        Jobs per year a workshop of this size can do.
    technicians
        Technicians it employs, for people reading the plan (optional).
    """

    name: str
    fixed_cost_eur: float
    capacity_jobs: float
    technicians: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "," in self.name:
            raise InputError(
                f"a size needs a name without commas, got {self.name!r}", field="sizes"
            )
        object.__setattr__(self, "name", self.name.strip())
        for key in ("fixed_cost_eur", "capacity_jobs", "technicians"):
            value = getattr(self, key)
            if value is None and key == "technicians":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(
                    f"size {self.name!r}: {key} must be a number, got {value!r}", field="sizes"
                )
            if not math.isfinite(value) or value < 0 or (key == "capacity_jobs" and value <= 0):
                raise InputError(
                    f"size {self.name!r}: {key} must be "
                    + ("> 0" if key == "capacity_jobs" else ">= 0")
                    + f", got {value!r}",
                    field="sizes",
                )
            object.__setattr__(self, key, float(value))

    def to_dict(self) -> dict[str, Any]:
        """The size as a TOML table (``technicians`` only when given)."""
        out: dict[str, Any] = {
            "name": self.name,
            "fixed_cost_eur": self.fixed_cost_eur,
            "capacity_jobs": self.capacity_jobs,
        }
        if self.technicians is not None:
            out["technicians"] = self.technicians
        return out


def _sizes(value: object) -> tuple[WorkshopSize, ...]:
    """The ``sizes`` field from WorkshopSize objects or mappings (as read from TOML)."""
    if value is None:
        return ()
    if isinstance(value, Mapping | str | bytes):
        raise InputError(
            "must be a list of sizes ([[sizes]] tables with name, fixed_cost_eur, "
            "capacity_jobs and optionally technicians)",
            field="sizes",
        )
    out: list[WorkshopSize] = []
    allowed = [f.name for f in dataclasses.fields(WorkshopSize)]
    for item in value:  # type: ignore[attr-defined]
        if isinstance(item, WorkshopSize):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise InputError(f"each size must be a table, got {item!r}", field="sizes")
        unknown = sorted(set(item) - set(allowed))
        missing = sorted({"name", "fixed_cost_eur", "capacity_jobs"} - set(item))
        if unknown or missing:
            raise InputError(
                f"size {dict(item)!r}: "
                + (f"unknown key(s) {unknown}; " if unknown else "")
                + (f"missing {missing}; " if missing else "")
                + f"allowed keys: {allowed}",
                field="sizes",
            )
        out.append(WorkshopSize(**dict(item)))
    names = [size.name for size in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"size names must be unique; repeated: {dup}", field="sizes")
    return tuple(out)


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
        Travel-time multiplier passed to :func:`planner.roads.network.load_region`.
    speeds
        Speed (km/h) per OSM ``highway`` class overriding the defaults, or ``None``.
    n_candidates
        Own candidate sites generated when ``sites`` has none.
    capacitated
        Respect workshop capacity (technicians x jobs per technician) in own workshops.
    two_tier_partners
        Two-tier only: partner repair shops may serve as workshops too (supplied from the
        office, paid per job, no fixed cost), next to own workshops.
    crs
        CRS of x/y columns in the customer and site files (for example ``"EPSG:32633"``);
        lat/lon files need none.
    generate_candidates
        Whether generated candidate workshops (on main roads near demand) are added to the
        user's site list: ``None`` (default) adds them when the list has no own workshop with
        status ``candidate`` (so "keep my 2 existing workshops and find 3 more" works with a
        list of existing workshops only), ``True`` always, ``False`` never.
    max_snap_m
        Farthest distance (m) from a road a customer or site may be; farther ones are left
        out with a warning.
    budget_per_year
        Plan within a budget: the yearly network cost (fixed costs, partner fees, deliveries
        and lost margin; not the customers' time) may not exceed this many EUR, and the
        engine picks the number of workshops (and their sites) with the least customer
        travel that fits. ``workshops`` is then ignored. ``None`` (default): plan for
        ``workshops``.
    meet_standard
        Plan the fewest workshops that meet the service standard: the engine finds the
        fewest sites (existing ones included) from which every customer is reached within
        its ``service_standard_min``, and plans that many workshops. ``workshops`` is then
        ignored; cannot be combined with ``budget_per_year``.
    sizes
        Sizes own workshops may open in (:class:`WorkshopSize`: name, yearly fixed cost,
        capacity in jobs). With sizes the in-house layout chooses sites and sizes together
        (:func:`planner.models.sized_fixed_charge`, capacities respected, money objective:
        fixed costs plus the value of customer time); a site file's ``sizes`` column may limit
        the sizes of a site (names, comma-separated). Empty (default): one size, from the
        Costs page.
    product_class
        Product class whose repair businesses in OpenStreetMap are partner candidates (one
        of :data:`planner.inputs.sites.PRODUCT_CLASSES`: ``car``, ``electronics``,
        ``appliance``, ``bicycle``); partner rows of the site file are used as they are.
        The same class's OSM repair shops that are not our partners are the competitors of
        the market objectives.
    bbox
        Trim the road network to this box ``(west, south, east, north)`` in degrees while
        reading it (:mod:`planner.roads.trim`); None (default): see ``margin_km``.
    margin_km
        A road file (not a bundled region) is trimmed to the customers' extent plus this many
        km (default 30) when a customer file is given; None keeps the whole file.
    objective
        What the plan optimises (:data:`planner.results.market.OBJECTIVES`): ``min_travel``
        (default: the least customer travel), or under the market model (customers share
        their jobs among our sites, the competitors and not coming at all by distance):
        ``max_capture`` (most expected jobs won with ``workshops`` sites),
        ``target_share`` (fewest sites winning ``target_share`` of all jobs) or
        ``max_profit`` (most ``margin_per_job_eur`` x jobs won - fixed costs, at most
        ``workshops`` sites; ``"auto"`` for no cap). Existing sites stay open.
    target_share
        Share of all jobs (0-1) the ``target_share`` objective must win.
    demand_model
        The market model's distance decay, attractiveness and outside option
        (:class:`planner.results.market.DemandModel`: the literature default, typed in, or
        fitted by ``planner calibrate``); TOML table ``[demand_model]``.

    Defaults come from :mod:`planner.settings`; ``time_limit_s``, ``n_candidates`` and
    ``max_snap_m`` follow ``PLANNER_TIME_LIMIT_S``, ``PLANNER_CANDIDATES`` and
    ``PLANNER_MAX_SNAP_M`` when set (read when the spec is made).
    """

    name: str = "scenario"
    region: str = DEFAULT_REGION
    customers: Path | None = None
    sites: Path | None = None
    layout: str = "in-house"
    workshops: int | None = DEFAULT_WORKSHOPS
    parameters: CostParameters = field(default_factory=CostParameters)
    service_standard_min: Mapping[str, float] = field(
        default_factory=lambda: {"default": DEFAULT_SERVICE_STANDARD_MIN}
    )
    seed: int = DEFAULT_SEED
    time_limit_s: float = field(default_factory=time_limit_s)
    congestion: float = 1.0
    speeds: Mapping[str, float] | None = None
    n_candidates: int = field(default_factory=n_candidates)
    capacitated: bool = False
    two_tier_partners: bool = False
    crs: str | None = None
    generate_candidates: bool | None = None
    max_snap_m: float = field(default_factory=max_snap_m)
    budget_per_year: float | None = None
    meet_standard: bool = False
    product_class: str = DEFAULT_PRODUCT_CLASS
    sizes: tuple[WorkshopSize, ...] = ()
    bbox: tuple[float, float, float, float] | None = None
    margin_km: float | None = DEFAULT_MARGIN_KM
    objective: str = "min_travel"
    target_share: float | None = None
    demand_model: DemandModel = field(default_factory=DemandModel)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", _sizes(self.sizes))
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
        if not (self.max_snap_m > 0):
            raise InputError(f"must be > 0, got {self.max_snap_m!r}", field="max_snap_m")
        if self.generate_candidates not in (None, True, False):
            raise InputError(
                f"must be true, false or left out (auto), got {self.generate_candidates!r}",
                field="generate_candidates",
            )
        if self.budget_per_year is not None:
            if isinstance(self.budget_per_year, bool) or not isinstance(
                self.budget_per_year, int | float
            ):
                raise InputError(
                    f"must be EUR per year or left out, got {self.budget_per_year!r}",
                    field="budget_per_year",
                )
            if not (math.isfinite(self.budget_per_year) and self.budget_per_year > 0):
                raise InputError(
                    f"must be > 0 EUR per year, got {self.budget_per_year!r}",
                    field="budget_per_year",
                )
            object.__setattr__(self, "budget_per_year", float(self.budget_per_year))
        if not isinstance(self.meet_standard, bool):
            raise InputError(
                f"must be true or false, got {self.meet_standard!r}", field="meet_standard"
            )
        if self.meet_standard and self.budget_per_year is not None:
            raise InputError(
                "meet_standard and budget_per_year both pick the number of workshops; "
                "set one of them, not both",
                field="meet_standard",
            )
        if self.product_class not in PRODUCT_CLASSES:
            raise InputError(
                f"unknown product class {self.product_class!r}; allowed: {list(PRODUCT_CLASSES)}",
                field="product_class",
            )
        if self.bbox is not None:
            object.__setattr__(self, "bbox", area_from_bbox(self.bbox).bbox)
        if self.margin_km is not None:
            if isinstance(self.margin_km, bool) or not isinstance(self.margin_km, int | float):
                msg = f"must be km or left out, got {self.margin_km!r}"
                raise InputError(msg, field="margin_km")
            if not (math.isfinite(self.margin_km) and self.margin_km >= 0):
                raise InputError(f"must be >= 0 km, got {self.margin_km!r}", field="margin_km")
            object.__setattr__(self, "margin_km", float(self.margin_km))
        self._check_market()
        object.__setattr__(self, "max_snap_m", float(self.max_snap_m))
        object.__setattr__(self, "time_limit_s", float(self.time_limit_s))
        object.__setattr__(self, "congestion", float(self.congestion))

    def _check_market(self) -> None:
        """The market objective's fields fit together (see the class docstring)."""
        if self.objective not in OBJECTIVES:
            raise InputError(
                f"unknown objective {self.objective!r}; allowed: {list(OBJECTIVES)}",
                field="objective",
            )
        if isinstance(self.demand_model, Mapping):
            object.__setattr__(self, "demand_model", DemandModel.from_dict(self.demand_model))
        if not isinstance(self.demand_model, DemandModel):
            raise InputError("must be a table of decay settings", field="demand_model")
        if self.objective == "target_share":
            share = self.target_share
            if isinstance(share, bool) or not isinstance(share, int | float):
                raise InputError(
                    f"the target_share objective needs a share of all jobs in (0, 1], "
                    f"got {share!r}",
                    field="target_share",
                )
            if not (0 < share <= 1):
                raise InputError(f"must be in (0, 1], got {share!r}", field="target_share")
            object.__setattr__(self, "target_share", float(share))
        elif self.target_share is not None:
            raise InputError(
                "target_share is only used with objective = 'target_share'", field="target_share"
            )
        if self.objective == "min_travel":
            return
        for name, on in (
            ("budget_per_year", self.budget_per_year is not None),
            ("meet_standard", self.meet_standard),
            ("capacitated", self.capacitated),
        ):
            if on:
                raise InputError(
                    f"objective {self.objective!r} (market model) cannot be combined with "
                    f"{name}; use objective = 'min_travel' for it",
                    field="objective",
                )
        if self.objective == "max_capture" and self.workshops is None:
            raise InputError(
                "objective 'max_capture' needs a number of workshops; for 'auto' use "
                "objective = 'max_profit' (the margin decides)",
                field="workshops",
            )

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
        if self.crs is not None:
            out["crs"] = self.crs
        if self.generate_candidates is not None:
            out["generate_candidates"] = self.generate_candidates
        if self.max_snap_m != DEFAULT_MAX_SNAP_M:
            out["max_snap_m"] = self.max_snap_m
        if self.budget_per_year is not None:
            out["budget_per_year"] = self.budget_per_year
        if self.meet_standard:
            out["meet_standard"] = True
        if self.product_class != DEFAULT_PRODUCT_CLASS:
            out["product_class"] = self.product_class
        if self.sizes:
            out["sizes"] = [size.to_dict() for size in self.sizes]
        if self.bbox is not None:
            out["bbox"] = list(self.bbox)
        if self.margin_km != DEFAULT_MARGIN_KM:
            out["margin_km"] = self.margin_km if self.margin_km is not None else "none"
        if self.objective != "min_travel":
            out["objective"] = self.objective
        if self.target_share is not None:
            out["target_share"] = self.target_share
        if self.demand_model != DemandModel():
            out["demand_model"] = self.demand_model.to_dict()
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
        if isinstance(values.get("demand_model"), Mapping):
            values["demand_model"] = DemandModel.from_dict(values["demand_model"])
        if values.get("workshops") == "auto":
            values["workshops"] = None
        if values.get("margin_km") == "none":
            values["margin_km"] = None
        for key in ("customers", "sites"):
            if values.get(key) is not None:
                values[key] = _resolve(values[key], base_dir)
        region = values.get("region")
        if isinstance(region, str) and _looks_like_path(region):
            resolved = _resolve(region, base_dir)
            # a catalog id such as "europe/greece" is no file: the front door resolves it
            if resolved.exists() or region.lower().endswith(_PATH_SUFFIXES) or "\\" in region:
                values["region"] = str(resolved)
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
