"""A process-wide cache shared by every session of a server, each key built once.

The app keeps prepared instances (snapped points, travel-time matrices) and solved results
here, keyed by the scenario spec and the input files' hashes: ten users asking for the same
instance at the same time build it once. No Streamlit: the app wraps one cache per name in
``st.cache_resource``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["BUILD_LOG_ENV_VAR", "SharedCache"]

T = TypeVar("T")

#: Diagnostics: when set, every build of a shared cache appends one line to this file (used by
#: benchmarks/load_app.py to check that ten sessions build each instance once).
BUILD_LOG_ENV_VAR = "PLANNER_APP_BUILD_LOG"


class SharedCache:
    """A small process-wide LRU cache where each key is built once, even under concurrency."""

    def __init__(self, size: int, name: str = "") -> None:
        self.name = name
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._building: dict[Hashable, threading.Lock] = {}
        self.builds = 0

    def get(self, key: Hashable, build: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]  # type: ignore[no-any-return]
            key_lock = self._building.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._items:
                    return self._items[key]  # type: ignore[no-any-return]
            try:
                value = build()
            finally:
                with self._lock:
                    self._building.pop(key, None)
            with self._lock:
                self.builds += 1
                self._items[key] = value
                if log := os.environ.get(BUILD_LOG_ENV_VAR):
                    with open(log, "a", encoding="utf-8") as fh:
                        fh.write(f"{self.name}\t{hash(key)}\n")
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
            return value

    def has(self, key: Hashable) -> bool:
        """Whether ``key`` is built (a :meth:`get` would return at once)."""
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        """Drop every built value (builds under way finish and are kept)."""
        with self._lock:
            self._items.clear()

    def forget(self, key: Hashable) -> None:
        """Drop ``key`` (for example an answer cut short by a Stop)."""
        with self._lock:
            self._items.pop(key, None)
