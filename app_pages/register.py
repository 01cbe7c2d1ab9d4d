"""Customer register: job history upload, demand trends, forecast, and a phased plan."""

from __future__ import annotations

import hashlib
import io

import geopandas as gpd
import streamlit as st

from app_pages import _shared as shared
from planner.engine import ScenarioSpec
from planner.engine.phases import plan_phases
from planner.errors import PlannerError
from planner.inputs import customers as demand
from planner.inputs.jobs import JobTable, read_jobs
from planner.register import area_trends, count_jobs, forecast_jobs, segment_trends
from planner.register.forecast import forecast_summary
from planner.register.trends import jobs_with_customers
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


@st.cache_data(show_spinner=False, max_entries=8)
def trends(
    customers_key: str, key: str, _jobs: JobTable, years: int, _customers: gpd.GeoDataFrame
) -> dict[str, object]:
    """Segment and area trends, monthly counts and the forecast of a history."""
    customers = _customers
    valid = _jobs.valid
    return {
        "segments": segment_trends(valid, customers),
        "areas": area_trends(valid, customers),
        "monthly": count_jobs(jobs_with_customers(valid, customers), by=("segment",)),
        "forecast": forecast_jobs(valid, customers, years=years),
    }


@st.cache_data(show_spinner=False, max_entries=8)
def phases(
    customers_key: str,
    key: str,
    _jobs: JobTable,
    workshops: tuple[int, ...],
    min_gain_min: float,
    _spec: ScenarioSpec,
    _customers: gpd.GeoDataFrame,
) -> PhasedPlan:
    """The phased plan of a history on the register's customers (the Data page's scenario)."""
    return plan_phases(
        _spec.replace(name=f"{_spec.name}: phases"),
        list(workshops),
        jobs=_jobs.valid,
        customers=_customers,
        min_gain_min=min_gain_min,
        graph=shared.load_graph(_spec.region),
    )


shared.init_state()
st.title("Customer register over time")
spec = shared.current_spec()
region = spec.region
customers, source = shared.current_customers()
customers_key = f"{region}:{source}:{len(customers)}"
st.caption(f"Register: {len(customers):,} customers from {source} (change them on the Data page).")

with st.sidebar:
    upload = st.file_uploader(
        "Job history",
        type=list(JOB_TYPES),
        key="jobs_file",
        help="One row per job: job_id, customer_id, date, revenue_eur, complaint (0/1), "
        "served_by; customer ids as in the register.",
    )
    years = int(st.number_input("Years to forecast", min_value=1, max_value=5, value=3))

if upload is not None:
    name, data = upload.name, upload.getvalue()
elif region == "malta" and source.startswith("the demo customers"):
    name, data = DEMO_JOBS.name, DEMO_JOBS.read_bytes()
    st.caption("Showing the demo job history of Malta (data/demo/malta_jobs.csv).")
else:
    st.info("Upload a job history to see demand trends (a demo history exists for Malta).")
    st.stop()

key = f"{name}:{hashlib.sha256(data).hexdigest()[:16]}"
history = read_history(customers_key, name, data, customers)
report = str(history.report)
if history.report.fatal or len(history.valid) == 0:
    st.error(report)
    st.stop()
if history.report.issues:
    st.warning(
        f"{len(history.valid):,} of {history.report.n_rows:,} jobs can be used; rows with "
        "problems are left out (details below)."
    )
    with st.expander("Validation report"):
        st.text(report)

with st.spinner("Estimating trends…"):
    found = trends(customers_key, key, history, years, customers)
st.session_state["register"] = found

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
if st.button("Plan phases", type="primary"):
    try:
        workshops = tuple(int(x) for x in text.replace(";", ",").split(",") if x.strip())
        with st.spinner("Choosing which workshops open in which year…"):
            st.session_state["register_phases"] = phases(
                customers_key, key, history, workshops, min_gain, spec, customers
            )
    except (ValueError, PlannerError) as exc:
        st.error(f"Cannot plan these phases: {exc}")

plan = st.session_state.get("register_phases")
if plan is not None:
    sol = plan.solution
    st.write(
        "Proven optimal." if sol.optimal else f"Best plan found, within {sol.gap:.2%} of optimal."
    )
    st.metric("Price of keeping sites open", f"{plan.price_of_consistency:+.2%}")
    st.dataframe(plan.summary, hide_index=True)
    st.dataframe(plan.phases, hide_index=True)
    st.write(f"{len(plan.moves):,} customers move")
    st.dataframe(plan.moves, hide_index=True)
shared.footer()
