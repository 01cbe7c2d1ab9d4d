"""Folium maps of customers and proposed sites that work with no internet.

Pure functions: they build :class:`folium.Map` objects and never talk to Streamlit. The maps
are made to stay fast with tens of thousands of customers: all customers are one GeoJSON layer
drawn as circle markers on a canvas (no DOM element per marker), with coordinates rounded to
about a metre. No tile server is needed: the region's main roads are drawn as a light layer,
and OpenStreetMap tiles are added only when asked for (``tiles="OpenStreetMap"``). The
OpenStreetMap credit is always on the map, through Leaflet's attribution control.

Sites are drawn by role and status: the central office is a large black disc, an own workshop
that exists already has a thick dark ring, a new (candidate) own workshop a white ring on a
dark halo, and a partner shop a smaller disc with a dashed ring; a legend explains each symbol.
Optional layers: the catchment of each site (:func:`catchment_polygons`), assignment lines from
customers to their site (capped at ``max_lines``, one GeoJSON feature per site), and drive-time
areas (:func:`isochrone`) around chosen sites. Every layer can be switched in the layer control.

Examples
--------
>>> from planner.outputs import maps, road_layer
>>> roads = road_layer.map_roads(G)  # doctest: +SKIP
>>> m = maps.result_map(result, roads=roads)  # doctest: +SKIP
>>> maps.save_map(m, "map.html")  # doctest: +SKIP
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import branca.element
import folium
import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely
import shapely.ops
from folium.template import Template
from folium.utilities import JsCode

from planner.outputs import assets
from planner.roads.classes import MAIN_ROAD_CLASSES
from planner.roads.network import utm_epsg_for

__all__ = [
    "CATCHMENT_BUFFER_M",
    "MAX_ASSIGNMENT_LINES",
    "OSM_ATTRIBUTION",
    "PALETTE",
    "ROAD_LINE_WEIGHTS_PX",
    "TILES",
    "catchment_polygons",
    "customers_map",
    "isochrone",
    "main_roads",
    "map_html",
    "result_map",
    "save_map",
    "site_colors",
]

logger = logging.getLogger(__name__)

#: The credit every map carries (the same text as folium's OpenStreetMap tiles, so that
#: Leaflet shows it once when tiles are on).
OSM_ATTRIBUTION = (
    '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)

#: Line weight (px) of each main road class (:data:`planner.roads.classes.MAIN_ROAD_CLASSES`).
ROAD_LINE_WEIGHTS_PX: dict[str, float] = {
    "motorway": 2.6,
    "trunk": 2.4,
    "primary": 2.0,
    "secondary": 1.5,
    "tertiary": 1.0,
    "motorway_link": 1.5,
    "trunk_link": 1.5,
    "primary_link": 1.2,
    "secondary_link": 1.0,
    "tertiary_link": 0.8,
}

#: Tile layers a map may show; ``None`` means no tiles (works offline).
TILES: tuple[str | None, ...] = (None, "OpenStreetMap")

#: Categorical palette for sites (Tableau 20 reordered: strong colours first).
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#393b79",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#ff9896",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#9edae5",
    "#dbdb8d",
    "#637939",
)
_UNASSIGNED_COLOR = "#7f7f7f"
_CUSTOMER_COLOR = "#3b6ea5"
_ROAD_COLOR = "#8a8a8a"
_BACKGROUND = "#f2efe9"
_COORD_DECIMALS = 5
_ROLES = ("workshop", "office", "partner")
_EXISTING_RING = "#202020"
_COMPETITOR_COLOR = "#b22222"
#: Expected share by area: colour ramp from low (light) to high (dark) share.
_SHARE_RAMP = ("#fff5eb", "#fdd0a2", "#fd8d3c", "#d94801", "#7f2704")

#: Buffer (m) around each site's customers that makes its catchment polygon.
CATCHMENT_BUFFER_M = 150.0
#: Most assignment lines drawn on a map; more customers are thinned evenly (every k-th line).
MAX_ASSIGNMENT_LINES = 5000
#: Symbols of the site roles in the legend: (legend kind, label).
_SYMBOLS: tuple[tuple[str, str], ...] = (
    ("office", "central office"),
    ("existing", "own workshop, existing"),
    ("new", "own workshop, new"),
    ("partner", "partner shop"),
)


class _ResultLike(Protocol):
    @property
    def customers(self) -> gpd.GeoDataFrame: ...

    @property
    def sites(self) -> gpd.GeoDataFrame: ...


class _Verbatim(branca.element.Element):
    """Script text added to the page as it is.

    branca wraps the rendered script of every element in a new Jinja template, which it then
    compiles: for a layer with megabytes of GeoJSON that costs about half a second per render,
    and a ``{{`` in a customer or site name would be read as a template expression.
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def render(self, **kwargs: Any) -> str:
        return self.text


class _GeoJson(folium.GeoJson):
    """A ``folium.GeoJson`` layer whose data reaches the page without a Jinja compile.

    The layer renders with an empty feature collection (so branca compiles a short script),
    then adds its data as one :class:`_Verbatim` call of the layer's ``_add`` function, escaped
    as folium escapes JSON in a script. Code that renders each element's script macro itself
    (streamlit-folium) sees the full data in ``data``, as with a plain ``folium.GeoJson``.
    """

    def __init__(
        self,
        data: Any,
        *args: Any,
        lonlat: np.ndarray | None = None,
        payload: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(data, *args, **kwargs)
        #: where the JSON text of ``data`` is kept: shared by every layer of the same data
        #: when the caller passes one (the road layer), else this layer's own
        self._shared_payload = payload
        #: bounds [[lat_min, lon_min], [lat_max, lon_max]] from the caller's coordinate array
        #: (``lonlat``, n x 2): folium's own walks every coordinate in Python, which
        #: streamlit-folium asks for on every rerun (seconds for a large road layer)
        self._bounds: list[list[float | None]] | None = None
        if lonlat is not None:
            xy = np.asarray(lonlat, dtype=float).reshape(-1, 2)
            xy = xy[np.isfinite(xy).all(axis=1)]
            if len(xy):
                lo, hi = xy.min(axis=0), xy.max(axis=0)
                self._bounds = [[float(lo[1]), float(lo[0])], [float(hi[1]), float(hi[0])]]
        self._payload: tuple[int, str] | None = None

    def _get_self_bounds(self) -> list[list[float | None]]:
        if self._bounds is not None:
            return self._bounds
        return super()._get_self_bounds()  # type: ignore[no-any-return]

    def render(self, **kwargs: Any) -> Any:
        data = self.data
        self.data = {"type": "FeatureCollection", "features": []}
        try:
            super().render(**kwargs)
        finally:
            self.data = data
        if not self.embed:
            return
        # the JSON of the data, once per data object (streamlit-folium renders a map twice)
        shared = self._shared_payload
        if shared is not None and "text" in shared:
            payload = shared["text"]
        else:
            if self._payload is None or self._payload[0] != id(data):
                text = (
                    json.dumps(data)
                    .replace("<", "\\u003c")
                    .replace(">", "\\u003e")
                    .replace("&", "\\u0026")
                    .replace("'", "\\u0027")
                )
                self._payload = (id(data), text)
            payload = self._payload[1]
            if shared is not None:
                shared["text"] = payload
        figure = self.get_root()
        if not isinstance(figure, branca.element.Figure):
            raise TypeError("render the layer as part of a map in a figure")
        figure.script.add_child(
            _Verbatim(f"{self.get_name()}_add({payload});\n"), name=f"{self.get_name()}_data"
        )


class _Attribution(folium.MacroElement):
    """Add a permanent text to the map's attribution control (shown without any tiles)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.attributionControl.addAttribution(
                {{ this.text|tojson }}
            );
        {% endmacro %}
        """
    )

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "Attribution"
        self.text = text


class _Legend(folium.MacroElement):
    """A small Leaflet control listing what the colours and symbols mean."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var legend = L.control({position: "bottomleft"});
            legend.onAdd = function () {
                var div = L.DomUtil.create("div", "planner-legend");
                div.innerHTML = {{ this.html|tojson }};
                L.DomEvent.disableClickPropagation(div);
                L.DomEvent.disableScrollPropagation(div);
                return div;
            };
            legend.addTo({{ this._parent.get_name() }});
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self,
        title: str,
        items: Sequence[tuple[str, str, str]],
        *,
        symbols: Sequence[tuple[str, str]] = (),
    ) -> None:
        super().__init__()
        self._name = "Legend"
        self.items = list(items)
        self.symbols = list(symbols)
        rows = "".join(_legend_row(*item) for item in self.items)
        if self.symbols:
            rows += '<div style="margin-top:4px;border-top:1px solid #ccc"></div>'
            rows += "".join(_legend_row(kind, "#888888", label) for kind, label in self.symbols)
        self.html = (
            '<div style="background:rgba(255,255,255,.9);padding:6px 8px;border-radius:4px;'
            "box-shadow:0 1px 4px rgba(0,0,0,.3);font:12px/1.5 sans-serif;max-height:220px;"
            f'overflow-y:auto;max-width:260px"><b>{html.escape(title)}</b>{rows}</div>'
        )


def _legend_row(kind: str, color: str, label: str) -> str:
    if kind == "site":
        style = f"background:{color};border:3px solid #fff;outline:1.5px solid #202020;"
        size = 12
    elif kind == "office":
        style = "background:#000;border:3px solid #fff;outline:1.5px solid #202020;"
        size = 14
    elif kind == "existing":
        style = f"background:{color};border:3px solid {_EXISTING_RING};"
        size = 12
    elif kind == "new":
        style = f"background:{color};border:3px solid #fff;outline:1.5px solid #202020;"
        size = 12
    elif kind == "partner":
        style = f"background:{color};border:2px dashed #fff;outline:1.5px solid #202020;"
        size = 10
    elif kind == "competitor":
        style = f"background:{_COMPETITOR_COLOR};border:2px solid #fff;outline:1.5px solid #202020;"
        style += "border-radius:0;transform:rotate(45deg);"
        size = 9
    elif kind == "area":
        style = f"background:{color};opacity:.35;border:1px solid {color};border-radius:2px;"
        size = 10
    else:
        style = f"background:{color};opacity:.8;"
        size = 10
    swatch = (
        f'<span style="display:inline-block;width:{size}px;height:{size}px;border-radius:50%;'
        f'{style}vertical-align:middle;margin-right:6px"></span>'
    )
    row_style = "white-space:nowrap;overflow:hidden;text-overflow:ellipsis"
    return f'<div style="{row_style}">{swatch}{html.escape(label)}</div>'


_LEGEND_MAX_ROWS = 12


class _SharedTooltip(folium.MacroElement):
    """One tooltip for all points of a GeoJSON layer, its text read from ``properties.t``.

    Binding a tooltip per feature creates one Leaflet object and event handlers per customer;
    a group tooltip is created once and filled in on hover.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
            {{ this._parent.get_name() }}.bindTooltip(function (layer) {
                return layer.feature.properties.t;
            });
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "SharedTooltip"


def _first_main_class(value: object) -> str | None:
    values = value if isinstance(value, list | tuple) else [value]
    ranked = [v for v in values if isinstance(v, str) and v in MAIN_ROAD_CLASSES]
    if not ranked:
        return None
    order = list(MAIN_ROAD_CLASSES)
    return min(ranked, key=order.index)


def _join_names(value: object) -> str:
    if isinstance(value, list | tuple):
        return "; ".join(str(v) for v in value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def main_roads(G: nx.MultiDiGraph, *, tolerance_m: float = 10.0) -> gpd.GeoDataFrame:
    """Return the main roads of a graph as simplified lines in lon/lat.

    Parameters
    ----------
    G
        Unprojected osmnx road graph (EPSG:4326).
    tolerance_m
        Geometry simplification tolerance, in metres (approximately; applied in degrees).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per road segment (both directions of a two-way road give one row):
        ``highway`` (the most important class of :data:`MAIN_ROAD_CLASSES` on the edge),
        ``name``, ``length_m`` and ``geometry`` (EPSG:4326, coordinates rounded to ~1 m).
    """
    if not (tolerance_m >= 0 and math.isfinite(tolerance_m)):
        raise ValueError(f"tolerance_m must be a finite number >= 0, got {tolerance_m!r}")
    columns = ["highway", "name", "length_m"]
    crs = G.graph.get("crs", "EPSG:4326")
    rows: list[dict[str, Any]] = []
    geoms: list[Any] = []
    straight: list[tuple[int, Any, Any]] = []  # (row, u, v) of edges without a geometry
    seen: set[tuple[Any, Any, str]] = set()
    for u, v, data in G.edges(data=True):
        highway = _first_main_class(data.get("highway"))
        if highway is None:
            continue
        pair = (min(u, v), max(u, v), str(data.get("osmid")))
        if pair in seen:
            continue
        seen.add(pair)
        geom = data.get("geometry")
        if geom is None:
            straight.append((len(geoms), u, v))
        rows.append(
            {
                "highway": highway,
                "name": _join_names(data.get("name")),
                "length_m": float(data.get("length", np.nan)),
            }
        )
        geoms.append(geom)
    if straight:  # straight lines between the end nodes, made in one shapely call
        nodes = G.nodes
        ends = [(nodes[n]["x"], nodes[n]["y"]) for _, u, v in straight for n in (u, v)]
        lines = shapely.linestrings(np.asarray(ends).reshape(len(straight), 2, 2))
        for (at, _, _), line in zip(straight, lines, strict=True):
            geoms[at] = line
    frame = pd.DataFrame(rows, columns=columns)
    roads = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)
    if roads.crs is not None and not roads.crs.equals("EPSG:4326"):
        roads = roads.to_crs("EPSG:4326")
    if len(roads):
        tolerance_deg = tolerance_m / 111_000.0
        simplified = shapely.simplify(roads.geometry.values, tolerance_deg)
        roads["geometry"] = shapely.set_precision(simplified, 10.0**-_COORD_DECIMALS)
        roads = roads[~roads.geometry.is_empty].reset_index(drop=True)
    logger.debug("main roads: %d segments", len(roads))
    return roads


def site_colors(site_ids: Sequence[str]) -> dict[str, str]:
    """Map each site id to a colour of :data:`PALETTE` (cycling when there are more sites)."""
    return {str(s): PALETTE[i % len(PALETTE)] for i, s in enumerate(site_ids)}


def _validate_tiles(tiles: str | None) -> None:
    if tiles not in TILES:
        raise ValueError(f"tiles must be one of {list(TILES)}, got {tiles!r}")


def _base_map(bounds: list[list[float]] | None, tiles: str | None) -> folium.Map:
    _validate_tiles(tiles)
    center = None
    if bounds is not None:
        center = [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2]
    m = folium.Map(
        location=center,
        zoom_start=11,
        tiles=None,
        prefer_canvas=True,
        control_scale=True,
    )
    if tiles is not None:
        folium.TileLayer(tiles, name="OpenStreetMap tiles", attr=OSM_ATTRIBUTION).add_to(m)
    m.add_child(_Attribution(OSM_ATTRIBUTION))
    figure = m.get_root()
    assert isinstance(figure, branca.element.Figure)  # folium.Map always sits in a Figure
    figure.header.add_child(
        folium.Element(f"<style>div.leaflet-container {{ background: {_BACKGROUND}; }}</style>"),
        name="planner_background",
    )
    if bounds is not None:
        fit = folium.FitBounds(bounds, padding=(12, 12), max_zoom=16)
        fit.options["animate"] = False  # open at the right zoom, not with a zoom animation
        m.add_child(fit)
    return m


def _bounds(*frames: pd.DataFrame) -> list[list[float]] | None:
    lats = np.concatenate([f["lat"].to_numpy(float) for f in frames if len(f)] or [np.empty(0)])
    lons = np.concatenate([f["lon"].to_numpy(float) for f in frames if len(f)] or [np.empty(0)])
    ok = np.isfinite(lats) & np.isfinite(lons)
    if not ok.any():
        return None
    d = _COORD_DECIMALS
    return [
        [round(float(lats[ok].min()), d), round(float(lons[ok].min()), d)],
        [round(float(lats[ok].max()), d), round(float(lons[ok].max()), d)],
    ]


class _RoadData:
    """The GeoJSON of one road layer, made once and drawn by every map of it."""

    def __init__(self, roads: gpd.GeoDataFrame) -> None:
        self.ref = weakref.ref(roads)
        self.data, self.lonlat = _road_geojson(roads)
        self.payload: dict[str, str] = {}


#: GeoJSON of recent road layers by ``id`` (checked against a weak reference): the app
#: draws the same shared layer on every map and rerun.
_ROAD_DATA: dict[int, _RoadData] = {}
_ROAD_DATA_MAX = 8


_ROAD_DATA_LOCK = threading.Lock()


def _road_data(roads: gpd.GeoDataFrame) -> _RoadData:
    with _ROAD_DATA_LOCK:
        known = _ROAD_DATA.get(id(roads))
    if known is not None and known.ref() is roads:
        return known
    made = _RoadData(roads)
    with _ROAD_DATA_LOCK:
        for key in [k for k, v in _ROAD_DATA.items() if v.ref() is None]:
            del _ROAD_DATA[key]
        while len(_ROAD_DATA) >= _ROAD_DATA_MAX:
            del _ROAD_DATA[next(iter(_ROAD_DATA))]
        _ROAD_DATA[id(roads)] = made
    return made


def _add_roads(m: folium.Map, roads: gpd.GeoDataFrame | None) -> None:
    if roads is None or len(roads) == 0:
        return
    layer = _road_data(roads)
    _GeoJson(
        layer.data,
        name="Main roads",
        interactive=False,
        attribution=OSM_ATTRIBUTION,
        lonlat=layer.lonlat,
        payload=layer.payload,
    ).add_to(m)


def _road_geojson(roads: gpd.GeoDataFrame) -> tuple[dict[str, Any], np.ndarray | None]:
    features = []
    extent: list[np.ndarray] = []
    for highway, weight in ROAD_LINE_WEIGHTS_PX.items():
        parts = shapely.get_parts(roads.geometry.values[roads["highway"].to_numpy() == highway])
        lines = parts[
            (shapely.get_type_id(parts) == shapely.GeometryType.LINESTRING)
            & ~shapely.is_empty(parts)
        ]
        if not len(lines):
            continue
        # one MultiLineString per class, built from the coordinate array (no Python objects
        # per vertex), rounded as the customers are
        coords, index = shapely.get_coordinates(lines, return_index=True)
        cuts = np.flatnonzero(np.diff(index)) + 1
        extent.append(coords)
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "MultiLineString",
                    "coordinates": [
                        part.tolist() for part in np.split(np.round(coords, _COORD_DECIMALS), cuts)
                    ],
                },
                "properties": {
                    "highway": highway,
                    "style": {"color": _ROAD_COLOR, "weight": weight, "opacity": 0.7},
                },
            }
        )
    collection = {"type": "FeatureCollection", "features": features}
    return collection, (np.concatenate(extent) if extent else None)


_POINT_STYLE_JS = JsCode(
    """
    function(feature, layer) {
        var p = feature.properties;
        layer.setStyle({color: p.c, fillColor: p.c});
    }
    """
)


def _points_layer(
    lon: np.ndarray,
    lat: np.ndarray,
    colors: np.ndarray,
    tooltips: Sequence[str],
    *,
    name: str,
    radius: float,
) -> folium.GeoJson:
    ok = np.isfinite(lon) & np.isfinite(lat)
    lon_r = np.round(lon, _COORD_DECIMALS)
    lat_r = np.round(lat, _COORD_DECIMALS)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [float(x), float(y)]},
            "properties": {"c": str(c), "t": str(t)},
        }
        for x, y, c, t, keep in zip(lon_r, lat_r, colors, tooltips, ok, strict=True)
        if keep
    ]
    marker = folium.CircleMarker(radius=radius, weight=1, opacity=0.9, fill=True, fill_opacity=0.7)
    layer = _GeoJson(
        {"type": "FeatureCollection", "features": features},
        name=name,
        marker=marker,
        on_each_feature=_POINT_STYLE_JS,
        lonlat=np.column_stack([lon_r[ok], lat_r[ok]]),
    )
    layer.add_child(_SharedTooltip())
    return layer


def _customer_radius(n: int) -> float:
    return 4.0 if n <= 2000 else 3.0 if n <= 20000 else 2.0


def customers_map(
    customers: pd.DataFrame,
    *,
    roads: gpd.GeoDataFrame | None = None,
    tiles: str | None = None,
) -> folium.Map:
    """Map customers before any solve, coloured by segment when there is one.

    Parameters
    ----------
    customers
        Table with ``lat``, ``lon`` and optionally ``customer_id``, ``segment``, ``weight``.
    roads
        Main roads to draw as a light layer (see
        :func:`planner.outputs.road_layer.map_roads`).
    tiles
        One of :data:`TILES`; ``None`` (default) needs no internet.

    Returns
    -------
    folium.Map
    """
    bounds = _bounds(customers)
    m = _base_map(bounds, tiles)
    _add_roads(m, roads)
    n = len(customers)
    ids = (
        customers["customer_id"].astype(str)
        if "customer_id" in customers
        else pd.Series([str(i) for i in range(n)])
    )
    if "segment" in customers:
        segments = customers["segment"].fillna("").astype(str)
        palette = site_colors(sorted(segments.unique()))
        colors = segments.map(palette).to_numpy()
        labels = (ids + " · " + segments).to_list()
    else:
        colors = np.full(n, _CUSTOMER_COLOR, dtype=object)
        labels = ids.to_list()
    if "weight" in customers:
        labels = [
            f"{label} · {w:g} jobs/yr"
            for label, w in zip(labels, customers["weight"].to_numpy(float), strict=True)
        ]
    _points_layer(
        customers["lon"].to_numpy(float),
        customers["lat"].to_numpy(float),
        colors,
        [html.escape(t) for t in labels],
        name="Customers",
        radius=_customer_radius(n),
    ).add_to(m)
    if "segment" in customers:
        items = [("dot", color, segment or "(no segment)") for segment, color in palette.items()]
    else:
        items = [("dot", _CUSTOMER_COLOR, "customer")]
    m.add_child(_Legend(f"{n:,} customers", items[:_LEGEND_MAX_ROWS]))
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def _site_popup(site: pd.Series) -> str:
    name = html.escape(str(site.get("name", "") or site["site_id"]))
    role = html.escape(str(site.get("role", "workshop")))
    status = str(site.get("status", "") or "")
    if role == "workshop" and status in ("existing", "candidate"):
        role = "own workshop, " + ("existing" if status == "existing" else "new")
    lines = [f"<b>{name}</b>", f"{role} · {html.escape(str(site['site_id']))}"]
    if "customers" in site and pd.notna(site["customers"]):
        lines.append(f"customers: {int(site['customers']):,}")
    if "demand_share" in site and pd.notna(site["demand_share"]):
        lines.append(f"demand share: {100 * float(site['demand_share']):.1f} %")
    if "mean_travel_min" in site and pd.notna(site["mean_travel_min"]):
        lines.append(f"mean travel: {float(site['mean_travel_min']):.1f} min")
    if "max_travel_min" in site and pd.notna(site["max_travel_min"]):
        lines.append(f"max travel: {float(site['max_travel_min']):.1f} min")
    return "<br>".join(lines)


def _site_style(role: str, color: str, status: str = "candidate") -> dict[str, Any]:
    # a white ring on a dark halo stands out both on the customers of the site (same colour)
    # and on the empty background; an existing own workshop has a thick dark ring instead
    if role == "office":
        return {"radius": 12, "color": "#ffffff", "weight": 3, "fill_color": "#000000"}
    if role == "partner":
        return {
            "radius": 9,
            "color": "#ffffff",
            "weight": 3,
            "dash_array": "4 3",
            "fill_color": color,
            "fill_opacity": 0.75,
        }
    if status == "existing":
        return {"radius": 10, "color": _EXISTING_RING, "weight": 4, "fill_color": color}
    return {"radius": 10, "color": "#ffffff", "weight": 3, "fill_color": color}


def _site_marker(
    location: list[float], role: str, color: str, status: str = "candidate"
) -> list[folium.CircleMarker]:
    style = {"fill_opacity": 1.0, **_site_style(role, color, status)}
    halo = folium.CircleMarker(
        location=location,
        radius=style["radius"] + 2.5,
        color="#202020",
        weight=1.5,
        fill=False,
    )
    halo.options["interactive"] = False  # folium drops this path option; clicks go to the site
    return [halo, folium.CircleMarker(location=location, fill=True, **style)]


def result_map(
    result: _ResultLike,
    *,
    roads: gpd.GeoDataFrame | None = None,
    tiles: str | None = None,
    catchments: bool = False,
    assignment_lines: bool = False,
    max_lines: int = MAX_ASSIGNMENT_LINES,
    drive_time_areas: Mapping[str, shapely.Geometry] | None = None,
    competitors: pd.DataFrame | None = None,
    share_areas: gpd.GeoDataFrame | None = None,
) -> folium.Map:
    """Map a solved scenario: customers coloured by their site, and the sites.

    Parameters
    ----------
    result
        A :class:`planner.results.types.ScenarioResult` or
        :class:`~planner.results.types.LayoutResult` (anything with ``customers`` and ``sites``
        tables in the shared schema works).
    roads
        Main roads to draw as a light layer (see
        :func:`planner.outputs.road_layer.map_roads`).
    tiles
        One of :data:`TILES`; ``None`` (default) needs no internet.
    catchments
        Add a "Catchments" layer: per site the convex hull of its customers, buffered by
        :data:`CATCHMENT_BUFFER_M` (see :func:`catchment_polygons`).
    assignment_lines
        Add an "Assignments" layer of straight lines customer -> site (off by default). With
        more than ``max_lines`` served customers every k-th line is drawn and the layer name
        says so.
    max_lines
        Cap of the assignment lines.
    drive_time_areas
        ``{label: polygon}`` of drive-time areas (see :func:`isochrone`), one layer each.
    competitors
        Competing shops (``site_id``, ``name``, ``lat``, ``lon``, optional
        ``attractiveness``): a "Competitors" layer of red diamonds.
    share_areas
        Expected market share by area (polygons with ``share``, ``jobs``, ``won``; see
        :func:`planner.results.market.share_by_area`): a "Share by area" layer.

    Returns
    -------
    folium.Map
        Layers "Main roads", "Customers" and one per site role, with a layer control. Sites
        are larger markers (white ring, dark halo) with a tooltip (name) and a popup (role,
        customers, demand share, mean and max travel minutes); the office is black,
        workshops take their customers' colour, partners have a dashed ring.
    """
    customers = result.customers
    sites = result.sites
    m = _base_map(_bounds(customers, sites), tiles)
    _add_roads(m, roads)

    colors_by_site = site_colors(sites["site_id"].astype(str).to_list())
    for label, area in (drive_time_areas or {}).items():
        _add_area(m, area, label)
    if catchments:
        _add_catchments(m, catchment_polygons(customers, sites), colors_by_site)
    if share_areas is not None and len(share_areas):
        _add_share_areas(m, share_areas)
    if assignment_lines:
        _add_assignment_lines(m, customers, sites, colors_by_site, max_lines=max_lines)
    site_ids = customers["site_id"].fillna("").astype(str)
    colors = site_ids.map(colors_by_site).fillna(_UNASSIGNED_COLOR).to_numpy()
    site_names = {
        str(s): (str(n) if n else str(s))
        for s, n in zip(sites["site_id"], sites.get("name", sites["site_id"]), strict=True)
    }
    ids = customers["customer_id"].astype(str).to_list()
    travel = customers["travel_min"].to_numpy(float)
    labels = [
        html.escape(
            f"{cid} → {site_names.get(sid, sid)} · {t:.1f} min"
            if sid and np.isfinite(t)
            else f"{cid} · not served"
        )
        for cid, sid, t in zip(ids, site_ids, travel, strict=True)
    ]
    _points_layer(
        customers["lon"].to_numpy(float),
        customers["lat"].to_numpy(float),
        colors,
        labels,
        name="Customers",
        radius=_customer_radius(len(customers)),
    ).add_to(m)

    roles = sites["role"].astype(str) if "role" in sites else pd.Series(["workshop"] * len(sites))
    unknown = sorted(set(roles) - set(_ROLES))
    if unknown:
        raise ValueError(f"site roles must be in {list(_ROLES)}, got {unknown}")
    statuses = (
        sites["status"].fillna("candidate").astype(str)
        if "status" in sites
        else pd.Series(["candidate"] * len(sites))
    )
    layer_names = {"workshop": "Workshops", "office": "Office", "partner": "Partners"}
    for role in _ROLES:
        chosen = sites[(roles == role).to_numpy()]
        if len(chosen) == 0:
            continue
        group = folium.FeatureGroup(name=layer_names[role])
        for (_, site), status in zip(
            chosen.iterrows(), statuses[(roles == role).to_numpy()], strict=True
        ):
            sid = str(site["site_id"])
            halo, marker = _site_marker(
                [float(site["lat"]), float(site["lon"])], role, colors_by_site[sid], status
            )
            halo.add_to(group)
            marker.add_child(folium.Tooltip(html.escape(site_names.get(sid, sid))))
            marker.add_child(folium.Popup(_site_popup(site), max_width=300))
            marker.add_to(group)
        group.add_to(m)
    has_competitors = competitors is not None and len(competitors) > 0
    if has_competitors:
        _add_competitors(m, competitors)  # type: ignore[arg-type]
    unserved = bool((colors == _UNASSIGNED_COLOR).any())
    items = _site_legend_items(sites, roles, colors_by_site, site_names, unserved=unserved)
    own = (roles == "workshop").to_numpy()
    present = {
        "office": bool((roles == "office").any()),
        "existing": bool((own & (statuses == "existing").to_numpy()).any()),
        "new": bool((own & (statuses != "existing").to_numpy()).any()),
        "partner": bool((roles == "partner").any()),
    }
    symbols = [(kind, label) for kind, label in _SYMBOLS if present[kind]]
    if has_competitors:
        symbols.append(("competitor", f"competitor ({len(competitors):,})"))  # type: ignore[arg-type]
    m.add_child(_Legend("Sites", items, symbols=symbols))
    folium.LayerControl(collapsed=True).add_to(m)
    return m


def _add_competitors(m: folium.Map, competitors: pd.DataFrame) -> None:
    """A "Competitors" layer: red diamonds with name and attractiveness."""
    group = folium.FeatureGroup(name="Competitors")
    attract = (
        pd.to_numeric(competitors["attractiveness"], errors="coerce").fillna(1.0).to_numpy()
        if "attractiveness" in competitors
        else np.ones(len(competitors))
    )
    names = competitors.get("name", competitors["site_id"]).fillna("").astype(str).to_numpy()
    for sid, name, lat, lon, a in zip(
        competitors["site_id"].astype(str),
        names,
        competitors["lat"].to_numpy(float),
        competitors["lon"].to_numpy(float),
        attract,
        strict=True,
    ):
        diamond = (
            f'<div style="width:10px;height:10px;background:{_COMPETITOR_COLOR};'
            'border:2px solid #fff;outline:1px solid #202020;transform:rotate(45deg)"></div>'
        )
        marker = folium.Marker(
            location=[lat, lon],
            icon=folium.DivIcon(html=diamond, icon_size=(14, 14), icon_anchor=(7, 7)),
        )
        label = f"Competitor: {name or sid}" + (f" (attractiveness {a:g})" if a != 1.0 else "")
        marker.add_child(folium.Tooltip(html.escape(label)))
        marker.add_to(group)
    group.add_to(m)


def _share_color(share: float) -> str:
    k = int(np.clip(np.floor(share * len(_SHARE_RAMP)), 0, len(_SHARE_RAMP) - 1))
    return _SHARE_RAMP[k]


def _add_share_areas(m: folium.Map, areas: gpd.GeoDataFrame) -> None:
    """A "Share by area" layer: one polygon per area, coloured by our expected share."""
    features = []
    for geom, share, jobs, won in zip(
        areas.geometry,
        areas["share"].to_numpy(float),
        areas["jobs"].to_numpy(float),
        areas["won"].to_numpy(float),
        strict=True,
    ):
        features.append(
            {
                "type": "Feature",
                "geometry": _rounded(geom),
                "properties": {
                    "c": _share_color(share),
                    "t": f"expected share {share:.0%}: {won:,.1f} of {jobs:,.1f} jobs a year",
                },
            }
        )
    folium.GeoJson(
        {"type": "FeatureCollection", "features": features},
        name="Share by area",
        style_function=lambda f: {
            "fillColor": f["properties"]["c"],
            "color": f["properties"]["c"],
            "weight": 0.5,
            "fillOpacity": 0.45,
        },
        tooltip=folium.GeoJsonTooltip(fields=["t"], labels=False),
    ).add_to(m)


def catchment_polygons(
    customers: pd.DataFrame,
    sites: pd.DataFrame,
    *,
    buffer_m: float = CATCHMENT_BUFFER_M,
) -> gpd.GeoDataFrame:
    """The catchment of each site: convex hull of its customers and itself, buffered.

    Parameters
    ----------
    customers
        Customers with ``lon``, ``lat``, ``site_id`` and optionally ``weight``.
    sites
        Sites with ``site_id``, ``lon``, ``lat`` and optionally ``role``.
    buffer_m
        Buffer in metres, so that sites with one or two customers get an area too.

    Returns
    -------
    geopandas.GeoDataFrame
        ``site_id, role, customers, demand`` and the polygon (EPSG:4326); sites without
        customers have no row.
    """
    columns = ["site_id", "role", "customers", "demand"]
    sid = customers["site_id"].fillna("").astype(str).to_numpy()
    cust = gpd.GeoDataFrame(
        {
            "site_id": sid,
            "weight": customers["weight"].to_numpy(float)
            if "weight" in customers
            else np.ones(len(customers)),
        },
        geometry=gpd.points_from_xy(customers["lon"], customers["lat"]),
        crs="EPSG:4326",
    )
    site_pts = gpd.GeoDataFrame(
        {
            "site_id": sites["site_id"].astype(str).to_numpy(),
            "role": sites["role"].astype(str).to_numpy() if "role" in sites else "workshop",
        },
        geometry=gpd.points_from_xy(sites["lon"], sites["lat"]),
        crs="EPSG:4326",
    )
    if len(site_pts) == 0:
        return gpd.GeoDataFrame(
            pd.DataFrame(columns=columns), geometry=gpd.GeoSeries([], crs="EPSG:4326")
        )
    # the UTM zone of the sites' centre (as geopandas' estimate_utm_crs, without its query of
    # the projection database: 0.3 s on every first map of a process)
    west, south, east, north = site_pts.total_bounds
    utm = (
        f"EPSG:{utm_epsg_for((west + east) / 2, (south + north) / 2)}"
        if np.isfinite([west, south, east, north]).all() and -80 <= (south + north) / 2 <= 84
        else "EPSG:3857"
    )
    cust_utm = cust.to_crs(utm)
    site_utm = site_pts.to_crs(utm)
    rows, geoms = [], []
    for site in site_utm.itertuples(index=False):
        mine = cust_utm[cust_utm["site_id"] == site.site_id]
        if len(mine) == 0:
            continue
        union = shapely.union_all([*mine.geometry.to_numpy(), site.geometry])
        geoms.append(shapely.convex_hull(union).buffer(buffer_m))
        rows.append(
            {
                "site_id": site.site_id,
                "role": site.role,
                "customers": len(mine),
                "demand": float(mine["weight"].sum()),
            }
        )
    frame = gpd.GeoDataFrame(
        pd.DataFrame(rows, columns=columns), geometry=gpd.GeoSeries(geoms, crs=utm)
    )
    return frame.to_crs("EPSG:4326")


def _rounded(geom: shapely.Geometry) -> dict[str, Any]:
    out: dict[str, Any] = shapely.geometry.mapping(
        shapely.set_precision(geom, 10.0**-_COORD_DECIMALS)
    )
    return out


def _add_catchments(
    m: folium.Map, polygons: gpd.GeoDataFrame, colors_by_site: Mapping[str, str]
) -> None:
    features = [
        {
            "type": "Feature",
            "geometry": _rounded(geom),
            "properties": {
                "t": html.escape(f"{sid}: {int(n):,} customers"),
                "style": {
                    "color": colors_by_site.get(str(sid), _UNASSIGNED_COLOR),
                    "weight": 1.5,
                    "fillOpacity": 0.12,
                },
            },
        }
        for sid, n, geom in zip(
            polygons["site_id"], polygons["customers"], polygons.geometry, strict=True
        )
    ]
    layer = _GeoJson({"type": "FeatureCollection", "features": features}, name="Catchments")
    layer.add_child(_SharedTooltip())
    layer.add_to(m)


def _add_assignment_lines(
    m: folium.Map,
    customers: pd.DataFrame,
    sites: pd.DataFrame,
    colors_by_site: Mapping[str, str],
    *,
    max_lines: int,
) -> None:
    """One MultiLineString feature per site (shared style), thinned to ``max_lines``."""
    if max_lines < 1:
        raise ValueError(f"max_lines must be at least 1, got {max_lines!r}")
    site_xy = {
        str(s): (round(float(x), _COORD_DECIMALS), round(float(y), _COORD_DECIMALS))
        for s, x, y in zip(sites["site_id"], sites["lon"], sites["lat"], strict=True)
    }
    sid = customers["site_id"].fillna("").astype(str).to_numpy()
    lon = np.round(customers["lon"].to_numpy(float), _COORD_DECIMALS)
    lat = np.round(customers["lat"].to_numpy(float), _COORD_DECIMALS)
    served = np.flatnonzero(np.isin(sid, list(site_xy)) & np.isfinite(lon) & np.isfinite(lat))
    step = max(1, math.ceil(len(served) / max_lines))
    shown = served[::step]
    features = []
    for site_id, (sx, sy) in site_xy.items():
        mine = shown[sid[shown] == site_id]
        if len(mine) == 0:
            continue
        coords = [[[float(lon[i]), float(lat[i])], [sx, sy]] for i in mine]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "MultiLineString", "coordinates": coords},
                "properties": {
                    "style": {
                        "color": colors_by_site.get(site_id, _UNASSIGNED_COLOR),
                        "weight": 1,
                        "opacity": 0.5,
                    }
                },
            }
        )
    name = "Assignments" if step == 1 else f"Assignments (1 in {step} shown)"
    _GeoJson(
        {"type": "FeatureCollection", "features": features}, name=name, interactive=False
    ).add_to(m)


_AREA_COLOR = "#6a3d9a"


def _add_area(m: folium.Map, area: shapely.Geometry, label: str) -> None:
    feature = {
        "type": "Feature",
        "geometry": _rounded(area),
        "properties": {
            "t": html.escape(label),
            "style": {"color": _AREA_COLOR, "weight": 1.5, "fillOpacity": 0.15},
        },
    }
    layer = folium.GeoJson({"type": "FeatureCollection", "features": [feature]}, name=label)
    layer.add_child(_SharedTooltip())
    layer.add_to(m)


def isochrone(
    graph: nx.MultiDiGraph,
    lon: float,
    lat: float,
    minutes: float,
    *,
    buffer_m: float = 60.0,
) -> shapely.Geometry:
    """The area reachable by road within ``minutes`` from a point (a drive-time area).

    The point is attached to its nearest graph node; shortest travel times (edge attribute
    ``travel_time``, seconds) are computed with Dijkstra up to the limit. Every edge leaving a
    reached node is kept up to where the time runs out (a partly driven edge is cut at the
    reachable fraction of its length), and the kept edges are buffered on a grid of
    ``buffer_m`` cells (each cell a road passes through plus its 8 neighbours), so the area
    reaches between ``buffer_m`` and about ``2.8 * buffer_m`` beyond the reachable roads.

    Parameters
    ----------
    graph
        Unprojected road graph (EPSG:4326) with ``travel_time`` on every edge.
    lon, lat
        WGS84 degrees of the start (e.g. a site).
    minutes
        Travel time budget, > 0.
    buffer_m
        Grid cell size of the band around the reachable roads, in metres.

    Returns
    -------
    shapely.Geometry
        (Multi)Polygon in lon/lat; empty when the graph has no nodes.
    """
    if not (math.isfinite(minutes) and minutes > 0):
        raise ValueError(f"minutes must be a finite number > 0, got {minutes!r}")
    if not (math.isfinite(buffer_m) and buffer_m > 0):
        raise ValueError(f"buffer_m must be a finite number > 0, got {buffer_m!r}")
    if graph.number_of_nodes() == 0:
        return shapely.Polygon()
    nodes = list(graph.nodes)
    xs = np.array([graph.nodes[n]["x"] for n in nodes], dtype=float)
    ys = np.array([graph.nodes[n]["y"] for n in nodes], dtype=float)
    k = math.cos(math.radians(lat))
    start = nodes[int(np.argmin(((xs - lon) * k) ** 2 + (ys - lat) ** 2))]
    limit_s = 60.0 * minutes
    reached = nx.single_source_dijkstra_path_length(
        graph, start, cutoff=limit_s, weight="travel_time"
    )
    pieces: list[shapely.Geometry] = [
        shapely.Point(graph.nodes[start]["x"], graph.nodes[start]["y"])
    ]
    full: set[tuple[Any, Any]] = set()  # a two-way street is taken once
    for u, t_u in reached.items():
        left = limit_s - t_u
        for _, v, data in graph.out_edges(u, data=True):
            tt = float(data.get("travel_time", np.inf))
            if not (tt > 0 and np.isfinite(tt)) or left <= 0:
                continue
            key = (min(u, v), max(u, v))
            if left >= tt and key in full:
                continue
            geom = data.get("geometry")
            if geom is None:
                geom = shapely.LineString(
                    [
                        (graph.nodes[u]["x"], graph.nodes[u]["y"]),
                        (graph.nodes[v]["x"], graph.nodes[v]["y"]),
                    ]
                )
            if left >= tt:
                full.add(key)
                pieces.append(geom)
            else:
                pieces.append(shapely.ops.substring(geom, 0.0, left / tt, normalized=True))
    frame = gpd.GeoSeries(pieces, crs="EPSG:4326")
    try:
        utm = frame.estimate_utm_crs()
    except (RuntimeError, ValueError):
        utm = "EPSG:3857"
    # raster buffer: cells of buffer_m touched by the reachable roads and their 8 neighbours,
    # merged as a coverage (non-overlapping cells): fast for tens of thousands of edges
    cell = float(buffer_m)
    dense = shapely.segmentize(frame.to_crs(utm).to_numpy(), cell / 2.0)
    xy = shapely.get_coordinates(dense)
    ij = np.floor(xy / cell).astype(np.int64)
    ij -= ij.min(axis=0) - 1  # non-negative, with room for the neighbours
    width = int(ij[:, 1].max()) + 2
    keys = np.unique(ij[:, 0] * width + ij[:, 1])
    offsets = np.array([di * width + dj for di in (-1, 0, 1) for dj in (-1, 0, 1)])
    keys = np.unique((keys[:, None] + offsets[None, :]).ravel())
    origin = np.floor(xy.min(axis=0) / cell).astype(np.int64) - 1
    i, j = keys // width + origin[0], keys % width + origin[1]
    boxes = shapely.box(i * cell, j * cell, (i + 1) * cell, (j + 1) * cell)
    merged = shapely.simplify(shapely.coverage_union_all(boxes), cell / 2.0)
    area: shapely.Geometry = gpd.GeoSeries([merged], crs=utm).to_crs("EPSG:4326").iloc[0]
    return area


def _site_legend_items(
    sites: pd.DataFrame,
    roles: pd.Series,
    colors_by_site: dict[str, str],
    site_names: dict[str, str],
    *,
    unserved: bool,
) -> list[tuple[str, str, str]]:
    items = []
    for sid, role in zip(sites["site_id"].astype(str), roles, strict=True):
        color = "#000000" if role == "office" else colors_by_site[sid]
        suffix = "" if role == "workshop" else f" ({role})"
        name = site_names.get(sid, sid)
        label = sid if name == sid else f"{sid} · {name}"
        items.append(("site", color, f"{label}{suffix}"))
    if len(items) > _LEGEND_MAX_ROWS:
        hidden = len(items) - _LEGEND_MAX_ROWS + 1
        items = [*items[: _LEGEND_MAX_ROWS - 1], ("dot", "#ffffff", f"… and {hidden} more")]
    if unserved:
        items.append(("dot", _UNASSIGNED_COLOR, "customer not served"))
    return items


def map_html(m: folium.Map) -> str:
    """Return a map as one standalone HTML document that opens with no internet.

    Leaflet and its plugins are inlined from the pip-installed XStatic packages.
    """
    return assets.render_standalone_html(m)


def save_map(m: folium.Map, path: str | os.PathLike[str]) -> Path:
    """Write a map to a standalone HTML file that opens with no internet (also from file://).

    Parameters
    ----------
    m
        The map.
    path
        Output file, e.g. ``"map.html"``; parent folders are created.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(map_html(m), encoding="utf-8")
    logger.info("wrote map to %s", out)
    return out
