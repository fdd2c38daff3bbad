"""Readers: a landing file as text columns named per the contract, and its checksum.

Every byte sequence either reads, or raises UnreadableFile with one line naming
the file, the line or row, the column and what to do, and never quoting the data
(DuckDB's and Polars' own errors quote the row; they are never passed on).
A row that reads but cannot be trusted as it stands (more or fewer fields than
the header) is read with `_ragged` saying so: raw quarantines it whole, never
shifting its values into other columns.

CSV (UTF-8, RFC 4180) is read by DuckDB with every column as text, a fixed
dialect (comma, double quote, doubled quotes, a header row: nothing is sniffed)
and room for up to twice the header's fields, so each row's field count is
known; rows come out in file order and are numbered 1, 2, ... (the header and
blank lines are not rows). A byte sequence that is not UTF-8, a quote that is
never closed, a row longer than MAX_LINE_BYTES or with more than twice the
header's fields: the file cannot be read. Parquet is read with pyarrow:
numbers, dates, timestamps and booleans become the text a CSV would hold (a
float or decimal that is a whole number as the whole number: 20.0 -> "20");
a list, struct or other nested column that the contract reads cannot be.

Nothing here follows a symbolic link: files are opened with O_NOFOLLOW and must
be regular files (planning refuses links before that).
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from transforms.contract import TABLES
from transforms.privacy import safe_error_text
from transforms.settings import Settings, VendorMapping

HEADER_MAX_BYTES = 1 << 20
MAX_LINE_BYTES = 8 << 20  # one CSV row, quoted line breaks included
PARALLEL_MIN_BYTES = 16 << 20  # smaller CSV files are read by one thread
# An empty field reads as '' and an absent one (a short row) as NULL: no cell
# of an export is this string.
_NO_NULL = "\x01\x02ccm:no-null\x03"
_QUOTED_NEWLINES = "does not support null_padding in conjunction with quoted new lines"
_INVALID_STATE = "state machine reached an invalid state"  # strict mode: mixed line ends, a bare CR


class UnreadableFile(Exception):
    """A landing file the run cannot use; str() is one line naming the file."""


@dataclass(frozen=True)
class LandingFile:
    drop: str
    table: str
    path: Path

    @property
    def format(self) -> str:
        return "parquet" if self.path.suffix.lower() == ".parquet" else "csv"


@dataclass(frozen=True)
class Layout:
    """The file's columns as it names them, and the contract column each one is (None: extra, ignored)."""
    names: tuple[str, ...]
    targets: tuple[str | None, ...]

    @property
    def present(self) -> set[str]:
        return {t for t in self.targets if t}


def rename_map(columns: list[str], table: str, vendor: VendorMapping) -> dict[str, str]:
    """Vendor names first, then our own names written with other case or spaces."""
    mapping = vendor.columns.get(table, {})
    renamed = {}
    for col in columns:
        target = mapping.get(col) or mapping.get(col.strip()) or col.strip().lower()
        renamed[col] = target
    return renamed


def arrow(frame: pl.DataFrame):
    """The frame for DuckDB without copying it (string views, which DuckDB reads as they are)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with _open_regular(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _open_regular(path: Path):
    """The file for reading, refusing a symbolic link or anything but a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == 40 or os.path.islink(path):  # ELOOP: the last component is a link
            raise UnreadableFile(f"{path}: is a symbolic link; files are read from the landing itself, "
                                 f"links are never followed: copy the file into the drop") from None
        raise UnreadableFile(f"{path}: cannot be opened ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnreadableFile(f"{path}: is not a regular file")
    return os.fdopen(fd, "rb")


# ---------------------------------------------------------------- the layout (header or schema)

def layout(lf: LandingFile, settings: Settings) -> Layout:
    """The file's header (CSV) or schema (Parquet), mapped onto the contract's columns.
    Raises UnreadableFile for a file without one, or with a contract column twice."""
    names = _csv_header(lf.path) if lf.format == "csv" else _parquet_names(lf.path)
    renamed = rename_map(list(dict.fromkeys(names)), lf.table, settings.vendor)
    contract = set(TABLES[lf.table].columns)
    targets = tuple(renamed[n] if renamed[n] in contract else None for n in names)
    seen: dict[str, int] = {}
    for i, target in enumerate(targets):
        if target is None:
            continue
        if target in seen:
            first = seen[target]
            raise UnreadableFile(
                f"{lf.path}: columns {first + 1} ({names[first]!r}) and {i + 1} ({names[i]!r}) both read as "
                f"{target}; a column may appear once: remove or rename one of them")
        seen[target] = i
    return Layout(tuple(names), targets)


def _csv_header(path: Path) -> list[str]:
    with _open_regular(path) as fh:
        head = fh.read(HEADER_MAX_BYTES)
    if not head:
        raise UnreadableFile(f"{path}: is empty (0 bytes): a CSV needs its header row, even with no rows")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise UnreadableFile(f"{path}: is UTF-16 text; the contract's CSV is UTF-8: export the file as UTF-8")
    head = head.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is allowed
    text = head.decode("utf-8", errors="surrogateescape")
    try:
        header = next(csv.reader(io.StringIO(text, newline="")), None)
    except csv.Error:
        header = None
    if header is None or (len(head) == HEADER_MAX_BYTES and not any(c in text for c in "\r\n")):
        raise UnreadableFile(f"{path}: line 1: no header row could be read (the contract's CSV starts with "
                             f"a header row of column names)")
    if any("\x00" in name for name in header):
        raise UnreadableFile(f"{path}: line 1: the header holds NUL bytes (UTF-16 text?); the contract's CSV "
                             f"is UTF-8: export the file as UTF-8")
    for i, name in enumerate(header, start=1):
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            raise UnreadableFile(f"{path}: line 1, column {i}: the header is not UTF-8 text (cp1252 or "
                                 f"Latin-1?); export the file as UTF-8") from None
    return header


def _parquet_names(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    with _open_regular(path) as fh:
        try:
            return list(pq.ParquetFile(fh).schema_arrow.names)
        except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
            raise UnreadableFile(f"{path}: cannot be read as Parquet ({safe_error_text(exc)})") from None


# ---------------------------------------------------------------- CSV

def _csv_source(path: Path, width: int, parallel: bool, null_padding: bool, rejects_limit: int) -> str:
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(width))
    return (f"read_csv('{_sql_quote(str(path))}', header = true, auto_detect = false, delim = ',', quote = '\"', "
            f"escape = '\"', strict_mode = true, null_padding = {str(null_padding).lower()}, "
            f"parallel = {str(parallel).lower()}, nullstr = '{_sql_quote(_NO_NULL)}', allow_quoted_nulls = false, "
            f"store_rejects = true, rejects_limit = {rejects_limit}, max_line_size = {MAX_LINE_BYTES}, "
            f"columns = {{{columns}}})")


def _fields(width: int) -> str:
    """A row's fields: its non-null columns (an empty field reads as '', an absent one as NULL).
    Naming every column also makes DuckDB read (and check) every one."""
    return f"len(list_filter([{', '.join(f'c{i}' for i in range(width))}], lambda v: v is not null))"


def _csv_select(path: Path, lay: Layout, parallel: bool, aggregate: bool) -> str:
    """The rows (or, `aggregate`, a count that reads them all) with room for up to twice the
    header's fields (or 8 more), so that every row's field count is known."""
    n = len(lay.names)
    width = n + max(n, 8)
    source = _csv_source(path, width, parallel, null_padding=True, rejects_limit=1000)
    if aggregate:
        return f"select count(*), sum({_fields(width)}) from {source}"
    mapped = ", ".join(f'c{i} as "{t}"' for i, t in enumerate(lay.targets) if t)
    return (f"select {mapped}{', ' if mapped else ''}"
            f"case when _fields <> {n} then 'has ' || _fields || ' fields; the header has {n}' end as _ragged "
            f"from (select *, {_fields(width)} as _fields from {source})")


_REJECTS = {
    "INVALID ENCODING": "is not UTF-8 text (cp1252 or Latin-1?); the contract's CSV is UTF-8: export the file as UTF-8",
    "INVALID UNICODE": "is not UTF-8 text (cp1252 or Latin-1?); the contract's CSV is UTF-8: export the file as UTF-8",
    "UNQUOTED VALUE": "a quote is not closed, or a value goes on after its closing quote; a value holding a comma, "
                      "a quote or a line break is quoted whole, with its quotes doubled (RFC 4180)",
    "LINE SIZE OVER MAXIMUM": f"a row is longer than {MAX_LINE_BYTES >> 20} MB",
    "TOO MANY COLUMNS": "has more than twice the header's fields",
}
_RAGGED_REJECTS = ("MISSING COLUMNS", "TOO MANY COLUMNS")  # the quote scan's: quarantined by the read
QUOTE_SCAN_REJECTS = 10_000


def _query(path: Path, lay: Layout, sql: str, fetch, ignore: tuple[str, ...] = ()):
    """Run one CSV query; (its result, the number of rejects, the first reject not in `ignore`).
    None for the result: the parallel scanner met quoted line breaks it cannot pad."""
    with _READER_LOCK:
        con = _reader_connection()
        con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
        try:
            result = fetch(con, sql)
        except duckdb.Error as exc:
            if _QUOTED_NEWLINES in str(exc):
                return None, 0, None
            if _INVALID_STATE in str(exc):
                raise UnreadableFile(
                    f"{path}: line {_first_odd_line_end(path)}: its line end differs from the header's (CRLF "
                    f"and LF mixed) or a value holds a carriage return outside quotes; export the file with one "
                    f"kind of line end, quoting any value that holds a line break") from None
            raise UnreadableFile(f"{path}: cannot be read as CSV ({safe_error_text(exc)})") from None
        # the rejects' csv_line column holds the row: only its position is read
        listed = ", ".join(f"'{k}'" for k in ignore) or "''"
        count, = con.execute("select count(*) from reject_errors").fetchall()[0]
        reject = con.execute(f"select line, column_idx, error_type from reject_errors "
                             f"where error_type not in ({listed}) order by line, column_idx limit 1").fetchall()
        con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    if reject:
        line, column, kind = reject[0]
        name = lay.names[column - 1] if column and column <= len(lay.names) else None
        # DuckDB numbers records, the header being the first: a data row's number is one less,
        # as raw.quarantine numbers rows (a quoted line break does not start a new one)
        where = (f"row {line - 1}" if line and line > 1 else "the header") + (f", column {name}" if name else "")
        raise UnreadableFile(f"{path}: {where}: {_REJECTS.get(kind, kind.lower())}")
    return result, count, None


def _fetch_rows(con, sql):
    return con.execute(sql).fetchall()


def _fetch_arrow(con, sql):
    return con.sql(sql).to_arrow_table()


def _run_csv(path: Path, lay: Layout, aggregate: bool):
    """The CSV's rows as Arrow (or, `aggregate`, after reading it all: planning); UnreadableFile
    for any reject. DuckDB's parallel scanner pays only on big files, and cannot pad rows when
    values hold quoted line breaks: then the single-threaded one reads the file."""
    if aggregate:
        _check_quoting(path, lay)
    fetch = _fetch_rows if aggregate else _fetch_arrow
    for parallel in ((True, False) if path.stat().st_size > PARALLEL_MIN_BYTES else (False,)):
        result, _, _ = _query(path, lay, _csv_select(path, lay, parallel, aggregate), fetch)
        if result is not None:
            return result
    raise AssertionError("the single-threaded scanner reads quoted line breaks")


def _check_quoting(path: Path, lay: Layout) -> None:
    """Planning: quotes and encoding, with the parallel scanner, unpadded: it finds a quote never
    closed, which the single-threaded one (the one that reads quoted line breaks and pads short
    rows) reads as a value running to the end of the file, rows and all. Short and long rows are
    its rejects too, and are left to the read, which quarantines them."""
    n = max(len(lay.names), 1)
    sql = f"select count(*), sum({_fields(n)}) from {_csv_source(path, n, True, False, QUOTE_SCAN_REJECTS)}"
    _, rejects, _ = _query(path, lay, sql, _fetch_rows, ignore=_RAGGED_REJECTS)
    if rejects >= QUOTE_SCAN_REJECTS:  # too many short or long rows to be sure: count the quotes
        _check_quotes_closed(path)


def _first_odd_line_end(path: Path) -> int:
    """The first line (1 = the header) whose end is not the header's, or that holds a bare CR:
    read only to word an error, so line by line is fine."""
    with _open_regular(path) as fh:
        first = fh.readline()
        crlf = first.endswith(b"\r\n")
        for n, line in enumerate(iter(fh.readline, b""), start=2):
            body = line[:-2] if line.endswith(b"\r\n") else line.rstrip(b"\n")
            if b"\r" in body or (line.endswith(b"\n") and line.endswith(b"\r\n") != crlf):
                return n
    return 1


def _check_quotes_closed(path: Path) -> None:
    """DuckDB's single-threaded scanner (the one that reads quoted line breaks) reads a quote
    that is never closed as a value running to the end of the file, rows and all: in a file
    whose quotes all pair up (RFC 4180), the number of quote characters is even."""
    quotes = 0
    with _open_regular(path) as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            quotes += chunk.count(b'"')
    if quotes % 2:
        raise UnreadableFile(f"{path}: a quote is never closed (the file holds an odd number of quote "
                             f"characters); a value holding a comma, a quote or a line break is quoted whole, "
                             f"with its quotes doubled (RFC 4180)")


_READER_LOCK = threading.Lock()
_READER: list[duckdb.DuckDBPyConnection] = []


def _reader_connection() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per process for reading landing files (opening one costs ~30 ms)."""
    if not _READER:
        con = duckdb.connect(":memory:")
        con.execute(f"set memory_limit = '{_sql_quote(os.environ.get('CCM_DUCKDB_MEMORY_LIMIT', '1GB'))}'")
        con.execute("set temp_directory = ''")  # a landing file's text never spills to disk
        con.execute("set preserve_insertion_order = true")  # rows in file order: their numbers
        _READER.append(con)
    return _READER[0]


def _sql_quote(value: str) -> str:
    return value.replace("'", "''")


# ---------------------------------------------------------------- Parquet

def _parquet_text(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Every column as the text a CSV export would hold."""
    out = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.String:
            expr = col
        elif dtype.is_float():
            whole = col.is_finite() & (col == col.round(0)) & (col.abs() < 2.0 ** 53)
            expr = pl.when(whole).then(col.cast(pl.Int64).cast(pl.String)).otherwise(col.cast(pl.String))
        elif isinstance(dtype, pl.Decimal):
            expr = col.cast(pl.String).str.replace(r"\.0+$", "")
        elif dtype.is_integer() or dtype in (pl.Boolean, pl.Null, pl.Categorical) or isinstance(dtype, pl.Enum):
            expr = col.cast(pl.String)
        elif dtype == pl.Date:
            expr = col.dt.strftime("%Y-%m-%d")
        elif isinstance(dtype, pl.Datetime):
            expr = (col.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ") if dtype.time_zone
                    else col.dt.strftime("%Y-%m-%dT%H:%M:%S%.f"))
        elif dtype == pl.Binary:
            try:
                frame.select(col.cast(pl.String))
            except pl.exceptions.PolarsError:
                raise UnreadableFile(f"{path}: column {name}: holds bytes that are not UTF-8 text") from None
            expr = col.cast(pl.String)
        else:
            raise UnreadableFile(f"{path}: column {name}: is {_type_name(dtype)}; the contract's columns are "
                                 f"text, numbers, dates, timestamps or true/false")
        out.append(expr.alias(name))
    return frame.select(out)


def _type_name(dtype) -> str:
    if isinstance(dtype, (pl.List, pl.Array)):
        return f"a list ({dtype})"
    if isinstance(dtype, pl.Struct):
        return "a struct"
    return f"of type {dtype}"


def _read_parquet(lf: LandingFile, lay: Layout) -> pl.DataFrame:
    import pyarrow.parquet as pq

    wanted = [(n, t) for n, t in zip(lay.names, lay.targets) if t]
    with _open_regular(lf.path) as fh:
        try:
            table = pq.ParquetFile(fh).read(columns=[n for n, _ in wanted]) if wanted else None
            frame = pl.from_arrow(table) if table is not None else pl.DataFrame()
        except UnreadableFile:
            raise
        except Exception as exc:
            raise UnreadableFile(f"{lf.path}: cannot be read as Parquet ({safe_error_text(exc)})") from None
    if not wanted:
        rows = _parquet_rows(lf.path)
        return pl.DataFrame({"_ragged": pl.Series([None] * rows, dtype=pl.String)})
    frame = _parquet_text(frame, lf.path).rename({n: t for n, t in wanted})
    return frame.with_columns(_ragged=pl.lit(None, dtype=pl.String))


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    with _open_regular(path) as fh:
        return pq.ParquetFile(fh).metadata.num_rows


# ---------------------------------------------------------------- the stage's two calls

def check_readable(lf: LandingFile, settings: Settings) -> Layout:
    """Planning: read the whole file once, as ingest will, and raise UnreadableFile for
    anything that would stop it there. Writes nothing, keeps nothing but the layout."""
    lay = layout(lf, settings)
    if lf.format == "csv":
        _run_csv(lf.path, lay, aggregate=True)
    else:
        _read_parquet(lf, lay)
    return lay


def read_strings(lf: LandingFile, settings: Settings) -> pl.DataFrame:
    """The file as text columns named per the contract, with 1-based row numbers and
    `_ragged` (why the row cannot be read as it stands, else null)."""
    lay = layout(lf, settings)
    if lf.format == "csv":
        frame = pl.from_arrow(_run_csv(lf.path, lay, aggregate=False))
        if not isinstance(frame, pl.DataFrame):
            frame = frame.to_frame()
    else:
        frame = _read_parquet(lf, lay)
    frame = frame.with_columns(pl.col(c).cast(pl.String) for c in frame.columns)
    spec = TABLES[lf.table]
    missing_optional = [c for c in spec.columns if c not in frame.columns]
    frame = frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in missing_optional])
    return frame.select(*spec.columns, "_ragged").with_row_index("_row_number", offset=1)


def absent_evidence(lf: LandingFile, settings: Settings) -> list[str]:
    """The evidence columns (contract: optional, audit evidence) the file does not have, sorted."""
    present = {t for t in layout(lf, settings).targets if t}
    return sorted(c for c in TABLES[lf.table].evidence if c not in present)
