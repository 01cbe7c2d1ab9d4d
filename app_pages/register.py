"""Customer register: the stored register (or a job history upload), demand trends, forecast,
and a phased plan."""

from __future__ import annotations

import hashlib
import io
import tempfile
from pathlib import Path

import geopandas as gpd
import pandas as pd
import streamlit as st

from app_pages import _shared as shared
from planner.engine import ScenarioSpec
from planner.engine.instance import graph_area
from planner.engine.phases import plan_phases
from planner.errors import PlannerError
from planner.hosting.jobs import Job, Progress
from planner.inputs import customers as demand
from planner.inputs.jobs import JobTable, read_jobs
from planner.register import area_trends, forecast_jobs, segment_trends
from planner.register.forecast import forecast_summary
from planner.register.imports import import_register
from planner.register.store import RegisterStore, default_db_path, open_store
from planner.register.trends import segment_counts
from planner.register.trends_map import trends_map
from planner.results.phases import PhasedPlan

DEMO_JOBS = demand.DEMO_DIR / "malta_jobs.csv"
JOB_TYPES = ("csv", "txt", "xlsx", "parquet")


@st.cache_data(show_spinner=False, max_entries=8)
def read_history(
    customers_key: str, name: str, data: bytes, _customers: gpd.GeoDataFrame
) -> JobTable:
    """Read and validate a job history against the register's customers (parsed only)."""
    upload = io.BytesIO(data)
    upload.name = name
    return read_jobs(upload, customer_ids=_customers["customer_id"])


def _statistics(
    jobs: pd.DataFrame | RegisterStore, customers: gpd.GeoDataFrame, years: int
) -> dict[str, object]:
    seg = segment_trends(jobs, customers)
    area = area_trends(jobs, customers)
    return {
        "segments": seg,
        "areas": area,
        "monthly": segment_counts(jobs, customers),
        "forecast": forecast_jobs(jobs, customers, years=years, trends=(seg, area)),
    }


@st.cache_data(show_spinner=False, max_entries=8)
def trends(
    customers_key: str, key: str, _jobs: JobTable, years: int, _customers: gpd.GeoDataFrame
) -> dict[str, object]:
    """Segment and area trends, monthly counts and the forecast of an uploaded history."""
    return _statistics(_jobs.valid, _customers, years)


@st.cache_data(show_spinner=False, max_entries=4)
def stored_trends(db: str, version: str, years: int) -> dict[str, object]:
    """The same statistics of the stored register (computed in DuckDB; ``version`` is the
    file's modification time, so an import shows at once)."""
    with open_store(db, read_only=True) as store:
        customers = store.customers()
        out = _statistics(store, customers, years)
        out["customers"] = customers
        out["status"] = str(store.status())
    return out


def _stored_register() -> Path | None:
    """The workspace's register database when it holds jobs."""
    path = default_db_path()
    if not path.is_file():
        return None
    try:
        with RegisterStore.open(path, read_only=True) as store:
            return path if store.count("jobs") else None
    except PlannerError:
        return None


def _import_upload(name: str, data: bytes, customers_file: tuple[str, bytes] | None) -> list[str]:
    """Import the uploaded history (and the customer file it belongs to) into the register."""
    with tempfile.TemporaryDirectory(prefix="planner-upload-") as tmp:
        jobs_path = Path(tmp) / "jobs" / Path(name).name
        jobs_path.parent.mkdir()
        jobs_path.write_bytes(data)
        customers_path = None
        if customers_file is not None:
            customers_path = Path(tmp) / "customers" / Path(customers_file[0]).name
            customers_path.parent.mkdir()
            customers_path.write_bytes(customers_file[1])
        with open_store() as store:
            done = import_register(
                store, customers=customers_path, jobs=jobs_path, job_labels=[name]
            )
    return [str(s) for s in done]


def _customers_file(source: str) -> tuple[str, bytes] | None:
    """The file the Data page's customers came from: the upload, or the demo file."""
    upload, _sites = shared.current_inputs()
    if upload is not None:
        return upload.name, upload.data
    demo = demand.demo_customers_path(str(region))
    return None if demo is None else (demo.name, demo.read_bytes())


def phases(
    customers_key: str,
    key: str,
    jobs: JobTable | None,
    workshops: tuple[int, ...],
    *,
    min_gain_min: float,
    spec: ScenarioSpec,
    customers: gpd.GeoDataFrame,
) -> Job:
    """Plan the phases of a history on the register's customers (the Data page's scenario)
    through the server's job queue, like every solve; shared by the sessions asking the same.
    The plan goes to ``st.session_state["register_phases"]``."""
    phased = spec.replace(name=f"{spec.name}: phases")
    cache = shared.memo("phases", 8)
    cache_key = (customers_key, key, workshops, min_gain_min, shared.current_key())
    # a road file's roads trimmed to these customers + the margin, as the Data page and
    # `planner phases` read them (not the whole country)
    area = graph_area(spec, customers)

    def compute(progress: Progress) -> PhasedPlan:
        def build() -> PhasedPlan:
            graph = shared.load_graph(spec.region, progress, area=area)
            if jobs is not None:
                return plan_phases(
                    phased,
                    list(workshops),
                    jobs=jobs.valid,
                    customers=customers,
                    min_gain_min=min_gain_min,
                    graph=graph,
                    progress=progress,
                )
            with open_store(key.rsplit(":", 1)[0], read_only=True) as store:
                previous = store.plan_assignments() if store.count("plans") else None
                return plan_phases(
                    phased,
                    list(workshops),
                    jobs=store,
                    customers=customers,
                    min_gain_min=min_gain_min,
                    previous_assignment=previous,
                    graph=graph,
                    progress=progress,
                )

        return cache.get(cache_key, build)

    shared.memo("graphs", shared.GRAPH_CACHE_SIZE)  # warmed here: the thread calls no Streamlit
    return shared.start_sweep(
        "register_phases",
        compute,
        lambda plan: plan,
        estimated_bytes=shared.estimated_job_bytes(),
    )


shared.init_state()
st.title("Customer register over time")
spec = shared.current_spec()
region = spec.region
stored = _stored_register()
if stored is not None:
    with st.spinner("Reading the stored register…"):
        found = stored_trends(str(stored), str(stored.stat().st_mtime_ns), 3)
    customers = found["customers"]  # type: ignore[assignment]
    st.caption(
        "Showing the stored register (add months with `planner register import --jobs "
        "FOLDER`, or upload a history below)."
    )
    with st.expander("What the register holds"):
        st.text(str(found["status"]))
else:
    customers, source = shared.current_customers()
customers_key = f"{region}:{stored or source}:{len(customers)}"
if stored is None:
    st.caption(
        f"Register: {len(customers):,} customers from {source} (change them on the Data page)."
    )

with st.sidebar:
    upload = st.file_uploader(
        "Job history",
        type=list(JOB_TYPES),
        key="jobs_file",
        help="One row per job: job_id, customer_id, date, revenue_eur, complaint (0/1), "
        "served_by; customer ids as in the register.",
    )
    years = int(st.number_input("Years to forecast", min_value=1, max_value=5, value=3))

history: JobTable | None = None
if stored is not None and upload is None:
    if years != 3:
        found = stored_trends(str(stored), str(stored.stat().st_mtime_ns), years)
    key = f"{stored}:{stored.stat().st_mtime_ns}"
elif upload is not None:
    name, data = upload.name, upload.getvalue()
elif region == "malta" and source.startswith("the demo customers"):
    name, data = DEMO_JOBS.name, DEMO_JOBS.read_bytes()
    st.caption("Showing the demo job history of Malta (data/demo/malta_jobs.csv).")
else:
    st.info("Upload a job history to see demand trends (a demo history exists for Malta).")
    st.stop()

if stored is None or upload is not None:
    key = f"{name}:{hashlib.sha256(data).hexdigest()[:16]}"
    table = read_history(customers_key, name, data, customers)
    report = str(table.report)
    if table.report.fatal or len(table.valid) == 0:
        st.error(report)
        st.stop()
    if table.report.issues:
        st.warning(
            f"{len(table.valid):,} of {table.report.n_rows:,} jobs can be used; rows with "
            "problems are left out (details below)."
        )
        with st.expander("Validation report"):
            st.text(report)
    history = table
    with st.spinner("Estimating trends…"):
        found = trends(customers_key, key, table, years, customers)
    customers_file = None if stored is not None else _customers_file(source)
    if (stored is not None or customers_file is not None) and st.button(
        "Keep this history in the register",
        help="Imports the jobs into the workspace's register database, so the page opens "
        "them next time without an upload (only new jobs are added).",
    ):
        try:
            for line in _import_upload(name, data, customers_file):
                st.success(line)
        except PlannerError as exc:
            st.error(f"Cannot import the history: {exc}")
st.session_state["register"] = {k: found[k] for k in ("segments", "areas", "monthly", "forecast")}

st.subheader("Demand trends by segment")
st.caption(
    "Yearly growth with its interval (seasonality taken out); a segment is flagged rising or "
    "falling only when the whole interval says so."
)
st.dataframe(found["segments"], hide_index=True)
st.line_chart(found["monthly"], x="period", y="jobs", color="segment")

st.subheader("Trends by area")
shared.show_map(trends_map(found["areas"], tiles=shared.tiles()), key="trends_map")
with st.expander("Area trends table"):
    st.dataframe(found["areas"], hide_index=True)

st.subheader("Forecast of yearly jobs")
st.dataframe(forecast_summary(found["forecast"]))  # type: ignore[arg-type]

st.subheader("Phased plan")
text = st.text_input("Workshops per year", value="3,4,5", key="phase_workshops")
min_gain = float(st.number_input("Minutes a customer must gain to move", value=5.0, min_value=0.0))
phase_job = shared.collect_job("register_phases")
if st.button("Plan phases", type="primary", disabled=phase_job is not None):
    try:
        workshops = tuple(int(x) for x in text.replace(";", ",").split(",") if x.strip())
        if not workshops:
            raise ValueError("give the number of workshops of each year, such as 3,4,5")
        phases(
            customers_key,
            key,
            history,
            workshops,
            min_gain_min=min_gain,
            spec=spec,
            customers=customers,
        ).finished.wait(shared.QUICK_WAIT_S)
        phase_job = shared.collect_job("register_phases")
    except ValueError as exc:
        st.error(f"Cannot plan these phases: {exc}")
if phase_job is not None:
    shared.job_panel("register_phases")
if error := st.session_state.pop("register_phases_error", None):
    st.error(f"Cannot plan these phases: {error}")

plan = st.session_state.get("register_phases")
if plan is not None:
    sol = plan.solution
    st.write(
        "Proven optimal." if sol.optimal else f"Best plan found, within {sol.gap:.2%} of optimal."
    )
    for warning in plan.warnings:
        st.warning(warning)
    st.metric("Price of keeping sites open", f"{plan.price_of_consistency:+.2%}")
    st.dataframe(plan.summary, hide_index=True)
    st.dataframe(plan.phases, hide_index=True)
    st.write(f"{len(plan.moves):,} customers move")
    st.dataframe(plan.moves, hide_index=True)
shared.footer()
