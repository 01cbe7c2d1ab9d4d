"""Reading user tables (customers, sites, job histories) into frames.

:func:`read_table` parses a user file (CSV with any common delimiter and encoding, XLSX, GeoJSON,
GeoPackage, Parquet/GeoParquet) into a pandas or geopandas frame. Files are only ever *parsed*:
nothing is executed or unpickled, and unknown extensions are rejected with the list of allowed
ones. A table with more data rows than :func:`planner.settings.max_table_rows` (1,000,000 unless
``$PLANNER_MAX_ROWS`` says otherwise) is refused with :class:`TooManyRowsError`; CSV lines and
Parquet rows are counted before parsing, so the refusal takes a streamed pass over the file.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from pathlib import Path
from typing import BinaryIO, TypeAlias

import geopandas as gpd
import pandas as pd

from planner.errors import InputError
from planner.settings import MAX_ROWS_ENV_VAR, max_table_rows

logger = logging.getLogger(__name__)

#: A user file: a path, or an open binary file-like object with a ``name`` (an upload).
TableSource: TypeAlias = str | os.PathLike[str] | BinaryIO

logger = logging.getLogger(__name__)

#: Extensions accepted by :func:`read_table`, by format.
TABLE_FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv", ".txt", ".tsv"),
    "excel": (".xlsx", ".xlsm"),
    "geojson": (".geojson", ".json"),
    "gpkg": (".gpkg",),
    "parquet": (".parquet", ".geoparquet"),
}
ALLOWED_EXTENSIONS: tuple[str, ...] = tuple(e for exts in TABLE_FORMATS.values() for e in exts)

#: Encodings tried in order for text files.
CSV_ENCODINGS: tuple[str, ...] = ("utf-8-sig", "cp1252")
CSV_DELIMITERS: str = ",;\t|"

#: Characters of a CSV's start given to the delimiter sniffer.
_SNIFF_CHARS = 64 * 1024
#: Block size of the streaming line count.
_BLOCK_BYTES = 1 << 20


class TooManyRowsError(InputError):
    """A table has more data rows than the planner reads from one file.

    Raised before the file is parsed, so a huge upload is refused in a second with bounded
    memory instead of freezing the page. ``code`` and ``fix`` feed the validation report.
    """

    code = "too_many_rows"

    def __init__(
        self, n_rows: int, limit: int, *, file: object | None = None, kind: str = "customers"
    ) -> None:
        self.n_rows = n_rows
        self.limit = limit
        if kind == "jobs":
            self.fix = (
                "import it into the register, which has no row limit and keeps the history "
                "between runs: `planner register import --jobs FILE_OR_FOLDER` (a folder of "
                "monthly CSV or Parquet exports imports in one command), then run `planner "
                "trends` without a jobs file"
            )
        else:
            self.fix = (
                f"aggregate customers (one row per building, street or postcode, with the "
                f"number of jobs in the weight column), split the file by area, or raise the "
                f"limit with the environment variable {MAX_ROWS_ENV_VAR} (peak memory grows "
                "by about 1 KB per row)"
            )
        super().__init__(
            f"the file has {n_rows:,} data rows, more than the {limit:,} rows the planner "
            f"reads from one file; {self.fix}",
            file=file,
            row=limit + 1,
        )


def _count_lines(path: Path, data: bytes | None) -> int:
    """Lines in a text file (the last one may lack a newline), streamed in 1 MB blocks."""
    if data is not None:
        return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK_BYTES), b""):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (0 if last == b"\n" else 1)


def check_row_count(n_rows: int, *, path: Path, limit: int | None = None) -> None:
    """Refuse a table with more than ``limit`` data rows (default: :func:`max_table_rows`).

    Parameters
    ----------
    n_rows
        Data rows (for a CSV: lines after the header, an upper bound when cells hold line
        breaks).
    path
        The file, for the message.
    limit
        Row limit; ``None`` reads ``$PLANNER_MAX_ROWS`` (default 1,000,000).

    Raises
    ------
    TooManyRowsError
        When ``n_rows`` exceeds the limit.
    """
    limit = max_table_rows() if limit is None else limit
    if n_rows > limit:
        raise TooManyRowsError(n_rows, limit, file=path)


def table_format(path: Path) -> str:
    """Return the format name of ``path`` from its extension, or raise InputError.

    Parameters
    ----------
    path
        A user file.

    Returns
    -------
    str
        One of the keys of :data:`TABLE_FORMATS`.
    """
    suffix = path.suffix.lower()
    for fmt, exts in TABLE_FORMATS.items():
        if suffix in exts:
            return fmt
    allowed = ", ".join(ALLOWED_EXTENSIONS)
    raise InputError(
        f"unsupported file type {suffix or '(none)'!r}; allowed extensions are: {allowed}",
        file=path,
    )


def source_name(source: TableSource) -> str:
    """The name a report gives a source: its path, or a file-like object's ``name``."""
    if isinstance(source, str | os.PathLike):
        return str(source)
    return Path(str(getattr(source, "name", "") or "upload")).name


def _source_bytes(source: BinaryIO) -> bytes:
    if source.seekable():
        source.seek(0)
    data = source.read()
    if source.seekable():
        source.seek(0)
    return data


def read_text(path: Path, raw: bytes | None = None) -> tuple[str, str]:
    """Decode a text file (or its ``raw`` bytes) trying UTF-8 (with or without BOM), then cp1252.

    Returns
    -------
    tuple of str
        The text and the encoding that worked.
    """
    raw = path.read_bytes() if raw is None else raw
    for encoding in CSV_ENCODINGS:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        bom = raw.startswith(b"\xef\xbb\xbf")
        return text, ("utf-8" if encoding == "utf-8-sig" and not bom else encoding)
    raise InputError(
        f"cannot decode the file; save it as UTF-8 (tried {', '.join(CSV_ENCODINGS)})", file=path
    )


def sniff_delimiter(text: str) -> str:
    """Guess the delimiter of CSV ``text`` among ``, ; TAB |``.

    ``csv.Sniffer`` is tried on the first lines; when it fails, the candidate that splits the
    header into the most fields wins (a one-column file gets ``,``).
    """
    sample = "\n".join(text.splitlines()[:50])
    try:
        return csv.Sniffer().sniff(sample, delimiters=CSV_DELIMITERS).delimiter
    except csv.Error:
        header = text.splitlines()[0] if text.strip() else ""
        counts = {d: header.count(d) for d in CSV_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] > 0 else ","


def read_table(source: TableSource, *, sheet: str | int = 0) -> pd.DataFrame:
    """Parse a user table into a frame (a GeoDataFrame for geometry formats).

    Parameters
    ----------
    source
        A CSV/TXT/TSV, XLSX, GeoJSON, GeoPackage or Parquet file: a path, or an open binary
        file-like object whose ``name`` carries the extension (an upload: the app needs no
        temporary files). Either way it is only parsed.
    sheet
        Sheet name or index for spreadsheets.

    Returns
    -------
    pandas.DataFrame or geopandas.GeoDataFrame
        CSV and XLSX cells are read as text (``str``/missing) so that the validation can quote
        the values exactly as the user typed them. ``frame.attrs`` holds ``format``,
        ``encoding``, ``delimiter`` and ``header_lines`` (lines before the first data row, to
        convert data-row numbers into file line numbers).

    Raises
    ------
    InputError
        When the extension is not allowed or the file cannot be parsed.
    """
    data: bytes | None = None
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        fmt = table_format(path)
        if not path.is_file():
            raise InputError("file not found", file=path)
    else:
        path = Path(source_name(source))
        fmt = table_format(path)
        data = _source_bytes(source)
    try:
        frame = _read_by_format(path, fmt, sheet=sheet, data=data)
    except InputError:
        raise
    except Exception as exc:  # parser errors of many kinds: report them as unreadable input
        raise InputError(f"cannot read the file as {fmt}: {exc}", file=path) from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.attrs.setdefault("format", fmt)
    frame.attrs.setdefault("header_lines", 1 if fmt in ("csv", "excel") else 0)
    return frame


def _read_by_format(
    path: Path, fmt: str, *, sheet: str | int, data: bytes | None = None
) -> pd.DataFrame:
    target: Path | io.BytesIO = path if data is None else io.BytesIO(data)
    if fmt == "csv":
        # count lines first (streamed, bounded memory): a huge file is refused unread
        check_row_count(max(0, _count_lines(path, data) - 1), path=path)
        raw = path.read_bytes() if data is None else data
        text, encoding = read_text(path, raw)
        if not text.strip():
            raise InputError("the file is empty", file=path)
        head = text[:_SNIFF_CHARS]
        del text  # parse the bytes: a decoded copy in a StringIO costs ~4 bytes per character
        delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(head)
        frame = pd.read_csv(
            io.BytesIO(raw),
            encoding="utf-8-sig" if encoding == "utf-8" else encoding,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            skip_blank_lines=False,
            engine="c",
        )
        frame.attrs.update(format="csv", encoding=encoding, delimiter=delimiter)
        return frame
    if fmt == "excel":
        frame = pd.read_excel(
            target,
            sheet_name=sheet,
            dtype=object,
            engine="openpyxl",
            keep_default_na=False,
            na_values=[""],
        )
        frame.attrs.update(format="excel")
        check_row_count(len(frame), path=path)
        return frame
    if fmt in ("geojson", "gpkg"):
        geo = gpd.read_file(target if data is None else data)
        check_row_count(len(geo), path=path)
        return geo
    # parquet: GeoParquet when it carries geometry metadata, plain Parquet otherwise
    import pyarrow.parquet as pq

    check_row_count(pq.read_metadata(target).num_rows, path=path)
    if isinstance(target, io.BytesIO):
        target.seek(0)
    meta = pq.read_schema(target).metadata or {}
    if isinstance(target, io.BytesIO):
        target.seek(0)
    if b"geo" in meta:
        return gpd.read_parquet(target)
    return pd.read_parquet(target)
