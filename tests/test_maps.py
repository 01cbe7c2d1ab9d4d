"""Maps and offline web assets: tiny hand-made inputs, no network, no browser."""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import folium
import folium.plugins
import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

from planner.outputs import assets, maps

EXTERNAL_REF = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)=\"([^\"]+)\"", re.IGNORECASE)


@dataclass(frozen=True)
class FakeResult:
    """The two tables of a ScenarioResult that the maps read."""

    customers: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame


def _points(frame: pd.DataFrame) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs="EPSG:4326"
    )


@pytest.fixture
def result() -> FakeResult:
    sites = _points(
        pd.DataFrame(
            {
                "site_id": ["W1", "W2", "HQ"],
                "role": ["workshop", "workshop", "office"],
                "name": ["North <shop>", "", "Head office"],
                "lat": [35.95, 35.85, 35.90],
                "lon": [14.40, 14.50, 14.45],
                "customers": [3, 1, 1],
                "demand_share": [0.5, 0.3, 0.2],
                "mean_travel_min": [4.25, 7.5, 1.0],
                "max_travel_min": [6.0, 7.5, 1.0],
            }
        )
    )
    customers = _points(
        pd.DataFrame(
            {
                "customer_id": ["c1", "c2", "c3", "c4", "c5", "c6"],
                "lat": [35.951234567, 35.94, 35.96, 35.86, 35.90, 35.80],
                "lon": [14.401234567, 14.41, 14.39, 14.49, 14.44, 14.60],
                "weight": [1.0, 2.0, 2.0, 3.0, 2.0, 1.0],
                "segment": ["private"] * 6,
                "site_id": ["W1", "W1", "W1", "W2", "HQ", ""],
                "travel_min": [4.0, 6.0, 3.0, 7.5, 1.0, np.nan],
                "snap_distance_m": [5.0] * 6,
            }
        )
    )
    return FakeResult(customers=customers, sites=sites)


def _layers(m: folium.Map, kind: type) -> list:
    found = []

    def walk(element: object) -> None:
        if isinstance(element, kind):
            found.append(element)
        for child in getattr(element, "_children", {}).values():
            walk(child)

    walk(m)
    return found


def _site_markers(group: folium.FeatureGroup) -> list[folium.CircleMarker]:
    return [c for c in _layers(group, folium.CircleMarker) if _layers(c, folium.Popup)]


def _customer_layer(m: folium.Map) -> folium.GeoJson:
    (layer,) = [g for g in _layers(m, folium.GeoJson) if g.layer_name == "Customers"]
    return layer


def _assert_osm_credit(m: folium.Map, html: str | None = None) -> None:
    """The OSM credit is added to the attribution control (visible without any tiles)."""
    (credit,) = [e for e in m._children.values() if type(e).__name__ == "_Attribution"]
    assert credit.text == maps.OSM_ATTRIBUTION
    html = m.get_root().render() if html is None else html
    call = re.search(r"attributionControl\.addAttribution\(\s*(\"[^\n]*\")\s*\)", html)
    assert call is not None
    assert json.loads(call.group(1)) == maps.OSM_ATTRIBUTION


# --- main roads -------------------------------------------------------------------------------


def _tiny_graph() -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs="EPSG:4326")
    coords = {
        1: (14.0, 35.0),
        2: (14.01, 35.0),
        3: (14.02, 35.01),
        4: (14.03, 35.01),
        5: (14.04, 35.0),
    }
    for n, (x, y) in coords.items():
        G.add_node(n, x=x, y=y)
    # a two-way primary road: two directed edges, one road segment
    G.add_edge(1, 2, osmid=10, highway="primary", name="Triq A", length=910.0)
    G.add_edge(2, 1, osmid=10, highway="primary", name="Triq A", length=910.0)
    # merged edge with several classes and a curved geometry
    bend = shapely.LineString([(14.01, 35.0), (14.0151234567, 35.0071234567), (14.02, 35.01)])
    G.add_edge(
        2,
        3,
        osmid=[11, 12],
        highway=["residential", "secondary"],
        name=["B", "C"],
        geometry=bend,
        length=1200.0,
    )
    G.add_edge(3, 4, osmid=13, highway="residential", length=900.0)
    G.add_edge(4, 5, osmid=14, highway="motorway_link", length=1000.0)
    return G


def test_main_roads_keeps_main_classes_once_per_segment() -> None:
    roads = maps.main_roads(_tiny_graph())
    assert sorted(roads["highway"]) == ["motorway_link", "primary", "secondary"]
    assert list(roads.columns) == ["highway", "name", "length_m", "geometry"]
    assert roads.crs.equals("EPSG:4326")
    bend = roads.loc[roads["highway"] == "secondary"].iloc[0]
    assert bend["name"] == "B; C"
    # the bend is kept (it is far more than 10 m off the straight line), rounded to 1e-5 deg
    coords = np.asarray(bend.geometry.coords)
    assert len(coords) == 3
    np.testing.assert_allclose(coords[1], [14.01512, 35.00712], atol=1e-9)
    # straight edges get a geometry from their end nodes
    primary = roads.loc[roads["highway"] == "primary"].iloc[0].geometry
    assert {tuple(c) for c in primary.coords} == {(14.0, 35.0), (14.01, 35.0)}


def test_main_roads_rejects_negative_tolerance() -> None:
    with pytest.raises(ValueError, match="tolerance_m"):
        maps.main_roads(_tiny_graph(), tolerance_m=-1.0)


def test_main_roads_of_projected_graph_come_back_in_lon_lat() -> None:
    G = _tiny_graph()
    roads = maps.main_roads(G)
    projected = nx.MultiDiGraph(G)
    projected.graph["crs"] = "EPSG:32633"
    points = gpd.GeoSeries(
        gpd.points_from_xy(
            [d["x"] for _, d in G.nodes(data=True)], [d["y"] for _, d in G.nodes(data=True)]
        ),
        crs="EPSG:4326",
    ).to_crs("EPSG:32633")
    for (_, data), p in zip(projected.nodes(data=True), points, strict=True):
        data["x"], data["y"] = p.x, p.y
    for _, _, data in projected.edges(data=True):
        if "geometry" in data:
            data["geometry"] = (
                gpd.GeoSeries([data["geometry"]], crs="EPSG:4326").to_crs("EPSG:32633").iloc[0]
            )
    back = maps.main_roads(projected)
    assert back.crs.equals("EPSG:4326")
    assert sorted(back["highway"]) == sorted(roads["highway"])
    for a, b in zip(
        back.sort_values("highway").geometry, roads.sort_values("highway").geometry, strict=True
    ):
        assert a.hausdorff_distance(b) < 2e-5


def test_main_roads_empty_graph_has_schema() -> None:
    G = nx.MultiDiGraph(crs="EPSG:4326")
    G.add_node(1, x=0.0, y=0.0)
    G.add_node(2, x=0.1, y=0.0)
    G.add_edge(1, 2, osmid=1, highway="service")
    roads = maps.main_roads(G)
    assert len(roads) == 0
    assert {"highway", "name", "length_m", "geometry"} <= set(roads.columns)


def test_roads_layer_draws_every_segment_with_osm_credit() -> None:
    roads = maps.main_roads(_tiny_graph())
    m = maps.customers_map(pd.DataFrame({"lat": [35.0], "lon": [14.0]}), roads=roads)
    (layer,) = [g for g in _layers(m, folium.GeoJson) if g.layer_name == "Main roads"]
    drawn = {f["properties"]["highway"]: f for f in layer.data["features"]}
    assert set(drawn) == set(roads["highway"])
    assert sum(len(f["geometry"]["coordinates"]) for f in drawn.values()) == len(roads)
    drawn_xy = np.concatenate(
        [np.asarray(line) for f in drawn.values() for line in f["geometry"]["coordinates"]]
    )
    every_xy = np.round(shapely.get_coordinates(roads.geometry.values), 5)
    assert np.array_equal(np.sort(drawn_xy, axis=0), np.sort(every_xy, axis=0))
    assert layer.options["interactive"] is False
    _assert_osm_credit(m)


def test_layers_know_their_bounds_without_walking_every_coordinate() -> None:
    """The roads and customer layers carry bounds from their coordinate arrays (what
    streamlit-folium asks for on every rerun): equal to folium's walk over the data, and a map
    rendered twice gives the same data script (the layer's JSON is made once)."""
    from folium.utilities import get_bounds

    rng = np.random.default_rng(0)
    customers = pd.DataFrame(
        {"lat": 35.8 + 0.1 * rng.random(500), "lon": 14.3 + 0.2 * rng.random(500)}
    )
    customers.loc[3, "lat"] = np.nan  # a customer without a location is not on the map
    m = maps.customers_map(customers, roads=maps.main_roads(_tiny_graph()))
    layers = [g for g in _layers(m, folium.GeoJson) if g.data["features"]]
    assert {g.layer_name for g in layers} >= {"Main roads"}
    assert len(layers) >= 2
    for layer in layers:
        assert layer._bounds is not None
        assert np.allclose(layer.get_bounds(), get_bounds(layer.data, lonlat=True))
    first = m.get_root().render()
    second = m.get_root().render()
    for layer in layers:
        data_lines = [
            [
                line
                for line in html.splitlines()
                if f"{layer.get_name()}_add(" in line and '"features": []' not in line
            ]
            for html in (first, second)
        ]
        assert len(data_lines[0]) == 1
        assert data_lines[0] == data_lines[1]
        assert json.loads(data_lines[0][0].split("_add(", 1)[1].rstrip(");")) == layer.data


def test_one_road_layer_is_made_into_geojson_once_for_every_map(result: FakeResult) -> None:
    """Maps drawing the same road layer share its GeoJSON and its JSON text (the app draws
    one shared layer on every map and rerun); another layer gets its own."""
    roads = maps.main_roads(_tiny_graph())
    customers = pd.DataFrame({"lat": [35.0], "lon": [14.0]})
    first = maps.customers_map(customers, roads=roads)
    second = maps.result_map(result, roads=roads)
    (a,) = [g for g in _layers(first, folium.GeoJson) if g.layer_name == "Main roads"]
    (b,) = [g for g in _layers(second, folium.GeoJson) if g.layer_name == "Main roads"]
    assert a.data is b.data
    scripts = []
    for m, layer in ((first, a), (second, b)):
        html = m.get_root().render()
        (line,) = [
            x
            for x in html.splitlines()
            if f"{layer.get_name()}_add(" in x and '"features": []' not in x
        ]
        scripts.append(line.split("_add(", 1)[1])
        assert json.loads(scripts[-1].rstrip(");")) == layer.data
    assert scripts[0] == scripts[1]
    other = roads.iloc[:1].copy()
    third = maps.customers_map(customers, roads=other)
    (c,) = [g for g in _layers(third, folium.GeoJson) if g.layer_name == "Main roads"]
    assert c.data is not a.data
    assert len(c.data["features"]) == 1


# --- result map -------------------------------------------------------------------------------


def test_result_map_colours_customers_by_their_site(result: FakeResult) -> None:
    m = maps.result_map(result)
    features = _customer_layer(m).data["features"]
    assert len(features) == len(result.customers)
    colors = maps.site_colors(result.sites["site_id"].tolist())
    assert len(set(colors.values())) == 3
    for feature, (_, row) in zip(features, result.customers.iterrows(), strict=True):
        expected = colors.get(row["site_id"], "#7f7f7f")
        assert feature["properties"]["c"] == expected
        # coordinates rounded to 1e-5 deg (about a metre)
        lon, lat = feature["geometry"]["coordinates"]
        assert lon == pytest.approx(row["lon"], abs=6e-6)
        assert lat == pytest.approx(row["lat"], abs=6e-6)
        assert lon == round(lon, 5)
    assert "not served" in features[-1]["properties"]["t"]
    assert "North &lt;shop&gt;" in features[0]["properties"]["t"]


def test_result_map_sites_have_popups_and_distinct_office(result: FakeResult) -> None:
    m = maps.result_map(result)
    groups = {g.layer_name: g for g in _layers(m, folium.FeatureGroup)}
    assert set(groups) == {"Workshops", "Office"}
    workshops = _site_markers(groups["Workshops"])
    (office,) = _site_markers(groups["Office"])
    assert len(workshops) == 2
    assert office.options["fillColor"] == "#000000"
    assert {w.options["fillColor"] for w in workshops} == {
        c for s, c in maps.site_colors(["W1", "W2", "HQ"]).items() if s != "HQ"
    }
    assert office.options["radius"] > max(w.options["radius"] for w in workshops)
    # each site has a non-interactive halo drawn under it
    halos = [c for c in _layers(m, folium.CircleMarker) if c.options.get("interactive") is False]
    assert len(halos) == len(result.sites)
    html = m.get_root().render()
    assert "demand share: 50.0 %" in html
    assert "mean travel: 4.2 min" in html or "mean travel: 4.3 min" in html
    assert "customers: 3" in html


def _legend(m: folium.Map):
    (legend,) = [e for e in m._children.values() if type(e).__name__ == "_Legend"]
    return legend


def test_result_map_legend_lists_sites_in_their_colours(result: FakeResult) -> None:
    m = maps.result_map(result)
    items = _legend(m).items
    colors = maps.site_colors(result.sites["site_id"].tolist())
    assert items[:3] == [
        ("site", colors["W1"], "W1 · North <shop>"),
        ("site", colors["W2"], "W2"),  # no name: the id only
        ("site", "#000000", "HQ · Head office (office)"),
    ]
    assert items[3][2] == "customer not served"  # c6 has no site
    assert "North &lt;shop&gt;" in _legend(m).html
    served = FakeResult(result.customers.iloc[:5], result.sites)
    assert len(_legend(maps.result_map(served)).items) == 3


def test_legend_is_capped_for_many_sites(result: FakeResult) -> None:
    n = 40
    sites = _points(
        pd.DataFrame(
            {
                "site_id": [f"S{i}" for i in range(n)],
                "role": "workshop",
                "name": "",
                "lat": 35.9 + 0.001 * np.arange(n),
                "lon": 14.4,
            }
        )
    )
    items = _legend(maps.result_map(FakeResult(result.customers, sites))).items
    assert len(items) <= 13
    assert items[-2][2] == f"… and {n - 11} more"


def test_customers_map_legend_shows_segments() -> None:
    customers = pd.DataFrame(
        {"lat": [35.9, 35.91, 35.92], "lon": [14.4, 14.41, 14.42], "segment": ["b", "a", None]}
    )
    m = maps.customers_map(customers)
    labels = [label for _, _, label in _legend(m).items]
    assert labels == ["(no segment)", "a", "b"]
    assert "3 customers" in _legend(m).html
    colors = {f["properties"]["c"] for f in _customer_layer(m).data["features"]}
    assert colors == {color for _, color, _ in _legend(m).items}


def test_result_map_offline_by_default_and_tiles_on_request(result: FakeResult) -> None:
    offline = maps.result_map(result)
    assert _layers(offline, folium.TileLayer) == []
    assert len(_layers(offline, folium.LayerControl)) == 1
    online = maps.result_map(result, tiles="OpenStreetMap")
    (tiles,) = _layers(online, folium.TileLayer)
    assert "openstreetmap.org" in tiles.tiles
    with pytest.raises(ValueError, match="OpenStreetMap"):
        maps.result_map(result, tiles="Stamen Toner")


def test_result_map_rejects_unknown_role(result: FakeResult) -> None:
    sites = result.sites.copy()
    sites.loc[0, "role"] = "depot"
    with pytest.raises(ValueError, match="workshop"):
        maps.result_map(FakeResult(result.customers, sites))


def test_customers_map_scales_to_ten_thousand_customers() -> None:
    rng = np.random.default_rng(1)
    n = 10_000
    customers = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "lat": 35.8 + 0.2 * rng.random(n),
            "lon": 14.3 + 0.3 * rng.random(n),
            "weight": rng.integers(1, 5, n).astype(float),
            "segment": rng.choice(["private", "business"], n),
        }
    )
    start = time.perf_counter()
    m = maps.customers_map(customers)
    html = maps.map_html(m)
    elapsed = time.perf_counter() - start
    layer = _customer_layer(m)
    assert len(layer.data["features"]) == n
    # one layer of canvas circle markers, not one DOM element (folium Marker) per customer
    assert m.options["prefer_canvas"] is True
    assert "L.circleMarker" in html or "L.CircleMarker" in html
    assert len(_layers(m, folium.Marker)) == 0
    assets_bytes = 260_000  # inlined Leaflet + jQuery + CSS
    assert (len(html) - assets_bytes) / n < 180, "customer payload should stay compact"
    assert elapsed < 10.0


# --- offline assets ---------------------------------------------------------------------------


def test_localize_map_points_every_resource_at_vendor_files() -> None:
    m = folium.Map(tiles=None)
    folium.plugins.MarkerCluster().add_to(m)
    assets.localize_map(m, base_url="/app/static/vendor")
    refs = EXTERNAL_REF.findall(m.get_root().render())
    assert refs, "expected local script/link tags"
    files = assets.vendor_files()
    for ref in refs:
        assert ref.startswith("/app/static/vendor/"), ref
        assert ref.removeprefix("/app/static/vendor/") in files
    assert any(r.endswith("leaflet.js") for r in refs)
    assert any(r.endswith("leaflet.markercluster.js") for r in refs)
    # folium's class-level defaults stay untouched: only this map was changed
    assert folium.Map.default_js[0][1].startswith("https://")
    assert EXTERNAL_REF.findall(folium.Map(tiles=None).get_root().render())[0].startswith("https")


def test_draw_tool_is_served_locally(tmp_path) -> None:
    """The Data page's "draw a box" tool (Leaflet.draw, from django-leaflet's copy), with the
    icons its stylesheet refers to, and no CDN."""
    m = folium.Map(tiles=None)
    folium.plugins.Draw().add_to(m)
    assets.localize_map(m, base_url="/app/static/vendor")
    refs = EXTERNAL_REF.findall(m.get_root().render())
    assert "/app/static/vendor/leaflet.draw/leaflet.draw.js" in refs
    assert "/app/static/vendor/leaflet.draw/leaflet.draw.css" in refs
    files = assets.vendor_files()
    assert all(ref.removeprefix("/app/static/vendor/") in files for ref in refs)
    vendor = assets.install_static_assets(tmp_path / "static")
    assert "Leaflet.draw 1.0" in (vendor / "leaflet.draw/leaflet.draw.js").read_text()[:200]
    css = (vendor / "leaflet.draw/leaflet.draw.css").read_text()
    images = re.findall(r"url\(['\"]?([^'\")]+)['\"]?\)", css)
    assert images
    for image in images:
        assert (vendor / "leaflet.draw" / image).is_file(), image


def test_localize_map_refuses_resources_without_local_copy() -> None:
    m = folium.Map(tiles=None)
    folium.plugins.Fullscreen().add_to(m)
    with pytest.raises(ValueError, match="not available offline"):
        assets.localize_map(m)


def test_install_static_assets_copies_once(tmp_path) -> None:
    vendor = assets.install_static_assets(tmp_path / "static")
    files = assets.vendor_files()
    assert "leaflet/leaflet.js" in files
    assert "leaflet/images/layers.png" in files
    for key, source in files.items():
        assert (vendor / key).read_bytes() == source.read_bytes()
    before = {key: (vendor / key).stat().st_ino for key in files}
    (vendor / "leaflet/leaflet.css").write_text("broken")
    assets.install_static_assets(tmp_path / "static")
    after = {key: (vendor / key).stat().st_ino for key in files}
    # only the damaged file is copied again (a copy replaces the file, so a new inode)
    assert {key for key in files if before[key] != after[key]} == {"leaflet/leaflet.css"}
    restored = (vendor / "leaflet/leaflet.css").read_bytes()
    assert restored == files["leaflet/leaflet.css"].read_bytes()


def test_standalone_html_inlines_everything(result: FakeResult, tmp_path) -> None:
    m = maps.result_map(result, roads=maps.main_roads(_tiny_graph()))
    path = maps.save_map(m, tmp_path / "out" / "map.html")
    html = path.read_text(encoding="utf-8")
    assert EXTERNAL_REF.findall(html) == []
    assert "https://cdn" not in html
    assert "Leaflet 1.9.3" in html or '"1.9.3"' in html
    assert "data:image/png;base64," in html  # layer control icon from leaflet.css
    assert "sourceMappingURL" not in html
    _assert_osm_credit(m, html)
    # the map's own links are restored for later (app) use
    assert "default_js" not in m.__dict__


def test_check_tiles_reachable(monkeypatch) -> None:
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert assets.check_tiles_reachable("127.0.0.1", port=port, timeout_s=2.0)
        monkeypatch.setenv("PLANNER_OFFLINE", "1")
        assert not assets.check_tiles_reachable("127.0.0.1", port=port, timeout_s=2.0)
    monkeypatch.delenv("PLANNER_OFFLINE")
    assert not assets.check_tiles_reachable("127.0.0.1", port=port, timeout_s=0.5)


def test_app_static_url_matches_streamlit_config() -> None:
    config = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"
    text = config.read_text(encoding="utf-8")
    assert re.search(r"^enableStaticServing\s*=\s*true", text, re.MULTILINE)
    assert assets.APP_STATIC_URL == "app/static/" + assets.VENDOR_DIR_NAME


# ----------------------------------------------------------------------------- roles, layers


def _layer_named(m: folium.Map, prefix: str) -> folium.GeoJson:
    (layer,) = [g for g in _layers(m, folium.GeoJson) if str(g.layer_name).startswith(prefix)]
    return layer


def test_existing_and_new_workshops_and_partners_have_distinct_markers(
    result: FakeResult,
) -> None:
    sites = result.sites.copy()
    sites["role"] = ["workshop", "workshop", "partner"]
    sites["status"] = ["existing", "candidate", "candidate"]
    m = maps.result_map(FakeResult(result.customers, sites))
    groups = {g.layer_name: g for g in _layers(m, folium.FeatureGroup)}
    assert set(groups) == {"Workshops", "Partners"}
    existing, new = _site_markers(groups["Workshops"])
    (partner,) = _site_markers(groups["Partners"])
    assert existing.options["color"] == "#202020"
    assert existing.options["weight"] > new.options["weight"]
    assert new.options["color"] == "#ffffff"
    assert partner.options["dashArray"] == "4 3"
    assert partner.options["radius"] < new.options["radius"]
    legend = _legend(m)
    assert [kind for kind, _ in legend.symbols] == ["existing", "new", "partner"]
    html = m.get_root().render()
    assert "own workshop, existing" in html
    assert "own workshop, new" in html


def test_legend_symbols_follow_the_roles_present(result: FakeResult) -> None:
    # no status column: workshops are new; the office is present
    assert [k for k, _ in _legend(maps.result_map(result)).symbols] == ["office", "new"]


def test_optional_layers_are_off_by_default(result: FakeResult) -> None:
    m = maps.result_map(result)
    names = [str(g.layer_name) for g in _layers(m, folium.GeoJson)]
    assert not [n for n in names if n.startswith(("Catchments", "Assignments"))]


def test_catchments_layer_contains_each_sites_customers(result: FakeResult) -> None:
    m = maps.result_map(result, catchments=True)
    features = _layer_named(m, "Catchments").data["features"]
    polygons = maps.catchment_polygons(result.customers, result.sites)
    assert sorted(polygons["site_id"]) == ["HQ", "W1", "W2"]  # c6 is served by no site
    assert len(features) == 3
    by_site = dict(zip(polygons["site_id"], polygons.geometry, strict=True))
    for row in result.customers.itertuples():
        if row.site_id:
            assert by_site[row.site_id].contains(shapely.Point(row.lon, row.lat))
    # the buffer gives a single-customer site an area of about pi * 150 m ** 2 around the hull
    assert polygons.set_index("site_id").loc["W2", "customers"] == 1
    assert polygons.set_index("site_id").loc["W1", "demand"] == 5.0


def test_assignment_lines_join_customers_to_their_site_and_are_capped(
    result: FakeResult,
) -> None:
    m = maps.result_map(result, assignment_lines=True)
    layer = _layer_named(m, "Assignments")
    assert layer.layer_name == "Assignments"
    site_xy = {r.site_id: (round(r.lon, 5), round(r.lat, 5)) for r in result.sites.itertuples()}
    cust_site = {
        (round(r.lon, 5), round(r.lat, 5)): r.site_id
        for r in result.customers.itertuples()
        if r.site_id
    }
    lines = 0
    for feature in layer.data["features"]:
        for start, end in feature["geometry"]["coordinates"]:
            lines += 1
            assert tuple(end) == site_xy[cust_site[tuple(start)]]
    assert lines == 5  # 6 customers, one not served
    capped = maps.result_map(result, assignment_lines=True, max_lines=2)
    layer = _layer_named(capped, "Assignments")
    assert layer.layer_name == "Assignments (1 in 3 shown)"
    assert sum(len(f["geometry"]["coordinates"]) for f in layer.data["features"]) == 2


def test_assignment_lines_stay_compact_for_ten_thousand_customers() -> None:
    n = 12_000
    rng = np.random.default_rng(3)
    lon = 14.4 + rng.uniform(0, 0.2, n)
    lat = 35.85 + rng.uniform(0, 0.1, n)
    sites = _points(
        pd.DataFrame(
            {
                "site_id": ["A", "B"],
                "role": "workshop",
                "name": "",
                "lat": [35.9, 35.88],
                "lon": [14.45, 14.55],
            }
        )
    )
    customers = _points(
        pd.DataFrame(
            {
                "customer_id": [f"c{i}" for i in range(n)],
                "lat": lat,
                "lon": lon,
                "site_id": np.where(lon < 14.5, "A", "B"),
                "travel_min": 5.0,
            }
        )
    )
    t = time.perf_counter()
    m = maps.result_map(FakeResult(customers, sites), assignment_lines=True, catchments=True)
    html = m.get_root().render()
    elapsed = time.perf_counter() - t
    layer = _layer_named(m, "Assignments")
    assert len(layer.data["features"]) == 2  # one feature per site, shared style
    drawn = sum(len(f["geometry"]["coordinates"]) for f in layer.data["features"])
    assert drawn <= maps.MAX_ASSIGNMENT_LINES
    assert elapsed < 10.0
    assert len(html) < 6_000_000


def _grid_graph() -> nx.MultiDiGraph:
    """A 5 x 5 grid of two-way streets, 100 s per block, about 1 km apart, lon/lat nodes."""
    G = nx.MultiDiGraph(crs="EPSG:4326")
    for i in range(5):
        for j in range(5):
            G.add_node(i * 5 + j, x=14.4 + 0.011 * i, y=35.9 + 0.009 * j)
    for i in range(5):
        for j in range(5):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < 5 and j + dj < 5:
                    a, b = i * 5 + j, (i + di) * 5 + (j + dj)
                    G.add_edge(a, b, travel_time=100.0)
                    G.add_edge(b, a, travel_time=100.0)
    return G


def test_isochrone_covers_the_nodes_networkx_reaches_and_no_others() -> None:
    G = _grid_graph()
    start = 12  # the centre
    area = maps.isochrone(G, 14.4 + 0.022, 35.9 + 0.018, 3.5, buffer_m=50)
    dist = nx.single_source_dijkstra_path_length(G, start, weight="travel_time")
    for node, t in dist.items():
        point = shapely.Point(G.nodes[node]["x"], G.nodes[node]["y"])
        assert area.contains(point) == (t <= 210.0), (node, t)
    # 3.5 min = 210 s: the edges out of the 200 s ring are driven for 10 s of 100 s, so the
    # area reaches about 10 % of a block (about 80-100 m) beyond them, plus the 50 m band
    side = G.nodes[10]  # (2, 0): 200 s, an edge goes to (3, 0) at 300 s
    assert area.contains(shapely.Point(side["x"] + 0.011 * 0.05, side["y"]))
    assert not area.contains(shapely.Point(side["x"] + 0.011 * 0.3, side["y"]))


def test_isochrone_rejects_bad_minutes() -> None:
    with pytest.raises(ValueError, match="minutes"):
        maps.isochrone(_grid_graph(), 14.4, 35.9, 0)


def test_drive_time_area_is_a_map_layer(result: FakeResult) -> None:
    area = maps.isochrone(_grid_graph(), 14.422, 35.918, 2.0)
    m = maps.result_map(result, drive_time_areas={"10 min from W1": area})
    layer = _layer_named(m, "10 min from W1")
    geom = shapely.geometry.shape(layer.data["features"][0]["geometry"])
    assert geom.symmetric_difference(area).area < 1e-2 * area.area  # 5-decimal rounding
    assert len(_layers(m, folium.LayerControl)) == 1


def test_big_layers_reach_the_page_verbatim(result: FakeResult) -> None:
    """Customer data is written once, as it is: no Jinja reading of names."""
    customers = result.customers.copy()
    customers.loc[0, "customer_id"] = "{{ 7 * 7 }}"
    html = maps.map_html(maps.result_map(FakeResult(customers=customers, sites=result.sites)))
    assert "{{ 7 * 7 }}" in html
    assert html.count("c2 \\u2192") + html.count("c2 →") == 1  # each customer once
