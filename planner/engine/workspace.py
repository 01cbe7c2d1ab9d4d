"""Scenario workspaces: saved scenarios as folders, downloadable bundles, and safe reopening.

A saved scenario is a folder inside a *workspace* (the app's own folder)::

    WORKSPACE/
      my-scenario/
        scenario.toml          the ScenarioSpec (paths relative to this folder)
        inputs/customers.csv   every input file the spec reads (customers, sites, road file)

A *bundle* is that folder as one ``.zip`` file, to download and reopen later or elsewhere.

On the command line a scenario TOML may point at any file the user owns. A scenario the app
reopens (a folder of its workspace, or an uploaded bundle) may only read files inside that
bundle or the workspace: :func:`check_paths_inside` rejects anything else with a message that
says what to do, and nothing here writes outside the workspace or overwrites a saved scenario
without ``overwrite=True``.

This module also holds the plain-language hints the app shows for an upload that cannot be
used as is (:func:`region_hint`): "these points are in Malta, but the region is Andorra".
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from planner.engine.spec import ScenarioSpec, _looks_like_path, load_scenario, save_scenario
from planner.errors import InputError
from planner.inputs.customers import geocode_missing
from planner.inputs.tables import read_table
from planner.inputs.validation import ValidationReport, detect_columns, parse_numbers
from planner.roads.network import REGIONS
from planner.settings import WORKSPACE_ENV_VAR, workspace_folder

logger = logging.getLogger(__name__)

__all__ = [
    "INPUT_FIELDS",
    "MAX_BUNDLE_BYTES",
    "REGION_NOTES",
    "SCENARIO_FILE",
    "SITE_ROLES",
    "WORKSPACE_ENV_VAR",
    "InputFile",
    "SavedScenario",
    "bundle_bytes",
    "check_paths_inside",
    "combine_site_files",
    "geocode_upload",
    "list_saved_scenarios",
    "open_bundle",
    "open_saved_scenario",
    "problem_summary",
    "region_hint",
    "save_to_workspace",
    "scenario_slug",
    "workspace_dir",
]

#: Name of the spec file inside a saved scenario folder or bundle.
SCENARIO_FILE = "scenario.toml"
#: Sub-folder of a saved scenario that holds its input files.
INPUTS_DIR = "inputs"
#: Spec fields that may name an input file (``region`` only when it is a road file).
INPUT_FIELDS: tuple[str, ...] = ("customers", "sites", "region")
#: Largest uncompressed size of an uploaded bundle.
MAX_BUNDLE_BYTES = 500 * 1024 * 1024
#: What the bundled road extracts do not cover, said next to "outside the region" problems.
REGION_NOTES: dict[str, str] = {
    "malta": "the bundled Malta roads cover the main island only (Gozo and Comino are not "
    "included)",
}


#: Site files the app takes separately, and the ``kind`` / ``status`` their rows get when the
#: file has no such column.
SITE_ROLES: dict[str, dict[str, str]] = {
    "existing": {"kind": "workshop", "status": "existing"},
    "candidates": {"kind": "workshop", "status": "candidate"},
    "partners": {"kind": "partner", "status": "candidate"},
}


def workspace_dir() -> Path:
    """The app's workspace folder: ``$PLANNER_WORKSPACE_DIR`` or ``~/planner-workspace``.

    Read at call time (each test or server may set its own); the folder is created.
    """
    return workspace_folder()


@dataclass(frozen=True)
class InputFile:
    """An input file held in memory: the user's file name and its bytes.

    Hashable, so it can key caches; :meth:`open` gives the file-like object the engine reads
    (parsed, never executed or unpickled).
    """

    name: str
    data: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", safe_file_name(self.name))

    @property
    def sha256(self) -> str:
        """SHA-256 of the bytes (hex)."""
        return hashlib.sha256(self.data).hexdigest()

    def open(self) -> io.BytesIO:
        """The bytes as a binary file-like object with ``.name`` set."""
        upload = io.BytesIO(self.data)
        upload.name = self.name  # type: ignore[attr-defined]
        return upload


@dataclass(frozen=True)
class SavedScenario:
    """A scenario reopened from a workspace folder or a bundle.

    Attributes
    ----------
    spec
        The spec; its file paths point inside ``folder``.
    folder
        The scenario's folder (inside the workspace).
    inputs
        ``{"customers" | "sites" | "region": InputFile}`` for each input file the spec names.
    """

    spec: ScenarioSpec
    folder: Path
    inputs: Mapping[str, InputFile]


def safe_file_name(name: str) -> str:
    """A plain file name (no folders, no leading dots) for a user-supplied name."""
    base = PurePosixPath(str(name).replace("\\", "/")).name
    base = re.sub(r"[^\w.\- ]+", "_", base).strip(" .")
    return base or "file"


def scenario_slug(name: str) -> str:
    """Folder name for a scenario name: lower-case letters, digits and dashes."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(name).lower()).strip("-")
    return slug[:60] or "scenario"


def _region_file(spec: ScenarioSpec) -> Path | None:
    region = spec.region
    if region.strip().lower() in REGIONS or not _looks_like_path(region):
        return None
    return Path(region)


def _spec_paths(spec: ScenarioSpec) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    if spec.customers is not None:
        paths["customers"] = spec.customers
    if spec.sites is not None:
        paths["sites"] = spec.sites
    if (road := _region_file(spec)) is not None:
        paths["region"] = road
    return paths


def _write_folder(
    spec: ScenarioSpec, inputs: Mapping[str, InputFile], folder: Path
) -> ScenarioSpec:
    """Write ``spec`` and its inputs into ``folder`` (which must not hold another scenario)."""
    unknown = sorted(set(inputs) - set(INPUT_FIELDS))
    if unknown:
        raise InputError(f"unknown input(s) {unknown}; allowed: {list(INPUT_FIELDS)}")
    files = dict(inputs)
    for key, path in _spec_paths(spec).items():
        if key not in files:
            if not path.is_file():
                raise InputError("input file not found; cannot save the scenario", file=path)
            files[key] = InputFile(path.name, path.read_bytes())
    (folder / INPUTS_DIR).mkdir(parents=True, exist_ok=True)
    changes: dict[str, object] = {}
    used: set[str] = set()
    for key in INPUT_FIELDS:
        if key not in files:
            continue
        name = files[key].name
        if name in used:  # customers and sites uploaded under the same name
            name = f"{key}-{name}"
        used.add(name)
        target = folder / INPUTS_DIR / name
        target.write_bytes(files[key].data)
        changes[key] = target if key != "region" else str(target)
    saved = spec.replace(**changes)
    save_scenario(saved, folder / SCENARIO_FILE, overwrite=True)
    return saved


def save_to_workspace(
    spec: ScenarioSpec,
    inputs: Mapping[str, InputFile] | None = None,
    *,
    workspace: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a scenario and its input files as a folder of the workspace.

    Parameters
    ----------
    spec
        The scenario; its ``name`` gives the folder name (see :func:`scenario_slug`).
    inputs
        Input files held in memory (uploads) by spec field; fields not given here but named by
        the spec as a path are copied from disk, so the folder is self-contained.
    workspace
        Workspace folder (default :func:`workspace_dir`).
    overwrite
        Replace a saved scenario of the same name; otherwise that raises.

    Returns
    -------
    pathlib.Path
        The ``scenario.toml`` written.

    Raises
    ------
    FileExistsError
        When a scenario of that name is already saved and ``overwrite`` is false.
    """
    root = Path(workspace).resolve() if workspace is not None else workspace_dir()
    folder = root / scenario_slug(spec.name)
    if folder.exists() and not overwrite:
        raise FileExistsError(
            f"a scenario named {folder.name!r} is already saved in {root}; choose another "
            "name or confirm that it may be replaced"
        )
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=root))
    try:
        _write_folder(spec, inputs or {}, staging)
        # Replace in two renames, so a crash leaves the old or the new scenario, never half
        # of one (the hidden staging and old folders are removed at the next server start).
        old = staging.with_name(f"{staging.name}-old")
        if folder.exists():
            folder.rename(old)
        staging.rename(folder)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    logger.info("saved scenario %r to %s", spec.name, folder)
    return folder / SCENARIO_FILE


def list_saved_scenarios(workspace: str | os.PathLike[str] | None = None) -> list[str]:
    """Folder names of the scenarios saved in the workspace, sorted."""
    root = Path(workspace) if workspace is not None else workspace_dir()
    if not root.is_dir():
        return []
    return sorted(
        p.name
        for p in root.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / SCENARIO_FILE).is_file()
    )


def check_paths_inside(
    spec: ScenarioSpec, roots: Sequence[str | os.PathLike[str]], *, source: str
) -> None:
    """Raise unless every file ``spec`` reads lies inside one of ``roots``.

    Symbolic links and ``..`` are resolved before the check.

    Raises
    ------
    InputError
        Naming the field, the path and what to do instead.
    """
    allowed = [Path(r).resolve() for r in roots]
    for key, path in _spec_paths(spec).items():
        resolved = path.resolve()
        if not any(resolved.is_relative_to(root) for root in allowed):
            raise InputError(
                f"{key} = {str(path)!r} is outside the scenario bundle and the app's "
                "workspace; the app only reads files inside them. Put the file into the "
                f"bundle's {INPUTS_DIR}/ folder and write {key} = \"{INPUTS_DIR}/"
                f'{path.name}" (on the command line, `planner run` reads any path)',
                file=source,
                field=key,
            )


def open_saved_scenario(
    folder: str | os.PathLike[str],
    *,
    workspace: str | os.PathLike[str] | None = None,
) -> SavedScenario:
    """Reopen a scenario folder of the workspace, reading only files inside the workspace.

    Parameters
    ----------
    folder
        The scenario folder (or a folder name inside the workspace).
    workspace
        Workspace folder (default :func:`workspace_dir`).

    Raises
    ------
    InputError
        When the folder is not in the workspace, its TOML is invalid, or it names a file
        outside the workspace.
    """
    root = Path(workspace).resolve() if workspace is not None else workspace_dir()
    path = Path(folder)
    if not path.is_absolute():
        path = root / path
    path = path.resolve()
    if not path.is_relative_to(root):
        raise InputError(f"not a folder of the workspace {root}", file=path)
    toml = path / SCENARIO_FILE
    spec = load_scenario(toml)
    check_paths_inside(spec, [root], source=str(toml))
    inputs: dict[str, InputFile] = {}
    for key, p in _spec_paths(spec).items():
        if not p.is_file():
            raise InputError(f"{key} file not found", file=p, field=key)
        inputs[key] = InputFile(p.name, p.read_bytes())
    return SavedScenario(spec=spec, folder=path, inputs=inputs)


def bundle_bytes(spec: ScenarioSpec, inputs: Mapping[str, InputFile] | None = None) -> bytes:
    """The scenario and its input files as one ``.zip`` (``scenario.toml`` + ``inputs/``).

    Reopen it with :func:`open_bundle`, or unzip it and run ``planner run scenario.toml``.
    """
    with tempfile.TemporaryDirectory(prefix="planner-bundle-") as tmp:
        folder = Path(tmp)
        _write_folder(spec, inputs or {}, folder)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(folder / SCENARIO_FILE, SCENARIO_FILE)
            for p in sorted((folder / INPUTS_DIR).iterdir()):
                zf.write(p, f"{INPUTS_DIR}/{p.name}")
        return buffer.getvalue()


def _unique_folder(root: Path, stem: str) -> Path:
    folder = root / stem
    n = 2
    while folder.exists():
        folder = root / f"{stem}-{n}"
        n += 1
    return folder


def _bundle_members(zf: zipfile.ZipFile, name: str) -> tuple[list[zipfile.ZipInfo], str]:
    """Checked members of a bundle and the folder prefix that holds ``scenario.toml``."""
    members = [m for m in zf.infolist() if not m.is_dir()]
    total = 0
    for m in members:
        parts = PurePosixPath(m.filename).parts
        if m.filename.startswith(("/", "\\")) or ".." in parts or ":" in m.filename:
            raise InputError(
                f"the bundle contains the path {m.filename!r}, which points outside it; "
                "bundles may only hold relative paths",
                file=name,
            )
        if (m.external_attr >> 16) & 0o170000 == 0o120000:
            raise InputError(f"the bundle contains a symbolic link {m.filename!r}", file=name)
        total += m.file_size
    if total > MAX_BUNDLE_BYTES:
        raise InputError(
            f"the bundle unpacks to {total / 1e6:,.0f} MB, more than the "
            f"{MAX_BUNDLE_BYTES / 1e6:,.0f} MB allowed",
            file=name,
        )
    tomls = sorted(
        (m.filename for m in members if PurePosixPath(m.filename).name == SCENARIO_FILE),
        key=lambda f: len(PurePosixPath(f).parts),
    )
    if not tomls:
        raise InputError(
            f"the bundle has no {SCENARIO_FILE}; download a scenario bundle from the app "
            "(Data page, 'Scenario') or zip a folder holding scenario.toml and inputs/",
            file=name,
        )
    prefix = str(PurePosixPath(tomls[0]).parent)
    return members, "" if prefix == "." else prefix + "/"


def open_bundle(
    data: bytes,
    *,
    name: str = "scenario.zip",
    workspace: str | os.PathLike[str] | None = None,
) -> SavedScenario:
    """Unpack an uploaded bundle (``.zip``) or scenario file (``.toml``) into the workspace.

    The bundle is unpacked into a new folder of the workspace (an existing one is never
    overwritten); the spec may read only files inside the workspace.

    Parameters
    ----------
    data
        The uploaded bytes.
    name
        The uploaded file's name (for messages and the folder name).
    workspace
        Workspace folder (default :func:`workspace_dir`).

    Raises
    ------
    InputError
        When the file is not a bundle, holds paths leading out of it, is too large, or its
        scenario names a file outside the bundle and the workspace.
    """
    root = Path(workspace).resolve() if workspace is not None else workspace_dir()
    name = safe_file_name(name)
    folder = _unique_folder(root, scenario_slug(PurePosixPath(name).stem))
    if name.lower().endswith(".toml"):
        folder.mkdir(parents=True)
        (folder / SCENARIO_FILE).write_bytes(data)
    else:
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile as exc:
            raise InputError(
                "not a scenario bundle (.zip) or scenario file (.toml)", file=name
            ) from exc
        with zf:
            members, prefix = _bundle_members(zf, name)
            folder.mkdir(parents=True)
            for m in members:
                if not m.filename.startswith(prefix):
                    continue
                target = (folder / m.filename[len(prefix) :]).resolve()
                if not target.is_relative_to(folder.resolve()):  # pragma: no cover - checked
                    raise InputError(f"unsafe path {m.filename!r}", file=name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(m))
    try:
        return open_saved_scenario(folder, workspace=root)
    except InputError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        raise InputError(str(exc).replace(str(folder / SCENARIO_FILE), name)) from exc


def _points(upload: InputFile) -> tuple[np.ndarray, np.ndarray, bool]:
    """Parsed lat/lon of a customer or site file (NaN where missing), and address presence."""
    table = read_table(upload.open())
    found = detect_columns(table.columns, fields=("lat", "lon", "address"))
    n = len(table)
    lat = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    if "lat" in found and "lon" in found:
        lat = parse_numbers(table[found["lat"]])[0]
        lon = parse_numbers(table[found["lon"]])[0]
    elif hasattr(table, "geometry") and "geometry" in table:
        geom = table.geometry
        lat = geom.y.to_numpy(float)
        lon = geom.x.to_numpy(float)
    return lat, lon, "address" in found


def _inside(
    bbox: tuple[float, float, float, float], lat: np.ndarray, lon: np.ndarray
) -> np.ndarray:
    west, south, east, north = bbox
    return (lon >= west) & (lon <= east) & (lat >= south) & (lat <= north)


def region_hint(upload: InputFile, region: str, *, margin_deg: float = 0.3) -> str | None:
    """A plain-language hint when a file does not fit the chosen region, else ``None``.

    Says when the file has addresses but no coordinates (geocoding needed), when most of its
    points lie in another bundled region ("these points are in Malta"), or when points lie
    just outside the bundled roads of the region (with what the extract covers).

    Parameters
    ----------
    upload
        The customer or site file.
    region
        The chosen region (bundled name or road file).
    margin_deg
        How far outside a bundled region's roads a point still counts as "near" it.
    """
    try:
        lat, lon, has_address = _points(upload)
    except (InputError, ValueError, OSError):
        return None  # unreadable files get the validation report instead
    located = np.isfinite(lat) & np.isfinite(lon)
    n = len(lat)
    if n and not located.any():
        if has_address:
            return (
                f"{upload.name} has addresses but no coordinates (lat/lon). Turn on 'Use the "
                "internet' and press 'Find coordinates' to look the addresses up (OpenStreetMap "
                "Nominatim), or add lat and lon columns to the file."
            )
        return (
            f"{upload.name} has no coordinates: add lat and lon columns (decimal degrees) "
            "or an address column."
        )
    if not located.any():
        return None
    lat, lon = lat[located], lon[located]
    key = region.strip().lower()
    counts = {name: int(_inside(r.bbox, lat, lon).sum()) for name, r in REGIONS.items()}
    best = max(counts, key=lambda k: counts[k])
    if key in REGIONS:
        here = counts[key]
        if counts[best] > here and counts[best] >= 0.5 * len(lat):
            return (
                f"{counts[best]:,} of {len(lat):,} located rows of {upload.name} are in "
                f"{REGIONS[best].title}, but the region chosen is {REGIONS[key].title}: "
                f"choose {REGIONS[best].title} as the region."
            )
        west, south, east, north = REGIONS[key].bbox
        near = _inside(
            (west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg),
            lat,
            lon,
        )
        outside_near = int((near & ~_inside(REGIONS[key].bbox, lat, lon)).sum())
        if outside_near:
            note = REGION_NOTES.get(key, f"the bundled {REGIONS[key].title} roads")
            return (
                f"{outside_near:,} located rows of {upload.name} lie just outside the roads of "
                f"{REGIONS[key].title}: {note}, from {west:.2f} to {east:.2f} E and {south:.2f} "
                f"to {north:.2f} N. Upload a road file (.osm.pbf) that covers them to plan "
                "for them too."
            )
        if here == 0:
            return (
                f"none of the {len(lat):,} located rows of {upload.name} is in "
                f"{REGIONS[key].title} (they lie around {np.median(lat):.3f} N, "
                f"{np.median(lon):.3f} E); upload a road file (.osm.pbf) for that area."
            )
    return None


def problem_summary(report: ValidationReport) -> pd.DataFrame:
    """The problems of a validation report grouped by type: one row per problem code.

    Returns
    -------
    pandas.DataFrame
        ``problem`` (the first message of that type), ``rows`` (how many rows have it),
        ``example_rows`` (up to five row numbers), ``fix`` and ``severity``, most rows first.
    """
    issues = report.to_frame()
    columns = ["problem", "rows", "example_rows", "fix", "severity"]
    if issues.empty:
        return pd.DataFrame(columns=columns)
    out = []
    for _code, group in issues.groupby("code", sort=False):
        rows = sorted({int(r) for r in group["row"].dropna()})
        out.append(
            {
                "problem": str(group["problem"].iloc[0]),
                "rows": len(rows) if rows else len(group),
                "example_rows": ", ".join(map(str, rows[:5])) + (" ..." if len(rows) > 5 else ""),
                "fix": str(group["fix"].iloc[0]),
                "severity": str(group["severity"].iloc[0]),
            }
        )
    frame = pd.DataFrame(out, columns=columns)
    return frame.sort_values("rows", ascending=False, kind="stable").reset_index(drop=True)


def combine_site_files(files: Mapping[str, InputFile | None]) -> InputFile | None:
    """One site list from separate files of existing workshops, candidates and partners.

    Rows keep the file's own ``kind`` and ``status`` columns when it has them; otherwise they
    get those of :data:`SITE_ROLES` for the file's role (so a file of two workshops uploaded as
    "existing" keeps both open). A single file that already says everything is returned as is,
    so validation messages keep its name and row numbers.

    Parameters
    ----------
    files
        ``{role: file}`` with roles from :data:`SITE_ROLES`; ``None`` values are skipped.

    Returns
    -------
    InputFile or None
        A CSV site list (``None`` when no file was given).
    """
    given = {role: f for role, f in files.items() if f is not None}
    unknown = sorted(set(given) - set(SITE_ROLES))
    if unknown:
        raise InputError(f"unknown site role(s) {unknown}; allowed: {list(SITE_ROLES)}")
    if not given:
        return None
    frames = []
    added = False
    for role, upload in given.items():
        table = read_table(upload.open())
        if "geometry" in table and hasattr(table, "geometry"):
            points = table.geometry.representative_point()
            found = detect_columns(table.columns, fields=("lat", "lon"))
            if "lat" not in found or "lon" not in found:
                table["lat"], table["lon"] = points.y.to_numpy(float), points.x.to_numpy(float)
            table = table.drop(columns="geometry")
            added = True
        frame = pd.DataFrame(table)
        found = detect_columns(frame.columns, fields=("kind", "status"))
        for column, value in SITE_ROLES[role].items():
            if column not in found:
                frame[column] = value
                added = True
        frames.append(frame)
    if len(given) == 1 and not added:
        return next(iter(given.values()))
    combined = pd.concat(frames, ignore_index=True, sort=False)
    if len(given) == 1:
        stem = PurePosixPath(next(iter(given.values())).name).stem
        name = f"{stem}.csv"
    else:
        name = "sites-" + "-".join(given) + ".csv"
    return InputFile(name, combined.to_csv(index=False).encode("utf-8"))


def geocode_upload(upload: InputFile) -> InputFile:
    """The file with coordinates looked up from its addresses (OpenStreetMap Nominatim).

    Only for a user who allowed internet use; offline it fails fast with
    :class:`~planner.errors.NetworkError`. Rows Nominatim cannot find keep empty coordinates,
    so validation still reports them.
    """
    table = pd.DataFrame(read_table(upload.open()))
    found = detect_columns(table.columns, fields=("lat", "lon", "address"))
    if "address" not in found:
        raise InputError("has no address column to look up", file=upload.name)
    frame = table.rename(columns={found.get("lat", "lat"): "lat", found.get("lon", "lon"): "lon"})
    for column in ("lat", "lon"):
        if column not in frame:
            frame[column] = np.nan
    located = geocode_missing(frame, online=True, address_column=found["address"])
    out = pd.DataFrame(located).drop(columns="geometry", errors="ignore")
    stem = PurePosixPath(upload.name).stem
    return InputFile(f"{stem}-geocoded.csv", out.to_csv(index=False).encode("utf-8"))
