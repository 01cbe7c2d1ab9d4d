"""Huge customer files: refused fast with bounded memory above the row limit, loaded below it.

The limit is :func:`planner.settings.max_table_rows` (``$PLANNER_MAX_ROWS``, default 1,000,000);
the tests lower it so that they stay fast, and one slow test loads a real 1,000,000-row file.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from planner.cli import main
from planner.errors import InputError
from planner.inputs.customers import read_customers
from planner.inputs.tables import TooManyRowsError, read_table
from planner.settings import DEFAULT_MAX_TABLE_ROWS, max_table_rows

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_determinism import merged_ways_osm  # noqa: E402


def write_customers(path: Path, n: int, *, newline: str = "\n", trailing: bool = True) -> Path:
    rng = np.random.default_rng(0)
    lat = 35.85 + rng.uniform(0, 0.05, n)
    lon = 14.45 + rng.uniform(0, 0.05, n)
    lines = ["id,lat,lon,weight"] + [
        f"C{i:07d},{a:.6f},{o:.6f},{1 + i % 5}"
        for i, (a, o) in enumerate(zip(lat, lon, strict=True))
    ]
    text = newline.join(lines) + (newline if trailing else "")
    path.write_bytes(text.encode("utf-8"))
    return path


@pytest.fixture
def limit_100(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("PLANNER_MAX_ROWS", "100")
    return 100


def test_default_limit_is_one_million_and_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANNER_MAX_ROWS", raising=False)
    assert max_table_rows() == DEFAULT_MAX_TABLE_ROWS == 1_000_000
    monkeypatch.setenv("PLANNER_MAX_ROWS", "2500")
    assert max_table_rows() == 2500
    monkeypatch.setenv("PLANNER_MAX_ROWS", "lots")
    with pytest.raises(InputError, match="PLANNER_MAX_ROWS"):
        max_table_rows()


@pytest.mark.parametrize(
    ("newline", "trailing"), [("\n", True), ("\n", False), ("\r\n", True), ("\r\n", False)]
)
def test_exactly_the_limit_loads_every_row(
    tmp_path: Path, limit_100: int, newline: str, trailing: bool
) -> None:
    path = write_customers(tmp_path / "c.csv", limit_100, newline=newline, trailing=trailing)
    table = read_customers(path)
    assert not table.report.fatal
    assert len(table.frame) == limit_100
    assert table.frame["customer_id"].tolist() == [f"C{i:07d}" for i in range(limit_100)]
    assert table.frame["valid"].all()


@pytest.mark.parametrize(("newline", "trailing"), [("\n", True), ("\r\n", False)])
def test_one_row_over_the_limit_is_refused_naming_file_row_and_fix(
    tmp_path: Path, limit_100: int, newline: str, trailing: bool
) -> None:
    path = write_customers(tmp_path / "big.csv", limit_100 + 1, newline=newline, trailing=trailing)
    with pytest.raises(TooManyRowsError) as info:
        read_table(path)
    err = info.value
    assert isinstance(err, InputError)
    assert (err.n_rows, err.limit, err.row, err.file) == (101, 100, 101, str(path))
    assert "PLANNER_MAX_ROWS" in str(err)
    assert str(path) in str(err)

    table = read_customers(path)  # the library front door: a fatal report, nothing raised
    assert table.report.fatal
    assert len(table.frame) == 0
    (issue,) = table.report.issues
    assert issue.code == "too_many_rows"
    assert issue.row == 101
    assert "101 data rows" in issue.problem
    assert "aggregate customers" in issue.fix


def test_upload_over_the_limit_is_refused(limit_100: int, tmp_path: Path) -> None:
    data = write_customers(tmp_path / "x.csv", 250).read_bytes()
    upload = io.BytesIO(data)
    upload.name = "upload.csv"
    table = read_customers(upload)
    assert table.report.fatal
    assert table.report.issues[0].code == "too_many_rows"
    assert "250 data rows" in table.report.issues[0].problem


def test_parquet_over_the_limit_is_refused_before_parsing(tmp_path: Path, limit_100: int) -> None:
    path = tmp_path / "c.parquet"
    pd.DataFrame({"id": range(150), "lat": 35.9, "lon": 14.5}).to_parquet(path)
    with pytest.raises(TooManyRowsError, match="150 data rows"):
        read_table(path)
    pd.DataFrame({"id": range(100), "lat": 35.9, "lon": 14.5}).to_parquet(path)
    assert len(read_table(path)) == 100


def test_cli_front_doors_exit_2_and_name_the_file(
    tmp_path: Path, limit_100: int, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_customers(tmp_path / "big.csv", 180)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "big.csv" in out
    assert "180 data rows" in out
    road = tmp_path / "roads.osm"
    road.write_text(merged_ways_osm(), encoding="utf-8")
    code = main(
        [
            "run",
            "--region",
            str(road),
            "--customers",
            str(path),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "big.csv" in text
    assert "PLANNER_MAX_ROWS" in text
    assert not (tmp_path / "out" / "assignments.csv").exists()


def test_refusal_streams_the_file_with_bounded_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 200,000-line file over a 1,000-row limit is refused after a streamed line count:
    the Python heap never holds the file (6.2 MB; the traced peak stays under 3 MB)."""
    monkeypatch.setenv("PLANNER_MAX_ROWS", "1000")
    path = write_customers(tmp_path / "huge.csv", 200_000)
    assert path.stat().st_size > 6_000_000
    tracemalloc.start()
    try:
        with pytest.raises(TooManyRowsError, match="200,000 data rows"):
            read_table(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3_000_000, peak


@pytest.mark.slow
def test_one_million_rows_load_within_bounded_memory(tmp_path: Path) -> None:
    """The issue's case: 1,000,000 customers load under the default limit; peak RSS < 1.5 GB."""
    path = write_customers(tmp_path / "c1m.csv", 1_000_000)
    script = (
        "import sys\n"
        "from planner.inputs.customers import read_customers\n"
        "t = read_customers(sys.argv[1])\n"
        "assert not t.report.fatal and len(t.frame) == 1_000_000 and t.frame['valid'].all()\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"  # peak RSS, kB
        "print(int(status.split()[0]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("PLANNER_MAX_ROWS", None)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_kb = int(proc.stdout.strip().splitlines()[-1])
    assert peak_kb * 1024 < 1.5e9, peak_kb
