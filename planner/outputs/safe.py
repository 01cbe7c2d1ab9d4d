"""Spreadsheet-safe text: neutralise cells a spreadsheet would run as a formula (CSV injection).

A site or customer name such as ``=HYPERLINK("http://evil.example","x")``, ``@SUM(1+1)``,
``+cmd|' /C calc'!A0`` or ``-2+3`` becomes a live formula when a CSV or XLSX file is opened in
Excel or LibreOffice (OWASP "CSV injection"). Every export of the planner passes its tables
through :func:`spreadsheet_safe` first: a text cell that starts with one of
:data:`FORMULA_TRIGGERS` gets a leading apostrophe (``'=HYPERLINK(...)``), the usual fix, which
spreadsheets show as plain text and people can still read. Real numbers stay numbers: numeric
columns are never touched, and a text cell that parses as a finite number (``-12.5``, ``+3``)
is left as it is, so ids and amounts users typed stay readable.

:func:`to_csv_bytes` is the one way the app turns a table into a CSV download.
"""

from __future__ import annotations

import math
from typing import Any

import geopandas as gpd
import pandas as pd

__all__ = [
    "FORMULA_TRIGGERS",
    "csv_text",
    "is_formula_like",
    "neutralise_text",
    "spreadsheet_safe",
    "to_csv_bytes",
]

#: First characters that make a spreadsheet read a cell as a formula (or a DDE command).
FORMULA_TRIGGERS: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        value = float(text.strip())
    except ValueError:
        return False
    return math.isfinite(value)


def is_formula_like(value: object) -> bool:
    """True when ``value`` is text a spreadsheet would treat as a formula.

    Parameters
    ----------
    value
        Any cell value; only strings can be formula-like.
    """
    return isinstance(value, str) and value.startswith(FORMULA_TRIGGERS) and not _is_number(value)


def neutralise_text(value: Any) -> Any:
    """Return ``value`` with a leading ``'`` when it is formula-like, else unchanged."""
    return "'" + value if is_formula_like(value) else value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells cannot run as spreadsheet formulas.

    Text (object, string and category) columns have every formula-like cell (see
    :func:`is_formula_like`) prefixed with ``'``; column labels are treated the same way.
    Numeric, boolean and datetime columns, and the geometry of a GeoDataFrame, are unchanged.

    Parameters
    ----------
    frame
        Any table (a GeoDataFrame stays a GeoDataFrame).

    Returns
    -------
    pandas.DataFrame
        A copy; ``frame`` is not modified.
    """
    out = frame.copy()
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    for col in out.columns:
        if col == geometry:
            continue
        series = out[col]
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        elif not (series.dtype == object or pd.api.types.is_string_dtype(series.dtype)):
            continue
        if series.map(is_formula_like).any():
            out[col] = series.map(neutralise_text)
    renamed = {c: neutralise_text(c) for c in out.columns if is_formula_like(c)}
    return out.rename(columns=renamed) if renamed else out


def to_csv_bytes(frame: pd.DataFrame, *, index: bool = False) -> bytes:
    """A table as spreadsheet-safe UTF-8 CSV bytes (for download buttons).

    Parameters
    ----------
    frame
        The table.
    index
        Write the index as the first column.

    Returns
    -------
    bytes
    """
    return csv_text(frame, index=index).encode("utf-8")


def csv_text(frame: pd.DataFrame, *, index: bool = False) -> str:
    """A table as spreadsheet-safe CSV text (RFC 4180: CRLF line ends, so that a carriage
    return or line feed inside a name is quoted and cannot split a row)."""
    return spreadsheet_safe(pd.DataFrame(frame)).to_csv(index=index, lineterminator="\r\n")
