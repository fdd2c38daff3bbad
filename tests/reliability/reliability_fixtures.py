"""A tiny, complete practice landing for the reliability suite, written by hand with
the csv module (not our generator), whose PHI is distinctive enough to search for:
two Medicare patients who bill 99490 for January 2026, their conditions, consents,
care plans and initiating visits, one RN and one physician.

`ccm()` runs the real command line in this process (as a user would, but without a
Python start-up per case); `ccm_subprocess()` runs it as its own process, for the
cases that kill it or need their own umask. `PHI` lists every value that must never
appear in a log, a message, a summary or Data Docs.
"""
from __future__ import annotations

import csv
import hashlib
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from transforms.cli import main
from transforms.contract import TABLES
from transforms.paths import REPO_ROOT

AS_OF = "2026-02-10"          # January closed (5 grace days), February open
FIRST_DROP = "2026-01-13"
DOCTOR_NPI = "1345678902"

PATIENTS = [
    dict(patient_id="P1", mbi="1EG4TE5MK73", first_name="Quillon", last_name="Marrowdale", birth_date="1950-01-02",
         sex="F", address_line1="1 Elm St", address_line2="", city="Media", state="PA", zip="19063",
         primary_payer="medicare_part_b"),
    dict(patient_id="P2", mbi="2EG4TE5MK74", first_name="Zephyrine", last_name="Oakhollow", birth_date="1948-07-30",
         sex="M", address_line1="22 Oak Rd", address_line2="Apt 4", city="Chester", state="PA", zip="19013",
         primary_payer="medicare_part_b"),
]
STAFF = [dict(staff_id="S-RN", full_name="Joy Park", role="rn", npi="", credential="RN", supervising_npi=DOCTOR_NPI),
         dict(staff_id="S-MD", full_name="Dana Cruz", role="physician", npi=DOCTOR_NPI, credential="MD",
              supervising_npi="")]
CONDITIONS = [dict(patient_id=p, icd10_code=c, description="", onset_date="2015-03-01", resolved_date="",
                   chronic="true") for p in ("P1", "P2") for c in ("E119", "I10")]
# the evidence an auditor checks is there (an exported column left empty would hold the month)
CONSENTS = [dict(patient_id=p, consent_date="2025-12-01", method="verbal", billing_npi=DOCTOR_NPI, revoked_date="",
                 obtained_by="S-MD", elements_explained="availability;cost_sharing;one_practitioner;right_to_stop")
            for p in ("P1", "P2")]
CARE_PLANS = [dict(plan_id=f"CP-{p}", patient_id=p, established_date="2025-12-15", revised_date="", revision="none",
                   complexity="standard", shared_with_patient_date="2025-12-16", focus_icd10="",
                   goals="HbA1c below 8; blood pressure below 140/90") for p in ("P1", "P2")]
ENCOUNTERS = [dict(encounter_id=f"E-{p}", patient_id=p, encounter_date="2025-12-10", cpt_code="99214",
                   rendering_npi=DOCTOR_NPI, place_of_service="11", discharge_date="") for p in ("P1", "P2")]
NOTES = ["Reviewed the glucose diary of the Tarragon-Nightjar regimen and adjusted the evening insulin timing.",
         "Called about the Periwinkle-Lodestar pharmacy refill; reconciled the medication list with the patient."]


def activity(activity_id: str, patient_id: str = "P1", day: int = 5, minutes: str = "10", note: str = NOTES[0],
             **overrides) -> dict:
    row = dict(activity_id=activity_id, patient_id=patient_id, staff_id="S-RN",
               started_at=f"2026-01-{day:02d}T10:00:00", duration_minutes=minutes, activity_type="phone_outreach",
               face_to_face="false", note=note, documented_at=f"2026-01-{day:02d}T10:30:00", status="")
    row.update(overrides)
    return row


ACTIVITIES = [activity("A1", "P1", 5), activity("A2", "P1", 6), activity("A3", "P1", 7),
              activity("A4", "P2", 8, "25", NOTES[1])]
TABLE_ROWS = {"patients": PATIENTS, "staff": STAFF, "conditions": CONDITIONS, "consents": CONSENTS,
              "care_plans": CARE_PLANS, "encounters": ENCOUNTERS, "activities": ACTIVITIES}

# Every value that is PHI in this landing: it must never reach a log, a message, a
# summary, a flag or Data Docs (names, MBIs, birth dates as written and as the 837P
# writes them, notes and a telling part of each).
PHI = sorted({p[k] for p in PATIENTS for k in ("mbi", "first_name", "last_name", "birth_date")}
             | {p["birth_date"].replace("-", "") for p in PATIENTS}
             | {p["first_name"].upper() for p in PATIENTS} | {p["last_name"].upper() for p in PATIENTS}
             | set(NOTES) | {"Tarragon-Nightjar", "Periwinkle-Lodestar"})


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = columns or (list(rows[0]) if rows else [])
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_full_drop(landing: Path, name: str = FIRST_DROP, tables: dict[str, list[dict]] | None = None) -> Path:
    drop = landing / name
    for table, rows in (tables or TABLE_ROWS).items():
        write_csv(drop / f"{table}.csv", rows, list(TABLES[table].columns))
    return drop


@dataclass
class Place:
    """Where one case's run reads and writes (by default all under `root`)."""
    root: Path
    warehouse_dir: Path | None = None
    claims_dir: Path | None = None

    @property
    def landing(self) -> Path:
        return self.root / "landing"

    @property
    def warehouse(self) -> Path:
        return (self.warehouse_dir or self.root) / "w.duckdb"

    @property
    def claims(self) -> Path:
        return self.claims_dir or self.root / "claims"

    def args(self, *extra: str, as_of: str = AS_OF) -> list[str]:
        return ["run", "--landing", str(self.landing), "--warehouse", str(self.warehouse),
                "--claims-dir", str(self.claims), "--as-of", as_of, "--wait", "0", *extra]

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            con.execute("set TimeZone = 'America/New_York'")
            return con.execute(sql, params or []).fetchall()
        finally:
            con.close()


def ccm(place: Place, *extra: str, as_of: str = AS_OF) -> int:
    return main(place.args(*extra, as_of=as_of))


def ccm_subprocess(place: Place, *extra: str, env: dict | None = None, as_of: str = AS_OF, umask: int | None = None,
                   timeout: float = 300, wait: bool = True, verbose: bool = False):
    command = [sys.executable, "-m", "transforms.cli", *(["-v"] if verbose else []),
               *place.args(*extra, as_of=as_of)]
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})}
    preexec = (lambda: os.umask(umask)) if umask is not None else None
    if not wait:
        return subprocess.Popen(command, env=environment, cwd=REPO_ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, preexec_fn=preexec)
    return subprocess.run(command, env=environment, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec)


def copy_place(source: Place, root: Path) -> Place:
    """A case's own copy of a loaded place (landing, warehouse, claims): cases never share state."""
    shutil.copytree(source.root, root, symlinks=True, dirs_exist_ok=True)
    return Place(root)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def phi_found(text: str) -> list[str]:
    return [value for value in PHI if value in text]


def loose_modes(*roots: Path) -> list[str]:
    """Every file or folder under `roots` that someone other than its owner could read."""
    found = []
    for root in roots:
        if not root.exists():
            continue
        for path in [root, *root.rglob("*")]:
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                continue
            if stat.S_IMODE(mode) & 0o077:
                found.append(f"{oct(stat.S_IMODE(mode))} {path}")
    return found
