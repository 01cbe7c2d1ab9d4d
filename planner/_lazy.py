"""Lazy package attributes (PEP 562), shared by :mod:`planner` and :mod:`planner.register`.

A package lists where each public name lives; the name's module is imported the first time the
name is read, and the value is then kept in the package's namespace, so later reads are plain
attribute lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from importlib import import_module
from typing import Any


def lazy_getattr(
    package: str, namespace: MutableMapping[str, Any], where: Mapping[str, str]
) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` for ``package`` that imports ``where[name]`` on first use.

    ``namespace`` is the package's ``globals()``; an unknown name raises :class:`AttributeError`
    as Python's own lookup does.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
