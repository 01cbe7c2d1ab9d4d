"""Compare layouts: in-house, outsourced and two-tier on the same customers and roads."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from app_pages import _shared as shared
from planner.engine import (
    LAYOUTS,
    ScenarioInstance,
    ScenarioSpec,
    compare,
    k_curve,
    prepare_scenario,
    robustness,
)
from planner.outputs import export, maps
from planner.outputs.report import COST_PARTS, report_html
from planner.results.costs import CostParameters, describe_parameters
from planner.results.types import Comparison, Robustness


def _compare(
    region: str,
    workshops: int,
    layouts: tuple[str, ...],
    parameters: tuple[tuple[str, float], ...],
    sla_min: float,
    *,
    progress=None,
) -> Comparison:
    # Not st.cache_data: the progress callback writes to a bar created outside this function,
    # which Streamlit cannot replay on a cache hit. The result is kept in session state below
    # and the road graph is cached with st.cache_resource.
    spec = _spec(region, workshops, parameters, sla_min)
    return compare(spec, layouts=layouts, graph=shared.load_graph(region), progress=progress)


def _spec(
    region: str,
    workshops: int,
    parameters: tuple[tuple[str, float], ...],
    sla_min: float,
    layout: str = "in-house",
) -> ScenarioSpec:
    return ScenarioSpec(
        name=f"{shared.region_title(region)}: layout comparison",
        region=region,
        layout=layout,
        workshops=workshops,
        parameters=CostParameters.from_dict(dict(parameters)),
        service_standard_min={"default": sla_min},
    )


@st.cache_resource(show_spinner=False, max_entries=4)
def _instance(
    region: str, workshops: int, parameters: tuple[tuple[str, float], ...], sla_min: float
) -> ScenarioInstance:
    spec = _spec(region, workshops, parameters, sla_min)
    return prepare_scenario(spec, graph=shared.load_graph(region))


@st.cache_data(show_spinner=False, max_entries=8)
def _k_curve(key: tuple, k_max: int) -> pd.DataFrame:
    region, workshops, _layouts, parameters, sla_min = key
    return k_curve(_instance(region, workshops, parameters, sla_min), k_max)


@st.cache_data(show_spinner=False, max_entries=8)
def _robust(key: tuple, growth: float, slowdown: float) -> Robustness:
    region, workshops, _layouts, parameters, sla_min = key
    sinst = _instance(region, workshops, parameters, sla_min)
    return robustness(sinst, growth={"business": growth}, slowdown=1.0 + slowdown)


@st.cache_data(show_spinner=False, max_entries=16)
def _xlsx_bytes(_comparison: Comparison, key: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = export.write_xlsx(_comparison, Path(folder) / "comparison.xlsx")
        return path.read_bytes()


@st.cache_data(show_spinner=False, max_entries=16)
def _report(_comparison: Comparison, key: str, region: str) -> str:
    return report_html(_comparison, roads=shared.load_roads(region))


st.title("Compare service layouts")

defaults = CostParameters()
with st.sidebar:
    region = shared.region_select(key="cmp_region")
    workshops = shared.workshops_input("Workshops (or partners) per layout", key="cmp_workshops")
    layouts = st.multiselect("Layouts", LAYOUTS, default=list(LAYOUTS), key="cmp_layouts")
    sla = st.number_input("Service standard (minutes)", 5.0, 120.0, 30.0, 5.0, key="cmp_sla")
    with st.expander("Cost assumptions"):
        fee = st.number_input(
            "Partner fee per job (EUR)", 0.0, 10_000.0, defaults.partner_fee_per_job_eur, 10.0
        )
        leakage = st.slider("Leakage share", 0.0, 1.0, defaults.leakage_share, 0.05)
        technicians = st.number_input(
            "Technicians per workshop", 1.0, 50.0, defaults.technicians_per_workshop, 1.0
        )
        time_value = st.number_input(
            "Value of customer time (EUR/hour, 0 = not valued)",
            0.0,
            1_000.0,
            defaults.customer_time_eur_per_hour,
            5.0,
        )
    run = st.button("Compare", type="primary", width="stretch", disabled=not layouts)

params = defaults.replace(
    partner_fee_per_job_eur=fee,
    leakage_share=leakage,
    technicians_per_workshop=technicians,
    customer_time_eur_per_hour=time_value,
)
key = (region, workshops, tuple(layouts), tuple(sorted(params.to_dict().items())), float(sla))

saved = st.session_state.get("compare")
if run and not (saved and saved["key"] == key):
    bar = st.progress(0.0, text="Starting…")
    comparison = _compare(*key, progress=lambda m, f: bar.progress(min(max(f, 0.0), 1.0), m))
    bar.empty()
    saved = {"key": key, "comparison": comparison}
    st.session_state["compare"] = saved

if saved and saved["key"] == key:
    comparison = saved["comparison"]
    st.subheader("Side by side")
    st.dataframe(comparison.table, hide_index=True, width="stretch")
    st.subheader("Annual cost split (EUR)")
    st.bar_chart(
        comparison.table,
        x="layout",
        y=[c for c, _ in COST_PARTS],
        horizontal=True,
        stack=True,
    )
    st.subheader("Sites across layouts")
    st.dataframe(comparison.site_diff, hide_index=True, width="stretch")
    tabs = st.tabs(list(comparison.results))
    for tab, (layout, lr) in zip(tabs, comparison.results.items(), strict=True):
        with tab:
            sol = lr.result.solution
            st.caption(
                f"{sol.model} · {sol.solver} · "
                + ("proven optimal" if sol.optimal else f"gap {sol.gap:.2%}")
            )
            for warning in lr.result.warnings:
                st.warning(warning)
            shared.show_map(
                maps.result_map(lr.result, roads=shared.load_roads(region), tiles=shared.tiles()),
                key=f"cmp-map-{layout}-{hash(key)}",
            )
            st.dataframe(lr.loads, hide_index=True, width="stretch")
    left, mid, right = st.columns(3)
    left.download_button(
        "Comparison (CSV)",
        comparison.table.to_csv(index=False),
        file_name="comparison.csv",
        mime="text/csv",
    )
    mid.download_button(
        "Workbook (XLSX)",
        _xlsx_bytes(comparison, repr(key)),
        file_name="comparison.xlsx",
        mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    right.download_button(
        "Report (HTML)",
        _report(comparison, repr(key), region),
        file_name="report.html",
        mime="text/html",
    )
    with st.expander("Assumptions"):
        st.dataframe(describe_parameters(params), hide_index=True, width="stretch")

    st.subheader("More or fewer workshops? (K-curve, in-house)")
    k_max = int(st.number_input("Up to workshops", 2, shared.MAX_WORKSHOPS, 10, key="cmp_kmax"))
    if st.button("Draw the K-curve", key="cmp_kcurve"):
        with st.spinner("Solving for 1, 2, … workshops…"):
            st.session_state["k_curve"] = (key, k_max, _k_curve(key, k_max))
    if (curve_state := st.session_state.get("k_curve")) and curve_state[:2] == (key, k_max):
        curve = curve_state[2]
        left, right = st.columns(2)
        left.line_chart(curve, x="workshops", y="mean_travel_min")
        right.line_chart(curve, x="workshops", y="annual_cost")
        st.dataframe(curve, hide_index=True, width="stretch")

    st.subheader("Robustness")
    growth = st.slider("Business demand growth", 0.0, 1.0, 0.3, 0.05, key="cmp_growth")
    slowdown = st.slider("Main roads slower by", 0.0, 1.0, 0.3, 0.05, key="cmp_slow")
    if st.button("Re-solve the cases", key="cmp_robust"):
        with st.spinner("Re-solving with more demand and slower roads…"):
            st.session_state["robust"] = (key, growth, slowdown, _robust(key, growth, slowdown))
    if (rob_state := st.session_state.get("robust")) and rob_state[:3] == (key, growth, slowdown):
        rob = rob_state[3]
        st.write("Sites chosen in every case: " + (", ".join(rob.stable_sites) or "none"))
        st.dataframe(rob.cases, hide_index=True, width="stretch")
        st.dataframe(rob.sites, hide_index=True, width="stretch")
else:
    st.info(
        "Choose the region, the number of workshops and the cost assumptions, then press "
        "**Compare**: the layouts are solved on the same demo customers and road network."
    )

st.caption(shared.OSM_CREDIT)
