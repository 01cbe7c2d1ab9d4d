"""``planner register import|status|plans|export``: the register database on the command line.

A thin client of :mod:`planner.register.store` and :mod:`planner.register.imports`, wired
into :func:`planner.cli.build_parser` by :func:`add_register_parser`. :func:`register_inputs`
is how ``planner trends|phases|economics`` find their customers and jobs: the files given, or
the stored register.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from planner.errors import InputError
from planner.inputs.jobs import read_jobs, read_register
from planner.register.imports import import_postgres, import_register
from planner.register.store import RegisterStore, default_db_path, open_store

__all__ = ["DB_HELP", "add_register_parser", "register_inputs"]

DB_HELP = (
    "register database (default: $PLANNER_WORKSPACE_DIR/register.duckdb); without a jobs file "
    "the stored register is read"
)


def _progress(message: str, fraction: float) -> None:
    print(f"[{100 * fraction:3.0f}%] {message}", file=sys.stderr, flush=True)


def _print_reports(summary: Any) -> None:
    for report in summary.reports:
        if report.issues:
            print(report)


def _cmd_import(args: argparse.Namespace) -> int:
    if args.source and args.jobs:
        raise InputError("give either a PostgreSQL address or --jobs FILE_OR_FOLDER, not both")
    if args.source and not str(args.source).startswith(("postgresql://", "postgres://")):
        raise InputError(
            f"{args.source!r} is not a PostgreSQL address; give postgresql://USER@HOST/DB "
            "--table NAME, or files with --customers/--jobs/--sites"
        )
    if (args.table or args.query) and not args.source:
        raise InputError("--table and --query read from PostgreSQL: give its postgresql:// address")
    mapping = _parse_mapping(args.map)
    with open_store(args.db) as store:
        summaries = []
        if args.customers or args.sites or args.jobs:
            summaries += import_register(
                store,
                customers=args.customers,
                sites=args.sites,
                jobs=args.jobs,
                mapping=mapping,
                update=args.update,
                progress=_progress,
            )
        if args.source:
            summaries += import_postgres(
                store,
                args.source,
                table=args.table,
                query=args.query,
                mapping=mapping,
                update=args.update,
                progress=_progress,
            )
        if not summaries:
            raise InputError(
                "nothing to import: give --customers FILE, --jobs FILE_OR_FOLDER, --sites FILE "
                "or a postgresql:// address with --table"
            )
        for s in summaries:
            _print_reports(s)
        for s in summaries:
            print(s)
        print(f"register: {store.path}")
    return 0


def _parse_mapping(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    out = {}
    for item in items:
        key, sep, column = item.partition("=")
        if not sep or not key.strip() or not column.strip():
            raise InputError(f"--map expects FIELD=COLUMN such as date=Datum, got {item!r}")
        out[key.strip()] = column.strip()
    return out


def _cmd_status(args: argparse.Namespace) -> int:
    with open_store(args.db, read_only=True) as store:
        print(store.status())
    return 0


def _cmd_plans(args: argparse.Namespace) -> int:
    with open_store(args.db, read_only=True) as store:
        if args.customer:
            history = store.customer_history(args.customer)
            if history.empty:
                print(f"customer {args.customer} is in no saved plan and has no jobs")
                return 0
            plans = history[history["source"] == "plan"]
            jobs = history[history["source"] == "jobs"]
            for _, r in plans.iterrows():
                print(
                    f"plan {int(r['plan_id'])} ({r['name']}, saved {r['saved_at']:%Y-%m-%d}): "
                    f"assigned to {r['site_id']} ({r['travel_min']:.1f} min)"
                )
            for _, r in jobs.iterrows():
                site = r["site_id"] or "(no served_by)"
                print(f"{int(r['year'])}: {int(r['jobs'])} jobs served by {site}")
            return 0
        plans = store.plans()
        if plans.empty:
            print("no saved plans yet; save one with `planner run --save`")
            return 0
        print(plans.to_string(index=False, float_format=lambda x: f"{x:,.2f}"))
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    with open_store(args.db, read_only=True) as store:
        paths = store.export(args.out, overwrite=args.overwrite)
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0


def add_register_parser(sub: Any) -> None:
    """Add ``planner register ...`` to the subparsers ``sub`` of the main parser."""
    reg = sub.add_parser(
        "register", help="the register database: import, status, saved plans, export"
    )
    rsub = reg.add_subparsers(dest="register_command", required=True)

    imp = rsub.add_parser(
        "import",
        help="validate customer, site and job files (or a PostgreSQL table) and append what is "
        "new to the register (one transaction)",
    )
    imp.add_argument(
        "source",
        nargs="?",
        help="postgresql://USER@HOST/DB to read jobs from (with --table or --query)",
    )
    imp.add_argument("--customers", help="customer register file (CSV/XLSX/GeoJSON/Parquet)")
    imp.add_argument(
        "--jobs", help="job history file, or a folder of monthly CSV/Parquet/XLSX exports"
    )
    imp.add_argument("--sites", help="site file (CSV/XLSX)")
    imp.add_argument("--table", help="PostgreSQL table (or schema.table) of jobs")
    imp.add_argument("--query", help='PostgreSQL query returning the jobs, "SELECT ..."')
    imp.add_argument(
        "--map",
        action="append",
        help="job column of a field the detection misses, FIELD=COLUMN (e.g. date=Datum)",
    )
    imp.add_argument(
        "--update",
        action="store_true",
        help="replace stored rows whose values changed (default: keep them and report)",
    )
    imp.add_argument("--db", help=DB_HELP)
    imp.set_defaults(func=_cmd_import)

    sta = rsub.add_parser("status", help="what the register holds: rows, dates, last import")
    sta.add_argument("--db", help=DB_HELP)
    sta.set_defaults(func=_cmd_status)

    pla = rsub.add_parser(
        "plans", help="saved plans; with --customer, where that customer was served"
    )
    pla.add_argument("--customer", help="customer id: its site in each plan and per year")
    pla.add_argument("--db", help=DB_HELP)
    pla.set_defaults(func=_cmd_plans)

    exp = rsub.add_parser("export", help="write every register table as Parquet")
    exp.add_argument("--out", required=True, help="output folder")
    exp.add_argument("--overwrite", action="store_true", help="replace existing files")
    exp.add_argument("--db", help=DB_HELP)
    exp.set_defaults(func=_cmd_export)


@contextlib.contextmanager
def register_inputs(
    jobs_path: str | None,
    customers_path: str | None,
    db: str | None,
    *,
    warn: Callable[[list[str]], None],
) -> Any:
    """Yield ``(customers, jobs, store)`` for a register command.

    With a jobs file: the customer file (required) and the file's valid jobs, validated as
    ever (problem rows warned about); ``store`` None. Without one: the stored register at
    ``db`` (customers from ``customers_path`` when given, else stored) and the store itself.
    """
    if jobs_path is not None:
        if customers_path is None:
            raise InputError(
                "a jobs file needs its customer register: pass --customers FILE (or import "
                "both into the register and leave the jobs file out)"
            )
        register = read_register(customers_path)
        if register.report.fatal:
            raise InputError(str(register.report), file=customers_path)
        table = read_jobs(jobs_path, customer_ids=register.frame["customer_id"])
        if table.report.fatal:
            raise InputError(str(table.report), file=jobs_path)
        for report, path in ((register.report, customers_path), (table.report, jobs_path)):
            if len(report.error_rows):
                warn(
                    [
                        f"{len(report.error_rows):,} rows of {path} have problems and were left "
                        f"out; run `planner validate {path}` or see the report: "
                        f"{report.summary()}"
                    ]
                )
        yield register.valid, table.valid, None
        return
    db_path = Path(db) if db else default_db_path()
    store = RegisterStore.open(db_path, read_only=True)
    try:
        if not store.count("jobs"):
            raise InputError(
                "the register has no jobs; pass a jobs file, or import the history with "
                "`planner register import --jobs FILE_OR_FOLDER`",
                file=db_path,
            )
        if customers_path is not None:
            register = read_register(customers_path)
            if register.report.fatal:
                raise InputError(str(register.report), file=customers_path)
            customers = register.valid
        else:
            customers = store.customers()
        yield customers, store, store
    finally:
        store.close()


def previous_from_store(store: RegisterStore | None, db: str | None) -> pd.DataFrame | None:
    """The last saved plan's assignments (``--previous`` of ``planner phases`` with a register),
    or None when the register has no saved plan."""
    if store is None:
        if not db:
            return None
        with open_store(db, read_only=True) as opened:
            return previous_from_store(opened, None)
    if not store.count("plans"):
        return None
    return store.plan_assignments()[["customer_id", "site_id"]]
