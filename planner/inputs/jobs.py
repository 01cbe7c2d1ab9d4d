"""Customer register and job history: read, validate row by row, nothing dropped silently.

The **register** is the customer file as today (id, location, weight, segment...) plus an
optional ``first_contact`` date (:func:`read_register`). The **job history** has one row per
job (:func:`read_jobs`):

=================  ==========================================================================
``job_id``         unique id of the job (missing: made up from the row number, warning)
``customer_id``    the customer of the register who brought the job (required)
``date``           day of the job: ``2024-03-15``, ``15.03.2024``, ``15/03/2024`` or a
                   spreadsheet date (required)
``revenue_eur``    revenue of the job in EUR (optional; empty is 0)
``complaint``      1 when the customer complained about the job, else 0 (optional; also
                   yes/no, true/false)
``served_by``      id of the site (own workshop or partner) that did the job (optional)
=================  ==========================================================================

CSV, XLSX and Parquet files are read with :func:`planner.inputs.tables.read_table` (a path or
an upload; only parsed) and checked with the same :class:`~planner.inputs.validation.
ValidationReport` as customer files: unknown customer ids, missing, unreadable or future dates,
duplicate job ids, negative revenue and bad complaint flags are reported with row, column,
value and fix. Rows with an error stay in the frame with ``valid`` False.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from planner.errors import InputError
from planner.inputs import validation as v
from planner.inputs.customers import CustomerTable, check_customers
from planner.inputs.customers import _empty_customers as empty_customers
from planner.inputs.tables import TableSource, TooManyRowsError, read_table, source_name
from planner.inputs.validation import ValidatedTable

if TYPE_CHECKING:
    import networkx as nx

logger = logging.getLogger(__name__)

__all__ = [
    "JOB_COLUMNS",
    "JobTable",
    "check_jobs",
    "parse_dates",
    "read_jobs",
    "read_register",
]

#: Columns of a job frame, in order (plus ``row`` and ``valid``).
JOB_COLUMNS: tuple[str, ...] = (
    "job_id",
    "customer_id",
    "date",
    "revenue_eur",
    "complaint",
    "served_by",
)
_TRUE = {"1", "yes", "y", "true", "ja", "x"}
_FALSE = {"0", "no", "n", "false", "nein"}
_DATE_FORMATS = ("ISO8601", "%d.%m.%Y", "%d/%m/%Y")


@dataclass(frozen=True)
class JobTable(ValidatedTable[pd.DataFrame]):
    """A job history read from a file, with its validation report.

    Attributes
    ----------
    frame
        :data:`JOB_COLUMNS` plus ``row`` (1-based data row in the file) and ``valid``; ``date``
        is a datetime (NaT where unreadable), ``revenue_eur`` float (NaN where unreadable),
        ``complaint`` int 0/1, ``served_by`` text or None.
    report
        Every problem, row by row.
    """


def _empty_jobs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "job_id": pd.Series(dtype=object),
            "customer_id": pd.Series(dtype=object),
            "date": pd.Series(dtype="datetime64[ns]"),
            "revenue_eur": pd.Series(dtype=float),
            "complaint": pd.Series(dtype=np.int64),
            "served_by": pd.Series(dtype=object),
            "row": pd.Series(dtype=np.int64),
            "valid": pd.Series(dtype=bool),
        }
    )


def parse_dates(series: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Parse dates written as ISO (``2024-03-15``), ``15.03.2024``, ``15/03/2024`` or cells.

    Returns
    -------
    dates : pandas.Series
        ``datetime64[ns]``, normalised to the day; NaT where missing or unreadable.
    missing : numpy.ndarray
        bool, the cell is empty.
    bad : numpy.ndarray
        bool, the cell has a value that is not a date.
    """
    series = series.reset_index(drop=True)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        dates = pd.to_datetime(series).dt.tz_localize(None) if series.dt.tz else series
        missing = dates.isna().to_numpy()
        return dates.dt.normalize().astype("datetime64[ns]"), missing, np.zeros(len(dates), bool)
    text = pd.Series(v.text_values(series), dtype=object)
    missing = text.isna().to_numpy()
    out = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns]")
    objects = series.to_numpy(dtype=object)
    for i in np.flatnonzero(~missing):  # spreadsheet cells arrive as datetime objects
        if isinstance(objects[i], pd.Timestamp | np.datetime64) or hasattr(objects[i], "year"):
            out.iloc[i] = pd.Timestamp(objects[i])
    todo = out.isna().to_numpy() & ~missing
    for fmt in _DATE_FORMATS:
        if not todo.any():
            break
        parsed = pd.to_datetime(text[todo].str.strip(), format=fmt, errors="coerce")
        out.loc[todo] = parsed.to_numpy(dtype="datetime64[ns]")
        todo = out.isna().to_numpy() & ~missing
    return out.dt.normalize(), missing, todo


def read_jobs(
    path: TableSource,
    *,
    customer_ids: Iterable[object] | None = None,
    site_ids: Iterable[object] | None = None,
    mapping: Mapping[str, str] | None = None,
    as_of: str | pd.Timestamp | None = None,
) -> JobTable:
    """Read a job history file and validate every row.

    Parameters
    ----------
    path
        CSV, XLSX or Parquet file (a path or an uploaded file-like object with a ``name``).
    customer_ids
        Ids of the customer register; jobs of other customers are errors (``unknown_customer``).
        None: not checked.
    site_ids
        Ids of known sites; a ``served_by`` not among them is a warning. None: not checked.
    mapping
        ``{field: column}`` for columns the automatic detection misses (fields
        ``job_id``, ``customer_id``, ``date``, ``revenue_eur``, ``complaint``, ``served_by``).
    as_of
        Reference day; jobs dated after it are errors (``future_date``). Default: today.

    Returns
    -------
    JobTable
        Every row (``valid`` False where an error leaves it out) and the report. A file that
        cannot be read gives an empty frame and a fatal report; nothing is raised for bad files.

    Raises
    ------
    InputError
        Only for a bad ``mapping`` argument.
    """
    label = source_name(path)
    try:
        raw = read_table(path)
    except TooManyRowsError as exc:
        refusal = TooManyRowsError(exc.n_rows, exc.limit, file=label, kind="jobs")
        return JobTable(_empty_jobs(), v.unreadable_report(label, "jobs", refusal))
    except InputError as exc:
        return JobTable(_empty_jobs(), v.unreadable_report(label, "jobs", exc))
    return check_jobs(
        raw,
        customer_ids=customer_ids,
        site_ids=site_ids,
        mapping=mapping,
        as_of=as_of,
        path=label,
    )


def check_jobs(
    data: pd.DataFrame,
    *,
    customer_ids: Iterable[object] | None = None,
    site_ids: Iterable[object] | None = None,
    mapping: Mapping[str, str] | None = None,
    as_of: str | pd.Timestamp | None = None,
    path: str | os.PathLike[str] | None = None,
    rows: np.ndarray | None = None,
) -> JobTable:
    """Validate a job history already in memory (see :func:`read_jobs`).

    ``rows``: the 1-based data row in the file of each row of ``data`` when ``data`` holds only
    some rows of a file (the register import checks the rows its SQL pass could not clear
    here, so the report names the file's rows); default ``1..len(data)``.
    """
    check = v.TableCheck.start(
        data,
        kind="jobs",
        fields=v.JOB_FIELDS,
        mapping=mapping,
        path=path,
        region=None,
        graph=None,
    )
    if rows is not None:
        check.rows = np.asarray(rows, dtype=np.int64)[check.rows - 1]
    data, rows, found, issues, notes, n = check.parts()
    if n == 0:
        return JobTable(_empty_jobs(), check.empty_report("add one job per row below the header"))
    missing_required = [f for f in ("customer_id", "date") if f not in found]
    if missing_required:
        issues.add(
            None,
            None,
            None,
            f"no {' and no '.join(missing_required)} column found; the file has: "
            f"{', '.join(map(repr, data.columns))}",
            "name the columns customer_id and date (one row per job), or pass a mapping such "
            "as {'customer_id': 'Kunde', 'date': 'Datum'}",
            code="unreadable",
        )
        return JobTable(_empty_jobs(), check.report(fatal=True))

    if "job_id" in found:
        job_ids = v.check_ids(
            v.text_values(data[found["job_id"]]), rows, issues, column=found["job_id"], prefix="J"
        )
    else:
        job_ids = np.array([f"J{r}" for r in rows], dtype=object)
        notes.append("no job_id column: jobs are named J1, J2, ... by their row")

    col = found["customer_id"]
    customer = v.text_values(data[col])
    known = None if customer_ids is None else {str(c) for c in customer_ids}
    for i in np.flatnonzero(pd.isna(pd.Series(customer, dtype=object)).to_numpy()):
        issues.add(
            int(rows[i]),
            col,
            None,
            "the job has no customer id",
            "write the id of the customer (as in the customer register) who brought the job",
            code="missing_customer",
        )
    if known is not None:
        for r, cid in enumerate(customer):
            if cid is not None and cid not in known:
                issues.add(
                    int(rows[r]),
                    col,
                    cid,
                    "unknown customer: this id is not in the customer register",
                    "correct the id, or add the customer to the register (customer file)",
                    code="unknown_customer",
                )

    col = found["date"]
    dates, missing, bad = parse_dates(data[col])
    text = v.text_values(data[col])
    reference = pd.Timestamp.today().normalize() if as_of is None else pd.Timestamp(as_of)
    for i in np.flatnonzero(missing):
        issues.add(
            int(rows[i]),
            col,
            None,
            "the job has no date",
            "write the day of the job, for example 2024-03-15",
            code="missing_date",
        )
    for i in np.flatnonzero(bad):
        issues.add(
            int(rows[i]),
            col,
            text[i],
            "the date cannot be read",
            "write the date as YYYY-MM-DD (for example 2024-03-15) or DD.MM.YYYY",
            code="bad_date",
        )
    future = (dates > reference).fillna(False).to_numpy(dtype=bool)
    for i in np.flatnonzero(future):
        issues.add(
            int(rows[i]),
            col,
            text[i],
            f"the date lies in the future (after {reference.date()})",
            "correct the date; planned jobs do not belong in the history",
            code="future_date",
        )

    revenue = np.zeros(n)
    if "revenue_eur" in found:
        col = found["revenue_eur"]
        values, rmissing, rbad = v.parse_numbers(data[col])
        rtext = v.text_values(data[col])
        revenue = np.where(rmissing, 0.0, values)
        for i in np.flatnonzero(rbad):
            issues.add(
                int(rows[i]),
                col,
                rtext[i],
                "the revenue is not a number",
                "write the revenue in EUR as a number (for example 180.50), or leave it empty",
                code="non_numeric_number",
            )
        for i in np.flatnonzero(~rbad & (values < 0)):
            issues.add(
                int(rows[i]),
                col,
                rtext[i],
                "the revenue is negative",
                "write the revenue of the job, zero or more (book refunds separately)",
                code="negative_revenue",
            )
    else:
        notes.append("no revenue column: revenue counts as 0")

    complaint = np.zeros(n, dtype=np.int64)
    if "complaint" in found:
        col = found["complaint"]
        ctext = v.text_values(data[col])
        for r, value in enumerate(ctext):
            if value is None:
                continue
            key = str(value).strip().lower()
            if key in _TRUE:
                complaint[r] = 1
            elif key not in _FALSE:
                issues.add(
                    int(rows[r]),
                    col,
                    value,
                    "the complaint flag is not 0 or 1",
                    "write 1 when the customer complained about the job, else 0 (or leave empty)",
                    code="invalid_complaint",
                )

    served = check.text("served_by")
    if site_ids is not None and "served_by" in found:
        sites = {str(s) for s in site_ids}
        for r, sid in enumerate(served):
            if sid is not None and sid not in sites:
                issues.add(
                    int(rows[r]),
                    found["served_by"],
                    sid,
                    "the job was served by a site that is not in the site list",
                    "check the site id; the job is kept",
                    code="unknown_site",
                    severity="warning",
                )

    report = check.report(fatal=False)
    valid = ~np.isin(rows, report.error_rows)
    frame = pd.DataFrame(
        {
            "job_id": job_ids.astype(str),
            "customer_id": pd.Series(customer, dtype=object),
            "date": dates.to_numpy(dtype="datetime64[ns]"),
            "revenue_eur": revenue.astype(float),
            "complaint": complaint,
            "served_by": v.text_or_none(served),
            "row": rows.astype(np.int64),
            "valid": valid,
        }
    )
    return JobTable(frame, report)


def read_register(
    path: TableSource,
    *,
    mapping: Mapping[str, str] | None = None,
    region: str | os.PathLike[str] | None = None,
    crs: str | None = None,
    graph: nx.MultiDiGraph | None = None,
    max_snap_m: float = 1000.0,
) -> CustomerTable:
    """Read a customer register: the customer file plus an optional ``first_contact`` date.

    Validated exactly like :func:`planner.inputs.customers.read_customers` (same report);
    ``first_contact`` that cannot be read is a warning (``bad_first_contact``) and stays NaT.

    Returns
    -------
    CustomerTable
        The customer frame with a ``first_contact`` column (datetime, NaT when not given).
    """
    label = source_name(path)
    try:
        raw = read_table(path)
    except InputError as exc:
        return CustomerTable(empty_customers(), v.unreadable_report(label, "customers", exc))
    fields = {k: c for k, c in (mapping or {}).items() if k != "first_contact"}
    table = check_customers(
        raw,
        mapping=fields or None,
        region=region,
        crs=crs,
        graph=graph,
        max_snap_m=max_snap_m,
        path=label,
    )
    frame = table.frame.copy()
    frame["first_contact"] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
    col = (mapping or {}).get("first_contact") or v.detect_columns(
        raw.columns, fields=("first_contact",)
    ).get("first_contact")
    if col is None or table.report.fatal or len(frame) == 0:
        return CustomerTable(frame, table.report)
    values = raw[col].reset_index(drop=True).iloc[frame["row"].to_numpy() - 1]
    dates, _, bad = parse_dates(values)
    frame["first_contact"] = dates.to_numpy(dtype="datetime64[ns]")
    header_lines, unit = v.row_unit(str(raw.attrs.get("format", "table")))
    extra = v.IssueCollector(header_lines=header_lines, unit=unit)
    text = v.text_values(values)
    for i in np.flatnonzero(bad):
        extra.add(
            int(frame["row"].iloc[i]),
            col,
            text[i],
            "the first_contact date cannot be read",
            "write the date as YYYY-MM-DD, or leave it empty",
            code="bad_first_contact",
            severity="warning",
        )
    issues = tuple(
        sorted(
            (*table.report.issues, *extra.issues),
            key=lambda i: (-1 if i.row is None else i.row, i.column or ""),
        )
    )
    report = dataclasses.replace(table.report, issues=issues)
    return CustomerTable(frame, report)
