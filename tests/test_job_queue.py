"""The server-wide job queue: a cap on running jobs, one per user, places in line, Stop,
memory refusal and closed pages, checked with fake jobs that record what ran when."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from planner.hosting.jobs import (
    Job,
    Progress,
    StopCallback,
    error_text,
    stop_at_progress,
    waiting_text,
)
from planner.hosting.queue import (
    MAX_JOBS_ENV_VAR,
    NICE_ENV_VAR,
    JobQueue,
    JobRefused,
    JobStopped,
    default_job_nice,
    default_max_jobs,
    estimate_job_bytes,
)

GB = 1024**3


class Recorder:
    """Fake work: each job blocks until released (or stopped) and records overlaps."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.peak = 0
        self.peak_per_user: dict[str, int] = {}
        self.order: list[str] = []
        self.release: dict[str, threading.Event] = {}

    def work(self, name: str, user: str) -> Callable[[Progress, StopCallback], Any]:
        gate = self.release.setdefault(name, threading.Event())

        def run(progress: Progress, should_stop: StopCallback) -> str:
            with self.lock:
                self.running.add(name)
                self.order.append(name)
                self.peak = max(self.peak, len(self.running))
                mine = sum(1 for n in self.running if n.startswith(user + ":"))
                self.peak_per_user[user] = max(self.peak_per_user.get(user, 0), mine)
            progress("working", 0.5)
            while not gate.wait(0.01):
                if should_stop():
                    break
            with self.lock:
                self.running.discard(name)
            return f"answer of {name}"

        return run


def make_job(user: str, kind: str = "plan", **kwargs: Any) -> Job:
    return Job(kind=kind, stop=threading.Event(), finish=lambda v: v, user=user, **kwargs)


def wait_until(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_never_more_than_max_jobs_and_one_per_user() -> None:
    queue = JobQueue(max_jobs=2, available_bytes=lambda: 64 * GB)
    rec = Recorder()
    jobs: dict[str, Job] = {}
    # three users, two jobs each, submitted interleaved
    for i in range(2):
        for user in ("ann", "bob", "cyd"):
            name = f"{user}:{i}"
            jobs[name] = queue.submit(make_job(user), rec.work(name, user))
    wait_until(lambda: len(rec.running) == 2)
    assert rec.order == ["ann:0", "bob:0"]
    assert [j.state for j in (jobs["ann:0"], jobs["bob:0"], jobs["cyd:0"])] == [
        "running",
        "running",
        "waiting",
    ]
    # places in line, first come first served
    assert [queue.position(jobs[n]) for n in ("cyd:0", "ann:1", "bob:1", "cyd:1")] == [1, 2, 3, 4]
    assert queue.position(jobs["ann:0"]) == 0
    # ann's first job ends: cyd:0 is next in line (ann:1 must not jump ahead)
    rec.release["ann:0"].set()
    wait_until(lambda: "cyd:0" in rec.running)
    assert jobs["ann:0"].value == "answer of ann:0"
    assert jobs["ann:0"].done
    for name in list(jobs):
        rec.release.setdefault(name, threading.Event()).set()
    wait_until(lambda: all(j.done for j in jobs.values()))
    assert rec.peak == 2
    assert queue.peak_running == 2
    assert max(rec.peak_per_user.values()) == 1
    assert sorted(rec.order) == sorted(jobs)
    assert all(j.error is None for j in jobs.values())


def test_a_users_second_job_waits_even_with_free_slots() -> None:
    queue = JobQueue(max_jobs=4, available_bytes=lambda: 64 * GB)
    rec = Recorder()
    first = queue.submit(make_job("ann"), rec.work("ann:0", "ann"))
    second = queue.submit(make_job("ann", kind="compare"), rec.work("ann:1", "ann"))
    other = queue.submit(make_job("bob"), rec.work("bob:0", "bob"))
    wait_until(lambda: rec.running == {"ann:0", "bob:0"})
    assert second.state == "waiting"
    assert queue.position(second) == 1
    rec.release["ann:0"].set()
    wait_until(lambda: "ann:1" in rec.running)
    for gate in rec.release.values():
        gate.set()
    wait_until(lambda: first.done and second.done and other.done)


def test_stop_while_waiting_leaves_the_line_and_stop_while_running_ends_the_work() -> None:
    queue = JobQueue(max_jobs=1, available_bytes=lambda: 64 * GB)
    rec = Recorder()
    running = queue.submit(make_job("ann"), rec.work("ann:0", "ann"))
    waiting = queue.submit(make_job("bob"), rec.work("bob:0", "bob"))
    last = queue.submit(make_job("cyd"), rec.work("cyd:0", "cyd"))
    wait_until(lambda: rec.running == {"ann:0"})
    assert queue.position(last) == 2
    queue.cancel(waiting)
    assert waiting.done
    assert isinstance(waiting.error, JobStopped)
    assert queue.position(last) == 1
    queue.cancel(running)  # the fake work polls should_stop like the engine
    wait_until(lambda: running.done)
    assert running.value == "answer of ann:0"
    assert running.error is None
    wait_until(lambda: "cyd:0" in rec.running)
    assert "bob:0" not in rec.order
    rec.release["cyd:0"].set()
    wait_until(lambda: last.done)


def test_a_job_needing_more_memory_than_is_free_is_refused_with_a_clear_message() -> None:
    queue = JobQueue(max_jobs=2, available_bytes=lambda: 2 * GB)
    job = make_job("ann", estimated_bytes=3 * GB)
    with pytest.raises(JobRefused, match=r"about 3,072 MB of memory, but the server has 2,048"):
        queue.submit(job, lambda progress, should_stop: None)
    assert not queue.running
    assert not queue.waiting
    # the estimate grows with the matrix: 20,000 customers x 500 sites is ~2 GB
    assert estimate_job_bytes(20_000, 500) > 1.8 * GB > estimate_job_bytes(2_000, 50)


def test_a_big_job_waits_until_running_work_has_freed_memory() -> None:
    queue = JobQueue(max_jobs=2, available_bytes=lambda: 4 * GB)
    rec = Recorder()
    small = queue.submit(make_job("ann", estimated_bytes=3 * GB), rec.work("ann:0", "ann"))
    big = queue.submit(make_job("bob", estimated_bytes=2 * GB), rec.work("bob:0", "bob"))
    wait_until(lambda: rec.running == {"ann:0"})
    time.sleep(0.1)
    assert big.state == "waiting"
    rec.release["ann:0"].set()
    wait_until(lambda: "bob:0" in rec.running)
    rec.release["bob:0"].set()
    wait_until(lambda: small.done and big.done)


def test_errors_are_kept_on_the_job_and_free_the_slot() -> None:
    queue = JobQueue(max_jobs=1, available_bytes=lambda: 64 * GB)

    def fail(progress: Progress, should_stop: StopCallback) -> None:
        raise ValueError("bad row 3")

    failed = queue.submit(make_job("ann"), fail)
    after = queue.submit(make_job("bob"), lambda progress, should_stop: 42)
    wait_until(lambda: after.done)
    assert isinstance(failed.error, ValueError)
    assert after.value == 42


def test_a_closed_page_frees_its_slot_within_seconds() -> None:
    queue = JobQueue(max_jobs=1, available_bytes=lambda: 64 * GB, grace_s=0.3, watch_s=0.05)
    rec = Recorder()
    page_open = threading.Event()
    page_open.set()
    abandoned = queue.submit(make_job("ann", alive=page_open.is_set), rec.work("ann:0", "ann"))
    gone_waiting = queue.submit(make_job("bob", alive=lambda: False), rec.work("bob:0", "bob"))
    next_ = queue.submit(make_job("cyd", alive=lambda: True), rec.work("cyd:0", "cyd"))
    wait_until(lambda: rec.running == {"ann:0"})
    time.sleep(0.5)
    assert abandoned.state == "running"  # its page is open: it keeps running
    assert gone_waiting.done
    assert isinstance(gone_waiting.error, JobStopped)
    closed_at = time.monotonic()
    page_open.clear()  # the tab is closed
    wait_until(lambda: "cyd:0" in rec.running, timeout_s=10)
    assert time.monotonic() - closed_at < 2.0
    assert abandoned.done
    assert abandoned.stop.is_set()
    rec.release["cyd:0"].set()
    wait_until(lambda: next_.done)
    assert "bob:0" not in rec.order


def test_a_closed_page_ends_work_that_does_not_poll_stop_at_its_next_progress_report() -> None:
    queue = JobQueue(max_jobs=1, available_bytes=lambda: 64 * GB, grace_s=0.2, watch_s=0.05)
    page_open = threading.Event()
    page_open.set()
    reports = []

    def matrix_build(progress: Progress, should_stop: StopCallback) -> str:
        for i in range(1000):  # never asks should_stop, only reports progress
            progress(f"row block {i}", i / 1000)
            reports.append(i)
            time.sleep(0.01)
        return "matrix"

    job = queue.submit(make_job("ann", alive=page_open.is_set), matrix_build)
    wait_until(lambda: len(reports) > 5)
    page_open.clear()
    wait_until(lambda: job.done, timeout_s=3)
    assert isinstance(job.error, JobStopped)
    assert len(reports) < 1000
    assert not queue.running
    wait_until(lambda: queue.abandoned_running == 0)


def test_a_closed_page_frees_the_slot_even_while_its_work_reports_nothing() -> None:
    queue = JobQueue(max_jobs=1, available_bytes=lambda: 64 * GB, grace_s=0.2, watch_s=0.05)
    busy = threading.Event()  # the step that reports nothing (snapping thousands of points)
    quiet = queue.submit(
        make_job("ann", alive=lambda: False),
        lambda progress, should_stop: busy.wait(10),
    )
    nxt = queue.submit(make_job("bob"), lambda progress, should_stop: "bob's answer")
    wait_until(lambda: nxt.done, timeout_s=3)
    assert nxt.value == "bob's answer"
    assert isinstance(quiet.error, JobStopped)
    assert queue.abandoned_running == 1  # still winding down, outside the slots
    busy.set()
    wait_until(lambda: queue.abandoned_running == 0)


def test_max_jobs_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_JOBS_ENV_VAR, "3")
    assert default_max_jobs() == 3
    assert JobQueue().max_jobs == 3
    monkeypatch.delenv(MAX_JOBS_ENV_VAR)
    assert default_max_jobs() >= 1
    monkeypatch.setenv(MAX_JOBS_ENV_VAR, "zero")
    with pytest.raises(ValueError, match="PLANNER_MAX_JOBS='zero'"):
        default_max_jobs()


def thread_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_job_threads_run_at_the_niceness_set_and_the_pages_thread_keeps_its_own() -> None:
    before = thread_niceness()
    nice = min(before + 5, 19)
    queue = JobQueue(max_jobs=2, available_bytes=lambda: 64 * GB, nice=nice)
    jobs = [
        queue.submit(make_job(user), lambda progress, should_stop: thread_niceness())
        for user in ("ann", "bob")
    ]
    for job in jobs:
        assert job.finished.wait(5)
        assert job.error is None
        assert job.value == nice
    assert thread_niceness() == before  # the caller (a page's script thread) is untouched


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's")
def test_nice_zero_leaves_job_threads_at_the_pages_priority() -> None:
    before = thread_niceness()
    queue = JobQueue(max_jobs=1, available_bytes=lambda: 64 * GB, nice=0)
    job = queue.submit(make_job("ann"), lambda progress, should_stop: thread_niceness())
    assert job.finished.wait(5)
    assert job.value == before


def test_job_nice_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NICE_ENV_VAR, raising=False)
    assert default_job_nice() == 10
    assert JobQueue(max_jobs=1).nice == 10
    monkeypatch.setenv(NICE_ENV_VAR, "15")
    assert JobQueue(max_jobs=1).nice == 15
    monkeypatch.setenv(NICE_ENV_VAR, "0")
    assert default_job_nice() == 0
    for bad in ("-5", "20", "low"):
        monkeypatch.setenv(NICE_ENV_VAR, bad)
        with pytest.raises(ValueError, match=f"PLANNER_JOB_NICE='{bad}'"):
            default_job_nice()


def test_start_queues_a_new_job_and_ends_a_refused_one_at_once() -> None:
    queue = JobQueue(max_jobs=1, available_bytes=lambda: 2 * GB)
    job = queue.start("plan", lambda progress, should_stop: 42, lambda v: v, user="ann")
    assert job.finished.wait(5)
    assert (job.kind, job.user, job.value, job.error) == ("plan", "ann", 42, None)
    big = queue.start(
        "plan", lambda progress, should_stop: 1, lambda v: v, user="bob", estimated_bytes=3 * GB
    )
    assert big.done
    assert big.state == "done"
    assert isinstance(big.error, JobRefused)
    assert error_text(big.error).startswith("This job would need about 3,072 MB")


def test_stop_at_progress_ends_work_without_should_stop_at_its_next_report() -> None:
    reports: list[str] = []

    def compute(progress: Progress) -> str:
        for k in range(5):
            progress(f"step {k}", k / 5)
        return "curve"

    work = stop_at_progress(compute)
    assert work(lambda m, f: reports.append(m), lambda: False) == "curve"
    assert len(reports) == 5
    with pytest.raises(JobStopped, match="Stopped; nothing was kept"):
        work(lambda m, f: reports.append(m), lambda: True)
    assert len(reports) == 5  # not one report after Stop


def test_texts_of_jobs() -> None:
    assert waiting_text(2) == "Waiting, number 2 in line"
    assert waiting_text(0) == "Starting…"
    assert error_text(ValueError("bad")) == "ValueError: bad"
    assert error_text(JobStopped("Stopped while waiting")) == "Stopped while waiting"
    job = make_job("ann")
    job.started = time.monotonic() - 12.4
    assert job.status_text() == "Working for 12 s"
    job.stop.set()
    assert job.status_text() == "Stopping… keeping the best answer found so far (12 s)"
