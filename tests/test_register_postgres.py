"""Jobs imported straight from a real PostgreSQL server (started here on a loopback port with a
throwaway data folder; skipped when Debian's ``postgresql`` package is not installed)."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from planner.cli import main
from planner.inputs.jobs import read_jobs
from planner.register.imports import import_postgres, import_register
from planner.register.store import open_store

psycopg = pytest.importorskip("psycopg")

REPO = Path(__file__).resolve().parent.parent
DEMO_CUSTOMERS = REPO / "data" / "demo" / "malta_customers.csv"
DEMO_JOBS = REPO / "data" / "demo" / "malta_jobs.csv"
JOB_COLUMNS = ["job_id", "customer_id", "date", "revenue_eur", "complaint", "served_by"]


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 with trust authentication, stopped afterwards."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql)")
    as_root = os.geteuid() == 0
    prefix: list[str] = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root and shutil.which("runuser") is None:
        pytest.skip("running as root needs runuser to start PostgreSQL as user postgres")
    root = Path(tempfile.mkdtemp(prefix="planner-pg-"))
    root.chmod(0o755)
    data = root / "data"
    data.mkdir()
    if as_root:
        shutil.chown(data, "postgres", "postgres")
        shutil.chown(root, "postgres", "postgres")
    port = _free_port()
    subprocess.run(
        [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = str(root / "server.log")
    pg_ctl = [*prefix, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-w", "-t", "60", "-l", log, "start"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def crm(postgres_url: str) -> str:
    """A CRM-like table ``crm.auftraege`` with German column names and the demo jobs, plus
    one bad row (an unknown customer) at the end."""
    frame = pd.read_csv(DEMO_JOBS, dtype=str)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute("CREATE SCHEMA crm")
        con.execute(
            "CREATE TABLE crm.auftraege (auftrag TEXT, kunde TEXT, datum DATE, "
            "umsatz NUMERIC(10, 2), reklamation INTEGER, werkstatt TEXT, n SERIAL)"
        )
        with (
            con.cursor() as cur,
            cur.copy(
                "COPY crm.auftraege (auftrag, kunde, datum, umsatz, reklamation, werkstatt) "
                "FROM STDIN"
            ) as copy,
        ):
            for row in frame.itertuples(index=False):
                copy.write_row(list(row))
        con.execute(
            "INSERT INTO crm.auftraege (auftrag, kunde, datum, umsatz, reklamation, werkstatt) "
            "VALUES ('JX', 'NOBODY', '2024-01-01', 10, 0, 'W1')"
        )
    return postgres_url


MAPPING = {
    "job_id": "auftrag",
    "customer_id": "kunde",
    "date": "datum",
    "revenue_eur": "umsatz",
    "complaint": "reklamation",
    "served_by": "werkstatt",
}


def test_import_from_a_postgres_table_equals_the_file(crm: str, tmp_path: Path) -> None:
    ids = pd.read_csv(DEMO_CUSTOMERS)["id"]
    from_file = read_jobs(DEMO_JOBS, customer_ids=ids).valid
    with open_store(tmp_path / "r.duckdb") as store:
        import_register(store, customers=DEMO_CUSTOMERS)
        (jobs,) = import_postgres(store, crm, table="crm.auftraege", mapping=MAPPING)
        assert (jobs.new, jobs.left_out) == (len(from_file), 1)
        (report,) = jobs.reports
        text = str(report)
        assert "table crm.auftraege" in text
        assert "read as PostgreSQL rows" in text
        assert f"- row {len(from_file) + 1}, column 'kunde', value 'NOBODY'" in text
        stored = store.con.execute(
            f"SELECT {', '.join(JOB_COLUMNS)} FROM jobs ORDER BY job_id"
        ).df()
        expected = from_file[JOB_COLUMNS].sort_values("job_id").reset_index(drop=True)
        pd.testing.assert_frame_equal(stored, expected, check_dtype=False)
        (again,) = import_postgres(store, crm, table="crm.auftraege", mapping=MAPPING)
        assert (again.new, again.already_stored) == (0, len(from_file))


def test_cli_import_with_a_query(crm: str, tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.duckdb")
    assert main(["register", "import", "--customers", str(DEMO_CUSTOMERS), "--db", db]) == 0
    query = (
        "SELECT auftrag AS job_id, kunde AS customer_id, datum AS date, umsatz AS revenue_eur, "
        "reklamation AS complaint, werkstatt AS served_by FROM crm.auftraege "
        "WHERE datum >= '2025-01-01' ORDER BY n"
    )
    assert main(["register", "import", crm, "--query", query, "--db", db]) == 0
    out = capsys.readouterr().out
    demo = pd.read_csv(DEMO_JOBS)
    n_2025 = int((demo["date"] >= "2025-01-01").sum())
    assert f"{n_2025:,} new jobs, 0 already stored" in out
    # a table that does not exist: a clear error naming the source, nothing imported
    assert main(["register", "import", crm, "--table", "nope", "--db", db]) == 2
    err = capsys.readouterr().err
    assert "cannot read jobs from PostgreSQL" in err
    assert "nope" in err
    with open_store(db, read_only=True) as store:
        assert store.count("jobs") == n_2025


def test_an_unreachable_server_fails_fast(tmp_path: Path) -> None:
    url = f"postgresql://nobody@127.0.0.1:{_free_port()}/none"
    with open_store(tmp_path / "r.duckdb") as store:
        import_register(store, customers=DEMO_CUSTOMERS)
        with pytest.raises(Exception, match="cannot read jobs from PostgreSQL"):
            import_postgres(store, url, table="jobs", connect_timeout_s=3)
