"""The engine: a :class:`ScenarioSpec` in, a result out, for every front door.

:func:`run` answers one spec, :func:`compare` several layouts of it on the same data;
:func:`k_curve` and :func:`robustness` sweep a prepared instance; :func:`plan_phases` plans
workshops over several years from a job history. The CLI, the app and the
notebooks call nothing else to solve.
"""

from __future__ import annotations

from planner.engine.instance import ScenarioInstance, prepare_scenario
from planner.engine.phases import plan_phases
from planner.engine.run import compare, plan_workshops, run
from planner.engine.solve import solve_layout
from planner.engine.spec import LAYOUTS, ScenarioSpec, load_scenario, save_scenario
from planner.engine.sweeps import k_curve, robustness, slow_down_roads

__all__ = [
    "LAYOUTS",
    "ScenarioInstance",
    "ScenarioSpec",
    "compare",
    "k_curve",
    "load_scenario",
    "plan_phases",
    "plan_workshops",
    "prepare_scenario",
    "robustness",
    "run",
    "save_scenario",
    "slow_down_roads",
    "solve_layout",
]
