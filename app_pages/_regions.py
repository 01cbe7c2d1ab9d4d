"""The Data page's region picker: search the download server's catalog, the bundled regions,
the extracts already downloaded and the road files already on the server; download a region
with a progress bar; keep only the roads of a box, typed as W,S,E,N or drawn on the Data page
map (both set the scenario's ``bbox``: the engine trims the roads while reading them, as
``planner run --bbox``; without a box, a road file is trimmed to the customers' extent plus
the margin, as ``planner run`` does); and the hint "these customers are in Armenia: download
Armenia, 33 MB?" when an upload lies outside the chosen region.

Page code only: the catalog, the download, the trim rule and the "which region holds these
points" answer all come from the library (:mod:`planner.roads.catalog`,
:mod:`planner.roads.download`, :mod:`planner.roads.trim`, :mod:`planner.engine.regions`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import folium
import folium.plugins
import streamlit as st

from app_pages import _shared as shared
from planner.engine import workspace as ws
from planner.engine.regions import area_from_drawing, customers_elsewhere
from planner.errors import PlannerError
from planner.inputs.customers import read_customers
from planner.roads.catalog import (
    Catalog,
    RegionEntry,
    entry_size,
    format_size,
    list_regions,
    load_catalog,
)
from planner.roads.download import DownloadProgress, download_region
from planner.roads.network import REGIONS
from planner.roads.trim import Area, area_from_bbox
from planner.settings import DEFAULT_MARGIN_KM, download_url

#: Session key of a region chosen by a button, applied before the region widget is drawn.
PENDING_KEY = "region_pending"
#: Most regions listed in the picker at once (search narrows them).
MAX_LISTED = 300
#: Seconds before an unreachable server is asked again (offline pages must stay fast).
RETRY_S = 300.0
#: A road file this large (MB) is not loaded whole by the Data page: it waits for the
#: customers (their extent plus the margin is kept) or a box.
LARGE_ROADS_MB = 30.0
#: Session key of a box drawn on the map, applied to the W,S,E,N field before it is drawn.
DRAWN_KEY = "region_bbox_drawn"

_CATALOGS: dict[str, tuple[float, Catalog]] = {}
_CATALOG_LOCK = threading.Lock()


def catalog(*, refresh: bool = False) -> Catalog:
    """The region catalog, shared by the server's sessions; an unreachable server is asked
    again only after :data:`RETRY_S` (or on 'Refresh catalog')."""
    server = download_url()
    with _CATALOG_LOCK:
        hit = _CATALOGS.get(server)
    if hit is not None and not refresh:
        when, known = hit
        if known.entries or time.monotonic() - when < RETRY_S:
            return load_catalog() if known.entries else known
    fresh = load_catalog(refresh=refresh)
    with _CATALOG_LOCK:
        _CATALOGS[server] = (time.monotonic(), fresh)
    return fresh


def apply_pending() -> None:
    """Apply a region chosen by a button in the last run (call before the region widget)."""
    pending = st.session_state.pop(PENDING_KEY, None)
    if pending is not None:
        shared.keep_value("region", pending)


def _choose(path: str, message: str) -> None:
    st.session_state[PENDING_KEY] = path
    st.session_state["region_message"] = message
    st.rerun()


def _download(entry: RegionEntry) -> None:
    bar = st.progress(0.0, text=f"Downloading {entry.name}…")

    def show(p: DownloadProgress) -> None:
        bar.progress(p.fraction, text=p.message())

    try:
        path = download_region(entry, progress=show)
    except PlannerError as exc:
        bar.empty()
        st.error(f"Could not download {entry.name}: {exc}")
        return
    bar.empty()
    _choose(str(path), f"Downloaded {entry.name} ({format_size(path.stat().st_size)}).")


def _label(entry: RegionEntry) -> str:
    return entry.label()


def region_picker() -> None:
    """The searchable picker (catalog, bundled, downloaded, files on the server), its
    Download button with progress, and the W,S,E,N box."""
    if (message := st.session_state.pop("region_message", None)) is not None:
        st.success(message)
    if (problem := st.session_state.pop("region_message_error", None)) is not None:
        st.error(problem)
    with st.expander(
        "Find a region: any country, a download, or a road file on this server",
        expanded=bool(st.session_state.get("region_bbox") or st.session_state.get(DRAWN_KEY)),
    ):
        refresh = st.button("Refresh catalog", key="region_refresh")
        cat = catalog(refresh=refresh)
        text = st.text_input(
            "Search regions", key="region_search", placeholder="e.g. greece, bavaria, armenia"
        )
        entries = list_regions(text or None, catalog=cat)[:MAX_LISTED]
        if cat.note:
            st.caption(cat.note)
        elif cat.fetched:
            st.caption(
                f"{len(cat.entries):,} regions from {cat.server} (catalog of {cat.fetched[:10]})."
            )
        if not entries:
            st.info(f"No region matches {text!r}.")
        else:
            by_id = {e.id: e for e in entries}
            chosen = st.selectbox(
                "Regions",
                list(by_id),
                key="region_pick",
                format_func=lambda i: _label(by_id[i]) if i in by_id else str(i),
            )
            entry = by_id.get(chosen) if chosen is not None else None
            if entry is not None:
                _entry_actions(entry)
        _box_section()
        st.caption(
            "Extracts from the download server (default Geofabrik); road data © OpenStreetMap "
            "contributors, ODbL. Downloads are kept on this server and never fetched twice."
        )


def _entry_actions(entry: RegionEntry) -> None:
    if entry.kind == "bundled":
        if st.button(f"Use {entry.name}", key="region_use"):
            _choose(entry.id, f"Using {entry.name} (bundled).")
    elif entry.kind == "file" or entry.downloaded:
        assert entry.path is not None
        if st.button(f"Use {entry.path.name}", key="region_use"):
            _choose(str(entry.path), f"Using {entry.path.name}.")
    else:
        size = entry_size(entry, timeout_s=2.0)
        label = f"Download {entry.name}" + (f" ({format_size(size)})" if size else "")
        if st.button(label, key="region_download", type="primary"):
            _download(entry)


def _source(region: str) -> Path:
    return REGIONS[region].drive_file if region in REGIONS else Path(region)


def _box_section() -> None:
    region = str(st.session_state.get("region", ""))
    if not _source(region).is_file():
        return
    if (drawn := st.session_state.pop(DRAWN_KEY, None)) is not None:
        st.session_state["region_bbox"] = drawn
    st.markdown(
        "**Only the roads of an area** (a country is large: keep the part you need). Type the "
        "box, or draw it on the map with the square tool. Without a box, the roads of a road "
        "file around your customers are kept, with a margin."
    )
    st.number_input(
        "Margin around the customers (km)",
        min_value=0.0,
        max_value=500.0,
        step=5.0,
        key="margin_km",
        help=f"Default {DEFAULT_MARGIN_KM:g} km, as `planner run --margin-km`: routes near the "
        "edge of the area stay right within it.",
    )
    text = st.text_input(
        "Box W,S,E,N (degrees)", key="region_bbox", placeholder="e.g. 21.0,37.5,24.5,39.9"
    )
    if text:
        st.button("Keep only the roads in this box", key="region_bbox_use", on_click=keep_box)
    if shared.current_box() is not None:
        st.button(
            "Forget the box",
            on_click=clear_box,
            help="Keep the roads around the customers again (a road file) or the whole region.",
        )


def keep_box() -> None:
    """Make the W,S,E,N field (typed, or drawn on the map) the scenario's box: the roads are
    trimmed to it while they are read (the engine's area, as ``planner run --bbox``)."""
    state = st.session_state
    try:
        area = area_from_bbox(str(state.get("region_bbox", "")))
    except PlannerError as exc:
        state["region_message_error"] = str(exc)
        return
    state["area_box"] = {"region": state.get("region"), "bbox": list(area.bbox)}
    state["region_message"] = (
        f"Keeping the roads of {area.km2():,.0f} km2 {area.describe()} "
        f"from {_source(str(state.get('region'))).name}."
    )


def clear_box() -> None:
    """Forget the box: a road file is trimmed to the customers' extent again."""
    st.session_state.pop("area_box", None)


def waits_for_area(region: str, area: Area | None) -> bool:
    """True (and says why) when ``region`` is a road file too large to load whole and there
    is no area yet (no customers, no box): the Data page then waits for one."""
    path = Path(region)
    if area is not None or region in REGIONS or not path.is_file():
        return False
    size_mb = path.stat().st_size / 1e6
    if size_mb < LARGE_ROADS_MB:
        return False
    st.info(
        f"{path.name} is a large road file ({size_mb:,.0f} MB): upload your customers below "
        "(the roads around them, plus the margin, are kept) or give a box under "
        "**Find a region**; the whole file is never loaded here."
    )
    return True


def box_map(build: Callable[[], folium.Map], *, cache_key: Hashable, key: str) -> None:
    """The Data page map with a tool to draw a box: a drawn box fills the W,S,E,N field and
    is kept with **Keep only the roads in this box** (the same path as a typed box).

    ``build`` makes the map; it is built and rendered once per ``cache_key`` for the whole
    server (:func:`app_pages._shared.cached_map`), so ``cache_key`` names all it shows.
    Leaflet.draw is served by the app (pip-installed), like Leaflet itself.
    """

    def with_draw() -> folium.Map:
        m = build()
        folium.plugins.Draw(
            draw_options={
                "polyline": False,
                "polygon": False,
                "circle": False,
                "marker": False,
                "circlemarker": False,
                "rectangle": {"showArea": False},
            },
            edit_options={"edit": False, "remove": False},
            show_geometry_on_click=False,
        ).add_to(m)
        return m

    value = shared.cached_map(
        with_draw, cache_key=cache_key, key=key, returned_objects=["last_active_drawing"]
    )
    drawing = (value or {}).get("last_active_drawing")
    if not drawing or drawing == st.session_state.get(f"{key}-seen"):
        return
    st.session_state[f"{key}-seen"] = drawing
    try:
        area = area_from_drawing(drawing)
    except PlannerError as exc:
        st.error(f"Could not read the drawn box: {exc}")
        return
    st.session_state[DRAWN_KEY] = ",".join(f"{v:g}" for v in area.bbox)
    st.session_state["region_message"] = (
        f"Box drawn: {st.session_state[DRAWN_KEY]} ({area.km2():,.0f} km2). Keep only its roads "
        "with **Keep only the roads in this box** under *Find a region*."
    )
    st.rerun()


@st.cache_data(show_spinner=False, max_entries=shared.CHECK_CACHE_SIZE)
def _points(name: str, data: bytes) -> tuple[list[float], list[float]]:
    table = read_customers(ws.InputFile(name, data).open())
    valid = table.valid
    if table.report.fatal or valid.empty:
        return [], []
    return valid["lon"].tolist(), valid["lat"].tolist()


def elsewhere_hint(upload: ws.InputFile, region: str) -> None:
    """'These customers are in Armenia: download Armenia, 33 MB?' when most of an upload lies
    outside the chosen region, with the button that does it."""
    lon, lat = _points(upload.name, upload.data)
    if not lon:
        return
    try:
        away = customers_elsewhere(region, lon, lat, catalog=catalog())
    except PlannerError:
        return
    if away is None or away.holder is None:
        return
    holder = away.holder
    st.warning(away.app_message())
    key = f"elsewhere_{holder.id}"
    if holder.downloaded:
        assert holder.path is not None
        if st.button(f"Use {holder.name}", key=key):
            _choose(str(holder.path), f"Using {holder.name}.")
    elif st.button(f"Download {holder.name}", key=key, type="primary"):
        _download(holder)
