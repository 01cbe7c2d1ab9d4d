"""Downloading a region's extract from a loopback server: progress, resume after a cut
connection (without starting over), MD5 checked (refetched once, then refused), 404 and
non-PBF answers reported clearly, offline refused in seconds, never downloaded twice."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from planner.errors import InputError, NetworkError
from planner.roads import catalog as cat
from planner.roads.download import (
    DownloadProgress,
    NotPbfError,
    check_pbf_head,
    download_region,
    extract_info,
)
from tests._regions_server import (
    HTML_PAGE,
    LIECHTENSTEIN_PBF,
    MALTA_PBF,
    RegionServer,
    closed_port_url,
    region_server,
)

LI = "/europe/liechtenstein-latest.osm.pbf"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[RegionServer]:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    with region_server() as state:
        monkeypatch.setenv("PLANNER_DOWNLOAD_URL", state.url)
        yield state


def test_pbf_header_check() -> None:
    check_pbf_head(MALTA_PBF.read_bytes()[:64], what="malta")
    for bad, says in (
        (HTML_PAGE, "web page (HTML)"),
        (b"<?xml version='1.0'?><osm>", "OSM XML"),
        (b"", "empty"),
        (b"\x00\x00\x00\x0d\x0a\x07OSMData" + b"\x00" * 40, "not an .osm.pbf file"),
    ):
        with pytest.raises(NotPbfError, match=says.replace("(", r"\(").replace(")", r"\)")):
            check_pbf_head(bad, what="x")


def test_download_with_progress_once(server: RegionServer) -> None:
    seen: list[DownloadProgress] = []
    path = download_region("liechtenstein", progress=seen.append)
    assert path == cat.regions_dir() / "europe" / "liechtenstein-latest.osm.pbf"
    assert path.read_bytes() == LIECHTENSTEIN_PBF.read_bytes()
    assert not path.with_name(path.name + ".part").exists()
    info = extract_info(path)
    assert info["md5_checked"] is True
    assert info["md5"] == hashlib.md5(LIECHTENSTEIN_PBF.read_bytes()).hexdigest()
    assert seen
    assert seen[-1].done_bytes == LIECHTENSTEIN_PBF.stat().st_size
    assert seen[-1].total_bytes == LIECHTENSTEIN_PBF.stat().st_size
    assert seen[-1].speed_bps > 0
    assert "Downloading liechtenstein-latest.osm.pbf: 3.3 MB of 3.3 MB (100%)" in seen[-1].message()
    # listed as downloaded; a second download asks nothing of the server
    entry = next(e for e in cat.load_catalog().entries if e.id == "europe/liechtenstein")
    assert entry.downloaded
    assert entry.size_bytes == path.stat().st_size
    asked = len(server.requests)
    assert download_region("europe/liechtenstein") == path
    assert len(server.requests) == asked


def test_cut_connection_is_resumed_not_restarted(server: RegionServer) -> None:
    size = LIECHTENSTEIN_PBF.stat().st_size
    cut = 1_000_000
    server.cut_after[LI] = cut
    stats: dict = {}
    path = download_region("europe/liechtenstein", stats=stats)
    assert path.read_bytes() == LIECHTENSTEIN_PBF.read_bytes()
    # two requests: the whole file, then the rest from where the cut left it
    assert server.gets(LI) == [None, f"bytes={cut}-"]
    assert stats["range_starts"] == [0, cut]
    assert server.bytes_sent[LI] == size  # nothing was sent twice


def test_killed_download_never_looks_complete_and_resumes(server: RegionServer) -> None:
    target = cat.regions_dir() / "europe" / "malta-latest.osm.pbf"
    part = target.with_name(target.name + ".part")

    def die(p: DownloadProgress) -> None:
        if p.done_bytes >= 1_000_000:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_region("europe/malta", progress=die)
    assert not target.exists()
    assert part.exists()
    assert 0 < part.stat().st_size < MALTA_PBF.stat().st_size
    kept = part.stat().st_size
    path = download_region("europe/malta")
    assert path.read_bytes() == MALTA_PBF.read_bytes()
    assert server.gets("/europe/malta-latest.osm.pbf")[-1] == f"bytes={kept}-"


def test_wrong_md5_is_fetched_again_once_then_refused(server: RegionServer) -> None:
    server.corrupt_once.add(LI)
    path = download_region("europe/liechtenstein")
    assert path.read_bytes() == LIECHTENSTEIN_PBF.read_bytes()
    assert server.gets(LI) == [None, None]  # fetched again from the start
    path.unlink()
    path.with_name(path.name + ".json").unlink()
    server.corrupt_always.add(LI)
    with pytest.raises(NetworkError, match="differs from the server's"):
        download_region("europe/liechtenstein")
    assert not path.exists()
    assert not path.with_name(path.name + ".part").exists()


def test_without_md5_the_file_is_still_taken(server: RegionServer) -> None:
    del server.files[LI + ".md5"]
    path = download_region("europe/liechtenstein")
    assert path.read_bytes() == LIECHTENSTEIN_PBF.read_bytes()
    assert extract_info(path)["md5_checked"] is False


def test_404_and_non_pbf_answers_are_reported(server: RegionServer) -> None:
    with pytest.raises(NetworkError) as missing:
        download_region("asia/armenia")
    text = str(missing.value)
    assert "HTTP 404" in text
    assert "asia/armenia" in text
    assert "armenia-latest.osm.pbf" in text
    with pytest.raises(NotPbfError, match=r"web page \(HTML\)"):
        download_region("europe/broken")
    broken = cat.regions_dir() / "europe" / "broken-latest.osm.pbf"
    assert not broken.exists()


def test_offline_is_refused_in_seconds(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PLANNER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("PLANNER_OFFLINE", raising=False)
    with region_server() as state:
        monkeypatch.setenv("PLANNER_DOWNLOAD_URL", state.url)
        catalog = cat.load_catalog()
    # the server is gone: the cached catalog still resolves the id, the download fails fast
    started = time.perf_counter()
    with pytest.raises(NetworkError, match="cannot reach"):
        download_region("europe/malta", catalog=catalog)
    assert time.perf_counter() - started < 5.0
    monkeypatch.setenv("PLANNER_DOWNLOAD_URL", closed_port_url())
    started = time.perf_counter()
    with pytest.raises(InputError, match="cannot be reached"):
        download_region("europe/malta")  # no catalog at all
    assert time.perf_counter() - started < 5.0
    monkeypatch.setenv("PLANNER_OFFLINE", "1")
    with pytest.raises(NetworkError, match="PLANNER_OFFLINE"):
        download_region("europe/malta", catalog=catalog)
