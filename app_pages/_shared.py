"""Cached library calls and map rendering shared by the app's pages.

Heavy work is cached here, not in the pages: the road graph with ``st.cache_resource`` (one
read-only copy shared by every session), tables and results with ``st.cache_data`` keyed by a
small hashable spec (region name, number of workshops). Arguments starting with ``_`` are not
hashed.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import folium
import geopandas as gpd
import networkx as nx
import pandas as pd
import streamlit as st
from streamlit_folium import st_folium

from planner.engine import ScenarioSpec, run
from planner.inputs import customers as demand
from planner.outputs import _assets, maps
from planner.results.types import ScenarioResult
from planner.roads import network

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


def region_select(*, key: str) -> str:
    """Sidebar region picker; ``?region=NAME`` in the URL preselects a bundled region."""
    requested = st.query_params.get("region", REGIONS[0])
    return st.selectbox(
        "Region",
        REGIONS,
        index=REGIONS.index(requested) if requested in REGIONS else 0,
        format_func=region_title,
        key=key,
    )


def workshops_input(label: str, *, key: str) -> int:
    """Number of workshops, 1 to :data:`MAX_WORKSHOPS`."""
    return int(
        st.number_input(
            label,
            min_value=1,
            max_value=MAX_WORKSHOPS,
            value=DEFAULT_WORKSHOPS,
            step=1,
            key=key,
        )
    )


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


#: Customer file formats accepted by the upload widget.
UPLOAD_TYPES = ("csv", "txt", "xlsx", "geojson", "gpkg", "parquet")
CUSTOMERS_TEMPLATE = demand.DEMO_DIR / "customers_template.csv"


def uploaded_file(name: str, data: bytes) -> io.BytesIO:
    """An uploaded file as the library reads it: bytes with the user's file name."""
    upload = io.BytesIO(data)
    upload.name = Path(name).name or "customers.csv"
    return upload


@st.cache_data(show_spinner=False, max_entries=8)
def read_uploaded_customers(region: str, name: str, data: bytes) -> demand.CustomerTable:
    """Read and validate an uploaded customer file against the region's roads.

    Parsed in memory by :func:`planner.inputs.customers.read_customers` (never executed or
    unpickled); the report names the user's file.
    """
    return demand.read_customers(uploaded_file(name, data), region=region, graph=load_graph(region))


def upload_report(table: demand.CustomerTable) -> str:
    """The validation report of an upload, as text (paths shown by file name only)."""
    return re.sub(r"\S*planner-upload-[^/\s]+/", "", str(table.report))


@st.cache_data(show_spinner=False, max_entries=32)
def plan(
    region: str,
    workshops: int,
    customers_name: str | None = None,
    customers_data: bytes | None = None,
) -> ScenarioResult:
    """Propose ``workshops`` sites for the demo customers, or for an uploaded customer file.

    Rows of an uploaded file with problems are left out (the page shows the report); an
    unreadable file raises :class:`planner.errors.InputError`.
    """
    spec = ScenarioSpec(name=f"{region_title(region)} in-house", region=region, workshops=workshops)
    customers = None
    if customers_name is not None and customers_data is not None:
        customers = uploaded_file(customers_name, customers_data)
    return run(spec, customers=customers, graph=load_graph(region)).result


@st.cache_data(show_spinner=False, ttl=300)
def tiles() -> str | None:
    """OpenStreetMap tiles when the tile server answers quickly, else None (offline)."""
    return "OpenStreetMap" if _assets.check_tiles_reachable() else None


@st.cache_data(show_spinner=False, max_entries=32)
def result_map_html(
    region: str,
    workshops: int,
    customers_name: str | None = None,
    customers_data: bytes | None = None,
) -> str:
    """Standalone (offline) HTML of a result map, for the download button."""
    result = plan(region, workshops, customers_name, customers_data)
    return maps.map_html(maps.result_map(result, roads=load_roads(region), tiles=tiles()))


def file_key(name: str | None, data: bytes | None) -> str | None:
    """Short fingerprint of an uploaded file (None for the demo customers)."""
    if name is None or data is None:
        return None
    return f"{name}:{hashlib.sha256(data).hexdigest()[:16]}"


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
