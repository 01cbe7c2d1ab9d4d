"""Job history and register reading: every bad row reported with row, column, value and fix."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from planner.inputs.jobs import read_jobs, read_register

CSV = """job_id,customer_id,date,revenue_eur,complaint,served_by
J1,C1,2024-01-05,180.50,0,W1
J2,C2,15.03.2024,90,1,P1
J2,C1,2024-02-01,10,0,W1
J4,C9,2024-02-02,10,0,W1
J5,C1,not a date,10,0,W1
J6,C1,2031-01-01,10,0,W1
J7,C1,2024-03-03,-5,0,W1
J8,,2024-03-04,5,0,W1
J9,C2,2024-03-05,5,maybe,W1
J10,C2,2024-03-06,abc,0,X7
J11,C2,,5,0,W1
,C2,2024-03-07,5,yes,W1
"""


@pytest.fixture
def jobs_csv(tmp_path: Path) -> Path:
    path = tmp_path / "jobs.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_every_problem_is_reported_with_row_line_and_fix(jobs_csv: Path) -> None:
    table = read_jobs(
        jobs_csv, customer_ids=["C1", "C2"], site_ids=["W1", "P1"], as_of="2025-06-30"
    )
    report = table.report
    found = {(i.row, i.code) for i in report.issues}
    assert found == {
        (3, "duplicate_id"),
        (4, "unknown_customer"),
        (5, "bad_date"),
        (6, "future_date"),
        (7, "negative_revenue"),
        (8, "missing_customer"),
        (9, "invalid_complaint"),
        (10, "non_numeric_number"),
        (10, "unknown_site"),
        (11, "missing_date"),
        (12, "missing_id"),
    }
    issue = next(i for i in report.issues if i.code == "future_date")
    assert issue.line == 7
    assert issue.column == "date"
    assert issue.value == "2031-01-01"
    assert "Fix:" in str(issue)
    # nothing dropped: every row is in the frame, errors marked invalid, warnings kept valid
    frame = table.frame
    assert len(frame) == 12
    assert frame["row"].tolist() == list(range(1, 13))
    assert frame.loc[frame["valid"], "row"].tolist() == [1, 2, 12]
    assert report.exit_code == 1
    # values parsed
    assert frame.loc[1, "date"] == pd.Timestamp("2024-03-15")
    assert frame.loc[0, "revenue_eur"] == 180.5
    assert frame["complaint"].tolist()[:2] == [0, 1]
    assert frame.loc[11, "complaint"] == 1
    assert frame.loc[11, "job_id"] == "J12"
    assert len(table.valid) == 3


def test_xlsx_parquet_and_upload_read_the_same(jobs_csv: Path, tmp_path: Path) -> None:
    good = pd.DataFrame(
        {
            "job_id": ["a", "b"],
            "customer": ["C1", "C2"],
            "date": [pd.Timestamp("2024-01-02"), pd.Timestamp("2024-05-06")],
            "revenue": [10.0, 20.0],
            "complaint": [0, 1],
        }
    )
    xlsx = tmp_path / "jobs.xlsx"
    good.to_excel(xlsx, index=False)
    parquet = tmp_path / "jobs.parquet"
    good.to_parquet(parquet)
    for path in (xlsx, parquet):
        table = read_jobs(path, customer_ids=["C1", "C2"])
        assert table.report.exit_code == 0, str(table.report)
        assert table.frame["date"].tolist() == good["date"].tolist()
        assert table.frame["revenue_eur"].tolist() == [10.0, 20.0]
        assert table.frame["complaint"].tolist() == [0, 1]
    upload = io.BytesIO(jobs_csv.read_bytes())
    upload.name = "uploaded.csv"
    from_upload = read_jobs(upload, customer_ids=["C1", "C2"], as_of="2025-06-30")
    from_path = read_jobs(jobs_csv, customer_ids=["C1", "C2"], as_of="2025-06-30")
    assert [str(i) for i in from_upload.report.issues] == [str(i) for i in from_path.report.issues]


def test_unreadable_and_missing_columns_are_fatal(tmp_path: Path) -> None:
    bad = tmp_path / "jobs.csv"
    bad.write_text("a,b\n1,2\n", encoding="utf-8")
    table = read_jobs(bad)
    assert table.report.fatal
    assert table.report.exit_code == 2
    assert "customer_id" in str(table.report)
    missing = read_jobs(tmp_path / "nope.csv")
    assert missing.report.fatal


def test_register_reads_first_contact_and_reports_bad_dates(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text(
        "id,lat,lon,weight,segment,first_contact\n"
        "C1,35.9,14.4,2,private,2021-04-01\n"
        "C2,35.8,14.5,3,business,\n"
        "C3,35.8,14.5,3,business,someday\n",
        encoding="utf-8",
    )
    table = read_register(path)
    assert table.frame["first_contact"].iloc[0] == pd.Timestamp("2021-04-01")
    assert pd.isna(table.frame["first_contact"].iloc[1])
    (issue,) = table.report.issues
    assert (issue.row, issue.code, issue.severity, issue.value) == (
        3,
        "bad_first_contact",
        "warning",
        "someday",
    )
    assert table.frame["valid"].all()
