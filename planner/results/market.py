"""The market model: how many of a customer's jobs come to our sites, given distance and rivals.

A Huff (1964) / multinomial-logit rule. Customer ``i`` gives each reachable shop ``k`` the
attraction ``a_k * f(t_ik)``: the shop's attractiveness times a decay of the travel time
``t_ik`` in minutes, in one of ArcGIS Location-Allocation's two forms,

* ``power``:        ``f(t) = max(t, min_minutes) ** -parameter`` (lambda; default 1.5),
* ``exponential``:  ``f(t) = exp(-parameter * t)`` (beta per minute; default 0.05),

and brings us the share ``U_i / (O_i + U_i)`` of its jobs, where ``U_i`` sums the attraction
of our open sites and ``O_i`` (``outside``) that of the competitors plus **not coming at all**:
that option is one shop of attractiveness 1 at ``outside_minutes`` (default 30 minutes). A
customer whose only shop is ours, ``outside_minutes`` away, is as likely to leave the job
undone (or do it themselves) as to come; nearer, it comes more often. Our own sites have
attractiveness ``own_attractiveness`` (relative to an ordinary competitor at 1).

The defaults are the literature's: Huff's power form with lambda between 1.5 and 2 for
shopping trips; we take 1.5, the lower end, because a repair is a planned, less frequent trip
than daily shopping and customers drive farther for it. Fit your own with ``planner
calibrate`` (:mod:`planner.register.calibration`) when you have a job history.

This module holds the vocabulary (:class:`DemandModel`, :func:`decay`,
:func:`utility_matrix`) and the evaluation of a set of open sites (:func:`capture_tables`):
expected jobs won per customer and per site, jobs lost to competitors and to nobody, and the
cannibalisation between our own sites. The optimisation itself is
:func:`planner.models.max_capture`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import shapely

from planner.errors import InputError
from planner.models._base import sum_of_others

__all__ = [
    "DECAY_FORMS",
    "DEFAULT_DECAY_PARAMETER",
    "DEFAULT_OUTSIDE_MINUTES",
    "MARKET_KPI_LABELS",
    "OBJECTIVES",
    "SHARE_AREA_RESOLUTION",
    "DemandModel",
    "MarketOutcome",
    "capture_tables",
    "decay",
    "market_map_layers",
    "market_tables",
    "outside_vector",
    "share_by_area",
    "utility_matrix",
]

#: The decay forms (ArcGIS Location-Allocation's "power" and "exponential").
DECAY_FORMS: tuple[str, ...] = ("power", "exponential")
#: Literature default of each form: lambda 1.5 (Huff's range 1.5-2), beta 0.05 per minute.
DEFAULT_DECAY_PARAMETER: dict[str, float] = {"power": 1.5, "exponential": 0.05}
#: The "not coming at all" option: an ordinary shop this many minutes away.
DEFAULT_OUTSIDE_MINUTES = 30.0
#: Travel times below this many minutes count as this (the power decay is infinite at 0).
MIN_MINUTES = 1.0
#: What a plan optimises: the least travel (the classic models) or the market objectives.
OBJECTIVES: tuple[str, ...] = ("min_travel", "max_capture", "target_share", "max_profit")


@dataclass(frozen=True)
class DemandModel:
    """The decay rule, attractiveness and outside option of the market model.

    Attributes
    ----------
    form
        ``"power"`` or ``"exponential"`` (:data:`DECAY_FORMS`).
    parameter
        Lambda (power) or beta per minute (exponential); ``None`` takes
        :data:`DEFAULT_DECAY_PARAMETER` of the form.
    own_attractiveness
        Attractiveness of our sites relative to an ordinary competitor (1).
    outside_minutes
        The "not coming at all" option is one ordinary shop this many minutes away.
    min_minutes
        Shorter travel times count as this long.
    source
        ``"default"``, ``"typed"`` (entered by the user) or ``"calibrated"``.
    interval
        95 % confidence interval of ``parameter`` (calibrated models), else ``None``.
    details
        What the calibration reported (jobs, customers, log-likelihood, potential jobs...).
    """

    form: str = "power"
    parameter: float | None = None
    own_attractiveness: float = 1.0
    outside_minutes: float = DEFAULT_OUTSIDE_MINUTES
    min_minutes: float = MIN_MINUTES
    source: str = "default"
    interval: tuple[float, float] | None = None
    details: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.form not in DECAY_FORMS:
            raise InputError(
                f"unknown decay form {self.form!r}; allowed: {list(DECAY_FORMS)}",
                field="demand_model.form",
            )
        param = DEFAULT_DECAY_PARAMETER[self.form] if self.parameter is None else self.parameter
        if isinstance(param, bool) or not isinstance(param, int | float):
            raise InputError(f"must be a number, got {param!r}", field="demand_model.parameter")
        if not (math.isfinite(param) and param > 0):
            raise InputError(
                f"the decay parameter must be > 0, got {param!r}", field="demand_model.parameter"
            )
        object.__setattr__(self, "parameter", float(param))
        for name in ("own_attractiveness", "outside_minutes", "min_minutes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"must be a number, got {value!r}", field=f"demand_model.{name}")
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"must be > 0, got {value!r}", field=f"demand_model.{name}")
            object.__setattr__(self, name, float(value))
        if self.source not in ("default", "typed", "calibrated"):
            raise InputError(
                f"must be default, typed or calibrated, got {self.source!r}",
                field="demand_model.source",
            )
        if self.interval is not None:
            lo, hi = (float(x) for x in self.interval)
            object.__setattr__(self, "interval", (lo, hi))
        if self.details is not None:
            object.__setattr__(self, "details", dict(self.details))

    @property
    def value(self) -> float:
        """The decay parameter (never None after construction)."""
        return float(self.parameter)  # type: ignore[arg-type]

    @property
    def outside_utility(self) -> float:
        """Attraction of "not coming at all": ``f(outside_minutes)``."""
        return float(decay(np.array([self.outside_minutes]), self)[0])

    def describe(self) -> str:
        """One line for people, e.g. ``power decay, lambda = 1.50 (default)``."""
        name = "lambda" if self.form == "power" else "beta"
        unit = "" if self.form == "power" else " per min"
        ci = (
            f", 95 % CI {self.interval[0]:.2f}-{self.interval[1]:.2f}"
            if self.interval is not None
            else ""
        )
        extra = (
            f"; our sites {self.own_attractiveness:.2f} x a competitor"
            if self.own_attractiveness != 1.0
            else ""
        )
        return (
            f"{self.form} decay, {name} = {self.value:.3g}{unit}{ci} ({self.source}); "
            f"not coming at all = a shop {self.outside_minutes:g} min away{extra}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain TOML-friendly dict (``None`` values left out)."""
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.interval is not None:
            out["interval"] = list(self.interval)
        if self.details is not None:
            out["details"] = {
                k: v for k, v in dict(self.details).items() if isinstance(v, int | float | str)
            }
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> DemandModel:
        """Build from :meth:`to_dict` output; unknown keys raise :class:`InputError`."""
        values = dict(values)
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise InputError(
                f"unknown demand_model key(s) {unknown}; allowed: {sorted(allowed)}",
                field="demand_model",
            )
        if values.get("interval") is not None:
            values["interval"] = tuple(values["interval"])
        return cls(**values)


def decay(minutes: np.ndarray, model: DemandModel) -> np.ndarray:
    """``f(t)`` of travel times in minutes; 0 where ``t`` is inf or NaN (unreachable)."""
    t = np.asarray(minutes, dtype=float)
    ok = np.isfinite(t)
    out = np.zeros(t.shape)
    tt = np.maximum(t[ok], model.min_minutes)
    if model.form == "power":
        out[ok] = tt ** (-model.value)
    else:
        # relative to min_minutes, so that both forms give 1 at the shortest trip
        out[ok] = np.exp(-model.value * (tt - model.min_minutes))
    return out


def utility_matrix(
    cost_s: np.ndarray, model: DemandModel, attractiveness: np.ndarray | None = None
) -> np.ndarray:
    """``utility[i, j] = a_j * f(cost_s[i, j] / 60)`` (0 where unreachable).

    ``attractiveness`` per column multiplies ``model.own_attractiveness`` (NaN counts as 1).
    """
    u = decay(np.asarray(cost_s, dtype=float) / 60.0, model) * model.own_attractiveness
    if attractiveness is not None:
        a = np.asarray(attractiveness, dtype=float)
        u = u * np.where(np.isfinite(a), a, 1.0)[None, :]
    return u


def outside_vector(
    competitor_cost_s: np.ndarray | None,
    model: DemandModel,
    attractiveness: np.ndarray | None = None,
) -> np.ndarray | float:
    """``outside[i]``: summed attraction of the competitors plus not coming at all.

    ``competitor_cost_s`` is (customers x competitors) in seconds, or None (no competitor:
    the scalar attraction of not coming at all).
    """
    base = model.outside_utility
    if competitor_cost_s is None or np.asarray(competitor_cost_s).shape[1] == 0:
        return base
    f = decay(np.asarray(competitor_cost_s, dtype=float) / 60.0, model)
    if attractiveness is not None:
        a = np.asarray(attractiveness, dtype=float)
        f = f * np.where(np.isfinite(a), a, 1.0)[None, :]
    return f.sum(axis=1) + base


def capture_tables(
    utility: np.ndarray,
    competitors: np.ndarray | float,
    nobody: float,
    weights: np.ndarray,
    open_cols: np.ndarray,
    *,
    closed_compete: bool | np.ndarray = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Expected jobs won per demand point and per open site, with cannibalisation.

    Parameters
    ----------
    utility
        (demand points x candidates) attraction of our candidates.
    competitors
        Summed attraction of the competitors per demand point (or a scalar).
    nobody
        Attraction of not coming at all (:attr:`DemandModel.outside_utility`).
    weights
        Jobs per demand point (all shops, and those left undone).
    open_cols
        Open candidate columns.
    closed_compete
        True when every candidate is a shop that exists either way (outsourcing partners,
        :func:`planner.models.max_capture_partners`), or a bool per candidate marking those
        shops among new sites (two-tier with partners, :func:`planner.models.max_capture_mixed`):
        such a column not open is a competitor (its jobs count as lost to competitors), and
        one that closed would compete, so it takes nothing from our other sites
        (``cannibalised`` 0).

    Returns
    -------
    points, sites
        ``points``: per demand point ``jobs``, ``won`` (expected jobs with us),
        ``lost_to_competitors``, ``lost_to_nobody`` and ``share`` (won / jobs).
        ``sites``: one row per open column: ``column``, ``jobs_won``, ``jobs_added`` (what
        the plan would lose without the site), ``cannibalised`` (``jobs_won - jobs_added``:
        jobs it takes from our other sites).
    """
    cols = np.asarray(open_cols, dtype=np.int64)
    w = np.asarray(weights, dtype=float)
    comp = np.broadcast_to(np.asarray(competitors, dtype=float), w.shape)
    u_open = utility[:, cols]
    total_u = u_open.sum(axis=1)
    exists = np.broadcast_to(np.asarray(closed_compete, dtype=bool), (utility.shape[1],))
    if exists.any():  # the partners we do not contract compete with us
        shut = exists.copy()
        shut[cols] = False
        comp = comp + np.asarray(utility, dtype=float)[:, shut].sum(axis=1)
    out = comp + float(nobody)
    denom = out + total_u
    safe = np.where(denom > 0, denom, 1.0)
    won = np.where(denom > 0, w * total_u / safe, 0.0)
    points = pd.DataFrame(
        {
            "jobs": w,
            "won": won,
            "lost_to_competitors": w * comp / safe,
            "lost_to_nobody": w * float(nobody) / safe,
        }
    )
    points["share"] = np.where(w > 0, won / np.where(w > 0, w, 1.0), 0.0)
    rows = []
    others = sum_of_others(u_open)
    for k, j in enumerate(cols):
        own = w * u_open[:, k] / safe
        rest = others[:, k]
        d2 = out + rest
        without = np.where(d2 > 0, w * rest / np.where(d2 > 0, d2, 1.0), 0.0)
        # closed, a partner still competes: the denominator stays, only its own jobs are lost
        added = float(own.sum()) if exists[j] else float(won.sum() - without.sum())
        rows.append(
            {
                "column": int(j),
                "jobs_won": float(own.sum()),
                "jobs_added": added,
                "cannibalised": float(own.sum() - added),
            }
        )
    return points, pd.DataFrame(rows, columns=["column", "jobs_won", "jobs_added", "cannibalised"])


#: H3 resolution of the expected share by area (about 5 km2 hexagons).
SHARE_AREA_RESOLUTION = 7


@dataclass(frozen=True)
class MarketOutcome:
    """What a plan wins under the market model (one layout's result).

    Attributes
    ----------
    model
        The :class:`DemandModel` used.
    objective
        The spec's objective (:data:`OBJECTIVES`).
    kpis
        ``jobs_total``, ``jobs_won``, ``expected_share``, ``jobs_lost_to_competitors``,
        ``jobs_lost_to_nobody``, ``cannibalised_jobs``, ``profit_eur`` (margin x jobs won -
        fixed costs of the open sites), ``competitors``.
    sites
        Per open site: ``site_id``, ``name``, ``role``, ``jobs_won``, ``jobs_added`` (lost if
        it alone closed), ``cannibalised`` (taken from our other sites).
    customers
        Per customer: ``customer_id``, ``lat``, ``lon``, ``jobs``, ``won``,
        ``lost_to_competitors``, ``lost_to_nobody``, ``share``.
    competitors
        The competing shops (``site_id``, ``name``, ``lat``, ``lon``, ``attractiveness``,
        ``source``).
    """

    model: DemandModel
    objective: str
    kpis: Mapping[str, float]
    sites: pd.DataFrame
    customers: pd.DataFrame
    competitors: pd.DataFrame


def share_by_area(
    customers: pd.DataFrame, *, resolution: int = SHARE_AREA_RESOLUTION
) -> gpd.GeoDataFrame:
    """Expected share per H3 hexagon: ``area_id``, ``jobs``, ``won``, ``share``, polygon.

    ``customers`` as in :attr:`MarketOutcome.customers`. Returns a GeoDataFrame (EPSG:4326).
    """
    lat = customers["lat"].to_numpy(float)
    lon = customers["lon"].to_numpy(float)
    ok = np.isfinite(lat) & np.isfinite(lon)
    cells = np.array(
        [
            h3.latlng_to_cell(a, b, resolution) if k else ""
            for a, b, k in zip(lat, lon, ok, strict=True)
        ],
        dtype=object,
    )
    frame = pd.DataFrame(
        {
            "area_id": cells,
            "jobs": customers["jobs"].to_numpy(float),
            "won": customers["won"].to_numpy(float),
        }
    )[ok]
    grouped = frame.groupby("area_id", sort=True)[["jobs", "won"]].sum().reset_index()
    grouped["share"] = np.where(
        grouped["jobs"] > 0, grouped["won"] / grouped["jobs"].where(grouped["jobs"] > 0, 1.0), 0.0
    )
    polygons = [
        shapely.Polygon([(b, a) for a, b in h3.cell_to_boundary(c)]) for c in grouped["area_id"]
    ]
    return gpd.GeoDataFrame(grouped, geometry=polygons, crs="EPSG:4326")


def market_map_layers(outcome: MarketOutcome | None) -> dict[str, Any]:
    """``competitors`` and ``share_areas`` for :func:`planner.outputs.maps.result_map` (empty
    for a plan without the market model)."""
    if outcome is None:
        return {}
    return {
        "competitors": outcome.competitors,
        "share_areas": share_by_area(outcome.customers),
    }


#: The market KPIs for people, in the order reports show them.
MARKET_KPI_LABELS: dict[str, str] = {
    "jobs_total": "jobs a year in the market (all shops and none)",
    "jobs_won": "expected jobs won a year",
    "expected_share": "expected share of all jobs",
    "jobs_lost_to_competitors": "jobs a year lost to competitors",
    "jobs_lost_to_nobody": "jobs a year not done at all",
    "cannibalised_jobs": "jobs our sites take from each other",
    "profit_eur": "profit a year (margin x jobs won - fixed costs, EUR)",
    "competitors": "competing shops",
}


def market_tables(outcome: MarketOutcome) -> dict[str, pd.DataFrame]:
    """The market figures as tables for exports and reports: ``market`` (KPIs and the decay
    used), ``market sites`` (jobs won, added and cannibalised per site) and ``market areas``
    (expected share per H3 hexagon)."""
    rows: list[dict[str, Any]] = [{"figure": "objective", "value": outcome.objective}]
    rows.append({"figure": "demand model", "value": outcome.model.describe()})
    rows += [
        {"figure": label, "value": round(float(outcome.kpis[key]), 4)}
        for key, label in MARKET_KPI_LABELS.items()
        if key in outcome.kpis
    ]
    areas = share_by_area(outcome.customers)
    return {
        "market": pd.DataFrame(rows),
        "market sites": outcome.sites,
        "market areas": pd.DataFrame(areas.drop(columns="geometry")),
    }
