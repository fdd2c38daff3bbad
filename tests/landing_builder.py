"""Hand-written landing drops for tests: plain csv module, not our generator,
so ingestion is proven on files another tool wrote."""
from __future__ import annotations

import csv
from pathlib import Path

from transforms.contract import TABLES

PATIENT = dict(patient_id="P1", mbi="1EG4TE5MK73", first_name="Ann", last_name="Lee", birth_date="1950-01-02",
               sex="F", address_line1="1 Elm St", address_line2="", city="Media", state="PA", zip="19063",
               primary_payer="medicare_part_b")
RN = dict(staff_id="S-RN", full_name="Joy Park", role="rn", npi="")
DOCTOR = dict(staff_id="S-MD", full_name="Dana Cruz", role="physician", npi="1345678902")
NOTE = "Reviewed blood pressure log with patient and adjusted timing of evening dose."


def activity(activity_id: str, **overrides) -> dict:
    row = dict(activity_id=activity_id, patient_id="P1", staff_id="S-RN", started_at="2026-01-12T10:00:00",
               duration_minutes="10", activity_type="phone_outreach", face_to_face="false", note=NOTE,
               documented_at="2026-01-12T10:30:00", status="")
    row.update(overrides)
    return row


def write_table(drop_dir: Path, table: str, rows: list[dict], columns: list[str] | None = None) -> Path:
    drop_dir.mkdir(parents=True, exist_ok=True)
    columns = columns or list(TABLES[table].columns)
    path = drop_dir / f"{table}.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_drop(landing: Path, name: str, activities: list[dict], patients=None, staff=None) -> Path:
    drop = landing / name
    write_table(drop, "patients", patients if patients is not None else [PATIENT])
    write_table(drop, "staff", staff if staff is not None else [RN, DOCTOR])
    write_table(drop, "activities", activities)
    return drop
