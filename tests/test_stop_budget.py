"""Stopping a solve early, planning within a budget, and partners by product class.

Checked against brute force on small candidate sets of the bundled Liechtenstein roads.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from planner.cli import _spec_from_args, build_parser
from planner.engine import ScenarioSpec, load_scenario, prepare_scenario, run, save_scenario
from planner.engine.instance import gather_candidates
from planner.engine.solve import network_cost_eur
from planner.errors import InfeasibleError, InputError
from planner.models import SolveProgress

SPEC = ScenarioSpec(region="liechtenstein", workshops=3, n_candidates=12, time_limit_s=30)


@pytest.fixture(scope="module")
def sinst():  # type: ignore[no-untyped-def]
    return prepare_scenario(SPEC)


def _brute_force(sinst, sizes: range) -> float:  # type: ignore[no-untyped-def]
    """Least weighted travel (p-median objective) over every set of own sites of ``sizes``."""
    inst = sinst.instance
    cols = sinst.columns["own"]
    cost = inst.cost_s[:, cols]
    w = inst.demand_weight
    best = np.inf
    for k in sizes:
        for subset in itertools.combinations(range(cols.size), k):
            nearest = cost[:, list(subset)].min(axis=1)
            if np.isfinite(nearest[w > 0]).all():
                best = min(best, float(np.sum(w * nearest)))
    return best


def test_unstopped_solve_is_the_brute_force_optimum(sinst) -> None:  # type: ignore[no-untyped-def]
    lr = run(SPEC, sinst=sinst)
    assert lr.solution.optimal
    assert lr.solution.objective == pytest.approx(_brute_force(sinst, range(3, 4)), rel=1e-9)


def test_stop_after_first_improvement_keeps_a_feasible_answer_with_a_valid_gap(
    sinst,  # type: ignore[no-untyped-def]
) -> None:
    updates: list[SolveProgress] = []
    lines: list[str] = []
    lr = run(
        SPEC,
        sinst=sinst,
        solve_progress=updates.append,
        # fires once the first answer (an improvement on "none") has been reported
        should_stop=lambda: any(np.isfinite(u.objective) for u in updates),
        progress=lambda message, fraction: lines.append(message),
    )
    sol = lr.solution
    assert updates
    assert np.isfinite(updates[0].objective)
    assert not sol.optimal
    assert sol.status == "stopped"
    assert sol.open.size == 3
    assert (sol.assignment >= 0).all()  # feasible: every demand point served by an open site
    optimum = _brute_force(sinst, range(3, 4))
    assert np.isfinite(sol.lower_bound)
    assert sol.lower_bound <= optimum * (1 + 1e-9) <= sol.objective * (1 + 1e-9)
    assert sol.gap >= 0
    assert sol.gap == pytest.approx((sol.objective - sol.lower_bound) / sol.objective)
    assert lr.kpis["optimal"] == 0.0
    assert any("Stopped before the optimum was proven" in w for w in lr.warnings)
    assert any("bound" in line and "best" in line and "gap" in line for line in lines)


def test_budget_picks_the_least_travel_that_fits(sinst) -> None:  # type: ignore[no-untyped-def]
    fixed = SPEC.parameters.workshop_fixed_cost_eur(layout="in-house")
    budget = 2.5 * fixed  # pays for two workshops
    spec = SPEC.replace(budget_per_year=budget)
    lr = run(spec, sinst=sinst)
    assert network_cost_eur(lr) <= budget
    assert lr.kpis["sites"] == 2
    assert lr.solution.objective == pytest.approx(_brute_force(sinst, range(1, 3)), rel=1e-9)
    assert lr.result.provenance["budget_per_year"] == budget
    with pytest.raises(InfeasibleError, match="budget"):
        run(SPEC.replace(budget_per_year=0.5 * fixed), sinst=sinst)


def test_budget_and_product_class_round_trip_toml_and_cli(tmp_path: Path) -> None:
    spec = ScenarioSpec(budget_per_year=600_000, product_class="electronics")
    path = save_scenario(spec, tmp_path / "s.toml")
    text = path.read_text(encoding="utf-8")
    assert "budget_per_year = 600000.0" in text
    assert 'product_class = "electronics"' in text
    assert load_scenario(path) == spec
    assert "budget_per_year" not in ScenarioSpec().to_dict()
    with pytest.raises(InputError, match="product class"):
        ScenarioSpec(product_class="toaster")
    with pytest.raises(InputError, match="must be > 0"):
        ScenarioSpec(budget_per_year=-1)
    args = build_parser().parse_args(
        ["run", "--out", "x", "--budget", "750000", "--product-class", "bicycle"]
    )
    cli_spec = _spec_from_args(args, scenario=None)
    assert cli_spec.budget_per_year == 750_000.0
    assert cli_spec.product_class == "bicycle"


def _write_osm(path: Path) -> Path:
    shops = [("shop", "car_repair", "Garage"), ("craft", "electronics_repair", "Fix-a-TV")]
    lines = ["<?xml version='1.0' encoding='UTF-8'?>", "<osm version='0.6' generator='test'>"]
    for i, (key, value, name) in enumerate(shops, start=1):
        lines.append(
            f"<node id='{i}' version='1' lat='47.1' lon='{9.5 + 0.001 * i}'>"
            f"<tag k='{key}' v='{value}'/><tag k='name' v='{name}'/></node>"
        )
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_product_class_picks_the_partner_tags(tmp_path: Path) -> None:
    region = str(_write_osm(tmp_path / "shops.osm"))
    names = {}
    for product_class in ("car", "electronics"):
        spec = ScenarioSpec(region=region, layout="outsourced", product_class=product_class)
        frame, _ = gather_candidates(spec, None, None, ["outsourced"])  # type: ignore[arg-type]
        names[product_class] = (frame["name"].tolist(), frame["osm_tag"].tolist())
    assert names["car"] == (["Garage"], ["shop=car_repair"])
    assert names["electronics"] == (["Fix-a-TV"], ["craft=electronics_repair"])
    spec = ScenarioSpec(region=region, layout="outsourced", product_class="bicycle")
    with pytest.raises(InputError, match="bicycle"):
        gather_candidates(spec, None, None, ["outsourced"])  # type: ignore[arg-type]


def test_capacitated_solve_reports_progress_and_stops() -> None:
    """The capacitated model gets the engine's progress and Stop like the others: a stop
    right after the first answer keeps a feasible answer with a valid bound."""
    spec = SPEC.replace(capacitated=True)
    sinst = prepare_scenario(spec)
    full = run(spec, sinst=sinst)
    updates: list[SolveProgress] = []
    lr = run(
        spec,
        sinst=sinst,
        solve_progress=updates.append,
        should_stop=lambda: any(np.isfinite(u.objective) for u in updates),
    )
    assert updates
    sol = lr.solution
    assert sol.open.size == 3
    assert (sol.assignment >= 0).all()
    assert sol.lower_bound <= full.solution.objective * (1 + 1e-9)
    assert sol.objective >= full.solution.lower_bound * (1 - 1e-9)
    assert sol.status == "stopped" or sol.optimal
    if not sol.optimal:
        assert any("Stopped before the optimum was proven" in w for w in lr.warnings)
