"""Service Site Planner: place a central office and repair workshops on the real road network.

The library holds all logic; the Streamlit app (``app.py``), the command line (``planner``) and the
notebooks are thin clients of it. Data flows one way::

    region -> road graph with travel times -> customers and candidate sites snapped to it
    -> travel-time matrix -> optimizer -> scenario results -> maps, tables, exports

Road data © OpenStreetMap contributors, available under the Open Database License (ODbL).
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("service-site-planner")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

OSM_CREDIT = "© OpenStreetMap contributors"
OSM_LICENSE = "Open Database License (ODbL) 1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["OSM_CREDIT", "OSM_LICENSE", "__version__"]
