"""Service Site Planner: place a central office and repair workshops on the real road network.

The library holds all logic; the Streamlit app (``app.py``), the command line (``planner``) and the
notebooks are thin clients of it. Data flows one way, and the sub-packages follow it::

    roads/    region -> road graph with travel times; where points meet the roads
    inputs/   customers, sites: read any format, validate row by row, one report
    routing/  travel-time matrices between snapped points
    models/   optimization models, all built from a cost matrix, all with a gap
    results/  frozen result types, KPIs, costs, derived tables
    engine/   ScenarioSpec -> result: the one function every front door calls
    outputs/  maps, exports, report: pure functions of a result

The public API is what this module exports::

    import planner

    spec = planner.ScenarioSpec(region="malta", workshops=3)
    result = planner.run(spec)            # a LayoutResult: sites, assignments, KPIs, costs
    comparison = planner.compare(spec)    # in-house, outsourced and two-tier side by side

Road data © OpenStreetMap contributors, available under the Open Database License (ODbL).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from planner._lazy import lazy_getattr
from planner._meta import OSM_CREDIT, OSM_LICENSE, __version__
from planner.errors import InfeasibleError, InputError, NetworkError, PlannerError

if TYPE_CHECKING:
    from planner.engine import (
        LAYOUTS,
        ScenarioSpec,
        compare,
        k_curve,
        load_scenario,
        plan_workshops,
        prepare_scenario,
        robustness,
        save_scenario,
    )
    from planner.engine.run import run
    from planner.inputs.customers import load_demo_customers, read_customers
    from planner.inputs.sites import read_sites
    from planner.inputs.validate import validate_file
    from planner.results.costs import CostParameters
    from planner.results.types import Comparison, LayoutResult, Robustness, ScenarioResult
    from planner.roads.network import load_region

#: Where each name of the public API lives: imported at first use, so that ``planner.cli``
#: and the register commands do not load the road and solver stack (osmnx, scikit-learn,
#: matplotlib) they never touch.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "LAYOUTS",
            "ScenarioSpec",
            "compare",
            "k_curve",
            "load_scenario",
            "plan_workshops",
            "prepare_scenario",
            "robustness",
            "run",
            "save_scenario",
        ),
        "planner.engine",
    ),
    "load_demo_customers": "planner.inputs.customers",
    "read_customers": "planner.inputs.customers",
    "read_sites": "planner.inputs.sites",
    "validate_file": "planner.inputs.validate",
    "CostParameters": "planner.results.costs",
    **dict.fromkeys(
        ("Comparison", "LayoutResult", "Robustness", "ScenarioResult"), "planner.results.types"
    ),
    "load_region": "planner.roads.network",
}


__getattr__ = lazy_getattr(__name__, globals(), _LAZY)


logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "LAYOUTS",
    "OSM_CREDIT",
    "OSM_LICENSE",
    "Comparison",
    "CostParameters",
    "InfeasibleError",
    "InputError",
    "LayoutResult",
    "NetworkError",
    "PlannerError",
    "Robustness",
    "ScenarioResult",
    "ScenarioSpec",
    "__version__",
    "compare",
    "k_curve",
    "load_demo_customers",
    "load_region",
    "load_scenario",
    "plan_workshops",
    "prepare_scenario",
    "read_customers",
    "read_sites",
    "robustness",
    "run",
    "save_scenario",
    "validate_file",
]
