"""Staging: the current state per key (sql/staging/), from raw, in full or for
the keys the drops loaded since the last build touched.

Each table has one definition, sql/staging/<table>.sql, which replaces the
rows of the keys in scope. The scope is two macros the file calls:
in_scope(<key columns>) and in_scope_record(record_key) (for the table's part
of staging.rejected_rows). A full build makes both `true`, so the optimizer
drops the filter; an incremental build makes them look the key up in the
recheck_<table> temp tables that sql/staging/_scope.sql fills. Either way the
file, and so the rule, is the same: tests/ingest/test_ingest_incremental.py
checks incremental builds against full ones on random multi-drop landings.
"""
from __future__ import annotations

import duckdb

from transforms.contract import LOAD_ORDER, TABLES
from transforms.warehouse import run_sql, table_exists

STAGING_TABLES = (*LOAD_ORDER, "activity_versions", "rejected_rows")


def build_staging(con: duckdb.DuckDBPyConnection, incremental: bool = False) -> dict:
    """Current state per key (newest drop wins, voids out, unknown patients and
    staff held in staging.rejected_rows).

    Full (the default, and whenever staging is incomplete): every key of every
    table from all of raw. Incremental: only the keys that the drops loaded
    since staging was last built touch, plus the rows that waited for a patient
    or staff member those drops describe. staging.staged_drops records which
    loaded drops staging reflects, so a run that failed between loading and
    staging is caught up by the next one.
    """
    # staging built before staging.staged_drops existed is rebuilt in full once
    complete = all(table_exists(con, "staging", t) for t in (*STAGING_TABLES, "staged_drops"))
    # ... and so is staging built before raw gained a column (the contract's optional
    # evidence columns): an incremental insert by name could not hold it
    complete = complete and not _raw_columns_missing_in_staging(con)
    loaded = [r[0] for r in con.execute(
        "select distinct drop_name from raw.loaded_files order by 1").fetchall()] \
        if table_exists(con, "raw", "loaded_files") else []
    if incremental and complete:
        staged = {r[0] for r in con.execute("select drop_name from staging.staged_drops").fetchall()}
        pending = [d for d in loaded if d not in staged]
        mode = "incremental"
        if pending:
            con.execute("create or replace temp table staging_pending_drops as "
                        "select unnest(?::varchar[]) as drop_name", [pending])
            run_sql(con, "staging/_scope.sql")
            for table in LOAD_ORDER:
                _stage(con, table, full=False)
            for temp in ("staging_pending_drops", "new_patients", "new_staff", *(f"recheck_{t}" for t in LOAD_ORDER)):
                con.execute(f"drop table {temp}")
    else:
        mode = "full"
        pending = loaded
        for table in STAGING_TABLES:
            con.execute(f"drop table if exists staging.{table}")
        run_sql(con, "staging/_schema.sql")
        for table in LOAD_ORDER:
            _stage(con, table, full=True)
        con.execute("delete from staging.staged_drops")
    if pending:
        con.execute("insert into staging.staged_drops select unnest(?::varchar[]), now()", [pending])
    counts = {t: con.execute(f"select count(*) from staging.{t}").fetchone()[0] for t in LOAD_ORDER}
    counts["rejected_rows"] = con.execute("select count(*) from staging.rejected_rows").fetchone()[0]
    counts["mode"] = mode
    return counts


def _stage(con: duckdb.DuckDBPyConnection, table: str, full: bool) -> None:
    """Set the scope macros for one table's key, then run its file."""
    key = TABLES[table].key
    args = ", ".join(f"k{i}" for i in range(len(key)))
    record = " || '|' || ".join(f"k{i}" for i in range(len(key)))
    con.execute(f"create or replace temp macro record_key({args}) as {record}")
    if full:
        con.execute(f"create or replace temp macro in_scope({args}) as true")
        con.execute("create or replace temp macro in_scope_record(r) as true")
    else:
        columns = ", ".join(key)
        probe = f"({args})" if len(key) > 1 else args
        con.execute(f"create or replace temp macro in_scope({args}) as "
                    f"{probe} in (select {columns} from recheck_{table})")
        con.execute(f"create or replace temp macro in_scope_record(r) as "
                    f"r in (select record_key({columns}) from recheck_{table})")
    run_sql(con, f"staging/{table}.sql")


def _raw_columns_missing_in_staging(con: duckdb.DuckDBPyConnection) -> bool:
    """True when a raw table has a column its staging table lacks (staging copies raw's)."""
    return bool(con.execute("""
        select count(*)
        from information_schema.columns r
        where r.table_schema = 'raw' and r.table_name in (select unnest(?::varchar[]))
          and r.column_name not in ('_file', '_run_id')
          and not exists (select 1 from information_schema.columns s
                          where s.table_schema = 'staging' and s.table_name = r.table_name
                            and s.column_name = r.column_name)
    """, [[t for t in LOAD_ORDER if t != "activities"]]).fetchone()[0])
