"""``benchmarks/bench_calibration_coverage.py``: its histories follow the market model the fit
assumes, and its table has one row per setting."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from planner.results.market import DemandModel, decay
from tests._benchmarks import load_benchmark


def test_histories_have_the_huff_mean() -> None:
    bench = load_benchmark("bench_calibration_coverage")
    jobs, t, comp = bench.history(3, form="power", theta=1.8, competitors=4, n=200_000)
    assert comp is not None
    assert comp.shape == (200_000, 4)
    model = DemandModel(form="power", parameter=1.8)
    own = 1.3 * decay(t, model)
    share = own / (own + decay(comp, model).sum(axis=1) + decay(np.array([25.0]), model)[0])
    # Poisson(6 x share): the total and the near / far halves within 4 standard errors
    for part in (np.ones(t.size, bool), t < 10, t > 30):
        expected = 6.0 * share[part].sum()
        assert abs(jobs[part].sum() - expected) < 4.0 * np.sqrt(expected)
    jobs0, _, comp0 = bench.history(3, form="exponential", theta=0.06, competitors=0, n=10)
    assert comp0 is None
    assert jobs0.shape == (10,)


def test_table_has_a_row_per_setting(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bench = load_benchmark("bench_calibration_coverage")
    monkeypatch.setattr(sys, "argv", ["bench", "--seeds", "2", "--customers", "400"])
    bench.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if "/ 2 |" in line]
    assert len(rows) == len(bench.SETTINGS) == 4
    for row, (form, theta, k) in zip(rows, bench.SETTINGS, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0].startswith(form)
        assert int(cells[1]) == k
        assert float(cells[4]) == pytest.approx(theta, rel=0.5)
