"""Workshop sizes a site allows: the sites file's ``sizes`` column against the scenario's sizes.

A scenario may list sizes an own workshop can open in (:attr:`ScenarioSpec.sizes`); a sites
file's ``sizes`` column limits each site to some of them (comma-separated names, empty: all).
:func:`allowed_sizes` turns that column into a sites x sizes table, naming any unknown size.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from planner.engine.spec import WorkshopSize
from planner.errors import InputError

__all__ = ["allowed_sizes", "site_sizes_warnings"]


def _names(value: object) -> list[str]:
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[call-overload]
        return []
    return [part.strip() for part in str(value).split(",") if part.strip()]


def allowed_sizes(candidates: pd.DataFrame, sizes: Sequence[WorkshopSize]) -> np.ndarray:
    """(sites x sizes) bool: which size each candidate may open in.

    Sites without a ``sizes`` value (or without the column) allow every size.

    Raises
    ------
    InputError
        A site names a size the scenario does not have (the message names the site, the
        size and the sizes there are).
    """
    known = [size.name for size in sizes]
    out = np.ones((len(candidates), len(known)), dtype=bool)
    if "sizes" not in candidates or not known:
        return out
    ids = candidates["site_id"].astype(str).to_numpy()
    for i, value in enumerate(candidates["sizes"].to_numpy(dtype=object)):
        names = _names(value)
        if not names:
            continue
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(
                f"site {ids[i]} allows size(s) {unknown} that the scenario does not have; "
                f"sizes: {known}. Fix the sites file's sizes column or add the size",
                field="sizes",
            )
        out[i] = np.isin(known, names)
    return out


def site_sizes_warnings(candidates: pd.DataFrame, sizes: Sequence[WorkshopSize]) -> tuple[str, ...]:
    """A warning when the sites file limits sizes but the scenario has none to choose from."""
    if sizes or "sizes" not in candidates:
        return ()
    n = int(sum(bool(_names(v)) for v in candidates["sizes"].to_numpy(dtype=object)))
    if not n:
        return ()
    return (
        f"{n} site(s) of the site list name allowed sizes, but the scenario has no sizes to "
        "choose from; each site is planned with its own fixed_cost and capacity",
    )
