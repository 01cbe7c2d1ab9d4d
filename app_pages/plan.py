"""Plan workshops: the demo region's customers, a number of workshops, and "Run"."""

from __future__ import annotations

import streamlit as st

from app_pages import _shared as shared
from planner import maps

st.title("Plan repair workshops")

requested = st.query_params.get("region", shared.REGIONS[0])
with st.sidebar:
    region = st.selectbox(
        "Region",
        shared.REGIONS,
        index=shared.REGIONS.index(requested) if requested in shared.REGIONS else 0,
        format_func=shared.region_title,
        key="region",
    )
    workshops = int(
        st.number_input(
            "Number of workshops",
            min_value=1,
            max_value=shared.MAX_WORKSHOPS,
            value=shared.DEFAULT_WORKSHOPS,
            step=1,
            key="workshops",
        )
    )
    run = st.button("Run", type="primary", width="stretch")
    st.caption("Demo customers of the region; sites are proposed on its real road network.")

title = shared.region_title(region)
if run:
    with st.status(f"Planning {workshops} workshops in {title}…", expanded=True) as status:
        st.write("Loading the road network…")
        shared.load_graph(region)
        st.write("Computing travel times and choosing sites…")
        result = shared.plan(region, workshops)
        status.update(
            label=f"Planned {workshops} workshops in {title}", state="complete", expanded=False
        )
    st.session_state["plan"] = {"region": region, "workshops": workshops, "result": result}

saved = st.session_state.get("plan")
if saved and saved["region"] == region and saved["workshops"] == workshops:
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
        shared.show_map(result_map, key=f"result-{region}-{workshops}")

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
            data=shared.result_map_html(region, workshops),
            file_name="map.html",
            mime="text/html",
        )
    with right:
        st.subheader("KPIs")
        st.dataframe(shared.kpi_display(result), hide_index=True, width="stretch")
    with st.expander("Provenance"):
        st.json(dict(result.provenance), expanded=False)
else:
    with st.spinner(f"Loading the road network and customers of {title}…"):
        customers = shared.load_customers(region)
        roads = shared.load_roads(region)
    st.info(
        f"{len(customers):,} demo customers in {title}. Choose the number of workshops and "
        "press **Run** to propose sites."
    )
    shared.show_map(
        maps.customers_map(customers, roads=roads, tiles=shared.tiles()),
        key=f"customers-{region}",
    )

st.caption(shared.OSM_CREDIT)
