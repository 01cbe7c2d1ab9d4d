"""Export: every output of the last plan and comparison, and the scenario itself."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app_pages import _account as account
from app_pages import _shared as shared
from planner.engine import workspace as ws
from planner.errors import PlannerError
from planner.outputs.safe import to_csv_bytes

shared.init_state()
st.title("Export")

MIME = {
    "csv": "text/csv",
    "html": "text/html",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "geojson": "application/geo+json",
    "gpkg": "application/geopackage+sqlite3",
    "zip": "application/zip",
}


def _download(where: Any, label: str, data: Any, filename: str, what: str) -> None:
    """A download button (its type from the file name) whose press is audited as ``what``."""
    where.download_button(
        label,
        data,
        filename,
        MIME[filename.rsplit(".", 1)[-1]],
        key=f"exp_{what}",
        on_click=account.audit_export,
        args=(what,),
    )


entry = st.session_state.get("plan")
st.subheader("Plan")
if entry:
    result, region = entry["result"], entry["spec"].region
    area = shared.entry_area(entry)  # the roads the plan was solved on
    st.caption(f"{entry['spec'].name}: solved on {entry['solved_on']}.")
    shared.stale_note(entry)
    try:
        c1, c2, c3 = st.columns(3)
        _download(
            c1, "Shortlist (CSV)", to_csv_bytes(result.shortlist()), "shortlist.csv", "shortlist"
        )
        _download(
            c1,
            "Assignments (CSV)",
            to_csv_bytes(shared.assignment_table(result)),
            "assignments.csv",
            "assignments",
        )
        _download(
            c1,
            "Territories (CSV)",
            shared.export_bytes("territories", result, region, area=area),
            "territories.csv",
            "territories",
        )
        _download(
            c2,
            "Map (HTML, works offline)",
            shared.export_bytes("map", result, region, area=area),
            "map.html",
            "map",
        )
        _download(
            c2,
            "Report (HTML, prints on A4)",
            shared.export_bytes("report", result, region, area=area),
            "report.html",
            "report",
        )
        _download(
            c2,
            "Workbook (XLSX)",
            shared.export_bytes("xlsx", result, region, area=area),
            "plan.xlsx",
            "xlsx",
        )
        _download(
            c3,
            "Sites (GeoJSON)",
            shared.export_bytes("geojson", result, region, area=area),
            "sites.geojson",
            "geojson",
        )
        _download(
            c3,
            "All GIS layers (GeoPackage, for QGIS)",
            shared.export_bytes("gpkg", result, region, area=area),
            "plan.gpkg",
            "gpkg",
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
        _download(
            c1, "Comparison (CSV)", to_csv_bytes(comparison.table), "comparison.csv", "cmp_csv"
        )
        _download(
            c2,
            "Workbook (XLSX)",
            shared.export_bytes("xlsx", comparison, region, area=cmp_area, **extras),
            "comparison.xlsx",
            "cmp_xlsx",
        )
        _download(
            c3,
            "Report (HTML, prints on A4)",
            shared.export_bytes("report", comparison, region, area=cmp_area, **extras),
            "report.html",
            "cmp_report",
        )
    except PlannerError as exc:
        st.error(f"Could not build the exports: {exc}")
else:
    st.info("Press **Compare** on the Compare page first.")

st.subheader("Scenario")
_download(
    st,
    "Scenario bundle (.zip: scenario.toml + your files)",
    shared.scenario_bundle(),
    f"{ws.scenario_slug(st.session_state['scenario_name'])}.zip",
    "bundle",
)
st.caption("Unzip and run `planner run scenario.toml`, or open it again on the Data page.")
shared.footer()
