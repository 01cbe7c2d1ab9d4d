"""Provenance of a result: what data and software produced a figure.

A provenance record is a plain JSON-serialisable ``dict`` so it can be written into every
export (CSV side file, XLSX sheet, GeoPackage layer, HTML report) and compared later.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import platform
from collections.abc import Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["collect_provenance", "file_sha256", "package_versions"]

_PACKAGES: tuple[str, ...] = (
    "service-site-planner",
    "osmnx",
    "networkx",
    "numpy",
    "scipy",
    "pandas",
    "geopandas",
    "shapely",
    "highspy",
)

_CHUNK_BYTES = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Return the hex SHA-256 digest of a file's bytes.

    Parameters
    ----------
    path
        File to hash.

    Returns
    -------
    str
        64 lowercase hex characters.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions(packages: Iterable[str] = _PACKAGES) -> dict[str, str]:
    """Return installed versions of ``packages`` (``"not installed"`` when missing)."""
    out: dict[str, str] = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def collect_provenance(
    *,
    files: Mapping[str, str | Path | None] | None = None,
    graph_report: Mapping[str, Any] | None = None,
    solver: str | None = None,
    seed: int | None = None,
    scenario: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Collect a provenance record.

    Parameters
    ----------
    files
        Role -> path of every input file (``{"customers": ..., "sites": ..., "osm": ...}``);
        each is recorded with its absolute path, size and SHA-256. ``None`` values are recorded
        as ``None`` (for example bundled demo customers generated from a seed).
    graph_report
        ``G.graph["planner_report"]`` of the road graph; its ``source`` and ``osm_date`` are
        copied.
    solver
        Solver name and version, e.g. ``"HiGHS 1.16.0"``.
    seed
        Random seed used for demo data or heuristics.
    scenario
        The scenario spec as a dict (``ScenarioSpec.to_dict()``).
    extra
        Anything else worth recording.

    Returns
    -------
    dict
        JSON-serialisable record with keys ``created_utc``, ``packages``, ``platform``,
        ``files``, ``osm_source``, ``osm_date``, ``solver``, ``seed`` and, when given,
        ``scenario`` and ``extra``.
    """
    file_records: dict[str, Any] = {}
    for role, path in (files or {}).items():
        if path is None:
            file_records[role] = None
            continue
        p = Path(path)
        if p.is_file():
            file_records[role] = {
                "path": str(p.resolve()),
                "bytes": p.stat().st_size,
                "sha256": file_sha256(p),
            }
        else:
            logger.warning("provenance: %s file %s does not exist", role, p)
            file_records[role] = {"path": str(p), "bytes": None, "sha256": None}
    report = dict(graph_report or {})
    record: dict[str, Any] = {
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "platform": platform.platform(),
        "files": file_records,
        "osm_source": _jsonable(report.get("source")),
        "osm_date": _jsonable(report.get("osm_date")),
        "solver": solver,
        "seed": seed,
    }
    if scenario is not None:
        record["scenario"] = _jsonable(dict(scenario))
    if extra is not None:
        record["extra"] = _jsonable(dict(extra))
    return record


def _jsonable(value: Any) -> Any:
    """Convert paths, numpy scalars and tuples into JSON-friendly values."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        try:
            return value.item()
        except (TypeError, ValueError):
            pass
    return str(value)
