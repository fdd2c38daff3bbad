"""Documentation flags: vague, late, overlapping and impossible entries per
activity version, recorded in quality.flags, and the minutes they hold out of
billing (quality.activity_holds), per sql/quality/flag_<code>.sql, one rule per
file. The SQL half of the quality stage: no GX here.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date
from typing import Any, Iterator

import duckdb

from transforms.settings import Settings
from transforms.warehouse import run_sql, sql_text

# The rules, in the order their files are unioned; each is sql/quality/flag_<code>.sql.
FLAG_CODES = ("vague", "late", "documented_before_activity", "implausible_duration", "overlap", "future_dated")
SEVERITIES = ("hold", "warn")


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
    prepare(con, settings, run_id=run_id, drops=drops, as_of=as_of)
    run_sql(con, "quality/_schema.sql")
    with transaction(con):
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


def prepare(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str = "", drops: list[str] | None = None,
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
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
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
