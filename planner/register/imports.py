"""Import customer, site and job files (or a PostgreSQL table) into the register database.

Every row is validated as today (:func:`planner.inputs.jobs.read_register`,
:func:`planner.inputs.sites.read_sites`, :func:`planner.inputs.jobs.check_jobs`): the same
report, the same fixes, rows with errors left out and listed. Job files of any length are read
by DuckDB; one SQL pass clears the rows that are plainly valid (known customer, ISO or
``DD.MM.YYYY`` date not in the future, plain revenue, 0/1 complaint, unique job id) and every
other row goes through :func:`~planner.inputs.jobs.check_jobs` with its row number in the
file, so the report reads exactly as if the whole file had been checked in pandas.

Only what is new is appended: a row whose id is already stored with the same values counts as
*already stored*; one whose values differ is reported as *changed* and kept as stored unless
``update`` is True. One import is one transaction: if it fails or is killed, the database is
as it was.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.inputs import validation as v
from planner.inputs.jobs import check_jobs, read_register
from planner.inputs.sites import read_sites
from planner.inputs.tables import (
    CSV_ENCODINGS,
    _count_lines,
    read_table,
    sniff_delimiter,
    table_format,
)
from planner.inputs.validation import ValidationReport
from planner.register.store import MEMORY_LIMIT, RegisterStore
from planner.settings import max_table_rows

logger = logging.getLogger(__name__)

__all__ = [
    "ImportSummary",
    "import_postgres",
    "import_register",
    "job_files",
]

#: File types of a job folder.
JOB_FILE_SUFFIXES: tuple[str, ...] = (".csv", ".txt", ".tsv", ".parquet", ".xlsx")
#: Rows of a file checked in pandas at a time (rows the SQL pass could not clear).
CHECK_CHUNK_ROWS = 500_000
#: Memory DuckDB may use during an import (staging tables of ten million rows fit).
IMPORT_MEMORY_LIMIT = "4GB"
#: Changed ids listed in a summary (the rest are counted).
MAX_LISTED_CHANGES = 20
_TRUE = ("1", "yes", "y", "true", "ja", "x")
_FALSE = ("0", "no", "n", "false", "nein")
_WS = "' ' || chr(9) || chr(10) || chr(11) || chr(12) || chr(13)"

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class ImportSummary:
    """What one import of one kind of rows did.

    Attributes
    ----------
    kind
        ``customers``, ``sites`` or ``jobs``.
    sources
        Files (or PostgreSQL sources) read.
    new
        Rows appended.
    already_stored
        Rows whose id was stored with the same values (not counted twice).
    changed
        Ids stored with other values (kept as stored unless ``updated``).
    updated
        Changed rows replaced by the imported values (``update=True``).
    left_out
        Rows with errors (see ``reports``), not imported.
    reports
        The validation report of each file, as ``planner validate`` would print it.
    """

    kind: str
    sources: tuple[str, ...]
    new: int
    already_stored: int
    changed: tuple[str, ...]
    updated: int
    left_out: int
    reports: tuple[ValidationReport, ...] = field(default=())

    @property
    def n_changed(self) -> int:
        """Number of changed rows."""
        return len(self.changed)

    def __str__(self) -> str:
        noun = self.kind
        text = f"{self.new:,} new {noun}, {self.already_stored:,} already stored"
        if self.changed:
            shown = ", ".join(self.changed[:MAX_LISTED_CHANGES])
            more = len(self.changed) - MAX_LISTED_CHANGES
            shown += f" and {more:,} more" if more > 0 else ""
            if self.updated:
                text += f", {self.updated:,} changed and updated ({shown})"
            else:
                text += (
                    f", {len(self.changed):,} changed in the file but kept as stored ({shown}); "
                    "pass --update to replace them"
                )
        if self.left_out:
            text += f", {self.left_out:,} rows with problems left out (see the report)"
        return text


def job_files(source: str | os.PathLike[str]) -> list[Path]:
    """The job files of ``source``: the file itself, or a folder's CSV/Parquet/XLSX files
    (sorted by name, so monthly exports import in order).

    Raises
    ------
    InputError
        When the file or folder does not exist or the folder holds no job files.
    """
    path = Path(source)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError("file or folder not found", file=path)
    files = sorted(
        p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(JOB_FILE_SUFFIXES)
    )
    if not files:
        raise InputError(
            f"the folder has no job files ({', '.join(JOB_FILE_SUFFIXES)}); put the monthly "
            "CSV or Parquet exports in it",
            file=path,
        )
    return files


def import_register(
    store: RegisterStore,
    *,
    customers: str | os.PathLike[str] | None = None,
    sites: str | os.PathLike[str] | None = None,
    jobs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    job_labels: Sequence[str] | None = None,
    mapping: Mapping[str, str] | None = None,
    update: bool = False,
    as_of: str | pd.Timestamp | None = None,
    progress: Progress | None = None,
    job_format: str | None = None,
) -> list[ImportSummary]:
    """Validate and append customers, sites and jobs to the register, in one transaction.

    Parameters
    ----------
    store
        The open register (not read-only).
    customers, sites
        A customer register file / a site file (validated as today).
    jobs
        A job file, a folder of job files, or a list of files.
    job_labels
        Names the reports give the job files (default: their paths).
    mapping
        ``{field: column}`` for job columns the detection misses.
    update
        Replace stored rows whose values changed (default: keep them and report).
    as_of
        Jobs dated after this day are errors (default: today).
    progress
        ``progress(message, fraction)`` callback.
    job_format
        What the reports say the job rows were read as (default: the file format; rows of a
        database query have no file lines).

    Returns
    -------
    list of ImportSummary
        One per kind imported.

    Raises
    ------
    InputError
        When a file cannot be used at all (fatal report), or jobs are imported without any
        customers; nothing is then changed.
    """
    report = progress or (lambda message, fraction: None)
    if customers is None and sites is None and jobs is None:
        raise InputError("nothing to import: give --customers FILE, --sites FILE or --jobs FILE")
    store.forget()
    con = store.con.cursor()
    summaries: list[ImportSummary] = []
    # the staging tables of a long history are held in memory rather than spilled to disk
    con.execute(f"SET memory_limit = '{IMPORT_MEMORY_LIMIT}'")
    try:
        con.execute("BEGIN TRANSACTION")
        row = con.execute("SELECT coalesce(max(import_id), 0) + 1 FROM imports").fetchall()[0]
        import_id = int(row[0]) if row else 1
        if customers is not None:
            report(f"Reading customers from {customers}", 0.02)
            summaries.append(
                _import_table(con, customers, import_id, update=update, kind="customers")
            )
        if sites is not None:
            report(f"Reading sites from {sites}", 0.05)
            summaries.append(_import_table(con, sites, import_id, update=update, kind="sites"))
        if jobs is not None:
            if isinstance(jobs, str | os.PathLike):
                files = job_files(jobs)
            else:
                files = [Path(p) for p in jobs]
            labels = list(job_labels) if job_labels is not None else [str(p) for p in files]
            summaries.append(
                _import_jobs(
                    con,
                    files,
                    labels,
                    import_id,
                    mapping=mapping,
                    update=update,
                    as_of=as_of,
                    progress=report,
                    job_format=job_format,
                )
            )
        now = pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime()
        for s in summaries:
            con.execute(
                "INSERT INTO imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    import_id,
                    now,
                    s.kind,
                    ", ".join(s.sources),
                    s.new,
                    s.already_stored,
                    s.n_changed,
                    s.updated,
                    s.left_out,
                ],
            )
        report("Committing", 0.98)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        store.forget()
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        con.close()
    return summaries


# -------------------------------------------------------------------------------------------
# merging validated rows


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]


def _table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    row = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()[0]
    return bool(row and row[0])


def _merge(
    con: duckdb.DuckDBPyConnection,
    table: str,
    key: str,
    import_id: int,
    *,
    update: bool,
    derived: Sequence[str] = (),
) -> tuple[int, int, tuple[str, ...], int]:
    """Append the temp table ``staged`` to ``table``: (new, already stored, changed ids,
    updated). ``derived`` columns (the job's ``customer_no``) are not compared."""
    staged = _columns(con, "staged")
    if not _table_exists(con, table):
        con.execute(
            f"CREATE TABLE {table} AS SELECT *, NULL::INTEGER AS import_id FROM staged LIMIT 0"
        )
    stored = _columns(con, table)
    for c in staged:
        if c not in stored:
            kind = con.execute(
                "SELECT data_type FROM information_schema.columns "
                "WHERE table_name = 'staged' AND column_name = ?",
                [c],
            ).fetchall()[0]
            con.execute(f"ALTER TABLE {table} ADD COLUMN {_quote(c)} {kind[0] if kind else ''}")
    k = _quote(key)
    compared = [c for c in staged if c != key and c not in derived]
    same = " AND ".join(f"s.{_quote(c)} IS NOT DISTINCT FROM t.{_quote(c)}" for c in compared)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE matched AS SELECT s.{k} AS id, "
        f"({same or 'TRUE'}) AS same FROM staged s JOIN {table} t ON s.{k} = t.{k}"
    )
    counts = con.execute(
        "SELECT count(*) FILTER (WHERE same), count(*) FILTER (WHERE NOT same) FROM matched"
    ).fetchall()[0]
    already, n_changed = (int(counts[0]), int(counts[1])) if counts else (0, 0)
    changed: tuple[str, ...] = ()
    if n_changed:
        changed = tuple(
            str(r[0])
            for r in con.execute("SELECT id FROM matched WHERE NOT same ORDER BY id").fetchall()
        )
    cols = ", ".join(_quote(c) for c in staged)
    total = con.execute("SELECT count(*) FROM staged").fetchall()[0]
    new = (int(total[0]) if total else 0) - already - n_changed
    anti = "" if not (already or n_changed) else f"ANTI JOIN matched m ON s.{k} = m.id"
    con.execute("SET preserve_insertion_order = false")  # rows in any order: parallel insert
    try:
        con.execute(
            f"INSERT INTO {table} ({cols}, import_id) SELECT {cols}, ? FROM staged s {anti}",
            [import_id],
        )
    finally:
        con.execute("RESET preserve_insertion_order")
    updated = 0
    if update and n_changed:
        con.execute(f"DELETE FROM {table} WHERE {k} IN (SELECT id FROM matched WHERE NOT same)")
        con.execute(
            f"INSERT INTO {table} ({cols}, import_id) SELECT {cols}, ? FROM staged s "
            f"SEMI JOIN matched m ON s.{k} = m.id AND NOT m.same",
            [import_id],
        )
        updated = n_changed
    con.execute("DROP TABLE matched")
    con.execute("DROP TABLE staged")
    return new, already, changed, updated


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """A validated frame without geometry and bookkeeping columns, text as text."""
    out = pd.DataFrame(frame.drop(columns=["geometry", "row", "valid"], errors="ignore"))
    for c in out.columns:
        if out[c].dtype == object:
            out[c] = out[c].astype("string")
    return out.reset_index(drop=True)


def _fatal(report: ValidationReport, source: object) -> InputError:
    return InputError(f"nothing was imported:\n{report}", file=source)


def _import_table(
    con: duckdb.DuckDBPyConnection,
    path: str | os.PathLike[str],
    import_id: int,
    *,
    update: bool,
    kind: str,
) -> ImportSummary:
    """Validate a customer (``kind="customers"``) or site (``"sites"``) file as ever and
    merge its valid rows into the table of that name, keyed by its id."""
    read, key = (read_register, "customer_id") if kind == "customers" else (read_sites, "site_id")
    table = read(path)
    if table.report.fatal:
        raise _fatal(table.report, path)
    frame = _storable(table.valid)
    con.register("staged_frame", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM staged_frame")
    con.unregister("staged_frame")
    new, already, changed, updated = _merge(con, kind, key, import_id, update=update)
    return ImportSummary(
        kind,
        (str(path),),
        new,
        already,
        changed,
        updated,
        len(table.report.error_rows),
        (table.report,),
    )


# -------------------------------------------------------------------------------------------
# job files


def _import_jobs(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[Path],
    labels: Sequence[str],
    import_id: int,
    *,
    mapping: Mapping[str, str] | None,
    update: bool,
    as_of: str | pd.Timestamp | None,
    progress: Progress,
    job_format: str | None = None,
) -> ImportSummary:
    known = (
        [r[0] for r in con.execute("SELECT customer_id FROM customers").fetchall()]
        if (_table_exists(con, "customers"))
        else []
    )
    if not known:
        raise InputError(
            "the register has no customers yet, so the jobs' customer ids cannot be checked; "
            "import the customer register first (planner register import --customers FILE "
            "--jobs ...)"
        )
    _number_customers(con)
    reference = pd.Timestamp.today().normalize() if as_of is None else pd.Timestamp(as_of)
    new = already = updated = left_out = 0
    changed: list[str] = []
    reports = []
    for i, (path, label) in enumerate(zip(files, labels, strict=True)):
        base = 0.1 + 0.85 * i / len(files)
        progress(f"Reading {label}", base)
        attrs = _load_raw(con, path, label)
        if job_format is not None:
            attrs = {"format": job_format}
        progress(f"Validating {label}", base + 0.3 / len(files))
        file_report = _stage_jobs(
            con, label, attrs, known, mapping=mapping, reference=reference, as_of=as_of
        )
        reports.append(file_report)
        if file_report.fatal:
            raise _fatal(file_report, label)
        left_out += len(file_report.error_rows)
        progress(f"Appending the new jobs of {label}", base + 0.6 / len(files))
        n, a, c, u = _merge(
            con, "jobs", "job_id", import_id, update=update, derived=("customer_no",)
        )
        new, already, updated = new + n, already + a, updated + u
        changed += list(c)
        con.execute("DROP TABLE IF EXISTS raw")
    missing = con.execute("SELECT count(*) FROM jobs WHERE customer_no IS NULL").fetchall()[0]
    if missing and missing[0]:  # a register written before the customer numbers
        con.execute(
            "UPDATE jobs SET customer_no = k.customer_no FROM customer_keys k "
            "WHERE jobs.customer_no IS NULL AND jobs.customer_id = k.customer_id"
        )
    return ImportSummary(
        "jobs", tuple(labels), new, already, tuple(changed), updated, left_out, tuple(reports)
    )


def _number_customers(con: duckdb.DuckDBPyConnection) -> None:
    """Give every stored customer id without one the next ``customer_no`` (numbers are never
    reused, so a stored job keeps its customer's number)."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS customer_keys (customer_id VARCHAR, customer_no INTEGER)"
    )
    con.execute(
        "INSERT INTO customer_keys SELECT customer_id, "
        "(SELECT coalesce(max(customer_no), 0) FROM customer_keys) "
        "+ row_number() OVER (ORDER BY customer_id) FROM "
        "(SELECT DISTINCT customer_id FROM customers) c ANTI JOIN customer_keys USING (customer_id)"
    )


def _sniff_csv(path: Path) -> tuple[str, str]:
    """Encoding and delimiter of a CSV, from its first 64 KB (as :func:`read_table` does)."""
    with path.open("rb") as fh:
        head = fh.read(64 * 1024)
    cut = head.rfind(b"\n")
    sample = head if cut < 0 or len(head) < 64 * 1024 else head[: cut + 1]
    for encoding in CSV_ENCODINGS:
        try:
            text = sample.decode(encoding)
        except UnicodeDecodeError:
            continue
        bom = sample.startswith(b"\xef\xbb\xbf")
        name = "utf-8" if encoding == "utf-8-sig" and not bom else encoding
        delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text)
        return name, delimiter
    raise InputError(
        f"cannot decode the file; save it as UTF-8 (tried {', '.join(CSV_ENCODINGS)})", file=path
    )


def _sql_text(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _load_raw(con: duckdb.DuckDBPyConnection, path: Path, label: str) -> dict[str, Any]:
    """The file as the temp table ``raw`` (text cells; ``__row`` is the 1-based data row) and
    the ``attrs`` a :func:`read_table` frame would carry."""
    fmt = table_format(path)
    if not path.is_file():
        raise InputError("file not found", file=label)
    con.execute("DROP TABLE IF EXISTS raw")
    if fmt == "csv":
        encoding, delimiter = _sniff_csv(path)
        attrs = {"format": "csv", "encoding": encoding, "delimiter": delimiter}
        if encoding in ("utf-8", "utf-8-sig"):
            try:
                con.execute(
                    "CREATE TEMP TABLE raw AS SELECT row_number() OVER () AS __row, * "
                    "FROM read_csv("
                    f"{_sql_text(path)}, header = true, all_varchar = true, "
                    f"delim = {_sql_text(Path(delimiter))}, quote = '\"', escape = '\"', "
                    "auto_detect = true, null_padding = true)"
                )
            except duckdb.Error as exc:
                logger.info("DuckDB could not read %s (%s); reading it with pandas", path, exc)
            else:
                rows = con.execute("SELECT count(*) FROM raw").fetchall()[0]
                lines = max(0, _count_lines(path, None) - 1)
                if rows and rows[0] == lines:  # no blank lines: __row is pandas' row
                    return attrs
                if lines > max_table_rows():  # blank lines: rows count the non-blank lines
                    logger.warning("%s has blank lines; rows count the other lines", label)
                    return attrs
                con.execute("DROP TABLE raw")
        frame = read_table(path)
    elif fmt == "parquet":
        con.execute(
            "CREATE TEMP TABLE raw AS SELECT file_row_number + 1 AS __row, "
            "COLUMNS(* EXCLUDE (file_row_number))::VARCHAR FROM read_parquet("
            f"{_sql_text(path)}, file_row_number = true)"
        )
        return {"format": "parquet"}
    else:
        frame = read_table(path)
    attrs = dict(frame.attrs)
    text = pd.DataFrame(
        {str(c): v.text_or_none(frame[c].astype(object).to_numpy()) for c in frame.columns}
    )
    for c in text.columns:
        text[c] = [None if x is None else str(x) for x in text[c]]
        text[c] = text[c].astype("string")
    text.insert(0, "__row", np.arange(1, len(text) + 1, dtype=np.int64))
    con.register("raw_frame", text)
    con.execute("CREATE TEMP TABLE raw AS SELECT * FROM raw_frame")
    con.unregister("raw_frame")
    return attrs


def _stage_jobs(
    con: duckdb.DuckDBPyConnection,
    label: str,
    attrs: Mapping[str, Any],
    known: Iterable[str],
    *,
    mapping: Mapping[str, str] | None,
    reference: pd.Timestamp,
    as_of: str | pd.Timestamp | None,
) -> ValidationReport:
    """Validate ``raw`` into the temp table ``staged`` (valid jobs); returns the report.

    One SQL pass keeps the rows that are plainly valid; the others (and the first row, for
    the notes of the report) are checked by :func:`check_jobs` with their row numbers.
    """
    columns = [c for c in _columns(con, "raw") if c != "__row"]
    try:
        found = v.detect_columns(columns, fields=v.JOB_FIELDS, mapping=mapping)
    except InputError:
        found = {}
    known = list(known)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE known_ids AS SELECT customer_id, customer_no "
        "FROM customer_keys SEMI JOIN customers USING (customer_id)"
    )

    def col(field_name: str) -> str:
        return "r." + _quote(found[field_name]) if field_name in found else "NULL::VARCHAR"

    def clean(expr: str) -> str:
        # text that Python's str.strip() leaves as it is: first and last character printable
        # ASCII other than a space (anything else goes through check_jobs)
        return f"(ascii({expr}) BETWEEN 33 AND 126 AND ascii(right({expr}, 1)) BETWEEN 33 AND 126)"

    job_id, customer, date = col("job_id"), col("customer_id"), col("date")
    revenue, complaint, served = col("revenue_eur"), col("complaint"), col("served_by")
    date_sql = (
        f"CASE WHEN length({date}) = 10 THEN coalesce(try_strptime({date}, '%Y-%m-%d'), "
        f"try_strptime({date}, '%d.%m.%Y'), try_strptime({date}, '%d/%m/%Y')) "
        f"WHEN length({date}) BETWEEN 8 AND 9 THEN coalesce(try_strptime({date}, '%d.%m.%Y'), "
        f"try_strptime({date}, '%d/%m/%Y')) END"
    )
    true_set = ", ".join(f"'{x}'" for x in _TRUE)
    flags = ", ".join(f"'{x}'" for x in (*_TRUE, *_FALSE))
    id_sql = f"{job_id}" if "job_id" in found else "'J' || r.__row"
    conditions = [
        f"{date_sql} <= ?",
        f"({revenue} IS NULL OR (isfinite(try_cast({revenue} AS DOUBLE)) "
        f"AND try_cast({revenue} AS DOUBLE) >= 0 AND NOT contains({revenue}, '_')))",
        f"({complaint} IS NULL OR {complaint} IN ({flags}))",
        f"({served} IS NULL OR {clean(served)})",
    ]
    if "job_id" in found:
        conditions.append(f"{job_id} IS NOT NULL AND {clean(job_id)}")
    required = "customer_id" in found and "date" in found
    if required:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE staged AS SELECT r.__row AS row, "
            f"{id_sql} AS job_id, {customer} AS customer_id, ({date_sql})::TIMESTAMP AS date, "
            f"coalesce(try_cast({revenue} AS DOUBLE), 0.0) AS revenue_eur, "
            f"CASE WHEN {complaint} IN ({true_set}) THEN 1 ELSE 0 END AS complaint, "
            f"{served} AS served_by, k.customer_no FROM raw r "
            f"JOIN known_ids k ON {customer} = k.customer_id "
            f"WHERE {' AND '.join(conditions)}",
            [reference.to_pydatetime()],
        )
    else:  # check_jobs says what is missing
        con.execute(
            "CREATE OR REPLACE TEMP TABLE staged (row BIGINT, job_id VARCHAR, customer_id "
            "VARCHAR, date TIMESTAMP, revenue_eur DOUBLE, complaint INTEGER, served_by VARCHAR, "
            "customer_no INTEGER)"
        )
    blank = " AND ".join(f"{_quote(c)} IS NULL" for c in columns) or "FALSE"
    counts = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT ({blank})), min(__row) FILTER (WHERE NOT ({blank})) "
        "FROM raw"
    ).fetchall()[0]
    n_rows, first_row = int(counts[0]), counts[1]
    cleared = con.execute("SELECT count(*) FROM staged").fetchall()[0][0]
    extra: list[np.ndarray] = []
    if "job_id" in found and n_rows:
        extra.append(  # rows sharing a job id: check_ids names the row each one repeats
            con.execute(
                f"WITH unclean AS (SELECT trim({job_id}) AS j FROM raw r WHERE {job_id} IS NOT "
                f"NULL AND NOT {clean(job_id)}), dup AS (SELECT {job_id} AS j FROM raw r "
                f"WHERE {job_id} IS NOT NULL GROUP BY j HAVING count(*) > 1) "
                f"SELECT __row FROM raw r WHERE {job_id} IN (SELECT j FROM dup) OR "
                f"{job_id} IN (SELECT j FROM unclean) OR trim({job_id}) IN "
                "(SELECT j FROM unclean)"
            ).fetchnumpy()["__row"]
        )
    if cleared < n_rows:
        extra.append(
            con.execute(
                f"SELECT __row FROM raw WHERE NOT ({blank}) AND __row NOT IN "
                "(SELECT row FROM staged)"
            ).fetchnumpy()["__row"]
        )
    dup_rows = np.asarray(extra[0] if "job_id" in found and extra else [], dtype=np.int64)
    suspect = np.unique(
        np.concatenate(
            [np.asarray(e, dtype=np.int64) for e in extra]
            + [np.array([] if first_row is None else [first_row], dtype=np.int64)]
        )
    )
    chunks = _chunks(suspect, np.sort(dup_rows))
    reports: list[ValidationReport] = []
    fixed: list[pd.DataFrame] = []
    for rows in chunks or [np.array([], dtype=np.int64)]:
        con.register("wanted", pd.DataFrame({"row": rows}))
        raw = con.execute(
            "SELECT * EXCLUDE (__row) FROM raw WHERE __row IN (SELECT row FROM wanted) "
            "ORDER BY __row"
        ).df()
        con.unregister("wanted")
        raw = raw.astype(object).where(raw.notna(), None)
        raw.attrs.update(attrs)
        table = check_jobs(
            raw, customer_ids=known, mapping=mapping, as_of=as_of, path=label, rows=rows
        )
        if table.report.fatal:
            return replace(table.report, n_rows=n_rows if n_rows else table.report.n_rows)
        reports.append(table.report)
        fixed.append(table.valid)
    report = _merged_report(reports, n_rows=n_rows)
    if len(suspect):
        con.register("suspect_rows", pd.DataFrame({"row": suspect}))
        con.execute("DELETE FROM staged WHERE row IN (SELECT row FROM suspect_rows)")
        con.unregister("suspect_rows")
    fixed_frame = pd.concat(fixed, ignore_index=True) if fixed else pd.DataFrame()
    if len(fixed_frame):
        fixed_frame = pd.DataFrame(
            {
                "row": fixed_frame["row"].astype(np.int64),
                "job_id": fixed_frame["job_id"].astype("string"),
                "customer_id": fixed_frame["customer_id"].astype("string"),
                "date": fixed_frame["date"].astype("datetime64[ns]"),
                "revenue_eur": fixed_frame["revenue_eur"].astype(float),
                "complaint": fixed_frame["complaint"].astype(np.int32),
                "served_by": fixed_frame["served_by"].astype("string"),
            }
        )
        con.register("fixed_frame", fixed_frame)
        con.execute(
            "INSERT INTO staged SELECT f.row, f.job_id, f.customer_id, f.date::TIMESTAMP, "
            "f.revenue_eur, f.complaint, f.served_by, k.customer_no FROM fixed_frame f "
            "LEFT JOIN known_ids k USING (customer_id)"
        )
        con.unregister("fixed_frame")
    con.execute("ALTER TABLE staged DROP COLUMN row")
    con.execute("DROP TABLE IF EXISTS known_ids")
    return report


def _chunks(suspect: np.ndarray, dup_rows: np.ndarray) -> list[np.ndarray]:
    """Suspect rows in chunks of :data:`CHECK_CHUNK_ROWS`; rows sharing a job id stay in the
    first chunk so that duplicates are reported against the row they repeat."""
    if not len(suspect):
        return []
    first = np.union1d(dup_rows, suspect[:1])
    rest = np.setdiff1d(suspect, first)
    out = [first]
    room = max(CHECK_CHUNK_ROWS - len(first), 0)
    out[0] = np.union1d(first, rest[:room])
    rest = rest[room:]
    for start in range(0, len(rest), CHECK_CHUNK_ROWS):
        out.append(rest[start : start + CHECK_CHUNK_ROWS])
    return out


def _merged_report(reports: Sequence[ValidationReport], *, n_rows: int) -> ValidationReport:
    """One report of a file from the reports of its checked chunks."""
    first = reports[0]
    issues = tuple(
        sorted(
            (i for r in reports for i in r.issues),
            key=lambda i: (-1 if i.row is None else i.row, i.column or ""),
        )
    )
    return replace(first, n_rows=n_rows, issues=issues)


# -------------------------------------------------------------------------------------------
# PostgreSQL


_URL_PASSWORD = re.compile(r"(://[^:/@]+):[^@]*@")


def postgres_label(url: str, *, table: str | None, query: str | None) -> str:
    """How reports name a PostgreSQL source (the password left out)."""
    where = _URL_PASSWORD.sub(r"\1@", url)
    return f"{where} table {table}" if table else f"{where} query"


def import_postgres(
    store: RegisterStore,
    url: str,
    *,
    table: str | None = None,
    query: str | None = None,
    mapping: Mapping[str, str] | None = None,
    update: bool = False,
    as_of: str | pd.Timestamp | None = None,
    connect_timeout_s: int = 10,
    progress: Progress | None = None,
) -> list[ImportSummary]:
    """Import jobs from a PostgreSQL table or query, validated and mapped as a job file.

    The rows are streamed with ``COPY ... TO STDOUT`` (psycopg) into a temporary CSV file and
    imported by :func:`import_register` (DuckDB's postgres extension is not used: it downloads
    from extensions.duckdb.org at first use, which an offline machine cannot reach).

    Raises
    ------
    InputError
        When psycopg is missing, the server cannot be reached, or the table/query fails.
    """
    if (table is None) == (query is None):
        raise InputError('give --table NAME or --query "SELECT ..." (one of them)')
    try:
        import psycopg
        from psycopg import sql
    except ImportError as exc:  # pragma: no cover - psycopg is a dependency
        raise InputError(
            "reading from PostgreSQL needs psycopg: pip install 'psycopg[binary]'"
        ) from exc
    label = postgres_label(url, table=table, query=query)
    select: sql.Composable
    if table is not None:
        parts = [p for p in table.split(".") if p]
        select = sql.SQL("SELECT * FROM {}").format(sql.Identifier(*parts))
    else:
        select = sql.SQL(str(query).strip().rstrip(";"))  # type: ignore[arg-type]
    copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(select)
    with tempfile.TemporaryDirectory(prefix="planner-pg-") as tmp:
        path = Path(tmp) / "jobs.csv"
        try:
            with (
                psycopg.connect(url, connect_timeout=connect_timeout_s) as pg,
                pg.cursor() as cur,
                path.open("wb") as out,
                cur.copy(copy) as stream,
            ):
                for block in stream:
                    out.write(bytes(block))
        except psycopg.Error as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError(
                f"cannot read jobs from PostgreSQL ({label}): {message}. Fix: check the "
                "address, user, database and table, and that the server accepts connections",
            ) from exc
        return import_register(
            store,
            jobs=[path],
            job_labels=[label],
            mapping=mapping,
            update=update,
            as_of=as_of,
            progress=progress,
            job_format="PostgreSQL rows",
        )
