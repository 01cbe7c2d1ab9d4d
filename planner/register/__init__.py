"""The customer register over time: demand trends, forecasts and economics per relationship.

It sits between :mod:`planner.results` and :mod:`planner.engine` in the import order: it reads
job histories (:mod:`planner.inputs.jobs`) and solved results, and the engine's phased plan
(:mod:`planner.engine.phases`) uses its forecast as the demand weight of each year.

==============================  ==============================================================
:func:`segment_trends`          yearly growth of each segment's jobs, interval, flag
:func:`area_trends`             the same per H3 hexagon (or territory) and segment
:func:`forecast_jobs`           each customer's expected jobs in the next 1-5 years
:func:`forecast_weights`        customers with weight = forecast jobs of one year
:func:`customer_economics`      jobs, revenue, cost to serve, margin, complaints per customer
:func:`site_economics`          the same per site, with partners flagged for complaints
:func:`stable_assignment`       keep each customer's site unless it gains enough minutes
:func:`fit_decay`               the market model's distance decay by maximum likelihood
==============================  ==============================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from planner._lazy import lazy_getattr

if TYPE_CHECKING:
    from planner.register.calibration import calibration_plot, customer_history, fit_decay
    from planner.register.economics import (
        complaint_flags,
        customer_economics,
        exclude_sites,
        segment_economics,
        site_economics,
    )
    from planner.register.forecast import forecast_jobs, forecast_weights
    from planner.register.stability import stable_assignment
    from planner.register.trends import area_trends, count_jobs, segment_trends

# imported at first use (PEP 562): ``planner trends`` does not pay for the calibration's
# scipy.optimize, the economics or the forecast it does not call
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ("calibration_plot", "customer_history", "fit_decay"), "planner.register.calibration"
    ),
    **dict.fromkeys(
        (
            "complaint_flags",
            "customer_economics",
            "exclude_sites",
            "segment_economics",
            "site_economics",
        ),
        "planner.register.economics",
    ),
    **dict.fromkeys(("forecast_jobs", "forecast_weights"), "planner.register.forecast"),
    "stable_assignment": "planner.register.stability",
    **dict.fromkeys(("area_trends", "count_jobs", "segment_trends"), "planner.register.trends"),
}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


__all__ = [
    "area_trends",
    "calibration_plot",
    "complaint_flags",
    "count_jobs",
    "customer_economics",
    "customer_history",
    "exclude_sites",
    "fit_decay",
    "forecast_jobs",
    "forecast_weights",
    "segment_economics",
    "segment_trends",
    "site_economics",
    "stable_assignment",
]
