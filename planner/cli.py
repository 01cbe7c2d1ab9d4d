"""Command line interface: ``planner run|validate|compare|geocode|trends|phases|economics``,
``planner regions``, ``planner calibrate`` and ``planner register ...``.

A thin client of the library: it parses arguments into a
:class:`~planner.engine.ScenarioSpec`, calls the engine (:func:`planner.engine.run`,
:func:`planner.engine.compare`) and writes files. Progress goes to stderr, results to files,
errors to stderr with exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner._meta import OSM_CREDIT, __version__
from planner.cli_register import (
    DB_HELP,
    add_register_parser,
    previous_from_store,
    register_inputs,
)
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
from planner.engine.market import calibrate_history
from planner.engine.phases import plan_phases
from planner.engine.regions import customers_elsewhere, region_road_source
from planner.engine.spec import save_scenario
from planner.errors import InputError, PlannerError
from planner.hosting import serve as hosting_serve
from planner.inputs.customers import geocode_missing, read_customers
from planner.inputs.sites import (
    DEFAULT_PRODUCT_CLASS,
    PRODUCT_CLASSES,
    read_sites,
    region_features,
)
from planner.inputs.tables import read_table
from planner.inputs.validate import validate_file
from planner.models import Solution
from planner.outputs import export, maps, road_layer
from planner.outputs.safe import to_csv_bytes
from planner.register import (
    area_trends,
    complaint_flags,
    customer_economics,
    exclude_sites,
    forecast_jobs,
    segment_economics,
    segment_trends,
    site_economics,
)
from planner.register.calibration import calibration_plot
from planner.register.store import open_store
from planner.register.trends import PERIODS, segment_counts
from planner.register.trends_map import trends_map
from planner.results.market import DECAY_FORMS, OBJECTIVES
from planner.roads.catalog import (
    format_size,
    list_regions,
    load_catalog,
    regions_dir,
    resolve_region,
)
from planner.roads.download import DownloadProgress, download_region
from planner.routing.parallel import Backend
from planner.settings import (
    DEFAULT_MARGIN_KM,
    DEFAULT_REGION,
    DEFAULT_TIME_LIMIT_S,
    DEFAULT_WORKSHOPS,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

CRS_HELP = "CRS of x/y columns in the files, e.g. EPSG:32633 (lat/lon files need none)"


def _progress(message: str, fraction: float) -> None:
    print(f"[{100 * fraction:3.0f}%] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stop_on_ctrl_c() -> Iterator[Callable[[], bool]]:
    """During a solve, a first Ctrl-C ends it with the best answer so far (which is written
    with its gap); a second one aborts as usual. Yields the ``should_stop`` callback."""
    stop = threading.Event()

    def on_sigint(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            "Stopping: keeping the best answer found so far (press Ctrl-C again to abort)",
            file=sys.stderr,
            flush=True,
        )

    if threading.current_thread() is not threading.main_thread():  # signals: main thread only
        yield stop.is_set
        return
    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield stop.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


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
    # a catalog id from the flag or the scenario file becomes its extract (downloaded once)
    region = args.region or (str(spec.region) if scenario else None)
    if region:
        source = region_road_source(region, progress=_download_progress)
        if args.region or source != region:
            changes["region"] = source
    if getattr(args, "bbox", None):
        changes["bbox"] = args.bbox
    if getattr(args, "margin_km", None) is not None:
        changes["margin_km"] = args.margin_km if args.margin_km > 0 else None
    if args.workshops is not None:
        changes["workshops"] = _parse_workshops(args.workshops)
    if getattr(args, "budget", None) is not None:
        changes["budget_per_year"] = args.budget
    if getattr(args, "meet_standard", False):
        changes["meet_standard"] = True
    if getattr(args, "product_class", None) is not None:
        changes["product_class"] = args.product_class
    changes.update(_market_changes(args, spec))
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


def _market_changes(args: argparse.Namespace, spec: ScenarioSpec) -> dict[str, Any]:
    """--objective, --target-share, --decay, --decay-parameter as spec changes."""
    changes: dict[str, Any] = {}
    if getattr(args, "objective", None) is not None:
        changes["objective"] = args.objective
    if getattr(args, "target_share", None) is not None:
        changes["target_share"] = args.target_share
    form = getattr(args, "decay", None)
    param = getattr(args, "decay_parameter", None)
    if form is not None or param is not None:
        model = spec.demand_model
        new_form = form or model.form
        if param is not None:  # typed in
            value, source = param, "typed"
        elif new_form != model.form:  # another form: its literature default
            value, source = None, "default"
        else:
            value, source = model.parameter, model.source
        changes["demand_model"] = dataclasses.replace(
            model, form=new_form, parameter=value, source=source, interval=None, details=None
        )
    return changes


def _cmd_calibrate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    names = ["calibration.csv", "calibration.png", "calibration_customers.csv", "scenario.toml"]
    _check_outputs([out / n for n in names], overwrite=args.overwrite)
    spec = load_scenario(args.scenario) if args.scenario else ScenarioSpec()
    changes: dict[str, Any] = {"sites": Path(args.sites)}
    if args.customers:
        changes["customers"] = Path(args.customers)
    if args.region:
        changes["region"] = args.region
    if args.product_class:
        changes["product_class"] = args.product_class
    if args.crs:
        changes["crs"] = args.crs
    spec = spec.replace(**changes)
    site_table = read_sites(args.sites, crs=spec.crs)
    if site_table.report.fatal:
        raise InputError(str(site_table.report), file=args.sites)
    # a jobs file (with --customers), or the stored register (--db, default the workspace's)
    with register_inputs(args.jobs, args.customers, args.db, warn=_print_warnings) as (
        customers,
        jobs,
        _,
    ):
        fit = calibrate_history(
            spec,
            customers,
            jobs,
            site_table.valid,
            form=args.decay,
            as_of=args.as_of,
            progress=_progress,
        )
    out.mkdir(parents=True, exist_ok=True)
    fit.summary().to_csv(out / "calibration.csv", index=False)
    fit.data.to_csv(out / "calibration_customers.csv", index=False)
    (out / "calibration.png").write_bytes(calibration_plot(fit))
    objective = spec.objective if spec.objective != "min_travel" else "max_capture"
    save_scenario(
        spec.replace(demand_model=fit.model, objective=objective),
        out / "scenario.toml",
        overwrite=args.overwrite,
    )
    print(f"fitted: {fit.model.describe()}")
    d = fit.model.details or {}
    print(
        f"from {d.get('jobs', 0):,} jobs of {d.get('customers', 0):,} customers; "
        f"potential {fit.estimates['potential_jobs_per_year']:.2f} jobs per customer and year"
        + ("" if fit.attractiveness_fitted else "; our attractiveness held at 1 (no competitors)")
    )
    print(f"wrote {', '.join(str(out / n) for n in names)}")
    return 0


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
    side = "upper" if sol.upper_bound is not None else "lower"
    return f"{sol.status}, not proven: gap {sol.gap:.2%} to {side} bound"


def _use_backend(args: argparse.Namespace) -> None:
    """--scheduler/--workers: the matrix chunks and sweeps of this process run on Dask.

    The library reads ``$PLANNER_SCHEDULER``/``$PLANNER_WORKERS`` at call time
    (:func:`planner.routing.parallel.backend_from_settings`); this command-line process is the
    only user of its environment, so the flags set them.
    """
    backend = Backend(scheduler=args.scheduler, workers=args.workers or 0)
    if backend.scheduler is not None:
        os.environ["PLANNER_SCHEDULER"] = backend.scheduler
    if backend.workers:
        os.environ["PLANNER_WORKERS"] = str(backend.workers)
    if backend.uses_dask:
        _progress(f"Travel-time matrices and sweeps run on a {backend.describe()}", 0.0)


def _check_demo_customers(spec: ScenarioSpec) -> None:
    """A road file without buildings has no demo customers: say so before any work."""
    if spec.customers is None and Path(str(spec.region)).suffix:
        region_features(
            spec.region,
            fix="pass your customers with --customers FILE (CSV/XLSX with id, lat, lon)",
        )


def _download_progress(p: DownloadProgress) -> None:
    _progress(p.message(), p.fraction)


def _check_customers_region(spec: ScenarioSpec) -> None:
    """Customers that lie in another region: an error naming the catalog region that holds
    them (before any road is loaded)."""
    if spec.customers is None or spec.bbox is not None:
        return
    table = read_customers(spec.customers, crs=spec.crs)
    if table.report.fatal or table.valid.empty:
        return  # the run reports the file's problems
    valid = table.valid
    away = customers_elsewhere(spec.region, valid["lon"], valid["lat"], with_size=False)
    if away is not None:
        raise InputError(away.cli_message(str(spec.customers)))


def _print_kept(graph: Any) -> None:
    kept = graph.graph.get("planner_report", {}).get("kept")
    if kept:
        print(f"Kept the {kept}")


def _cmd_run(args: argparse.Namespace) -> int:
    _use_backend(args)
    spec = _spec_from_args(args, scenario=args.scenario)
    out = Path(args.out)
    _check_outputs(list(export.layout_outputs(out).values()), overwrite=args.overwrite)
    _check_demo_customers(spec)
    _check_customers_region(spec)
    sinst = prepare_scenario(spec, progress=_progress)
    _print_kept(sinst.graph)
    with _stop_on_ctrl_c() as should_stop:
        lr = run(spec, sinst=sinst, progress=_progress, should_stop=should_stop)
    files = export.write_layout_bundle(
        lr, out, roads=road_layer.map_roads(sinst.graph), overwrite=args.overwrite
    )
    _print_warnings(lr.warnings)
    if args.save:
        with open_store(args.db) as store:
            plan_id = store.save_plan(lr, name=spec.name, region=str(spec.region))
        print(f"saved as plan {plan_id} in the register {store.path}")
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
    if lr.market is not None:
        m = lr.market.kpis
        print(
            f"customers won ({spec.objective}): {m['jobs_won']:,.0f} of {m['jobs_total']:,.0f} "
            f"jobs a year (expected share {m['expected_share']:.1%}), "
            f"{m['jobs_lost_to_competitors']:,.0f} lost to {int(m['competitors'])} competitors, "
            f"profit {m['profit_eur']:,.0f} EUR; {lr.market.model.describe()}"
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
    _use_backend(args)
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
    _check_customers_region(spec)
    sinst = prepare_scenario(spec, layouts=layouts, progress=_progress)
    _print_kept(sinst.graph)
    with _stop_on_ctrl_c() as should_stop:
        comp = compare(
            spec, layouts=layouts, sinst=sinst, progress=_progress, should_stop=should_stop
        )
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
        roads=road_layer.map_roads(sinst.graph),
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
        _print_warnings([f"{layout}: {w}" for w in lr.warnings if w not in sinst.warnings])
        sol = lr.result.solution
        print(f"{layout}: {sol.model} with {sol.solver}: {_status(sol)}")
    print(_comparison_summary(comp.table))
    print(f"wrote {', '.join(str(f) for f in files)}")
    print(f"Road data {OSM_CREDIT} (ODbL)")
    return 0


#: The comparison's columns printed by ``planner compare`` (the market ones when solved so).
COMPARE_SUMMARY = (
    "layout",
    "sites",
    "mean_travel_min",
    "annual_cost",
    "cost_per_job",
    "jobs_won",
    "expected_share",
    "profit_eur",
)


def _comparison_summary(table: pd.DataFrame) -> str:
    """The comparison table as ``planner compare`` prints it: drive times and costs, and under
    the market model the jobs won, the expected share and the profit."""
    shown = table[[c for c in COMPARE_SUMMARY if c in table.columns]].copy()
    if "expected_share" in shown:
        shown["expected_share"] = shown["expected_share"].map(lambda x: f"{x:.1%}")
    return shown.to_string(index=False, float_format=lambda x: f"{x:,.1f}")


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


def _cmd_trends(args: argparse.Namespace) -> int:
    out = Path(args.out)
    names = (
        "segment_trends.csv",
        "area_trends.csv",
        "forecast.csv",
        "trends.html",
        "segment_counts.csv",
    )
    _check_outputs([out / n for n in names], overwrite=args.overwrite)
    with register_inputs(args.jobs, args.customers, args.db, warn=_print_warnings) as (
        customers,
        valid,
        _,
    ):
        seg = segment_trends(valid, customers, as_of=args.as_of)
        area = area_trends(valid, customers, h3_resolution=args.h3_resolution, as_of=args.as_of)
        forecast = forecast_jobs(
            valid,
            customers,
            years=args.years,
            as_of=args.as_of,
            h3_resolution=args.h3_resolution,
            trends=(seg, area),
        )
        counts = segment_counts(valid, customers, period=args.period, as_of=args.as_of)
    out.mkdir(parents=True, exist_ok=True)
    seg.to_csv(out / "segment_trends.csv", index=False)
    area.to_csv(out / "area_trends.csv", index=False)
    forecast.to_csv(out / "forecast.csv", index=False)
    maps.save_map(trends_map(area), out / "trends.html")
    counts.to_csv(out / "segment_counts.csv", index=False)
    print(
        seg[["segment", "growth_per_year", "low", "high", "trend", "jobs_last_12m"]].to_string(
            index=False, float_format=lambda x: f"{x:+.1%}"
        )
    )
    flagged = area[area["trend"] != "stable"]
    print(f"{len(flagged)} of {len(area)} area/segment groups flagged rising or falling")
    print(f"wrote {', '.join(str(out / n) for n in names)}")
    return 0


def _parse_per_year(value: str, *, what: str) -> list[float]:
    try:
        items = [float(x) for x in value.replace(";", ",").split(",") if x.strip()]
    except ValueError:
        raise InputError(
            f"{what} expects one number per year separated by commas, e.g. 3,4,5; got {value!r}"
        ) from None
    if not items:
        raise InputError(f"{what} expects one number per year, e.g. 3,4,5")
    return items


def _read_previous(path: str) -> Any:
    """A previous plan's assignments: a table with customer_id and site_id columns."""
    frame = read_table(path)
    missing = [c for c in ("customer_id", "site_id") if c not in frame.columns]
    if missing:
        raise InputError(
            f"--previous needs columns customer_id and site_id; missing {missing}", file=path
        )
    return frame.dropna(subset=["customer_id", "site_id"])


def _cmd_phases(args: argparse.Namespace) -> int:
    if (args.workshops is None) == (args.budget is None):
        raise InputError("give --workshops 3,4,5 (one number per year) or --budget, not both")
    spec = _spec_from_args(
        argparse.Namespace(
            region=args.region,
            workshops=None,
            customers=args.customers,
            sites=args.sites,
            time_limit=args.time_limit,
            crs=args.crs,
        ),
        scenario=args.scenario,
    )
    out = Path(args.out)
    names = ("phases.csv", "moves.csv", "phases_summary.csv")
    _check_outputs([out / n for n in names], overwrite=args.overwrite)
    workshops = (
        [int(k) for k in _parse_per_year(args.workshops, what="--workshops")]
        if args.workshops is not None
        else None
    )
    budget = _parse_per_year(args.budget, what="--budget") if args.budget is not None else None
    with register_inputs(args.jobs, args.customers, args.db, warn=_print_warnings) as (
        customers,
        jobs,
        store,
    ):
        if args.previous:
            previous = _read_previous(args.previous)
        else:  # with a register: keep the customers where the last saved plan put them
            previous = previous_from_store(store, args.db)
            if previous is not None:
                print(
                    f"keeping the {len(previous):,} assignments of the last saved plan "
                    "(pass --previous FILE for others)",
                    file=sys.stderr,
                )
        plan = plan_phases(
            spec,
            workshops,
            jobs=jobs,
            customers=customers,
            budget_per_year_eur=budget,
            as_of=args.as_of,
            min_gain_min=args.min_gain,
            previous_assignment=previous,
            progress=_progress,
        )
    out.mkdir(parents=True, exist_ok=True)
    plan.phases.to_csv(out / "phases.csv", index=False)
    plan.moves.to_csv(out / "moves.csv", index=False)
    plan.summary.to_csv(out / "phases_summary.csv", index=False)
    _print_warnings(plan.warnings)
    sol = plan.solution
    status = "proven optimal" if sol.optimal else f"{sol.status}, gap {sol.gap:.2%} to lower bound"
    print(f"multi-period p-median with {sol.solver}: {status}")
    print(
        plan.summary[
            ["year", "workshops", "mean_travel_min", "objective", "objective_if_replanned", "moves"]
        ].to_string(index=False, float_format=lambda x: f"{x:,.1f}")
    )
    print(f"price of keeping sites open: {plan.price_of_consistency:+.2%} job-minutes")
    print(f"wrote {', '.join(str(out / n) for n in names)}")
    print(f"Road data {OSM_CREDIT} (ODbL)")
    return 0


def _cmd_economics(args: argparse.Namespace) -> int:
    spec = _spec_from_args(args, scenario=args.scenario)
    if args.layout:
        spec = spec.replace(layout=args.layout)
    out = Path(args.out)
    names = ["customer_economics.csv", "site_economics.csv", "segment_economics.csv"]
    if args.exclude_flagged:
        names.append("sites_without_flagged.csv")
    _check_outputs([out / n for n in names], overwrite=args.overwrite)
    with register_inputs(args.jobs, args.customers, args.db, warn=_print_warnings) as (
        customers,
        jobs,
        _,
    ):
        return _economics(args, spec, out, names, customers=customers, jobs=jobs)


def _economics(
    args: argparse.Namespace,
    spec: ScenarioSpec,
    out: Path,
    names: list[str],
    *,
    customers: Any,
    jobs: Any,
) -> int:
    sites_arg = None
    if args.exclude_flagged:
        if spec.sites is None:
            raise InputError(
                "--exclude-flagged needs a site file (--sites) whose partner ids match the "
                "served_by ids of the job history"
            )
        from_file = read_sites(spec.sites, crs=spec.crs)
        if from_file.report.fatal:
            raise InputError(str(from_file.report), file=spec.sites)
        flags = complaint_flags(jobs)
        flagged = flags.loc[flags["flagged"], "site_id"].tolist()
        sites_arg = exclude_sites(from_file.valid, flagged)
        print(f"partners flagged for complaints and excluded: {', '.join(flagged) or 'none'}")
    lr = run(spec, customers=customers, sites=sites_arg, progress=_progress)
    per_customer = customer_economics(jobs, lr, as_of=args.as_of)
    per_site = site_economics(per_customer, lr, jobs)
    out.mkdir(parents=True, exist_ok=True)
    per_customer.to_csv(out / "customer_economics.csv", index=False)
    per_site.to_csv(out / "site_economics.csv", index=False)
    segment_economics(per_customer).to_csv(out / "segment_economics.csv", index=False)
    if sites_arg is not None:
        sites_arg.drop(columns="geometry", errors="ignore").to_csv(
            out / "sites_without_flagged.csv", index=False
        )
    _print_warnings(lr.warnings)
    print(f"{lr.solution.model} with {lr.solution.solver}: {_status(lr.solution)}")
    flagged_sites = per_site.loc[per_site["flagged"], "site_id"].tolist()
    print(f"sites with complaint rates well above the rest: {', '.join(flagged_sites) or 'none'}")
    print(f"wrote {', '.join(str(out / n) for n in names)}")
    return 0


def _cmd_regions_list(args: argparse.Namespace) -> int:
    catalog = load_catalog(refresh=args.refresh)
    entries = list_regions(args.search, catalog=catalog)
    for entry in entries:
        size = format_size(entry.size_bytes) if entry.size_bytes else ""
        state = (
            entry.kind
            if entry.kind != "catalog"
            else ("downloaded" if entry.downloaded else "catalog")
        )
        print(f"{entry.id:<40} {entry.name:<32} {size:>9}  {state}")
    if catalog.note:
        print(catalog.note)
    elif catalog.fetched:
        print(f"Catalog of {catalog.server}, fetched {catalog.fetched[:10]}")
    if not entries:
        print(f"No region matches {args.search!r}")
    print(f"Downloads go to {regions_dir()}. Road data {OSM_CREDIT} (ODbL)")
    return 0


def _cmd_regions_download(args: argparse.Namespace) -> int:
    catalog = load_catalog()
    entry = resolve_region(args.id, catalog=catalog)
    already = entry.downloaded
    path = download_region(entry, progress=_download_progress, catalog=catalog)
    size = format_size(path.stat().st_size)
    print(f"{'already downloaded' if already else 'downloaded'}: {entry.id} -> {path} ({size})")
    print(f"Use it with: planner run --region {entry.id} --customers FILE --out DIR")
    print(f"Road data {OSM_CREDIT} (ODbL)")
    return 0


def _add_region_area_flags(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--bbox",
        help="keep only the roads in this box W,S,E,N (degrees), e.g. 21.0,37.5,24.5,39.9",
    )
    command.add_argument(
        "--margin-km",
        type=float,
        default=None,
        help="a road file or catalog region is trimmed to the customers' extent plus this "
        f"margin (default {DEFAULT_MARGIN_KM:g} km; 0: keep the whole file)",
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    plan = hosting_serve.plan_serve(
        host=args.host,
        port=args.port,
        no_auth=args.no_auth,
        auth_header=args.auth_header,
        secrets=args.secrets,
    )
    return hosting_serve.serve(plan)


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
        help="bundled region (malta, liechtenstein, andorra), a road file (.osm, .osm.pbf, "
        ".graphml) or a catalog region id (europe/greece; downloaded on first use, see "
        f"`planner regions list`); default: {DEFAULT_REGION}, or the scenario's region",
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
        "--save",
        action="store_true",
        help="also record the plan, its assignments and KPIs in the register (--db)",
    )
    run.add_argument("--db", help=DB_HELP)
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
        help="bundled region, road file or catalog region id (europe/greece) "
        f"(default: {DEFAULT_REGION}, or the scenario's region)",
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
    for command in (run, cmp_):
        _add_region_area_flags(command)
        command.add_argument(
            "--budget",
            type=float,
            help="plan within a budget: EUR per year the network may cost (fixed costs, "
            "partner fees, deliveries, lost margin); the number of workshops with the least "
            "customer travel that fits is chosen (instead of --workshops)",
        )
        command.add_argument(
            "--meet-standard",
            action="store_true",
            help="plan the fewest workshops from which every customer is within its service "
            "standard (the scenario's service_standard_min) instead of --workshops",
        )
        command.add_argument(
            "--product-class",
            choices=list(PRODUCT_CLASSES),
            help="repair businesses of this product class in OpenStreetMap are the partner "
            f"candidates (default: {DEFAULT_PRODUCT_CLASS}, or the scenario's)",
        )
        command.add_argument(
            "--objective",
            choices=list(OBJECTIVES),
            help="min_travel (default), or under the market model: max_capture (most "
            "customers won), target_share (fewest sites for --target-share), max_profit",
        )
        command.add_argument(
            "--target-share", type=float, help="share of all jobs (0-1) to win (target_share)"
        )
        command.add_argument(
            "--decay", choices=list(DECAY_FORMS), help="distance decay form of the market model"
        )
        command.add_argument(
            "--decay-parameter",
            type=float,
            help="lambda (power) or beta per minute (exponential); default: literature value",
        )
        command.add_argument(
            "--scheduler",
            help="Dask scheduler address (tcp://HOST:PORT): travel-time matrix chunks and sweep "
            "solves (K-curve, layouts, robustness) run there (needs the 'dask' extra)",
        )
        command.add_argument(
            "--workers",
            type=int,
            help="start a local Dask cluster of N worker processes for the matrices and "
            "sweeps (default: in this process, no Dask)",
        )

    trn = sub.add_parser(
        "trends", help="demand trends per segment and area from a job history, and a forecast"
    )
    trn.add_argument(
        "jobs",
        nargs="?",
        help="job history (CSV/XLSX/Parquet): job_id, customer_id, date...; default: the "
        "stored register",
    )
    trn.add_argument("--customers", help="customer register (customer file) of a jobs file")
    trn.add_argument("--db", help=DB_HELP)
    trn.add_argument("--out", required=True, help="output folder")
    trn.add_argument("--years", type=int, default=3, help="years to forecast, 1-5 (default 3)")
    trn.add_argument("--as-of", help="end of the history (YYYY-MM-DD; default: its last month)")
    trn.add_argument(
        "--h3-resolution", type=int, default=6, help="H3 hexagon resolution of the areas (6)"
    )
    trn.add_argument(
        "--period",
        choices=list(PERIODS),
        default="month",
        help="period of segment_counts.csv (jobs per segment and period; default month)",
    )
    trn.add_argument("--overwrite", action="store_true", help="replace existing output files")
    trn.set_defaults(func=_cmd_trends)

    pha = sub.add_parser(
        "phases", help="open workshops year by year (once open, always open), stable customers"
    )
    pha.add_argument("--scenario", help="scenario TOML to start from (costs, sites...)")
    pha.add_argument("--region", help=f"bundled region or road file (default: {DEFAULT_REGION})")
    pha.add_argument("--customers", help="customer register (customer file) of a jobs file")
    pha.add_argument("--jobs", help="job history (CSV/XLSX/Parquet); default: the stored register")
    pha.add_argument("--db", help=DB_HELP)
    pha.add_argument("--workshops", help="workshops per year, e.g. 3,4,5 (one number per year)")
    pha.add_argument("--budget", help="instead of --workshops: EUR per year, e.g. 500000,750000")
    pha.add_argument("--sites", help="candidate site file (CSV/XLSX)")
    pha.add_argument("--crs", help=CRS_HELP)
    pha.add_argument(
        "--min-gain", type=float, default=5.0, help="minutes a customer must gain to move (5)"
    )
    pha.add_argument(
        "--previous",
        help="CSV of customer_id,site_id: assignments of the current plan to keep (default "
        "with a register: the last saved plan's)",
    )
    pha.add_argument("--as-of", help="end of the history (YYYY-MM-DD; default: its last month)")
    pha.add_argument("--time-limit", type=float, help="solver seconds")
    pha.add_argument("--out", required=True, help="output folder")
    pha.add_argument("--overwrite", action="store_true", help="replace existing output files")
    pha.set_defaults(func=_cmd_phases)

    eco = sub.add_parser(
        "economics", help="jobs, revenue, cost to serve and margin per customer, segment and site"
    )
    eco.add_argument(
        "jobs", nargs="?", help="job history (CSV/XLSX/Parquet); default: the stored register"
    )
    eco.add_argument("--customers", help="customer register (customer file) of a jobs file")
    eco.add_argument("--db", help=DB_HELP)
    eco.add_argument("--scenario", help="scenario TOML (layout, costs, sites...)")
    eco.add_argument("--region", help=f"bundled region or road file (default: {DEFAULT_REGION})")
    eco.add_argument("--workshops", help="number of workshops, or 'auto'")
    eco.add_argument("--sites", help="site file with kind workshop/partner/office")
    eco.add_argument("--layout", choices=list(LAYOUTS), help="layout (default: in-house)")
    eco.add_argument("--crs", help=CRS_HELP)
    eco.add_argument("--time-limit", type=float, help="solver seconds")
    eco.add_argument("--as-of", help="end of the 12 months counted (default: the history's end)")
    eco.add_argument(
        "--exclude-flagged",
        action="store_true",
        help="exclude partners with complaint rates well above the rest from the solve",
    )
    eco.add_argument("--out", required=True, help="output folder")
    eco.add_argument("--overwrite", action="store_true", help="replace existing output files")
    eco.set_defaults(func=_cmd_economics)

    reg = sub.add_parser(
        "regions", help="list the regions of the download server, download one (once)"
    )
    reg_sub = reg.add_subparsers(dest="regions_command", required=True)
    reg_list = reg_sub.add_parser(
        "list", help="catalog regions, bundled regions and files already downloaded"
    )
    reg_list.add_argument("--search", help="only regions whose name or id contains TEXT")
    reg_list.add_argument(
        "--refresh", action="store_true", help="ask the server even if the catalog is recent"
    )
    reg_list.set_defaults(func=_cmd_regions_list)
    reg_dl = reg_sub.add_parser(
        "download", help="download a region's extract into $PLANNER_CACHE_DIR/regions/"
    )
    reg_dl.add_argument("id", help="catalog id (europe/greece), or a unique name (greece)")
    reg_dl.set_defaults(func=_cmd_regions_download)
    cal = sub.add_parser(
        "calibrate",
        help="fit the market model's distance decay from a job history (maximum likelihood)",
    )
    cal.add_argument(
        "jobs",
        nargs="?",
        help="job history (CSV/XLSX/Parquet) with served_by site ids; "
        "left out: the stored register (--db)",
    )
    cal.add_argument(
        "--customers", help="customer register (customer file; needed with a jobs file)"
    )
    cal.add_argument("--db", help=DB_HELP)
    cal.add_argument(
        "--sites", required=True, help="site file: our workshops/partners, optional competitors"
    )
    cal.add_argument("--scenario", help="scenario TOML to carry the fitted model")
    cal.add_argument("--region", help=f"bundled region or road file (default: {DEFAULT_REGION})")
    cal.add_argument(
        "--decay", choices=list(DECAY_FORMS), default="power", help="decay form (default power)"
    )
    cal.add_argument("--product-class", choices=list(PRODUCT_CLASSES), help="competitors' class")
    cal.add_argument("--crs", help=CRS_HELP)
    cal.add_argument("--as-of", help="end of the history window (default: the history's end)")
    cal.add_argument("--out", required=True, help="output folder")
    cal.add_argument("--overwrite", action="store_true", help="replace existing output files")
    cal.set_defaults(func=_cmd_calibrate)
    add_register_parser(sub)
    srv = sub.add_parser(
        "serve",
        help="start the app for others (localhost by default; sign-in needed elsewhere)",
    )
    srv.add_argument(
        "--host",
        default="localhost",
        help="address to listen on (default localhost; 0.0.0.0 = every interface; "
        "unix:///path.sock); any host others can reach needs sign-in or --no-auth",
    )
    srv.add_argument("--port", type=int, default=8501, help="TCP port (default 8501)")
    srv.add_argument(
        "--no-auth",
        action="store_true",
        help="serve to others without sign-in, on purpose (every page warns)",
    )
    srv.add_argument(
        "--auth-header",
        metavar="NAME",
        help="behind a signing-in reverse proxy: take the user from this header "
        "(e.g. X-Forwarded-Email); needs --host localhost or a unix socket",
    )
    srv.add_argument(
        "--secrets",
        action="append",
        metavar="FILE",
        help="secrets.toml with the [auth] section (default: .streamlit/secrets.toml)",
    )
    srv.set_defaults(func=_cmd_serve)
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
