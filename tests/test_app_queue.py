"""The app's Run goes through the server's one queue: with one slot, a second session waits
("Waiting, number 1 in line") with Stop, and runs once the first is done; a job that needs
more memory than is free is refused with a clear message (two AppTest sessions, one process)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from _apptest import TIMEOUT_S
from _apptest import ok as _ok
from _apptest import wait_for_job as _wait_for_job
from streamlit.testing.v1 import AppTest

from planner.hosting import solves
from planner.hosting.queue import JobQueue

APP = Path(__file__).resolve().parent.parent / "app.py"
pytestmark = [pytest.mark.usefixtures("offline_app"), pytest.mark.slow]


def _plan_session() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = "liechtenstein"
    at.switch_page("app_pages/plan.py")
    _ok(at.run())
    at.number_input(key="workshops").set_value(3)
    return _ok(at.run())


def _click(at: AppTest, label: str) -> AppTest:
    next(b for b in at.button if b.label == label).click()
    return _ok(at.run())


def test_second_session_waits_in_line_then_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    from app_pages import _account

    queue = JobQueue(max_jobs=1)
    monkeypatch.setattr(_account, "job_queue", lambda: queue)
    gate = threading.Event()
    real_run = solves.run

    def gated_run(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        assert gate.wait(TIMEOUT_S)
        return real_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solves, "run", gated_run)  # the shared solves call the engine
    first, second = _plan_session(), _plan_session()
    _click(first, "Run")
    _click(second, "Run")
    assert first.session_state["plan_job"].state == "running"
    job = second.session_state["plan_job"]
    assert job.state == "waiting"
    assert [p.text for p in second.progress] == ["Waiting, number 1 in line"]
    assert any(b.label == "Stop" for b in second.button)
    assert queue.peak_running == 1
    gate.set()
    _wait_for_job(first, "plan")
    _wait_for_job(second, "plan")
    assert queue.peak_running == 1
    assert first.session_state["plan"]["result"].solution.open.size == 3
    assert second.session_state["plan"]["result"].solution.open.size == 3


def test_stop_while_waiting_and_memory_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    from app_pages import _account

    queue = JobQueue(max_jobs=1)
    monkeypatch.setattr(_account, "job_queue", lambda: queue)
    blocker = threading.Event()
    from planner.hosting.jobs import Job

    queue.submit(
        Job(kind="plan", stop=threading.Event(), finish=lambda v: v, user="someone else"),
        lambda progress, should_stop: blocker.wait(TIMEOUT_S),
    )
    at = _plan_session()
    _click(at, "Run")
    assert [p.text for p in at.progress] == ["Waiting, number 1 in line"]
    _click(at, "Stop")
    _ok(at.run())
    assert "plan_job" not in at.session_state
    assert "Stopped while waiting in line" in at.session_state["plan_error"]
    blocker.set()

    tiny = JobQueue(max_jobs=1, available_bytes=lambda: 1024)
    monkeypatch.setattr(_account, "job_queue", lambda: tiny)
    _click(at, "Run")
    _ok(at.run())
    assert any("of memory, but the server has" in e.value for e in at.error)


def _compare_session() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
    at.query_params["region"] = "liechtenstein"
    at.switch_page("app_pages/compare.py")
    _ok(at.run())
    at.number_input(key="workshops").set_value(2)
    at.multiselect(key="cmp_layouts").set_value(["in-house"])
    _ok(at.run())
    _click(at, "Compare")
    return _wait_for_job(at, "compare")


def test_k_curve_and_robustness_wait_in_the_same_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    from app_pages import _account
    from planner.hosting.jobs import Job

    queue = JobQueue(max_jobs=1)
    monkeypatch.setattr(_account, "job_queue", lambda: queue)
    at = _compare_session()
    blocker = threading.Event()
    queue.submit(
        Job(kind="plan", stop=threading.Event(), finish=lambda v: v, user="someone else"),
        lambda progress, should_stop: blocker.wait(TIMEOUT_S),
    )
    at.number_input(key="cmp_kmax").set_value(3)
    _ok(at.run())
    _click(at, "Draw the K-curve")
    _click(at, "Re-solve the cases")
    assert [job.kind for job in queue.waiting] == ["k_curve", "robust"]
    assert [p.text for p in at.progress] == [
        "Waiting, number 1 in line",
        "Waiting, number 2 in line",
    ]
    assert "k_curve" not in at.session_state
    assert "robust" not in at.session_state
    blocker.set()
    _wait_for_job(at, "k_curve")
    _wait_for_job(at, "robust")
    assert queue.peak_running == 1
    assert at.session_state["k_curve"][2]["workshops"].tolist() == [1, 2, 3]
    assert len(at.session_state["robust"][3].cases) >= 2


def test_stop_ends_a_running_k_curve(monkeypatch: pytest.MonkeyPatch) -> None:
    from app_pages import _account, _shared

    queue = JobQueue(max_jobs=1)
    monkeypatch.setattr(_account, "job_queue", lambda: queue)
    # an earlier test of this process (e.g. test_compare_cli's app run) may have drawn this
    # K-curve already: the click would then answer from the shared cache, with no job to stop
    _shared.memo("k_curves", solves.CACHE_SIZES["k_curves"]).clear()
    at = _compare_session()
    calls: list[str] = []
    real = solves.k_curve

    def slow_k_curve(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        report = kwargs["progress"]
        for _ in range(int(TIMEOUT_S * 10)):  # reports until Stop ends it
            report("solving", 0.5)  # type: ignore[operator]
            calls.append("report")
            threading.Event().wait(0.1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(solves, "k_curve", slow_k_curve)
    at.number_input(key="cmp_kmax").set_value(4)
    _ok(at.run())
    _click(at, "Draw the K-curve")
    assert at.session_state["k_curve_job"].state == "running"
    _click(at, "Stop")
    _wait_for_job(at, "k_curve", timeout_s=30)
    assert any("Stopped; nothing was kept" in e.value for e in at.error)
    assert "k_curve" not in at.session_state
    assert not queue.running


def test_sessions_waiting_for_the_same_roads_follow_one_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Twenty users opening the app on a cold server take one place in the queue for the
    region's roads, not twenty; the load goes on while any of their pages is open."""
    from app_pages import _account, _shared

    queue = JobQueue(max_jobs=2)
    monkeypatch.setattr(_account, "job_queue", lambda: queue)
    gate = threading.Event()
    real_loaded, real_load = _shared.graph_loaded, _shared.load_graph
    monkeypatch.setattr(
        _shared,
        "graph_loaded",
        lambda region, area=None: gate.is_set() and real_loaded(region, area),
    )

    def gated_load(region: str, progress: object = None, area: object = None):  # type: ignore[no-untyped-def]
        assert gate.wait(TIMEOUT_S)
        return real_load(region, progress, area=area)  # type: ignore[arg-type]

    monkeypatch.setattr(_shared, "load_graph", gated_load)
    sessions = []
    for _ in range(3):
        at = AppTest.from_file(str(APP), default_timeout=TIMEOUT_S)
        at.query_params["region"] = "liechtenstein"
        sessions.append(_ok(at.run()))
    jobs = {id(at.session_state["roads_job"]) for at in sessions}
    assert len(jobs) == 1
    assert len(queue.running) + len(queue.waiting) == 1
    gate.set()
    for at in sessions:
        _wait_for_job(at, "roads")
        assert any("demo customers in" in i.value for i in at.info)
    assert queue.peak_running == 1
