"""Exception hierarchy of the planner.

Every error the library raises on purpose derives from :class:`PlannerError`, and also from
the built-in exception a caller would naturally catch (``InputError`` is a ``ValueError``), in
the way osmnx's ``_errors`` module does it.
"""

from __future__ import annotations


class PlannerError(Exception):
    """Base class of all errors raised by the planner."""


class InputError(PlannerError, ValueError):
    """Bad user input: a file, a row or a field that cannot be used.

    Parameters
    ----------
    message
        What is wrong and how to fix it.
    file, row, field
        Where the problem is, when known; they are prefixed to the message.
    """

    def __init__(
        self,
        message: str,
        *,
        file: object | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = None if file is None else str(file)
        self.row = row
        self.field = field
        where = []
        if self.file is not None:
            where.append(self.file)
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field {field!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class NetworkError(PlannerError, ConnectionError):
    """A download was needed but the network is unavailable or failed."""


class GraphError(PlannerError, ValueError):
    """A road graph is unusable (empty, no drivable roads, clipped, disconnected)."""


class InfeasibleError(PlannerError, ValueError):
    """A model specification that cannot have a solution; the message says why."""


class SolverError(PlannerError, RuntimeError):
    """A solver failed; the message names the solver and its status."""
