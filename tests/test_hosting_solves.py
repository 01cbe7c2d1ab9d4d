"""The solves every session shares (planner.hosting.solves): one build per question and data,
the data prepared once for every solve on it, a stopped answer not kept. The engine's calls
are recorded stand-ins here (the engine itself is tested in test_one_engine.py and friends)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from planner.engine import ScenarioSpec
from planner.engine.workspace import InputFile
from planner.hosting import solves as solves_module
from planner.hosting.cache import SharedCache
from planner.hosting.solves import SharedSolves, file_key, spec_key


@dataclasses.dataclass(frozen=True)
class FakeInstance:
    spec: ScenarioSpec
    layouts: tuple[str, ...]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    made: list[tuple[Any, ...]] = []

    def prepare(spec: ScenarioSpec, **kwargs: Any) -> FakeInstance:
        made.append(("prepare", kwargs["layouts"], kwargs["graph"], kwargs["customers"]))
        return FakeInstance(spec, kwargs["layouts"])

    def run(spec: ScenarioSpec, *, sinst: FakeInstance, **kwargs: Any) -> str:
        made.append(("run", spec.layout, spec.time_limit_s))
        assert sinst.spec == spec  # the shared instance carries the asking spec
        return f"plan of {spec.layout}"

    monkeypatch.setattr(solves_module, "prepare_scenario", prepare)
    monkeypatch.setattr(solves_module, "run", run)
    return made


def shared_solves(graphs: list[tuple[str, str | None]]) -> SharedSolves:
    caches: dict[str, SharedCache] = {}

    def cache(name: str, size: int) -> SharedCache:
        return caches.setdefault(name, SharedCache(size, name))

    def graph_for(spec: ScenarioSpec, customers: InputFile | None, progress: Any) -> Any:
        graphs.append((spec.region, None if customers is None else customers.name))
        return f"roads of {spec.region}"

    return SharedSolves(cache, graph_for)


def test_a_question_is_solved_once_and_its_data_prepared_once(
    calls: list[tuple[Any, ...]],
) -> None:
    graphs: list[tuple[str, str | None]] = []
    solves = shared_solves(graphs)
    spec = ScenarioSpec(region="liechtenstein", workshops=3)
    customers = InputFile("c.csv", b"id,lat,lon\n1,47.1,9.5\n")
    assert solves.solve(spec, customers, None) == "plan of in-house"
    assert solves.solve(spec, customers, None) == "plan of in-house"  # another session
    assert [c[0] for c in calls] == ["prepare", "run"]
    assert calls[0][1:3] == (("in-house",), "roads of liechtenstein")
    assert graphs == [("liechtenstein", "c.csv")]
    # a longer time limit is a new solve on the same prepared data
    solves.solve(spec.replace(time_limit_s=99.0), customers, None)
    assert [c[0] for c in calls] == ["prepare", "run", "run"]
    # another customer file is other data
    solves.solve(spec, InputFile("c.csv", b"id,lat,lon\n2,47.2,9.5\n"), None)
    assert [c[0] for c in calls] == ["prepare", "run", "run", "prepare", "run"]


def test_a_stopped_answer_is_returned_but_not_kept(calls: list[tuple[Any, ...]]) -> None:
    solves = shared_solves([])
    spec = ScenarioSpec(region="liechtenstein", workshops=3)
    assert solves.solve(spec, None, None, should_stop=lambda: True) == "plan of in-house"
    assert solves.solve(spec, None, None) == "plan of in-house"
    assert [c[0] for c in calls] == ["prepare", "run", "run"]  # solved again, data kept


def test_keys() -> None:
    spec = ScenarioSpec(region="liechtenstein", workshops=3)
    assert spec_key(spec) == spec_key(ScenarioSpec(region="liechtenstein", workshops=3))
    assert spec_key(spec) != spec_key(spec.replace(workshops=4))
    assert spec_key(spec, ["region"]) == spec_key(spec.replace(workshops=4), ["region"])
    upload = InputFile("c.csv", b"x")
    assert file_key(upload) == f"c.csv:{upload.sha256}"
    assert file_key(None) is None


def test_a_cleared_shared_cache_builds_again() -> None:
    from planner.hosting.cache import SharedCache

    cache = SharedCache(4, "t")
    assert cache.get("k", lambda: 1) == 1
    assert cache.get("k", lambda: 2) == 1
    cache.clear()
    assert not cache.has("k")
    assert cache.get("k", lambda: 3) == 3
    assert cache.builds == 2
