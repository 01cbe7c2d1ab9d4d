"""The Data page's region picker: search the download server's catalog, the bundled regions,
the extracts already downloaded and the road files already on the server; download a region
with a progress bar; keep only the roads of a box (W,S,E,N); and the hint "these customers are
in Armenia: download Armenia, 33 MB?" when an upload lies outside the chosen region.

Page code only: the catalog, the download, the trim rule and the "which region holds these
points" answer all come from the library (:mod:`planner.roads.catalog`,
:mod:`planner.roads.download`, :mod:`planner.roads.trim`, :mod:`planner.engine.regions`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import streamlit as st

from planner.engine import workspace as ws
from planner.engine.regions import customers_elsewhere
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
from planner.roads.trim import area_from_bbox, write_area_extract
from planner.settings import download_url

#: Session key of a region chosen by a button, applied before the region widget is drawn.
PENDING_KEY = "region_pending"
#: Most regions listed in the picker at once (search narrows them).
MAX_LISTED = 300
#: Seconds before an unreachable server is asked again (offline pages must stay fast).
RETRY_S = 300.0

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
        st.session_state["region"] = pending


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
    with st.expander("Find a region: any country, a download, or a road file on this server"):
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


def _box_section() -> None:
    region = str(st.session_state.get("region", ""))
    source = REGIONS[region].drive_file if region in REGIONS else Path(region)
    if not source.is_file():
        return
    st.markdown("**Only the roads of an area** (a country is large: keep the part you need)")
    text = st.text_input(
        "Box W,S,E,N (degrees)", key="region_bbox", placeholder="e.g. 21.0,37.5,24.5,39.9"
    )
    if text and st.button("Keep only the roads in this box", key="region_bbox_use"):
        try:
            area = area_from_bbox(text)
            with st.spinner(f"Keeping the roads of {area.km2():,.0f} km2 from {source.name}…"):
                path = write_area_extract(source, area)
        except PlannerError as exc:
            st.error(str(exc))
            return
        _choose(
            str(path),
            f"Using the roads of {area.km2():,.0f} km2 {area.describe()}, from {source.name}.",
        )


@st.cache_data(show_spinner=False, max_entries=16)
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
