"""State, cached library calls and display helpers shared by the app's pages.

One workflow over one engine: the pages only read widgets and render. Everything a user enters
lives in ``st.session_state`` under the keys of :data:`DEFAULTS` (widget keys, kept across page
switches by :func:`init_state`) and under ``"uploads"`` (uploaded files as
:class:`planner.engine.workspace.InputFile`, which a file-upload widget cannot hold once its
page is left). :func:`current_spec` turns that state into the one
:class:`planner.engine.ScenarioSpec` every page solves, and :func:`current_inputs` gives the
uploaded customer and site files.

Heavy work is shared by all sessions of the server: the road graph with ``st.cache_resource``;
prepared instances (customers and candidates snapped, travel-time matrix) and solved results
through :func:`solves` (:class:`planner.hosting.solves.SharedSolves`: process-wide caches keyed
by the spec and the files, each key built once even when several sessions ask at the same
time). The job queue and the jobs' texts live in :mod:`planner.hosting`; formatting of results
in :mod:`planner.results.display`.

Long work (Plan's "Run", Compare's "Compare") runs in a background thread of the session
(:class:`Job`, :func:`start_job`): the page polls it with a fragment that shows the progress
line (with the solver's current bound, best answer and gap) and a **Stop** button; Stop sets
the job's ``threading.Event``, which the engine polls as ``should_stop``, and the best answer
so far is shown with its proven gap. The thread never calls Streamlit; the page collects its
result (:func:`collect_job`).
"""

from __future__ import annotations

import copy
import dataclasses
import io
import re
import threading
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import branca.colormap
import folium
import folium.elements
import geopandas as gpd
import numpy as np
import pandas as pd
import streamlit as st
import streamlit_folium
from streamlit_folium import st_folium

from app_pages import _account as account
from app_pages import _market as market_ui
from planner.engine import (
    LAYOUTS,
    ScenarioInstance,
    ScenarioSpec,
)
from planner.engine import workspace as ws
from planner.engine.instance import graph_area
from planner.engine.sizes import default_sizes
from planner.engine.spec import WorkshopSize
from planner.errors import PlannerError
from planner.hosting.cache import SharedCache
from planner.hosting.jobs import (
    Job,
    Progress,
    StopCallback,
    error_text,
    stop_at_progress,
    waiting_text,
)
from planner.hosting.queue import estimate_job_bytes
from planner.hosting.solves import CACHE_SIZES, SharedSolves, file_key, spec_key
from planner.hosting.workspaces import UPLOADS_DIR
from planner.inputs import customers as demand
from planner.inputs.sites import DEFAULT_PRODUCT_CLASS, PRODUCT_CLASSES, read_sites
from planner.inputs.validation import ValidationReport
from planner.outputs import assets, export, maps, report, road_layer
from planner.results import display
from planner.results.costs import CostParameters, describe_parameters
from planner.results.kpis import DEFAULT_SERVICE_STANDARD_MIN
from planner.results.market import market_map_layers
from planner.results.types import LayoutResult
from planner.roads import network
from planner.roads.trim import Area
from planner.settings import (
    DEFAULT_CANDIDATES,
    DEFAULT_MARGIN_KM,
    DEFAULT_TIME_LIMIT_S,
    DEFAULT_WORKSHOPS,
    offline,
)

T = TypeVar("T")

#: The shared cache's old name (tests and benchmarks import it from here).
_Memo = SharedCache
# Formatting of results, moved to planner.results.display (the CLI and report use it too).
PLAIN_KPIS = display.PLAIN_KPIS
assignment_table = display.assignment_table
cost_split = display.cost_split
minutes = display.minutes
money = display.money
percent = display.percent
plain_kpis = display.plain_kpis
shortlist_table = display.shortlist_table
solution_note = display.solution_note
travel_time_distribution = display.travel_time_distribution

#: Bundled regions offered in the app, default first.
REGIONS: tuple[str, ...] = ("malta", *sorted(r for r in network.REGIONS if r != "malta"))
MAX_WORKSHOPS = 30
#: Product classes whose repair businesses (OpenStreetMap tags) can be partners.
PRODUCT_CLASS_OPTIONS: tuple[str, ...] = tuple(PRODUCT_CLASSES)
MAP_HEIGHT_PX = 560
#: Largest upload, in MB; keep equal to ``server.maxUploadSize`` in .streamlit/config.toml.
MAX_UPLOAD_MB = 200
OSM_CREDIT = (
    "Map data © [OpenStreetMap contributors](https://www.openstreetmap.org/copyright), ODbL 1.0."
)
#: Customer and site file formats accepted by the upload widgets.
UPLOAD_TYPES = ("csv", "txt", "tsv", "xlsx", "geojson", "json", "gpkg", "parquet")
#: Road file formats (the upload widget matches the last suffix: .pbf of .osm.pbf, .bz2...).
ROAD_TYPES = ("osm", "pbf", "bz2", "graphml", "xml")
CUSTOMERS_TEMPLATE = demand.DEMO_DIR / "customers_template.csv"

#: Uploads by role -> widget key. Sites come in three roles (see ``workspace.SITE_ROLES``).
UPLOAD_KEYS: dict[str, str] = {
    "customers": "customers_file",
    "existing": "existing_file",
    "candidates": "candidates_file",
    "partners": "partners_file",
    "roads": "roads_file",
    "scenario": "scenario_file",
}
UPLOAD_LABELS: dict[str, str] = {
    "customers": "customers",
    "existing": "your existing workshops",
    "candidates": "candidate locations",
    "partners": "partner repair shops",
}

_COST_PREFIX = "cost_"
#: Every value a user enters, by widget key, with its default.
DEFAULTS: dict[str, Any] = {
    "region": REGIONS[0],
    "scenario_name": "My scenario",
    "layout": "in-house",
    "workshops_auto": False,
    "workshops": DEFAULT_WORKSHOPS,
    "sla_min": float(DEFAULT_SERVICE_STANDARD_MIN),
    "generate_candidates": True,
    "n_candidates": DEFAULT_CANDIDATES,
    "time_limit_s": float(DEFAULT_TIME_LIMIT_S),
    "cmp_layouts": list(LAYOUTS),
    "cmp_kmax": 10,
    "cmp_klayout": "in-house",
    "cmp_rlayout": "in-house",
    "cmp_growth": 0.3,
    "cmp_slow": 0.3,
    "map_lines": False,
    "map_catchments": True,
    "online": False,
    "place": "",
    "budget_on": False,
    "budget_per_year": 750_000.0,
    "standard_on": False,
    "product_class": DEFAULT_PRODUCT_CLASS,
    "capacitated": False,
    "sizes_on": False,
    "sizes_rows": None,
    "margin_km": DEFAULT_MARGIN_KM,
    **market_ui.DEFAULTS,
    **{f"{_COST_PREFIX}{f.name}": f.default for f in dataclasses.fields(CostParameters)},
}


# ------------------------------------------------------------------------------------------
# state


#: A plain copy of every entered value (not a widget's key, so Streamlit never drops it).
KEPT_VALUES_KEY = "_planner_values"


def init_state() -> None:
    """Set defaults and keep every entered value across page switches and reruns.

    Streamlit forgets a widget's value when a page without that widget runs; writing the
    value back under its key makes it plain session state, which survives one run. That is not
    enough: Streamlit stores a widget-keyed value under the widget's id at the start of every
    run, and a run of a job panel (a fragment, which does not call this function) leaves it
    there alone, so a page switch right after one drops it. Every value is therefore also kept
    in a plain copy (:data:`KEPT_VALUES_KEY`) and restored from it when Streamlit has dropped
    it; without the copy the region fell back to Malta on the next page (and Malta's roads
    were loaded for nothing), and the Plan page's choices went back to their defaults. Call at
    the top of every page (and in ``app.py``).
    """
    state = st.session_state
    kept: dict[str, Any] = state.get(KEPT_VALUES_KEY) or {}
    requested = st.query_params.get("region")
    for key, default in DEFAULTS.items():
        if key in state:
            value = state[key]
        elif key in kept:  # a widget's value Streamlit dropped (see above)
            value = kept[key]
        elif key == "region" and requested in REGIONS:
            value = requested
        else:
            value = default
        state[key] = kept[key] = value
    state[KEPT_VALUES_KEY] = kept
    if "uploads" not in state:
        state["uploads"] = {}
    if "road_files" not in state:
        state["road_files"] = {}


def keep_value(key: str, value: Any) -> None:
    """Set an entered value (a widget's key) in a running script, after :func:`init_state`:
    in the session and in its plain copy, so that a page switch right after a job panel's run
    cannot bring back the old value (see :func:`init_state`)."""
    st.session_state[key] = value
    remember_values()


def remember_values() -> None:
    """Refresh the plain copy of the entered values from the session (a page calls this
    before a job panel, whose runs do not call :func:`init_state`)."""
    state = st.session_state
    kept: dict[str, Any] = state.get(KEPT_VALUES_KEY) or {}
    kept.update({key: state[key] for key in DEFAULTS if key in state})
    state[KEPT_VALUES_KEY] = kept


def remember_upload(role: str) -> None:
    """``on_change`` of an upload widget: keep the new file (or forget a removed one)."""
    value = st.session_state.get(UPLOAD_KEYS[role])
    uploads = st.session_state.setdefault("uploads", {})
    if value is None:
        uploads.pop(role, None)
    else:
        uploads[role] = ws.InputFile(value.name, value.getvalue())


def sync_upload(role: str, value: Any) -> ws.InputFile | None:
    """The file of ``role``: a new upload in ``value`` replaces the kept one."""
    uploads = st.session_state.setdefault("uploads", {})
    if value is not None:
        upload = ws.InputFile(value.name, value.getvalue())
        if uploads.get(role) != upload:
            uploads[role] = upload
    return uploads.get(role)


def forget_upload(role: str) -> None:
    """Drop a kept upload (the "Remove" buttons)."""
    st.session_state.setdefault("uploads", {}).pop(role, None)


def current_parameters() -> CostParameters:
    """The cost assumptions entered on the Costs page."""
    state = st.session_state
    return CostParameters.from_dict(
        {
            f.name: float(state.get(f"{_COST_PREFIX}{f.name}", f.default))
            for f in dataclasses.fields(CostParameters)
        }
    )


def current_spec() -> ScenarioSpec:
    """The scenario the user has described on the Data, Plan and Costs pages."""
    state = st.session_state
    return ScenarioSpec(
        name=str(state.get("scenario_name") or "My scenario"),
        region=str(state.get("region", REGIONS[0])),
        layout=str(state.get("layout", "in-house")),
        workshops=None
        if state.get("workshops_auto") and state.get("objective") != "max_capture"
        else int(state.get("workshops", 5)),
        parameters=current_parameters(),
        service_standard_min={"default": float(state.get("sla_min", 30.0))},
        generate_candidates=_generate_candidates(state),
        n_candidates=int(state.get("n_candidates", DEFAULT_CANDIDATES)),
        time_limit_s=float(state.get("time_limit_s", DEFAULT_TIME_LIMIT_S)),
        budget_per_year=float(state["budget_per_year"])
        if state.get("budget_on") and not market_ui.market_on(state)
        else None,
        meet_standard=bool(state.get("standard_on"))
        and not state.get("budget_on")
        and not market_ui.market_on(state),
        product_class=str(state.get("product_class", DEFAULT_PRODUCT_CLASS)),
        capacitated=bool(state.get("capacitated", False)),
        sizes=current_sizes() if state.get("sizes_on") else (),
        bbox=current_box(),
        margin_km=float(state.get("margin_km", DEFAULT_MARGIN_KM)),
        **market_ui.spec_fields(state),
    )


def current_box() -> tuple[float, float, float, float] | None:
    """The box the user chose for the current region (the Data page's W,S,E,N or the box drawn
    on its map), else None: the roads are then trimmed to the customers' extent plus the
    spec's margin, as ``planner run`` does (:func:`roads_area`)."""
    box = st.session_state.get("area_box")
    if not box or box.get("region") != st.session_state.get("region"):
        return None
    return tuple(box["bbox"])  # type: ignore[return-value]


def sizes_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The Plan page's sizes table as rows for :class:`WorkshopSize` (blank rows dropped:
    the editor's empty new row, not user data)."""
    rows = []
    for row in table.to_dict("records"):
        if not str(row.get("name") or "").strip():
            continue
        technicians = row.get("technicians")
        rows.append(
            {
                "name": str(row["name"]).strip(),
                "fixed_cost_eur": float(row["fixed_cost_eur"]),
                "capacity_jobs": float(row["capacity_jobs"]),
                "technicians": None if pd.isna(technicians) else float(technicians),
            }
        )
    return rows


def current_sizes() -> tuple[WorkshopSize, ...]:
    """The Plan page's workshop sizes: the user's table, else the Costs page's three sizes
    (:func:`planner.engine.sizes.default_sizes`)."""
    rows = st.session_state.get("sizes_rows")
    if not rows:
        return default_sizes(current_parameters())
    return tuple(WorkshopSize(**row) for row in rows)


def _generate_candidates(state: Any) -> bool | None:
    """The spec's ``generate_candidates`` for the Plan page's "Also propose new sites" box.

    Ticked, it means what the library's default (``None``) does unless the uploads hold
    candidate locations (which ``None`` would use alone): ``True`` only then, so that the same
    question is the same spec as ``planner run`` builds (one cache entry, one instance).
    """
    if not state.get("generate_candidates", True):
        return False
    return True if state.get("uploads", {}).get("candidates") is not None else None


def current_inputs() -> tuple[ws.InputFile | None, ws.InputFile | None]:
    """The customer file (None: demo customers) and the combined site list (None: generated)."""
    uploads = st.session_state.get("uploads", {})
    sites = ws.combine_site_files({role: uploads.get(role) for role in ws.SITE_ROLES})
    return uploads.get("customers"), sites


def apply_saved(saved: ws.SavedScenario) -> None:
    """Load a reopened scenario into the session (widgets and uploads)."""
    state = st.session_state
    spec = saved.spec
    if "region" in saved.inputs:
        path = str(spec.region)
        state.setdefault("road_files", {})[path] = saved.inputs["region"].name
    state["region"] = spec.region
    state["scenario_name"] = spec.name
    state["layout"] = spec.layout
    state["workshops_auto"] = spec.workshops is None
    if spec.workshops is not None:
        state["workshops"] = spec.workshops
    state["sla_min"] = float(spec.service_standard_min.get("default", 30.0))
    state["generate_candidates"] = spec.generate_candidates is not False
    state["n_candidates"] = spec.n_candidates
    state["time_limit_s"] = spec.time_limit_s
    state["budget_on"] = spec.budget_per_year is not None
    if spec.budget_per_year is not None:
        state["budget_per_year"] = spec.budget_per_year
    state["standard_on"] = spec.meet_standard
    state["product_class"] = spec.product_class
    state["capacitated"] = spec.capacitated
    state["sizes_on"] = bool(spec.sizes)
    state["sizes_rows"] = [size.to_dict() for size in spec.sizes] or None
    if spec.bbox is not None:
        state["area_box"] = {"region": spec.region, "bbox": list(spec.bbox)}
    else:
        state.pop("area_box", None)
    if spec.margin_km is not None:
        state["margin_km"] = spec.margin_km
    market_ui.apply_spec(state, spec)
    for key, value in spec.parameters.to_dict().items():
        state[f"{_COST_PREFIX}{key}"] = float(value)
    uploads: dict[str, ws.InputFile] = {}
    if "customers" in saved.inputs:
        uploads["customers"] = saved.inputs["customers"]
    if "sites" in saved.inputs:
        # a saved site list already carries kind and status on every row
        uploads["candidates"] = saved.inputs["sites"]
    state["uploads"] = uploads


def scenario_inputs() -> dict[str, ws.InputFile]:
    """The input files of the current scenario, by spec field, for saving."""
    customers, sites = current_inputs()
    out: dict[str, ws.InputFile] = {}
    if customers is not None:
        out["customers"] = customers
    if sites is not None:
        out["sites"] = sites
    return out


# ------------------------------------------------------------------------------------------
# names and regions


def region_title(region: str) -> str:
    """Human name of a region: bundled title, uploaded road file name, or the place."""
    if region in network.REGIONS:
        return network.REGIONS[region].title
    path = Path(region)
    if path.parent.parent.name == UPLOADS_DIR and ROAD_FILE_NAME.fullmatch(path.name):
        # saved by save_road_file: the title needs no session state (a widget's format_func)
        return f"{path.name[ROAD_FILE_PREFIX_LEN:]} (uploaded roads)"
    files = st.session_state.get("road_files", {})
    if region in files:
        return f"{files[region]} (uploaded roads)"
    return Path(region).name if "/" in region else region


def region_options() -> list[str]:
    """Regions to choose from: the bundled ones and any road file uploaded in this session."""
    options = list(REGIONS) + list(st.session_state.get("road_files", {}))
    current = st.session_state.get("region")
    if current and current not in options:
        options.append(current)
    return options


#: Uploaded road files are saved as ``<12 hex digits of their sha256>-<name>``.
ROAD_FILE_NAME = re.compile(r"[0-9a-f]{12}-.+")
ROAD_FILE_PREFIX_LEN = 13


def save_road_file(upload: ws.InputFile) -> str:
    """Store an uploaded road file in the session's upload folder (once per content; deleted
    when the tab is closed, kept inside a scenario when saved) and return its path."""
    folder = account.uploads_dir()
    path = folder / f"{upload.sha256[: ROAD_FILE_PREFIX_LEN - 1]}-{upload.name}"
    if not path.exists():
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(upload.data)
        tmp.rename(path)
    st.session_state.setdefault("road_files", {})[str(path)] = upload.name
    return str(path)


# ------------------------------------------------------------------------------------------
# shared caches


@st.cache_resource(show_spinner=False)
def memo(name: str, size: int = 16) -> SharedCache:
    """The shared cache ``name`` (one per server process)."""
    return SharedCache(size, name)


#: Road graphs kept in memory by the server process (the last ones used).
GRAPH_CACHE_SIZE = 4


def load_graph(
    region: str, progress: Progress | None = None, *, area: Area | None = None
) -> network.RoadGraph:
    """Road graph of a region (trimmed to ``area``, see :func:`roads_area`), shared by all
    sessions (read-only), loaded once per process and area.

    Never draws: the first load reports its stages (with an ETA) to ``progress``, a plain
    callback such as a background job's (:func:`start_roads`, :func:`start_plan`), which the
    page shows with :func:`job_panel`. (A Streamlit element drawn from inside a cached
    function cannot be replayed on the next rerun: ``CacheReplayClosureError``.)
    """
    key = region if area is None else (region, area)
    return memo("graphs", GRAPH_CACHE_SIZE).get(
        key, lambda: network.load_region(region, progress=progress, area=area)
    )


def roads_area(spec: ScenarioSpec, customers: ws.InputFile | None) -> Area | None:
    """The area the roads of ``spec`` are trimmed to: the engine's answer
    (:func:`planner.engine.instance.graph_area`, as ``planner run``), the user's box, else
    for a road file the uploaded customers' extent plus ``spec.margin_km``; None: the whole
    region."""
    if spec.bbox is None and (customers is None or str(spec.region) in network.REGIONS):
        return None
    key = (str(spec.region), spec.bbox, spec.margin_km, _file_key(customers))

    def build() -> tuple[Area | None]:
        try:
            return (graph_area(spec, None if customers is None else customers.open()),)
        except PlannerError:
            return (None,)  # the customer check reports the file's problems

    return memo("areas", 64).get(key, build)[0]


def entry_area(entry: dict[str, Any]) -> Area | None:
    """:func:`roads_area` of a solved entry (Plan's or Compare's): the roads its map draws."""
    return roads_area(entry["spec"], entry.get("inputs", {}).get("customers"))


def current_area() -> Area | None:
    """:func:`roads_area` of the current spec and customer upload."""
    return roads_area(current_spec(), current_inputs()[0])


def graph_loaded(region: str, area: Area | None = None) -> bool:
    """Whether the road graph of ``region`` is in memory (:func:`load_graph` returns at once)."""
    return memo("graphs", GRAPH_CACHE_SIZE).has(region if area is None else (region, area))


@st.cache_resource(show_spinner=False)
def _roads_jobs() -> dict[Any, tuple[Job, list[Callable[[], bool]]]]:
    """The roads being loaded, per (region, area): one job for every session that waits."""
    return {}


_ROADS_LOCK = threading.Lock()


def start_roads(region: str, area: Area | None = None) -> Job:
    """Load the roads of ``region`` (trimmed to ``area``) in the background; the page shows
    the job's progress.

    One job per (region, area) for the whole server: a session asking for roads another
    session is already loading follows that job (one place in the queue, not one per user),
    and the load is given up only when every page waiting for it has been closed.
    """
    memo("graphs", GRAPH_CACHE_SIZE)  # warmed here: the thread calls no Streamlit command
    alive = account.session_alive()
    jobs = _roads_jobs()
    key = region if area is None else (region, area)
    with _ROADS_LOCK:
        known = jobs.get(key)
        if known is not None and not known[0].done:
            known[1].append(alive)
            st.session_state["roads_job"] = known[0]
            st.session_state.pop("roads_error", None)
            return known[0]
        watchers = [alive]

        def work(progress: Progress, should_stop: StopCallback) -> str:
            load_graph(region, progress, area=area)
            return region

        job = start_job(
            "roads",
            work,
            lambda loaded: {"region": loaded},
            alive=lambda: any(watch() for watch in list(watchers)),
        )
        jobs[key] = (job, watchers)
        return job


def roads_kept(region: str, area: Area | None) -> str | None:
    """What a trimmed graph holds (the library's sentence, as ``planner run`` prints it):
    "roads of 38,200 km2 around your 1,240 customers (+30 km), from greece-latest.osm.pbf of
    2026-11-30 (...)"; None for a whole region."""
    if area is None:
        return None
    kept = load_graph(region, area=area).graph.get("planner_report", {}).get("kept")
    return None if kept is None else str(kept)


def load_roads(region: str, area: Area | None = None) -> gpd.GeoDataFrame:
    """The road layer of every map of a region (trimmed to ``area``): the library's
    :func:`planner.outputs.road_layer.map_roads`, computed once per graph and shared by the
    server's sessions (and on disk). Not copied per call: read-only."""
    return road_layer.map_roads(load_graph(region, area=area))


@st.cache_data(show_spinner=False)
def load_demo_customers(region: str) -> gpd.GeoDataFrame:
    """Demo customers of a bundled region."""
    return demand.load_demo_customers(region)


@st.cache_data(show_spinner=False)
def demo_customer_count(region: str) -> int | None:
    """How many demo customers a region has (None: not a bundled region, no demo): a page
    that only names the number does not copy the table out of the cache on every rerun."""
    return len(load_demo_customers(region)) if region in REGIONS else None


def current_customers() -> tuple[gpd.GeoDataFrame, str]:
    """The customers the Data page holds (the upload's usable rows, else the demo customers),
    and where they come from."""
    region = current_spec().region
    upload, _sites = current_inputs()
    if upload is None:
        return load_demo_customers(region), f"the demo customers of {region_title(region)}"
    customers, _report = check_upload(
        "customers", region, upload.name, upload.data, area=current_area()
    )
    return customers, upload.name


#: Uploaded files whose check is kept (``check_upload``): each user's customer file and sites,
#: for twenty users and more (a smaller cache than the users' files checked them again on
#: every rerun of a page, in turn).
CHECK_CACHE_SIZE = 96


@st.cache_data(show_spinner=False, max_entries=CHECK_CACHE_SIZE)
def check_upload(
    role: str, region: str, name: str, data: bytes, area: Area | None = None
) -> tuple[gpd.GeoDataFrame, ValidationReport]:
    """Read and validate an uploaded customer or site file against the region's roads
    (trimmed to ``area``).

    Parsed in memory (never executed or unpickled); the report names the user's file.
    """
    upload = ws.InputFile(name, data).open()
    graph = load_graph(region, area=area)
    with network.fingerprint_once(graph, graph_fingerprint(region, area)):
        if role == "customers":
            table = demand.read_customers(upload, region=region, graph=graph)
            return table.valid, table.report
        sites = read_sites(upload, region=region, graph=graph)
        return sites.valid, sites.report


def graph_fingerprint(region: str, area: Area | None = None) -> str:
    """:func:`planner.roads.network.graph_fingerprint` of a shared graph (read-only), hashed
    once per graph: a check of an upload hashed the whole graph again to find its snapping
    index (a quarter of the check's time on Liechtenstein, 0.2-0.4 s on a country)."""
    key = region if area is None else (region, area)
    graph = load_graph(region, area=area)
    cache = memo("graph_fingerprints", GRAPH_CACHE_SIZE)
    cached = cache.get(key, lambda: (graph, network.graph_fingerprint(graph)))
    if cached[0] is not graph:  # the graph was loaded again meanwhile: hash the new one
        cache.forget(key)
        cached = cache.get(key, lambda: (graph, network.graph_fingerprint(graph)))
    return cached[1] if cached[0] is graph else network.graph_fingerprint(graph)


def region_hint(upload: ws.InputFile, region: str) -> str | None:
    """:func:`planner.engine.workspace.region_hint` of a file in a region, worked out once
    per (file, region) for the whole server: reading and parsing the file again on every
    rerun of the Data page cost its users' pages more Python than the rest of the check."""
    key = (file_key(upload), region)
    return memo("region_hints", 64).get(key, lambda: (ws.region_hint(upload, region),))[0]


#: Old names of the shared solves' keys (``roads_area`` keys by the customer file too).
_spec_key = spec_key
_file_key = file_key


def _graph_for(
    spec: ScenarioSpec, customers: ws.InputFile | None, progress: Progress | None
) -> network.RoadGraph:
    return load_graph(spec.region, progress, area=roads_area(spec, customers))


def solves() -> SharedSolves:
    """The engine's calls through the server's shared caches
    (:class:`planner.hosting.solves.SharedSolves`), on the graphs :func:`load_graph` keeps."""
    return SharedSolves(memo, _graph_for)


# ------------------------------------------------------------------------------------------
# long work in the background, with progress and a Stop button

#: Seconds the page waits for a just-started job before showing the progress panel (most
#: solves of a cached instance finish well within it, so the answer shows at once).
QUICK_WAIT_S = 1.5
#: Seconds between two looks at a running job.
POLL_S = 0.5
#: Seconds between two looks at a job waiting in line (its place changes only when a job ends;
#: twenty waiting pages polling twice a second would keep the server busy for nothing).
WAIT_POLL_S = 2.0


def start_job(
    kind: str,
    work: Callable[[Progress, StopCallback], Any],
    finish: Callable[[Any], dict[str, Any]],
    *,
    estimated_bytes: int = 0,
    alive: Callable[[], bool] | None = None,
) -> Job:
    """Queue ``work(progress, should_stop)`` in the server's job queue; kept in the session.

    The work runs in a thread of the queue (at most ``$PLANNER_MAX_JOBS`` at once, one per
    user), never in the script thread, and calls no Streamlit command: the shared caches it
    uses are warmed by the caller, and its answer is turned into the session's entry by
    :func:`collect_job`. A job needing more memory than is free ends at once with that error;
    one whose tab was closed is stopped by the queue.
    """
    job = account.job_queue().start(
        kind,
        work,
        finish,
        user=account.queue_user(),
        estimated_bytes=estimated_bytes,
        alive=alive or account.session_alive(),
    )
    st.session_state[f"{kind}_job"] = job
    st.session_state.pop(f"{kind}_error", None)
    return job


def estimated_job_bytes(layouts: int = 1) -> int:
    """Memory a solve of the current data needs, roughly (customers x candidate sites)."""
    spec = current_spec()
    customers, sites = current_inputs()
    try:
        n_customers = (
            (demo_customer_count(spec.region) or 0)
            if customers is None
            else customers.data.count(b"\n")
        )
    except PlannerError:
        n_customers = 0
    n_sites = (spec.n_candidates if spec.generate_candidates is not False else 0) + (
        sites.data.count(b"\n") if sites is not None else 0
    )
    return estimate_job_bytes(n_customers, n_sites, layouts)


def collect_job(kind: str) -> Job | None:
    """The running job of ``kind``, or None; a finished one is collected into the session
    (its entry under ``kind``, or its error under ``"<kind>_error"``)."""
    job: Job | None = st.session_state.get(f"{kind}_job")
    if job is None or not job.done:
        return job
    del st.session_state[f"{kind}_job"]
    if job.error is not None:
        st.session_state[f"{kind}_error"] = error_text(job.error)
    else:
        st.session_state[kind] = job.finish(job.value)
    return None


def job_panel(kind: str, *, stoppable: bool = True) -> None:
    """Progress line and Stop button (if ``stoppable``) of the running job of ``kind``,
    refreshed every :data:`POLL_S` seconds (every :data:`WAIT_POLL_S` while it waits in
    line); reruns the page when the job has ended."""
    remember_values()  # the panel's runs do not call init_state
    job: Job | None = st.session_state.get(f"{kind}_job")
    if job is not None and job.state == "waiting":
        _waiting_panel(kind)
    else:
        _running_panel(kind, stoppable=stoppable)


@st.fragment(run_every=WAIT_POLL_S)
def _waiting_panel(kind: str) -> None:
    job: Job | None = st.session_state.get(f"{kind}_job")
    if job is None or job.state != "waiting":
        st.rerun()  # started or ended: the page shows its progress or answer
        return
    place = account.job_queue().position(job)
    st.progress(0.0, text=waiting_text(place))
    if st.button("Stop", key=f"{kind}_stop_waiting", icon=":material/stop_circle:"):
        account.job_queue().cancel(job)
    st.caption(
        "The server runs a few solves at a time, one per user; yours starts when a place is free."
    )


@st.fragment(run_every=POLL_S)
def _running_panel(kind: str, *, stoppable: bool = True) -> None:
    job: Job | None = st.session_state.get(f"{kind}_job")
    if job is None or job.done:
        st.rerun()
        return
    st.progress(job.fraction, text=job.message)
    if job.stop.is_set() or not stoppable:
        st.caption(job.status_text())
    elif st.button(
        "Stop",
        key=f"{kind}_stop",
        icon=":material/stop_circle:",
        help="End the solve now and keep the best answer found so far, with its proven "
        "gap to the optimum.",
    ):
        account.job_queue().cancel(job)
        st.caption("Stopping… keeping the best answer found so far")
    else:
        st.caption(job.status_text())


def _warm_caches(region: str) -> None:
    """Build the shared caches a background job uses, here in the script thread."""
    for name, size in {"graphs": GRAPH_CACHE_SIZE, **CACHE_SIZES}.items():
        memo(name, size)


def start_sweep(
    kind: str,
    compute: Callable[[Progress], Any],
    finish: Callable[[Any], Any],
    *,
    estimated_bytes: int = 0,
) -> Job:
    """Queue a series of solves (K-curve, robustness, phases) like a plan: through the server's
    one queue, with its progress and Stop; the entry goes to ``st.session_state[kind]``.

    These engine calls report progress but take no ``should_stop``: Stop (or a closed tab)
    ends them at their next progress report, without an answer
    (:func:`planner.hosting.jobs.stop_at_progress`).
    """
    return start_job(kind, stop_at_progress(compute), finish, estimated_bytes=estimated_bytes)


def start_k_curve(entry: dict[str, Any], layout: str, k_max: int) -> Job:
    """The K-curve of ``layout`` for 1 to ``k_max`` workshops on the data of a comparison
    ``entry``; ``st.session_state["k_curve"]`` becomes ``((entry key, layout), k_max, curve)``."""
    spec, inputs, key = entry["spec"], entry["inputs"], entry["key"]
    _warm_caches(spec.region)
    return start_sweep(
        "k_curve",
        lambda report: solves().k_curve(spec, *inputs.values(), layout, k_max, progress=report),
        lambda curve: ((key, layout), k_max, curve),
        estimated_bytes=estimated_job_bytes(),
    )


def start_robustness(entry: dict[str, Any], layout: str, growth: float, slowdown: float) -> Job:
    """The robustness cases of ``layout`` on the data of a comparison ``entry``;
    ``st.session_state["robust"]`` becomes ``((entry key, layout), growth, slowdown, result)``."""
    spec, inputs, key = entry["spec"], entry["inputs"], entry["key"]
    _warm_caches(spec.region)
    return start_sweep(
        "robust",
        lambda report: solves().robustness(
            spec, *inputs.values(), layout, growth=growth, slowdown=slowdown, progress=report
        ),
        lambda rob: ((key, layout), growth, slowdown, rob),
        estimated_bytes=estimated_job_bytes(),
    )


def start_plan() -> Job:
    """Solve the current spec in the background; its entry goes to ``st.session_state["plan"]``
    (see :func:`run_plan`)."""
    spec = current_spec()
    customers, sites = current_inputs()
    key = current_key()
    _warm_caches(spec.region)

    def work(progress: Progress, should_stop: StopCallback) -> dict[str, Any]:
        result = solves().solve(spec, customers, sites, progress=progress, should_stop=should_stop)
        return {
            "key": key,
            "spec": spec,
            "result": result,
            "solved_on": describe_data(spec, customers, sites, (spec.layout,)),
            "inputs": {"customers": customers, "sites": sites},
            "stopped": should_stop() and not result.solution.optimal,
        }

    return start_job("plan", work, lambda entry: entry, estimated_bytes=estimated_job_bytes())


def start_compare(layouts: tuple[str, ...]) -> Job:
    """Compare ``layouts`` in the background; the entry goes to ``st.session_state["compare"]``
    (see :func:`run_compare`)."""
    spec = current_spec()
    customers, sites = current_inputs()
    key = (*current_key(), layouts)
    _warm_caches(spec.region)

    def work(progress: Progress, should_stop: StopCallback) -> dict[str, Any]:
        comparison = solves().compare(
            spec, customers, sites, layouts, progress=progress, should_stop=should_stop
        )
        return {
            "key": key,
            "spec": spec,
            "comparison": comparison,
            "solved_on": describe_data(spec, customers, sites, layouts),
            "inputs": {"customers": customers, "sites": sites},
            "stopped": should_stop()
            and not all(r.solution.optimal for r in comparison.results.values()),
        }

    return start_job(
        "compare", work, lambda entry: entry, estimated_bytes=estimated_job_bytes(len(layouts))
    )


def progress_bar(text: str) -> tuple[Any, Progress]:
    """A progress bar and the ``progress(message, fraction)`` callback that moves it."""
    bar = st.progress(0.0, text=text)

    def update(message: str, fraction: float) -> None:
        bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

    return bar, update


# ------------------------------------------------------------------------------------------
# display helpers (formatting only)


def solved_on_instance(sinst: ScenarioInstance, region: str) -> str:
    """What a prepared instance holds: "N customers, M candidate sites (E existing)"
    (:func:`planner.results.display.data_summary`)."""
    inst = sinst.instance
    n_customers = int((np.asarray(inst.demand_of_customer) >= 0).sum())
    own = inst.candidates.iloc[sinst.columns["own"]]
    return display.data_summary(
        customers=n_customers,
        left_out=len(inst.customers) - n_customers,
        sites=len(own),
        existing=int((own.get("status", pd.Series(dtype=str)).astype(str) == "existing").sum()),
        partners=len(sinst.columns["partner"]),
        roads=region_title(region),
        osm_date=network.REGIONS[region].osm_date[:10] if region in network.REGIONS else None,
    )


def describe_data(
    spec: ScenarioSpec,
    customers: ws.InputFile | None,
    sites: ws.InputFile | None,
    layouts: tuple[str, ...],
) -> str:
    """ "Solved on ...": the data of a result (its prepared instance is cached, so this is fast)."""
    return solved_on_instance(solves().prepared(spec, customers, sites, layouts), spec.region)


def cost_rows() -> list[dict[str, Any]]:
    """Every cost parameter with its meaning and default (see ``describe_parameters``)."""
    return describe_parameters(current_parameters())


def result_map(
    result: LayoutResult,
    region: str,
    *,
    catchments: bool = False,
    assignment_lines: bool = False,
    isochrone_site: str | None = None,
    isochrone_min: float = 15.0,
    area: Area | None = None,
) -> folium.Map:
    """The map of a result, with the optional layers the Results page offers (``area``: the
    one its roads were trimmed to, see :func:`roads_area`)."""
    areas = None
    if isochrone_site is not None:
        site = result.sites.set_index(result.sites["site_id"].astype(str)).loc[isochrone_site]
        area = maps.isochrone(
            load_graph(region, area=area),
            float(site["lon"]),
            float(site["lat"]),
            float(isochrone_min),
        )
        areas = {f"{isochrone_min:g} min from {isochrone_site}": area}
    return maps.result_map(
        result,
        roads=load_roads(region, area),
        tiles=tiles(),
        catchments=catchments,
        assignment_lines=assignment_lines,
        drive_time_areas=areas,
        **market_map_layers(result.market),
    )


def _written(write: Callable[..., Any], obj: Any, **options: Any) -> bytes:
    buffer = io.BytesIO()
    write(obj, buffer, **options)
    return buffer.getvalue()


def scenario_bundle() -> Callable[[], bytes]:
    """The current scenario's ``.zip`` (:func:`planner.engine.workspace.bundle_bytes`), built
    when the user presses the download button, not on every rerun: the bundle carries the
    user's files, a road file of a hundred MB among them, and compressing it took seconds of
    every rerun of the page that offers it (``benchmarks/bench_regions_app.py``)."""
    spec, inputs = current_spec(), scenario_inputs()
    return lambda: ws.bundle_bytes(spec, inputs)


def export_bytes(
    kind: str, obj: Any, region: str, *, area: Area | None = None, **extras: Any
) -> bytes:
    """The bytes of one export of a result or comparison (see the Export page); ``area``: the
    one its roads were trimmed to (:func:`roads_area`).

    Built once per result object and options (shared cache), so re-rendering the Export page
    is instant.
    """
    key = (kind, id(obj), region, area, tuple((k, id(v)) for k, v in sorted(extras.items())))
    # the cache keeps ``obj`` alive with the bytes, so its id cannot be reused meanwhile
    return memo("exports", 64).get(
        key, lambda: (obj, _export_bytes(kind, obj, region, area, **extras))
    )[1]


def _export_bytes(kind: str, obj: Any, region: str, area: Area | None, **extras: Any) -> bytes:
    if kind == "xlsx":
        return _written(export.write_xlsx, obj, **extras)
    if kind == "geojson":
        return _written(export.write_geojson, obj)
    if kind == "gpkg":
        return _written(export.write_geopackage, obj)
    if kind == "territories":
        return _written(export.write_territories_csv, obj)
    if kind == "map":
        return maps.map_html(result_map(obj, region, area=area)).encode("utf-8")
    if kind == "report":
        html = report.report_html(obj, roads=load_roads(region, area), **extras)
        return html.encode("utf-8")
    raise ValueError(f"unknown export {kind!r}")


@st.cache_data(show_spinner=False, ttl=300)
def tiles() -> str | None:
    """OpenStreetMap tiles when the tile server answers quickly, else None (offline)."""
    return "OpenStreetMap" if assets.check_tiles_reachable() else None


def static_url() -> str:
    """URL path of the vendored web assets, honouring ``server.baseUrlPath``."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(p for p in (base, assets.APP_STATIC_URL) if p)


def show_map(m: folium.Map, *, key: str) -> None:
    """Render a folium map with local Leaflet assets; panning or zooming does not rerun."""
    assets.localize_map(m, base_url=static_url())
    st_folium(m, key=key, height=MAP_HEIGHT_PX, use_container_width=True, returned_objects=[])


#: Maps whose browser payload is kept by the server (:func:`cached_map`): one per user's
#: customer file at most, a few hundred kB each.
MAP_CACHE_SIZE = 48


def _map_elements(element: Any) -> Iterator[Any]:
    if isinstance(element, branca.colormap.ColorMap | folium.elements.JSCSSMixin):
        yield element
    for child in getattr(element, "_children", {}).values():
        yield from _map_elements(child)


def map_payload(m: folium.Map, *, key: str, returned_objects: list[str]) -> dict[str, Any]:
    """What ``streamlit_folium.st_folium`` sends to the browser for ``m`` (its own steps:
    rendering the map to Leaflet JavaScript, the HTML and header, the resource links), as the
    keyword arguments of its component; ``m`` is rendered (modified) here."""
    sf = streamlit_folium
    m.get_root().render()
    m.render()
    html = sf._get_html(m)
    header = sf._get_header(m)
    leaflet = sf._get_map_string(m)
    south_west, north_east = m.get_bounds()
    defaults = {
        "last_active_drawing": None,
        "bounds": {
            "_southWest": {"lat": south_west[0], "lng": south_west[1]},
            "_northEast": {"lat": north_east[0], "lng": north_east[1]},
        },
        "zoom": m.options.get("zoom"),
    }
    css: list[str] = []
    js: list[str] = []
    for element in _map_elements(m):  # st_folium's walk: the resources, in document order
        if isinstance(element, branca.colormap.ColorMap):
            js[:0] = [
                "https://d3js.org/d3.v4.min.js",
                "https://cdnjs.cloudflare.com/ajax/libs/d3/3.5.5/d3.min.js",
            ]
        css.extend(href for _, href in getattr(element, "default_css", []))
        js.extend(src for _, src in getattr(element, "default_js", []))
    return {
        "script": leaflet,
        "header": header,
        "html": html,
        "id": sf.get_full_id(m),
        "key": sf.generate_js_hash(leaflet, key, False),
        "returned_objects": list(returned_objects),
        "default": {k: v for k, v in defaults.items() if k in returned_objects},
        "css_links": list(dict.fromkeys(css)),
        "js_links": list(dict.fromkeys(js)),
    }


def cached_map(
    build: Callable[[], folium.Map],
    *,
    cache_key: Hashable,
    key: str,
    returned_objects: list[str] | None = None,
) -> Any:
    """Show the map ``build`` makes (with local Leaflet assets) as ``st_folium`` does, but
    built and rendered once per ``cache_key`` for the whole server (:func:`map_payload`):
    a rerun of the page (a page switch, another widget) only sends the kept payload, instead
    of building the layers and rendering them to JavaScript again (the Python work every
    other user's page waited for, behind the GIL). ``cache_key`` must name everything the
    map shows; returns the component's value, as ``st_folium``."""
    returned = list(returned_objects or [])

    def payload() -> dict[str, Any]:
        m = assets.localize_map(build(), base_url=static_url())
        return map_payload(m, key=key, returned_objects=returned)

    args = memo("map_payloads", MAP_CACHE_SIZE).get(
        (cache_key, static_url(), key, tuple(returned)), payload
    )
    hash_key = args["key"]

    def on_change() -> None:
        st.session_state[key] = st.session_state.get(hash_key, {})

    return streamlit_folium._component_func(
        **{**args, "default": copy.deepcopy(args["default"])},
        height=MAP_HEIGHT_PX,
        width=None,
        zoom=None,
        center=None,
        feature_group=None,
        return_on_hover=False,
        layer_control=None,
        pixelated=False,
        on_change=on_change,
        wrap_longitude=False,
    )


def is_online() -> bool:
    """Whether the user allowed internet use and the machine is not set offline."""
    return bool(st.session_state.get("online")) and not offline()


def footer() -> None:
    """OSM credit, on every page."""
    st.caption(OSM_CREDIT)


def current_key() -> tuple[str, str | None, str | None]:
    """Identity of the current question and data: stored with each result to spot staleness."""
    customers, sites = current_inputs()
    return (_spec_key(current_spec()), _file_key(customers), _file_key(sites))


def run_plan(*, progress: Progress | None = None) -> dict[str, Any]:
    """Solve the current spec and keep it in ``st.session_state["plan"]``.

    The entry holds ``key`` (see :func:`current_key`), ``spec`` (the ScenarioSpec solved),
    ``result`` (its :class:`~planner.results.types.LayoutResult`), ``solved_on`` (a sentence)
    and ``inputs`` (the customer and site files used).
    """
    spec = current_spec()
    customers, sites = current_inputs()
    result = solves().solve(spec, customers, sites, progress=progress)
    entry = {
        "key": current_key(),
        "spec": spec,
        "result": result,
        "solved_on": describe_data(spec, customers, sites, (spec.layout,)),
        "inputs": {"customers": customers, "sites": sites},
    }
    st.session_state["plan"] = entry
    return entry


def stale_note(entry: dict[str, Any]) -> None:
    """Say when inputs changed after a result was computed (the result is still shown)."""
    if entry.get("key") != current_key():
        st.warning(
            "The inputs changed since this result was computed; it is shown for the inputs it "
            "was solved on. Press **Run** on the Plan page to update it."
        )


def run_compare(layouts: tuple[str, ...], *, progress: Progress | None = None) -> dict[str, Any]:
    """Compare ``layouts`` on the current spec and uploads; kept in ``st.session_state["compare"]``.

    The entry holds ``key`` (the current key plus the layouts), ``spec``, ``comparison`` (a
    :class:`~planner.results.types.Comparison`), ``solved_on`` and ``inputs``.
    """
    spec = current_spec()
    customers, sites = current_inputs()
    comparison = solves().compare(spec, customers, sites, layouts, progress=progress)
    entry = {
        "key": (*current_key(), layouts),
        "spec": spec,
        "comparison": comparison,
        "solved_on": describe_data(spec, customers, sites, layouts),
        "inputs": {"customers": customers, "sites": sites},
    }
    st.session_state["compare"] = entry
    return entry


#: Comparison-table columns shown, with their display settings.
def comparison_columns() -> dict[str, Any]:
    """``column_config`` of the comparison table: people's units and formats."""
    number = st.column_config.NumberColumn
    return {
        "mean_travel_min": number("mean drive (min)", format="%.1f"),
        "p90_travel_min": number("9 in 10 within (min)", format="%.1f"),
        "max_travel_min": number("longest drive (min)", format="%.1f"),
        "share_within_sla": number("within standard", format="percent"),
        "annual_cost": number("annual cost (EUR)", format="localized"),
        "cost_per_job": number("cost per job (EUR)", format="%.0f"),
        "fixed_eur": number("fixed (EUR)", format="localized"),
        "fees_eur": number("partner fees (EUR)", format="localized"),
        "deliveries_eur": number("deliveries (EUR)", format="localized"),
        "leakage_eur": number("lost margin (EUR)", format="localized"),
        "customer_time_eur": number("customer time (EUR)", format="localized"),
        "max_utilisation": number("busiest site's load", format="percent"),
        "gap": number("gap", format="percent"),
        "jobs_won": number("jobs won a year", format="%.0f"),
        "expected_share": number("expected share", format="percent"),
        "jobs_lost_to_competitors": number("lost to competitors", format="%.0f"),
        "cannibalised_jobs": number("cannibalised", format="%.0f"),
        "profit_eur": number("profit (EUR)", format="localized"),
    }
