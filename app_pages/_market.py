"""The market model's widgets (issue 25): the Plan page's objective and decay, the Results
page's jobs won and lost, share by area and share curve. Logic lives in :mod:`planner`
(:mod:`planner.results.market`, :mod:`planner.engine.market`); this module only reads widgets
and renders."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pandas as pd
import streamlit as st

from planner.engine import ScenarioSpec
from planner.results.market import DECAY_FORMS, DEFAULT_DECAY_PARAMETER, DemandModel

#: The Plan page's objectives, as people say them.
OBJECTIVE_LABELS: dict[str, str] = {
    "min_travel": "Shortest drives",
    "max_capture": "Maximise customers won",
    "target_share": "Fewest sites for a market share",
    "max_profit": "Most profit (margin x jobs won - fixed costs)",
}
DECAY_CHOICES: dict[str, str] = {
    "default": "Literature default",
    "calibrated": "Calibrated from my job history",
    "typed": "Type it in",
}
DEFAULTS: dict[str, Any] = {
    "objective": "min_travel",
    "target_share": 0.3,
    "decay_choice": "default",
    "decay_form": "power",
    "decay_parameter": DEFAULT_DECAY_PARAMETER["power"],
    "calibrated_model": None,
}


def market_on(state: MutableMapping[str, Any]) -> bool:
    """Whether the session plans with a market objective."""
    return str(state.get("objective", "min_travel")) != "min_travel"


def demand_model(state: MutableMapping[str, Any]) -> DemandModel:
    """The decay the user chose: the default, the calibrated one, or typed in."""
    choice = state.get("decay_choice", "default")
    calibrated = state.get("calibrated_model")
    if choice == "calibrated" and calibrated:
        return DemandModel.from_dict(calibrated)
    form = str(state.get("decay_form", "power"))
    if choice == "typed":
        return DemandModel(form=form, parameter=float(state["decay_parameter"]), source="typed")
    return DemandModel(form=form)


def spec_fields(state: MutableMapping[str, Any]) -> dict[str, Any]:
    """The spec fields of the market model from the session."""
    objective = str(state.get("objective", "min_travel"))
    out: dict[str, Any] = {"objective": objective, "demand_model": demand_model(state)}
    if objective == "target_share":
        out["target_share"] = float(state.get("target_share", 0.3))
    return out


def apply_spec(state: MutableMapping[str, Any], spec: ScenarioSpec) -> None:
    """Load a reopened scenario's market fields into the session."""
    state["objective"] = spec.objective
    if spec.target_share is not None:
        state["target_share"] = spec.target_share
    model = spec.demand_model
    state["decay_form"] = model.form
    state["decay_parameter"] = model.value
    state["decay_choice"] = model.source
    state["calibrated_model"] = model.to_dict() if model.source == "calibrated" else None


def plan_controls() -> None:
    """The Plan page's objective and, for the market objectives, the decay."""
    st.selectbox(
        "Plan for",
        list(OBJECTIVE_LABELS),
        format_func=OBJECTIVE_LABELS.__getitem__,
        key="objective",
        help="Shortest drives: every customer goes to the nearest workshop. The others use "
        "the market model: each customer shares its jobs among your sites, competing repair "
        "shops (OpenStreetMap and competitor rows of your site list; outsourced, also the "
        "partner shops you do not contract) and not coming at all, by attractiveness x a "
        "decay of the drive time (Huff).",
    )
    if not market_on(st.session_state):
        return
    if st.session_state["objective"] == "target_share":
        st.slider("Share of all jobs to win", 0.05, 1.0, step=0.05, key="target_share")
    choices = list(DECAY_CHOICES)
    if not st.session_state.get("calibrated_model"):
        choices.remove("calibrated")
        if st.session_state.get("decay_choice") == "calibrated":
            st.session_state["decay_choice"] = "default"
    st.radio(
        "Distance decay",
        choices,
        format_func=DECAY_CHOICES.__getitem__,
        key="decay_choice",
        horizontal=True,
        help="Default: power decay, lambda 1.5 (Huff's range 1.5-2 for shopping trips). "
        "Calibrated: from `planner calibrate` on your job history, saved in the scenario.",
    )
    if st.session_state["decay_choice"] == "typed":
        st.selectbox("Decay form", DECAY_FORMS, key="decay_form")
        st.number_input(
            "lambda (power) or beta per minute (exponential)",
            min_value=0.001,
            max_value=10.0,
            step=0.1,
            format="%.3f",
            key="decay_parameter",
        )
    st.caption(demand_model(st.session_state).describe())


def results_section(result: Any) -> None:
    """The Results page's market figures: jobs won and lost per site, the competitors."""
    market = result.market
    if market is None:
        return
    k = market.kpis
    st.subheader("Customers won")
    cols = st.columns(4)
    cols[0].metric("Jobs won a year", f"{k['jobs_won']:,.0f} of {k['jobs_total']:,.0f}")
    cols[1].metric("Expected share", f"{k['expected_share']:.0%}")
    cols[2].metric("Lost to competitors", f"{k['jobs_lost_to_competitors']:,.0f}")
    cols[3].metric("Profit a year", f"€ {k['profit_eur']:,.0f}")
    st.caption(
        f"Market model: {market.model.describe()}. {int(k['competitors'])} competitors; "
        f"{k['jobs_lost_to_nobody']:,.0f} jobs a year are not done at all. Cannibalised: jobs a "
        "site takes from your other sites."
    )
    st.dataframe(
        market.sites,
        hide_index=True,
        width="stretch",
        column_config={
            "jobs_won": st.column_config.NumberColumn("jobs won", format="%.1f"),
            "jobs_added": st.column_config.NumberColumn("jobs lost without it", format="%.1f"),
            "cannibalised": st.column_config.NumberColumn("cannibalised", format="%.1f"),
        },
    )


def share_curve_table(curve: pd.DataFrame) -> pd.DataFrame:
    """The K-curve's market columns: sites against jobs won and expected share."""
    keep = [
        c for c in ("workshops", "jobs_won", "expected_share", "profit_eur", "gap") if c in curve
    ]
    return curve[keep]
