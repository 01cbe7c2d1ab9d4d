"""Synthetic job histories with known trends, for the register tests (built in code)."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Two areas about 17 km apart (different H3 cells at resolution 6).
AREAS: dict[str, tuple[float, float]] = {"north": (35.95, 14.40), "south": (35.83, 14.52)}


def synthetic_history(
    growth: dict[tuple[str, str], float],
    *,
    base_per_month: dict[tuple[str, str], float],
    seed: int = 0,
    months: int = 36,
    customers_per_group: int = 15,
    season: float = 0.3,
    start: str = "2023-01-01",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and jobs with monthly rate ``base * (1 + g) ** t_years * seasonality``.

    ``growth`` and ``base_per_month`` are keyed by ``(segment, area)``; counts are Poisson.
    """
    rng = np.random.default_rng(seed)
    customers = []
    jobs = []
    first = pd.Timestamp(start)
    for (segment, area), g in growth.items():
        lat0, lon0 = AREAS[area]
        tag = f"{segment[:1].upper()}{area[:1].upper()}"
        ids = [f"{tag}{i:03d}" for i in range(customers_per_group)]
        for cid in ids:
            customers.append(
                {
                    "customer_id": cid,
                    "lat": lat0 + rng.uniform(-0.004, 0.004),
                    "lon": lon0 + rng.uniform(-0.004, 0.004),
                    "segment": segment,
                    "weight": 1.0,
                }
            )
        for m in range(months):
            month = first + pd.DateOffset(months=m)
            rate = base_per_month[(segment, area)] * (1.0 + g) ** (m / 12.0)
            rate *= 1.0 + season * np.sin(2 * np.pi * (month.month - 1) / 12.0)
            n = int(rng.poisson(rate))
            days = rng.integers(0, month.days_in_month, size=n)
            who = rng.integers(0, len(ids), size=n)
            for d, w in zip(days, who, strict=True):
                jobs.append({"customer_id": ids[w], "date": month + pd.Timedelta(days=int(d))})
    job_frame = pd.DataFrame(jobs).sort_values("date").reset_index(drop=True)
    job_frame.insert(0, "job_id", [f"J{i}" for i in range(len(job_frame))])
    return pd.DataFrame(customers), job_frame


TRENDED = {
    ("business", "north"): 0.30,
    ("business", "south"): 0.0,
    ("private", "north"): -0.25,
    ("private", "south"): -0.25,
    ("fleet", "north"): 0.0,
    ("fleet", "south"): 0.0,
}
BASE = {
    ("business", "north"): 40.0,
    ("business", "south"): 40.0,
    ("private", "north"): 60.0,
    ("private", "south"): 60.0,
    ("fleet", "north"): 30.0,
    ("fleet", "south"): 30.0,
}
FLAT = dict.fromkeys(TRENDED, 0.0)
