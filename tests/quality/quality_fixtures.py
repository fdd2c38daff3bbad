"""A tiny warehouse for the documentation checks: raw rows inserted directly
(as ingest would have typed them), staging built, then the quality stage run."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb

from transforms.settings import load_settings
from transforms.ingest import staging
from transforms.warehouse import connect, ensure_schema

TZ = "America/New_York"
SETTINGS = load_settings()

# The two notes of the domain rules (ccm-rules.md, "Documentation").
VAGUE_NOTE = "Patient call - 5 minutes"
SPECIFIC_NOTE = (
    "Discussed medication side effects and reviewed blood pressure log. "
    "Adjusted timing of evening dose. Duration: 8 minutes."
)


def new_warehouse(folder: Path) -> duckdb.DuckDBPyConnection:
    con = connect(folder / "w.duckdb", TZ)
    ensure_schema(con)
    return con


def _next_row(con: duckdb.DuckDBPyConnection, table: str, drop: str) -> int:
    return con.execute(f"select coalesce(max(_row_number), 0) + 1 from raw.{table} where _drop = ?", [drop]).fetchall()[0][0]


def add_patient(con, drop: str, patient_id: str = "P1", mbi: str = "1EG4TE5MK73") -> None:
    con.execute(
        "insert into raw.patients values (?, ?, 'Ada', 'Lovelace', date '1950-01-02', 'F', '1 Elm St', null, "
        "'Springfield', 'PA', '19064', 'medicare_part_b', ?, 'patients.csv', ?, 'run-test')",
        [patient_id, mbi, drop, _next_row(con, "patients", drop)],
    )


def add_staff(con, drop: str, staff_id: str = "S1", role: str = "rn", npi: str | None = None,
              full_name: str = "Rita Nurse") -> None:
    con.execute(
        "insert into raw.staff (staff_id, full_name, role, npi, _drop, _file, _row_number, _run_id) "
        "values (?, ?, ?, ?, ?, 'staff.csv', ?, 'run-test')",
        [staff_id, full_name, role, npi, drop, _next_row(con, "staff", drop)],
    )


def add_activity(
    con,
    drop: str,
    activity_id: str,
    started_at: str,
    minutes: int = 20,
    *,
    note: str | None = SPECIFIC_NOTE,
    documented_after: timedelta = timedelta(hours=1),
    documented_at: str | None = None,
    staff_id: str = "S1",
    patient_id: str = "P1",
    status: str = "active",
) -> None:
    """started_at / documented_at: practice-local 'YYYY-MM-DD HH:MM'. By default
    documented an hour after the activity ended."""
    start = datetime.fromisoformat(started_at)
    documented = (
        datetime.fromisoformat(documented_at) if documented_at else start + timedelta(minutes=minutes) + documented_after
    )
    con.execute(
        "insert into raw.activities values (?, ?, ?, ?::timestamp::timestamptz, ?, 'care_coordination', false, ?, "
        "?::timestamp::timestamptz, ?, ?, 'activities.csv', ?, 'run-test')",
        [activity_id, patient_id, staff_id, start, minutes, note, documented, status, drop,
         _next_row(con, "activities", drop)],
    )


def build_staging(con) -> None:
    staging.build_staging(con)


def base_drop(con, drop: str = "2026-02-03") -> None:
    """One patient and two staff members: enough for every rule."""
    add_patient(con, drop)
    add_staff(con, drop, "S1", "rn")
    add_staff(con, drop, "S2", "physician", npi="1234567893", full_name="Paul Physician")


def flag(con, drops: list[str], run_id: str = "run-1", as_of: date = date(2026, 2, 10), settings=SETTINGS) -> dict:
    """Staging, then the SQL half of the quality stage (no GX)."""
    from transforms.quality.flags import flag_documentation

    build_staging(con)
    return flag_documentation(con, settings, run_id, drops, as_of)


def flags_of(con, activity_id: str) -> list[tuple]:
    """(drop_name, flag_code, severity, held_minutes, resolved) for one activity."""
    return con.execute(
        "select drop_name, flag_code, severity, held_minutes, resolved_at is not null from quality.flags "
        "where activity_id = ? order by drop_name, flag_code",
        [activity_id],
    ).fetchall()


def hold_of(con, activity_id: str) -> tuple | None:
    """(held_minutes, flag_codes) from quality.activity_holds, or None."""
    rows = con.execute(
        "select held_minutes, flag_codes from quality.activity_holds where activity_id = ?", [activity_id]
    ).fetchall()
    return rows[0] if rows else None
