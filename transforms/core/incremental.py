"""Incremental core builds: a night recomputes only the patient-months whose inputs changed.

Every core model relates rows of one patient-month only (minutes, consent,
eligibility, codes), given that a change to a patient's reference data
(conditions, consents, care plans, encounters) may change any of their months;
what is global is the staff table, the rules of each year, the practice's
settings and the model SQL itself. So:

* The minutes stage works out which patient-months changed since its last
  build (sql/core/_touched_months.sql: the months of new or amended activities,
  before and after; months of changed documentation holds; every month of a
  patient whose reference rows changed) and adds them to core.build_months. It
  rebuilds everything instead when it has never built, when its fingerprint
  (model SQL, consent methods) changed, when a staff member's role or NPI
  changed (core.staff_applied), or when more than FULL_BUILD_SHARE of all
  patient-months changed.
* The codes stage recomputes the patient-months in core.build_months and then
  empties it, or everything when the minutes stage did a full build since, or
  its own fingerprint (model SQL, published rules, billing-provider map, grace
  days, date-of-service rule) changed. Months that closed because as_of moved
  are refreshed for every row (sql/core/as_of_refresh.sql).

A model file starts its statement with `create or replace table core.<name> as`
and filters its sources with in_build(patient_id, service_month). A full build
runs the file as written with in_build true; an incremental build makes it
"in core.build_months", deletes those rows and inserts the model's rows for
them instead. Either way the result is
the same table: tests/test_incremental.py checks that night by night against a
full rebuild.
"""
from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone

import duckdb

from transforms.warehouse import run_sql, sql_text, table_exists

# Above this share of patient-months in scope a full rebuild is cheaper than delete + insert.
FULL_BUILD_SHARE = 0.5
_HEADER = re.compile(r"^create or replace table (core\.\w+) as$", re.MULTILINE)


def fingerprint(models: tuple[str, ...], *parts: object) -> str:
    digest = hashlib.sha256()
    for model in models:
        digest.update(sql_text(model).encode("utf-8"))
    for part in parts:
        digest.update(repr(part).encode("utf-8"))
    return digest.hexdigest()


# What of a staff row the core models read: any change rebuilds every month (rare;
# the credential and supervisor are evidence every month of their patients shows).
STAFF_APPLIED = "staff_id, role_class, npi, credential, supervising_npi, _absent_columns"

RAW_TABLES = ("patients", "staff", "conditions", "consents", "care_plans", "encounters", "activities")


def raw_signature(con: duckdb.DuckDBPyConnection) -> list[str]:
    """`table:drop:rows` for every drop in raw. Raw is append-only and a drop is
    stored whole or not at all, so a drop whose entry is new since the last
    build holds rows that build has not seen."""
    union = " union all ".join(
        f"select '{t}' as t, _drop, count(*) as n from raw.{t} group by _drop" for t in RAW_TABLES)
    return [f"{t}:{d}:{n}" for t, d, n in con.execute(f"select * from ({union}) order by 1, 2").fetchall()]


def _state(con: duckdb.DuckDBPyConnection, stage: str) -> tuple[str, list[str], bool] | None:
    row = con.execute("select fingerprint, built_drops, full_pending from core.build_state where stage = ?",
                      [stage]).fetchone()
    return (row[0], list(row[1]), bool(row[2])) if row else None


def _save_state(con: duckdb.DuckDBPyConnection, stage: str, fp: str, drops: list[str], full_pending: bool) -> None:
    con.execute("insert or replace into core.build_state values (?, ?, ?, ?, ?)",
                [stage, fp, drops, full_pending, datetime.now(timezone.utc)])


def _fill_scope_with_everything(con: duckdb.DuckDBPyConnection) -> None:
    """A full build filters nothing (in_build is `true`); core.build_months is left empty."""
    con.execute("delete from core.build_months")


def plan_minutes(con: duckdb.DuckDBPyConnection, fp: str, models: tuple[str, ...]) -> dict:
    """Decide full or incremental for the minutes stage and fill core.build_months."""
    run_sql(con, "core/_build_state.sql")
    drops = raw_signature(con)
    state = _state(con, "minutes")
    reason = None
    if state is None or not all(table_exists(con, "core", _table(m)) for m in models):
        reason = "first build"
    elif state[0] != fp:
        reason = "model SQL or settings changed"
    else:
        new = set(drops) - set(state[1])
        con.execute("set variable new_drops = ?::varchar[]", [sorted({e.split(":", 1)[1].rsplit(":", 1)[0] for e in new})])
        if con.execute(f"""
                select count(*) from (
                    (select {STAFF_APPLIED} from staging.staff
                     except all select {STAFF_APPLIED} from core.staff_applied)
                    union all
                    (select {STAFF_APPLIED} from core.staff_applied
                     except all select {STAFF_APPLIED} from staging.staff))""").fetchone()[0]:
            reason = "staff roles, NPIs or credentials changed"
    if reason:
        _fill_scope_with_everything(con)
        return {"mode": "full", "reason": reason, "patient_months": _everything_size(con), "drops": drops}
    run_sql(con, "core/_touched_months.sql")
    con.execute("insert or ignore into core.build_months select patient_id, service_month from touched_months "
                "where patient_id is not null and service_month is not null")
    scope, everything = con.execute("select (select count(*) from core.build_months), "
                                    "(select count(*) from core.patient_month_minutes)").fetchone()
    if scope > FULL_BUILD_SHARE * everything:  # deleting and reinserting most rows costs more than rebuilding
        _fill_scope_with_everything(con)
        return {"mode": "full", "reason": "most patient-months changed", "patient_months": _everything_size(con),
                "drops": drops}
    return {"mode": "incremental", "reason": None, "patient_months": scope, "drops": drops}


def finish_minutes(con: duckdb.DuckDBPyConnection, fp: str, plan: dict) -> None:
    """Remember what this build saw; a full minutes build makes the next codes build full too."""
    con.execute("delete from core.staff_applied")
    con.execute(f"insert into core.staff_applied ({STAFF_APPLIED}) select {STAFF_APPLIED} from staging.staff")
    con.execute("create or replace table core.holds_applied as select activity_id, "
                "sum(greatest(held_minutes, 0))::integer as held_minutes from quality.activity_holds group by all")
    codes = _state(con, "codes")
    if plan["mode"] == "full" and codes is not None:
        _save_state(con, "codes", codes[0], codes[1], True)
    _save_state(con, "minutes", fp, plan["drops"], False)


def plan_codes(con: duckdb.DuckDBPyConnection, fp: str, models: tuple[str, ...]) -> dict:
    run_sql(con, "core/_build_state.sql")
    state = _state(con, "codes")
    reason = None
    if state is None or not all(table_exists(con, "core", _table(m)) for m in models):
        reason = "first build"
    elif state[0] != fp:
        reason = "model SQL, rules or settings changed"
    elif state[2]:
        reason = "minutes were rebuilt in full"
    if reason:
        _fill_scope_with_everything(con)
        return {"mode": "full", "reason": reason, "patient_months": _everything_size(con)}
    return {"mode": "incremental", "reason": None, "patient_months": _scope_size(con)}


def scope_timely_filing_changes(con: duckdb.DuckDBPyConnection) -> int:
    """Months whose timely-filing status changes with tonight's as_of (one passing its
    filing limit bills nothing from tonight on) are recomputed whole: add them to
    core.build_months. Returns how many were added."""
    before = _scope_size(con)
    con.execute("""
        insert or ignore into core.build_months
        select patient_id, service_month
        from core.patient_month
        where timely_filing_deadline is not null
          and timely_filing_status is distinct from case
                when getvariable('as_of') > timely_filing_deadline then 'past'
                when getvariable('as_of') > timely_filing_warn_from then 'due_soon'
                else 'ok' end
    """)
    return _scope_size(con) - before


def finish_codes(con: duckdb.DuckDBPyConnection, fp: str) -> None:
    con.execute("delete from core.build_months")
    _save_state(con, "codes", fp, [], False)


def materialise(con: duckdb.DuckDBPyConnection, model: str, mode: str) -> None:
    """Run one model file: as written for every patient-month (full), or replacing only
    the rows of core.build_months. Models filter with in_build(patient_id, service_month),
    a macro that is `true` in a full build, so the optimizer drops the filter altogether
    (a semi join on every patient-month doubled the full build's time at 10M)."""
    text = sql_text(model)
    if mode == "full":
        con.execute("create or replace temp macro in_build(p, m) as true")
        con.execute(text)
        return
    con.execute("create or replace temp macro in_build(p, m) as "
                "(p, m) in (select patient_id, service_month from core.build_months)")
    headers = _HEADER.findall(text)
    if len(headers) != 1:
        raise ValueError(f"sql/{model}: an incremental model needs exactly one "
                         f"'create or replace table core.<name> as' line")
    table = headers[0]
    prelude, query = _HEADER.split(text, maxsplit=1)[0], _HEADER.split(text, maxsplit=1)[2]
    if any(ln.strip() and not ln.lstrip().startswith("--") for ln in prelude.splitlines()):
        con.execute(prelude)
    con.execute(f"delete from {table} where (patient_id, service_month) in "
                f"(select patient_id, service_month from core.build_months)")
    con.execute(f"insert into {table} {query}")


def _table(model: str) -> str:
    headers = _HEADER.findall(sql_text(model))
    return headers[0].split(".", 1)[1] if headers else model.rsplit("/", 1)[-1].removesuffix(".sql")


def _scope_size(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("select count(*) from core.build_months").fetchone()[0])


def _everything_size(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("select count(*) from (select distinct patient_id, service_month from "
                           "staging.activity_versions where patient_id is not null)").fetchone()[0])
