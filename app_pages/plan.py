"""Plan: the question to solve (layout; a number of workshops, the costs' choice or a yearly
budget; workshop capacity; service standard; partners' product class) and "Run", which
solves in the background with a live bound/gap line and a Stop button that keeps the best
answer so far."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from app_pages import _shared as shared
from planner.engine import LAYOUTS

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
    market = shared.market_ui.market_on(st.session_state)  # plans for customers won
    budget_on = bool(st.session_state["budget_on"]) and not market
    standard_on = bool(st.session_state["standard_on"]) and not market
    st.toggle(
        "Plan within a yearly budget",
        key="budget_on",
        disabled=standard_on or market,
        help="The network's yearly cost (fixed costs, partner fees, deliveries and lost "
        "margin, as on the Costs page; not the customers' time) may not exceed the budget. "
        "The number of workshops with the shortest drives that fits is chosen.",
    )
    if budget_on:
        st.number_input(
            "Budget (EUR per year)",
            min_value=1_000.0,
            max_value=1e9,
            step=50_000.0,
            format="%.0f",
            key="budget_per_year",
        )
    st.toggle(
        "Fewest workshops that meet the service standard",
        key="standard_on",
        disabled=budget_on or market,
        help="Plans the fewest workshops (existing ones included) from which every customer "
        "can reach one within the service standard; the sites are then placed for the "
        "shortest drives, and the result says if any customer is left outside the standard.",
    )
    st.toggle(
        "Let the costs decide how many workshops",
        key="workshops_auto",
        disabled=budget_on or standard_on or st.session_state["objective"] == "max_capture",
        help="Opens the number of workshops with the lowest annual cost (Costs page).",
    )
    st.number_input(
        "Number of workshops (existing ones included)",
        min_value=1,
        max_value=shared.MAX_WORKSHOPS,
        step=1,
        key="workshops",
        disabled=bool(st.session_state["workshops_auto"]) or budget_on or standard_on,
    )
    st.toggle(
        "Respect workshop capacity",
        key="capacitated",
        help="No site takes more jobs a year than it can do: its own capacity from your "
        "sites file, else technicians x jobs per technician (Costs page); partners their "
        "capacity, else partner_capacity_jobs. Customers of a full site go to the next one "
        "(Results lists them with the extra minutes).",
    )
    sizes_on = st.toggle(
        "Choose workshop sizes",
        key="sizes_on",
        disabled=st.session_state["layout"] == "outsourced"
        or st.session_state["objective"] != "min_travel",
        help="In-house and two-tier: each new own workshop opens in one of these sizes (yearly "
        "fixed cost and jobs a year), chosen together with the sites (and the office); "
        "capacities are respected. Partner shops have no sizes. A sites file's `sizes` column "
        "limits the sizes a site allows.",
    )
    if sizes_on and not st.session_state.get("cost_customer_time_eur_per_hour"):
        st.warning(
            "Sizes trade each size's fixed cost against customers' travel time: set a value "
            "of customer time (EUR per hour) on the Costs page."
        )
    if sizes_on:
        edited = st.data_editor(
            pd.DataFrame([size.to_dict() for size in shared.current_sizes()]),
            num_rows="dynamic",
            hide_index=True,
            key="sizes_editor",
            column_config={
                "name": st.column_config.TextColumn("size", required=True),
                "fixed_cost_eur": st.column_config.NumberColumn(
                    "fixed cost (EUR/year)", min_value=0, format="%.0f", required=True
                ),
                "capacity_jobs": st.column_config.NumberColumn(
                    "capacity (jobs/year)", min_value=1, format="%.0f", required=True
                ),
                "technicians": st.column_config.NumberColumn("technicians", min_value=0),
            },
        )
        st.session_state["sizes_rows"] = shared.sizes_rows(edited)
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
    shared.market_ui.plan_controls()
    st.selectbox(
        "Partners repair",
        shared.PRODUCT_CLASS_OPTIONS,
        key="product_class",
        help="Which repair businesses in OpenStreetMap count as partner shops (outsourced "
        "and two-tier layouts); partner shops you upload are used as they are.",
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

job = shared.collect_job("plan")
if st.button("Run", type="primary", disabled=job is not None):
    shared.start_plan().finished.wait(shared.QUICK_WAIT_S)
    job = shared.collect_job("plan")
if job is not None:
    shared.job_panel("plan")
if error := st.session_state.get("plan_error"):
    st.error(f"Could not plan: {error}")

entry = st.session_state.get("plan")
if entry and job is None:
    result = entry["result"]
    shared.stale_note(entry)
    solved = entry["spec"]
    if solved.budget_per_year is not None:
        count = (
            f"{result.kpis['sites']:,.0f} service points within a budget of "
            f"{shared.money(solved.budget_per_year)} a year (network cost "
            f"{shared.money(result.result.provenance['network_cost_per_year'])})"
        )
    elif solved.meet_standard:
        count = (
            f"the fewest workshops that meet the service standard "
            f"({result.kpis['sites']:,.0f} service points)"
        )
    elif solved.workshops is None:
        count = "the cost-optimal number of workshops"
    else:
        count = f"{solved.workshops} workshops"
    if entry.get("stopped"):
        st.warning(f"Stopped: the best answer found so far for {count} ({solved.layout}).")
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
