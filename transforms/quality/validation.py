"""Validation: each drop's new rows against the GX suites in expectations/
(transforms.quality.suites runs GX), in chunks, merged into one result per suite.

The suites see only rows they have not validated before (quality.validated_rows;
a reference snapshot repeated by every drop is validated once), as pandas frames
built in DuckDB (sql/quality/suite_frames/), in chunks of at most CHUNK_ROWS
rows. `validate_table` checks one frame, e.g. a landing file, on its own.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import duckdb

from transforms.contract import LOAD_ORDER, TABLES
from transforms.quality.flags import prepare
from transforms.quality.suites import ExpectationOutcome, partition_columns, run_suites
from transforms.settings import Settings, load_settings
from transforms.warehouse import run_sql, sql_text

if TYPE_CHECKING:
    import pandas as pd

# GX validates a table's new rows in chunks of at most this many rows (pandas
# frames are several times the size of the rows in DuckDB); CCM_VALIDATE_CHUNK_ROWS
# sets another size.
CHUNK_ROWS = 250_000
CHUNK_ROWS_ENV = "CCM_VALIDATE_CHUNK_ROWS"


@dataclass(frozen=True)
class ValidationReport:
    """What one table's suite found: success is False when a structure
    (critical) expectation failed; warnings are reported but do not fail it."""

    table: str
    rows: int
    success: bool
    failures: tuple[ExpectationOutcome, ...]  # failed expectations, structure first
    chunks: int = 1  # GX validations the rows took (merged into this one report)

    @property
    def errors(self) -> list[str]:
        return [f.message for f in self.failures if f.fails_suite]

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.failures if not f.fails_suite]

    @property
    def messages(self) -> list[str]:
        return [f.message for f in self.failures]

    def __str__(self) -> str:
        head = f"{self.table}: {self.rows} rows, " + ("passed" if self.success else "FAILED")
        return "\n".join([head, *(f"  {m}" for m in self.messages)])


def select_rows_to_validate(con: duckdb.DuckDBPyConnection, drops: list[str]) -> tuple[dict[str, int], dict[str, int]]:
    """Per table, which rows of `drops` the suite has not validated yet, into the
    temp table quality_validation_keys_<table>, and remember them as validated
    (quality.validated_rows; the caller's transaction undoes that if validation
    fails). Returns, per table, the rows the drops hold and the distinct new rows."""
    seed = _validated_rows_is_new(con)
    rows_in_drops: dict[str, int] = {}
    new_rows: dict[str, int] = {}
    for table in LOAD_ORDER:
        con.execute("set variable quality_table = ?", [table])
        if seed:
            _table_rows_view(con, table, "quality_validated_drops")
            run_sql(con, "quality/seed_validated_rows.sql")
        _table_rows_view(con, table, "quality_drops")
        rows_in_drops[table] = con.execute("select count(*) from quality_table_rows").fetchall()[0][0]
        run_sql(con, "quality/validation_rows.sql")
        run_sql(con, "quality/record_validated_rows.sql")
        con.execute(f"drop table if exists quality_validation_keys_{table}")
        con.execute(f"alter table quality_validation_keys rename to quality_validation_keys_{table}")
        new_rows[table] = con.execute(f"select count(*) from quality_validation_keys_{table}").fetchall()[0][0]
    con.execute("drop view if exists quality_table_rows")
    return rows_in_drops, new_rows


def _validated_rows_is_new(con: duckdb.DuckDBPyConnection) -> bool:
    """True when quality.validated_rows is empty although drops were validated
    (by a version before it existed): their rows are then counted as validated.
    Sets quality_validated_drops to those drops."""
    if con.execute("select count(*) from (select 1 from quality.validated_rows limit 1)").fetchall()[0][0]:
        return False
    if not con.execute("select count(*) from information_schema.tables "
                       "where table_schema = 'quality' and table_name = 'validated_drops'").fetchall()[0][0]:
        return False
    validated = [d for (d,) in con.execute(
        "select drop_name from quality.validated_drops "
        "where drop_name not in (select unnest(getvariable('quality_drops')))").fetchall()]
    con.execute("set variable quality_validated_drops = ?::varchar[]", [validated])
    return bool(validated)


def _table_rows_view(con: duckdb.DuckDBPyConnection, table: str, drops_variable: str) -> None:
    """quality_table_rows: raw.<table> in the drops of a variable, with _key_hash:
    the drop and the columns the suite's uniqueness expectations share (else the
    table's key), normalised at least as much as the suite frames normalise them
    (trimmed, upper case, dots out, empty = null), so rows the suite could find
    repeated share a _key_hash."""
    raw_columns = {r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ?",
        [table]).fetchall()}
    columns = [c for c in (partition_columns(table) or ()) if c != "_drop"]
    if not columns or not set(columns) <= raw_columns:
        columns = [c for c in TABLES[table].key if c in raw_columns]
    key = ", ".join(f"coalesce(upper(replace(trim({c}::varchar), '.', '')), '')" for c in columns) or "''"
    con.execute(
        f"create or replace temp view quality_table_rows as select *, hash(_drop, {key}) as _key_hash "
        f"from raw.{table} where _drop in (select unnest(getvariable('{drops_variable}')))"
    )


def suite_chunks(con: duckdb.DuckDBPyConnection, table: str, chunk_rows: int) -> Iterator["pd.DataFrame"]:
    """The suite frames (sql/quality/suite_frames/<table>.sql) of the rows to
    validate (quality_validation_keys_<table>), in chunks of at most about
    `chunk_rows`, fetched one at a time. The frames are built once, into a temp
    table in DuckDB (which spills beyond its memory limit), ordered by a hash of
    the columns the suite's uniqueness expectations share: chunks are ranges of
    that hash, so rows the suite compares are in one chunk. A suite that needs
    all its rows at once (partition_columns None) is one chunk whatever its size."""
    partition = partition_columns(table)
    if partition:  # e.g. _drop and activity_id: a repeat within a drop is in one chunk
        chunk_hash = "hash(" + ", ".join(
            f"coalesce(upper(replace(trim({c}::varchar), '.', '')), '')" for c in partition) + ")"
    elif partition == ():
        chunk_hash = "hash(_drop, _row_number)"
    else:
        chunk_hash = "0::ubigint"
    con.execute("set variable quality_table = ?", [table])
    _table_rows_view(con, table, "quality_drops")
    con.execute(
        "create or replace temp view validation_source as "
        "select * from (select *, hash(*COLUMNS(lambda c: not starts_with(c, '_'))) as _row_hash "
        "from quality_table_rows) "
        f"semi join quality_validation_keys_{table} using (_drop, _row_hash)"
    )
    query = sql_text(f"quality/suite_frames/{table}.sql")
    con.execute(
        f"create or replace temp table quality_suite_rows as "
        f"select *, {chunk_hash} as _chunk_hash from (\n{query}\n) order by _chunk_hash"
    )
    con.execute("drop view validation_source")
    con.execute("drop view quality_table_rows")
    try:
        rows = con.execute("select count(*) from quality_suite_rows").fetchall()[0][0]
        chunks = max(1, math.ceil(rows / chunk_rows)) if partition is not None else 1
        for i in range(chunks):
            low, high = (2**64 * i) // chunks, (2**64 * (i + 1)) // chunks
            where = f"_chunk_hash >= {low}::ubigint" + (f" and _chunk_hash < {high}::ubigint" if i < chunks - 1 else "")
            frame = to_pandas(con, f"select * exclude (_chunk_hash) from quality_suite_rows where {where} "
                                    "order by _drop, _row_number")
            if len(frame):
                yield frame
    finally:
        con.execute("drop table if exists quality_suite_rows")


def import_gx_in_background() -> threading.Thread:
    def load() -> None:
        try:
            import great_expectations  # noqa: F401
        except Exception:  # noqa: BLE001 - run_suites imports it again and reports the error
            pass

    thread = threading.Thread(target=load, name="import-great-expectations", daemon=True)
    thread.start()
    return thread


def validate_table(table: str, frame: "pd.DataFrame", settings: Settings | None = None,
                   data_docs_dir: Path | None = None) -> ValidationReport:
    """Validate one table's rows (a landing file read as a pandas or Polars
    frame, or raw rows) against expectations/<table>.json; each failure is one line naming the
    table and column. Extra columns are ignored, as the contract allows."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}: expected one of {', '.join(TABLES)}")
    import pandas as pd

    if not isinstance(frame, pd.DataFrame) and hasattr(frame, "to_pandas"):
        frame = frame.to_pandas()  # a Polars frame, as ingest reads files: GX takes pandas only
    settings = settings or load_settings()
    spec = TABLES[table]
    missing = [c for c in spec.required if c not in frame.columns]
    source = frame.copy(deep=False)
    for column in spec.columns:
        if column not in source.columns:
            source[column] = None  # reported once below, not once per expectation
    if "_drop" not in source.columns:
        source["_drop"] = ""
    if "_row_number" not in source.columns:
        source["_row_number"] = range(1, len(source) + 1)  # 1-based data row, as raw._row_number

    mem = duckdb.connect()
    try:
        mem.execute(f"set TimeZone = '{settings.time_zone}'")
        prepare(mem, settings)
        mem.register("validation_source", source)
        suite_frame = to_pandas(mem, sql_text(f"quality/suite_frames/{table}.sql"))
    finally:
        mem.close()

    run_name = "validate_table"
    report = validate_frames({table: suite_frame}, settings, run_name, data_docs_dir)[table]
    missing_failures = tuple(
        ExpectationOutcome(
            table=table, column=c, expectation="expect_column_to_exist", severity="critical", success=False,
            unexpected_count=None, element_count=len(frame),
            message=f"{table}.{c}: required column is missing (add it, or map the vendor's column name onto it)",
        )
        for c in missing
    )
    failures = missing_failures + tuple(f for f in report.failures if f.column not in missing)
    return ValidationReport(table, report.rows, not any(f.fails_suite for f in failures), failures)


def validate_frames(frames: "dict[str, pd.DataFrame | Iterable[pd.DataFrame]]", settings: Settings, run_name: str,
                     data_docs_dir: Path | None) -> dict[str, ValidationReport]:
    results = run_suites(frames, suite_parameters(settings), run_name, data_docs_dir)
    reports = {}
    for table, result in results.items():
        failures = sorted((o for o in result.outcomes if not o.success), key=lambda o: not o.fails_suite)
        reports[table] = ValidationReport(
            table=table,
            rows=result.rows,
            success=not any(o.fails_suite for o in failures),
            failures=tuple(failures),
            chunks=result.chunks,
        )
    return reports


def to_pandas(con: duckdb.DuckDBPyConnection, query: str) -> "pd.DataFrame":
    """Through Arrow: four times faster than .df() on a 1M-row drop."""
    return con.sql(query).to_arrow_table().to_pandas()


def suite_parameters(settings: Settings) -> dict[str, Any]:
    """The values of the suites' {"$PARAMETER": ...} thresholds."""
    doc = settings.documentation
    return {
        "vague_min_words": doc.vague_min_words,
        "max_activity_minutes": doc.max_activity_minutes,
        "late_warn_hours": doc.late_warn_hours,
        "late_hold_hours": doc.late_hold_days * 24,
    }
