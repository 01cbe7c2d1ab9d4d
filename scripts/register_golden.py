"""Write the register outputs of the demo history (tests/data/register_golden/).

These are the outputs of the pandas implementation the register store replaced (issue 27),
computed on data/demo/malta_customers.csv + data/demo/malta_jobs.csv; tests/test_register_store.py
checks that the file path and the stored register both still give them. Re-run only when a
statistic is meant to change:  PYTHONPATH=. python scripts/register_golden.py
"""

from __future__ import annotations

from pathlib import Path

from planner.inputs.jobs import read_jobs, read_register
from planner.register import complaint_flags, count_jobs, forecast_jobs, segment_trends
from planner.register.trends import area_trends, jobs_with_customers

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "tests" / "data" / "register_golden"
AS_OF = "2025-12-31"


def main() -> None:
    register = read_register(REPO / "data" / "demo" / "malta_customers.csv")
    jobs = read_jobs(
        REPO / "data" / "demo" / "malta_jobs.csv",
        customer_ids=register.frame["customer_id"],
        as_of=AS_OF,
    )
    customers, valid = register.valid, jobs.valid
    OUT.mkdir(parents=True, exist_ok=True)
    segment_trends(valid, customers).to_csv(OUT / "segment_trends.csv", index=False)
    area_trends(valid, customers).to_csv(OUT / "area_trends.csv", index=False)
    forecast_jobs(valid, customers, years=3).to_csv(OUT / "forecast.csv", index=False)
    for period in ("month", "quarter", "year"):
        count_jobs(jobs_with_customers(valid, customers), by=("segment",), period=period).to_csv(
            OUT / f"segment_counts_{period}.csv", index=False
        )
    complaint_flags(valid).to_csv(OUT / "complaint_flags.csv", index=False)
    window = valid[valid["date"] >= "2025-01-01"]
    window.groupby("customer_id").agg(
        jobs=("customer_id", "size"),
        revenue_eur=("revenue_eur", "sum"),
        complaints=("complaint", "sum"),
    ).reset_index().to_csv(OUT / "customer_window.csv", index=False)


if __name__ == "__main__":
    main()
