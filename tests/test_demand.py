"""Customer import (formats, encodings, delimiters, mapping, CRS), aggregation, demo generation."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from planner.errors import GraphError, InputError, NetworkError
from planner.inputs import customers as demand
from planner.inputs.customers import (
    aggregate_demand,
    classify_buildings,
    generate_demo_customers,
    geocode_missing,
    load_demo_customers,
    read_customers,
    write_demo_customers,
)

ROOT = Path(__file__).resolve().parent.parent


def sample_customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": ["A1", "B2", "C3", "D4"],
            "lat": [35.8989, 35.876, 35.9091, 35.8512],
            "lon": [14.5146, 14.472, 14.4261, 14.5003],
            "weight": [1.0, 2.5, 12.0, 3.0],
            "segment": ["private", "business", "business", "private"],
            "name": ["Café Zürich", "Müller & Söhne", "Élan", "Ångström"],
        }
    )


def assert_same_customers(frame: gpd.GeoDataFrame, expected: pd.DataFrame) -> None:
    assert frame["customer_id"].tolist() == expected["id"].tolist()
    np.testing.assert_allclose(frame["lat"], expected["lat"], atol=1e-9)
    np.testing.assert_allclose(frame["lon"], expected["lon"], atol=1e-9)
    np.testing.assert_allclose(frame["weight"], expected["weight"])
    assert frame["segment"].tolist() == expected["segment"].tolist()
    assert frame["name"].tolist() == expected["name"].tolist()
    assert frame.crs.to_epsg() == 4326
    np.testing.assert_allclose(frame.geometry.x, expected["lon"], atol=1e-9)
    assert frame["valid"].all()


# ---------------------------------------------------------------------------- formats


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_csv_delimiters_and_encodings_round_trip(
    tmp_path: Path, delimiter: str, encoding: str
) -> None:
    expected = sample_customers()
    path = tmp_path / "customers.csv"
    expected.to_csv(path, sep=delimiter, index=False, encoding=encoding)
    table = read_customers(path)
    assert table.report.exit_code == 0, str(table.report)
    assert_same_customers(table.frame, expected)
    note = table.report.notes[0]
    assert repr(delimiter) in note
    assert encoding in note


def test_decimal_comma_in_semicolon_csv(tmp_path: Path) -> None:
    expected = sample_customers()
    path = tmp_path / "customers.csv"
    expected.to_csv(path, sep=";", decimal=",", index=False, encoding="cp1252")
    table = read_customers(path)
    assert table.report.exit_code == 0
    assert_same_customers(table.frame, expected)


@pytest.mark.parametrize("fmt", ["xlsx", "parquet", "geojson", "gpkg", "geoparquet"])
def test_file_formats_round_trip(tmp_path: Path, fmt: str) -> None:
    expected = sample_customers()
    path = tmp_path / f"customers.{fmt}"
    if fmt == "xlsx":
        expected.to_excel(path, index=False)
    elif fmt == "parquet":
        expected.to_parquet(path)
    else:
        geo = gpd.GeoDataFrame(
            expected.drop(columns=["lat", "lon"]),
            geometry=gpd.points_from_xy(expected["lon"], expected["lat"]),
            crs=4326,
        )
        if fmt == "geoparquet":
            geo.to_parquet(path)
        else:
            geo.to_file(path)
    table = read_customers(path)
    assert table.report.exit_code == 0, str(table.report)
    assert_same_customers(table.frame, expected)


def test_projected_geopackage_is_converted_with_a_note(tmp_path: Path) -> None:
    expected = sample_customers()
    geo = gpd.GeoDataFrame(
        expected.drop(columns=["lat", "lon"]),
        geometry=gpd.points_from_xy(expected["lon"], expected["lat"]),
        crs=4326,
    ).to_crs(32633)
    path = tmp_path / "customers.gpkg"
    geo.to_file(path)
    table = read_customers(path)
    assert_same_customers(table.frame, expected)
    assert any("EPSG:32633" in n for n in table.report.notes)


def test_polygon_geometries_are_located_inside(tmp_path: Path) -> None:
    expected = sample_customers()
    points = gpd.points_from_xy(expected["lon"], expected["lat"])
    squares = shapely.buffer(np.asarray(points), 0.0005, cap_style="square")
    path = tmp_path / "buildings.geojson"
    gpd.GeoDataFrame(expected[["id"]], geometry=squares, crs=4326).to_file(path)
    frame = read_customers(path).frame
    assert all(shapely.contains(squares, frame.geometry.to_numpy()))


def test_xy_columns_with_crs(tmp_path: Path) -> None:
    expected = sample_customers()
    x, y = Transformer.from_crs(4326, 32633, always_xy=True).transform(
        expected["lon"].to_numpy(), expected["lat"].to_numpy()
    )
    data = expected.drop(columns=["lat", "lon"]).assign(easting=x, northing=y)
    path = tmp_path / "customers.csv"
    data.to_csv(path, index=False)
    table = read_customers(path, crs="EPSG:32633")
    assert_same_customers(table.frame, expected)
    assert any("converted from EPSG:32633" in n for n in table.report.notes)


def test_wkt_column(tmp_path: Path) -> None:
    expected = sample_customers()
    wkt = [
        f"POINT ({lon} {lat})" for lon, lat in zip(expected["lon"], expected["lat"], strict=True)
    ]
    path = tmp_path / "customers.csv"
    expected.drop(columns=["lat", "lon"]).assign(geometry=wkt).to_csv(path, index=False)
    assert_same_customers(read_customers(path).frame, expected)


def test_explicit_mapping(tmp_path: Path) -> None:
    expected = sample_customers()
    data = expected.rename(
        columns={"id": "Ref", "lat": "N", "lon": "E", "weight": "Repairs", "segment": "Kind"}
    )
    path = tmp_path / "crm_export.csv"
    data.to_csv(path, index=False)
    assert read_customers(path).report.exit_code == 2  # nothing recognisable without a mapping
    mapping = {"id": "Ref", "lat": "N", "lon": "E", "weight": "Repairs", "segment": "Kind"}
    table = read_customers(path, mapping=mapping)
    assert_same_customers(table.frame, expected)


def test_service_standard_per_segment(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    sample_customers().to_csv(path, index=False)
    table = read_customers(path, service_max_min={"business": 30})
    expected = [np.nan, 30.0, 30.0, np.nan]
    np.testing.assert_array_equal(table.frame["service_max_min"], expected)
    with pytest.raises(InputError, match="positive number"):
        read_customers(path, service_max_min={"business": 0})


def test_template_files_are_clean() -> None:
    from planner.inputs.validate import validate_file

    for name, kind in (("customers_template.csv", "customers"), ("sites_template.csv", "sites")):
        report = validate_file(ROOT / "data" / "demo" / name)
        assert report.kind == kind
        assert report.exit_code == 0, str(report)


# ---------------------------------------------------------------------------- aggregation


def test_aggregate_demand_sums_weights_by_position() -> None:
    key = np.array([7, 3, 7, 9, 3, 7])
    weights = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    point_index, unique_weights, inverse = aggregate_demand(
        SimpleNamespace(position_key=key), weights
    )
    # brute force: group by key in order of first appearance
    order = list(dict.fromkeys(key.tolist()))
    assert key[point_index].tolist() == order
    assert unique_weights.tolist() == [sum(weights[key == k]) for k in order]
    assert (key[point_index][inverse] == key).all()
    assert unique_weights.sum() == weights.sum()


def test_aggregate_demand_with_snapped_points() -> None:
    from planner.roads.snapping import snap_points

    G = nx.MultiDiGraph(crs="epsg:4326")
    G.add_node(1, x=14.50, y=35.90)
    G.add_node(2, x=14.51, y=35.90)
    G.add_edge(1, 2, length=900.0, travel_time=60.0)
    G.add_edge(2, 1, length=900.0, travel_time=60.0)
    # two customers in the same house, one across the street at the same road position,
    # one further along the street
    lon = np.array([14.503, 14.503, 14.503, 14.507])
    lat = np.array([35.9003, 35.9003, 35.8997, 35.9003])
    snapped = snap_points(G, lon, lat)
    point_index, unique_weights, inverse = aggregate_demand(snapped, np.array([1, 2, 4, 8]))
    assert inverse.tolist() == [0, 0, 0, 1]
    assert unique_weights.tolist() == [7.0, 8.0]
    assert point_index.tolist() == [0, 3]


def test_aggregate_demand_rejects_length_mismatch() -> None:
    with pytest.raises(ValueError, match="one per customer"):
        aggregate_demand(SimpleNamespace(position_key=np.arange(3)), np.ones(2))


# ---------------------------------------------------------------------------- geocoding


def test_geocoding_is_off_unless_asked() -> None:
    frame = pd.DataFrame({"customer_id": ["A"], "lat": [np.nan], "lon": [np.nan], "address": ["x"]})
    started = time.perf_counter()
    with pytest.raises(NetworkError, match="online=True"):
        geocode_missing(frame)
    assert time.perf_counter() - started < 1.0


def test_geocoding_offline_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    import planner.roads.network

    monkeypatch.setattr(planner.roads.network, "check_online", lambda *, timeout_s=3.0: False)
    frame = pd.DataFrame({"customer_id": ["A"], "lat": [np.nan], "lon": [np.nan], "address": ["x"]})
    with pytest.raises(NetworkError, match="no connection"):
        geocode_missing(frame, online=True)


# ---------------------------------------------------------------------------- demo customers


def test_classify_buildings_segments() -> None:
    box = shapely.box(14.5, 35.9, 14.5001, 35.9001)
    features = gpd.GeoDataFrame(
        {
            "element": ["way"] * 5 + ["node"],
            "osm_id": [1, 2, 3, 4, 5, 6],
            "building": ["house", "yes", "church", "commercial", "yes", None],
            "shop": [None, None, None, None, "bakery", "electronics"],
            "office": [None] * 6,
            "craft": [None] * 6,
            "amenity": [None] * 6,
        },
        geometry=[box] * 5 + [shapely.Point(14.5, 35.9)],
        crs=4326,
    )
    pool = classify_buildings(features)
    assert pool["osm_ref"].tolist() == ["way/1", "way/2", "way/4", "way/5", "node/6"]
    assert pool["segment"].tolist() == ["private", "private", "business", "business", "business"]
    assert pool["sampling_weight"].iloc[0] > pool["sampling_weight"].iloc[2]


@pytest.mark.slow
def test_generate_demo_customers_is_deterministic_for_any_region() -> None:
    from planner.roads.network import load_region

    G = load_region("andorra")
    a = generate_demo_customers("andorra", 300, seed=1, graph=G)
    b = generate_demo_customers("andorra", 300, seed=1, graph=G)
    c = generate_demo_customers("andorra", 300, seed=2, graph=G)
    pd.testing.assert_frame_equal(a, b)
    assert not a["osm_ref"].equals(c["osm_ref"])
    assert a["customer_id"].is_unique
    assert set(a["segment"]) == {"private", "business"}
    for segment, (lo, hi) in {"private": (1, 3), "business": (2, 12)}.items():
        w = a.loc[a["segment"] == segment, "weight"]
        assert w.between(lo, hi).all()
    # every customer is within reach of the road graph
    from planner.roads.snapping import snap_points

    snapped = snap_points(G, a["lon"].to_numpy(), a["lat"].to_numpy(), max_snap_m=1000.0)
    assert not snapped.too_far.any()


@pytest.mark.slow
def test_committed_malta_demo_is_reproducible_and_on_the_main_island(tmp_path: Path) -> None:
    committed = ROOT / "data" / "demo" / "malta_customers.csv"
    regenerated = tmp_path / "malta_customers.csv"
    write_demo_customers(generate_demo_customers("malta", 2000, seed=0), regenerated)
    assert regenerated.read_bytes() == committed.read_bytes()

    header = committed.read_text().splitlines()[0]
    assert header == "id,lat,lon,weight,segment"
    demo = load_demo_customers("malta")
    assert len(demo) == 2000
    # no customer on Gozo/Comino (north-west of the Gozo channel, lat > 36.0 or lon < 14.32)
    assert (demo["lat"] < 36.0).all()
    assert (demo["lon"] > 14.32).all()
    table = read_customers(committed, region="malta")
    assert table.report.exit_code == 0, str(table.report)


@pytest.mark.slow
def test_features_and_demo_customers_from_a_pbf_match_the_xml(tmp_path: Path) -> None:
    """A user's .osm.pbf gives the same buildings and POIs as the same data in OSM XML."""
    import osmium

    from planner.roads.features import read_osm_features
    from planner.roads.network import region_features_path

    xml = region_features_path("andorra")
    assert xml is not None
    pbf = tmp_path / "user-extract.osm.pbf"
    with osmium.SimpleWriter(str(pbf)) as writer:
        for obj in osmium.FileProcessor(str(xml)):
            writer.add(obj)
    from_pbf = read_osm_features(pbf)
    from_xml = read_osm_features(xml)
    key = ["element", "osm_id"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(from_pbf[key]).reset_index(drop=True),
        pd.DataFrame(from_xml[key]).reset_index(drop=True),
    )
    assert from_pbf["building"].notna().sum() == from_xml["building"].notna().sum()


def test_features_of_a_broken_pbf_name_the_file(tmp_path: Path) -> None:
    from planner.roads.features import read_osm_features

    bad = tmp_path / "broken.osm.pbf"
    bad.write_bytes(b"\x00\x00\x00\x0dnot really a pbf file")
    # the one check every road and features path shares (planner.roads.osm_file)
    with pytest.raises(GraphError, match=r"broken\.osm\.pbf: not an OSM file"):
        read_osm_features(bad)


def test_generated_demo_customers_come_back_from_the_disk_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A region without a committed demo file (Liechtenstein) samples its customers once;
    a restarted process reads the same customers back from the cache."""
    fresh = demand.generate_demo_customers("liechtenstein", 300, seed=4)
    first = load_demo_customers("liechtenstein", n=300, seed=4)
    path = demand._demo_cache_path("liechtenstein", 300, 4)
    assert path is not None
    assert path.is_file()

    def no_sampling(*args: object, **kwargs: object) -> None:
        raise AssertionError("sampled again instead of reading the cache")

    monkeypatch.setattr(demand, "generate_demo_customers", no_sampling)
    back = load_demo_customers("liechtenstein", n=300, seed=4)
    for frame in (first, back):
        pd.testing.assert_frame_equal(
            pd.DataFrame(frame.drop(columns="geometry")),
            pd.DataFrame(fresh.drop(columns="geometry")),
        )
        assert frame.geometry.geom_equals_exact(fresh.geometry, tolerance=0).all()
    assert demand._demo_cache_path("liechtenstein", 300, 5) != path  # another seed, another file
    assert demand._demo_cache_path("not-a-region", 300, 4) is None
