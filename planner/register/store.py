"""The register database: customers, sites, jobs and saved plans in one DuckDB file.

Every reader of the register goes through this module: the statistics of
:mod:`planner.register` (trends, forecast, economics) take either a job frame or a
:class:`RegisterStore` and run their SQL on :func:`job_connection`, which shows both as one
table ``jobs``; so a file read today and the stored register are answered by the same
aggregation, inside DuckDB, and pandas only sees the aggregated tables.

The database lives in one file, by default ``$PLANNER_WORKSPACE_DIR/register.duckdb``
(:func:`default_db_path`). A backup is a copy of that file (while no import runs).

Tables
------
``customers``          the validated customer register (one row per ``customer_id``)
``sites``              the validated site list (one row per ``site_id``)
``jobs``               the job history (one row per ``job_id``); ``customer_no`` is the
                       customer's number in ``customer_keys``
``customer_keys``      a number for every customer id ever imported (never reused): the
                       statistics join ten million jobs to the customers on this integer,
                       three times faster than on the text id
``imports``            one row per import: when, from where, how many rows new / already stored
``plans``              saved plans: name, layout, region, KPIs (JSON), when
``plan_sites``         the sites of each saved plan with their role
``plan_assignments``   which site each customer was assigned to in each saved plan
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from planner.errors import InputError
from planner.inputs.customers import customers_frame
from planner.settings import register_db_path

if TYPE_CHECKING:
    import geopandas as gpd

    from planner.results.types import LayoutResult

logger = logging.getLogger(__name__)

__all__ = [
    "JOB_TABLE_COLUMNS",
    "JobSource",
    "RegisterStatus",
    "RegisterStore",
    "customer_codes",
    "default_db_path",
    "job_connection",
    "open_store",
]

#: Columns of the stored ``jobs`` table (and of the ``jobs`` view of a frame).
JOB_TABLE_COLUMNS: tuple[str, ...] = (
    "job_id",
    "customer_id",
    "date",
    "revenue_eur",
    "complaint",
    "served_by",
)
#: Memory DuckDB may use for one query before it spills to disk.
MEMORY_LIMIT = "512MB"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id VARCHAR NOT NULL,
    customer_id VARCHAR NOT NULL,
    date TIMESTAMP NOT NULL,
    revenue_eur DOUBLE NOT NULL,
    complaint INTEGER NOT NULL,
    served_by VARCHAR,
    import_id INTEGER,
    customer_no INTEGER
);
CREATE TABLE IF NOT EXISTS customer_keys (customer_id VARCHAR, customer_no INTEGER);
CREATE TABLE IF NOT EXISTS imports (
    import_id INTEGER,
    imported_at TIMESTAMP,
    kind VARCHAR,
    source VARCHAR,
    new_rows BIGINT,
    already_stored BIGINT,
    changed BIGINT,
    updated BIGINT,
    left_out BIGINT
);
CREATE TABLE IF NOT EXISTS plans (
    plan_id INTEGER,
    saved_at TIMESTAMP,
    name VARCHAR,
    layout VARCHAR,
    region VARCHAR,
    sites INTEGER,
    mean_travel_min DOUBLE,
    annual_cost_eur DOUBLE,
    optimal BOOLEAN,
    gap DOUBLE,
    kpis VARCHAR
);
CREATE TABLE IF NOT EXISTS plan_sites (
    plan_id INTEGER, site_id VARCHAR, role VARCHAR, lat DOUBLE, lon DOUBLE
);
CREATE TABLE IF NOT EXISTS plan_assignments (
    plan_id INTEGER, customer_id VARCHAR, site_id VARCHAR, travel_min DOUBLE
);
"""


def default_db_path() -> Path:
    """``$PLANNER_WORKSPACE_DIR/register.duckdb`` (read at call time)."""
    return register_db_path()


@dataclass(frozen=True)
class RegisterStatus:
    """What a register database holds.

    Attributes
    ----------
    path
        The database file.
    customers, sites, jobs, plans
        Rows of each table.
    first_job, last_job
        Date range of the job history (None without jobs).
    last_import
        When the last import ran and what it brought (None before the first).
    """

    path: Path | None
    customers: int
    sites: int
    jobs: int
    plans: int
    first_job: pd.Timestamp | None
    last_job: pd.Timestamp | None
    last_import: str | None

    def __str__(self) -> str:
        lines = [f"Register {self.path}" if self.path else "Register (in memory)"]
        lines.append(f"  customers: {self.customers:,}")
        lines.append(f"  sites: {self.sites:,}")
        span = (
            f" from {self.first_job.date()} to {self.last_job.date()}"
            if self.first_job is not None and self.last_job is not None
            else ""
        )
        lines.append(f"  jobs: {self.jobs:,}{span}")
        lines.append(f"  saved plans: {self.plans:,}")
        lines.append(f"  last import: {self.last_import or 'none yet'}")
        return "\n".join(lines)


class RegisterStore:
    """An open register database (use as a context manager, or call :meth:`close`).

    Parameters
    ----------
    con
        The DuckDB connection.
    path
        The database file (None: in memory).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path | None) -> None:
        self.con = con
        self.path = path
        #: Aggregated tables already computed on this connection (cleared by imports).
        self.memo: dict[tuple[object, ...], pd.DataFrame] = {}
        self._keyed: bool | None = None

    @property
    def keyed(self) -> bool:
        """Whether every stored job carries its ``customer_no`` (registers written before the
        numbers were introduced do not, until their next import; they join on the text id)."""
        if self._keyed is None:
            self._keyed = bool(
                self.has_table("customer_keys")
                and "customer_no" in _table_columns(self.con, "jobs")
                and self.con.execute(  # numbers 1..n, one per id: a list index
                    "SELECT count(*) = count(DISTINCT customer_id) AND count(*) = "
                    "coalesce(max(customer_no), 0) AND count(*) = count(DISTINCT customer_no) "
                    "FROM customer_keys"
                ).fetchall()[0][0]
                and not self.con.execute(
                    "SELECT count(*) FROM jobs WHERE customer_no IS NULL"
                ).fetchall()[0][0]
            )
        return self._keyed

    def forget(self) -> None:
        """Drop what was computed from the stored rows (after an import)."""
        self.memo.clear()
        self._keyed = None

    # -- opening -------------------------------------------------------------------------------
    @classmethod
    def open(
        cls, path: str | os.PathLike[str] | None = None, *, read_only: bool = False
    ) -> RegisterStore:
        """Open (and create, unless ``read_only``) the register at ``path``.

        Raises
        ------
        InputError
            When a read-only register does not exist, or the file is not a register database
            or is locked by a running import.
        """
        target = default_db_path() if path is None else Path(path).expanduser()
        if read_only and not target.is_file():
            raise InputError(
                f"there is no register at {target}; import one with `planner register import "
                "--customers FILE --jobs FILE_OR_FOLDER` (or pass --db PATH)",
                file=target,
            )
        if not read_only:
            target.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(target), read_only=read_only)
        except duckdb.Error as exc:
            raise InputError(
                f"cannot open the register database: {exc}. Fix: pass the register.duckdb "
                "file written by `planner register import`; if an import is running, wait "
                "for it to finish",
                file=target,
            ) from exc
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        _no_progress_bar(con)
        if not read_only:
            con.execute(_SCHEMA)
        return cls(con, target)

    @classmethod
    def in_memory(cls) -> RegisterStore:
        """An empty register in memory (tests, and a file read for one run)."""
        con = duckdb.connect()
        _no_progress_bar(con)
        con.execute(_SCHEMA)
        return cls(con, None)

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> RegisterStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ---------------------------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        """Whether the database has table ``name``."""
        found = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0]
        return bool(found and found[0])

    def count(self, table: str) -> int:
        """Rows of ``table`` (0 when it does not exist)."""
        if not self.has_table(table):
            return 0
        row = self.con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0]
        return int(row[0]) if row else 0

    def customers(self) -> gpd.GeoDataFrame:
        """The stored customer register as a customer GeoDataFrame (as read from a file).

        Raises
        ------
        InputError
            When no customers were imported yet.
        """
        if not self.count("customers"):
            raise InputError(
                "the register has no customers yet; import them with `planner register import "
                "--customers FILE`",
                file=self.path,
            )
        frame = self.con.execute("SELECT * FROM customers ORDER BY customer_id").df()
        frame = frame.drop(columns=["import_id"], errors="ignore")
        if "first_contact" in frame:
            frame["first_contact"] = pd.to_datetime(frame["first_contact"]).astype("datetime64[ns]")
        return customers_frame(frame)

    def sites(self) -> pd.DataFrame:
        """The stored site list (empty frame when none were imported)."""
        if not self.count("sites"):
            return pd.DataFrame()
        frame = self.con.execute("SELECT * FROM sites ORDER BY site_id").df()
        return frame.drop(columns=["import_id"], errors="ignore")

    def status(self) -> RegisterStatus:
        """Rows, date range and last import of the register."""
        first = last = None
        if self.count("jobs"):
            row = self.con.execute("SELECT min(date), max(date) FROM jobs").fetchall()[0]
            if row:
                first, last = pd.Timestamp(row[0]), pd.Timestamp(row[1])
        last_import = None
        if self.count("imports"):
            recent = self.con.execute(
                "SELECT imported_at, kind, source, new_rows, already_stored, changed FROM imports "
                "WHERE import_id = (SELECT max(import_id) FROM imports) ORDER BY kind"
            ).fetchall()
            parts = [
                f"{kind} from {source}: {new:,} new, {stored:,} already stored, {changed:,} changed"
                for _, kind, source, new, stored, changed in recent
            ]
            last_import = f"{pd.Timestamp(recent[0][0]):%Y-%m-%d %H:%M} UTC; " + "; ".join(parts)
        return RegisterStatus(
            path=self.path,
            customers=self.count("customers"),
            sites=self.count("sites"),
            jobs=self.count("jobs"),
            plans=self.count("plans"),
            first_job=first,
            last_job=last,
            last_import=last_import,
        )

    # -- saved plans ---------------------------------------------------------------------------
    def save_plan(
        self,
        result: LayoutResult,
        *,
        name: str,
        region: str,
        saved_at: pd.Timestamp | None = None,
    ) -> int:
        """Record a solved plan, its sites, assignments and KPIs; returns its ``plan_id``.

        One transaction: a failed save leaves the register as it was.
        """
        when = pd.Timestamp.now(tz="UTC").tz_localize(None) if saved_at is None else saved_at
        kpis = {str(k): _json_number(v) for k, v in result.kpis.items()}
        sol = result.result.solution
        customers = pd.DataFrame(result.customers.drop(columns="geometry", errors="ignore"))
        assignments = pd.DataFrame(
            {
                "customer_id": customers["customer_id"].astype(str),
                "site_id": customers["site_id"].astype(str),
                "travel_min": pd.to_numeric(customers["travel_min"], errors="coerce"),
            }
        )
        sites = pd.DataFrame(result.sites.drop(columns="geometry", errors="ignore"))
        site_rows = pd.DataFrame(
            {
                "site_id": sites["site_id"].astype(str),
                "role": sites["role"].astype(str) if "role" in sites else "",
                "lat": pd.to_numeric(sites["lat"], errors="coerce"),
                "lon": pd.to_numeric(sites["lon"], errors="coerce"),
            }
        )
        cur = self.con.cursor()
        try:
            cur.execute("BEGIN TRANSACTION")
            row = cur.execute("SELECT coalesce(max(plan_id), 0) + 1 FROM plans").fetchall()[0]
            plan_id = int(row[0]) if row else 1
            cur.execute(
                "INSERT INTO plans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    plan_id,
                    when.to_pydatetime(),
                    name,
                    result.layout,
                    region,
                    len(site_rows),
                    _json_number(result.kpis.get("mean_travel_min", float("nan"))),
                    _json_number(result.costs.total_eur),
                    bool(sol.optimal),
                    _json_number(sol.gap),
                    json.dumps(kpis),
                ],
            )
            cur.register("new_assignments", assignments)
            cur.execute(
                "INSERT INTO plan_assignments SELECT ?, customer_id, site_id, travel_min "
                "FROM new_assignments",
                [plan_id],
            )
            cur.register("new_sites", site_rows)
            cur.execute(
                "INSERT INTO plan_sites SELECT ?, site_id, role, lat, lon FROM new_sites",
                [plan_id],
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        finally:
            cur.close()
        logger.info("plan %d (%s) saved to the register", plan_id, name)
        return plan_id

    def plans(self) -> pd.DataFrame:
        """The saved plans, oldest first (``plan_id``, ``saved_at``, name, layout, KPIs...)."""
        return self.con.execute(
            "SELECT plan_id, saved_at, name, layout, region, sites, mean_travel_min, "
            "annual_cost_eur, optimal, gap FROM plans ORDER BY plan_id"
        ).df()

    def plan_assignments(self, plan_id: int | None = None) -> pd.DataFrame:
        """``customer_id``, ``site_id``, ``travel_min`` of a saved plan (default: the last one).

        Raises
        ------
        InputError
            When the register has no saved plan (or not that one).
        """
        if plan_id is None:
            row = self.con.execute("SELECT max(plan_id) FROM plans").fetchall()[0]
            plan_id = None if not row or row[0] is None else int(row[0])
        if plan_id is None:
            raise InputError(
                "the register has no saved plan yet; save one with `planner run --save` "
                "(or pass --previous FILE)",
                file=self.path,
            )
        frame = self.con.execute(
            "SELECT customer_id, site_id, travel_min FROM plan_assignments WHERE plan_id = ? "
            "ORDER BY customer_id",
            [int(plan_id)],
        ).df()
        if frame.empty:
            raise InputError(f"the register has no plan {plan_id}", file=self.path)
        return frame

    def customer_history(self, customer_id: str) -> pd.DataFrame:
        """Where one customer was served: per saved plan its site, per year the sites of its
        jobs (``source`` ``plan`` or ``jobs``)."""
        plans = self.con.execute(
            "SELECT 'plan' AS source, p.plan_id, p.saved_at, p.name, a.site_id, "
            "a.travel_min, NULL::BIGINT AS jobs, NULL::INTEGER AS year "
            "FROM plan_assignments a JOIN plans p USING (plan_id) WHERE a.customer_id = ? "
            "ORDER BY p.plan_id",
            [str(customer_id)],
        ).df()
        served = self.con.execute(
            "SELECT 'jobs' AS source, NULL::INTEGER AS plan_id, NULL::TIMESTAMP AS saved_at, "
            "NULL::VARCHAR AS name, coalesce(served_by, '') AS site_id, "
            "NULL::DOUBLE AS travel_min, count(*) AS jobs, year(date)::INTEGER AS year "
            "FROM jobs WHERE customer_id = ? GROUP BY ALL ORDER BY year, jobs DESC",
            [str(customer_id)],
        ).df()
        return pd.concat([plans, served], ignore_index=True)

    # -- export --------------------------------------------------------------------------------
    def export(self, folder: str | os.PathLike[str], *, overwrite: bool = False) -> list[Path]:
        """Write each table as ``<table>.parquet`` into ``folder`` (DuckDB ``COPY``).

        Raises
        ------
        FileExistsError
            When a file exists and ``overwrite`` is False.
        """
        out = Path(folder)
        tables = [
            t
            for t in (
                "customers",
                "sites",
                "jobs",
                "imports",
                "plans",
                "plan_sites",
                "plan_assignments",
            )
            if self.has_table(t)
        ]
        paths = [out / f"{t}.parquet" for t in tables]
        existing = [str(p) for p in paths if p.exists()]
        if existing and not overwrite:
            raise FileExistsError(
                f"{', '.join(existing)} already exist(s); choose another folder or pass "
                "--overwrite to replace them"
            )
        out.mkdir(parents=True, exist_ok=True)
        for table, path in zip(tables, paths, strict=True):
            target = str(path).replace("'", "''")
            self.con.execute(f"COPY \"{table}\" TO '{target}' (FORMAT parquet)")
        return paths


def _table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [
        str(r[0])
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    ]


def customer_codes(jobs: JobSource, codes: str) -> str:
    """The ``jobs`` of a :func:`job_connection` as a relation of ``g`` (the code the registered
    frame ``codes`` (``customer_id``, ``g``) gives each job's customer; NULL for customers not
    in it) and ``date``.

    A numbered register looks the code up by position in one list indexed by ``customer_no``
    (no join of ten million rows); otherwise the jobs are joined on the text id.
    """
    if isinstance(jobs, RegisterStore) and jobs.keyed:
        return (
            "SELECT m.codes[j.customer_no] AS g, j.date FROM jobs j, (SELECT list(c.g ORDER BY "
            f"k.customer_no) AS codes FROM customer_keys k LEFT JOIN {codes} c "
            "USING (customer_id)) m"
        )
    return f"SELECT c.g, j.date FROM jobs j LEFT JOIN {codes} c USING (customer_id)"


def _json_number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if np.isfinite(x) else None


def open_store(
    path: str | os.PathLike[str] | None = None, *, read_only: bool = False
) -> RegisterStore:
    """Open the register database (see :meth:`RegisterStore.open`)."""
    return RegisterStore.open(path, read_only=read_only)


#: What the register statistics accept as a job history: a frame of valid jobs or a store.
JobSource: TypeAlias = pd.DataFrame | RegisterStore


def jobs_frame_view(jobs: pd.DataFrame) -> pd.DataFrame:
    """A job frame in the shape of the stored ``jobs`` table (missing columns filled: revenue 0,
    complaint 0, served_by, customer_id and date empty)."""
    n = len(jobs)
    frame = pd.DataFrame(
        {
            "job_id": (
                jobs["job_id"].astype(str).to_numpy()
                if "job_id" in jobs
                else np.array([f"J{i + 1}" for i in range(n)], dtype=object)
            ),
            "customer_id": (
                jobs["customer_id"].astype(str).to_numpy()
                if "customer_id" in jobs
                else np.full(n, None, dtype=object)
            ),
            "date": (
                pd.to_datetime(jobs["date"]).to_numpy(dtype="datetime64[ns]")
                if "date" in jobs
                else np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
            ),
            "revenue_eur": (
                pd.to_numeric(jobs["revenue_eur"], errors="coerce").to_numpy(float)
                if "revenue_eur" in jobs
                else np.zeros(n)
            ),
            "complaint": (
                pd.to_numeric(jobs["complaint"], errors="coerce").fillna(0).to_numpy(np.int64)
                if "complaint" in jobs
                else np.zeros(n, dtype=np.int64)
            ),
            "served_by": (
                jobs["served_by"].to_numpy(dtype=object)
                if "served_by" in jobs
                else np.full(n, None, dtype=object)
            ),
        }
    )
    return frame


#: Arrow copies of the last job frames shown to DuckDB, and the aggregated tables computed from
#: them: id -> (weak reference, content fingerprint, table, memo).
_VIEWS: dict[
    int, tuple[weakref.ref[pd.DataFrame], int, pa.Table, dict[tuple[object, ...], pd.DataFrame]]
] = {}
_MAX_VIEWS = 8


def _fingerprint(jobs: pd.DataFrame) -> int:
    cols = [c for c in JOB_TABLE_COLUMNS if c in jobs]
    return int(pd.util.hash_pandas_object(jobs[cols], index=False).sum()) ^ len(jobs)


def _held(jobs: pd.DataFrame) -> tuple[pa.Table, dict[tuple[object, ...], pd.DataFrame]]:
    """:func:`jobs_frame_view` as an Arrow table, and a memo of aggregates, kept while the
    frame lives and its content is unchanged (the statistics of one history query it several
    times)."""
    key, mark = id(jobs), _fingerprint(jobs)
    held = _VIEWS.get(key)
    if held is not None and held[0]() is jobs and held[1] == mark:
        return held[2], held[3]
    table = pa.Table.from_pandas(jobs_frame_view(jobs), preserve_index=False)
    for stale in [k for k, entry in _VIEWS.items() if entry[0]() is None]:
        del _VIEWS[stale]
    if len(_VIEWS) >= _MAX_VIEWS:
        _VIEWS.pop(next(iter(_VIEWS)))
    memo: dict[tuple[object, ...], pd.DataFrame] = {}
    _VIEWS[key] = (weakref.ref(jobs), mark, table, memo)
    return table, memo


def memo_of(jobs: JobSource) -> dict[tuple[object, ...], pd.DataFrame]:
    """Where aggregates of this job history are kept: the store's memo (cleared by imports),
    or the memo of a frame (dropped when its content changes)."""
    if isinstance(jobs, RegisterStore):
        return jobs.memo
    return _held(jobs)[1]


def _no_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """Switch DuckDB's terminal progress bar off. Inside Jupyter DuckDB refuses to change the
    setting at all without ipywidgets (and draws no bar there), so that refusal is ignored."""
    with contextlib.suppress(duckdb.InvalidInputException):
        con.execute("SET enable_progress_bar = false")


@functools.lru_cache(maxsize=1)
def _scratch_database() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    _no_progress_bar(con)
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    return con


def scratch_connection() -> duckdb.DuckDBPyConnection:
    """A new connection to the process's in-memory DuckDB, for SQL over frames (opening a
    database costs a third of a second; a connection to an open one almost nothing). Frames
    registered on it are seen by it alone; close it after use."""
    return _scratch_database().cursor()


@contextlib.contextmanager
def job_connection(
    jobs: JobSource, tables: Mapping[str, pd.DataFrame] | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection on which ``jobs`` is the job history, whatever its source.

    A :class:`RegisterStore` is queried in place (a cursor of its connection); a frame is shown
    as a view of an in-memory database. ``tables`` are extra frames registered by name (for
    example the customers' segments and areas to join with).
    """
    if isinstance(jobs, RegisterStore):
        con = jobs.con.cursor()
    else:
        con = scratch_connection()
        con.register("jobs", _held(jobs)[0])
    try:
        for name, frame in (tables or {}).items():
            con.register(name, frame)
        yield con
    finally:
        con.close()


def date_range(con: duckdb.DuckDBPyConnection, where: str = "") -> tuple[Any, Any]:
    """First and last ``date`` of the ``jobs`` of a :func:`job_connection` (None, None if none)."""
    row = con.execute(f"SELECT min(date), max(date) FROM jobs {where}").fetchall()[0]
    return (None, None) if row is None else (row[0], row[1])
