"""Regenerate ``data/demo/malta_jobs.csv``: three years of jobs of the Malta demo customers.

Usage::

    .venv/bin/python scripts/make_demo_jobs.py

Every customer of ``data/demo/malta_customers.csv`` brings jobs at a monthly Poisson rate of
``weight / 12`` (its ``weight`` is jobs per year) times an injected trend and seasonality:

* ``business`` customers north of latitude 35.92 (St Paul's Bay, Mellieha, Mosta): +25 % per
  year; other business customers: flat;
* ``private`` customers everywhere: -10 % per year;
* seasonality: +-20 % (more jobs in spring, fewer in autumn).

The trend is applied around the middle of the history, so the average customer still brings
about ``weight`` jobs per year. Each job gets a revenue (business about 220 EUR, private about
140 EUR), a complaint flag (4 % of jobs; 15 % at partner ``P2``) and the site that served it
(own workshops ``W1``-``W3``, partners ``P1``-``P3``). Seeded: rerun the script and
``git diff`` shows nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "demo"
SEED = 13
START = pd.Timestamp("2023-01-01")
MONTHS = 36
NORTH_LAT = 35.92
GROWTH = {("business", True): 0.25, ("business", False): 0.0, ("private", True): -0.10}
SEASON = 0.2
SITES = ("W1", "W2", "W3", "P1", "P2", "P3")
COMPLAINT_RATE = {"P2": 0.15}
BASE_COMPLAINT_RATE = 0.04


def make_jobs(customers: pd.DataFrame, *, seed: int = SEED) -> pd.DataFrame:
    """Jobs of ``customers`` (columns id, lat, weight, segment) over :data:`MONTHS` months."""
    rng = np.random.default_rng(seed)
    north = customers["lat"].to_numpy(float) > NORTH_LAT
    segment = customers["segment"].to_numpy(str)
    growth = np.where(
        segment == "private",
        GROWTH[("private", True)],
        np.where(north, GROWTH[("business", True)], GROWTH[("business", False)]),
    )
    rate = customers["weight"].to_numpy(float) / 12.0
    home = rng.integers(0, len(SITES), size=len(customers))
    frames = []
    for m in range(MONTHS):
        month = START + pd.DateOffset(months=m)
        t_years = (m - (MONTHS - 1) / 2.0) / 12.0
        season = 1.0 + SEASON * np.sin(2 * np.pi * (month.month - 2) / 12.0)
        counts = rng.poisson(rate * (1.0 + growth) ** t_years * season)
        who = np.repeat(np.arange(len(customers)), counts)
        day = rng.integers(0, month.days_in_month, size=who.size)
        frames.append(pd.DataFrame({"who": who, "date": month + pd.to_timedelta(day, unit="D")}))
    jobs = pd.concat(frames, ignore_index=True).sort_values(["date", "who"], kind="stable")
    who = jobs["who"].to_numpy()
    business = segment[who] == "business"
    revenue = np.where(business, rng.normal(220, 40, who.size), rng.normal(140, 25, who.size))
    served = np.array(SITES)[home[who]]
    p_complaint = np.array([COMPLAINT_RATE.get(s, BASE_COMPLAINT_RATE) for s in served])
    complaint = (rng.random(who.size) < p_complaint).astype(int)
    return pd.DataFrame(
        {
            "job_id": [f"J{i:06d}" for i in range(1, who.size + 1)],
            "customer_id": customers["id"].to_numpy()[who],
            "date": jobs["date"].dt.strftime("%Y-%m-%d").to_numpy(),
            "revenue_eur": np.round(np.maximum(revenue, 20.0), 2),
            "complaint": complaint,
            "served_by": served,
        }
    )


def main() -> None:
    customers = pd.read_csv(DEMO / "malta_customers.csv", dtype={"id": str})
    jobs = make_jobs(customers)
    out = DEMO / "malta_jobs.csv"
    jobs.to_csv(out, index=False, float_format="%.2f", lineterminator="\n")
    print(f"wrote {len(jobs):,} jobs to {out}")


if __name__ == "__main__":
    main()
