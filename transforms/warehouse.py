"""The DuckDB warehouse: connections set to practice time, SQL files run from sql/."""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb

from transforms import run_lock
from transforms.errors import WarehouseBusy
from transforms.paths import SQL_DIR
from transforms.privacy import CSV_CELL_MACRO, mkdir_private, private_umask


def connect(path: str | Path, time_zone: str, read_only: bool = False,
            wait_seconds: float | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; naive timestamps are read, and months taken, in `time_zone`.

    Opened for writing, every file DuckDB makes is owner-only: the process umask is
    tightened first (the WAL, which holds MBIs, is created later by DuckDB itself)
    and spill files go to a private folder beside the warehouse. A file another
    program holds (a dashboard that opened it, even read-only) is waited for up to
    `wait_seconds` (run_lock.wait_seconds), then refused in one line
    (errors.WarehouseBusy)."""
    path = Path(path)
    if not read_only:
        private_umask()
        path.parent.mkdir(parents=True, exist_ok=True)
        # The warehouse holds PHI: create it readable by its owner only.
        if not path.exists():
            fd = os.open(path.with_suffix(path.suffix + ".init"), os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
            os.remove(path.with_suffix(path.suffix + ".init"))
    con = _open(path, read_only, run_lock.wait_seconds(wait_seconds))
    if not read_only:
        spill = mkdir_private(run_lock.private_dir(path)) / "duckdb_tmp"
        con.execute(f"set temp_directory = '{_quote(str(spill))}'")
    con.execute(f"set TimeZone = '{_quote(time_zone)}'")
    con.execute(f"set variable practice_tz = '{_quote(time_zone)}'")
    # Bounded memory whatever the history's size (DuckDB spills to disk beyond
    # it); CCM_DUCKDB_MEMORY_LIMIT raises it on a bigger server.
    con.execute(f"set memory_limit = '{_quote(os.environ.get('CCM_DUCKDB_MEMORY_LIMIT', '1GB'))}'")
    # Checkpoint once per run rather than after every drop's commit.
    con.execute("set checkpoint_threshold = '1GB'")
    con.execute(CSV_CELL_MACRO)  # spreadsheet-safe cells for the CSVs people open (transforms/privacy.py)
    if not read_only:
        os.chmod(path, 0o600)
    return con


_HELD_BY = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def _open(path: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + wait
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            held = _HELD_BY.search(str(exc))
            if held is None and "could not set lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                who = f"{held.group(1)} (PID {held.group(2)})" if held else "another program"
                raise WarehouseBusy(
                    f"warehouse {path} is held open by {who}; waited {wait:.0f} s: close that program "
                    f"(dashboards should read the snapshot or a copy, not the warehouse), then rerun") from None
            time.sleep(0.25)


def _quote(value: str) -> str:
    return value.replace("'", "''")


def sql_literal(value: object) -> str:
    """A value as a SQL string literal (for settings set as variables, never for row data)."""
    return "'" + _quote(str(value)) + "'"


def sql_text(relative: str) -> str:
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def run_sql(con: duckdb.DuckDBPyConnection, relative: str) -> None:
    """Run every statement of one file under sql/."""
    con.execute(sql_text(relative))


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    run_sql(con, "raw/_schema.sql")
    for f in sorted((SQL_DIR / "raw").glob("*.sql")):
        if not f.name.startswith("_"):
            con.execute(f.read_text(encoding="utf-8"))
    run_sql(con, "raw/_latest_versions.sql")


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchone()[0]
    )
