"""Download a region's extract once, safely.

:func:`download_region` fetches a catalog region's ``.osm.pbf`` into
``$PLANNER_CACHE_DIR/regions/`` (the extract's path on the server below it):

* bytes go to ``<file>.part``; the file gets its real name only when it is complete and
  verified, so a killed download never leaves a file that looks complete;
* a broken connection is resumed where it stopped (HTTP ``Range``), a few times;
* the server's ``<file>.md5``, when it has one, is checked; on a mismatch the file is fetched
  again once, then the download fails;
* an answer that is not a PBF file (a web page, an error text) is refused at its first bytes;
* an extract already on disk is never downloaded again;
* ``progress`` gets the bytes so far, the total, the speed and the time left.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from planner.errors import GraphError, InputError, NetworkError
from planner.roads import _http
from planner.roads.catalog import (
    Catalog,
    RegionEntry,
    extract_path,
    format_size,
    load_catalog,
    resolve_region,
)
from planner.roads.osm_file import check_osm_file

logger = logging.getLogger(__name__)

#: Times a broken connection is resumed before the download fails.
MAX_RESUMES = 5
#: Bytes read per network read.
CHUNK_BYTES = 1 << 20
#: Seconds between two progress reports.
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands.

    Attributes
    ----------
    name
        File name (``greece-latest.osm.pbf``).
    done_bytes
        Bytes on disk so far (resumed bytes included).
    total_bytes
        Size of the file, None when the server does not say.
    speed_bps
        Bytes per second over this session.
    eta_s
        Seconds left at that speed, None when unknown.
    """

    name: str
    done_bytes: int
    total_bytes: int | None
    speed_bps: float
    eta_s: float | None

    @property
    def fraction(self) -> float:
        """Share done (0 when the total is unknown)."""
        return min(self.done_bytes / self.total_bytes, 1.0) if self.total_bytes else 0.0

    def message(self) -> str:
        """``Downloading greece-latest.osm.pbf: 120 MB of 305 MB (39 %), 48 MB/s, 4 s left``."""
        total = f" of {format_size(self.total_bytes)}" if self.total_bytes else ""
        share = f" ({self.fraction:.0%})" if self.total_bytes else ""
        eta = f", {self.eta_s:.0f} s left" if self.eta_s is not None else ""
        return (
            f"Downloading {self.name}: {format_size(self.done_bytes)}{total}{share}, "
            f"{format_size(self.speed_bps)}/s{eta}"
        )


ProgressFn = Callable[[DownloadProgress], None]


class NotPbfError(NetworkError):
    """The server's answer is not an ``.osm.pbf`` file."""


def check_pbf_head(head: bytes, *, what: str) -> None:
    """Refuse data that does not start like an ``.osm.pbf`` file.

    The same check every road file gets (:func:`planner.roads.osm_file.check_osm_file`),
    applied to the first bytes of the server's answer.

    Raises
    ------
    NotPbfError
        With what the data looks like (a web page, XML, empty...).
    """
    try:
        check_osm_file(Path("download.osm.pbf"), name=what, data=head)
    except GraphError as exc:
        msg = (
            f"the server's answer is {exc}; check PLANNER_DOWNLOAD_URL and the region "
            "id (`planner regions list --search NAME`)"
        )
        raise NotPbfError(msg) from exc


def _md5_of_file(path: Path) -> hashlib._Hash:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest


_MD5_RE = re.compile(rb"\b([0-9a-fA-F]{32})\b")


def _server_md5(url: str, timeout_s: float) -> str | None:
    """The MD5 the server publishes in ``<url>.md5``, None when it has none."""
    try:
        text = _http.fetch_bytes(f"{url}.md5", timeout_s=timeout_s, limit=64 * 1024)
    except _http.NotFoundError:
        return None
    match = _MD5_RE.search(text)
    return match.group(1).decode().lower() if match else None


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _fetch_to_part(
    url: str,
    part: Path,
    *,
    name: str,
    progress: ProgressFn | None,
    timeout_s: float,
    stats: dict[str, Any],
) -> tuple[str, int | None, str | None]:
    """Fetch ``url`` into ``part`` (resuming what is there); returns its MD5, size and the
    server's Last-Modified date."""
    digest = _md5_of_file(part) if part.exists() else hashlib.md5(usedforsecurity=False)
    done = part.stat().st_size if part.exists() else 0
    total: int | None = None
    last_modified: str | None = None
    started = time.perf_counter()
    session_bytes = 0
    last_report = 0.0
    resumes = 0
    while True:
        headers = {"Range": f"bytes={done}-"} if done else {}
        stats["requests"] = stats.get("requests", 0) + 1
        stats.setdefault("range_starts", []).append(done)
        try:
            response = _http.open_url(url, headers=headers, timeout_s=timeout_s)
        except _http.NotFoundError:
            raise
        except NetworkError:
            if resumes >= MAX_RESUMES or done == 0:
                raise
            resumes += 1
            time.sleep(min(0.2 * resumes, 1.0))
            continue
        with response:
            status = response.status
            last_modified = response.headers.get("Last-Modified") or last_modified
            length = response.headers.get("Content-Length")
            if done and status != 206:
                # the server ignored the Range: start over
                logger.info("%s: the server does not resume; starting over", url)
                done = 0
                digest = hashlib.md5(usedforsecurity=False)
                part.unlink(missing_ok=True)
            if length is not None and length.isdigit():
                total = done + int(length)
            mode = "ab" if done else "wb"
            try:
                with part.open(mode) as fh:
                    if done == 0:
                        head = response.read(64)
                        check_pbf_head(head, what=url)
                        fh.write(head)
                        digest.update(head)
                        done += len(head)
                        session_bytes += len(head)
                    while True:
                        block = response.read(CHUNK_BYTES)
                        if not block:
                            break
                        fh.write(block)
                        digest.update(block)
                        done += len(block)
                        session_bytes += len(block)
                        now = time.perf_counter()
                        if progress is not None and now - last_report >= PROGRESS_EVERY_S:
                            last_report = now
                            speed = session_bytes / max(now - started, 1e-6)
                            eta = (total - done) / speed if total and speed > 0 else None
                            progress(DownloadProgress(name, done, total, speed, eta))
            except (TimeoutError, OSError, http.client.HTTPException) as exc:
                if isinstance(exc, NetworkError):
                    raise
                if resumes >= MAX_RESUMES:
                    msg = (
                        f"{url}: the connection broke {resumes + 1} times ({exc}); run the same "
                        f"command again to resume from {format_size(done)}"
                    )
                    raise NetworkError(msg) from None
                resumes += 1
                logger.info("%s: connection broke at %s (%s); resuming", url, done, exc)
                continue
        if total is not None and done < total:
            # the server closed the connection early without an error
            if resumes >= MAX_RESUMES:
                msg = f"{url}: the download stopped at {done:,} of {total:,} bytes; try again"
                raise NetworkError(msg)
            resumes += 1
            continue
        break
    elapsed = time.perf_counter() - started
    if progress is not None:
        progress(DownloadProgress(name, done, total or done, session_bytes / max(elapsed, 1e-6), 0))
    return digest.hexdigest(), total, last_modified


def download_url_to(
    url: str,
    path: Path,
    *,
    progress: ProgressFn | None = None,
    timeout_s: float = _http.DEFAULT_TIMEOUT_S,
    stats: dict[str, Any] | None = None,
) -> Path:
    """Download ``url`` (an ``.osm.pbf``) to ``path`` once, resuming and verifying.

    See :func:`download_region`; ``stats`` (optional) receives ``requests`` and
    ``range_starts`` (the byte each request started from) for tests and benchmarks.
    """
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    stats = {} if stats is None else stats
    expected = _server_md5(url, timeout_s)
    for attempt in (1, 2):
        md5, _total, last_modified = _fetch_to_part(
            url, part, name=path.name, progress=progress, timeout_s=timeout_s, stats=stats
        )
        if expected is None or md5 == expected:
            break
        part.unlink(missing_ok=True)
        if attempt == 2:
            msg = (
                f"{url}: the file's MD5 ({md5}) differs from the server's ({expected}) twice; "
                "the server may be publishing a new extract right now: try again later"
            )
            raise NetworkError(msg)
        logger.warning("%s: MD5 %s, expected %s; fetching it again", url, md5, expected)
    size = part.stat().st_size
    meta = {
        "url": url,
        "md5": md5,
        "md5_checked": expected is not None,
        "size_bytes": size,
        "server_date": last_modified,
        "downloaded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _meta_path(path).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    os.replace(part, path)
    logger.info("downloaded %s (%s)", path, format_size(size))
    return path


def download_region(
    region_id: str | RegionEntry,
    *,
    progress: ProgressFn | None = None,
    catalog: Catalog | None = None,
    timeout_s: float = _http.DEFAULT_TIMEOUT_S,
    stats: dict[str, Any] | None = None,
) -> Path:
    """Download a catalog region's extract into ``$PLANNER_CACHE_DIR/regions/`` (once).

    Parameters
    ----------
    region_id
        A catalog id (``europe/greece``, or ``greece`` when unambiguous) or an entry of
        :func:`planner.roads.catalog.list_regions`.
    progress
        Called about twice a second with a :class:`DownloadProgress`.
    catalog
        A loaded catalog (default: :func:`planner.roads.catalog.load_catalog`).
    timeout_s
        Seconds for the connection and for each read.
    stats
        Filled with ``requests`` and ``range_starts`` (tests, benchmarks).

    Returns
    -------
    pathlib.Path
        The complete, verified extract (returned at once, without network, when it is on
        disk already).

    Raises
    ------
    InputError
        Unknown or ambiguous region id.
    NetworkError
        Offline, the server has no such file (404), the answer is not a PBF file, the MD5
        differs twice, or the connection broke too often.
    """
    if isinstance(region_id, RegionEntry):
        entry = region_id
    else:
        if catalog is None:
            catalog = load_catalog()
        entry = resolve_region(region_id, catalog=catalog)
    if entry.kind == "bundled" or (entry.url is None and entry.path is not None):
        assert entry.path is not None
        return entry.path
    if entry.url is None:
        raise InputError(f"region {entry.id!r} has no download address", field="region")
    path = extract_path(entry.url)
    if path.is_file():
        return path
    try:
        return download_url_to(entry.url, path, progress=progress, timeout_s=timeout_s, stats=stats)
    except _http.NotFoundError as exc:
        msg = (
            f"{exc}; region {entry.id!r} is in the catalog but its extract is missing on the "
            "server: try again later or pick the enclosing region"
        )
        raise NetworkError(msg) from None


def extract_info(path: Path) -> dict[str, object]:
    """What is known about a downloaded extract (its ``.json`` beside it), or ``{}``."""
    try:
        data = json.loads(_meta_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
