"""Compare layouts: in-house, outsourced and two-tier on the same data (the Data page's)."""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as shared
from planner.engine import LAYOUTS
from planner.outputs.report import COST_PARTS
from planner.results.capacity import utilisation_table

shared.init_state()
st.title("Compare layouts")

customers, sites = shared.current_inputs()
spec = shared.current_spec()
st.caption(
    f"Region: **{shared.region_title(spec.region)}** · customers: "
    + (f"**{customers.name}**" if customers else "**demo customers**")
    + (f" · sites: **{sites.name}**" if sites else "")
    + " · workshops, service standard, capacities and costs as on the Plan and Costs pages"
)
st.toggle(
    "Respect workshop capacity",
    key="capacitated",
    help="As on the Plan page: no site takes more jobs than its capacity (its own from the "
    "sites file, else the Costs page's).",
)

left, right = st.columns([3, 1])
with left:
    layouts = tuple(st.multiselect("Layouts", LAYOUTS, key="cmp_layouts"))
with right:
    st.number_input(
        "Workshops (or partners) per layout",
        min_value=1,
        max_value=shared.MAX_WORKSHOPS,
        step=1,
        key="workshops",
        disabled=bool(st.session_state["workshops_auto"] or st.session_state["budget_on"]),
        help="Set on the Plan page: a number, the costs' choice, or a yearly budget.",
    )
key = (*shared.current_key(), layouts)

job = shared.collect_job("compare")
saved = st.session_state.get("compare")
if st.button("Compare", type="primary", disabled=not layouts or job is not None) and not (
    saved and saved["key"] == key and not saved.get("stopped")
):
    shared.start_compare(layouts).finished.wait(shared.QUICK_WAIT_S)
    job = shared.collect_job("compare")
    saved = st.session_state.get("compare")
if job is not None:
    shared.job_panel("compare")
if error := st.session_state.get("compare_error"):
    st.error(f"Could not compare: {error}")

if saved and job is None:
    if saved.get("stopped"):
        st.warning(
            "Stopped: each layout shows the best answer found so far, with its gap to the "
            "optimum in the table."
        )
    comparison = saved["comparison"]
    if saved["key"] != key:
        st.warning(
            "The inputs changed since this comparison; it is shown for the inputs it was "
            "solved on. Press **Compare** to update it."
        )
    st.success(f"Solved on {saved['solved_on']}.")
    st.subheader("Side by side")
    st.dataframe(
        comparison.table,
        hide_index=True,
        width="stretch",
        column_config=shared.comparison_columns(),
    )
    st.subheader("Annual cost split")
    st.bar_chart(
        shared.cost_split(comparison),
        x="layout",
        y=[label for _, label in COST_PARTS],
        horizontal=True,
        stack=True,
        x_label="EUR per year",
        y_label="layout",
    )
    st.subheader("Sites across layouts")
    st.dataframe(comparison.site_diff, hide_index=True, width="stretch")
    tabs = st.tabs(list(comparison.results))
    for tab, (layout, lr) in zip(tabs, comparison.results.items(), strict=True):
        with tab:
            st.caption(shared.solution_note(lr))
            for warning in lr.warnings:
                st.warning(warning)
            shared.show_map(
                shared.result_map(lr, saved["spec"].region, area=shared.entry_area(saved)),
                key=f"cmp-map-{layout}-{hash(saved['key'])}",
            )
            loads = utilisation_table(lr)
            if len(loads):
                st.bar_chart(
                    loads,
                    x="site",
                    y="utilisation_pct",
                    color="colour",
                    x_label="site",
                    y_label="per cent of its capacity (red: above 100 %)",
                )
            st.dataframe(lr.loads, hide_index=True, width="stretch")

    st.subheader("More or fewer workshops? (K-curve)")
    c1, c2, c3 = st.columns(3)
    k_layout = c1.selectbox("Layout", list(comparison.results), key="cmp_klayout")
    k_max = int(c2.number_input("Up to", 2, shared.MAX_WORKSHOPS, key="cmp_kmax"))
    k_job = shared.collect_job("k_curve")
    if c3.button("Draw the K-curve", key="cmp_kcurve", disabled=k_job is not None):
        shared.start_k_curve(saved, k_layout, k_max).finished.wait(shared.QUICK_WAIT_S)
        k_job = shared.collect_job("k_curve")
    if k_job is not None:
        shared.job_panel("k_curve")
    if error := st.session_state.pop("k_curve_error", None):
        st.error(f"Could not draw the K-curve: {error}")
    curve_state = st.session_state.get("k_curve")
    if curve_state and curve_state[:2] == ((saved["key"], k_layout), k_max):
        curve = curve_state[2]
        left, right = st.columns(2)
        left.line_chart(
            curve,
            x="workshops",
            y="mean_travel_min",
            x_label="workshops",
            y_label="mean drive (min)",
        )
        right.line_chart(
            curve,
            x="workshops",
            y="annual_cost",
            x_label="workshops",
            y_label="annual cost (EUR)",
        )
        if "expected_share" in curve:  # market objective: the share curve
            st.line_chart(
                curve,
                x="workshops",
                y="expected_share",
                x_label="workshops",
                y_label="expected share of all jobs",
            )
        st.dataframe(
            curve, hide_index=True, width="stretch", column_config=shared.comparison_columns()
        )

    st.subheader("Robustness")
    c1, c2, c3, c4 = st.columns(4)
    r_layout = c1.selectbox("Layout ", list(comparison.results), key="cmp_rlayout")
    growth = c2.slider("Business demand grows by", 0.0, 1.0, step=0.05, key="cmp_growth")
    slowdown = c3.slider("Main roads slower by", 0.0, 1.0, step=0.05, key="cmp_slow")
    r_job = shared.collect_job("robust")
    if c4.button("Re-solve the cases", key="cmp_robust", disabled=r_job is not None):
        shared.start_robustness(saved, r_layout, growth, slowdown).finished.wait(
            shared.QUICK_WAIT_S
        )
        r_job = shared.collect_job("robust")
    if r_job is not None:
        shared.job_panel("robust")
    if error := st.session_state.pop("robust_error", None):
        st.error(f"Could not re-solve: {error}")
    rob_state = st.session_state.get("robust")
    if rob_state and rob_state[:3] == ((saved["key"], r_layout), growth, slowdown):
        rob = rob_state[3]
        st.write("Sites chosen in every case: " + (", ".join(rob.stable_sites) or "none"))
        st.dataframe(
            rob.cases, hide_index=True, width="stretch", column_config=shared.comparison_columns()
        )
        st.dataframe(rob.sites, hide_index=True, width="stretch")
elif job is None:
    st.info(
        "Press **Compare** to solve the layouts on the same customers, sites and roads "
        "(the ones chosen on the Data page)."
    )

shared.footer()
