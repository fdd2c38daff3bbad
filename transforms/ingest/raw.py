"""Raw loads: the planned drops, typed, into the append-only raw layer.

load_drops() types every row in DuckDB, appends good rows to raw.<table> and
bad ones to raw.quarantine, and records each file's SHA-256 (raw.loaded_files).

Raw stores only what changed. Drops overlap and carry full reference
snapshots, so most rows of a drop repeat the current version of their key: such
a row is counted (raw.loaded_file_rows) but not stored again. "Current" is the
newest stored version as of the rows before it, in drop order and file order,
so a key changed and changed back stores the newest drop's row. The comparison
uses fingerprints kept per key in raw.latest_<table>: first of the landing text
(an identical line needs no typing), then of the typed values.
"""
from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import polars as pl

from transforms.billing.ledger import fault
from transforms.contract import CONSENT_ELEMENTS, LOAD_ORDER, TABLES, TableSpec
from transforms.ingest.plan import InputError, IngestPlan, LandingFile, drop_date
from transforms.ingest.readers import UnreadableFile, absent_evidence, arrow, read_strings, sha256_file
from transforms.settings import Settings

log = logging.getLogger(__name__)




def _quoted(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


@dataclass(frozen=True)
class TypedSelect:
    typed_rows: str    # SELECT over `source`: typed columns, _row_number, _bad, _key_hash, _row_hash, _text_hash
    problem_rows: str  # SELECT over `source`: one row per problem of the bad rows of `parsed`
    key_hash: str      # expression over the landing text: hash of the typed key, as _key_hash
    text_hash: str     # expression over the landing text: _text_hash


def hashed_columns(spec: TableSpec) -> tuple[str, ...]:
    """The columns a row's fingerprint covers: the contract's, and for a table with evidence
    columns which of them its file lacked, so that the same values read from a file that
    has the column (empty: missing evidence) are a new version of the row."""
    return (*spec.columns, "_absent_columns") if spec.evidence else spec.columns


def _typed_select(spec: TableSpec, types: dict[str, str], time_zone: str, source: str = "landing_rows",
                  absent: list[str] | None = None) -> TypedSelect:
    """SELECTs over the landing text: the typed rows with a `_bad` flag and the
    fingerprints raw.latest_<table> keeps (sql/raw/_latest_versions.sql), and,
    for bad rows only (few), one row per problem with its column and reason.

    _text_hash fingerprints the landing text together with the typing rules and
    the time zone that read it: equal text under equal rules types the same, so
    a row whose _text_hash is its key's latest need not be typed at all.

    DuckDB's TRY_CAST to TIMESTAMPTZ reads a naive timestamp in the session time
    zone (set to practice time by warehouse.connect) and an offset one as given.

    `absent`: the table's evidence columns this file lacks, stored with every row
    (raw.<table>._absent_columns) and part of both fingerprints.
    """
    texts: list[str] = []  # each column's landing text, trimmed and normalised, as "_t_<column>"
    typed: list[str] = []  # each column typed from its "_t_<column>"
    typed_from_landing: dict[str, str] = {}  # the same, straight from the landing column (for the key)
    problems: list[tuple[str, str, str]] = []  # (condition over "_t_<column>" and the typed column, column, reason)
    for col in spec.columns:
        q, t = f'"{col}"', f'"_t_{col}"'
        text = f"nullif(trim({q}), '')"
        sql_type = types[col]
        if col in spec.vocab:
            text = f"upper({text})" if col == "sex" else f"lower({text})"
        elif col in ("icd10_code", "focus_icd10"):
            text = f"upper(replace({text}, '.', ''))"
        elif col == "elements_explained":
            # a set: lower case, trimmed, sorted, each once, ';'-separated
            text = (f"nullif(array_to_string(list_sort(list_distinct(list_filter(list_transform("
                    f"string_split(lower({text}), ';'), lambda e: trim(e)), lambda e: e <> ''))), ';'), '')")
        elif col == "role":
            text = f"lower({text})"
        if sql_type == "VARCHAR":
            expr = f"coalesce({t}, 'active')" if col == "status" else t
        elif sql_type == "INTEGER":
            # whole numbers only: TRY_CAST would round '12.5' to 13, and minutes are never rounded
            whole = f"regexp_full_match({t}, '[+-]?[0-9]+')"
            expr = f"case when {whole} then try_cast({t} as integer) end"
            problems.append((f"{t} is not null and {q} is null and not {whole}", col, "not a whole number"))
            problems.append((f"{q} is null and {whole}", col, "a whole number too large to be true"))
        elif sql_type == "BOOLEAN":
            expr = f"try_cast(lower({t}) as boolean)"
            problems.append((f"{t} is not null and {q} is null", col, "not true/false"))
        elif sql_type == "DATE":
            expr = f"case when regexp_full_match({t}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') then try_cast({t} as date) end"
            problems.append((f"{t} is not null and {q} is null", col, "not a date (YYYY-MM-DD)"))
        elif sql_type.startswith("TIMESTAMP"):
            expr = f"try_cast({t} as timestamptz)"
            problems.append((f"{t} is not null and {q} is null", col, "not an ISO 8601 timestamp"))
        else:
            raise ValueError(f"sql/raw/{spec.name}.sql: type {sql_type} of {col} has no parser")
        # a NUL byte is binary data, not text (and no id, date or name holds one)
        problems.append((f"strpos({t}, chr(0)) > 0", col, "holds a NUL byte (binary data, not text)"))
        texts.append(f"{text} as {t}")
        typed.append(f"{expr} as {q}")
        typed_from_landing[col] = expr.replace(t, f"({text})")
        if col not in spec.optional and col != "status":
            problems.append((f"{t} is null", col, "missing value"))
        if col in spec.vocab:
            allowed = ", ".join(f"'{v}'" for v in spec.vocab[col])
            problems.append((f"{t} is not null and {t} not in ({allowed})", col,
                             f"not one of {'/'.join(spec.vocab[col])}"))
    if spec.name == "activities":
        problems.append(('try_cast("_t_duration_minutes" as integer) < 0', "duration_minutes", "negative minutes"))
    if "elements_explained" in spec.columns:
        allowed = ", ".join(f"'{e}'" for e in CONSENT_ELEMENTS)
        problems.append((f'"_t_elements_explained" is not null and not list_bool_and(list_transform('
                         f'string_split("_t_elements_explained", \';\'), lambda e: e in ({allowed})))',
                         "elements_explained", f"not a list (; between) of {'/'.join(CONSENT_ELEMENTS)}"))
    if spec.name == "patients":
        # the export was written on the drop's date: a patient cannot be born after it
        problems.append(('"birth_date" > getvariable(\'ingest_drop_date\')', "birth_date",
                         "in the future (after the drop's date)"))

    # A ragged row (more or fewer fields than the header) is bad whatever its values
    # say: they may have shifted into other columns. Its one problem is that.
    any_problem = " or ".join(["_ragged is not null", *(f"coalesce({cond}, false)" for cond, _, _ in problems)])
    absent_sql = "[" + ", ".join(f"'{c}'" for c in sorted(absent or [])) + "]::varchar[]"
    presence = f"|{absent_sql}" if spec.evidence else ""
    rules = hashlib.sha256(f"{texts}|{typed}|{any_problem}|{time_zone}{presence}".encode()).hexdigest()[:16]
    text_hash = f"hash('{rules}', {_quoted(spec.columns)})"
    key_hash = f"hash({', '.join(typed_from_landing[k] for k in spec.key)})"
    absent_column = f", {absent_sql} as _absent_columns" if spec.evidence else ""
    typed_rows = (
        f"select {_quoted(hashed_columns(spec))}, _row_number, _text_hash, {any_problem} as _bad, "
        f"hash({_quoted(spec.key)}) as _key_hash, hash({_quoted(hashed_columns(spec))}) as _row_hash "
        f"from (select *, {', '.join(typed)}{absent_column} "
        f"      from (select {', '.join(texts)}, _row_number, _ragged, {text_hash} as _text_hash from {source}))"
    )
    listed = ", ".join(f"case when coalesce({cond}, false) then "
                       f"{{'column': '{col}', 'reason': '{reason.replace(chr(39), chr(39) * 2)}'}} end"
                       for cond, col, reason in problems)
    key = " || '|' || ".join(f"coalesce(trim(\"{k}\"), '')" for k in spec.key)
    problem_rows = (
        f"select _row_number, case when _ragged is null then _record_key end as record_key, "
        f"unnest(case when _ragged is not null then [{{'column': null::varchar, 'reason': _ragged}}] "
        f"            else list_filter([{listed}], lambda p: p is not null) end) as problem "
        f"from (select *, {', '.join(typed)} "
        f"      from (select {', '.join(texts)}, _row_number, _ragged, {key} as _record_key from {source} "
        f"            where _row_number in (select _row_number from parsed where _bad)))"
    )
    return TypedSelect(typed_rows, problem_rows, key_hash, text_hash)


def _ensure_latest(con: duckdb.DuckDBPyConnection) -> None:
    """Fill raw.latest_<table> from raw for a warehouse loaded before it existed."""
    for table in LOAD_ORDER:
        if con.execute(f"select count(*) from (select 1 from raw.latest_{table} limit 1)").fetchone()[0]:
            continue
        if not con.execute(f"select count(*) from (select 1 from raw.{table} limit 1)").fetchone()[0]:
            continue
        spec = TABLES[table]
        con.execute(
            f"insert into raw.latest_{table} "
            f"select hash({_quoted(spec.key)}) as _key_hash, "
            f"arg_max(hash({_quoted(hashed_columns(spec))}), (_drop, _row_number)), null "
            f"from raw.{table} group by _key_hash"
        )


def load_drops(
    con: duckdb.DuckDBPyConnection, plan: IngestPlan, settings: Settings, run_id: str, strict: bool = False
) -> dict:
    """Append the planned drops to raw.*; bad rows go to raw.quarantine with their reason.

    Each drop is one transaction, in drop order: a drop is stored whole or not
    at all, and memory stays bounded by one drop. A failure keeps the complete
    drops before it (the next run goes on from there) and nothing of its own.
    A row identical to the current version of its key (as of the drops before
    it) is counted in raw.loaded_file_rows and not stored again.
    """
    rows_loaded = {t: 0 for t in LOAD_ORDER}
    rows_unchanged = {t: 0 for t in LOAD_ORDER}
    quarantined = 0
    by_drop: dict[str, list[LandingFile]] = {}
    for lf in plan.files:
        by_drop.setdefault(lf.drop, []).append(lf)
    types = {
        t: dict(con.execute("select column_name, data_type from information_schema.columns "
                            "where table_schema = 'raw' and table_name = ?", [t]).fetchall())
        for t in LOAD_ORDER
    }
    if plan.files:
        con.begin()
        try:
            _ensure_latest(con)
        except BaseException:
            con.rollback()
            raise
        con.commit()
    # Checksums on the other core while DuckDB types the rows (hashlib releases the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        checksums = {lf.path: pool.submit(sha256_file, lf.path) for lf in plan.files}
        try:
            for drop, files in by_drop.items():
                con.begin()
                try:
                    counts, bad_rows, lines = _load_drop(con, files, types, settings, run_id, checksums)
                    if strict and lines:
                        raise InputError(lines + [f"--strict: bad rows are fatal; nothing of drop {drop} was stored"])
                except BaseException:
                    con.rollback()
                    raise
                con.commit()
                fault("mid_ingest")  # crash tests: this drop is stored, the next ones are not
                for table, (stored, unchanged) in counts.items():
                    rows_loaded[table] += stored
                    rows_unchanged[table] += unchanged
                quarantined += bad_rows
        finally:
            for future in checksums.values():
                future.cancel()
    for temp in ("parsed", "changed", "problems"):
        con.execute(f"drop table if exists {temp}")
    return {
        "drops_empty": list(plan.empty_drops),
        "drops_loaded": list(plan.new_drops),
        "drops_skipped": list(plan.skipped_drops),
        "rows_loaded": rows_loaded,
        "rows_unchanged": rows_unchanged,
        "rows_quarantined": quarantined,
        "files_ignored": list(plan.ignored),
    }


def _load_drop(con, files: list[LandingFile], types: dict, settings: Settings, run_id: str, checksums: dict):
    counts: dict[str, tuple[int, int]] = {}
    bad_total = 0
    lines: list[str] = []
    loaded_files, loaded_file_rows, file_columns = [], [], []
    # the drop's date (planning checked its name): what "in the future" is judged against
    con.execute(f"set variable ingest_drop_date = date '{drop_date(files[0].drop).isoformat()}'")
    for lf in files:
        try:
            frame = read_strings(lf, settings)
        except UnreadableFile as exc:  # changed since planning read it: this drop rolls back
            raise InputError([f"{exc}; nothing of drop {lf.drop} was stored"]) from None
        spec = TABLES[lf.table]
        absent = absent_evidence(lf, settings) if spec.evidence else []
        select = _typed_select(spec, types[lf.table], settings.time_zone, source="unseen_rows", absent=absent)
        latest = f"raw.latest_{lf.table}"
        # Screen on the text first: a row whose text (under the same typing rules)
        # is that of its key's newest stored version is unchanged, and is not
        # typed. A key repeated within the file always goes the long way (its
        # rows compare with each other, in file order).
        con.register("landing_rows", arrow(frame))
        unseen = con.execute(f"""
            with screened as materialized (
                select _row_number, _ragged, {select.key_hash} as _key_hash, {select.text_hash} as _text_hash
                from landing_rows
            ),
            repeated_keys as (
                select _key_hash from screened group by _key_hash having count(*) > 1
            )
            select s._row_number - 1 as row_index
            from screened s
            left join {latest} l using (_key_hash)
            where l._text_hash is distinct from s._text_hash
               or s._ragged is not null
               or s._key_hash in (select _key_hash from repeated_keys)
            order by 1
        """).fetchnumpy()["row_index"]
        con.unregister("landing_rows")
        stored = new = bad_rows = 0
        if len(unseen):
            rows = frame if len(unseen) == frame.height else frame[pl.Series(unseen, dtype=pl.Int64)]
            stored, new, bad_rows = _store_unseen(con, lf, spec, select, rows, run_id, lines)
        good = frame.height - bad_rows
        loaded_files.append([lf.drop, lf.table, lf.path.name, checksums[lf.path].result(), frame.height, stored,
                             bad_rows, run_id, datetime.now(timezone.utc)])
        if spec.evidence:
            file_columns.append([lf.drop, lf.table, absent, run_id])
        loaded_file_rows.append([lf.drop, lf.table, frame.height, new, stored - new, good - stored, bad_rows, run_id])
        counts[lf.table] = (stored, good - stored)
        bad_total += bad_rows
        log.info("loaded %s/%s: %d rows stored, %d unchanged, %d quarantined",
                 lf.drop, lf.path.name, stored, good - stored, bad_rows)
    con.executemany("insert into raw.loaded_files values (?, ?, ?, ?, ?, ?, ?, ?, ?)", loaded_files)
    if file_columns:
        con.executemany("insert into raw.loaded_file_columns values (?, ?, ?, ?)", file_columns)
    con.executemany("insert into raw.loaded_file_rows values (?, ?, ?, ?, ?, ?, ?, ?)", loaded_file_rows)
    return counts, bad_total, lines


def _store_unseen(con, lf: LandingFile, spec: TableSpec, select: TypedSelect, rows: pl.DataFrame, run_id: str,
                  lines: list[str]) -> tuple[int, int, int]:
    """Type the rows the text screen did not recognise; store the new and changed
    ones, quarantine the bad ones. Returns (stored, of which new keys, bad)."""
    latest = f"raw.latest_{lf.table}"
    con.register("unseen_rows", arrow(rows))
    con.execute(f"create or replace temp table parsed as {select.typed_rows}")
    # Keep a good row when it differs from the version before it: the row
    # before it in this file with the same key, else the newest stored one.
    con.execute(f"""
        create or replace temp table changed as
        with good as (
            select *, lag(_row_hash) over (partition by _key_hash order by _row_number) as _previous_in_file
            from parsed
            where not _bad
        )
        select g.* exclude (_bad, _previous_in_file),
               g._previous_in_file is null and l._row_hash is null as _new_key
        from good g
        left join {latest} l using (_key_hash)
        where g._row_hash is distinct from coalesce(g._previous_in_file, l._row_hash)
    """)
    typed, bad_rows, stored, new = con.execute(
        "select (select count(*) from parsed), (select count(*) from parsed where _bad), "
        "(select count(*) from changed), (select count(*) from changed where _new_key)"
    ).fetchone()
    if stored:
        con.execute(
            f"insert into raw.{lf.table} ({_quoted(hashed_columns(spec))}, _drop, _file, _row_number, _run_id) "
            f"select {_quoted(hashed_columns(spec))}, ?, ?, _row_number, ? from changed",
            [lf.drop, lf.path.name, run_id],
        )
    if typed > bad_rows:
        # the key's newest version is now its last good row here (stored or not)
        con.execute(f"delete from {latest} where _key_hash in (select _key_hash from parsed where not _bad)")
        con.execute(f"insert into {latest} "
                    f"select _key_hash, arg_max(_row_hash, _row_number), arg_max(_text_hash, _row_number) "
                    f"from parsed where not _bad group by _key_hash")
    if bad_rows:
        con.execute(f"create or replace temp table problems as {select.problem_rows}")
        con.execute(
            "insert into raw.quarantine select ?, ?, ?, _row_number, problem.column, problem.reason, record_key, ? "
            "from problems", [lf.drop, lf.table, lf.path.name, run_id],
        )
        for row, column, reason in con.execute(
            "select _row_number, problem.column, problem.reason from problems order by 1 limit 20"
        ).fetchall():
            lines.append(f"{lf.path}: row {row}" + (f", column {column}" if column else "") + f": {reason}")
    con.unregister("unseen_rows")
    return stored, new, bad_rows


