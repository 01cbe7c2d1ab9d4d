"""Haase and Mueller's instances in ``benchmarks/bench_market_hm14.py``: the original file
format read back, the utilities as the literature defines them, and the file checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests._benchmarks import load_benchmark


def _bench():
    return load_benchmark("bench_market_hm14")


def write(path: Path, c: np.ndarray, k: np.ndarray, weights: str | None = None) -> None:
    """An instance in the files' format: negated distances, one line per facility."""
    n, m = c.shape
    lines = [f"{n} {m} 1", weights or " ".join(["1"] * n), " ".join(f"{-v:g}" for v in k)]
    lines += [" ".join(f"{-v:g}" for v in c[:, j]) for j in range(m)]
    path.write_text("\n".join(lines) + "\n")


def test_generated_instances_read_back_from_the_file_format(tmp_path: Path) -> None:
    bench = _bench()
    c, k = bench.generate(12, 5, seed=4)
    assert c.shape == (12, 5)
    assert k.shape == (12,)
    assert c.max() <= 60.0
    assert np.all(c == c.round(3))
    write(tmp_path / "HM14_12_5.data", c, k)
    c2, k2 = bench.read(tmp_path / "HM14_12_5.data")
    np.testing.assert_array_equal(c2, c)
    np.testing.assert_array_equal(k2, k)


def test_utilities_are_the_literatures_divided_by_the_competitors() -> None:
    bench = _bench()
    c = np.array([[1.0, 3.0], [2.0, 0.5]])
    k = np.array([4.0, 1.0])
    u, o = bench.utilities(c, k, alpha=0.1, beta=2.0)
    np.testing.assert_array_equal(o, [1.0, 1.0])
    # the share is the literature's: exp(-beta c) / (exp(-alpha beta k) + sum over open sites)
    share = np.exp(-2.0 * c[0, 0]) / (np.exp(-0.2 * k[0]) + np.exp(-2.0 * c[0, 0]))
    assert u[0, 0] / (1.0 + u[0, 0]) == pytest.approx(share, rel=1e-12)


def test_a_file_with_other_weights_is_refused(tmp_path: Path) -> None:
    bench = _bench()
    c, k = bench.generate(3, 2, seed=1)
    write(tmp_path / "x.data", c, k, weights="1 2 1")
    with pytest.raises(SystemExit, match="weights of 1"):
        bench.read(tmp_path / "x.data")
