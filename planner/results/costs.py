"""Cost parameters of the three service layouts, documented in one place.

Every money figure is in EUR per year unless its name says otherwise. The defaults are
round, plausible figures for a small European service business; change them per scenario in
the ``[parameters]`` table of a scenario TOML file or with :meth:`CostParameters.replace`.

A *job* is one customer visit to a workshop. A customer's demand ``weight`` is read as jobs
per year (``jobs_per_weight`` converts it if your weights mean something else).

===============================  ========  ==================================================
parameter                        default   meaning
===============================  ========  ==================================================
``workshop_rent_eur``            30 000    rent of one workshop, per year
``technicians_per_workshop``     3         technicians employed in one own workshop
``technician_salary_eur``        45 000    cost of one technician, per year
``receptionist_eur``             28 000    one receptionist per own workshop, per year
``workshop_parts_store_eur``     45 000    own parts store of an in-house workshop, per year
``jobs_per_technician``          1 000     jobs one technician does per year
``partner_fee_per_job_eur``      140       fee paid to a partner repair shop per job
``partner_capacity_jobs``        1 000     jobs one partner shop takes per year (one
                                           technician's year: partners are small shops)
``leakage_share``                0.15      share of partner jobs later lost to the partner
``margin_per_job_eur``           60        margin lost on each leaked job
``office_rent_eur``              40 000    rent of the central office (two-tier), per year
``office_staff``                 2         staff of the central office
``office_staff_salary_eur``      48 000    cost of one office employee, per year
``central_parts_store_eur``      35 000    central parts store at the office, per year
``two_tier_workshop_store_eur``  4 000     small buffer stock of a two-tier workshop
``deliveries_per_workshop``      250       parts deliveries office -> workshop, per year
``delivery_cost_per_min_eur``    0.9       van and driver, per minute of driving
``customer_time_eur_per_hour``   0         value of customer travel time (0 = not valued)
``jobs_per_weight``              1.0       jobs per year per unit of customer weight
===============================  ========  ==================================================

Derived quantities (see the methods):

* in-house workshop fixed cost = rent + technicians x salary + receptionist + parts store
  (with the defaults: 30 000 + 3 x 45 000 + 28 000 + 45 000 = 238 000 EUR/year);
* two-tier workshop fixed cost = the same without the parts store, plus the buffer stock
  (197 000 EUR/year);
* workshop capacity = technicians x jobs per technician (3 000 jobs/year);
* office fixed cost = rent + staff x salary + central parts store (171 000 EUR/year);
* delivery cost of one workshop = deliveries x round-trip minutes office <-> workshop x cost
  per minute;
* leakage cost = outsourced jobs x leakage share x margin per job;
* customer time cost = jobs x round-trip hours x value per hour.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from planner.errors import InputError

__all__ = ["CostBreakdown", "CostParameters", "describe_parameters"]

_DESCRIPTIONS: dict[str, str] = {
    "workshop_rent_eur": "rent of one workshop, EUR/year",
    "technicians_per_workshop": "technicians employed in one own workshop",
    "technician_salary_eur": "cost of one technician, EUR/year",
    "receptionist_eur": "one receptionist per own workshop, EUR/year",
    "workshop_parts_store_eur": "own parts store of an in-house workshop, EUR/year",
    "jobs_per_technician": "jobs one technician does per year",
    "partner_fee_per_job_eur": "fee paid to a partner repair shop per job, EUR",
    "partner_capacity_jobs": "jobs one partner shop takes per year",
    "leakage_share": "share of partner jobs later lost to the partner (0..1)",
    "margin_per_job_eur": "margin lost on each leaked job, EUR",
    "office_rent_eur": "rent of the central office (two-tier), EUR/year",
    "office_staff": "staff of the central office",
    "office_staff_salary_eur": "cost of one office employee, EUR/year",
    "central_parts_store_eur": "central parts store at the office, EUR/year",
    "two_tier_workshop_store_eur": "small buffer stock of a two-tier workshop, EUR/year",
    "deliveries_per_workshop": "parts deliveries office -> workshop per year",
    "delivery_cost_per_min_eur": "van and driver cost per minute of driving, EUR",
    "customer_time_eur_per_hour": "value of customer travel time, EUR/hour (0 = not valued)",
    "jobs_per_weight": "jobs per year per unit of customer weight",
}


@dataclass(frozen=True)
class CostParameters:
    """Annual cost assumptions of the service layouts (EUR/year unless named otherwise).

    See the module docstring for the table of defaults. All values must be finite and
    non-negative, and ``leakage_share`` must lie in [0, 1].
    """

    workshop_rent_eur: float = 30_000.0
    technicians_per_workshop: float = 3.0
    technician_salary_eur: float = 45_000.0
    receptionist_eur: float = 28_000.0
    workshop_parts_store_eur: float = 45_000.0
    jobs_per_technician: float = 1_000.0
    partner_fee_per_job_eur: float = 140.0
    partner_capacity_jobs: float = 1_000.0
    leakage_share: float = 0.15
    margin_per_job_eur: float = 60.0
    office_rent_eur: float = 40_000.0
    office_staff: float = 2.0
    office_staff_salary_eur: float = 48_000.0
    central_parts_store_eur: float = 35_000.0
    two_tier_workshop_store_eur: float = 4_000.0
    deliveries_per_workshop: float = 250.0
    delivery_cost_per_min_eur: float = 0.9
    customer_time_eur_per_hour: float = 0.0
    jobs_per_weight: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"must be a number, got {value!r}", field=f.name)
            if not math.isfinite(value) or value < 0:
                raise InputError(f"must be finite and >= 0, got {value!r}", field=f.name)
            object.__setattr__(self, f.name, float(value))
        if self.leakage_share > 1:
            raise InputError(
                f"must lie in [0, 1], got {self.leakage_share!r}", field="leakage_share"
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> CostParameters:
        """Build parameters from a mapping, rejecting unknown keys.

        Parameters
        ----------
        values
            Parameter names and values; missing names keep their defaults.

        Returns
        -------
        CostParameters
        """
        values = dict(values or {})
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise InputError(
                f"unknown cost parameter(s) {unknown}; allowed: {allowed}", field="parameters"
            )
        return cls(**values)

    def to_dict(self) -> dict[str, float]:
        """Return all parameters as a plain ``{name: value}`` dict."""
        return dataclasses.asdict(self)

    def replace(self, **changes: float) -> CostParameters:
        """Return a copy with some parameters changed (unknown names raise InputError)."""
        merged = self.to_dict()
        unknown = sorted(set(changes) - set(merged))
        if unknown:
            raise InputError(
                f"unknown cost parameter(s) {unknown}; allowed: {sorted(merged)}",
                field="parameters",
            )
        merged.update(changes)
        return CostParameters(**merged)

    # ------------------------------------------------------------------ derived costs
    def workshop_fixed_cost_eur(self, *, layout: str = "in-house") -> float:
        """Annual fixed cost of one own workshop in ``layout``.

        Parameters
        ----------
        layout
            ``"in-house"`` (own parts store) or ``"two-tier"`` (stock at the office, only a
            small buffer store at the workshop). Partner workshops (``"outsourced"``) have
            no fixed cost.
        """
        staff = (
            self.workshop_rent_eur
            + self.technicians_per_workshop * self.technician_salary_eur
            + self.receptionist_eur
        )
        if layout == "in-house":
            return staff + self.workshop_parts_store_eur
        if layout == "two-tier":
            return staff + self.two_tier_workshop_store_eur
        if layout == "outsourced":
            return 0.0
        raise InputError(
            f"unknown layout {layout!r}; allowed: ['in-house', 'outsourced', 'two-tier']",
            field="layout",
        )

    @property
    def workshop_capacity_jobs(self) -> float:
        """Jobs per year one own workshop can do: technicians x jobs per technician."""
        return self.technicians_per_workshop * self.jobs_per_technician

    @property
    def office_fixed_cost_eur(self) -> float:
        """Annual fixed cost of the central office: rent, staff and central parts store."""
        return (
            self.office_rent_eur
            + self.office_staff * self.office_staff_salary_eur
            + self.central_parts_store_eur
        )

    def delivery_cost_eur(self, link_time_s: np.ndarray | float) -> np.ndarray | float:
        """Annual parts-delivery cost of workshops ``link_time_s`` seconds from the office.

        A delivery is a round trip, so the cost is
        ``deliveries_per_workshop * 2 * link_time_s / 60 * delivery_cost_per_min_eur``.
        """
        return (
            self.deliveries_per_workshop
            * 2.0
            * np.asarray(link_time_s, dtype=float)
            / 60.0
            * self.delivery_cost_per_min_eur
        )

    def customer_time_cost_eur(self, jobs: np.ndarray, travel_time_s: np.ndarray) -> float:
        """Annual value of customer round-trip travel time (0 when not valued)."""
        if self.customer_time_eur_per_hour == 0:
            return 0.0
        jobs = np.asarray(jobs, dtype=float)
        t = np.asarray(travel_time_s, dtype=float)
        ok = np.isfinite(t)
        return float(np.sum(jobs[ok] * 2.0 * t[ok] / 3600.0) * self.customer_time_eur_per_hour)

    def leakage_cost_eur(self, partner_jobs: float) -> float:
        """Annual margin lost because customers go to the partner directly afterwards."""
        return float(partner_jobs) * self.leakage_share * self.margin_per_job_eur


@dataclass(frozen=True)
class CostBreakdown:
    """Annual cost of one scenario, split by kind (EUR/year)."""

    fixed_eur: float
    fees_eur: float
    deliveries_eur: float
    leakage_eur: float
    customer_time_eur: float
    jobs: float

    @property
    def total_eur(self) -> float:
        """Sum of all cost kinds."""
        return (
            self.fixed_eur
            + self.fees_eur
            + self.deliveries_eur
            + self.leakage_eur
            + self.customer_time_eur
        )

    @property
    def cost_per_job_eur(self) -> float:
        """Total annual cost divided by the annual number of jobs (nan with no jobs)."""
        return self.total_eur / self.jobs if self.jobs > 0 else float("nan")

    def to_dict(self) -> dict[str, float]:
        """All components plus ``total_eur`` and ``cost_per_job_eur``."""
        out = dataclasses.asdict(self)
        out["total_eur"] = self.total_eur
        out["cost_per_job_eur"] = self.cost_per_job_eur
        return out


def describe_parameters(parameters: CostParameters | None = None) -> list[dict[str, Any]]:
    """Return the parameters as rows ``{"parameter", "value", "default", "meaning"}``.

    Used by reports and the app to show the assumptions of a scenario.
    """
    parameters = parameters or CostParameters()
    default = CostParameters()
    return [
        {
            "parameter": f.name,
            "value": getattr(parameters, f.name),
            "default": getattr(default, f.name),
            "meaning": _DESCRIPTIONS[f.name],
        }
        for f in fields(CostParameters)
    ]
