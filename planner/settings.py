"""What users may set, and the one set of defaults every front door shares.

Settings are read **at call time** from environment variables (there is no module of mutable
globals: in a Streamlit server every user shares the process). Each function below reads its
variable when called, so a test or an app session can change the environment and see the effect
at once.

============================  ===============================================  ====================
variable                      meaning                                          default
============================  ===============================================  ====================
``PLANNER_CACHE_DIR``         folder of the disk caches (graphs, matrices,     ``~/.cache/service-
                              OSM features, geocoding)                         site-planner``
``PLANNER_OFFLINE``           ``1`` never touches the network (no tiles,       unset (online checks
                              no downloads; downloads fail at once)            allowed)
``PLANNER_MAX_SNAP_M``        farthest a customer may be from a road (m)       ``1000``
``PLANNER_CANDIDATES``        candidate sites generated when none are given    ``60``
``PLANNER_TIME_LIMIT_S``      solver seconds per solve                         ``60``
``PLANNER_ARRAY_LOADER_MB``   ``.osm.pbf`` files at least this big (MB) load   ``20``
                              through the compact array loader, not osmnx
``PLANNER_SCHEDULER``         Dask scheduler address (``tcp://host:8786``):    unset (in-process)
                              matrix chunks and sweeps run on that cluster
``PLANNER_WORKERS``           workers of a local Dask cluster started for the  unset (in-process)
                              run (``0``/unset: no Dask)
``PLANNER_MATRIX_DTYPE``      ``float32`` halves matrix memory (travel times   ``float64``
                              rounded to about 0.01 s at 1 day)
``PLANNER_MAX_ROWS``          most data rows read from one customer or site    ``1000000``
                              file (larger files are refused before parsing)
``PLANNER_DOWNLOAD_URL``      server of the region catalog                     ``https://download.
                              (``index-v1.json``) and of the country extracts  geofabrik.de``
``PLANNER_DATA_DIR``          a folder of road files already on the server,    unset
                              offered by name in the app's region picker
``PLANNER_SOLVER_PROCESSES``  processes the market model's branch-and-cut      ``1``
                              tree is split among (``max_capture``; 1 inside
                              a Dask worker or another daemonic process)
============================  ===============================================  ====================

The scenario defaults (:data:`DEFAULT_REGION`, :data:`DEFAULT_WORKSHOPS`, ...) are the *only*
defaults: :class:`planner.engine.ScenarioSpec`, the command line and the app all take them from
here, so the same question asked through any front door gets the same answer.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from planner.errors import InputError

#: The bundled data of a source checkout (``data/``): OSM extracts and demo customers.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"

#: Environment variable that overrides the cache directory.
CACHE_ENV_VAR = "PLANNER_CACHE_DIR"
#: Environment variable that switches every network access off.
OFFLINE_ENV_VAR = "PLANNER_OFFLINE"

#: Region used when none is named (the app's demo region).
DEFAULT_REGION = "malta"
#: Number of workshops when none is given.
DEFAULT_WORKSHOPS = 5
#: Candidate workshop sites generated when the user gives none.
DEFAULT_CANDIDATES = 60
#: Office candidates taken from OSM when the site list has none (two-tier).
DEFAULT_OFFICE_CANDIDATES = 15
#: Solver seconds per solve.
DEFAULT_TIME_LIMIT_S = 60.0
#: Farthest a point may be from a road before it is left out (metres).
DEFAULT_MAX_SNAP_M = 1000.0
#: Seed of generated candidates and demo data.
DEFAULT_SEED = 0
#: Most data rows read from one customer or site file.
DEFAULT_MAX_TABLE_ROWS = 1_000_000
#: Environment variable that overrides :data:`DEFAULT_MAX_TABLE_ROWS`.
MAX_ROWS_ENV_VAR = "PLANNER_MAX_ROWS"

#: .osm.pbf files at least this many bytes load through the compact array loader.
DEFAULT_ARRAY_LOADER_MB = 20.0
#: Matrix element types users may ask for.
MATRIX_DTYPES = ("float64", "float32")

#: Environment variable naming the server of the region catalog and extracts.
DOWNLOAD_URL_ENV_VAR = "PLANNER_DOWNLOAD_URL"
#: Server of the region catalog and the country extracts (Geofabrik's layout).
DEFAULT_DOWNLOAD_URL = "https://download.geofabrik.de"
#: Environment variable naming a folder of road files already on the server.
DATA_DIR_ENV_VAR = "PLANNER_DATA_DIR"
#: Margin (km) kept around the customers when a country extract is trimmed to them.
DEFAULT_MARGIN_KM = 30.0

_TRUE = {"1", "true", "yes", "on"}


def _env_float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"environment variable {name}={raw!r} must be a number") from None
    if not math.isfinite(value) or value <= minimum:
        raise InputError(f"environment variable {name}={raw!r} must be > {minimum:g}")
    return value


def cache_root() -> Path:
    """Cache root: ``$PLANNER_CACHE_DIR`` or ``~/.cache/service-site-planner``."""
    root = os.environ.get(CACHE_ENV_VAR)
    return Path(root) if root else Path.home() / ".cache" / "service-site-planner"


def cache_dir(kind: str) -> Path:
    """Return (and create) the cache sub-folder ``kind`` (``"graphs"``, ``"matrices"``...)."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def offline() -> bool:
    """True when ``PLANNER_OFFLINE`` asks the planner never to use the network."""
    return os.environ.get(OFFLINE_ENV_VAR, "").strip().lower() in _TRUE


def max_snap_m() -> float:
    """Farthest distance (m) from a road a customer may be: ``$PLANNER_MAX_SNAP_M`` or 1,000."""
    return _env_float("PLANNER_MAX_SNAP_M", DEFAULT_MAX_SNAP_M)


def n_candidates() -> int:
    """Candidate sites generated when none are given: ``$PLANNER_CANDIDATES`` or 60."""
    return int(_env_float("PLANNER_CANDIDATES", DEFAULT_CANDIDATES, minimum=0.5))


def time_limit_s() -> float:
    """Solver seconds per solve: ``$PLANNER_TIME_LIMIT_S`` or 60."""
    return _env_float("PLANNER_TIME_LIMIT_S", DEFAULT_TIME_LIMIT_S)


def array_loader_min_bytes() -> int:
    """Bytes from which ``.osm.pbf`` files use the array loader (``$PLANNER_ARRAY_LOADER_MB``)."""
    return int(_env_float("PLANNER_ARRAY_LOADER_MB", DEFAULT_ARRAY_LOADER_MB) * 1024 * 1024)


def solver_processes() -> int:
    """Processes a branch-and-cut tree may be split among: ``$PLANNER_SOLVER_PROCESSES`` or 1
    (in-process). A hosted server running several jobs at once should leave it at 1.

    Always 1 inside a daemonic process (a Dask worker, a ``multiprocessing`` pool's worker):
    Python does not let those start processes, and they already share the cores out."""
    import multiprocessing

    wanted = max(1, int(_env_float("PLANNER_SOLVER_PROCESSES", 1.0, minimum=0.5)))
    if wanted > 1 and multiprocessing.current_process().daemon:
        return 1
    return wanted


def dask_scheduler() -> str | None:
    """Address of a Dask scheduler to run matrix chunks and sweeps on, or None (in-process)."""
    raw = os.environ.get("PLANNER_SCHEDULER", "").strip()
    return raw or None


def dask_workers() -> int:
    """Workers of a local Dask cluster to start (``$PLANNER_WORKERS``); 0 means no Dask."""
    raw = os.environ.get("PLANNER_WORKERS", "").strip()
    if not raw or raw == "0":
        return 0
    return int(_env_float("PLANNER_WORKERS", 0.0, minimum=0.5))


def matrix_dtype() -> str:
    """Element type of travel-time matrices: ``$PLANNER_MATRIX_DTYPE`` or ``float64``."""
    raw = os.environ.get("PLANNER_MATRIX_DTYPE", "").strip().lower() or "float64"
    if raw not in MATRIX_DTYPES:
        msg = (
            f"environment variable PLANNER_MATRIX_DTYPE={raw!r} must be one of "
            f"{list(MATRIX_DTYPES)}"
        )
        raise InputError(msg)
    return raw


def max_table_rows() -> int:
    """Most data rows read from one customer or site file: ``$PLANNER_MAX_ROWS`` or 1,000,000."""
    return int(_env_float(MAX_ROWS_ENV_VAR, DEFAULT_MAX_TABLE_ROWS, minimum=0.5))


def download_url() -> str:
    """Server of the region catalog and extracts: ``$PLANNER_DOWNLOAD_URL`` or Geofabrik."""
    raw = os.environ.get(DOWNLOAD_URL_ENV_VAR, "").strip()
    return (raw or DEFAULT_DOWNLOAD_URL).rstrip("/")


def road_data_dir() -> Path | None:
    """Folder of road files already on the server (``$PLANNER_DATA_DIR``), or None."""
    raw = os.environ.get(DATA_DIR_ENV_VAR, "").strip()
    return Path(raw).expanduser() if raw else None


#: Environment variable naming the app's workspace folder (saved scenarios, the register).
WORKSPACE_ENV_VAR = "PLANNER_WORKSPACE_DIR"
#: File name of the register database inside the workspace.
REGISTER_DB_NAME = "register.duckdb"


def workspace_folder() -> Path:
    """The workspace folder: ``$PLANNER_WORKSPACE_DIR`` or ``~/planner-workspace`` (created)."""
    raw = os.environ.get(WORKSPACE_ENV_VAR, "").strip()
    folder = Path(raw).expanduser() if raw else Path.home() / "planner-workspace"
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def register_db_path() -> Path:
    """The register database: ``register.duckdb`` in :func:`workspace_folder`."""
    return workspace_folder() / REGISTER_DB_NAME
