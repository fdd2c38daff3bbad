"""A tiny warehouse for the claims stage: staging built by the real staging SQL
from raw rows, and the rules stage's output tables (core.*) written directly,
so the claims tests do not depend on the rules engine."""
from __future__ import annotations

import dataclasses
import json
import hashlib
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from transforms.contract import TABLES
from transforms.ingest.staging import build_staging
from transforms.settings import Address, BillingProvider, Settings, load_settings
from transforms.warehouse import connect, ensure_schema

GROUP_NPI = "1234567893"  # the sample configuration's billing provider
GROUP2_NPI = "1987654328"  # a second group, for multi-provider batches
DR_CRUZ, NP_ORTIZ, PA_KIM = "1345678902", "1456789019", "1567890128"
TZ = "America/New_York"

PATIENTS = [
    dict(patient_id="P1", mbi="1EG4TE5MK73", first_name="Ann", last_name="Lee", birth_date="1950-01-02", sex="F",
         address_line1="1 Elm St", address_line2="Apt 2", city="Media", state="PA", zip="19063",
         primary_payer="medicare_part_b"),
    dict(patient_id="P2", mbi="2EG4TE5MK74", first_name="José", last_name="Núñez", birth_date="1948-07-30", sex="M",
         address_line1="22 Oak Rd", address_line2=None, city="Chester", state="PA", zip="19013-4321",
         primary_payer="medicare_part_b"),
    dict(patient_id="P3", mbi="3EG4TE5MK75", first_name="Mary", last_name="O'Hara", birth_date="1939-11-11", sex="F",
         address_line1="5 Pine Ln", address_line2=None, city="Media", state="PA", zip="19063",
         primary_payer="medicare_part_b"),
]
STAFF = [
    dict(staff_id="S-RN", full_name="Joy Park", role="rn", npi=None),
    dict(staff_id="S-MD", full_name="Dana Cruz, MD", role="physician", npi=DR_CRUZ),
    dict(staff_id="S-NP", full_name="Lee Ortiz", role="np", npi=NP_ORTIZ),
    dict(staff_id="S-PA", full_name="Sam Kim", role="pa", npi=PA_KIM),
]
CONDITIONS = [
    dict(patient_id=p, icd10_code=c, description=d, onset_date="2015-03-01", resolved_date=None, chronic=True)
    for p in ("P1", "P2", "P3") for c, d in (("E119", "Type 2 diabetes"), ("I10", "Hypertension"))
]
NOTE = "Reviewed blood pressure log with patient and adjusted timing of evening dose."
FEES = {"99490": Decimal("66.13"), "99439": Decimal("47.50"), "99487": Decimal("144.29"),
        "99489": Decimal("78.16"), "99491": Decimal("86.00"), "99437": Decimal("63.13")}
CENT = Decimal("0.01")


def medicare_share(allowed: Decimal) -> tuple[Decimal, Decimal]:
    """(expected payment, patient responsibility) of an allowed amount: 80%, less 2% sequestration."""
    share = (allowed * Decimal("0.80")).quantize(CENT, rounding="ROUND_HALF_UP")
    return share - (share * Decimal("0.02")).quantize(CENT, rounding="ROUND_HALF_UP"), allowed - share

_activity_seq = [0]


def sample_settings(two_providers: bool = False, **changes) -> Settings:
    settings = load_settings()
    if two_providers:
        north = BillingProvider(
            npi=GROUP2_NPI, name="Riverbend North Clinic", tin="987654321", taxonomy="207R00000X",
            address=Address("200 Oak Ave", "Media", "PA", "190631234"), phone="6105550199",
            practitioner_npis=(NP_ORTIZ,))
        changes["billing_providers"] = (settings.billing_providers[0], north)
    return dataclasses.replace(settings, **changes)


def insert_raw(con, table: str, rows: list[dict]) -> None:
    columns = list(TABLES[table].columns)
    placeholders = ", ".join("?" for _ in columns)
    con.executemany(
        f"insert into raw.{table} ({', '.join(columns)}, _drop, _file, _row_number, _run_id) "
        f"values ({placeholders}, '2026-01-01', '{table}.csv', ?, 'fixture')",
        [[r.get(c) for c in columns] + [i] for i, r in enumerate(rows, start=1)],
    )


CORE_DDL = """
create schema if not exists core;
create table if not exists core.code_lines (
    patient_id varchar, service_month date, billing_npi varchar, billing_provider_npi varchar, cpt_code varchar,
    units integer, minutes integer, charge_amount decimal(10,2), expected_payment decimal(10,2),
    date_of_service date, line_number integer, icd10_codes varchar[], allowed_amount decimal(10,2),
    patient_responsibility decimal(10,2));
create table if not exists core.patient_month (
    patient_id varchar, service_month date, billing_npi varchar, billing_staff_id varchar,
    billing_provider_npi varchar, clinical_staff_minutes integer, practitioner_minutes integer,
    countable_minutes integer, eligible boolean, code_set varchar, billed_codes varchar,
    expected_payment decimal(10,2), charge_amount decimal(10,2), date_of_service date,
    reasons_not_billed varchar[], month_closed boolean, timely_filing_deadline date);
create table if not exists core.activity_minutes (
    activity_id varchar, patient_id varchar, staff_id varchar, role_class varchar, service_month date,
    duration_minutes integer, countable_minutes integer, counted_as varchar, excluded_minutes integer,
    exclusion_reason varchar);
create table if not exists core.eligibility (
    patient_id varchar, service_month date, chronic_conditions integer, consent_ok boolean, care_plan_ok boolean,
    initiating_visit_ok boolean, eligible boolean, initiating_encounter_id varchar);
"""


def new_warehouse(tmp_path: Path):
    """Staging for three patients and four staff; empty core tables."""
    con = connect(tmp_path / "w.duckdb", TZ)
    ensure_schema(con)
    insert_raw(con, "patients", PATIENTS)
    insert_raw(con, "staff", STAFF)
    insert_raw(con, "conditions", CONDITIONS)
    insert_raw(con, "consents", [
        dict(patient_id="P1", consent_date="2025-06-01", method="verbal", billing_npi=DR_CRUZ, revoked_date=None),
        dict(patient_id="P2", consent_date="2025-06-03", method="written", billing_npi=DR_CRUZ, revoked_date=None),
        dict(patient_id="P3", consent_date="2025-07-01", method="written", billing_npi=NP_ORTIZ, revoked_date=None),
    ])
    insert_raw(con, "care_plans", [
        dict(plan_id=f"CP-{p}", patient_id=p, established_date="2025-06-15", revised_date=None, revision="none",
             complexity="standard", shared_with_patient_date="2025-06-16") for p in ("P1", "P2", "P3")
    ])
    insert_raw(con, "encounters", [
        dict(encounter_id=f"E-{p}", patient_id=p, encounter_date="2025-05-20", cpt_code="99214", rendering_npi=npi)
        for p, npi in (("P1", DR_CRUZ), ("P2", DR_CRUZ), ("P3", NP_ORTIZ))
    ])
    con.execute(CORE_DDL)
    build_staging(con)
    return con


def add_patient_month(con, patient_id: str, month: date, codes: list[tuple[str, int]], *,
                      billing_npi: str = DR_CRUZ, group_npi: str = GROUP_NPI, minutes: int | None = None,
                      icd10: list[str] | None = None, eligible: bool = True) -> None:
    """One billable patient-month as the rules stage would leave it: code lines, the patient-month row and
    the activities behind it (one 20-minute RN call per 20 minutes, plus a remainder)."""
    icd10 = icd10 if icd10 is not None else ["E119", "I10"]
    minutes = minutes if minutes is not None else 20 * sum(u for _, u in codes) + 5
    month_end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    charges = {c: FEES[c] * u for c, u in codes}
    for n, (cpt, units) in enumerate(codes, start=1):
        expected, patient = medicare_share(charges[cpt])  # charge = fee here: allowed = charge
        con.execute("insert into core.code_lines values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [patient_id, month, billing_npi, group_npi, cpt, units, 20 * units, charges[cpt], expected,
                     month_end, n, icd10, charges[cpt], patient])
    billed = " ".join(c + (f"x{u}" if u > 1 else "") for c, u in codes)
    total = sum(charges.values(), Decimal("0"))
    staff_id = {DR_CRUZ: "S-MD", NP_ORTIZ: "S-NP", PA_KIM: "S-PA"}.get(billing_npi, "S-MD")
    con.execute("insert into core.patient_month values (?, ?, ?, ?, ?, ?, 0, ?, ?, 'ccm', ?, ?, ?, ?, [], true, ?)",
                [patient_id, month, billing_npi, staff_id, group_npi, minutes, minutes, eligible, billed, total,
                 total, month_end, month_end + timedelta(days=365)])  # the filing limit, about a year on
    con.execute("insert into core.eligibility values (?, ?, 2, true, true, true, ?, ?)",
                [patient_id, month, eligible, f"E-{patient_id}"])
    add_activities(con, patient_id, month, minutes)


def add_activities(con, patient_id: str, month: date, minutes: int) -> None:
    rows = []
    day = 3
    while minutes > 0:
        _activity_seq[0] += 1
        take = min(20, minutes)
        started = datetime(month.year, month.month, day, 10, 0)
        rows.append(dict(activity_id=f"A{_activity_seq[0]}", patient_id=patient_id, staff_id="S-RN",
                         started_at=started.isoformat(), duration_minutes=take, activity_type="phone_outreach",
                         face_to_face=False, note=NOTE, documented_at=(started + timedelta(minutes=30)).isoformat(),
                         status="active"))
        con.execute("insert into core.activity_minutes values (?, ?, 'S-RN', 'clinical_staff', ?, ?, ?, "
                    "'clinical_staff', 0, null)", [rows[-1]["activity_id"], patient_id, month, take, take])
        minutes -= take
        day += 1
    insert_raw(con, "activities", rows)
    build_staging(con)


def set_codes(con, patient_id: str, month: date, codes: list[tuple[str, int]], minutes: int) -> None:
    """The rules stage's new answer for a patient-month (late or voided documentation)."""
    con.execute("delete from core.code_lines where patient_id = ? and service_month = ?", [patient_id, month])
    con.execute("delete from core.patient_month where patient_id = ? and service_month = ?", [patient_id, month])
    con.execute("delete from core.eligibility where patient_id = ? and service_month = ?", [patient_id, month])
    con.execute("delete from core.activity_minutes where patient_id = ? and service_month = ?", [patient_id, month])
    add_patient_month(con, patient_id, month, codes, minutes=minutes)


def read_manifest(batch_dir: Path) -> dict:
    return json.loads((batch_dir / "manifest.json").read_text())


def manifest_problems(batch_dir: Path) -> list[str]:
    """Every file listed with the right hash, and no file unlisted (besides the manifest)."""
    manifest = read_manifest(batch_dir)
    present = {p.relative_to(batch_dir).as_posix() for p in batch_dir.rglob("*") if p.is_file()}
    problems = [f"unlisted file {f}" for f in sorted(present - set(manifest["files"]) - {"manifest.json"})]
    for name, sha in manifest["files"].items():
        path = batch_dir / name
        if not path.is_file():
            problems.append(f"missing {name}")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != sha:
            problems.append(f"hash mismatch {name}")
    return problems
