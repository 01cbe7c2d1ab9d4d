"""Stable service points: a customer changes site only when it gains enough travel time.

Rule (applied per customer when a plan changes: a new year, a new scenario, an added site):

* no previous site: the customer goes to its nearest open site (a first assignment, not a move);
* previous site no longer open or unknown to this plan: it moves to its nearest open site
  (reason ``previous site closed`` / ``previous site not in this plan``);
* previous site open: it moves to the nearest open site only when that is at least
  ``min_gain_min`` minutes faster (reason ``gains X min``); otherwise it stays, even when
  another site is a little nearer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["DEFAULT_MIN_GAIN_MIN", "MOVE_COLUMNS", "stable_assignment"]

#: Default minutes a customer must gain before it is moved to another site.
DEFAULT_MIN_GAIN_MIN = 5.0
MOVE_COLUMNS: tuple[str, ...] = (
    "year",
    "customer_id",
    "from_site",
    "to_site",
    "minutes_before",
    "minutes_after",
    "gain_min",
    "reason",
)


def stable_assignment(
    travel_min: np.ndarray,
    site_ids: Sequence[str],
    open_columns: Sequence[int] | np.ndarray,
    customer_ids: Sequence[str],
    *,
    previous: Sequence[str | None] | None = None,
    min_gain_min: float = DEFAULT_MIN_GAIN_MIN,
    year: int | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Assign each customer to an open site, keeping previous sites unless the gain is enough.

    Parameters
    ----------
    travel_min
        Travel minutes, customers x sites (``np.inf`` unreachable; NaN rows: customer left out).
    site_ids
        Id of each site column.
    open_columns
        Columns open in this plan.
    customer_ids
        Id of each customer row.
    previous
        Previous site id of each customer (None or '' for none).
    min_gain_min
        Minutes a customer must gain to be moved from a site that is still open.
    year
        Written in the ``year`` column of the moves.

    Returns
    -------
    site : numpy.ndarray
        Assigned site id per customer ('' when it reaches no open site).
    moves : pandas.DataFrame
        :data:`MOVE_COLUMNS`, one row per customer that changed site.
    """
    if min_gain_min < 0:
        raise ValueError(f"min_gain_min must be >= 0, got {min_gain_min!r}")
    t = np.asarray(travel_min, dtype=float)
    ids = np.asarray([str(s) for s in site_ids], dtype=object)
    cols = np.asarray(open_columns, dtype=np.int64)
    n = t.shape[0]
    col_of = {s: j for j, s in enumerate(ids)}
    open_set = set(cols.tolist())
    sub = np.where(np.isnan(t[:, cols]), np.inf, t[:, cols]) if cols.size else np.empty((n, 0))
    near = cols[np.argmin(sub, axis=1)] if cols.size else np.full(n, -1)
    near_t = sub.min(axis=1) if cols.size else np.full(n, np.inf)
    out = np.where(np.isfinite(near_t), ids[np.maximum(near, 0)], "").astype(object)
    prev = [None] * n if previous is None else list(previous)
    if len(prev) != n:
        raise ValueError(f"{len(prev)} previous sites for {n} customers")
    moves = []
    for i in range(n):
        before = prev[i]
        if before is None or (isinstance(before, float) and np.isnan(before)) or before == "":
            continue
        before = str(before)
        j_before = col_of.get(before)
        t_before = float(t[i, j_before]) if j_before is not None else float("nan")
        if j_before is not None and j_before in open_set:
            gain = t_before - near_t[i]
            if not np.isfinite(near_t[i]) or gain < min_gain_min or ids[near[i]] == before:
                out[i] = before
                continue
            reason = f"gains {gain:.1f} min"
        else:
            reason = (
                "previous site closed" if j_before is not None else "previous site not in this plan"
            )
            if not np.isfinite(near_t[i]):
                continue
        moves.append(
            {
                "year": year,
                "customer_id": str(customer_ids[i]),
                "from_site": before,
                "to_site": str(out[i]),
                "minutes_before": t_before,
                "minutes_after": float(near_t[i]),
                "gain_min": t_before - float(near_t[i]),
                "reason": reason,
            }
        )
    return out, pd.DataFrame(moves, columns=list(MOVE_COLUMNS))
