"""Formula injection (OWASP "CSV injection"): no export lets user text run as a formula.

Sites and customers get hostile names; every written file is read back: no XLSX cell is a
formula, no CSV field starts with a trigger character unless it is a number, numbers stay
numbers, and the HTML exports escape the names.
"""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
from test_scenarios import make_sinst

from planner.engine import compare
from planner.outputs import export
from planner.outputs.safe import (
    FORMULA_TRIGGERS,
    is_formula_like,
    spreadsheet_safe,
    to_csv_bytes,
)

HOSTILE = [
    '=HYPERLINK("http://evil.example","x")',
    "@SUM(1+1)",
    "+cmd|' /C calc'!A0",
    "-2+3",
    "\tTAB",
    "\rCR",
]


@pytest.fixture(scope="module")
def hostile_comparison():
    sinst = make_sinst(seed=31, n=12)
    cands = sinst.instance.candidates
    cands["name"] = [HOSTILE[j % len(HOSTILE)] for j in range(len(cands))]
    cust = sinst.instance.customers
    cust["customer_id"] = [
        HOSTILE[i % len(HOSTILE)] + f"#{i}" if i % 2 else f"-{i}" for i in range(len(cust))
    ]
    cust["segment"] = ["=1+1" if i % 3 == 0 else "private" for i in range(len(cust))]
    return compare(sinst.spec.replace(workshops=2), sinst=sinst)


def _starts_with_trigger(text: str) -> bool:
    return text.startswith(FORMULA_TRIGGERS)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _assert_csv_safe(data: bytes) -> int:
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    checked = 0
    for row in rows:
        for field in row:
            if _starts_with_trigger(field):
                assert _is_number(field), f"unsafe CSV field {field!r}"
            checked += 1
    return checked


def test_spreadsheet_safe_prefixes_triggers_and_keeps_numbers():
    frame = pd.DataFrame(
        {
            "name": [*HOSTILE, "plain", "-12.5", "+3", None],
            "value": [1.5, -2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0],
            "cat": pd.Categorical(["=A1"] * 5 + ["b"] * 5),
        }
    )
    safe = spreadsheet_safe(frame)
    assert safe["name"].tolist()[:6] == ["'" + h for h in HOSTILE]
    # plain text and text that is a number stay as typed; missing stays missing
    assert safe["name"].tolist()[6:9] == ["plain", "-12.5", "+3"]
    assert pd.isna(safe["name"].iloc[9])
    pd.testing.assert_series_equal(safe["value"], frame["value"])
    assert safe["cat"].tolist() == ["'=A1"] * 5 + ["b"] * 5
    assert frame["name"].iloc[0] == HOSTILE[0]  # the input is not modified
    assert not is_formula_like(-2.0)
    assert is_formula_like("-2+3")
    assert not is_formula_like("-2.3")


def test_to_csv_bytes_is_safe_and_round_trips_numbers():
    frame = pd.DataFrame({"site": HOSTILE, "jobs": np.arange(len(HOSTILE), dtype=float) - 2})
    data = to_csv_bytes(frame)
    assert _assert_csv_safe(data) == 2 * (len(HOSTILE) + 1)
    back = pd.read_csv(io.BytesIO(data))
    np.testing.assert_allclose(back["jobs"], frame["jobs"])
    assert back["jobs"].dtype == float


def test_layout_bundle_csvs_have_no_live_formula(tmp_path: Path, hostile_comparison):
    lr = hostile_comparison.results["in-house"]
    files = export.write_layout_bundle(lr, tmp_path / "out")
    for role in ("shortlist", "assignments", "territories"):
        data = files[role].read_bytes()
        assert _assert_csv_safe(data) > 0
    short = pd.read_csv(files["shortlist"])
    # names are still readable, only prefixed; numbers are numbers
    assert all(n.startswith("'") for n in short["name"])
    assert {n[1:] for n in short["name"]} <= set(HOSTILE)
    assert pd.api.types.is_float_dtype(short["mean_travel_min"])
    assign = pd.read_csv(files["assignments"], dtype={"customer_id": str})
    # ids typed as negative numbers stay readable as they are
    assert "-0" in set(assign["customer_id"])
    assert "-2" in set(assign["customer_id"])
    np.testing.assert_allclose(
        assign["travel_min"], lr.result.customers["travel_min"].to_numpy(float)
    )


def test_comparison_bundle_csvs_have_no_live_formula(tmp_path: Path, hostile_comparison):
    files = export.write_comparison_bundle(hostile_comparison, tmp_path / "cmp")
    for role, path in files.items():
        if path.suffix == ".csv":
            assert _assert_csv_safe(path.read_bytes()) > 0, role


def _xlsx_cells(data: bytes):
    book = openpyxl.load_workbook(io.BytesIO(data))
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            yield from row


@pytest.mark.parametrize("layout", ["in-house", None])
def test_xlsx_has_no_formula_cell(hostile_comparison, layout):
    target = hostile_comparison if layout is None else hostile_comparison.results[layout]
    buf = io.BytesIO()
    export.write_xlsx(target, buf)
    cells = list(_xlsx_cells(buf.getvalue()))
    assert cells
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    texts = [c.value for c in cells if isinstance(c.value, str)]
    # the names are there, as readable text
    assert [t for t in texts if t.startswith("'") and t[1:] in HOSTILE]
    assert not [t for t in texts if _starts_with_trigger(t) and not _is_number(t)]
    numbers = [c.value for c in cells if c.data_type == "n" and c.value is not None]
    assert numbers  # numbers were written as numbers
    # the raw XML holds no <f> element either
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in z.read(name)


def test_geopackage_and_geojson_attributes_are_neutralised(tmp_path: Path, hostile_comparison):
    lr = hostile_comparison.results["outsourced"]
    path = export.write_geopackage(lr, tmp_path / "p.gpkg")
    for layer in export.GIS_LAYERS:
        frame = gpd.read_file(path, layer=layer)
        for col in frame.columns:
            if frame[col].dtype == object and col != "geometry":
                bad = [v for v in frame[col] if isinstance(v, str) and is_formula_like(v)]
                assert not bad, (layer, col, bad)
    sites = gpd.read_file(path, layer="sites")
    assert all(str(n).startswith("'") for n in sites["name"])
    buf = io.BytesIO()
    export.write_geojson(lr, buf, layer="customers")
    back = gpd.read_file(io.BytesIO(buf.getvalue()))
    assert not [v for v in back["customer_id"] if is_formula_like(v)]


def test_html_exports_escape_names(hostile_comparison):
    lr = hostile_comparison.results["in-house"]
    buf = io.BytesIO()
    export.write_report_html(hostile_comparison, buf)
    text = buf.getvalue().decode("utf-8")
    assert '=HYPERLINK("http://evil.example"' not in text
    assert "=HYPERLINK(&quot;http://evil.example&quot;" in text
    buf = io.BytesIO()
    export.write_map_html(lr, buf)
    doc = buf.getvalue().decode("utf-8")
    assert '<b>=HYPERLINK("http' not in doc
