"""A tiny practice warehouse for the core-stage tests.

Rows go into the typed raw tables (as ingest would leave them), the project's
own staging SQL builds staging.*, then the minutes and billing stages run. A
default team and an enrolled Medicare patient are one call each, so a test
states only what its rule is about.
"""
from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path
from typing import Any

from transforms.core.codes import assign_codes
from transforms.core.minutes import compute_minutes
from transforms.settings import Settings, load_settings
from transforms.ingest.staging import build_staging
from transforms.warehouse import connect, ensure_schema

DOCTOR_NPI = "1111111112"      # the billing practitioner named by the default consent
OTHER_NP_NPI = "2222222228"    # a practitioner no consent names
UNKNOWN_NPI = "3333333334"     # on no staff row
GROUP_NPI = "1234567893"       # the sample configuration's billing provider

TEAM = (  # staff_id, role, npi
    ("DOC", "physician", DOCTOR_NPI),
    ("NP2", "np", OTHER_NP_NPI),
    ("RN", "rn", None),
    ("MA", "ma", None),
    ("FD", "front_desk", None),
)


def settings_with(**changes: Any) -> Settings:
    """The shipped sample configuration with some fields changed."""
    return dataclasses.replace(load_settings(), **changes)


class Practice:
    def __init__(self, path: Path, settings: Settings | None = None, drop: str = "2026-03-01"):
        self.settings = settings or load_settings()
        self.con = connect(path, self.settings.time_zone)
        ensure_schema(self.con)
        self.drop = drop
        self._row = 0
        self._ids = 0

    # -- raw rows ----------------------------------------------------------
    def insert(self, table: str, drop: str | None = None, **values: Any) -> None:
        self._row += 1
        values |= {"_drop": drop or self.drop, "_file": f"{table}.csv", "_row_number": self._row, "_run_id": "test"}
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.con.execute(f"insert into raw.{table} ({columns}) values ({marks})", list(values.values()))

    def team(self) -> Practice:
        for staff_id, role, npi in TEAM:
            self.insert("staff", staff_id=staff_id, full_name=f"{staff_id} name", role=role, npi=npi)
        return self

    def patient(self, patient_id: str = "P1", payer: str = "medicare_part_b") -> Practice:
        self.insert("patients", patient_id=patient_id, mbi="1EG4TE5MK73", first_name="Ann", last_name="Lee",
                    birth_date="1950-01-01", sex="F", address_line1="1 Elm St", city="Springfield", state="PA",
                    zip="19064", primary_payer=payer)
        return self

    def condition(self, patient_id: str, code: str, onset: str | None = "2020-01-01", resolved: str | None = None,
                  chronic: bool | None = None) -> Practice:
        self.insert("conditions", patient_id=patient_id, icd10_code=code, onset_date=onset, resolved_date=resolved,
                    chronic=chronic)
        return self

    # Evidence columns (the contract's optional ones) go in as keyword arguments. A row
    # given none was read from a file without them (_absent_columns null: not
    # exported); give _absent_columns=[] for a file that had them all.
    def staff_member(self, staff_id: str, role: str, npi: str | None = None, **evidence: Any) -> Practice:
        self.insert("staff", staff_id=staff_id, full_name=f"{staff_id} name", role=role, npi=npi, **evidence)
        return self

    def consent(self, patient_id: str, consent_date: str = "2024-12-01", method: str = "verbal",
                npi: str = DOCTOR_NPI, revoked: str | None = None, **evidence: Any) -> Practice:
        self.insert("consents", patient_id=patient_id, consent_date=consent_date, method=method, billing_npi=npi,
                    revoked_date=revoked, **evidence)
        return self

    def care_plan(self, patient_id: str, established: str = "2024-12-01", complexity: str = "standard",
                  revision: str = "none", revised: str | None = None, **evidence: Any) -> Practice:
        self._ids += 1
        self.insert("care_plans", plan_id=f"CP{self._ids}", patient_id=patient_id, established_date=established,
                    revised_date=revised, revision=revision, complexity=complexity, **evidence)
        return self

    def encounter(self, patient_id: str, encounter_date: str = "2024-11-15", cpt: str = "99214",
                  npi: str | None = DOCTOR_NPI, **evidence: Any) -> str:
        self._ids += 1
        encounter_id = f"E{self._ids}"
        self.insert("encounters", encounter_id=encounter_id, patient_id=patient_id, encounter_date=encounter_date,
                    cpt_code=cpt, rendering_npi=npi, **evidence)
        return encounter_id

    def enrolled(self, patient_id: str = "P1", payer: str = "medicare_part_b",
                 conditions: tuple[str, ...] = ("E119", "I10"), consent: bool = True, care_plan: bool = True,
                 visit: bool = True) -> Practice:
        """A patient meeting every CCM condition that does not depend on minutes (unless told otherwise)."""
        self.patient(patient_id, payer)
        for n, code in enumerate(conditions):
            self.condition(patient_id, code, onset=f"{2015 + n}-01-01")
        if consent:
            self.consent(patient_id)
        if care_plan:
            self.care_plan(patient_id)
        if visit:
            self.encounter(patient_id)
        return self

    def activity(self, patient_id: str, staff_id: str, started_at: str, minutes: int, activity_id: str | None = None,
                 face_to_face: bool = False, status: str = "active", drop: str | None = None) -> str:
        if activity_id is None:
            self._ids += 1
            activity_id = f"A{self._ids:04d}"
        self.insert("activities", drop=drop, activity_id=activity_id, patient_id=patient_id, staff_id=staff_id,
                    started_at=started_at, duration_minutes=minutes, activity_type="care_coordination",
                    face_to_face=face_to_face, note="Reviewed blood pressure log and adjusted evening dose timing.",
                    documented_at=started_at, status=status)
        return activity_id

    def log(self, patient_id: str, staff_id: str, month: str, minutes: int, day: int = 10) -> str:
        """One activity of `minutes` in `month` (YYYY-MM) at 10:00 practice time."""
        return self.activity(patient_id, staff_id, f"{month}-{day:02d} 10:00:00", minutes)

    def hold(self, activity_id: str, minutes: int) -> Practice:
        # as the documentation checks leave it (sql/core/month_consent.sql creates it when absent)
        self.con.execute("create table if not exists quality.activity_holds "
                         "(activity_id varchar, held_minutes integer, flag_codes varchar)")
        self.con.execute("insert into quality.activity_holds values (?, ?, 'late_note')", [activity_id, minutes])
        return self

    # -- stages ------------------------------------------------------------
    def run(self, as_of: str = "2025-12-31") -> tuple[dict, dict]:
        build_staging(self.con)
        minutes = compute_minutes(self.con, self.settings)
        billing = assign_codes(self.con, self.settings, date.fromisoformat(as_of))
        return minutes, billing

    # -- results -----------------------------------------------------------
    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        cursor = self.con.execute(sql, params or [])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]

    def month(self, patient_id: str, month: str) -> dict:
        found = self.rows("select * from core.patient_month where patient_id = ? and service_month = ?",
                          [patient_id, date.fromisoformat(f"{month}-01")])
        assert len(found) == 1, f"expected one patient_month row for {patient_id} {month}, got {len(found)}"
        return found[0]

    def lines(self, patient_id: str, month: str) -> list[dict]:
        return self.rows("select * from core.code_lines where patient_id = ? and service_month = ? order by line_number",
                         [patient_id, date.fromisoformat(f"{month}-01")])

    def candidate(self, patient_id: str, month: str, code_set: str) -> dict:
        return self.rows("select * from core.code_choice where patient_id = ? and service_month = ? and code_set = ?",
                         [patient_id, date.fromisoformat(f"{month}-01"), code_set])[0]

    def activity_row(self, activity_id: str) -> dict:
        return self.rows("select * from core.activity_minutes where activity_id = ?", [activity_id])[0]
