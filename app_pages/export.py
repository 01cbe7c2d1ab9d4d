"""Export: every output of the last plan and comparison, and the scenario itself."""

from __future__ import annotations

import streamlit as st

from app_pages import _account as account
from app_pages import _shared as shared
from planner.engine import workspace as ws
from planner.errors import PlannerError
from planner.outputs.safe import to_csv_bytes

shared.init_state()
st.title("Export")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

entry = st.session_state.get("plan")
st.subheader("Plan")
if entry:
    result, region = entry["result"], entry["spec"].region
    area = shared.entry_area(entry)  # the roads the plan was solved on
    st.caption(f"{entry['spec'].name}: solved on {entry['solved_on']}.")
    shared.stale_note(entry)
    try:
        c1, c2, c3 = st.columns(3)
        c1.download_button(
            "Shortlist (CSV)",
            to_csv_bytes(result.shortlist()),
            "shortlist.csv",
            "text/csv",
            key="exp_shortlist",
            on_click=account.audit_export,
            args=("shortlist",),
        )
        c1.download_button(
            "Assignments (CSV)",
            to_csv_bytes(shared.assignment_table(result)),
            "assignments.csv",
            "text/csv",
            key="exp_assignments",
            on_click=account.audit_export,
            args=("assignments",),
        )
        c1.download_button(
            "Territories (CSV)",
            shared.export_bytes("territories", result, region, area=area),
            "territories.csv",
            "text/csv",
            key="exp_territories",
            on_click=account.audit_export,
            args=("territories",),
        )
        c2.download_button(
            "Map (HTML, works offline)",
            shared.export_bytes("map", result, region, area=area),
            "map.html",
            "text/html",
            key="exp_map",
            on_click=account.audit_export,
            args=("map",),
        )
        c2.download_button(
            "Report (HTML, prints on A4)",
            shared.export_bytes("report", result, region, area=area),
            "report.html",
            "text/html",
            key="exp_report",
            on_click=account.audit_export,
            args=("report",),
        )
        c2.download_button(
            "Workbook (XLSX)",
            shared.export_bytes("xlsx", result, region, area=area),
            "plan.xlsx",
            XLSX,
            key="exp_xlsx",
            on_click=account.audit_export,
            args=("xlsx",),
        )
        c3.download_button(
            "Sites (GeoJSON)",
            shared.export_bytes("geojson", result, region, area=area),
            "sites.geojson",
            "application/geo+json",
            key="exp_geojson",
            on_click=account.audit_export,
            args=("geojson",),
        )
        c3.download_button(
            "All GIS layers (GeoPackage, for QGIS)",
            shared.export_bytes("gpkg", result, region, area=area),
            "plan.gpkg",
            "application/geopackage+sqlite3",
            key="exp_gpkg",
            on_click=account.audit_export,
            args=("gpkg",),
        )
    except PlannerError as exc:
        st.error(f"Could not build the exports: {exc}")
else:
    st.info("Press **Run** on the Plan page first.")

st.subheader("Comparison")
saved = st.session_state.get("compare")
if saved:
    comparison, region = saved["comparison"], saved["spec"].region
    cmp_area = shared.entry_area(saved)
    key = saved["key"]
    curve_state = st.session_state.get("k_curve")
    rob_state = st.session_state.get("robust")
    extras = {
        "k_curve": curve_state[2] if curve_state and curve_state[0][0] == key else None,
        "robustness": rob_state[3] if rob_state and rob_state[0][0] == key else None,
    }
    st.caption(
        f"Solved on {saved['solved_on']}. Included: "
        + ", ".join(
            [
                name
                for name, value in (
                    ("K-curve", extras["k_curve"]),
                    ("robustness", extras["robustness"]),
                )
                if value is not None
            ]
            or ["no K-curve or robustness yet (draw them on the Compare page)"]
        )
    )
    try:
        c1, c2, c3 = st.columns(3)
        c1.download_button(
            "Comparison (CSV)",
            to_csv_bytes(comparison.table),
            "comparison.csv",
            "text/csv",
            key="exp_cmp_csv",
            on_click=account.audit_export,
            args=("cmp_csv",),
        )
        c2.download_button(
            "Workbook (XLSX)",
            shared.export_bytes("xlsx", comparison, region, area=cmp_area, **extras),
            "comparison.xlsx",
            XLSX,
            key="exp_cmp_xlsx",
            on_click=account.audit_export,
            args=("cmp_xlsx",),
        )
        c3.download_button(
            "Report (HTML, prints on A4)",
            shared.export_bytes("report", comparison, region, area=cmp_area, **extras),
            "report.html",
            "text/html",
            key="exp_cmp_report",
            on_click=account.audit_export,
            args=("cmp_report",),
        )
    except PlannerError as exc:
        st.error(f"Could not build the exports: {exc}")
else:
    st.info("Press **Compare** on the Compare page first.")

st.subheader("Scenario")
st.download_button(
    "Scenario bundle (.zip: scenario.toml + your files)",
    shared.scenario_bundle(),
    f"{ws.scenario_slug(st.session_state['scenario_name'])}.zip",
    "application/zip",
    key="exp_bundle",
    on_click=account.audit_export,
    args=("bundle",),
)
st.caption("Unzip and run `planner run scenario.toml`, or open it again on the Data page.")
shared.footer()
