"""The hosted benchmark's reading of the queue log (``benchmarks/bench_hosted.py``): the spans
in which every slot was taken, which decide the switches checked "while the queue is full"."""

from __future__ import annotations

from tests._benchmarks import load_benchmark


def _bench_hosted():
    return load_benchmark("bench_hosted")


def test_full_spans_follow_the_running_count() -> None:
    log = [
        "10.0\tstart\ta\troads\t1",
        "11.0\tend\ta\troads\t0",
        "12.0\tstart\tb\tplan\t1",
        "12.5\tstart\tc\tplan\t2",  # full from here
        "14.0\tend\tb\tplan\t1",  # ... to here
        "14.1\tstart\td\tplan\t2",  # full again
        "15.0\tend-abandoned\tc\tplan\t1",
        "16.0\tend\td\tplan\t0",
    ]
    assert _bench_hosted().full_intervals(log, 2) == [(12.5, 14.0), (14.1, 15.0)]


def test_a_span_still_open_when_the_log_ends_lasts_to_the_end() -> None:
    log = ["1.0\tstart\ta\tplan\t1", "2.0\tstart\tb\tplan\t2"]
    assert _bench_hosted().full_intervals(log, 2) == [(2.0, float("inf"))]
    assert _bench_hosted().full_intervals(log, 3) == []
