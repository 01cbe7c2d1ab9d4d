"""Small HTTP helpers of the region catalog and downloader: short timeouts, clear errors.

Plain :mod:`urllib` (no new dependency). Every request first resolves the host name in a
daemon thread with a deadline, so a resolver that hangs offline cannot block the caller; after
that, the socket timeout bounds every connect and read.
"""

from __future__ import annotations

import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPResponse
from typing import cast

from planner.errors import NetworkError
from planner.settings import OFFLINE_ENV_VAR, offline

#: Seconds to wait for a connection or a read before giving up.
DEFAULT_TIMEOUT_S = 10.0

_USER_AGENT = "service-site-planner (region download)"


class NotFoundError(NetworkError):
    """The server answered 404: it has no file at that address."""


def _check_host(url: str, timeout_s: float) -> None:
    """Fail within ``timeout_s`` when the host name cannot be resolved."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host:
        raise NetworkError(f"not a web address: {url!r}")
    done = threading.Event()
    failure: list[BaseException] = []

    def probe() -> None:
        try:
            socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80))
        except OSError as exc:
            failure.append(exc)
        done.set()

    threading.Thread(target=probe, name="planner-dns-probe", daemon=True).start()
    if not done.wait(timeout_s):
        msg = f"cannot reach {host}: no answer from the name server in {timeout_s:g} s"
        raise NetworkError(msg)
    if failure:
        raise NetworkError(f"cannot reach {host} ({failure[0]}); offline?")


def open_url(
    url: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> HTTPResponse:
    """Open ``url``; network problems raise :class:`NetworkError`, a 404 :class:`NotFoundError`.

    Parameters
    ----------
    url
        ``http://`` or ``https://`` address.
    method
        ``"GET"`` or ``"HEAD"``.
    headers
        Extra request headers (``Range``...).
    timeout_s
        Seconds for the name lookup, the connection and each read.
    """
    if offline():
        raise NetworkError(
            f"{OFFLINE_ENV_VAR}=1: the planner does not use the network, so {url} cannot be "
            "fetched; unset it to download"
        )
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in {"http", "https"}:
        raise NetworkError(f"only http(s) addresses can be downloaded, got {url!r}")
    _check_host(url, timeout_s)
    request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    request.add_header("User-Agent", _USER_AGENT)
    try:
        return cast(HTTPResponse, urllib.request.urlopen(request, timeout=timeout_s))
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 404:
            raise NotFoundError(f"{url}: the server has no such file (HTTP 404)") from None
        raise NetworkError(f"{url}: the server answered HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        raise NetworkError(f"cannot reach {url} ({exc.reason}); offline?") from None
    except (TimeoutError, OSError) as exc:
        raise NetworkError(f"cannot reach {url} ({exc}); offline?") from None


def fetch_bytes(url: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, limit: int = 1 << 30) -> bytes:
    """The body of a small file (the catalog, an ``.md5``), read whole."""
    with open_url(url, timeout_s=timeout_s) as response:
        try:
            data = response.read(limit + 1)
        except (TimeoutError, OSError) as exc:
            raise NetworkError(f"{url}: the connection broke while reading ({exc})") from None
    if len(data) > limit:
        raise NetworkError(f"{url}: larger than {limit:,} bytes; is this the right server?")
    return data


def content_length(url: str, *, timeout_s: float = 3.0) -> int | None:
    """The size the server announces for ``url`` (HEAD ``Content-Length``), None if unknown."""
    with open_url(url, method="HEAD", timeout_s=timeout_s) as response:
        raw = response.headers.get("Content-Length")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
