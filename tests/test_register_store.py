"""The register database: import, re-import, changed rows, atomicity, folders, plans, and
every register statistic equal to the pandas outputs of the demo history."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from planner.cli import main
from planner.cli_register import previous_from_store
from planner.inputs.jobs import read_jobs, read_register
from planner.models import Solution
from planner.register import complaint_flags, customer_economics, forecast_jobs, segment_trends
from planner.register import imports as imports_module
from planner.register.economics import site_economics, window_stats
from planner.register.imports import import_register
from planner.register.store import RegisterStore, open_store
from planner.register.trends import area_trends, segment_counts
from planner.results.costs import CostBreakdown, CostParameters
from planner.results.types import LayoutResult, ScenarioResult

REPO = Path(__file__).resolve().parent.parent
DEMO_CUSTOMERS = REPO / "data" / "demo" / "malta_customers.csv"
DEMO_JOBS = REPO / "data" / "demo" / "malta_jobs.csv"
GOLDEN = Path(__file__).resolve().parent / "data" / "register_golden"
JOB_COLUMNS = ["job_id", "customer_id", "date", "revenue_eur", "complaint", "served_by"]


def _same_as_golden(name: str, got: pd.DataFrame) -> None:
    """``got`` written as CSV equals the pandas-path output stored in ``name``."""
    expected = pd.read_csv(GOLDEN / name)
    written = pd.read_csv(io.StringIO(got.to_csv(index=False)))
    pd.testing.assert_frame_equal(written, expected, rtol=1e-9, check_dtype=False)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("register") / "register.duckdb"
    with open_store(path) as store:
        import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)
    return path


@pytest.fixture(scope="module")
def demo_frames() -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    register = read_register(DEMO_CUSTOMERS)
    jobs = read_jobs(DEMO_JOBS, customer_ids=register.frame["customer_id"])
    return register.valid, jobs.valid


def _stored_jobs(store: RegisterStore) -> pd.DataFrame:
    return store.con.execute(f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY job_id").df()


@pytest.mark.parametrize("source", ["file", "register"])
def test_every_register_output_equals_the_pandas_path(source, demo_store, demo_frames) -> None:
    customers, valid = demo_frames
    store = open_store(demo_store, read_only=True) if source == "register" else None
    try:
        jobs = valid if store is None else store
        if store is not None:
            customers = store.customers()
        _same_as_golden("segment_trends.csv", segment_trends(jobs, customers))
        _same_as_golden("area_trends.csv", area_trends(jobs, customers))
        _same_as_golden("forecast.csv", forecast_jobs(jobs, customers, years=3))
        for period in ("month", "quarter", "year"):
            _same_as_golden(
                f"segment_counts_{period}.csv", segment_counts(jobs, customers, period=period)
            )
        _same_as_golden("complaint_flags.csv", complaint_flags(jobs))
        window = window_stats(jobs).sort_index().reset_index()
        _same_as_golden("customer_window.csv", window.astype({"jobs": int, "complaints": int}))
    finally:
        if store is not None:
            store.close()


def _demo_layout(customers: pd.DataFrame) -> LayoutResult:
    """A hand-made plan of the demo customers: three sites, customers dealt round-robin."""
    ids = ["W1", "W2", "P2"]
    frame = gpd.GeoDataFrame(
        {
            "customer_id": customers["customer_id"].astype(str).to_numpy(),
            "segment": customers["segment"].astype(str).to_numpy(),
            "site_id": [ids[i % 3] for i in range(len(customers))],
            "travel_min": np.arange(len(customers)) % 17 + 1.0,
            "weight": 1.0,
            "lat": customers["lat"].to_numpy(float),
            "lon": customers["lon"].to_numpy(float),
        },
        geometry=gpd.points_from_xy(customers["lon"], customers["lat"]),
        crs=4326,
    )
    sites = gpd.GeoDataFrame(
        {
            "site_id": ids,
            "role": ["workshop", "workshop", "partner"],
            "lat": [35.9, 35.85, 35.95],
            "lon": [14.4, 14.5, 14.35],
        },
        geometry=gpd.points_from_xy([14.4, 14.5, 14.35], [35.9, 35.85, 35.95]),
        crs=4326,
    )
    sol = Solution("p_median", np.array([0, 1, 2]), np.zeros(len(frame), int), 1.0, 1.0, 0.0,
                   True, "optimal", 0.0, "test")  # fmt: skip
    result = ScenarioResult(
        customers=frame, sites=sites, kpis={"mean_travel_min": 9.0, "sites": 3.0}, solution=sol
    )
    return LayoutResult(
        layout="in-house",
        result=result,
        costs=CostBreakdown(1.0, 2.0, 0, 0, 0, 0),
        loads=pd.DataFrame(),
        office_id=None,
        link_time_s={},
        parameters=CostParameters(customer_time_eur_per_hour=20.0),
    )


def test_economics_of_the_register_equal_the_file_path(demo_store, demo_frames) -> None:
    customers, valid = demo_frames
    layout = _demo_layout(customers)
    with open_store(demo_store, read_only=True) as store:
        for from_file, from_store in (
            (customer_economics(valid, layout), customer_economics(store, layout)),
            (
                site_economics(customer_economics(valid, layout), layout, valid),
                site_economics(customer_economics(store, layout), layout, store),
            ),
        ):
            pd.testing.assert_frame_equal(from_store, from_file, rtol=1e-9, check_dtype=False)


def test_import_reimport_and_changed_rows(tmp_path: Path, demo_frames) -> None:
    _, valid = demo_frames
    db = tmp_path / "r.duckdb"
    with open_store(db) as store:
        first = import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)
        assert [(s.kind, s.new, s.already_stored) for s in first] == [
            ("customers", 2000, 0),
            ("jobs", len(valid), 0),
        ]
        stored = _stored_jobs(store)
        expected = valid[JOB_COLUMNS].sort_values("job_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
        again = import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)
        assert [(s.new, s.already_stored, s.changed) for s in again] == [
            (0, 2000, ()),
            (0, len(valid), ()),
        ]
        assert f"0 new jobs, {len(valid):,} already stored" in str(again[1])
        assert store.count("jobs") == len(valid)
        assert store.count("customers") == 2000

    # one changed revenue, one new job: the change is reported and kept as stored
    frame = pd.read_csv(DEMO_JOBS, dtype=str)
    old_revenue = frame.loc[4, "revenue_eur"]
    frame.loc[4, "revenue_eur"] = "999.99"
    frame.loc[len(frame)] = ["JNEW", "C00001", "2025-06-01", "10", "0", "W1"]
    changed = tmp_path / "jobs_changed.csv"
    frame.to_csv(changed, index=False)
    job_id = frame.loc[4, "job_id"]
    with open_store(db) as store:
        (summary,) = import_register(store, jobs=changed)
        assert (summary.new, summary.already_stored, summary.changed) == (
            1,
            len(valid) - 1,
            (job_id,),
        )
        assert job_id in str(summary)
        assert "--update" in str(summary)
        revenue = store.con.execute(
            "SELECT revenue_eur FROM jobs WHERE job_id = ?", [job_id]
        ).fetchall()
        assert revenue == [(float(old_revenue),)]
        (updated,) = import_register(store, jobs=changed, update=True)
        assert (updated.new, updated.updated) == (0, 1)
        revenue = store.con.execute(
            "SELECT revenue_eur FROM jobs WHERE job_id = ?", [job_id]
        ).fetchall()
        assert revenue == [(999.99,)]
        assert store.count("jobs") == len(valid) + 1


BAD_JOBS = """job_id,customer_id,date,revenue_eur,complaint,served_by
J1,C00001,2024-01-05,100,0,W1
J2,NOBODY,2024-01-06,100,0,W1
J3,C00002,not a date,100,0,W1
J4,C00003,2031-01-01,100,0,W1
J1,C00004,2024-01-07,100,0,W1
J6,C00005,15.03.2024,"12,5",yes,
,C00006,2024-01-08,-5,maybe,W2
J8,,2024-01-09,,,
{blank}
J9,C00007,2024-01-09 10:30,abc,1,W1
J10, C00008 ,05/03/2024,7.25,0, W1
J11,C00009,2024-02-29,1e2,TRUE,P1
"""


@pytest.mark.parametrize("blank_line", [True, False])
@pytest.mark.parametrize("chunk_rows", [imports_module.CHECK_CHUNK_ROWS, 2])
def test_bad_rows_reported_with_file_and_row_as_today(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blank_line: bool, chunk_rows: int
) -> None:
    monkeypatch.setattr(imports_module, "CHECK_CHUNK_ROWS", chunk_rows)
    text = BAD_JOBS.replace("{blank}\n", "\n" if blank_line else "")
    path = tmp_path / "bad_jobs.csv"
    path.write_text(text, encoding="utf-8")
    ids = pd.read_csv(DEMO_CUSTOMERS)["id"]
    today = read_jobs(path, customer_ids=ids, as_of="2026-01-01")
    with open_store(tmp_path / "r.duckdb") as store:
        _, jobs = import_register(store, customers=DEMO_CUSTOMERS, jobs=path, as_of="2026-01-01")
        assert str(jobs.reports[0]) == str(today.report)
        assert "row 2 (line 3 of the file), column 'customer_id', value 'NOBODY'" in str(
            jobs.reports[0]
        )
        assert jobs.left_out == len(today.report.error_rows)
        assert jobs.new == len(today.valid)
        expected = today.valid[JOB_COLUMNS].sort_values("job_id").reset_index(drop=True)
        stored = _stored_jobs(store)
        pd.testing.assert_frame_equal(
            stored.fillna({"served_by": ""}),
            expected.fillna({"served_by": ""}),
            check_dtype=False,
        )


def test_jobs_need_customers_and_a_fatal_file_changes_nothing(tmp_path: Path) -> None:
    with open_store(tmp_path / "r.duckdb") as store:
        with pytest.raises(Exception, match="no customers yet"):
            import_register(store, jobs=DEMO_JOBS)
        bad = tmp_path / "nodate.csv"
        bad.write_text("job_id,customer_id\nJ1,C00001\n", encoding="utf-8")
        with pytest.raises(Exception, match="no date column"):
            import_register(store, customers=DEMO_CUSTOMERS, jobs=bad)
        assert store.count("customers") == 0  # the customers of the failed import too
        assert store.count("imports") == 0


def test_a_folder_of_monthly_csv_and_parquet_files(tmp_path: Path, demo_frames) -> None:
    _, valid = demo_frames
    frame = pd.read_csv(DEMO_JOBS, dtype=str)
    folder = tmp_path / "exports"
    folder.mkdir()
    months = frame["date"].str[:7]
    for i, (month, part) in enumerate(frame.groupby(months)):
        target = folder / f"jobs_{month}.{'parquet' if i % 2 else 'csv'}"
        if i % 2:
            part.assign(
                date=pd.to_datetime(part["date"]).dt.date,
                revenue_eur=part["revenue_eur"].astype(float),
                complaint=part["complaint"].astype(int),
            ).to_parquet(target, index=False)
        else:
            part.to_csv(target, index=False)
    (folder / "notes.md").write_text("not a job file", encoding="utf-8")
    with open_store(tmp_path / "r.duckdb") as store:
        _, jobs = import_register(store, customers=DEMO_CUSTOMERS, jobs=folder)
        assert len(jobs.sources) == months.nunique()
        assert (jobs.new, jobs.left_out) == (len(valid), 0)
        expected = valid[JOB_COLUMNS].sort_values("job_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(_stored_jobs(store), expected, check_dtype=False)
    # a bad row in a month file is reported with that file and its row there
    month_file = folder / "jobs_2023-01.csv"
    lines = month_file.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "JBAD,C00001,2023-01-40,1,0,W1")
    month_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with open_store(tmp_path / "r.duckdb") as store:
        (jobs,) = import_register(store, jobs=folder)
        assert (jobs.new, jobs.already_stored, jobs.left_out) == (0, len(valid), 1)
        report = next(r for r in jobs.reports if r.issues)
        assert Path(str(report.path)).name == "jobs_2023-01.csv"
        assert "row 3 (line 4 of the file), column 'date', value '2023-01-40'" in str(report)


def test_status_plans_and_customer_history(tmp_path: Path, demo_frames, capsys) -> None:
    customers, _ = demo_frames
    db = tmp_path / "r.duckdb"
    with open_store(db) as store:
        import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)
        layout = _demo_layout(customers)
        first = store.save_plan(
            layout, name="2025 plan", region="malta", saved_at=pd.Timestamp("2025-01-10")
        )
        moved = layout.customers.copy()
        moved.loc[moved["customer_id"] == "C00001", "site_id"] = "P2"
        second_layout = LayoutResult(
            layout="in-house",
            result=ScenarioResult(
                customers=moved,
                sites=layout.sites,
                kpis=layout.kpis,
                solution=layout.result.solution,
            ),
            costs=layout.costs,
            loads=layout.loads,
            office_id=None,
            link_time_s={},
            parameters=layout.parameters,
        )
        second = store.save_plan(second_layout, name="2026 plan", region="malta")
        assert (first, second) == (1, 2)
        plans = store.plans()
        assert plans["name"].tolist() == ["2025 plan", "2026 plan"]
        assert plans["sites"].tolist() == [3, 3]
        # the last stored plan is the --previous of a phased plan
        last = store.plan_assignments()
        assert last.set_index("customer_id").loc["C00001", "site_id"] == "P2"
        previous = previous_from_store(store, None)
        assert previous is not None
        pd.testing.assert_frame_equal(previous, last[["customer_id", "site_id"]])
        history = store.customer_history("C00001")
        assert history.loc[history["source"] == "plan", "site_id"].tolist() == ["W1", "P2"]
        served = history[history["source"] == "jobs"]
        demo = pd.read_csv(DEMO_JOBS)
        mine = demo[demo["customer_id"] == "C00001"]
        assert served["jobs"].sum() == len(mine)
    assert main(["register", "status", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "jobs: 14,103 from 2023-01-01 to 2025-12-31" in out
    assert "customers: 2,000" in out
    assert main(["register", "plans", "--db", str(db)]) == 0
    assert "2026 plan" in capsys.readouterr().out
    assert main(["register", "plans", "--db", str(db), "--customer", "C00001"]) == 0
    out = capsys.readouterr().out
    assert "plan 1 (2025 plan, saved 2025-01-10): assigned to W1" in out
    assert "plan 2 (2026 plan" in out
    assert main(["register", "export", "--db", str(db), "--out", str(tmp_path / "pq")]) == 0
    exported = pd.read_parquet(tmp_path / "pq" / "jobs.parquet")
    assert len(exported) == 14103
    assert len(pd.read_parquet(tmp_path / "pq" / "plan_assignments.parquet")) == 4000


def test_cli_trends_from_the_register_writes_the_same_files(tmp_path: Path, capsys) -> None:
    db = tmp_path / "r.duckdb"
    argv = ["register", "import", "--customers", str(DEMO_CUSTOMERS), "--jobs", str(DEMO_JOBS)]
    assert main([*argv, "--db", str(db)]) == 0
    assert "14,103 new jobs, 0 already stored" in capsys.readouterr().out
    assert main([*argv, "--db", str(db)]) == 0
    assert "0 new jobs, 14,103 already stored" in capsys.readouterr().out
    stored, files = tmp_path / "stored", tmp_path / "files"
    assert main(["trends", "--db", str(db), "--out", str(stored), "--period", "quarter"]) == 0
    argv = ["trends", str(DEMO_JOBS), "--customers", str(DEMO_CUSTOMERS), "--out", str(files)]
    assert main([*argv, "--period", "quarter"]) == 0
    for name in ("segment_trends.csv", "area_trends.csv", "forecast.csv", "segment_counts.csv"):
        assert (stored / name).read_bytes() == (files / name).read_bytes(), name
    # no register and no jobs file: a clear message
    none = tmp_path / "none.duckdb"
    assert main(["trends", "--db", str(none), "--out", str(tmp_path / "x")]) == 2
    assert "there is no register" in capsys.readouterr().err


def test_the_default_register_lives_in_the_workspace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("PLANNER_WORKSPACE_DIR", str(tmp_path / "ws"))
    assert main(["register", "import", "--customers", str(DEMO_CUSTOMERS)]) == 0
    assert (tmp_path / "ws" / "register.duckdb").is_file()
    capsys.readouterr()
    assert main(["register", "status"]) == 0
    assert "customers: 2,000" in capsys.readouterr().out


def test_job_files_over_the_row_limit_point_to_the_register(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANNER_MAX_ROWS", "100")
    table = read_jobs(DEMO_JOBS)
    assert table.report.fatal
    assert "import it into the register" in str(table.report)
    assert "aggregate customers" not in str(table.report)
    customers = read_register(DEMO_JOBS)  # a customer file keeps its own advice
    assert "aggregate customers" in str(customers.report)
    # the register itself has no row limit
    with open_store(tmp_path / "r.duckdb") as store:
        monkeypatch.setenv("PLANNER_MAX_ROWS", "3000")
        _, jobs = import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)
        assert jobs.new == 14103


KILL_SCRIPT = """
import sys
from planner.register.store import open_store
from planner.register.imports import import_register

def progress(message, fraction):
    print(message, flush=True)

with open_store(sys.argv[1]) as store:
    import_register(store, jobs=sys.argv[2], progress=progress)
print("finished", flush=True)
"""


def test_a_killed_import_leaves_the_register_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "r.duckdb"
    with open_store(db) as store:
        import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)
        before = _stored_jobs(store)
        imports_before = store.count("imports")
    big = tmp_path / "big.csv"
    n = 1_500_000
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT 'K' || i AS job_id, 'C' || lpad(((i % 2000) + 1)::VARCHAR, 5, '0') "
        "AS customer_id, DATE '2024-01-01' + (i % 700)::INTEGER AS date, 100.0 AS revenue_eur, "
        f"0 AS complaint, 'W1' AS served_by FROM range({n}) t(i)) TO '{big}' (HEADER)"
    )
    con.close()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(db), str(big)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.startswith("Validating"):
            time.sleep(0.3)
            break
    assert proc.poll() is None, seen  # still importing
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    assert "finished" not in seen
    with open_store(db, read_only=True) as store:
        pd.testing.assert_frame_equal(_stored_jobs(store), before)
        assert store.count("imports") == imports_before
    # and the next import works and brings everything
    with open_store(db) as store:
        (jobs,) = import_register(store, jobs=big)
        assert (jobs.new, jobs.already_stored) == (n, 0)


@pytest.mark.slow
def test_cli_run_saves_the_plan_and_economics_read_the_register(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.duckdb")
    argv = ["register", "import", "--customers", str(DEMO_CUSTOMERS), "--jobs", str(DEMO_JOBS)]
    assert main([*argv, "--db", db]) == 0
    common = ["--region", "malta", "--workshops", "3", "--time-limit", "20"]
    plan_out = tmp_path / "plan"
    run_argv = ["run", *common, "--customers", str(DEMO_CUSTOMERS), "--out", str(plan_out)]
    assert main([*run_argv, "--save", "--db", db]) == 0
    assert "saved as plan 1 in the register" in capsys.readouterr().out
    with open_store(db, read_only=True) as store:
        plans = store.plans()
        stored = store.plan_assignments()
    assert len(plans) == 1
    assert plans.loc[0, "sites"] == 3
    assert len(stored) == 2000
    assert 1 <= stored["site_id"].nunique() <= 3
    stored_out, file_out = tmp_path / "eco_db", tmp_path / "eco_file"
    assert main(["economics", *common, "--db", db, "--out", str(stored_out)]) == 0
    eco_argv = ["economics", str(DEMO_JOBS), "--customers", str(DEMO_CUSTOMERS), *common]
    assert main([*eco_argv, "--out", str(file_out)]) == 0
    for name in ("customer_economics.csv", "site_economics.csv", "segment_economics.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(stored_out / name), pd.read_csv(file_out / name), rtol=1e-9
        )


def test_a_register_without_customer_numbers_reads_the_same_and_is_numbered_on_import(
    tmp_path: Path,
) -> None:
    """A register written before ``customer_no`` existed joins on the text id (same answers),
    and its next import numbers every stored job; a customer imported later gets the next
    number, and its jobs are counted."""
    path = tmp_path / "register.duckdb"
    with open_store(path) as store:
        import_register(store, customers=DEMO_CUSTOMERS, jobs=DEMO_JOBS)
        assert store.keyed
        keyed = segment_counts(store, store.customers())
        store.con.execute("DROP TABLE customer_keys")
        store.con.execute("ALTER TABLE jobs DROP COLUMN customer_no")
    with open_store(path, read_only=True) as store:
        assert not store.keyed
        pd.testing.assert_frame_equal(segment_counts(store, store.customers()), keyed)
    extra_customers = tmp_path / "more_customers.csv"
    extra_customers.write_text("id,lat,lon,segment\nZ1,35.9,14.5,private\n")
    extra_jobs = tmp_path / "more_jobs.csv"
    extra_jobs.write_text("job_id,customer_id,date\nZ1-1,Z1,2024-03-05\nZ1-2,Z1,2024-03-09\n")
    with open_store(path) as store:
        import_register(store, customers=extra_customers)
        import_register(store, jobs=extra_jobs)
        nulls = store.con.execute("SELECT count(*) FROM jobs WHERE customer_no IS NULL")
        assert nulls.fetchall()[0][0] == 0
        assert store.keyed
        numbers = store.con.execute(
            "SELECT count(*), max(customer_no), count(DISTINCT customer_no) FROM customer_keys"
        ).fetchall()[0]
        assert numbers[0] == numbers[1] == numbers[2] == store.count("customers")
        counts = segment_counts(store, store.customers())
    both = keyed.merge(counts, on=["segment", "period"], how="outer", suffixes=("_old", ""))
    march = both["period"] == pd.Timestamp("2024-03-01")
    extra = both["jobs"].fillna(0) - both["jobs_old"].fillna(0)
    assert extra[march & (both["segment"] == "private")].sum() == 2
    assert extra[~(march & (both["segment"] == "private"))].abs().sum() == 0
