"""Exports: every format is read back and compared; no writer replaces a file unasked."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import shapely
from test_scenarios import make_sinst

from planner.engine import compare, solve_layout
from planner.outputs import export
from planner.outputs.export import GIS_LAYERS, OutputExistsError
from planner.outputs.report import report_html


@pytest.fixture(scope="module")
def comparison():
    sinst = make_sinst(seed=21, n=15)
    return compare(sinst.spec.replace(workshops=2), sinst=sinst)


@pytest.fixture(scope="module")
def two_tier(comparison):
    return comparison.results["two-tier"]


def test_shortlist_csv_round_trip(tmp_path: Path, two_tier):
    path = export.write_shortlist_csv(two_tier, tmp_path / "shortlist.csv")
    back = pd.read_csv(path, dtype={"site_id": str})
    expected = two_tier.result.shortlist()
    assert back["site_id"].tolist() == expected["site_id"].astype(str).tolist()
    np.testing.assert_allclose(back["mean_travel_min"], expected["mean_travel_min"])
    np.testing.assert_allclose(back["demand_share"], expected["demand_share"])
    assert {"jobs", "utilisation"} <= set(back.columns)


def test_territories_and_comparison_csv(tmp_path: Path, comparison, two_tier):
    terr = pd.read_csv(
        export.write_territories_csv(two_tier, tmp_path / "t.csv"), dtype={"site_id": str}
    )
    cust = two_tier.result.customers
    assert terr["customer_id"].tolist() == cust["customer_id"].tolist()
    assert terr["site_id"].tolist() == cust["site_id"].tolist()
    assert (terr["office_id"] == two_tier.office_id).all()
    table = pd.read_csv(export.write_comparison_csv(comparison, tmp_path / "c.csv"))
    pd.testing.assert_frame_equal(table, comparison.table, check_dtype=False)


def test_xlsx_has_a_sheet_per_layout_and_the_comparison(tmp_path: Path, comparison):
    path = export.write_xlsx(comparison, tmp_path / "plan.xlsx")
    book = openpyxl.load_workbook(path, read_only=True)
    names = book.sheetnames
    assert names[0] == "comparison"
    assert {"in-house", "outsourced", "two-tier", "site diff", "assumptions", "provenance"} <= set(
        names
    )
    book.close()
    back = pd.read_excel(path, sheet_name=None)
    pd.testing.assert_frame_equal(back["comparison"], comparison.table, check_dtype=False)
    for layout, lr in comparison.results.items():
        sheet = back[layout]
        assert sheet["site_id"].astype(str).tolist() == lr.result.sites["site_id"].tolist()
        np.testing.assert_allclose(sheet["mean_travel_min"], lr.result.sites["mean_travel_min"])
    assumptions = back["assumptions"].set_index("parameter")
    params = comparison.results["in-house"].parameters
    assert assumptions.loc["leakage_share", "value"] == params.leakage_share


def test_geopackage_has_four_layers_that_read_back(tmp_path: Path, two_tier):
    path = export.write_geopackage(two_tier, tmp_path / "plan.gpkg")
    layers = dict(pyogrio.list_layers(path))
    assert list(layers) == list(GIS_LAYERS)
    assert layers["customers"] == "Point"
    assert layers["assignments"] == "LineString"
    assert layers["catchments"] in ("Polygon", "MultiPolygon")
    expected = export.result_layers(two_tier)
    for name in GIS_LAYERS:
        back = gpd.read_file(path, layer=name)
        assert back.crs.to_epsg() == 4326
        assert len(back) == len(expected[name])
        assert back.geometry.geom_equals_exact(expected[name].geometry, tolerance=1e-9).all()
    sites = gpd.read_file(path, layer="sites")
    assert sites["site_id"].tolist() == two_tier.result.sites["site_id"].tolist()
    assert set(sites["role"]) == {"workshop", "office"}


def test_catchments_contain_their_customers_and_lines_join_them(two_tier):
    layers = export.result_layers(two_tier)
    catch = layers["catchments"].set_index("site_id")
    cust = layers["customers"]
    for sid, poly in catch.geometry.items():
        mine = cust[cust["site_id"] == sid]
        assert len(mine) == catch.loc[sid, "customers"]
        assert poly.buffer(1e-9).contains(shapely.union_all(mine.geometry.to_numpy()))
    lines = layers["assignments"]
    sites = layers["sites"].set_index("site_id")
    for row in lines.itertuples(index=False):
        end = shapely.Point(row.geometry.coords[-1])
        assert end.equals_exact(sites.loc[row.site_id, "geometry"], 1e-9)


@pytest.mark.parametrize("layer", GIS_LAYERS)
def test_geojson_each_layer_round_trips(tmp_path: Path, two_tier, layer: str):
    path = export.write_geojson(two_tier, tmp_path / f"{layer}.geojson", layer=layer)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "FeatureCollection"
    back = gpd.read_file(path)
    assert len(back) == len(export.result_layers(two_tier)[layer])


def test_geojson_rejects_unknown_layer(tmp_path: Path, two_tier):
    with pytest.raises(ValueError, match="catchments"):
        export.write_geojson(two_tier, tmp_path / "x.geojson", layer="roads")


def test_report_has_kpis_assumptions_provenance_and_credit(tmp_path: Path, comparison):
    path = export.write_report_html(comparison, tmp_path / "report.html", title="Tiny")
    text = path.read_text(encoding="utf-8")
    assert "<title>Tiny</title>" in text
    assert "OpenStreetMap contributors" in text
    assert "<svg" in text  # the cost chart
    assert text.count("<iframe") == 3  # one map per layout
    for word in ("mean travel time (min)", "leakage_share", "Provenance", "Sites across"):
        assert word in text
    for layout, lr in comparison.results.items():
        assert layout in text
        for sid in lr.result.sites["site_id"]:
            assert str(sid) in text
    # the report loads nothing from the internet (the maps inline their own assets)
    assert 'src="http' not in text
    assert "<link" not in text


def test_report_of_a_single_layout(two_tier):
    text = report_html(two_tier)
    assert text.count("<iframe") == 1
    assert "two-tier" in text


def test_map_html_is_written(tmp_path: Path, two_tier):
    path = export.write_map_html(two_tier, tmp_path / "map.html")
    assert "OpenStreetMap" in path.read_text(encoding="utf-8")


WRITERS = [
    ("write_shortlist_csv", "a.csv", {}),
    ("write_territories_csv", "t.csv", {}),
    ("write_xlsx", "a.xlsx", {}),
    ("write_geojson", "a.geojson", {"layer": "sites"}),
    ("write_geopackage", "a.gpkg", {}),
    ("write_map_html", "m.html", {}),
    ("write_report_html", "r.html", {}),
]


@pytest.mark.parametrize(("writer", "name", "kwargs"), WRITERS)
def test_no_writer_overwrites_without_being_asked(
    tmp_path: Path, two_tier, writer: str, name: str, kwargs: dict
):
    target = tmp_path / name
    target.write_text("precious", encoding="utf-8")
    func = getattr(export, writer)
    with pytest.raises(OutputExistsError, match="overwrite") as info:
        func(two_tier, target, **kwargs)
    assert isinstance(info.value, FileExistsError)
    assert str(target) in str(info.value)
    assert target.read_text(encoding="utf-8") == "precious"
    func(two_tier, target, overwrite=True, **kwargs)
    assert target.read_bytes() != b"precious"


def test_single_result_xlsx(tmp_path: Path):
    sinst = make_sinst(seed=22)
    lr = solve_layout(sinst, "in-house", workshops=2)
    path = export.write_xlsx(lr, tmp_path / "one.xlsx")
    back = pd.read_excel(path, sheet_name=None)
    assert "in-house" in back
    assert "comparison" not in back


# ----------------------------------------------------------------------------- people's numbers


def test_kpi_labels_and_formats():
    from planner.results.tables import display_table, format_kpi, kpi_label

    assert kpi_label("served_demand_share") == "served demand"
    assert kpi_label("share_within_sla_business") == "within the service standard (business)"
    assert kpi_label("share_within_15_min") == "within 15 min"
    assert format_kpi("served_demand_share", 0.95123) == "95.1 %"
    assert format_kpi("annual_cost", 1173627.4995) == "1,173,627 EUR"
    assert format_kpi("annual_cost", 317400.0) == "317,400 EUR"
    assert format_kpi("cost_per_job", 87.304) == "87.30 EUR"
    assert format_kpi("mean_travel_min", 12.345) == "12.3 min"
    assert format_kpi("customers", 12345.0) == "12,345"
    assert format_kpi("lat", 35.912345678) == "35.91235"
    assert format_kpi("optimal", 1.0) == "yes"
    assert format_kpi("gap", float("nan")) == "–"
    shown = display_table(
        pd.DataFrame({"annual_cost": [3.174e5], "share_within_sla": [0.5], "layout": ["x"]})
    )
    assert list(shown.columns) == ["annual cost (EUR)", "within the service standard (%)", "layout"]
    assert shown.iloc[0].tolist() == ["317,400", "50.0", "x"]


def test_report_numbers_are_for_people_and_print_on_a4(comparison):
    import re

    page = report_html(comparison)
    text = re.sub(r"<iframe.*?</iframe>", "", page, flags=re.DOTALL)  # the tables only
    lr = comparison.results["in-house"]
    # no raw floats or scientific notation of the costs
    total = lr.costs.total_eur
    assert f"{total:,.0f}" in text
    assert repr(total) not in text
    assert "e+0" not in text
    assert "served demand" in text
    assert "served_demand_share" not in text
    share = lr.kpis["served_demand_share"]
    assert f"{100 * share:.1f} %" in text
    lat = float(lr.result.sites["lat"].iloc[0])
    assert f"{lat:.5f}" in text
    assert repr(lat) not in text
    assert "@page { size: A4 portrait" in page
    assert "@media print" in text
    assert "overflow-wrap: anywhere" in text


@pytest.fixture(scope="module")
def sweeps(comparison):
    from planner.engine import k_curve
    from planner.results.types import Robustness

    sinst = make_sinst(seed=21, n=15)
    curve = k_curve(sinst, 3, layout="in-house")
    # robustness needs a road graph; its tables are built here as the engine shapes them
    cases = pd.DataFrame(
        {
            "case": ["base", "demand +30 % business", "main roads 1.3x slower"],
            "sites": [["C1", "C3"], ["C1", "C3"], ["C1", "C4"]],
            "mean_travel_min": [12.25, 12.5, 15.75],
            "p90_travel_min": [20.0, 21.0, 25.5],
            "annual_cost": [476000.0, 476000.0, 476000.0],
            "optimal": [True, True, True],
            "gap": [0.0, 0.0, 0.0],
        }
    )
    sites = pd.DataFrame(
        {
            "site_id": ["C1", "C3", "C4"],
            "base": [True, True, False],
            "chosen_in": [3, 2, 1],
            "stable": [True, False, False],
        }
    )
    return curve, Robustness(cases=cases, sites=sites)


def test_report_and_workbook_carry_k_curve_and_robustness(tmp_path: Path, comparison, sweeps):
    curve, rob = sweeps
    files = export.write_comparison_bundle(
        comparison, tmp_path / "b", k_curve=curve, robustness=rob
    )
    text = files["report"].read_text(encoding="utf-8")
    assert "Number of workshops (K-curve)" in text
    assert "Robustness" in text
    for cost in curve["annual_cost"]:
        assert f"{cost:,.0f}" in text
    for case in rob.cases["case"]:
        assert str(case) in text
    assert "Sites chosen in every case: C1." in text
    assert "C1, C4" in text  # the list of sites of a case, as words
    book = pd.read_excel(files["xlsx"], sheet_name=None)
    np.testing.assert_allclose(book["k-curve"]["annual_cost"], curve["annual_cost"])
    assert book["k-curve"]["workshops"].tolist() == curve["workshops"].tolist()
    assert book["robustness cases"]["case"].tolist() == rob.cases["case"].tolist()
    assert (
        book["robustness sites"]["site_id"].astype(str).tolist()
        == rob.sites["site_id"].astype(str).tolist()
    )
    # and without them, neither appears
    plain = report_html(comparison)
    assert "K-curve" not in plain
    assert "Robustness" not in plain


def test_layout_bundle_takes_k_curve_and_draws_roads_from_a_graph(tmp_path: Path, sweeps):
    import networkx as nx

    sinst = make_sinst(seed=22)
    lr = solve_layout(sinst, "in-house", workshops=2)
    G = nx.MultiDiGraph(crs="EPSG:4326")
    G.add_node(1, x=9.5, y=47.1)
    G.add_node(2, x=9.6, y=47.2)
    G.add_edge(1, 2, highway="primary", name="Landstrasse", length=13000.0)
    files = export.write_layout_bundle(lr, tmp_path / "one", graph=G, k_curve=sweeps[0])
    doc = files["map"].read_text(encoding="utf-8")
    assert '"name": "Main roads"' in doc or "Main roads" in doc
    assert "[9.5, 47.1]" in doc  # the road's coordinates are on the map
    assert "k-curve" in pd.read_excel(files["xlsx"], sheet_name=None)


@pytest.mark.parametrize(
    ("writer", "kwargs", "magic"),
    [
        ("write_shortlist_csv", {}, b"site_id"),
        ("write_assignments_csv", {}, b"customer_id"),
        ("write_territories_csv", {}, b"customer_id"),
        ("write_xlsx", {}, b"PK"),
        ("write_geojson", {"layer": "sites"}, b"{"),
        ("write_geopackage", {}, b"SQLite format 3"),
        ("write_map_html", {}, b"<!DOCTYPE html>"),
        ("write_report_html", {}, b"<!DOCTYPE html>"),
    ],
)
def test_writers_write_into_buffers_the_same_bytes_as_into_files(
    tmp_path: Path, two_tier, writer: str, kwargs: dict, magic: bytes
):
    import io

    func = getattr(export, writer)
    buf = io.BytesIO()
    assert func(two_tier, buf, **kwargs) is buf
    data = buf.getvalue()
    assert data.startswith(magic)
    path = func(two_tier, tmp_path / "file", **kwargs)
    if writer.endswith("csv"):
        assert path.read_bytes() == data
    elif writer == "write_geopackage":
        copy = tmp_path / "copy.gpkg"
        copy.write_bytes(data)
        back = gpd.read_file(copy, layer="sites")
        assert back["site_id"].tolist() == two_tier.result.sites["site_id"].tolist()


def test_writers_reject_untyped_input(tmp_path: Path):
    with pytest.raises(TypeError, match="LayoutResult"):
        export.write_shortlist_csv(object(), tmp_path / "x.csv")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Comparison"):
        report_html(object())  # type: ignore[arg-type]
    assert not (tmp_path / "x.csv").exists()
