"""Plan: the question to solve (layout, number of workshops, service standard) and "Run"."""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as shared
from planner.engine import LAYOUTS
from planner.errors import PlannerError

shared.init_state()
st.title("Plan")

customers, sites = shared.current_inputs()
region_name = shared.region_title(st.session_state["region"])
st.caption(
    f"Region: **{region_name}** · customers: "
    + (f"**{customers.name}**" if customers else "**demo customers**")
    + " · sites: "
    + (f"**{sites.name}**" if sites else "**proposed on main roads near demand**")
    + " (change on the Data page)"
)

left, right = st.columns(2)
with left:
    st.selectbox(
        "Layout",
        LAYOUTS,
        key="layout",
        help="in-house: your own workshops; outsourced: partner repair shops paid per job; "
        "two-tier: a central office supplying your workshops.",
    )
    st.toggle(
        "Let the costs decide how many workshops",
        key="workshops_auto",
        help="Opens the number of workshops with the lowest annual cost (Costs page).",
    )
    st.number_input(
        "Number of workshops (existing ones included)",
        min_value=1,
        max_value=shared.MAX_WORKSHOPS,
        step=1,
        key="workshops",
        disabled=bool(st.session_state["workshops_auto"]),
    )
with right:
    st.number_input(
        "Service standard: a customer should reach a workshop within (minutes)",
        min_value=1.0,
        max_value=240.0,
        step=5.0,
        key="sla_min",
    )
    st.checkbox(
        "Also propose new sites on main roads near demand",
        key="generate_candidates",
        help="Existing workshops you uploaded always stay open. Switch off to choose only "
        "among the sites you uploaded.",
    )
    with st.expander("Advanced"):
        st.number_input(
            "New sites to consider", min_value=5, max_value=500, step=5, key="n_candidates"
        )
        st.number_input(
            "Time limit per solve (seconds); the best answer found is kept, with its gap",
            min_value=1.0,
            max_value=3600.0,
            step=10.0,
            key="time_limit_s",
        )

if st.button("Run", type="primary"):
    bar, progress = shared.progress_bar("Starting…")
    try:
        entry = shared.run_plan(progress=progress)
    except PlannerError as exc:
        st.error(f"Could not plan: {exc}")
    bar.empty()

entry = st.session_state.get("plan")
if entry:
    result = entry["result"]
    shared.stale_note(entry)
    solved = entry["spec"]
    count = (
        "the cost-optimal number of workshops"
        if solved.workshops is None
        else f"{solved.workshops} workshops"
    )
    st.success(f"Solved for {count} ({solved.layout}) on {entry['solved_on']}.")
    kpis = result.kpis
    cols = st.columns(4)
    cols[0].metric("Average drive", shared.minutes(kpis["mean_travel_min"]))
    cols[1].metric("9 in 10 jobs within", shared.minutes(kpis["p90_travel_min"]))
    cols[2].metric(
        f"Jobs within {st.session_state['sla_min']:.0f} min",
        shared.percent(kpis.get("share_within_sla", float("nan"))),
    )
    cols[3].metric("Annual cost", shared.money(kpis.get("annual_cost_eur", float("nan"))))
    st.caption(shared.solution_note(result))
    for warning in result.warnings:
        st.warning(warning)
    st.info("Next: the map, the sites and every customer's workshop on the **Results** page.")
else:
    st.info("Press **Run** to propose sites for these inputs.")

shared.footer()
