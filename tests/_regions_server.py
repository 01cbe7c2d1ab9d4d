"""A loopback download server for the region tests (Geofabrik's layout, in a thread).

Serves ``index-v1.json`` (a small catalog whose addresses point at this server), the bundled
Liechtenstein and Malta ``.osm.pbf`` extracts with their ``.md5``, honours ``Range`` requests,
and can misbehave on purpose: cut a file's connection after N bytes (once), corrupt its body
(once or always), or answer with a web page. Every request is recorded with its ``Range``.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LIECHTENSTEIN_PBF = REPO / "data" / "osm" / "liechtenstein-2026-03-29.osm.pbf"
MALTA_PBF = REPO / "data" / "osm" / "malta-2018-08-27.osm.pbf"

#: (planner id, server id, name, parent, outline box W,S,E,N, served file or None)
REGIONS: list[tuple[str, str, str, str | None, tuple[float, float, float, float], Path | None]] = [
    ("europe", "europe", "Europe", None, (-25.0, 34.0, 45.0, 72.0), None),
    (
        "europe/liechtenstein",
        "liechtenstein",
        "Liechtenstein",
        "europe",
        (9.47, 47.04, 9.64, 47.28),
        LIECHTENSTEIN_PBF,
    ),
    ("europe/malta", "malta", "Malta", "europe", (14.15, 35.78, 14.60, 36.10), MALTA_PBF),
    ("europe/georgia", "georgia", "Georgia", "europe", (40.0, 41.0, 46.7, 43.6), None),
    ("north-america/us/georgia", "us/georgia", "Georgia", "us", (-85.6, 30.3, -80.8, 35.0), None),
    (
        "north-america/us",
        "us",
        "United States of America",
        "north-america",
        (-125.0, 24.0, -66.0, 49.5),
        None,
    ),
    ("north-america", "north-america", "North America", None, (-170.0, 5.0, -50.0, 84.0), None),
    ("asia/armenia", "armenia", "Armenia", "asia", (43.4, 38.8, 46.7, 41.3), None),
    ("asia", "asia", "Asia", None, (25.0, -11.0, 180.0, 82.0), None),
    ("europe/broken", "broken", "Broken Land", "europe", (0.0, 0.0, 1.0, 1.0), None),
]

HTML_PAGE = b"<!DOCTYPE html><html><body>Download page</body></html>"


def _polygon(box: tuple[float, float, float, float]) -> dict:
    w, s, e, n = box
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def index_document(base: str) -> bytes:
    """The catalog, with addresses on ``base``."""
    features = [
        {
            "type": "Feature",
            "properties": {
                "id": server_id,
                "name": name,
                **({"parent": parent} if parent else {}),
                "urls": {"pbf": f"{base}/{rid}-latest.osm.pbf"},
            },
            "geometry": _polygon(box),
        }
        for rid, server_id, name, parent, box, _ in REGIONS
    ]
    return json.dumps({"type": "FeatureCollection", "features": features}).encode()


@dataclass
class RegionServer:
    """The server's content and behaviour (change the attributes between requests)."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent once
    corrupt_once: set[str] = field(default_factory=set)
    corrupt_always: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)
    bytes_sent: dict[str, int] = field(default_factory=dict)
    throttle_s: float = 0.0  # pause after every 64 kB of a file (a slow server)
    url: str = ""

    def gets(self, path: str) -> list[str | None]:
        """The ``Range`` headers of the GET requests of ``path`` (None: whole file)."""
        return [r for m, p, r in self.requests if m == "GET" and p == path]


def _handler(state: RegionServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self, body_wanted: bool) -> None:
            path = self.path.split("?", 1)[0]
            rng = self.headers.get("Range")
            state.requests.append((self.command, path, rng))
            data = state.files.get(path)
            if data is None:
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", "9")
                self.end_headers()
                if body_wanted:
                    self.wfile.write(b"not found")
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", rng or "")
            if match and int(match.group(1)) < len(data):
                start = int(match.group(1))
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            ctype = "text/html" if data.lstrip().startswith(b"<") else "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data) - start))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not body_wanted:
                return
            body = data[start:]
            if path in state.corrupt_always or path in state.corrupt_once:
                state.corrupt_once.discard(path)
                middle = len(body) // 2
                body = body[:middle] + bytes([body[middle] ^ 0xFF]) + body[middle + 1 :]
            cut = state.cut_after.pop(path, None)
            if cut is not None and cut < len(body):
                self.wfile.write(body[:cut])
                self.wfile.flush()
                state.bytes_sent[path] = state.bytes_sent.get(path, 0) + cut
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if state.throttle_s and len(body) > 65536:
                for i in range(0, len(body), 65536):
                    self.wfile.write(body[i : i + 65536])
                    self.wfile.flush()
                    time.sleep(state.throttle_s)
            else:
                self.wfile.write(body)
            state.bytes_sent[path] = state.bytes_sent.get(path, 0) + len(body)

        def do_GET(self) -> None:
            self._serve(True)

        def do_HEAD(self) -> None:
            self._serve(False)

    return Handler


@contextmanager
def region_server() -> Iterator[RegionServer]:
    """Start the server on a free loopback port; yields its state (``.url``)."""
    state = RegionServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    state.files["/index-v1.json"] = index_document(state.url)
    for rid, *_rest, source in REGIONS:
        if source is None:
            continue
        data = source.read_bytes()
        name = f"{rid.rsplit('/', 1)[-1]}-latest.osm.pbf"
        state.files[f"/{rid}-latest.osm.pbf"] = data
        state.files[f"/{rid}-latest.osm.pbf.md5"] = (
            f"{hashlib.md5(data).hexdigest()}  {name}\n".encode()
        )
    state.files["/europe/broken-latest.osm.pbf"] = HTML_PAGE
    thread = threading.Thread(target=server.serve_forever, name="region-server", daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url() -> str:
    """An address on which nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
