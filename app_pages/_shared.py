"""Cached library calls and map rendering shared by the app's pages.

Heavy work is cached here, not in the pages: the road graph with ``st.cache_resource`` (one
read-only copy shared by every session), tables and results with ``st.cache_data`` keyed by a
small hashable spec (region name, number of workshops). Arguments starting with ``_`` are not
hashed.
"""

from __future__ import annotations

import folium
import geopandas as gpd
import networkx as nx
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from planner import _assets, demand, maps, network
from planner.results import ScenarioResult

#: Bundled regions offered in the app, default first.
REGIONS: tuple[str, ...] = ("malta", *sorted(r for r in network.REGIONS if r != "malta"))
DEFAULT_WORKSHOPS = 5
MAX_WORKSHOPS = 30
MAP_HEIGHT_PX = 560
OSM_CREDIT = (
    "Map data © [OpenStreetMap contributors](https://www.openstreetmap.org/copyright), ODbL 1.0."
)


def region_title(region: str) -> str:
    """Human name of a bundled region."""
    return network.REGIONS[region].title if region in network.REGIONS else region


@st.cache_resource(show_spinner=False)
def load_graph(region: str) -> nx.MultiDiGraph:
    """Road graph of a bundled region, shared by all sessions (read-only)."""
    return network.load_region(region)


@st.cache_data(show_spinner=False)
def load_roads(region: str) -> gpd.GeoDataFrame:
    """Main roads of a region, drawn as the light background layer of every map."""
    return maps.main_roads(load_graph(region))


@st.cache_data(show_spinner=False)
def load_customers(region: str) -> gpd.GeoDataFrame:
    """Demo customers of a region."""
    return demand.load_demo_customers(region)


@st.cache_data(show_spinner=False, max_entries=32)
def plan(region: str, workshops: int) -> ScenarioResult:
    """Propose ``workshops`` sites for the region's demo customers."""
    from planner import pipeline

    return pipeline.plan_workshops(region, workshops, graph=load_graph(region))


@st.cache_data(show_spinner=False, ttl=300)
def tiles() -> str | None:
    """OpenStreetMap tiles when the tile server answers quickly, else None (offline)."""
    return "OpenStreetMap" if _assets.check_tiles_reachable() else None


@st.cache_data(show_spinner=False, max_entries=32)
def result_map_html(region: str, workshops: int) -> str:
    """Standalone (offline) HTML of a result map, for the download button."""
    result = plan(region, workshops)
    return maps.map_html(maps.result_map(result, roads=load_roads(region), tiles=tiles()))


def kpi_display(result: ScenarioResult) -> pd.DataFrame:
    """The result's KPI table with values as display strings (the column mixes types)."""
    table = result.kpi_table()
    table["value"] = [_format_value(v) for v in table["value"]]
    return table


def _format_value(value: object) -> str:
    if isinstance(value, bool | str):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def static_url() -> str:
    """URL path of the vendored web assets, honouring ``server.baseUrlPath``."""
    base = (st.get_option("server.baseUrlPath") or "").strip("/")
    return "/" + "/".join(p for p in (base, _assets.APP_STATIC_URL) if p)


def show_map(m: folium.Map, *, key: str) -> None:
    """Render a folium map with local Leaflet assets; panning or zooming does not rerun."""
    _assets.localize_map(m, base_url=static_url())
    st_folium(
        m,
        key=key,
        height=MAP_HEIGHT_PX,
        use_container_width=True,
        returned_objects=[],
    )
