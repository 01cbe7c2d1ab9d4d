"""Offline web assets for folium maps (Leaflet, jQuery, Leaflet.markercluster, Leaflet.draw).

folium loads Leaflet and its plugins from public CDNs, which leaves an empty frame when the
browser has no internet. This module serves the same libraries from pip-installed XStatic
packages instead (Leaflet.draw, which has no XStatic package, from the copy django-leaflet
ships), in two ways:

- for the Streamlit app, :func:`install_static_assets` copies the files into the app's
  ``static/vendor/`` folder (served at ``/app/static/vendor/`` when
  ``server.enableStaticServing`` is on) and :func:`localize_map` points every
  ``default_js``/``default_css`` entry of a map at those local URLs;
- for a standalone HTML file, :func:`render_standalone_html` inlines the files (and the
  images their CSS refers to) so that the page opens from ``file://`` with no network.

Assets folium asks for by default that the planner's maps never use (Bootstrap, Glyphicons,
Font Awesome and Leaflet.awesome-markers) are dropped; any other non-local resource raises
an error instead of silently reaching for a CDN.
"""

from __future__ import annotations

import base64
import importlib.metadata
import logging
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import folium
import folium.elements
import xstatic.pkg.jquery
import xstatic.pkg.leaflet
import xstatic.pkg.leaflet_markercluster

from planner.settings import offline

__all__ = [
    "APP_STATIC_URL",
    "VENDOR_DIR_NAME",
    "check_tiles_reachable",
    "install_static_assets",
    "localize_map",
    "localized_map",
    "render_standalone_html",
    "vendor_files",
]

logger = logging.getLogger(__name__)

#: URL at which Streamlit serves ``<app dir>/static/vendor`` with static serving enabled.
APP_STATIC_URL = "app/static/vendor"
#: Name of the folder, inside the app's ``static`` folder, that receives the copied assets.
VENDOR_DIR_NAME = "vendor"

_INLINE_PREFIX = "planner-asset:"


def _leaflet_draw_dir() -> Path:
    """Leaflet.draw 1.0.4 as django-leaflet ships it (found without importing Django)."""
    try:
        dist = importlib.metadata.distribution("django-leaflet")
    except importlib.metadata.PackageNotFoundError:
        return Path("django-leaflet-is-not-installed")  # no files: vendor_files() skips them
    return Path(str(dist.locate_file("leaflet/static/leaflet/draw")))


@dataclass(frozen=True)
class _Asset:
    """One file shipped by an XStatic package, addressed by ``<package>/<relative path>``."""

    package: str
    relative_path: str
    source_dir: Path

    @property
    def key(self) -> str:
        return f"{self.package}/{self.relative_path}"

    @property
    def source(self) -> Path:
        return self.source_dir / self.relative_path


_PACKAGES: dict[str, tuple[Path, tuple[str, ...]]] = {
    "leaflet": (
        Path(xstatic.pkg.leaflet.BASE_DIR),
        (
            "leaflet.js",
            "leaflet.js.map",
            "leaflet.css",
            "images/layers.png",
            "images/layers-2x.png",
            "images/marker-icon.png",
            "images/marker-icon-2x.png",
            "images/marker-shadow.png",
        ),
    ),
    "jquery": (Path(xstatic.pkg.jquery.BASE_DIR), ("jquery.min.js", "jquery.min.map")),
    "leaflet.markercluster": (
        Path(xstatic.pkg.leaflet_markercluster.BASE_DIR),
        ("leaflet.markercluster.js", "MarkerCluster.css", "MarkerCluster.Default.css"),
    ),
    "leaflet.draw": (
        _leaflet_draw_dir(),
        (
            "leaflet.draw.js",
            "leaflet.draw.css",
            "images/spritesheet.png",
            "images/spritesheet-2x.png",
            "images/spritesheet.svg",
        ),
    ),
}

# folium resource name -> asset key (None: dropped, never used by the planner's maps).
_FOLIUM_RESOURCES: dict[str, str | None] = {
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    "jquery": "jquery/jquery.min.js",
    "markerclusterjs": "leaflet.markercluster/leaflet.markercluster.js",
    "markerclustercss": "leaflet.markercluster/MarkerCluster.css",
    "markerclusterdefaultcss": "leaflet.markercluster/MarkerCluster.Default.css",
    "leaflet_draw_js": "leaflet.draw/leaflet.draw.js",
    "leaflet_draw_css": "leaflet.draw/leaflet.draw.css",
    "bootstrap": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers": None,
    "awesome_markers_css": None,
    "awesome_markers_font_css": None,
    "awesome_rotate_css": None,
}


def vendor_files() -> dict[str, Path]:
    """Return the vendored files, keyed by ``<package>/<relative path>``.

    Returns
    -------
    dict
        Asset key (as used in local URLs) mapped to the file inside the XStatic package.
    """
    files = {}
    for package, (source_dir, relative_paths) in _PACKAGES.items():
        for relative_path in relative_paths:
            asset = _Asset(package, relative_path, source_dir)
            if asset.source.is_file():
                files[asset.key] = asset.source
    return files


def install_static_assets(static_dir: str | os.PathLike[str]) -> Path:
    """Copy the vendored web assets into ``<static_dir>/vendor/``.

    Idempotent and cheap: a file is copied only when missing or when its size or
    modification time differs from the packaged one.

    Parameters
    ----------
    static_dir
        The app's ``static`` folder (next to ``app.py``), created if missing.

    Returns
    -------
    pathlib.Path
        The ``vendor`` folder.
    """
    vendor_dir = Path(static_dir) / VENDOR_DIR_NAME
    copied = 0
    for key, source in vendor_files().items():
        target = vendor_dir / key
        source_stat = source.stat()
        if target.is_file():
            target_stat = target.stat()
            if target_stat.st_size == source_stat.st_size and int(target_stat.st_mtime) == int(
                source_stat.st_mtime
            ):
                continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        shutil.copy2(source, tmp)
        tmp.replace(target)
        copied += 1
    if copied:
        logger.info("copied %d web asset files into %s", copied, vendor_dir)
    return vendor_dir


def _iter_elements(element: object) -> Iterator[object]:
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _iter_elements(child)


def _local_links(
    links: list[tuple[str, str]], base_url: str, element: object
) -> list[tuple[str, str]]:
    local = []
    for name, url in links:
        if name in _FOLIUM_RESOURCES:
            key = _FOLIUM_RESOURCES[name]
            if key is not None:
                local.append((name, f"{base_url}/{key}"))
        elif url.startswith((base_url, _INLINE_PREFIX)):
            local.append((name, url))
        else:
            known = sorted(k for k, v in _FOLIUM_RESOURCES.items() if v is not None)
            raise ValueError(
                f"{type(element).__name__} needs the web resource {name!r} ({url}), which is "
                f"not available offline; supported resources are {known}"
            )
    return local


def localize_map(m: folium.Map, *, base_url: str = "/" + APP_STATIC_URL) -> folium.Map:
    """Point every JS/CSS resource of a map (and its plugins) at local URLs.

    Each element's ``default_js``/``default_css`` is replaced by an instance-level list
    (folium's class-level lists are left untouched), so the change affects this map only.

    Parameters
    ----------
    m
        The map; modified in place.
    base_url
        URL of the vendor folder, e.g. ``"/app/static/vendor"`` for the Streamlit app.

    Returns
    -------
    folium.Map
        The same map, for chaining.

    Raises
    ------
    ValueError
        If an element needs a resource that has no local copy.
    """
    base_url = base_url.rstrip("/")
    for element in _iter_elements(m):
        if isinstance(element, folium.elements.JSCSSMixin):
            element.default_js = _local_links(list(element.default_js), base_url, element)
            element.default_css = _local_links(list(element.default_css), base_url, element)
    return m


@contextmanager
def localized_map(m: folium.Map, *, base_url: str) -> Iterator[folium.Map]:
    """Temporarily localize a map's resources, restoring the previous links afterwards."""
    saved = [
        (element, element.__dict__.get("default_js"), element.__dict__.get("default_css"))
        for element in _iter_elements(m)
        if isinstance(element, folium.elements.JSCSSMixin)
    ]
    try:
        yield localize_map(m, base_url=base_url)
    finally:
        for element, js, css in saved:
            for attribute, value in (("default_js", js), ("default_css", css)):
                if value is None:
                    element.__dict__.pop(attribute, None)
                else:
                    setattr(element, attribute, value)


_SOURCE_MAP = re.compile(r"^[/][/*]# sourceMappingURL=.*$", re.MULTILINE)
_CSS_URL = re.compile(r"url\((['\"]?)(?!data:|#|https?:)([^)'\"]+)\1\)")
_MIME_TYPES = {".png": "image/png", ".svg": "image/svg+xml", ".gif": "image/gif"}


def _inline_css(key: str) -> str:
    path = vendor_files()[key]
    text = path.read_text(encoding="utf-8")

    def to_data_uri(match: re.Match[str]) -> str:
        image = (path.parent / match.group(2)).resolve()
        mime = _MIME_TYPES.get(image.suffix.lower())
        if mime is None or not image.is_file():
            return match.group(0)
        encoded = base64.b64encode(image.read_bytes()).decode("ascii")
        return f"url(data:{mime};base64,{encoded})"

    return _CSS_URL.sub(to_data_uri, _SOURCE_MAP.sub("", text))


def _inline_js(key: str) -> str:
    text = vendor_files()[key].read_text(encoding="utf-8")
    return _SOURCE_MAP.sub("", text).replace("</script", "<\\/script")


def render_standalone_html(m: folium.Map) -> str:
    """Render a map as one HTML document with every script and stylesheet inlined.

    Parameters
    ----------
    m
        The map. Its resource links are restored after rendering.

    Returns
    -------
    str
        HTML that opens with no network access (also from ``file://``).
    """
    prefix = _INLINE_PREFIX.rstrip("/")
    with localized_map(m, base_url=prefix):
        html = m.get_root().render()
    escaped = re.escape(prefix + "/")
    html = re.sub(
        rf'<script src="{escaped}([^"]+)"></script>',
        lambda match: f"<script>{_inline_js(match.group(1))}</script>",
        html,
    )
    html = re.sub(
        rf'<link rel="stylesheet" href="{escaped}([^"]+)"\s*/?>',
        lambda match: f"<style>{_inline_css(match.group(1))}</style>",
        html,
    )
    if prefix in html:
        raise RuntimeError("some web resources could not be inlined into the map HTML")
    return html


def check_tiles_reachable(
    host: str = "tile.openstreetmap.org", *, port: int = 443, timeout_s: float = 1.5
) -> bool:
    """Tell whether a tile server answers a TCP connection quickly.

    Set the environment variable ``PLANNER_OFFLINE=1`` to skip the check and answer
    ``False`` (for tests and air-gapped use).

    Parameters
    ----------
    host, port
        The tile server.
    timeout_s
        Give up after this many seconds (name resolution included).

    Returns
    -------
    bool
        True when a connection could be opened.
    """
    if offline():
        return False
    reachable = threading.Event()

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                reachable.set()
        except OSError:
            return

    # DNS resolution ignores socket timeouts; a daemon thread bounds the whole probe
    thread = threading.Thread(target=probe, name="planner-tiles-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return reachable.is_set()
