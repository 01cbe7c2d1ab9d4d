"""The market objectives in the engine: matrices for :func:`planner.models.max_capture`, and
what a solved plan wins.

Every layout solves the market objectives (``max_capture``, ``target_share``, ``max_profit``
of :attr:`~planner.engine.spec.ScenarioSpec.objective`) over its own columns: in-house the own
workshop candidates, outsourced the partner shops, two-tier the own workshops (and partners
with ``two_tier_partners``; the office is then the one cheapest to supply them, a second
step). :func:`market_inputs` builds the model's matrices from the instance's travel times, the
competitors and :class:`~planner.results.market.DemandModel`; :func:`market_outcome` evaluates
the open sites (jobs won and lost per site and customer, cannibalisation, expected share).

Partner shops exist whether or not we contract them: those we do not contract compete with us
(``partners_compete``). In the outsourced layout that makes the share linear in the contracted
set (:func:`planner.models.max_capture_partners`); new own workshops do not exist until opened
(:func:`planner.models.max_capture`); two-tier with partners chooses both kinds together
(:func:`planner.models.max_capture_mixed`).
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from planner.engine._progress import ProgressCallback, log_progress
from planner.engine.instance import (
    ScenarioInstance,
    competitor_matrix,
    gather_competitors,
    load_graph,
    prepare_instance,
)
from planner.engine.spec import ScenarioSpec
from planner.errors import InputError
from planner.inputs.sites import PARTNER_MATCH_M
from planner.models import Solution
from planner.register.calibration import Calibration, customer_history, fit_decay
from planner.register.store import JobSource
from planner.results.costs import CostParameters
from planner.results.market import (
    MarketOutcome,
    capture_tables,
    decay,
    utility_matrix,
)
from planner.roads.network import RoadGraph

logger = logging.getLogger(__name__)

__all__ = ["MarketInputs", "calibrate_history", "market_inputs", "market_outcome"]


class MarketInputs:
    """The market model over some candidate columns.

    Attributes
    ----------
    cols
        Candidate columns (of the instance) the utilities belong to.
    utility
        (demand points x ``cols``) our candidates' attraction.
    competitors
        Per demand point: the competitors' summed attraction.
    nobody
        Attraction of not coming at all.
    competitor_rows
        Which competitors of the instance take part (bool per competitor): not those that are
        one of ``cols``.
    twins
        Competitor rows of the site file that are one of ``cols`` by place (within
        :data:`~planner.inputs.sites.PARTNER_MATCH_M` of a partner): competitor id -> site id.
    closed_compete
        Per column of ``cols``: a shop that exists either way and competes with us while not
        open (the partner columns, with :func:`market_inputs`'s ``partners_compete``); default
        none.
    """

    def __init__(
        self,
        cols: np.ndarray,
        utility: np.ndarray,
        competitors: np.ndarray,
        nobody: float,
        competitor_rows: np.ndarray,
        *,
        twins: dict[str, str] | None = None,
        closed_compete: np.ndarray | None = None,
    ) -> None:
        self.cols = cols
        self.utility = utility
        self.competitors = competitors
        self.nobody = nobody
        self.competitor_rows = competitor_rows
        self.twins = dict(twins or {})
        self.closed_compete = (
            np.zeros(cols.size, dtype=bool)
            if closed_compete is None
            else np.asarray(closed_compete, dtype=bool)
        )

    @property
    def outside(self) -> np.ndarray:
        """``outside[i]`` of :func:`planner.models.max_capture` (and of
        :func:`planner.models.max_capture_partners`, which adds the partners not contracted
        itself): the competitors that are none of ``cols`` plus nobody."""
        return self.competitors + self.nobody


def market_inputs(
    sinst: ScenarioInstance, cols: np.ndarray, *, partners_compete: bool = False
) -> MarketInputs:
    """Utilities of candidate columns ``cols`` and the outside attraction per demand point.

    A competitor that is itself one of ``cols`` is counted once, as that column, not in the
    outside attraction: the same ``site_id`` (an OpenStreetMap repair shop that is also a
    partner candidate), the same OSM object (``osm_ref``), or, for a partner column, a
    competitor within :data:`~planner.inputs.sites.PARTNER_MATCH_M` (a site file's competitor
    row naming a partner shop; listed in :attr:`MarketInputs.twins`).

    With ``partners_compete`` (the outsourced layout, two-tier with partners) every partner
    column is a shop that exists whether or not we contract it, and those not contracted
    compete with us through their utility (:func:`planner.models.max_capture_partners`,
    :func:`planner.models.max_capture_mixed`); own candidates exist only when opened.
    Without it a partner column that is not open does not compete
    (:func:`planner.models.max_capture`).
    Our candidates' ``attractiveness`` column, where given, multiplies
    :attr:`~planner.results.market.DemandModel.own_attractiveness`; a partner shop attracts
    customers alike contracted or not.

    Raises
    ------
    InputError
        When the instance was prepared without competitors (a ``min_travel`` spec).
    """
    if sinst.competitors is None or sinst.competitor_cost_s is None:
        raise InputError(
            "the market objectives need the competitors' travel times; prepare the instance "
            "from a spec with a market objective (prepare_scenario(spec) with spec.objective "
            "= 'max_capture', 'target_share' or 'max_profit')",
            field="objective",
        )
    model = sinst.spec.demand_model
    inst = sinst.instance
    cols = np.asarray(cols, dtype=np.int64)
    cands = inst.candidates
    attract = (
        pd.to_numeric(cands["attractiveness"], errors="coerce").to_numpy(float)[cols]
        if "attractiveness" in cands
        else None
    )
    utility = utility_matrix(inst.cost_s[:, cols], model, attract)
    comp = sinst.competitors
    same, twins = _competitors_among(comp, cands.iloc[cols])
    rows = ~same
    cost = sinst.competitor_cost_s[:, rows]
    a = (
        pd.to_numeric(comp["attractiveness"], errors="coerce").fillna(1.0).to_numpy(float)[rows]
        if "attractiveness" in comp
        else np.ones(int(rows.sum()))
    )
    pull = (decay(cost / 60.0, model) * a[None, :]).sum(axis=1) if cost.shape[1] else None
    competitors = np.zeros(utility.shape[0]) if pull is None else pull
    return MarketInputs(
        cols,
        utility,
        competitors,
        model.outside_utility,
        rows,
        twins=twins,
        closed_compete=partners_compete & np.isin(cols, np.asarray(sinst.columns["partner"])),
    )


def _osm_keys(frame: pd.DataFrame) -> np.ndarray:
    """``osm:<ref>`` of each row with an ``osm_ref``, else its ``site_id``."""
    ids = frame["site_id"].astype(str).to_numpy(dtype=object)
    if "osm_ref" not in frame:
        return ids
    ref = frame["osm_ref"]
    has = ref.notna().to_numpy() & (ref.astype(str).str.strip() != "").to_numpy()
    out = ids.copy()
    out[has] = np.char.add("osm:", ref[has].astype(str).to_numpy().astype(str))
    return out


def _competitors_among(
    competitors: pd.DataFrame, columns: pd.DataFrame
) -> tuple[np.ndarray, dict[str, str]]:
    """Which competitors are one of the candidate ``columns`` (bool per competitor), and the
    site file's competitor rows matched to a partner column by place (id -> site id)."""
    same = np.zeros(len(competitors), dtype=bool)
    if not len(competitors) or not len(columns):
        return same, {}
    comp_ids = competitors["site_id"].astype(str).to_numpy()
    col_ids = columns["site_id"].astype(str).to_numpy()
    same |= np.isin(comp_ids, col_ids)
    same |= np.isin(_osm_keys(competitors), _osm_keys(columns))
    kinds = columns["kind"].astype(str).to_numpy() if "kind" in columns else np.array([])
    partners = columns[kinds == "partner"] if kinds.size else columns.iloc[:0]
    twins: dict[str, str] = {}
    plat = pd.to_numeric(partners["lat"], errors="coerce").to_numpy(float)
    plon = pd.to_numeric(partners["lon"], errors="coerce").to_numpy(float)
    clat = pd.to_numeric(competitors["lat"], errors="coerce").to_numpy(float)
    clon = pd.to_numeric(competitors["lon"], errors="coerce").to_numpy(float)
    ok = np.isfinite(plat) & np.isfinite(plon)
    # OSM shops near our partner rows were left out when gathered; two OSM shops near each
    # other are two shops: only the site file's rows are matched by place
    from_file = (
        (competitors["source"].astype(str) != "osm").to_numpy()
        if "source" in competitors
        else np.ones(len(competitors), dtype=bool)
    )
    look = np.flatnonzero(~same & from_file & np.isfinite(clat) & np.isfinite(clon))
    if ok.any() and look.size:
        lat0 = float(np.mean(plat[ok]))
        tree = cKDTree(_local_m(plon[ok], plat[ok], lat0))
        dist, nearest = tree.query(_local_m(clon[look], clat[look], lat0))
        hit = np.asarray(dist) <= PARTNER_MATCH_M
        ids = partners["site_id"].astype(str).to_numpy()[ok]
        for row, k in zip(look[hit], np.asarray(nearest)[hit], strict=True):
            same[row] = True
            twins[str(comp_ids[row])] = str(ids[k])
    return same, twins


def _local_m(lon: np.ndarray, lat: np.ndarray, lat0: float) -> np.ndarray:
    """Equirectangular metres around latitude ``lat0`` (a small region)."""
    return np.column_stack([lon * 111_320.0 * np.cos(np.deg2rad(lat0)), lat * 110_574.0])


def market_outcome(
    sinst: ScenarioInstance,
    inputs: MarketInputs,
    solution: Solution,
    *,
    weights: np.ndarray,
    params: CostParameters,
    fixed_cost_eur: np.ndarray,
    roles: dict[int, str] | None = None,
) -> MarketOutcome:
    """What the open sites of ``solution`` win (``solution.open`` in full instance columns).

    ``weights`` are jobs per demand point (the market's jobs, all shops and none);
    ``fixed_cost_eur`` per column of ``inputs.cols`` (for the profit KPI).
    """
    inst = sinst.instance
    local = np.flatnonzero(np.isin(inputs.cols, np.asarray(solution.open)))
    points, per_site = capture_tables(
        inputs.utility,
        inputs.competitors,
        inputs.nobody,
        weights,
        local,
        closed_compete=inputs.closed_compete,
    )
    cands = inst.candidates
    full_cols = inputs.cols[per_site["column"].to_numpy(np.int64)]
    kinds = cands["kind"].astype(str).to_numpy() if "kind" in cands else None
    sites = pd.DataFrame(
        {
            "site_id": cands["site_id"].astype(str).to_numpy()[full_cols],
            "name": cands["name"].fillna("").astype(str).to_numpy()[full_cols]
            if "name" in cands
            else "",
            "role": [
                (roles or {}).get(int(j))
                or ("partner" if kinds is not None and kinds[j] == "partner" else "workshop")
                for j in full_cols
            ],
            "status": cands["status"].astype(str).to_numpy()[full_cols]
            if "status" in cands
            else "candidate",
            "jobs_won": per_site["jobs_won"].to_numpy(float),
            "jobs_added": per_site["jobs_added"].to_numpy(float),
            "cannibalised": per_site["cannibalised"].to_numpy(float),
        }
    )
    # per customer: its demand point's share of the customer's own jobs
    customers = inst.customers
    d_of_c = inst.demand_of_customer
    jobs = customers["weight"].to_numpy(float) * params.jobs_per_weight
    share = np.zeros(len(customers))
    comp_share = np.zeros(len(customers))
    nobody_share = np.zeros(len(customers))
    ok = d_of_c >= 0
    w_pt = points["jobs"].to_numpy(float)
    safe = np.where(w_pt > 0, w_pt, 1.0)
    share[ok] = points["share"].to_numpy(float)[d_of_c[ok]]
    comp_share[ok] = (points["lost_to_competitors"].to_numpy(float) / safe)[d_of_c[ok]]
    nobody_share[ok] = (points["lost_to_nobody"].to_numpy(float) / safe)[d_of_c[ok]]
    cust = pd.DataFrame(
        {
            "customer_id": customers["customer_id"].astype(str).to_numpy(),
            "lat": customers["lat"].to_numpy(float),
            "lon": customers["lon"].to_numpy(float),
            "jobs": jobs,
            "won": jobs * share,
            "lost_to_competitors": jobs * comp_share,
            "lost_to_nobody": jobs * nobody_share,
            "share": share,
        }
    )
    total = float(w_pt.sum())
    won = float(points["won"].sum())
    fixed = float(np.sum(np.asarray(fixed_cost_eur, dtype=float)[local]))
    comp = sinst.competitors
    competitors = (
        comp[inputs.competitor_rows]
        .drop(columns="geometry", errors="ignore")
        .reset_index(drop=True)
        if comp is not None
        else pd.DataFrame()
    )
    if inputs.closed_compete.any():
        competitors = pd.concat(
            [competitors, _partners_not_contracted(sinst, inputs, local)], ignore_index=True
        )
    keep = [
        c
        for c in ("site_id", "name", "kind", "lat", "lon", "attractiveness", "source", "osm_tag")
        if c in competitors
    ]
    kpis = {
        "jobs_total": total,
        "jobs_won": won,
        "expected_share": won / total if total > 0 else 0.0,
        "jobs_lost_to_competitors": float(points["lost_to_competitors"].sum()),
        "jobs_lost_to_nobody": float(points["lost_to_nobody"].sum()),
        "cannibalised_jobs": float(sites["cannibalised"].sum()),
        "profit_eur": params.margin_per_job_eur * won - fixed,
        "competitors": float(len(competitors)),
    }
    return MarketOutcome(
        model=sinst.spec.demand_model,
        objective=sinst.spec.objective,
        kpis=kpis,
        sites=sites,
        customers=cust,
        competitors=competitors[keep],
    )


def _partners_not_contracted(
    sinst: ScenarioInstance, inputs: MarketInputs, open_local: np.ndarray
) -> pd.DataFrame:
    """The partner columns not open, as competitors (``kind = partner``), with the
    attractiveness they compete with (that of our sites times their own)."""
    closed = np.setdiff1d(np.flatnonzero(inputs.closed_compete), open_local)
    cands = sinst.instance.candidates.iloc[inputs.cols[closed]]
    out = cands.drop(columns="geometry", errors="ignore").reset_index(drop=True)
    own = sinst.spec.demand_model.own_attractiveness
    a = (
        pd.to_numeric(out["attractiveness"], errors="coerce").fillna(1.0).to_numpy(float)
        if "attractiveness" in out
        else np.ones(len(out))
    )
    out["attractiveness"] = own * a
    out["kind"] = "partner"
    return out


def calibrate_history(
    spec: ScenarioSpec,
    customers: gpd.GeoDataFrame,
    jobs: JobSource,
    sites: gpd.GeoDataFrame,
    *,
    form: str = "power",
    graph: RoadGraph | None = None,
    as_of: str | pd.Timestamp | None = None,
    progress: ProgressCallback | None = None,
) -> Calibration:
    """Fit the decay of ``spec``'s region from a job history (``planner calibrate``).

    Each customer's travel time is to the site that did most of its jobs (``served_by``,
    matched to the ``site_id`` of ``sites``), else to its nearest own site (our workshops and
    partners of ``sites``, any status but ``excluded``); the competitors are those of a market
    plan (:func:`planner.engine.instance.gather_competitors`: the site file's competitor rows
    and the region's OSM repair shops that are not ours). See
    :func:`planner.register.calibration.fit_decay` for the model.
    """
    report = progress or log_progress
    if graph is None:
        report(f"Loading the road network of {spec.region}", 0.02)
        graph = load_graph(spec)
    kinds = (
        sites["kind"].astype(str) if "kind" in sites else pd.Series("workshop", index=sites.index)
    )
    status = (
        sites["status"].astype(str)
        if "status" in sites
        else pd.Series("candidate", index=sites.index)
    )
    ours = sites[kinds.isin(["workshop", "partner"]).to_numpy() & (status != "excluded").to_numpy()]
    if len(ours) == 0:
        raise InputError(
            "the calibration needs our sites (kind = workshop or partner) in the site file: "
            "the travel time of each customer is to the site that served it",
            field="sites",
        )
    report("Gathering competitors", 0.1)
    competitors, warnings = gather_competitors(spec, sites, ours)
    for w in warnings:
        logger.warning(w)
    report("Computing travel times", 0.2)
    inst = prepare_instance(
        spec.region, customers, ours.reset_index(drop=True), graph=graph, max_snap_m=spec.max_snap_m
    )
    comp = competitor_matrix(graph, inst, competitors)
    history = customer_history(jobs, inst.customers, as_of=as_of)
    d_of_c = inst.demand_of_customer
    ok = d_of_c >= 0
    site_ids = inst.candidates["site_id"].astype(str).to_numpy()
    col_of = {sid: j for j, sid in enumerate(site_ids)}
    served = history["served_by"].map(lambda s: col_of.get(str(s), -1) if s else -1)
    served = served.to_numpy(np.int64)
    unknown = history["served_by"].notna().to_numpy() & (served < 0)
    if unknown.any():
        ids = sorted({str(s) for s in history.loc[unknown, "served_by"]})
        logger.warning(
            "%d customers were served by sites that are not ours in the site file (served_by "
            "%s%s; ours: kind workshop or partner, status not excluded): their travel time is "
            "to their nearest own site instead; add those sites to the site file to use theirs",
            int(unknown.sum()),
            ", ".join(repr(i) for i in ids[:5]),
            f" and {len(ids) - 5} more" if len(ids) > 5 else "",
        )
    cost = inst.cost_s
    nearest = np.full(len(history), -1, dtype=np.int64)
    nearest[ok] = np.argmin(cost[d_of_c[ok]], axis=1)
    col = np.where(served >= 0, served, nearest)
    travel_s = np.full(len(history), np.inf)
    travel_s[ok] = cost[d_of_c[ok], col[ok]]
    if inst.access_offset_s is not None:
        travel_s[ok] += inst.access_offset_s[ok]
    comp_min = np.full((len(history), comp.shape[1]), np.inf)
    comp_min[ok] = comp[d_of_c[ok]] / 60.0
    attract = (
        pd.to_numeric(competitors["attractiveness"], errors="coerce").fillna(1.0).to_numpy(float)
        if "attractiveness" in competitors
        else None
    )
    report("Fitting the decay", 0.9)
    return fit_decay(
        history["jobs"].to_numpy(float),
        history["years"].to_numpy(float),
        travel_s / 60.0,
        competitor_min=comp_min if comp.shape[1] else None,
        competitor_attractiveness=attract,
        form=form,
    )
