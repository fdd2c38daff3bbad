"""Documentation quality: flag vague, late, overlapping and impossible entries per
activity, hold their minutes out of billing, and validate each drop's tables
against the GX suites kept in expectations/.

Stage function: `check_documentation` (the CLI and the Airflow DAG call it alike).
It looks only at the drops of this run (the nightly delta) plus, for overlaps,
the current activities of the same staff members that those drops touch.

Tables in: raw.* (rows of the drops checked), staging.activity_versions,
staging.activities, staging.staff. Tables out:
  quality.flags           one row per finding per activity version (history, never deleted)
  quality.activity_holds  minutes held per activity, from its current version's holds
  quality.staff_scorecard per staff member and service month: entries, flagged shares, held minutes
  quality.validated_rows  a hash of every distinct row the suites have validated, per table

Flags are computed in DuckDB (sql/quality/flag_<code>.sql, one rule per file);
GX validates the suites on pandas frames (sql/quality/suite_frames/) and writes
Data Docs. The suites see only rows they have not validated before (a reference
snapshot repeated by every drop is validated once; sql/quality/validation_rows.sql),
in chunks of at most CHUNK_ROWS rows whose results are merged into one per suite,
so memory stays bounded however many drops one run validates.
`validate_table` checks one frame, e.g. a landing file, on its own.
"""
from __future__ import annotations

import logging
import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import duckdb

from transforms.contract import LOAD_ORDER, TABLES
from transforms.gx_suites import ExpectationOutcome, partition_columns, run_suites
from transforms.settings import Settings, load_settings
from transforms.warehouse import run_sql, sql_text

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# The rules, in the order their files are unioned; each is sql/quality/flag_<code>.sql.
FLAG_CODES = ("vague", "late", "documented_before_activity", "implausible_duration", "overlap", "future_dated")
SEVERITIES = ("hold", "warn")

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


# ---------------------------------------------------------------- the stage

def check_documentation(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    drops: list[str],
    as_of: date,
    data_docs_dir: Path,
    chunk_rows: int | None = None,
) -> dict:
    """Flag and hold the activities of `drops`, validate their tables, write Data Docs.

    Runs after ingest and staging. Writes inside the caller's transaction when
    one is open, else in its own. Idempotent: rerunning the same drops restates
    the same flags, never duplicates them.

    The suites see only rows not validated before (quality.validated_rows): a
    reference snapshot repeated by every drop is validated once, then only its
    new and changed rows. A table's rows go to GX in chunks of at most
    `chunk_rows` (default CHUNK_ROWS, or CCM_VALIDATE_CHUNK_ROWS), one result
    per suite. With nothing to validate, GX is not even imported.
    """
    drops = sorted(set(drops))
    data_docs_dir = Path(data_docs_dir)
    # The GX import takes seconds of one core: start it now, to run while DuckDB
    # selects the rows and raises the flags; waited for only if anything is new.
    gx_import = _import_gx_in_background() if drops else None
    chunk_rows = max(1, int(chunk_rows or os.environ.get(CHUNK_ROWS_ENV) or CHUNK_ROWS))
    _prepare(con, settings, run_id=run_id, drops=drops, as_of=as_of)
    run_sql(con, "quality/_schema.sql")
    with _transaction(con):
        rows_in_drops, new_rows = _select_rows_to_validate(con, drops)
        findings = flag_documentation(con, settings, run_id, drops, as_of)
        reports: dict[str, ValidationReport] = {}
        if any(new_rows.values()):
            if gx_import is not None:
                gx_import.join()
            batches = {t: _suite_chunks(con, t, chunk_rows) for t, n in new_rows.items() if n}
            reports = _validate_frames(batches, settings, run_id, data_docs_dir)
        for table in LOAD_ORDER:
            con.execute(f"drop table if exists quality_validation_keys_{table}")
    rows_validated = {t: reports[t].rows if t in reports else 0 for t in LOAD_ORDER}
    for report in reports.values():
        for line in report.errors:
            log.warning("%s", line)
        for line in report.warnings:
            log.info("%s", line)

    return {
        "run_id": run_id,
        "drops": drops,
        "rows_validated": rows_validated,
        # rows of these drops the suites had validated already (repeats of snapshots)
        "rows_already_validated": {t: rows_in_drops[t] - rows_validated[t] for t in LOAD_ORDER},
        **findings,
        "gx_batches": {t: r.chunks for t, r in reports.items()},
        "suites_failed": [
            {"suite": t, "reason": r.errors[0], "failed_expectations": len(r.errors)}
            for t, r in reports.items() if not r.success
        ],
        "suite_warnings": [m for r in reports.values() for m in r.warnings],
        "data_docs_index": str(data_docs_dir / "index.html") if reports else None,
    }


def flag_documentation(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    drops: list[str],
    as_of: date,
) -> dict[str, Any]:
    """The SQL half of the stage: raise and record the flags of `drops`, and
    rebuild quality.activity_holds and quality.staff_scorecard. No GX."""
    drops = sorted(set(drops))
    _prepare(con, settings, run_id=run_id, drops=drops, as_of=as_of)
    run_sql(con, "quality/_schema.sql")
    with _transaction(con):
        run_sql(con, "quality/run_versions.sql")
        run_sql(con, "quality/overlap_scope.sql")
        con.execute(
            "create or replace temp table quality_run_flags as\n"
            + "\nunion all\n".join(f"select * from (\n{sql_text(f'quality/flag_{code}.sql')}\n)" for code in FLAG_CODES)
        )
        run_sql(con, "quality/record_flags.sql")
        run_sql(con, "quality/resolve_flags.sql")
        run_sql(con, "quality/activity_holds.sql")
        run_sql(con, "quality/staff_scorecard.sql")
        return _findings(con)


def _findings(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    by_code = dict(con.execute("select flag_code, count(*) from quality_run_flags group by all").fetchall())
    by_severity = dict(con.execute("select severity, count(*) from quality_run_flags group by all").fetchall())
    held_here, minutes_here = con.execute(
        """
        select count(*), coalesce(sum(held_minutes), 0)
        from quality.activity_holds
        where activity_id in (select activity_id from quality_run_versions
                              union select activity_id from quality_overlap_scope)
        """
    ).fetchall()[0]
    held_all, minutes_all = con.execute(
        "select count(*), coalesce(sum(held_minutes), 0) from quality.activity_holds"
    ).fetchall()[0]
    return {
        "activity_versions_checked": con.execute("select count(*) from quality_run_versions").fetchall()[0][0],
        "flags": {code: int(by_code.get(code, 0)) for code in FLAG_CODES},
        "flags_by_severity": {s: int(by_severity.get(s, 0)) for s in SEVERITIES},
        "activities_held": int(held_here),
        "held_minutes": int(minutes_here),
        "activities_held_total": int(held_all),
        "held_minutes_total": int(minutes_all),
    }


def _select_rows_to_validate(con: duckdb.DuckDBPyConnection, drops: list[str]) -> tuple[dict[str, int], dict[str, int]]:
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


def _suite_chunks(con: duckdb.DuckDBPyConnection, table: str, chunk_rows: int) -> Iterator["pd.DataFrame"]:
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
            frame = _to_pandas(con, f"select * exclude (_chunk_hash) from quality_suite_rows where {where} "
                                    "order by _drop, _row_number")
            if len(frame):
                yield frame
    finally:
        con.execute("drop table if exists quality_suite_rows")


def _import_gx_in_background() -> threading.Thread:
    def load() -> None:
        try:
            import great_expectations  # noqa: F401
        except Exception:  # noqa: BLE001 - run_suites imports it again and reports the error
            pass

    thread = threading.Thread(target=load, name="import-great-expectations", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- one frame

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
        _prepare(mem, settings)
        mem.register("validation_source", source)
        suite_frame = _to_pandas(mem, sql_text(f"quality/suite_frames/{table}.sql"))
    finally:
        mem.close()

    run_name = "validate_table"
    report = _validate_frames({table: suite_frame}, settings, run_name, data_docs_dir)[table]
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


def _validate_frames(frames: "dict[str, pd.DataFrame | Iterable[pd.DataFrame]]", settings: Settings, run_name: str,
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


def _to_pandas(con: duckdb.DuckDBPyConnection, query: str) -> "pd.DataFrame":
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


# ---------------------------------------------------------------- plumbing

def _prepare(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str = "", drops: list[str] | None = None,
             as_of: date | None = None) -> None:
    """Set the variables the quality SQL reads, and create its macros."""
    doc = settings.documentation
    if con.execute("select getvariable('practice_tz')").fetchall()[0][0] is None:
        con.execute("set variable practice_tz = ?", [settings.time_zone])
    values: dict[str, Any] = {
        "quality_run_id": run_id,
        "quality_as_of": as_of,
        "quality_vague_min_words": int(doc.vague_min_words),
        "quality_late_warn_hours": float(doc.late_warn_hours),
        "quality_late_hold_days": float(doc.late_hold_days),
        "quality_max_activity_minutes": int(doc.max_activity_minutes),
        "quality_late_warn_label": f"{_number(doc.late_warn_hours)} hours",
        "quality_late_hold_label": f"{_number(doc.late_hold_days)} days",
    }
    for name, value in values.items():
        if name == "quality_as_of":
            con.execute(f"set variable {name} = ?::date", [value])
        else:
            con.execute(f"set variable {name} = ?", [value])
    con.execute("set variable quality_drops = ?::varchar[]", [list(drops or [])])
    run_sql(con, "quality/_macros.sql")
    pattern, words = _phrase_pattern(con, doc.vague_phrases)
    con.execute("set variable quality_vague_phrases = ?", [pattern])
    con.execute("set variable quality_phrase_words = ?::varchar[]", [words])


def _phrase_pattern(con: duckdb.DuckDBPyConnection, phrases: tuple[str, ...]) -> tuple[str, list[str]]:
    """One regex of the generic phrases, each read exactly as a note is read
    (note_words), longest first, and every word they use. With no phrases:
    '^$', which matches no note that has words."""
    normalised = [
        p for (p,) in con.execute(
            "select distinct array_to_string(note_words(p), ' ') as p from unnest(?::varchar[]) t(p) "
            "where len(note_words(p)) > 0 order by length(p) desc, p",
            [list(phrases)],
        ).fetchall()
    ]
    words = sorted({w for p in normalised for w in p.split(" ")})
    pattern = r"\b(?:" + "|".join(normalised) + r")\b" if normalised else "^$"
    return pattern, words


def _number(value: float) -> str:
    return f"{value:g}"


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Our own transaction, unless the caller already opened one (the pipeline
    does): then the commit or rollback is theirs. A failed BEGIN would abort the
    caller's transaction, so ask instead: outside a transaction every statement
    gets a new txid_current(), inside one they share it."""
    first, second = (con.execute("select txid_current()").fetchall()[0][0] for _ in range(2))
    if first == second:
        yield
        return
    con.begin()
    try:
        yield
    except BaseException:
        con.rollback()
        raise
    con.commit()
