"""PHI stays put: files owner-only, error texts without row content, CSV cells a
spreadsheet will not evaluate.

- private_umask(): every file the process (and DuckDB inside it: the WAL, spill
  files) creates afterwards is owner-only. Called by the CLI, by every Airflow
  task and when the warehouse is opened for writing; it only ever tightens.
- write_private() / mkdir_private(): files and folders created 0600 / 0700
  whatever the umask, written atomically (a temp file, then a rename).
- safe_error_text(): the first line of a library's error message with every
  quoted fragment, and everything after a colon that introduces a value, cut:
  Polars and DuckDB quote the offending row (a note, a name) in their errors.
- csv_cell() (and the DuckDB macro CSV_CELL_MACRO): a text cell starting with
  = + - @ TAB or CR gets a leading apostrophe, so a spreadsheet shows it as text
  instead of running it as a formula (OWASP "CSV injection"). Plain numbers
  (-5, +1.5) are left alone. Reversible: a cell that starts with one or more
  apostrophes followed by one of those characters gets one more apostrophe, so
  csv_value() (strip one apostrophe from such a cell) gives back every value.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

PRIVATE_UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_umask() -> None:
    """Tighten the process umask so new files are owner-only (never loosens it)."""
    current = os.umask(PRIVATE_UMASK)
    os.umask(current | PRIVATE_UMASK)


def mkdir_private(path: Path, parents: bool = True) -> Path:
    """A folder only its owner can enter (created if missing; an existing one is tightened)."""
    path = Path(path)
    if parents and not path.parent.exists():
        mkdir_private(path.parent, parents=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    os.chmod(path, DIR_MODE)
    return path


def write_private(path: Path, data: bytes | str) -> Path:
    """Write `data` to `path` atomically, readable by its owner only."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path


# ---------------------------------------------------------------- error texts

_QUOTED = re.compile(r"""`[^`]*`?|"[^"]*"?|'[^']*'?|«[^»]*»?""")
# "... value: <the value>", "Original Line: ...", "at line 3: <the line>": what follows may be a row
_VALUE_AFTER = re.compile(r"(?i)\b(value|line|row|string|input|text|record|found|got)\s*[:=].*$")


def safe_error_text(exc: BaseException | str, limit: int = 160) -> str:
    """A library error's first line, without anything that may quote the data."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = _QUOTED.sub("…", text)
    text = _VALUE_AFTER.sub(lambda m: m.group(1) + ": …", text)
    return text[:limit].rstrip()


# ---------------------------------------------------------------- spreadsheet-safe CSV cells

FORMULA_START = "=+-@\t\r"
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_NEEDS_APOSTROPHE = re.compile(r"^'*[=+\-@\t\r]")


def csv_cell(value: str | None) -> str | None:
    """The cell as written: an apostrophe before a value a spreadsheet would evaluate."""
    if value is None or _PLAIN_NUMBER.match(value) or not _NEEDS_APOSTROPHE.match(value):
        return value
    return "'" + value


def csv_value(cell: str | None) -> str | None:
    """The value a csv_cell() cell stands for (what our own checks compare)."""
    if cell is None or _PLAIN_NUMBER.match(cell) or not re.match(r"^'+[=+\-@\t\r]", cell):
        return cell
    return cell[1:]


# The same rule as DuckDB macros (created on every warehouse connection): the
# CSVs the pipeline writes are built by DuckDB.
CSV_CELL_MACRO = r"""
create or replace temp macro csv_cell(v) as
    case when v is null or regexp_full_match(v, '[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)')
              or not regexp_matches(v, '^''*[=+\-@\t\r]') then v
         else '''' || v end;
create or replace temp macro csv_value(v) as
    case when v is null or regexp_full_match(v, '[+-]?([0-9]+([.][0-9]*)?|[.][0-9]+)')
              or not regexp_matches(v, '^''+[=+\-@\t\r]') then v
         else substr(v, 2) end;
"""
