"""Costs: every cost assumption, with its unit and the default from the README."""

from __future__ import annotations

import dataclasses

import streamlit as st

from app_pages import _shared as shared
from planner.results.costs import CostParameters

shared.init_state()
st.title("Cost assumptions")
st.caption(
    "Used by every layout, the comparison, the K-curve and the report. Each value starts at "
    "the default documented in the README; your changes stay until you reset them. A site "
    "with its own fixed_cost or capacity in your sites file uses those instead of the rent "
    "(office rent) and of technicians x jobs per technician (partner capacity) here."
)

GROUPS: dict[str, tuple[str, ...]] = {
    "Own workshops": (
        "workshop_rent_eur",
        "technicians_per_workshop",
        "technician_salary_eur",
        "receptionist_eur",
        "workshop_parts_store_eur",
        "jobs_per_technician",
    ),
    "Partner repair shops (outsourced)": (
        "partner_fee_per_job_eur",
        "leakage_share",
        "margin_per_job_eur",
    ),
    "Central office and deliveries (two-tier)": (
        "office_rent_eur",
        "office_staff",
        "office_staff_salary_eur",
        "central_parts_store_eur",
        "two_tier_workshop_store_eur",
        "deliveries_per_workshop",
        "delivery_cost_per_min_eur",
    ),
    "Customers": ("customer_time_eur_per_hour", "jobs_per_weight"),
}
DEFAULTS = CostParameters()
MEANINGS = {row["parameter"]: row["meaning"] for row in shared.cost_rows()}
_grouped = {name for names in GROUPS.values() for name in names}
_missing = [f.name for f in dataclasses.fields(CostParameters) if f.name not in _grouped]
if _missing:  # a parameter added to the library shows up here too
    GROUPS["Other"] = tuple(_missing)


def _reset() -> None:
    for f in dataclasses.fields(CostParameters):
        st.session_state[f"cost_{f.name}"] = float(f.default)


for title, names in GROUPS.items():
    st.subheader(title)
    cols = st.columns(3)
    for i, name in enumerate(names):
        default = float(getattr(DEFAULTS, name))
        meaning = MEANINGS.get(name, name)
        with cols[i % 3]:
            st.number_input(
                meaning[:1].upper() + meaning[1:],
                min_value=0.0,
                max_value=1.0 if name == "leakage_share" else None,
                step=0.05 if name == "leakage_share" else max(1.0, default / 10),
                key=f"cost_{name}",
                help=f"`{name}`; default {default:,g}",
            )

st.button("Reset all to the defaults", on_click=_reset)
with st.expander("All assumptions as a table"):
    st.dataframe(shared.cost_rows(), hide_index=True, width="stretch")
shared.footer()
