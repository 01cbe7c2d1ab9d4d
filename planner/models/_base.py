"""Shared pieces of the location models: the :class:`Solution` result and input validation.

Every model works on a cost matrix ``cost`` of shape (n customers, m candidates) in seconds,
``np.inf`` where a customer cannot reach a candidate. Validation happens here, before any solver
runs, so that an impossible specification fails fast with a message that says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from planner.errors import InfeasibleError, InputError

logger = logging.getLogger(__name__)

#: Default time limit of a solve, in seconds.
DEFAULT_TIME_LIMIT_S = 60.0

#: Relative gap under which a solution counts as proven optimal.
OPTIMALITY_GAP = 1e-6

_TINY = 1e-12


@dataclass(frozen=True)
class Solution:
    """Result of one location model.

    Attributes
    ----------
    model
        Name of the model, e.g. ``"p_median"``.
    open
        Sorted column indices of the opened candidates.
    assignment
        Column index serving each customer row, -1 when the customer is not assigned (it cannot
        reach any open site, or was left out with ``allow_unreachable``). Coverage models assign
        every reachable customer to its nearest open site and say in ``extras["covered"]``
        which ones are within the threshold.
    objective
        Objective value of the returned solution (every model minimises, except
        :func:`~planner.models.max_capture`, which maximises; the units are given in the
        model's docstring).
    lower_bound
        Proven lower bound on the optimal objective (for a maximising model: the objective of
        the returned solution).
    gap
        Relative gap ``(objective - lower_bound) / max(|objective|, tiny)``, for a maximising
        model ``(upper_bound - objective) / max(|objective|, tiny)``; 0.0 when proven optimal.
    optimal
        True when the solution is proven optimal (relative gap at most 1e-6, the usual MIP
        solver tolerance; HiGHS's default is 1e-4).
    status
        Short status, e.g. ``"optimal"``, ``"time_limit"``, ``"gap_limit"`` (stopped at the
        requested gap), ``"unproven"`` (a sub-solver claimed optimality that the returned
        solution and bound do not prove).
    solve_time_s
        Wall-clock time of the solve, in seconds.
    solver
        Method and version, e.g. ``"HiGHS 1.16.0"``.
    extras
        Model-specific details (documented per model).
    upper_bound
        Proven upper bound on the optimal objective of a maximising model; None for the models
        that minimise.
    """

    model: str
    open: np.ndarray
    assignment: np.ndarray
    objective: float
    lower_bound: float
    gap: float
    optimal: bool
    status: str
    solve_time_s: float
    solver: str
    extras: dict[str, Any] = field(default_factory=dict)
    upper_bound: float | None = None

    @property
    def maximize(self) -> bool:
        """True for a maximising model (``upper_bound`` is then its proven bound)."""
        return self.upper_bound is not None

    @property
    def bound(self) -> float:
        """The proven bound on the optimum: ``upper_bound`` when maximising, else
        ``lower_bound``."""
        return self.upper_bound if self.upper_bound is not None else self.lower_bound

    @property
    def n_open(self) -> int:
        """Number of opened candidates."""
        return int(self.open.size)


@dataclass(frozen=True)
class SolveProgress:
    """A progress report of a running solve, passed to a model's ``progress`` callback.

    Attributes
    ----------
    elapsed_s
        Seconds since the solve started.
    objective
        Objective of the best solution found so far (inf before the first one).
    bound
        Best proven lower bound so far (-inf before the first one); never decreases during a
        solve.
    gap
        Relative gap ``(objective - bound) / |objective|`` (inf while unknown).
    message
        What the solver is doing, e.g. ``"LP cut loop, round 4"``.
    """

    elapsed_s: float
    objective: float
    bound: float
    gap: float
    message: str


#: Callback receiving :class:`SolveProgress` reports.
ProgressCallback = Callable[[SolveProgress], None]

#: Callback polled during a solve; returning True stops it with the best solution so far.
StopCallback = Callable[[], bool]


class ProgressReporter:
    """Sends :class:`SolveProgress` reports with a bound that never decreases.

    Parameters
    ----------
    callback
        The user's ``progress`` callback, or None (then reports cost nothing).
    started
        ``time.perf_counter()`` value at the start of the solve.
    offset
        Constant added to objective and bound before reporting (terms outside the core model).
    """

    def __init__(
        self, callback: ProgressCallback | None, started: float, *, offset: float = 0.0
    ) -> None:
        self.callback = callback
        self.started = started
        self.offset = offset
        self.bound = -np.inf
        self.objective = np.inf

    def __call__(self, message: str, *, objective: float, bound: float) -> None:
        """Report; ``objective`` and ``bound`` are in the core model's units (before offset)."""
        import time

        self.objective = min(self.objective, float(objective) + self.offset)
        self.bound = max(self.bound, min(float(bound) + self.offset, self.objective))
        if self.callback is None:
            return
        gap = relative_gap(self.objective, self.bound) if np.isfinite(self.bound) else np.inf
        self.callback(
            SolveProgress(
                elapsed_s=time.perf_counter() - self.started,
                objective=self.objective,
                bound=self.bound,
                gap=gap,
                message=message,
            )
        )


def relative_gap(objective: float, lower_bound: float) -> float:
    """Return ``(objective - lower_bound) / max(|objective|, tiny)``, never negative."""
    if not np.isfinite(objective):
        return float("inf")
    gap = (objective - lower_bound) / max(abs(objective), _TINY)
    return max(0.0, float(gap))


def sum_of_others(cols: np.ndarray) -> np.ndarray:
    """Per entry of a 2-D array, the sum of the other entries in its row.

    Summed from both sides rather than as ``row sum - entry``, which loses everything but the
    large entry when utilities span many orders of magnitude (1 next to 1e17)."""
    k, n = cols.shape
    prefix = np.zeros((k, n + 1))
    np.cumsum(cols, axis=1, out=prefix[:, 1:])
    suffix = np.zeros((k, n + 1))
    np.cumsum(cols[:, ::-1], axis=1, out=suffix[:, 1:])
    return prefix[:, :n] + suffix[:, n - 1 :: -1][:, :n]


def highs_version() -> str:
    """Return the version string of the HiGHS solver used, e.g. ``"HiGHS 1.16.0"``."""
    from importlib.metadata import version

    return f"HiGHS {version('highspy')}"


def planner_version() -> str:
    """Return ``"planner <version>"`` for heuristic solvers implemented here."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"planner {version('service-site-planner')}"
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        return "planner (source)"


def check_cost(cost: object, *, name: str = "cost") -> np.ndarray:
    """Return ``cost`` as a C-contiguous float64 (n, m) array; reject NaN and negative values.

    Parameters
    ----------
    cost
        Cost matrix, customers x candidates; ``np.inf`` marks unreachable pairs.
    name
        Name used in error messages.
    """
    arr = np.ascontiguousarray(np.asarray(cost, dtype=np.float64))
    if arr.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (customers x candidates), got {arr.ndim}-D")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"{name} must have at least one row and one column, got {arr.shape}")
    if np.isnan(arr).any():
        raise InputError(f"{name} contains NaN; use np.inf for unreachable pairs")
    if (arr < 0).any():
        raise InputError(f"{name} contains negative values; travel times must be >= 0")
    return arr


def check_weights(weights: object, n: int, matrix: str = "cost") -> np.ndarray:
    """Return customer weights as a float64 vector of length ``n`` (default all ones);
    ``matrix`` names the customer x candidate argument in the messages."""
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n:
        raise InputError(f"weights has {w.size} entries but {matrix} has {n} customer rows")
    if not np.isfinite(w).all():
        raise InputError("weights must be finite")
    if (w < 0).any():
        raise InputError("weights must be >= 0")
    return w


def check_index_set(indices: Iterable[int] | np.ndarray | None, m: int, *, name: str) -> np.ndarray:
    """Return a sorted unique int array of column indices in ``[0, m)``.

    Boolean masks of length ``m`` are accepted too.
    """
    if indices is None:
        return np.zeros(0, dtype=np.intp)
    arr = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices)
    if arr.size == 0:
        return np.zeros(0, dtype=np.intp)
    if arr.dtype == bool:
        if arr.size != m:
            raise InputError(f"{name} as a boolean mask must have {m} entries, got {arr.size}")
        return np.flatnonzero(arr).astype(np.intp)
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must hold integer column indices, got dtype {arr.dtype}")
    arr = np.unique(arr.astype(np.intp))
    if arr[0] < 0 or arr[-1] >= m:
        raise InputError(f"{name} holds column indices outside 0..{m - 1}: {arr.tolist()}")
    return arr


def check_required_excluded(
    required: Iterable[int] | np.ndarray | None,
    excluded: Iterable[int] | np.ndarray | None,
    m: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate required (always open) and excluded (never open) candidate sets."""
    req = check_index_set(required, m, name="required")
    exc = check_index_set(excluded, m, name="excluded")
    both = np.intersect1d(req, exc)
    if both.size:
        raise InfeasibleError(
            f"{both.size} candidates are both required and excluded: {format_ids(both)}"
        )
    if exc.size == m:
        raise InfeasibleError(f"all {m} candidates are excluded")
    return req, exc


def check_p(p: object, m: int, required: np.ndarray, excluded: np.ndarray) -> int:
    """Validate the number of sites ``p`` against the candidates, required and excluded sets."""
    if isinstance(p, bool) or not isinstance(p, int | np.integer):
        raise InputError(f"p must be an integer number of sites, got {p!r}")
    p = int(p)
    if p < 1:
        raise InfeasibleError(f"p={p} but at least one site must open")
    available = m - excluded.size
    if p > available:
        raise InfeasibleError(
            f"p={p} but only {available} candidates are available "
            f"({m} candidates, {excluded.size} excluded)"
        )
    if required.size > p:
        raise InfeasibleError(f"p={p} but {required.size} sites are required")
    return p


def check_time_limit(time_limit: float | None) -> float:
    """Return the time limit in seconds (default :data:`DEFAULT_TIME_LIMIT_S`)."""
    if time_limit is None:
        return DEFAULT_TIME_LIMIT_S
    t = float(time_limit)
    if not t > 0:
        raise InputError(f"time_limit must be > 0 seconds, got {time_limit!r}")
    return t


def check_option(value: str, allowed: Iterable[str], *, name: str) -> str:
    """Check a string option against an explicit list; the error lists the allowed values."""
    allowed = list(allowed)
    if value not in allowed:
        raise InputError(f"{name}={value!r} is not supported; use one of {allowed}")
    return value


def format_ids(ids: Iterable[int] | np.ndarray, *, limit: int = 10) -> str:
    """Format a list of ids for a message: ``"4, 9, 17"`` or ``"4, 9, 17, ... (25 in all)"``."""
    ids = [int(i) for i in ids]
    head = ", ".join(str(i) for i in ids[:limit])
    if len(ids) > limit:
        head += f", ... ({len(ids)} in all)"
    return head


def format_number(x: float) -> str:
    """Format a quantity for a message with thousands separators: ``1,650`` or ``1,650.5``."""
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.1f}"


def unreachable_rows(cost: np.ndarray, excluded: np.ndarray) -> np.ndarray:
    """Return the customer rows that cannot reach any non-excluded candidate."""
    usable = np.ones(cost.shape[1], dtype=bool)
    usable[excluded] = False
    return np.flatnonzero(~np.isfinite(cost[:, usable]).any(axis=1))


def assign_nearest(cost: np.ndarray, open_sites: np.ndarray) -> np.ndarray:
    """Assign every row to its cheapest open column; -1 when all open columns are inf."""
    if open_sites.size == 0:
        return np.full(cost.shape[0], -1, dtype=np.intp)
    sub = cost[:, open_sites]
    best = np.argmin(sub, axis=1)
    assignment = open_sites[best].astype(np.intp)
    assignment[~np.isfinite(sub[np.arange(cost.shape[0]), best])] = -1
    return assignment


def make_solution(
    model: str,
    *,
    open_sites: np.ndarray,
    assignment: np.ndarray,
    objective: float,
    lower_bound: float,
    status: str,
    solver: str,
    started: float,
    extras: dict[str, Any] | None = None,
) -> Solution:
    """Build a :class:`Solution`; the gap is computed and a proven-optimal one has gap 0.0.

    ``started`` is the ``time.perf_counter()`` value at the start of the solve.
    """
    import time

    lower_bound = min(float(lower_bound), float(objective))
    gap = relative_gap(objective, lower_bound)
    if status == "optimal" and gap > OPTIMALITY_GAP:
        # "optimal" is a claim about the returned solution and the proven bound, not what a
        # sub-solver said about its own model: never report it with an open gap
        logger.warning(
            "%s: status 'optimal' with a proven gap of %.3g; reported as 'unproven'", model, gap
        )
        status = "unproven"
    optimal = status == "optimal"
    if optimal:
        gap = 0.0
    return Solution(
        model=model,
        open=np.sort(np.asarray(open_sites, dtype=np.intp)),
        assignment=np.asarray(assignment, dtype=np.intp),
        objective=float(objective),
        lower_bound=lower_bound,
        gap=gap,
        optimal=optimal,
        status=status,
        solve_time_s=time.perf_counter() - started,
        solver=solver,
        extras=dict(extras or {}),
    )
