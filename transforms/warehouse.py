"""The DuckDB warehouse: connections set to practice time, SQL files run from sql/."""
from __future__ import annotations

import os
from pathlib import Path

import duckdb

from transforms.paths import SQL_DIR


def connect(path: str | Path, time_zone: str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; naive timestamps are read, and months taken, in `time_zone`."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The warehouse holds PHI: create it readable by its owner only.
        if not path.exists():
            fd = os.open(path.with_suffix(path.suffix + ".init"), os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
            os.remove(path.with_suffix(path.suffix + ".init"))
    con = duckdb.connect(str(path), read_only=read_only)
    con.execute(f"set TimeZone = '{_quote(time_zone)}'")
    con.execute(f"set variable practice_tz = '{_quote(time_zone)}'")
    # Bounded memory whatever the history's size (DuckDB spills to disk beyond
    # it); CCM_DUCKDB_MEMORY_LIMIT raises it on a bigger server.
    con.execute(f"set memory_limit = '{_quote(os.environ.get('CCM_DUCKDB_MEMORY_LIMIT', '1GB'))}'")
    # Checkpoint once per run rather than after every drop's commit.
    con.execute("set checkpoint_threshold = '1GB'")
    if not read_only:
        os.chmod(path, 0o600)
    return con


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
