"""One test per validation message: each names the row, the column, the value and a fix.

Region checks use a tiny road graph built in code: a 4 km square of two-way streets in Malta.
Its centre is 2 km from every street (too far from a road) but inside the network's bounds.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pyproj import Transformer

from planner.inputs.customers import read_customers
from planner.inputs.sites import read_sites
from planner.inputs.validate import validate_file
from planner.inputs.validation import (
    ValidationIssue,
    ValidationReport,
    detect_columns,
    normalize_column,
)

TO_LONLAT = Transformer.from_crs(32633, 4326, always_xy=True)
TO_UTM = Transformer.from_crs(4326, 32633, always_xy=True)
X0, Y0 = TO_UTM.transform(14.45, 35.87)


def lonlat(x_m: float, y_m: float) -> tuple[float, float]:
    lon, lat = TO_LONLAT.transform(X0 + x_m, Y0 + y_m)
    return round(float(lon), 7), round(float(lat), 7)


def square_graph() -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs="epsg:4326")
    corners = {1: (0.0, 0.0), 2: (4000.0, 0.0), 3: (4000.0, 4000.0), 4: (0.0, 4000.0)}
    for n, (x, y) in corners.items():
        lon, lat = lonlat(x, y)
        G.add_node(n, x=lon, y=lat)
    for u, v in ((1, 2), (2, 3), (3, 4), (4, 1)):
        for a, b in ((u, v), (v, u)):
            G.add_edge(a, b, length=4000.0, travel_time=300.0, speed_kph=48.0)
    return G


ON_ROAD = lonlat(2000.0, 20.0)
CENTRE = lonlat(2000.0, 2000.0)
FAR_EAST = lonlat(30000.0, 2000.0)


def write(tmp_path: Path, text: str, name: str = "customers.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def csv_rows(rows: list[tuple], header: str = "id,lat,lon,weight,segment") -> str:
    body = "\n".join(",".join("" if v is None else str(v) for v in r) for r in rows)
    return f"{header}\n{body}\n"


def only(report: ValidationReport, code: str) -> ValidationIssue:
    hits = [i for i in report.issues if i.code == code]
    assert len(hits) == 1, [str(i) for i in report.issues]
    return hits[0]


def good_row(i: int) -> tuple:
    lon, lat = ON_ROAD
    return (f"C{i}", lat, lon, 1, "private")


def check_message(issue: ValidationIssue, *, row: int, column: str | None, value: str | None):
    """The issue names row, line, column and value, and its text says all of it and a fix."""
    assert issue.row == row
    assert issue.line == row + 1  # CSV: header on line 1
    assert issue.column == column
    assert issue.value == value
    assert issue.fix
    text = str(issue)
    assert f"row {row} (line {row + 1} of the file)" in text
    if column is not None:
        assert repr(column) in text
    if value is not None:
        assert repr(value) in text
    assert "Fix:" in text


# ---------------------------------------------------------------------------- file level


def test_unknown_extension_is_rejected_with_allowed_list(tmp_path: Path) -> None:
    path = write(tmp_path, "id,lat,lon\n", name="customers.docx")
    report = validate_file(path)
    assert report.fatal
    assert report.exit_code == 2
    issue = only(report, "unreadable")
    assert issue.row is None
    for ext in (".csv", ".xlsx", ".geojson", ".gpkg", ".parquet"):
        assert ext in issue.problem


def test_corrupt_spreadsheet_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "customers.xlsx"
    path.write_bytes(b"this is not a zip file at all")
    report = validate_file(path)
    assert report.exit_code == 2
    assert "cannot be read" in only(report, "unreadable").problem
    assert read_customers(path).frame.empty


def test_undecodable_text_is_unreadable(tmp_path: Path) -> None:
    # 0x81 and 0x8d are undefined in cp1252 and invalid in UTF-8
    path = tmp_path / "customers.csv"
    path.write_bytes(b"id,lat,lon\n\x81\x8d,1,2\n")
    report = validate_file(path)
    assert report.exit_code == 2
    assert "decode" in only(report, "unreadable").problem


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, "id,lat,lon\n"))
    assert report.exit_code == 2
    assert "no data rows" in only(report, "unreadable").problem


def test_missing_location_columns(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, "id,weight\nA,1\nB,2\n"))
    assert report.exit_code == 2
    issue = only(report, "no_location_columns")
    assert "'id', 'weight'" in issue.problem
    assert "mapping" in issue.fix


def test_projected_xy_without_crs_is_unusable(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, "id,x,y\nA,451000,3970000\n"))
    assert report.exit_code == 2
    assert "crs" in only(report, "no_location_columns").fix


def test_clean_file_exit_code_zero(tmp_path: Path) -> None:
    path = write(tmp_path, csv_rows([good_row(1), good_row(2)]))
    table = read_customers(path, graph=square_graph())
    assert table.report.issues == ()
    assert table.report.exit_code == 0
    assert table.frame["valid"].all()
    assert "no problems" in str(table.report)


# ---------------------------------------------------------------------------- coordinates


def test_missing_coordinates(tmp_path: Path) -> None:
    lon, _ = ON_ROAD
    path = write(tmp_path, csv_rows([good_row(1), ("C2", "", lon, 1, "private"), good_row(3)]))
    table = read_customers(path)
    issue = only(table.report, "missing_coordinates")
    check_message(issue, row=2, column="lat", value=None)
    assert table.report.exit_code == 1
    # the row stays in the frame, flagged, and is left out of the usable rows
    assert table.frame["valid"].tolist() == [True, False, True]
    assert table.valid["customer_id"].tolist() == ["C1", "C3"]


def test_address_only_row_needs_coordinates_first(tmp_path: Path) -> None:
    text = "id,address,lat,lon\nC1,Triq il-Kbira 5 Qormi,,\nC2,x,35.9,14.5\n"
    table = read_customers(write(tmp_path, text))
    issue = only(table.report, "address_only")
    check_message(issue, row=1, column="address", value="Triq il-Kbira 5 Qormi")
    assert "coordinates first" in issue.problem
    assert "geocode_missing" in issue.fix
    assert table.frame["valid"].tolist() == [False, True]


def test_file_with_only_addresses_is_not_fatal(tmp_path: Path) -> None:
    report = validate_file(write(tmp_path, "id,address,weight\nC1,Valletta,1\nC2,,2\nC3,Qormi,1\n"))
    assert report.exit_code == 1
    codes = [(i.row, i.code) for i in report.issues]
    assert codes == [(1, "address_only"), (2, "missing_coordinates"), (3, "address_only")]


def test_non_numeric_coordinate(tmp_path: Path) -> None:
    lon, _ = ON_ROAD
    rows = [good_row(1), good_row(2), ("C3", "35°54'N", lon, 1, "private")]
    table = read_customers(write(tmp_path, csv_rows(rows)))
    issue = only(table.report, "non_numeric_coord")
    check_message(issue, row=3, column="lat", value="35°54'N")
    assert not table.frame["valid"].iloc[2]


def test_invalid_coordinate_range(tmp_path: Path) -> None:
    rows = [good_row(1), ("C2", 95.5, 200.0, 1, "private")]
    issue = only(read_customers(write(tmp_path, csv_rows(rows))).report, "invalid_coordinate")
    check_message(issue, row=2, column="lat", value="95.5")


def test_swapped_lat_lon_by_range(tmp_path: Path) -> None:
    # Sydney with lat and lon exchanged: "latitude" 151.2 is impossible, swapped it is fine
    rows = [good_row(1), ("C2", 151.2, -33.9, 1, "private")]
    issue = only(read_customers(write(tmp_path, csv_rows(rows))).report, "swapped_lat_lon")
    check_message(issue, row=2, column="lat/lon", value="151.2, -33.9")
    assert "swap" in issue.fix


def test_swapped_lat_lon_by_region(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    rows = [good_row(1), ("C2", lon, lat, 1, "private")]  # lat column holds the longitude
    table = read_customers(write(tmp_path, csv_rows(rows)), graph=square_graph())
    issue = only(table.report, "swapped_lat_lon")
    check_message(issue, row=2, column="lat/lon", value=f"{lon}, {lat}")
    assert "would be inside" in issue.problem
    assert table.frame["valid"].tolist() == [True, False]
    # the coordinates are reported, not silently changed
    assert table.frame["lat"].iloc[1] == pytest.approx(lon)


def test_outside_region(tmp_path: Path) -> None:
    lon, lat = FAR_EAST
    rows = [good_row(1), good_row(2), ("C3", lat, lon, 1, "private")]
    table = read_customers(write(tmp_path, csv_rows(rows)), graph=square_graph())
    issue = only(table.report, "outside_region")
    check_message(issue, row=3, column="lat/lon", value=f"{lat}, {lon}")
    assert "outside" in issue.problem
    assert table.frame["valid"].tolist() == [True, True, False]


def test_too_far_from_any_road(tmp_path: Path) -> None:
    lon, lat = CENTRE
    rows = [good_row(1), ("C2", lat, lon, 1, "private")]
    table = read_customers(write(tmp_path, csv_rows(rows)), graph=square_graph(), max_snap_m=1000)
    issue = only(table.report, "too_far_from_road")
    check_message(issue, row=2, column="lat/lon", value=f"{lat}, {lon}")
    assert "2,000 m" in issue.problem
    assert table.frame["valid"].tolist() == [True, False]
    # the same point passes with a larger allowance
    relaxed = read_customers(write(tmp_path, csv_rows(rows)), graph=square_graph(), max_snap_m=2500)
    assert relaxed.report.exit_code == 0


# ---------------------------------------------------------------------------- ids and weights


def test_duplicate_id_names_first_row(tmp_path: Path) -> None:
    rows = [good_row(1), good_row(2), good_row(1)]
    table = read_customers(write(tmp_path, csv_rows(rows)))
    issue = only(table.report, "duplicate_id")
    check_message(issue, row=3, column="id", value="C1")
    assert "row 1" in issue.problem
    assert table.frame["valid"].tolist() == [True, True, False]


def test_missing_id_is_a_warning_and_row_is_kept(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    rows = [good_row(1), ("", lat, lon, 2, "private")]
    table = read_customers(write(tmp_path, csv_rows(rows)))
    issue = only(table.report, "missing_id")
    check_message(issue, row=2, column="id", value=None)
    assert issue.severity == "warning"
    assert table.report.exit_code == 1
    assert table.frame["valid"].tolist() == [True, True]
    assert table.frame["customer_id"].tolist() == ["C1", "row2"]


@pytest.mark.parametrize(
    ("value", "code", "valid"),
    [
        ("-3", "negative_weight", False),
        ("many", "non_numeric_weight", False),
        ("0", "zero_weight", True),
    ],
)
def test_weight_problems(tmp_path: Path, value: str, code: str, valid: bool) -> None:
    lon, lat = ON_ROAD
    rows = [good_row(1), ("C2", lat, lon, value, "private")]
    table = read_customers(write(tmp_path, csv_rows(rows)))
    issue = only(table.report, code)
    check_message(issue, row=2, column="weight", value=value)
    assert issue.severity == ("error" if not valid else "warning")
    assert table.frame["valid"].tolist() == [True, valid]


def test_missing_weight_defaults_to_one_without_issue(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    rows = [good_row(1), ("C2", lat, lon, "", "business")]
    table = read_customers(write(tmp_path, csv_rows(rows)))
    assert table.report.issues == ()
    assert table.frame["weight"].tolist() == [1.0, 1.0]


def test_invalid_service_standard(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    header = "id,lat,lon,weight,segment,service_max_min"
    rows = [("C1", lat, lon, 1, "business", 30), ("C2", lat, lon, 1, "business", "-5")]
    table = read_customers(write(tmp_path, csv_rows(rows, header)))
    issue = only(table.report, "invalid_service_std")
    check_message(issue, row=2, column="service_max_min", value="-5")
    assert issue.severity == "warning"
    assert table.frame["service_max_min"].iloc[0] == 30.0
    assert np.isnan(table.frame["service_max_min"].iloc[1])


# ---------------------------------------------------------------------------- sites


def site_rows(rows: list[tuple]) -> str:
    return csv_rows(rows, "id,name,lat,lon,kind,status,fixed_cost,capacity")


def good_site(i: int) -> tuple:
    lon, lat = ON_ROAD
    return (f"S{i}", f"Site {i}", lat, lon, "workshop", "candidate", 1000, 500)


@pytest.mark.parametrize(
    ("column", "value", "code"),
    [
        ("kind", "garage", "invalid_kind"),
        ("status", "perhaps", "invalid_status"),
        ("fixed_cost", "-100", "negative_number"),
        ("fixed_cost", "12k EUR", "non_numeric_number"),
        ("capacity", "-1", "negative_number"),
        ("capacity", "lots", "non_numeric_number"),
    ],
)
def test_site_field_problems(tmp_path: Path, column: str, value: str, code: str) -> None:
    bad = list(good_site(2))
    bad[["id", "name", "lat", "lon", "kind", "status", "fixed_cost", "capacity"].index(column)] = (
        value
    )
    path = write(tmp_path, site_rows([good_site(1), tuple(bad)]), name="sites.csv")
    table = read_sites(path, graph=square_graph())
    issue = only(table.report, code)
    check_message(issue, row=2, column=column, value=value)
    if code.startswith("invalid"):
        assert "allowed values are" in issue.problem
    assert table.frame["valid"].tolist() == [True, False]
    assert validate_file(path).kind == "sites"


def test_site_aliases_are_normalised(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    rows = [
        ("S1", "a", lat, lon, "Own workshop", "Keep open", "", ""),
        ("S2", "b", lat, lon, "Outsourcing", "", "", ""),
        ("S3", "c", lat, lon, "HQ", "Excluded", '"1.500,5"', ""),
    ]
    table = read_sites(write(tmp_path, site_rows(rows), name="sites.csv"))
    assert table.frame["kind"].tolist() == ["workshop", "partner", "office"]
    assert table.frame["status"].tolist() == ["existing", "candidate", "excluded"]
    # "1.500,5" (thousands dot) is not a plain number: reported, not guessed
    assert table.report.codes == {"non_numeric_number"}


# ---------------------------------------------------------------------------- report, spreadsheets


def test_spreadsheet_rows_are_named_by_spreadsheet_row(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    frame = pd.DataFrame(
        {
            "id": ["A", "B", "C"],
            "lat": [lat, "n/a", lat],
            "lon": [lon, lon, lon],
            "weight": [1, 2, 3],
        }
    )
    path = tmp_path / "customers.xlsx"
    frame.to_excel(path, index=False)
    issue = only(validate_file(path), "non_numeric_coord")
    assert (issue.row, issue.line, issue.value) == (2, 3, "n/a")
    assert "row 2 (spreadsheet row 3)" in str(issue)


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    text = f"id,lat,lon\nA,{lat},{lon}\n\n\nB,abc,{lon}\n"
    table = read_customers(write(tmp_path, text))
    issue = only(table.report, "non_numeric_coord")
    assert (issue.row, issue.line) == (4, 5)
    assert len(table.frame) == 2
    assert table.frame["row"].tolist() == [1, 4]


def test_report_frame_and_text_list_every_issue(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    rows = [good_row(1), ("C1", "x", lon, "-1", "p"), ("C3", lat, lon, "y", "p")]
    report = read_customers(write(tmp_path, csv_rows(rows))).report
    frame = report.to_frame()
    assert len(frame) == len(report.issues) == 4
    assert set(frame.columns) >= {"row", "line", "column", "value", "problem", "fix"}
    assert frame["row"].tolist() == [2, 2, 2, 3]
    text = str(report)
    assert all(str(i) in text for i in report.issues)
    assert "exit code 1" in text
    assert report.error_rows.tolist() == [2, 3]


def test_column_names_are_matched_in_common_spellings() -> None:
    found = detect_columns(
        ["Kunden-Nr.", "Breitengrad", "Längengrad", "Jobs per year", "Type"],
        fields=("id", "lat", "lon", "weight", "segment"),
        mapping={"id": "Kunden-Nr."},
    )
    assert found == {
        "id": "Kunden-Nr.",
        "lat": "Breitengrad",
        "lon": "Längengrad",
        "weight": "Jobs per year",
        "segment": "Type",
    }
    assert normalize_column(" Lat. (WGS84) ") == "lat_wgs84"


def test_bad_mapping_raises_with_choices() -> None:
    from planner.errors import InputError

    with pytest.raises(InputError, match="allowed fields are"):
        detect_columns(["a"], fields=("id", "lat"), mapping={"latitude": "a"})
    with pytest.raises(InputError, match="the file has: 'a'"):
        detect_columns(["a"], fields=("id", "lat"), mapping={"lat": "b"})


def test_validate_file_rejects_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers"):
        validate_file(write(tmp_path, csv_rows([good_row(1)])), kind="people")


# ---------------------------------------------------------------------------- command line


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from planner.cli import main

    clean = write(tmp_path, csv_rows([good_row(1)]), name="clean.csv")
    assert main(["validate", str(clean)]) == 0
    assert "no problems" in capsys.readouterr().out

    lon, _ = ON_ROAD
    bad = write(tmp_path, csv_rows([good_row(1), ("C2", "abc", lon, 1, "p")]), name="bad.csv")
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "row 2 (line 3 of the file), column 'lat', value 'abc'" in out

    broken = write(tmp_path, "nothing useful", name="broken.txt")
    assert main(["validate", str(broken)]) == 2


@pytest.mark.slow
def test_cli_validate_against_bundled_region(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from planner.cli import main

    rows = [("A", 47.14, 9.52, 1, "p"), ("B", 35.9, 14.5, 1, "p"), ("C", 9.52, 47.14, 1, "p")]
    path = write(tmp_path, csv_rows(rows))
    assert main(["validate", str(path), "--region", "liechtenstein"]) == 1
    out = capsys.readouterr().out
    assert "row 2 (line 3 of the file)" in out
    assert "outside liechtenstein" in out
    assert "row 3 (line 4 of the file)" in out
    assert "swapped" in out
    assert "row 1 " not in out


def test_auto_kind_tells_sites_from_customers(tmp_path: Path) -> None:
    lon, lat = ON_ROAD
    crm = write(tmp_path, f"id,lat,lon,status\nA,{lat},{lon},active\n", name="crm.csv")
    assert validate_file(crm).kind == "customers"
    sites = write(tmp_path, f"id,lat,lon,status\nA,{lat},{lon},existing\n", name="s.csv")
    assert validate_file(sites).kind == "sites"
    with_kind = write(tmp_path, f"id,lat,lon,kind\nA,{lat},{lon},partner\n", name="k.csv")
    assert validate_file(with_kind).kind == "sites"
    assert validate_file(crm, kind="sites").kind == "sites"


@given(
    st.lists(
        st.floats(min_value=-180, max_value=180, allow_nan=False).map(lambda v: round(v, 6)),
        min_size=1,
        max_size=20,
    ),
    st.booleans(),
)
def test_parse_numbers_reads_decimal_point_and_comma(values: list[float], comma: bool) -> None:
    from planner.inputs.validation import parse_numbers

    text = [f"{v:.6f}".replace(".", ",") if comma else f" {v!r} " for v in values]
    parsed, missing, bad = parse_numbers(pd.Series([*text, "", "12 O'Clock"], dtype=object))
    np.testing.assert_allclose(parsed[: len(values)], values, rtol=0, atol=1e-9)
    assert missing.tolist() == [False] * len(values) + [True, False]
    assert bad.tolist() == [False] * len(values) + [False, True]
