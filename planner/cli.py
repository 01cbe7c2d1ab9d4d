"""Command line interface: ``planner run``, ``planner validate``, ``planner compare``.

A thin client of the library: it parses arguments into a
:class:`~planner.engine.ScenarioSpec`, calls the engine (:func:`planner.engine.run`,
:func:`planner.engine.compare`) and writes files. Progress goes to stderr, results to files,
errors to stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from planner._meta import OSM_CREDIT, __version__
from planner.engine import (
    LAYOUTS,
    ScenarioSpec,
    compare,
    k_curve,
    load_scenario,
    prepare_scenario,
    robustness,
    run,
)
from planner.engine.instance import load_graph
from planner.errors import InputError, PlannerError
from planner.inputs.customers import geocode_missing, read_customers
from planner.inputs.sites import region_features
from planner.inputs.validate import validate_file
from planner.models import Solution
from planner.outputs import export, maps
from planner.outputs.safe import to_csv_bytes
from planner.settings import DEFAULT_REGION, DEFAULT_TIME_LIMIT_S, DEFAULT_WORKSHOPS

logger = logging.getLogger(__name__)

CRS_HELP = "CRS of x/y columns in the files, e.g. EPSG:32633 (lat/lon files need none)"


def _progress(message: str, fraction: float) -> None:
    print(f"[{100 * fraction:3.0f}%] {message}", file=sys.stderr, flush=True)


def _check_outputs(paths: Sequence[Path], *, overwrite: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(
            f"{', '.join(existing)} already exist(s); choose another --out folder or pass "
            "--overwrite to replace them"
        )


def _spec_from_args(args: argparse.Namespace, *, scenario: str | None) -> ScenarioSpec:
    """The spec a command line asks for: the scenario file (or the defaults), then the flags."""
    spec = load_scenario(scenario) if scenario else ScenarioSpec()
    changes: dict[str, Any] = {}
    if args.region:
        changes["region"] = args.region
    if args.workshops is not None:
        changes["workshops"] = _parse_workshops(args.workshops)
    for key, value in (
        ("customers", args.customers),
        ("sites", args.sites),
        ("time_limit_s", args.time_limit),
        ("crs", args.crs),
    ):
        if value is not None:
            changes[key] = Path(value) if key in ("customers", "sites") else value
    if not scenario:
        region = changes.get("region", spec.region)
        changes["name"] = f"{Path(str(region)).name} {spec.layout}"
    return spec.replace(**changes) if changes else spec


def _parse_workshops(value: str | int) -> int | None:
    if isinstance(value, int):
        return value
    if value.strip().lower() == "auto":
        return None
    try:
        return int(value)
    except ValueError:
        raise InputError(
            f"--workshops must be a positive whole number or 'auto', got {value!r}",
            field="workshops",
        ) from None


def _print_warnings(warnings: Sequence[str]) -> None:
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)


def _status(sol: Solution) -> str:
    if sol.optimal:
        return "proven optimal"
    return f"{sol.status}, not proven: gap {sol.gap:.2%} to lower bound"


def _check_demo_customers(spec: ScenarioSpec) -> None:
    """A road file without buildings has no demo customers: say so before any work."""
    if spec.customers is None and Path(str(spec.region)).suffix:
        region_features(
            spec.region,
            fix="pass your customers with --customers FILE (CSV/XLSX with id, lat, lon)",
        )


def _cmd_run(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args, scenario=args.scenario)
    out = Path(args.out)
    _check_outputs(list(export.layout_outputs(out).values()), overwrite=args.overwrite)
    _check_demo_customers(spec)
    lr = run(spec, progress=_progress)
    files = export.write_layout_bundle(
        lr, out, roads=maps.main_roads(load_graph(spec)), overwrite=args.overwrite
    )
    _print_warnings(lr.warnings)
    k = lr.kpis
    sol = lr.result.solution
    print(f"{sol.model} with {sol.solver}: {_status(sol)}")
    print(
        f"{spec.name}: {spec.layout}, {int(k['sites'])} sites, mean {k['mean_travel_min']:.1f} "
        f"min, p90 {k['p90_travel_min']:.1f} min, max {k['max_travel_min']:.1f} min, within "
        f"standard {k['share_within_sla']:.1%}, annual cost {lr.costs.total_eur:,.0f} EUR "
        f"({lr.costs.cost_per_job_eur:,.0f} per job); "
        f"wrote {', '.join(str(f) for f in files.values())}"
    )
    print(f"Road data {OSM_CREDIT} (ODbL)")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    report = validate_file(args.file, region=args.region, crs=args.crs)
    print(report)
    return int(report.exit_code)


def _parse_growth(items: Sequence[str] | None) -> dict[str, float]:
    growth: dict[str, float] = {}
    for item in items or []:
        segment, sep, value = item.partition("=")
        value = value.strip()
        problem = (
            f"--growth expects SEGMENT=RATE such as business=0.3 or business=30%, got {item!r}"
        )
        if not sep or not segment.strip():
            raise InputError(problem)
        try:
            rate = float(value.rstrip("%")) / (100.0 if value.endswith("%") else 1.0)
        except ValueError:
            raise InputError(problem) from None
        growth[segment.strip()] = rate
    return growth


def _cmd_compare(args: argparse.Namespace) -> int:
    layouts = [x.strip() for x in args.layouts.split(",")] if args.layouts else list(LAYOUTS)
    unknown = sorted(set(layouts) - set(LAYOUTS))
    if unknown:
        raise InputError(f"unknown layout(s) {unknown}; allowed: {list(LAYOUTS)}")
    spec = _spec_from_args(args, scenario=args.scenario)
    if not args.scenario:
        spec = spec.replace(name=f"{Path(str(spec.region)).name} comparison")
    out = Path(args.out)
    planned = list(export.comparison_outputs(out, layouts).values())
    if args.k_max:
        planned.append(out / "k_curve.csv")
    if args.robustness:
        planned += [out / "robustness_cases.csv", out / "robustness_sites.csv"]
    _check_outputs(planned, overwrite=args.overwrite)
    _check_demo_customers(spec)
    sinst = prepare_scenario(spec, layouts=layouts, progress=_progress)
    comp = compare(spec, layouts=layouts, sinst=sinst, progress=_progress)
    curve = None
    rob = None
    if args.k_max:
        curve = k_curve(sinst, args.k_max, layout=layouts[0], progress=_progress)
    if args.robustness:
        rob = robustness(
            sinst,
            layout=layouts[0],
            growth=_parse_growth(args.growth) or None,
            slowdown=args.slowdown,
            progress=_progress,
        )
    written = export.write_comparison_bundle(
        comp,
        out,
        roads=maps.main_roads(sinst.graph),
        overwrite=args.overwrite,
        k_curve=curve,
        robustness=rob,
    )
    files = list(written.values())
    if curve is not None:
        (out / "k_curve.csv").write_bytes(to_csv_bytes(curve))
        files.append(out / "k_curve.csv")
    if rob is not None:
        (out / "robustness_cases.csv").write_bytes(to_csv_bytes(rob.cases))
        (out / "robustness_sites.csv").write_bytes(to_csv_bytes(rob.sites))
        files += [out / "robustness_cases.csv", out / "robustness_sites.csv"]
        print(f"sites chosen in every case: {', '.join(rob.stable_sites) or 'none'}")
    _print_warnings(sinst.warnings)
    for layout, lr in comp.results.items():
        sol = lr.result.solution
        print(f"{layout}: {sol.model} with {sol.solver}: {_status(sol)}")
    print(
        comp.table[["layout", "sites", "mean_travel_min", "annual_cost", "cost_per_job"]].to_string(
            index=False, float_format=lambda x: f"{x:,.1f}"
        )
    )
    print(f"wrote {', '.join(str(f) for f in files)}")
    print(f"Road data {OSM_CREDIT} (ODbL)")
    return 0


def _cmd_geocode(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _check_outputs([out], overwrite=args.overwrite)
    table = read_customers(args.file)
    if table.report.fatal:
        print(table.report)
        return 2
    frame = geocode_missing(table.frame, online=True)
    columns = ["customer_id", "name", "address", "lat", "lon", "weight", "segment"]
    found = int(frame["geocoded"].sum())
    frame[columns].rename(columns={"customer_id": "id"}).to_csv(out, index=False)
    print(f"geocoded {found} addresses with Nominatim (© OpenStreetMap contributors); wrote {out}")
    return 0


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
        help="bundled region (malta, liechtenstein, andorra) or a road file (.osm, .osm.pbf, "
        f".graphml); default: {DEFAULT_REGION}, or the scenario's region",
    )
    run.add_argument(
        "--workshops",
        help=f"number of workshops, or 'auto' (default: {DEFAULT_WORKSHOPS}, or the scenario's)",
    )
    run.add_argument("--customers", help="customer file (CSV/XLSX/GeoJSON/GPKG/Parquet)")
    run.add_argument("--sites", help="candidate site file (CSV/XLSX)")
    run.add_argument("--crs", help=CRS_HELP)
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument(
        "--time-limit",
        type=float,
        help=f"solver seconds per solve (default {DEFAULT_TIME_LIMIT_S:g})",
    )
    run.add_argument("--overwrite", action="store_true", help="replace existing output files")
    run.add_argument(
        "scenario",
        nargs="?",
        help="scenario TOML file (see examples/); it decides region, customers, sites, layout "
        "and costs, and flags given as well override it",
    )
    run.set_defaults(func=_cmd_run)

    val = sub.add_parser("validate", help="check a customer or site file and report problems")
    val.add_argument("file", help="customer or site file")
    val.add_argument("--region", help="region name or road file to check locations against")
    val.add_argument("--crs", help=CRS_HELP)
    val.set_defaults(func=_cmd_validate)

    geo = sub.add_parser(
        "geocode",
        help="fill in coordinates of customers that only have an address (online, Nominatim)",
    )
    geo.add_argument("file", help="customer file with an address column")
    geo.add_argument("--out", required=True, help="CSV file to write, with lat/lon filled in")
    geo.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    geo.set_defaults(func=_cmd_geocode)

    cmp_ = sub.add_parser(
        "compare", help="compare the in-house, outsourced and two-tier layouts on the same data"
    )
    cmp_.add_argument("--scenario", help="scenario TOML to start from (costs, standards...)")
    cmp_.add_argument(
        "--region",
        help=f"bundled region or road file (default: {DEFAULT_REGION}, or the scenario's region)",
    )
    cmp_.add_argument(
        "--workshops", help=f"workshops per layout, or 'auto' (default: {DEFAULT_WORKSHOPS})"
    )
    cmp_.add_argument("--customers", help="customer file (CSV/XLSX/GeoJSON/GPKG/Parquet)")
    cmp_.add_argument("--sites", help="site file with kind workshop/partner/office")
    cmp_.add_argument("--crs", help=CRS_HELP)
    cmp_.add_argument("--layouts", help="comma-separated subset of in-house,outsourced,two-tier")
    cmp_.add_argument("--out", required=True, help="output folder")
    cmp_.add_argument("--time-limit", type=float, help="solver seconds per solve")
    cmp_.add_argument("--k-max", type=int, help="also write k_curve.csv for 1..K workshops")
    cmp_.add_argument(
        "--robustness", action="store_true", help="also re-solve with demand growth / slower roads"
    )
    cmp_.add_argument(
        "--growth", action="append", help="demand growth SEGMENT=RATE, e.g. business=0.3"
    )
    cmp_.add_argument(
        "--slowdown", type=float, default=1.3, help="main-road travel-time factor (default 1.3)"
    )
    cmp_.add_argument("--overwrite", action="store_true", help="replace existing output files")
    cmp_.set_defaults(func=_cmd_compare)
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
