"""Command line interface: ``planner run``, ``planner validate``, ``planner compare``.

A thin client of the library: it parses arguments, calls :mod:`planner.pipeline` (and friends)
and writes files. Progress goes to stderr, results to files, errors to stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from planner import OSM_CREDIT, __version__
from planner.errors import PlannerError

logger = logging.getLogger(__name__)


def _progress(message: str, fraction: float) -> None:
    print(f"[{100 * fraction:3.0f}%] {message}", file=sys.stderr, flush=True)


def _check_outputs(paths: Sequence[Path], *, overwrite: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} already exist(s); choose another --out folder or pass "
            "--overwrite to replace them"
        )


def _cmd_run(args: argparse.Namespace) -> int:
    from planner import maps
    from planner.pipeline import plan_workshops

    out = Path(args.out)
    files = [out / "shortlist.csv", out / "assignments.csv", out / "map.html"]
    _check_outputs(files, overwrite=args.overwrite)
    result = plan_workshops(
        args.region,
        args.workshops,
        customers=args.customers,
        sites=args.sites,
        time_limit=args.time_limit,
        progress=_progress,
    )
    out.mkdir(parents=True, exist_ok=True)
    result.shortlist().to_csv(files[0], index=False)
    result.assignments().to_csv(files[1], index=False)
    maps.save_map(maps.result_map(result), files[2])
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    sol = result.solution
    status = "proven optimal" if sol.optimal else f"gap {sol.gap:.2%} to lower bound"
    k = result.kpis
    print(
        f"{len(result.sites)} sites, mean {k['mean_travel_min']:.1f} min, "
        f"p90 {k['p90_travel_min']:.1f} min, max {k['max_travel_min']:.1f} min "
        f"({status}, {sol.solver}); wrote {', '.join(str(f) for f in files)}"
    )
    print(f"Road data {OSM_CREDIT} (ODbL)")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from planner.validation import validate_file

    report = validate_file(args.file, region=args.region)
    print(report)
    return int(report.exit_code)


def build_parser() -> argparse.ArgumentParser:
    """The ``planner`` argument parser (exposed for docs and tests)."""
    parser = argparse.ArgumentParser(
        prog="planner",
        description="Place service workshops on the real road network (OpenStreetMap).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="propose workshop sites and write a shortlist, map, etc.")
    run.add_argument(
        "--region",
        default="malta",
        help="bundled region (malta, liechtenstein, andorra) or a road file (.osm, .osm.pbf, "
        ".graphml); default: malta",
    )
    run.add_argument("--workshops", type=int, default=5, help="number of workshops (default 5)")
    run.add_argument("--customers", help="customer file (CSV/XLSX/GeoJSON/GPKG/Parquet)")
    run.add_argument("--sites", help="candidate site file (CSV/XLSX)")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--time-limit", type=float, default=60.0, help="solver seconds (default 60)")
    run.add_argument("--overwrite", action="store_true", help="replace existing output files")
    run.set_defaults(func=_cmd_run)

    val = sub.add_parser("validate", help="check a customer or site file and report problems")
    val.add_argument("file", help="customer or site file")
    val.add_argument("--region", help="region name or road file to check locations against")
    val.set_defaults(func=_cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (PlannerError, FileExistsError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
