"""Landing plan: which drops are new, and can every one of their files be used?

Runs before the warehouse is opened for writing, so a file that cannot be read
or lacks a required column fails the run with one line naming the file, the
line or row and the column, and the warehouse stays byte-for-byte as it was.
Planning reads each new file whole, exactly as ingest will (readers.py), so
what would stop ingest half-way stops the run here instead. Vendor file and
column names are mapped onto the contract's here (configuration `vendor:`).

What a landing may hold:

- drop folders named for their date: an ISO date, optionally followed by a
  suffix (DROP_NAME: `2026-02-03`, `2026-02-03-2`, `2026-02-03T0200`), so that
  name order is drop order. Any other name (`latest`, `feb-3`) is refused
  before anything is stored: rename the folder.
- in a drop, only contract files: `<table>.csv` or `<table>.parquet`, the
  extension in any case (`activities.CSV`), or a vendor file name mapped in
  configuration. Anything else (another file, a folder, a link) is named and
  the run refuses the drop, so a drop is never recorded as loaded with a file
  of it unread; files listed in `vendor.ignore_files` (shell patterns; by
  default the operating systems' litter, `.DS_Store`, `Thumbs.db`,
  `desktop.ini`) are named in the summary and skipped.
- nothing is followed out of the landing: a drop folder or file that is a
  symbolic link is refused (the landing folder itself may be one).

Entries of the landing that are not drops (a file beside the drop folders, a
folder starting with `.` or `_`) are named in the summary and left alone.
"""
from __future__ import annotations

import fnmatch
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from transforms.contract import LOAD_ORDER, TABLES
from transforms.ingest.readers import LandingFile, UnreadableFile, check_readable, layout, rename_map
from transforms.settings import Settings, VendorMapping

__all__ = ["DROP_NAME", "FORMATS", "IngestPlan", "InputError", "LandingFile", "loaded_drops", "loaded_files",
           "plan_ingest", "rename_map"]

FORMATS = {".csv": "csv", ".parquet": "parquet"}  # extensions, compared in lower case
# An ISO date, then optionally a separator and more: name order is date order.
DROP_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})([-_.T][A-Za-z0-9._-]*)?$")
MAX_PROBLEMS = 50


class InputError(Exception):
    """Landing files the run cannot use; str() is one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass
class IngestPlan:
    new_drops: list[str]
    skipped_drops: list[str]
    files: list[LandingFile]
    ignored: list[str] = field(default_factory=list)  # "<path> (<why>)": entries left alone, named
    empty_drops: list[str] = field(default_factory=list)  # new drop folders with no file yet: not loaded


def loaded_files(con: duckdb.DuckDBPyConnection | None) -> dict[str, set[str]]:
    """Drop name -> the file names loaded from it (raw.loaded_files)."""
    if con is None:
        return {}
    try:
        rows = con.execute("select drop_name, file_name from raw.loaded_files").fetchall()
    except duckdb.CatalogException:
        return {}
    out: dict[str, set[str]] = {}
    for drop, name in rows:
        out.setdefault(drop, set()).add(name)
    return out


def loaded_drops(con: duckdb.DuckDBPyConnection | None) -> set[str]:
    return set(loaded_files(con))


def drop_date(name: str) -> date | None:
    """The date a drop's name starts with, or None when the name does not follow DROP_NAME."""
    match = DROP_NAME.match(name)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def _table_for(path: Path, vendor: VendorMapping) -> str | None:
    """The contract table a file holds, by its name (vendor names first), or None."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        return None
    stem = path.name[: -len(path.suffix)]
    if stem in vendor.files:
        return vendor.files[stem]
    lowered = {k.lower(): v for k, v in vendor.files.items()}
    if stem.lower() in lowered:
        return lowered[stem.lower()]
    return stem.lower() if stem.lower() in TABLES else None


def _ignored_by_configuration(name: str, vendor: VendorMapping) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in vendor.ignore_files)


def plan_ingest(landing: Path, already_loaded: set[str] | dict[str, set[str]], settings: Settings,
                read_files: bool = True) -> IngestPlan:
    """Which drops to load, and whether every one of their files is usable. Writes nothing.

    `already_loaded`: drop names, or drop name -> file names loaded from it.
    `read_files`: read each new file whole (the run's first planning); False only
    checks names, headers and columns (a stage re-planning what was just checked)."""
    landing = Path(landing)
    if not landing.is_dir():
        raise InputError([f"{landing}: landing folder does not exist"])
    loaded_names = already_loaded if isinstance(already_loaded, dict) else {d: set() for d in already_loaded}
    problems: list[str] = []
    drops: list[str] = []
    ignored: list[str] = []
    for entry in sorted(os.scandir(landing), key=lambda e: e.name):
        path = Path(entry.path)
        if entry.name.startswith((".", "_")):
            ignored.append(f"{path} (hidden: not a drop)")
        elif entry.is_symlink():
            problems.append(f"{path}: is a symbolic link; drops are read from folders inside the landing "
                            f"itself, links are never followed: move the drop into the landing")
        elif not entry.is_dir(follow_symlinks=False):
            ignored.append(f"{path} (a file beside the drop folders: not in a drop)")
        elif drop_date(entry.name) is None:
            problems.append(f"{path}: drop folder name {entry.name!r} does not start with a date; drops are "
                            f"named YYYY-MM-DD (optionally followed by -, _, . or T and more, e.g. "
                            f"2026-02-03-2) so that name order is drop order: rename the folder; nothing "
                            f"was stored")
        else:
            drops.append(entry.name)
    plan = IngestPlan(
        new_drops=[d for d in drops if d not in loaded_names],
        skipped_drops=[d for d in drops if d in loaded_names],
        files=[],
        ignored=ignored,
    )
    # Newest drop wins by name, and ingest stores only what changed since the
    # newest drop loaded: a drop that sorts before it would rewrite history.
    newest_loaded = max(loaded_names, default=None)
    for drop in plan.new_drops:
        if newest_loaded is not None and drop < newest_loaded:
            problems.append(f"{landing / drop}: drop sorts before {newest_loaded}, which is already loaded; "
                            f"drops must arrive in name order (rename it to sort after {newest_loaded})")
        files = _drop_files(landing / drop, drop, settings, problems, plan.ignored)
        if not files and not any(p.startswith(f"{landing / drop}/") for p in problems):
            plan.empty_drops.append(drop)
        for lf in files:
            try:
                lay = check_readable(lf, settings) if read_files else layout(lf, settings)
            except UnreadableFile as exc:
                problems.append(str(exc))
                continue
            for col in TABLES[lf.table].required:
                if col not in lay.present:
                    hint = ""
                    if len(lay.names) == 1 and any(d in lay.names[0] for d in ";\t|"):
                        hint = " (the header reads as one column: the contract's CSV is comma-delimited)"
                    problems.append(f"{lf.path}: missing required column {col}{hint}")
            plan.files.append(lf)
    # a file added to a drop after that drop was loaded would never be read
    for drop in plan.skipped_drops:
        for lf in _drop_files(landing / drop, drop, settings, [], None):  # judged when it was loaded
            if loaded_names[drop] and lf.path.name not in loaded_names[drop]:
                problems.append(f"{lf.path}: added to drop {drop} after it was loaded; a drop is loaded once: "
                                f"put the file in a new drop (named to sort last) and remove it from this one")
    if problems:
        if len(problems) > MAX_PROBLEMS:
            problems = problems[:MAX_PROBLEMS] + [f"... and {len(problems) - MAX_PROBLEMS} more"]
        raise InputError(problems)
    plan.new_drops = [d for d in plan.new_drops if d not in plan.empty_drops]
    plan.files.sort(key=lambda f: (f.drop, LOAD_ORDER.index(f.table)))
    return plan


def _drop_files(folder: Path, drop: str, settings: Settings, problems: list[str],
                ignored: list[str] | None) -> list[LandingFile]:
    """The drop's contract files; every other entry is a problem, or ignored by configuration."""
    files: list[LandingFile] = []
    seen: dict[str, Path] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        path = Path(entry.path)
        if _ignored_by_configuration(entry.name, settings.vendor):
            if ignored is not None:
                ignored.append(f"{path} (vendor.ignore_files)")
            continue
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISLNK(mode):
            problems.append(f"{path}: is a symbolic link; files are read from the landing itself, links are "
                            f"never followed: copy the file into the drop")
            continue
        if stat.S_ISDIR(mode):
            problems.append(f"{path}: a folder inside drop {drop}; a drop holds its files directly: move them up "
                            f"or remove the folder")
            continue
        if not stat.S_ISREG(mode):
            problems.append(f"{path}: is not a regular file")
            continue
        table = _table_for(path, settings.vendor)
        if table is None or table not in TABLES:
            problems.append(f"{path}: not a file of the export contract ({', '.join(LOAD_ORDER)}, as .csv or "
                            f".parquet); drop {drop} is not loaded while it is there: rename or remove it, or "
                            f"list its name under vendor.ignore_files")
            continue
        if table in seen:
            problems.append(f"{path}: a second file for table {table} in drop {drop} (also {seen[table].name})")
            continue
        seen[table] = path
        files.append(LandingFile(drop, table, path))
    return files
