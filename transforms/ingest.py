"""Ingest stage: new drops from the landing area into the append-only raw layer.

Two steps, so that a bad file never touches the warehouse:
  plan_ingest()  finds the drops not loaded yet and checks that every file can be
                 read and has the contract's required columns (no writes);
  load_drops()   types every row, appends good rows to raw.<table> and bad ones
                 to raw.quarantine, and records each file's SHA-256.
Then build_staging() brings staging.* up to date: in full, or for the keys the
new drops touched.

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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from transforms.contract import LOAD_ORDER, TABLES, TableSpec
from transforms.settings import Settings, VendorMapping

log = logging.getLogger(__name__)

FORMATS = {".csv": "csv", ".parquet": "parquet"}


class InputError(Exception):
    """Landing files the run cannot use; str() is one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class LandingFile:
    drop: str
    table: str
    path: Path


@dataclass
class IngestPlan:
    new_drops: list[str]
    skipped_drops: list[str]
    files: list[LandingFile]
    ignored: list[str] = field(default_factory=list)  # files in a drop that name no contract table


# ---------------------------------------------------------------- planning

def loaded_drops(con: duckdb.DuckDBPyConnection | None) -> set[str]:
    if con is None:
        return set()
    try:
        return {r[0] for r in con.execute("select distinct drop_name from raw.loaded_files").fetchall()}
    except duckdb.CatalogException:
        return set()


def _table_for(path: Path, vendor: VendorMapping) -> str | None:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if stem in vendor.files:
        return vendor.files[stem]
    return stem if stem in TABLES else None


def _rename_map(columns: list[str], table: str, vendor: VendorMapping) -> dict[str, str]:
    """Vendor names first, then our own names written with other case or spaces."""
    mapping = vendor.columns.get(table, {})
    renamed = {}
    for col in columns:
        target = mapping.get(col) or mapping.get(col.strip()) or col.strip().lower()
        renamed[col] = target
    return renamed


def _header(lf: LandingFile) -> list[str]:
    if lf.path.suffix == ".parquet":
        return list(pl.read_parquet_schema(lf.path).keys())
    return pl.read_csv(lf.path, n_rows=0, infer_schema=False).columns


def plan_ingest(landing: Path, already_loaded: set[str], settings: Settings) -> IngestPlan:
    """Which drops to load, and whether every one of their files is usable. Writes nothing."""
    landing = Path(landing)
    if not landing.is_dir():
        raise InputError([f"{landing}: landing folder does not exist"])
    drops = sorted(p.name for p in landing.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    plan = IngestPlan(
        new_drops=[d for d in drops if d not in already_loaded],
        skipped_drops=[d for d in drops if d in already_loaded],
        files=[],
    )
    problems: list[str] = []
    # Newest drop wins by name, and ingest stores only what changed since the
    # newest drop loaded: a drop that sorts before it would rewrite history.
    newest_loaded = max(already_loaded, default=None)
    for drop in plan.new_drops:
        if newest_loaded is not None and drop < newest_loaded:
            problems.append(f"{landing / drop}: drop sorts before {newest_loaded}, which is already loaded; "
                            f"drops must arrive in name order (rename it to sort after {newest_loaded})")
        seen: dict[str, Path] = {}
        for path in sorted((landing / drop).iterdir()):
            if path.is_dir() or path.name.startswith("."):
                continue
            table = _table_for(path, settings.vendor) if path.suffix in FORMATS else None
            if table is None or table not in TABLES:
                plan.ignored.append(str(path))
                continue
            if table in seen:
                problems.append(f"{path}: a second file for table {table} in drop {drop} (also {seen[table].name})")
                continue
            seen[table] = path
            lf = LandingFile(drop, table, path)
            try:
                header = _header(lf)
            except Exception as exc:  # polars raises several types for unreadable files
                problems.append(f"{path}: cannot be read ({str(exc).splitlines()[0][:200]})")
                continue
            present = set(_rename_map(header, table, settings.vendor).values())
            for col in TABLES[table].required:
                if col not in present:
                    problems.append(f"{path}: missing required column {col}")
            plan.files.append(lf)
    if problems:
        raise InputError(problems)
    plan.files.sort(key=lambda f: (f.drop, LOAD_ORDER.index(f.table)))
    return plan


# ---------------------------------------------------------------- loading

def _arrow(frame: pl.DataFrame):
    """The frame for DuckDB without copying it (string views, which DuckDB reads as they are)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_strings(lf: LandingFile, settings: Settings) -> pl.DataFrame:
    """The file as text columns named per the contract, with 1-based row numbers."""
    if lf.path.suffix == ".parquet":
        frame = pl.read_parquet(lf.path)
        frame = frame.with_columns(pl.all().cast(pl.String))
    else:
        frame = pl.read_csv(lf.path, infer_schema=False, truncate_ragged_lines=True)
    frame = frame.rename(_rename_map(frame.columns, lf.table, settings.vendor))
    spec = TABLES[lf.table]
    missing_optional = [c for c in spec.columns if c not in frame.columns]
    frame = frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in missing_optional])
    return frame.select(spec.columns).with_row_index("_row_number", offset=1)


def _quoted(columns) -> str:
    return ", ".join(f'"{c}"' for c in columns)


@dataclass(frozen=True)
class TypedSelect:
    typed_rows: str    # SELECT over `source`: typed columns, _row_number, _bad, _key_hash, _row_hash, _text_hash
    problem_rows: str  # SELECT over `source`: one row per problem of the bad rows of `parsed`
    key_hash: str      # expression over the landing text: hash of the typed key, as _key_hash
    text_hash: str     # expression over the landing text: _text_hash


def _typed_select(spec: TableSpec, types: dict[str, str], time_zone: str, source: str = "landing_rows") -> TypedSelect:
    """SELECTs over the landing text: the typed rows with a `_bad` flag and the
    fingerprints raw.latest_<table> keeps (sql/raw/_latest_versions.sql), and,
    for bad rows only (few), one row per problem with its column and reason.

    _text_hash fingerprints the landing text together with the typing rules and
    the time zone that read it: equal text under equal rules types the same, so
    a row whose _text_hash is its key's latest need not be typed at all.

    DuckDB's TRY_CAST to TIMESTAMPTZ reads a naive timestamp in the session time
    zone (set to practice time by warehouse.connect) and an offset one as given.
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
        elif col == "icd10_code":
            text = f"upper(replace({text}, '.', ''))"
        elif col == "role":
            text = f"lower({text})"
        if sql_type == "VARCHAR":
            expr = f"coalesce({t}, 'active')" if col == "status" else t
        elif sql_type == "INTEGER":
            # whole numbers only: TRY_CAST would round '12.5' to 13, and minutes are never rounded
            expr = f"case when regexp_full_match({t}, '[+-]?[0-9]+') then cast({t} as integer) end"
            problems.append((f"{t} is not null and {q} is null", col, "not a whole number"))
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

    any_problem = " or ".join(f"coalesce({cond}, false)" for cond, _, _ in problems) or "false"
    rules = hashlib.sha256(f"{texts}|{typed}|{any_problem}|{time_zone}".encode()).hexdigest()[:16]
    text_hash = f"hash('{rules}', {_quoted(spec.columns)})"
    key_hash = f"hash({', '.join(typed_from_landing[k] for k in spec.key)})"
    typed_rows = (
        f"select {_quoted(spec.columns)}, _row_number, _text_hash, {any_problem} as _bad, "
        f"hash({_quoted(spec.key)}) as _key_hash, hash({_quoted(spec.columns)}) as _row_hash "
        f"from (select *, {', '.join(typed)} "
        f"      from (select {', '.join(texts)}, _row_number, {text_hash} as _text_hash from {source}))"
    )
    listed = ", ".join(f"case when coalesce({cond}, false) then {{'column': '{col}', 'reason': '{reason}'}} end"
                       for cond, col, reason in problems)
    key = " || '|' || ".join(f"coalesce(trim(\"{k}\"), '')" for k in spec.key)
    problem_rows = (
        f"select _row_number, _record_key as record_key, "
        f"unnest(list_filter([{listed}], lambda p: p is not null)) as problem "
        f"from (select *, {', '.join(typed)} "
        f"      from (select {', '.join(texts)}, _row_number, {key} as _record_key from {source} "
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
            f"arg_max(hash({_quoted(spec.columns)}), (_drop, _row_number)), null "
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
    loaded_files, loaded_file_rows = [], []
    for lf in files:
        frame = _read_strings(lf, settings)
        spec = TABLES[lf.table]
        select = _typed_select(spec, types[lf.table], settings.time_zone, source="unseen_rows")
        latest = f"raw.latest_{lf.table}"
        # Screen on the text first: a row whose text (under the same typing rules)
        # is that of its key's newest stored version is unchanged, and is not
        # typed. A key repeated within the file always goes the long way (its
        # rows compare with each other, in file order).
        con.register("landing_rows", _arrow(frame))
        unseen = con.execute(f"""
            with screened as materialized (
                select _row_number, {select.key_hash} as _key_hash, {select.text_hash} as _text_hash
                from landing_rows
            ),
            repeated_keys as (
                select _key_hash from screened group by _key_hash having count(*) > 1
            )
            select s._row_number - 1 as row_index
            from screened s
            left join {latest} l using (_key_hash)
            where l._text_hash is distinct from s._text_hash
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
        loaded_file_rows.append([lf.drop, lf.table, frame.height, new, stored - new, good - stored, bad_rows, run_id])
        counts[lf.table] = (stored, good - stored)
        bad_total += bad_rows
        log.info("loaded %s/%s: %d rows stored, %d unchanged, %d quarantined",
                 lf.drop, lf.path.name, stored, good - stored, bad_rows)
    con.executemany("insert into raw.loaded_files values (?, ?, ?, ?, ?, ?, ?, ?, ?)", loaded_files)
    con.executemany("insert into raw.loaded_file_rows values (?, ?, ?, ?, ?, ?, ?, ?)", loaded_file_rows)
    return counts, bad_total, lines


def _store_unseen(con, lf: LandingFile, spec: TableSpec, select: TypedSelect, rows: pl.DataFrame, run_id: str,
                  lines: list[str]) -> tuple[int, int, int]:
    """Type the rows the text screen did not recognise; store the new and changed
    ones, quarantine the bad ones. Returns (stored, of which new keys, bad)."""
    latest = f"raw.latest_{lf.table}"
    con.register("unseen_rows", _arrow(rows))
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
            f"insert into raw.{lf.table} select {_quoted(spec.columns)}, ?, ?, _row_number, ? from changed",
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
            lines.append(f"{lf.path}: row {row}, column {column}: {reason}")
    con.unregister("unseen_rows")
    return stored, new, bad_rows


STAGING_TABLES = (*LOAD_ORDER, "activity_versions", "rejected_rows")


def build_staging(con: duckdb.DuckDBPyConnection, incremental: bool = False) -> dict:
    """Current state per key (newest drop wins, voids out, unknown patients and
    staff held in staging.rejected_rows).

    Full (the default, and whenever staging is incomplete): every table from all
    of raw, sql/staging/<table>.sql. Incremental: only the keys that the drops
    loaded since staging was last built touch, plus the rows that waited for a
    patient or staff member those drops describe (sql/staging/incremental/).
    staging.staged_drops records which loaded drops staging reflects, so a run
    that failed between loading and staging is caught up by the next one.
    """
    from transforms.warehouse import run_sql, table_exists

    # staging built before staging.staged_drops existed is rebuilt in full once
    complete = all(table_exists(con, "staging", t) for t in (*STAGING_TABLES, "staged_drops"))
    con.execute("create table if not exists staging.staged_drops "
                "(drop_name varchar primary key, staged_at timestamptz not null)")
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
            run_sql(con, "staging/incremental/_scope.sql")
            for table in LOAD_ORDER:
                run_sql(con, f"staging/incremental/{table}.sql")
            for temp in ("staging_pending_drops", "new_patients", "new_staff", *(f"recheck_{t}" for t in LOAD_ORDER)):
                con.execute(f"drop table {temp}")
    else:
        mode = "full"
        pending = loaded
        for table in LOAD_ORDER:
            run_sql(con, f"staging/{table}.sql")
        con.execute("delete from staging.staged_drops")
    if pending:
        con.execute("insert into staging.staged_drops select unnest(?::varchar[]), now()", [pending])
    counts = {t: con.execute(f"select count(*) from staging.{t}").fetchone()[0] for t in LOAD_ORDER}
    counts["rejected_rows"] = con.execute("select count(*) from staging.rejected_rows").fetchone()[0]
    counts["mode"] = mode
    return counts
