"""Verified cache entries: every entry says what it was built from and carries a checksum.

The disk caches (prepared graphs, OSM features, travel-time matrices) are a speed-up, never a
source of truth. Each entry is written with a *header*::

    {"cache_format": 1,
     "built_from": {"key": ..., "code": ..., "shape": [...], ...},
     "payload_sha256": {"edges.parquet": "9f2c...", ...}}

``built_from`` names the input content hash (the cache key), the code/format version and the
shape of the payload; ``payload_sha256`` holds a SHA-256 checksum per payload part. A reader
compares both with what it expects (:func:`check_header`). An entry that cannot be read or does
not check (truncated, zero-filled, swapped with another entry, written by another version) is
reported with one warning line (:func:`warn_invalid`) and recomputed by the caller; it never
raises and is never used.

This module is the lowest floor that needs it (``roads``); ``routing`` imports it from here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

logger = logging.getLogger(__name__)

#: Version of the header layout itself.
CACHE_FORMAT = 1


def sha256_hex(data: bytes | memoryview) -> str:
    """Return the SHA-256 hex digest of ``data``.

    Parameters
    ----------
    data
        Bytes to hash.

    Returns
    -------
    str
    """
    return hashlib.sha256(data).hexdigest()


def _canonical(value: Mapping[str, Any]) -> Any:
    """JSON round trip, so tuples and lists (and numpy scalars via ``str``) compare equal."""
    return json.loads(json.dumps(dict(value), sort_keys=True, default=str))


def make_header(
    *, built_from: Mapping[str, Any], payload_sha256: Mapping[str, str]
) -> dict[str, Any]:
    """Return the header of a cache entry.

    Parameters
    ----------
    built_from
        What the entry was built from: the input content hash (cache key), the code/format
        version and the payload shape. JSON-serialisable.
    payload_sha256
        SHA-256 hex digest of each payload part, by name.

    Returns
    -------
    dict
        JSON-serialisable header.
    """
    return {
        "cache_format": CACHE_FORMAT,
        "built_from": _canonical(built_from),
        "payload_sha256": dict(sorted(payload_sha256.items())),
    }


def check_header(
    header: Any, *, built_from: Mapping[str, Any], payload_sha256: Mapping[str, str]
) -> str | None:
    """Check a cache entry's header against what the reader expects.

    Parameters
    ----------
    header
        The header as read from the entry (anything: it may be garbage).
    built_from
        What the reader needs the entry to be built from (compared key by key).
    payload_sha256
        SHA-256 of the payload parts as actually read.

    Returns
    -------
    str or None
        ``None`` when the entry is valid, otherwise the reason it is not (for the warning).
    """
    if not isinstance(header, Mapping):
        return "no header"
    if header.get("cache_format") != CACHE_FORMAT:
        return f"cache format {header.get('cache_format')!r}, expected {CACHE_FORMAT}"
    stored = header.get("built_from")
    expected = _canonical(built_from)
    if not isinstance(stored, Mapping):
        return "no record of what it was built from"
    for key, value in expected.items():
        if stored.get(key) != value:
            return f"built from {key}={stored.get(key)!r}, expected {value!r}"
    sums = header.get("payload_sha256")
    if not isinstance(sums, Mapping) or set(sums) != set(payload_sha256):
        return "no checksum for its payload"
    for name, digest in sorted(payload_sha256.items()):
        if sums.get(name) != digest:
            return f"checksum mismatch in {name}"
    return None


def warn_invalid(what: str, path: Path, reason: str) -> None:
    """Log the one warning line for a cache entry that is ignored and recomputed.

    Parameters
    ----------
    what
        Kind of entry (``"graph"``, ``"matrix"``, ``"features"``).
    path
        The entry's file or directory.
    reason
        Why it was rejected.
    """
    logger.warning("ignoring invalid %s cache entry %s (%s); recomputing it", what, path, reason)


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file next to ``path`` for writing; rename it to ``path`` on success.

    Readers never see a half-written entry: the rename is atomic, and on any error the
    temporary file is removed and ``path`` is left as it was.

    Parameters
    ----------
    path
        Target file; its folder is created.

    Yields
    ------
    typing.BinaryIO
        The open temporary file.

    Raises
    ------
    OSError
        When the folder is not writable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_npz(path: Path, what: str) -> dict[str, Any] | None:
    """Every array of the ``.npz`` file at ``path``; None when it is missing, or unreadable
    (truncated, zero-filled, not a zip: one :func:`warn_invalid` line, never an exception).

    Parameters
    ----------
    path
        The cache file.
    what
        Kind of entry, for the warning (``"snapping index"``...).
    """
    if not path.is_file():
        return None
    try:
        # open the file here: np.load leaks its own handle when the zip is broken
        with path.open("rb") as fh, np.load(fh, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except Exception as exc:  # BadZipFile, EOFError, ValueError...: recompute, never crash
        warn_invalid(what, path, f"unreadable: {type(exc).__name__}: {exc}")
        return None


def write_npz(path: Path, arrays: Mapping[str, Any], what: str) -> None:
    """Write ``arrays`` to the ``.npz`` file at ``path`` atomically (:func:`atomic_file`); a
    folder that cannot be written logs one warning (the cache is a speed-up only)."""
    try:
        with atomic_file(path) as fh:
            np.savez(fh, **arrays)
    except OSError as exc:
        logger.warning("could not write the %s cache %s: %s", what, path, exc)
