"""The packages' lazy public names: imported on first use, the same objects, clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

import planner
import planner.register
from planner._lazy import lazy_getattr


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint('\\n'.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return set(out.split())


def test_importing_the_packages_loads_no_road_or_solver_stack() -> None:
    loaded = _modules_after("import planner, planner.register")
    assert (
        not {"osmnx", "planner.engine", "scipy.optimize", "planner.register.calibration"} & loaded
    )


def test_a_name_is_imported_at_first_use_and_kept() -> None:
    loaded = _modules_after("import planner\nplanner.ScenarioSpec")
    assert "planner.engine" in loaded
    from planner.engine import ScenarioSpec
    from planner.register.calibration import fit_decay

    assert planner.ScenarioSpec is ScenarioSpec
    assert planner.register.fit_decay is fit_decay
    assert vars(planner.register)["fit_decay"] is fit_decay  # later reads skip __getattr__


@pytest.mark.parametrize(("package", "name"), [(planner, "nope"), (planner.register, "run")])
def test_an_unknown_name_is_an_attribute_error_naming_the_package(package, name) -> None:
    with pytest.raises(
        AttributeError, match=rf"module '{package.__name__}' has no attribute '{name}'"
    ):
        getattr(package, name)
    assert not hasattr(package, name)


def test_every_lazy_name_resolves_and_is_public() -> None:
    for package in (planner, planner.register):
        for name in package._LAZY:
            assert getattr(package, name) is not None
            assert name in package.__all__


def test_lazy_getattr_on_a_namespace() -> None:
    namespace: dict[str, object] = {}
    getter = lazy_getattr("pkg", namespace, {"sqrt": "math"})
    import math

    assert getter("sqrt") is math.sqrt
    assert namespace == {"sqrt": math.sqrt}
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'cos'"):
        getter("cos")
