"""The region catalog against a loopback download server: list, search, resolve, sizes,
which region holds some points, and offline use (cached catalog, or none) answered fast."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from planner.errors import InputError
from planner.roads import catalog as cat
from tests._regions_server import LIECHTENSTEIN_PBF, RegionServer, closed_port_url, region_server


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RegionServer]:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    monkeypatch.delenv("PLANNER_DATA_DIR", raising=False)
    with region_server() as state:
        monkeypatch.setenv("PLANNER_DOWNLOAD_URL", state.url)
        yield state


def test_list_has_catalog_bundled_and_files_on_disk(server: RegionServer, tmp_path: Path) -> None:
    data_dir = tmp_path / "roads"
    data_dir.mkdir()
    (data_dir / "my-county.osm.pbf").write_bytes(LIECHTENSTEIN_PBF.read_bytes())
    (data_dir / "notes.txt").write_text("not a road file")
    import os

    os.environ["PLANNER_DATA_DIR"] = str(data_dir)
    try:
        catalog = cat.load_catalog()
        entries = cat.list_regions(catalog=catalog)
    finally:
        del os.environ["PLANNER_DATA_DIR"]
    ids = [e.id for e in entries]
    assert catalog.fetched
    assert catalog.note is None
    assert {"malta", "liechtenstein", "andorra"} <= {e.id for e in entries if e.kind == "bundled"}
    assert {"europe/liechtenstein", "europe/malta", "north-america/us/georgia"} <= set(ids)
    files = [e for e in entries if e.kind == "file"]
    assert [e.name for e in files] == ["my-county.osm.pbf"]
    li = next(e for e in catalog.entries if e.id == "europe/liechtenstein")
    assert li.name == "Liechtenstein"
    assert li.parent == "europe"
    assert li.server_id == "liechtenstein"
    assert li.url == f"{server.url}/europe/liechtenstein-latest.osm.pbf"
    assert li.bbox == pytest.approx((9.47, 47.04, 9.64, 47.28))
    assert not li.downloaded
    # the catalog is cached with its date: a second load asks nothing of the server
    asked = len(server.requests)
    again = cat.load_catalog()
    assert len(server.requests) == asked
    assert again.fetched == catalog.fetched


def test_search_ranks_exact_then_prefix_then_substring(server: RegionServer) -> None:
    catalog = cat.load_catalog()
    hits = cat.list_regions("liech", catalog=catalog)
    assert [e.id for e in hits][:2] == ["liechtenstein", "europe/liechtenstein"]
    georgia = [e.id for e in cat.search_regions("GEORGIA", catalog.entries)]
    assert georgia == ["europe/georgia", "north-america/us/georgia"]
    assert cat.search_regions("zzz-nowhere", catalog.entries) == []
    # "us" exactly names north-america/us before regions merely containing "us"
    assert cat.search_regions("us", catalog.entries)[0].id == "north-america/us"


def test_resolve_ids_names_and_ambiguity(server: RegionServer) -> None:
    catalog = cat.load_catalog()
    assert cat.resolve_region("europe/malta", catalog=catalog).id == "europe/malta"
    assert cat.resolve_region("malta", catalog=catalog).id == "europe/malta"
    assert cat.resolve_region("Liechtenstein", catalog=catalog).id == "europe/liechtenstein"
    assert cat.resolve_region("us/georgia", catalog=catalog).id == "north-america/us/georgia"
    with pytest.raises(InputError) as ambiguous:
        cat.resolve_region("georgia", catalog=catalog)
    assert "europe/georgia" in str(ambiguous.value)
    assert "north-america/us/georgia" in str(ambiguous.value)
    with pytest.raises(InputError, match="did you mean europe/malta"):
        cat.resolve_region("malt", catalog=catalog)


def test_size_from_the_server_is_remembered(server: RegionServer) -> None:
    catalog = cat.load_catalog()
    li = next(e for e in catalog.entries if e.id == "europe/liechtenstein")
    assert cat.entry_size(li) == LIECHTENSTEIN_PBF.stat().st_size
    heads = [r for r in server.requests if r[0] == "HEAD"]
    assert len(heads) == 1
    reloaded = next(e for e in cat.load_catalog().entries if e.id == "europe/liechtenstein")
    assert reloaded.size_bytes == LIECHTENSTEIN_PBF.stat().st_size
    assert "3.3 MB" in reloaded.label()
    armenia = next(e for e in catalog.entries if e.id == "asia/armenia")
    assert cat.entry_size(armenia) is None  # 404: unknown, no error


def test_region_for_points_is_the_smallest_holder(server: RegionServer) -> None:
    catalog = cat.load_catalog()
    rng = np.random.default_rng(0)
    lon = rng.uniform(44.0, 45.5, 50)
    lat = rng.uniform(39.5, 40.8, 50)
    assert cat.region_for_points(lon, lat, catalog=catalog).id == "asia/armenia"
    li = cat.region_for_points([9.52, 9.55], [47.14, 47.2], catalog=catalog)
    assert li is not None
    assert li.id == "europe/liechtenstein"
    # spread over Europe: only Europe holds them all
    both = cat.region_for_points([9.52, 14.5], [47.14, 35.9], catalog=catalog, min_share=1.0)
    assert both is not None
    assert both.id == "europe"
    assert cat.region_for_points([-150.0], [-60.0], catalog=catalog) is None


def test_offline_without_a_catalog_lists_what_is_on_disk_in_seconds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    monkeypatch.setenv("PLANNER_DOWNLOAD_URL", closed_port_url())
    started = time.perf_counter()
    empty = cat.load_catalog()
    assert time.perf_counter() - started < 5.0
    assert empty.entries == ()
    assert empty.note is not None
    assert "cannot be reached" in empty.note
    assert "planner regions list" in empty.note
    assert str(cat.regions_dir()) in empty.note
    assert "\n" not in empty.note
    listed = cat.list_regions(catalog=empty)
    assert {e.kind for e in listed} == {"bundled"}
    with pytest.raises(InputError, match="cannot be reached"):
        cat.resolve_region("europe/malta", catalog=empty)


def test_stale_cache_is_used_when_the_server_is_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    with region_server() as state:
        monkeypatch.setenv("PLANNER_DOWNLOAD_URL", state.url)
        first = cat.load_catalog()
    # the server is down now; a refresh falls back to the copy and says its date
    started = time.perf_counter()
    stale = cat.load_catalog(refresh=True)
    assert time.perf_counter() - started < 5.0
    assert [e.id for e in stale.entries] == [e.id for e in first.entries]
    assert stale.note is not None
    assert first.fetched is not None
    assert stale.note.startswith(f"Region catalog of {first.fetched[:10]}")
    monkeypatch.setenv("PLANNER_OFFLINE", "1")
    assert cat.load_catalog(refresh=True).entries == stale.entries


def test_parsed_catalog_is_cached_in_process(server: RegionServer) -> None:
    first = cat.load_catalog()
    second = cat.load_catalog()
    # the same parsed outlines (not parsed again), and search over them is immediate
    assert second._raw_geometry is first._raw_geometry
    assert first.geometry("europe/malta") is second.geometry("europe/malta")
