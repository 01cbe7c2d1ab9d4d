"""Package facts every layer may quote: the version and the OpenStreetMap credit."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("service-site-planner")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

#: The credit every map, report and export of OSM-derived data carries.
OSM_CREDIT = "© OpenStreetMap contributors"
#: The licence of the OSM data.
OSM_LICENSE = "Open Database License (ODbL) 1.0"
