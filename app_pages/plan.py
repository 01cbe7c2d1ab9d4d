"""Plan workshops: the region's customers, a number of workshops, and "Run"."""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as shared
from planner.errors import PlannerError
from planner.outputs import maps

st.title("Plan repair workshops")

with st.sidebar:
    region = shared.region_select(key="region")
    workshops = shared.workshops_input("Number of workshops", key="workshops")
    run = st.button("Run", type="primary", width="stretch")
    upload = st.file_uploader(
        "Your customers (optional)",
        type=list(shared.UPLOAD_TYPES),
        key="customers_file",
        help="One row per customer: id, lat and lon (or an address), weight (jobs per year), "
        "segment. Without a file the region's demo customers are used.",
    )
    st.download_button(
        "Customer file template (CSV)",
        data=shared.CUSTOMERS_TEMPLATE.read_bytes(),
        file_name="customers_template.csv",
        mime="text/csv",
    )
    st.caption("Sites are proposed on the region's real road network.")

upload_name = upload.name if upload is not None else None
upload_data = upload.getvalue() if upload is not None else None
spec = (region, workshops, shared.file_key(upload_name, upload_data))
title = shared.region_title(region)

if upload is not None:
    with st.spinner(f"Checking {upload.name} against the roads of {title}…"):
        table = shared.read_uploaded_customers(region, upload.name, upload.getvalue())
    report = shared.upload_report(table)
    if table.report.fatal or len(table.valid) == 0:
        st.error(report)
    elif table.report.issues:
        st.warning(
            f"{len(table.valid):,} customers from {upload.name} can be used; some rows have "
            "problems and are left out (details below)."
        )
        with st.expander("Validation report"):
            st.text(report)

if run:
    try:
        with st.status(f"Planning {workshops} workshops in {title}…", expanded=True) as status:
            st.write("Loading the road network…")
            shared.load_graph(region)
            st.write("Computing travel times and choosing sites…")
            result = shared.plan(region, workshops, upload_name, upload_data)
            status.update(
                label=f"Planned {workshops} workshops in {title}", state="complete", expanded=False
            )
        st.session_state["plan"] = {"spec": spec, "result": result}
    except PlannerError as exc:
        st.error(f"Could not plan: {exc}")

saved = st.session_state.get("plan")
if saved and saved["spec"] == spec:
    result = saved["result"]
    kpis = result.kpis
    cols = st.columns(4)
    cols[0].metric("Mean travel", f"{kpis['mean_travel_min']:.1f} min")
    cols[1].metric("90 % of demand within", f"{kpis['p90_travel_min']:.1f} min")
    cols[2].metric("Demand within 15 min", f"{100 * kpis['share_within_15_min']:.0f} %")
    cols[3].metric("Demand within 30 min", f"{100 * kpis['share_within_30_min']:.0f} %")
    for warning in result.warnings:
        st.warning(warning)
    with st.spinner("Drawing the map…"):
        result_map = maps.result_map(result, roads=shared.load_roads(region), tiles=shared.tiles())
        shared.show_map(result_map, key=f"result-{'-'.join(map(str, spec))}")

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Shortlist")
        st.dataframe(result.shortlist(), hide_index=True, width="stretch")
        st.download_button(
            "Download shortlist (CSV)",
            data=result.shortlist().to_csv(index=False),
            file_name="shortlist.csv",
            mime="text/csv",
        )
        st.download_button(
            "Download map (HTML, works offline)",
            data=shared.result_map_html(region, workshops, upload_name, upload_data),
            file_name="map.html",
            mime="text/html",
        )
    with right:
        st.subheader("KPIs")
        st.dataframe(shared.kpi_display(result), hide_index=True, width="stretch")
    with st.expander("Provenance"):
        st.json(dict(result.provenance), expanded=False)
else:
    if upload is None:
        with st.spinner(f"Loading the road network and customers of {title}…"):
            customers = shared.load_customers(region)
        source = "demo customers"
    else:
        customers = table.valid
        source = f"customers from {upload.name}"
    with st.spinner("Drawing the map…"):
        roads = shared.load_roads(region)
    st.info(
        f"{len(customers):,} {source} in {title}. Choose the number of workshops and "
        "press **Run** to propose sites."
    )
    shared.show_map(
        maps.customers_map(customers, roads=roads, tiles=shared.tiles()),
        key=f"customers-{'-'.join(map(str, spec))}",
    )

st.caption(shared.OSM_CREDIT)
