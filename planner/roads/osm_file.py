"""The one check every road or features file passes before any reader parses it.

:func:`check_osm_file` is called by :func:`planner.roads.network.load_region` for every file
(whichever loader then reads it: osmnx, the array loader or GraphML), by
:func:`planner.roads.features.read_osm_features`, and by the app when a road file is uploaded.
It reads only the start of the file:

- an empty file, a web page (HTML) saved under an OSM name, a file of another kind, or a
  ``.pbf`` without the ``OSMHeader`` block is refused with one clear :class:`GraphError` that
  starts with ``"<file>: not an OSM file"`` and says how to get a proper one;
- XML is checked up to its root element with an expat parser that refuses any document type
  declaration (``<!DOCTYPE``, hence any ``<!ENTITY``): OSM and GraphML files never have one, and
  entity declarations are how an "XML bomb" ("billion laughs") expands a few kilobytes into
  gigabytes. A declaration can only come before the root element, so the readers that parse the
  file afterwards (osmium, osmnx, networkx) never meet an entity to expand.
"""

from __future__ import annotations

import bz2
import gzip
import io
import os
from pathlib import Path
from typing import Any
from xml.parsers import expat

from planner.errors import GraphError

#: Bytes read to recognise the kind of a file (HTML, PBF header).
HEAD_BYTES = 4096
#: Most bytes of the XML prolog read while looking for the root element.
MAX_PROLOG_BYTES = 1 << 20
#: Root element expected for each XML kind.
_ROOTS = {"osm": "osm", "graphml": "graphml"}
_HOW_TO_GET = (
    "download the .osm.pbf extract itself (e.g. from download.geofabrik.de) or use the "
    "'Export' button on openstreetmap.org"
)


class _RootFound(Exception):
    """Raised by the expat handler at the root element: the prolog has been checked."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class _Declaration(Exception):
    """Raised by the expat handler at a document type or entity declaration."""


def _open(path: Path, data: bytes | None) -> Any:
    """A binary stream of the file's content (decompressed for ``.bz2``/``.gz``)."""
    raw: Any = io.BytesIO(data) if data is not None else path
    name = path.name.lower()
    if name.endswith(".bz2"):
        return bz2.open(raw, "rb")
    if name.endswith(".gz"):
        return gzip.open(raw, "rb")
    return io.BytesIO(data) if data is not None else open(path, "rb")


def file_kind(path: str | os.PathLike[str]) -> str:
    """``"pbf"``, ``"graphml"`` or ``"osm"`` (OSM XML, maybe compressed), from the file name."""
    name = Path(path).name.lower()
    if name.endswith(".pbf"):
        return "pbf"
    if name.endswith(".graphml"):
        return "graphml"
    return "osm"


def check_osm_file(
    path: str | os.PathLike[str], *, name: str | None = None, data: bytes | None = None
) -> str:
    """Check that ``path`` holds the OSM data its name promises, before any reader parses it.

    Parameters
    ----------
    path
        An ``.osm``/``.osm.bz2``/``.osm.gz``/``.xml``, ``.osm.pbf``/``.pbf`` or ``.graphml``
        file.
    name
        The file's name in messages (default: ``path``), e.g. the name of an upload.
    data
        The file's content, when it is not on disk (an upload): ``path`` then only names it.

    Returns
    -------
    str
        The kind of file: ``"pbf"``, ``"graphml"`` or ``"osm"``.

    Raises
    ------
    GraphError
        ``"<name>: not an OSM file: ..."``: empty, a web page, another kind of file, a damaged
        compressed file, or XML with a document type / entity declaration.
    """
    path = Path(path)
    label = name or str(path)
    kind = file_kind(path)

    def refuse(reason: str) -> GraphError:
        return GraphError(f"{label}: not an OSM file: {reason}")

    try:
        size = len(data) if data is not None else path.stat().st_size
    except OSError as exc:
        raise refuse(f"cannot read it ({exc.strerror or exc})") from exc
    if size == 0:
        raise refuse(f"the file is empty (0 bytes); download or export it again: {_HOW_TO_GET}")
    try:
        with _open(path, data) as fh:
            head = fh.read(HEAD_BYTES)
    except (OSError, EOFError, ValueError) as exc:
        raise refuse(f"cannot decompress it ({exc}); check that it is a complete download") from exc
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n\x00").lower()
    if not text:
        raise refuse(f"the file holds no data; {_HOW_TO_GET}")
    if text.startswith("<!doctype html") or "<html" in text[:1024]:
        raise refuse(
            "it is a web page (HTML): the browser saved the download page instead of the "
            f"file; {_HOW_TO_GET}"
        )
    if kind == "pbf":
        if b"OSMHeader" not in head[:64]:
            hint = (
                "it is OSM XML: rename it to .osm"
                if "<osm" in text[:1024]
                else "it has no OSMHeader block at the start; download the .osm.pbf again"
            )
            raise refuse(f"not an .osm.pbf file ({hint})")
        return kind
    _check_xml_prolog(path, data, _ROOTS[kind], refuse)
    return kind


def _check_xml_prolog(path: Path, data: bytes | None, root: str, refuse: Any) -> None:
    """Parse the XML up to its root element with expat, refusing any DOCTYPE / ENTITY."""
    parser = expat.ParserCreate()

    def start(name: str, attrs: Any) -> None:
        raise _RootFound(name)

    def declaration(*args: Any) -> None:
        raise _Declaration

    def external(context: str, base: str | None, system: str | None, public: str | None) -> int:
        raise _Declaration

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = declaration
    parser.EntityDeclHandler = declaration
    parser.UnparsedEntityDeclHandler = declaration
    parser.ExternalEntityRefHandler = external
    read = 0
    try:
        with _open(path, data) as fh:
            while read < MAX_PROLOG_BYTES:
                block = fh.read(1 << 14)
                read += len(block)
                parser.Parse(block, not block)
                if not block:
                    break
    except _RootFound as found:
        if found.name != root:
            raise refuse(
                f"its XML root element is <{found.name}>, not <{root}>; "
                + (_HOW_TO_GET if root == "osm" else "save the graph with osmnx.save_graphml")
            ) from None
        return
    except _Declaration:
        raise refuse(
            "it declares a document type or XML entities (<!DOCTYPE>/<!ENTITY>), which OSM "
            "files never do and which can expand a few kilobytes into gigabytes (an 'XML "
            f"bomb'); it was not read. {_HOW_TO_GET[0].upper()}{_HOW_TO_GET[1:]}"
        ) from None
    except expat.ExpatError as exc:
        raise refuse(f"it is not XML ({exc}); " + _HOW_TO_GET) from None
    except (OSError, EOFError, ValueError) as exc:
        raise refuse(f"cannot decompress it ({exc}); check that it is a complete download") from exc
    raise refuse(f"no <{root}> element in its first {MAX_PROLOG_BYTES // 1024} KB; {_HOW_TO_GET}")
