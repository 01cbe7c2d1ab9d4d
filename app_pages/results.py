"""Results: the map, the KPIs in plain words, the sites, every customer's workshop, how full
each site is and who drives further because their nearest site is full."""

from __future__ import annotations

import streamlit as st

from app_pages import _account as account
from app_pages import _shared as shared
from planner.errors import PlannerError
from planner.outputs.safe import to_csv_bytes
from planner.register.store import open_store
from planner.results.capacity import not_at_nearest, utilisation_table

shared.init_state()
st.title("Results")

entry = st.session_state.get("plan")
if not entry:
    st.info("No result yet: choose your data on the **Data** page and press **Run** on **Plan**.")
    shared.footer()
    st.stop()

result = entry["result"]
spec = entry["spec"]
shared.stale_note(entry)
st.markdown(
    f"**{spec.name}** · {spec.layout} · solved on {entry['solved_on']}. "
    + shared.solution_note(result)
)
for warning in result.warnings:
    st.warning(warning)

kpis = result.kpis
cols = st.columns(4)
cols[0].metric("Average drive", shared.minutes(kpis["mean_travel_min"]))
cols[1].metric("9 in 10 jobs within", shared.minutes(kpis["p90_travel_min"]))
cols[2].metric(
    f"Jobs within {spec.service_standard_min['default']:.0f} min",
    shared.percent(kpis.get("share_within_sla", float("nan"))),
)
cols[3].metric("Annual cost", shared.money(kpis.get("annual_cost_eur", float("nan"))))

shared.market_ui.results_section(result)
if result.market is not None:
    st.caption(
        "The map shows the expected share by area and the competitors; the share curve "
        "against the number of sites is the K-curve on the **Compare** page."
    )

options: dict[str, object] = {}
with st.expander("Map layers", expanded=False):
    options["catchments"] = st.checkbox("Catchment areas", key="map_catchments")
    options["assignment_lines"] = st.checkbox(
        "Lines from each customer to its workshop", key="map_lines"
    )
    site = st.selectbox(
        "Drive-time area around", [None, *result.sites["site_id"].astype(str)], key="iso_site"
    )
    options["isochrone_site"] = site
    options["isochrone_min"] = st.number_input("Minutes", 5.0, 120.0, 15.0, 5.0, key="iso_min")
with st.spinner("Drawing the map…"):
    shared.show_map(
        shared.result_map(result, spec.region, area=shared.entry_area(entry), **options),
        key=f"result-map-{hash(entry['key'])}-{hash(tuple(sorted(map(str, options.items()))))}",
    )

st.subheader("Proposed sites")
st.dataframe(
    shared.shortlist_table(result),
    hide_index=True,
    width="stretch",
    column_config={
        "demand_share": st.column_config.NumberColumn("share of jobs", format="percent"),
        "mean_travel_min": st.column_config.NumberColumn("mean drive (min)", format="%.1f"),
        "max_travel_min": st.column_config.NumberColumn("longest drive (min)", format="%.1f"),
        "lat": st.column_config.NumberColumn(format="%.5f"),
        "lon": st.column_config.NumberColumn(format="%.5f"),
    },
)
left, right = st.columns([2, 3])
with left:
    st.subheader("In plain words")
    st.dataframe(shared.plain_kpis(result), hide_index=True, width="stretch")
with right:
    st.subheader("How far customers drive")
    st.bar_chart(
        shared.travel_time_distribution(result),
        x="travel band",
        y="jobs",
        x_label="drive to the workshop",
        y_label="jobs per year",
    )

st.subheader("Every customer's workshop")
assignments = shared.assignment_table(result)
st.dataframe(assignments, hide_index=True, width="stretch", height=300)
st.download_button(
    "Download the assignments (CSV)",
    data=to_csv_bytes(assignments),
    file_name="assignments.csv",
    mime="text/csv",
    on_click=account.audit_export,
    args=("assignments.csv",),
)
st.download_button(
    "Download shortlist (CSV)",
    data=to_csv_bytes(result.shortlist()),
    file_name="shortlist.csv",
    mime="text/csv",
    on_click=account.audit_export,
    args=("shortlist.csv",),
)
st.subheader("How full each site is")
load_table = utilisation_table(result)
if len(load_table):
    st.bar_chart(
        load_table,
        x="site",
        y="utilisation_pct",
        color="colour",
        x_label="site",
        y_label="per cent of its capacity (red: above 100 %)",
    )
    st.dataframe(
        load_table.drop(columns=["colour", "utilisation_pct"]),
        hide_index=True,
        width="stretch",
        column_config={"utilisation": st.column_config.NumberColumn(format="percent")},
    )
else:
    st.caption("No site of this layout has a capacity.")
displaced = not_at_nearest(result)
if len(displaced):
    st.markdown(
        f"**{len(displaced):,} customers** are not served by their nearest site because it is "
        f"full; they drive {shared.minutes(kpis['extra_min_not_at_nearest'])} more on average."
    )
    st.dataframe(displaced, hide_index=True, width="stretch", height=250)
elif spec.capacitated:
    st.caption("Every customer is served by its nearest site: no site is full.")
with st.expander("Loads per site"):
    st.dataframe(result.loads, hide_index=True, width="stretch")
if st.button("Save this plan to the register", key="save_plan_register"):
    try:
        with open_store() as store:
            plan_id = store.save_plan(result, name=spec.name, region=str(spec.region))
        st.success(f"Saved as plan {plan_id} in the register ({store.path}).")
    except PlannerError as exc:
        st.error(f"Cannot save the plan: {exc}")
shared.footer()
