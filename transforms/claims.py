"""Claims stage: closed, unbilled patient-months -> one claim batch folder, billed exactly once.

    <claims_dir>/<batch_id>/
        <batch_id>_<group NPI>.x12   one 837P interchange per billing provider
        claim_lines.csv               one row per billed code (the contract's columns)
        audit/<claim_id>.json         the activity log and eligibility evidence behind each claim
        manifest.json                 counts, control totals, control numbers, SHA-256 of every other file

Exactly once: billing.ledger holds one row per billed patient-month (primary
key), written in the same DuckDB transaction as the control numbers, the
batch row and the batch's bytes. Files are written to a hidden temp folder
first and renamed into place only after that transaction commits, so a kill
at any point leaves no ledger rows and a temp folder (deleted and redone on
the next run), or ledger rows and a folder that the next run puts in place
(rebuilt from billing.batch_files if it is missing or incomplete).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from itertools import groupby
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pyarrow as pa

from transforms.claim_edits import ClaimEditError, check_batch, validate_with_pyx12
from transforms.settings import Settings
from transforms.warehouse import run_sql, table_exists
from transforms.x12_837p import BillingProviderInfo, Claim, ClaimLine, Envelope, Subscriber, render_interchange, split_name

log = logging.getLogger(__name__)

CSV_COLUMNS = ("batch_id", "claim_id", "billing_npi", "patient_id", "mbi", "service_month", "date_of_service",
               "cpt_code", "units", "minutes", "icd10_codes", "charge_amount", "expected_payment")
BILLING_TABLES = ("batches", "control_numbers", "ledger", "ledger_lines", "batch_files", "review")
TMP_PREFIX = ".tmp-"
BATCH_ID = re.compile(r"^B(\d{8})-(\d{3,})$")
MAX_DIAGNOSES, MAX_POINTERS = 12, 4
# Visits that can initiate CCM (office E/M, AWV, IPPE): shown as evidence in the audit packet.
INITIATING_VISIT_CODES = ("99202", "99203", "99204", "99205", "99211", "99212", "99213", "99214", "99215",
                          "G0438", "G0439", "G0402")

# Fault injection for the crash tests: CCM_FAULT=<point> kills the process there.
FAULT_ENV = "CCM_FAULT"
FAULT_POINTS = ("mid_files", "after_files", "in_ledger", "after_ledger", "after_rename")
FAULT_EXIT_CODE = 75


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os._exit(FAULT_EXIT_CODE)  # no cleanup, no flush: what a kill -9 leaves behind


# -- the stage ---------------------------------------------------------------------------------------

def write_claim_batch(
    con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, as_of: date, claims_dir: Path
) -> dict:
    """Recover any interrupted batch, report changes to billed months, then claim every closed,
    unbilled patient-month in one new batch. Returns a summary without PHI."""
    claims_dir = Path(claims_dir)
    for name in ("code_lines", "patient_month", "activity_minutes"):
        if not table_exists(con, "core", name):
            raise RuntimeError(f"claims stage: core.{name} does not exist; run the rules stage first")
    ensure_billing_schema(con)
    recovery = recover_batches(con, claims_dir)

    con.execute(f"set variable claims_run_id = '{run_id.replace(chr(39), chr(39) * 2)}'")
    con.execute(f"set variable claim_as_of = date '{as_of.isoformat()}'")
    con.execute(f"set variable claim_grace_days = {int(settings.claim_grace_days)}")
    review_before = con.execute("select count(*) from billing.review").fetchone()[0]
    run_sql(con, "billing/detect_review.sql")
    review_added = con.execute("select count(*) from billing.review").fetchone()[0] - review_before

    run_sql(con, "billing/claimable_lines.sql")
    summary: dict[str, Any] = {
        "batch_id": None, "path": None, "claims": 0, "lines": 0, "units": 0, "charges": 0.0,
        "expected_payment": 0.0, "files": 0, "x12_files": [], "review_rows_added": review_added,
        "recovered_batches": recovery["recovered"], "abandoned_temp_folders": recovery["abandoned"],
    }
    rows = _fetch_dicts(con, "select * from claimable_lines "
                             "order by billing_provider_npi, service_month, patient_id, line_number, cpt_code")
    if not rows:
        log.info("claims: nothing to claim as of %s", as_of)
        return summary

    batch_id = _next_batch_id(con, as_of, claims_dir)
    first_control_number = con.execute(
        "select coalesce(max(interchange_control_number), 0) + 1 from billing.control_numbers").fetchone()[0]
    created_at = datetime.now(ZoneInfo(settings.time_zone)).replace(microsecond=0)
    batch = _build_batch(con, settings, rows, batch_id, run_id, as_of, first_control_number, created_at)

    # Edits run on the rendered text before anything touches the disk or the ledger.
    problems = batch.problems + check_batch(batch.x12, batch.csv_rows, batch.service_months)
    for name, text in batch.x12.items():
        problems += [f"{name}: pyx12: {p}" for p in validate_with_pyx12(text)]
    if problems:
        raise ClaimEditError(batch_id, problems)

    claims_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp, final = claims_dir / f"{TMP_PREFIX}{batch_id}", claims_dir / batch_id
    _write_folder(tmp, batch.files)
    _fault("after_files")
    _commit_batch(con, batch, final)
    _fault("after_ledger")
    os.rename(tmp, final)
    _fsync_dir(claims_dir)
    _fault("after_rename")
    _mark_delivered(con, batch_id)

    summary.update(batch.totals, batch_id=batch_id, path=str(final), files=len(batch.files),
                   x12_files=sorted(batch.x12))
    log.info("claims: batch %s delivered: %d claims, %d lines, %d units, charges %.2f",
             batch_id, summary["claims"], summary["lines"], summary["units"], summary["charges"])
    return summary


def ensure_billing_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists billing")
    for name in BILLING_TABLES:
        run_sql(con, f"billing/{name}.sql")


# -- building a batch (in memory) --------------------------------------------------------------------

@dataclass
class Batch:
    batch_id: str
    run_id: str
    as_of: date
    files: dict[str, bytes] = field(default_factory=dict)  # relative path -> bytes, manifest last
    x12: dict[str, str] = field(default_factory=dict)
    csv_rows: list[dict] = field(default_factory=list)
    service_months: dict[str, date] = field(default_factory=dict)  # claim_id -> month
    control_rows: list[tuple] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    manifest_sha256: str = ""
    problems: list[str] = field(default_factory=list)  # data that cannot make a claim


def _build_batch(con, settings: Settings, rows: list[dict], batch_id: str, run_id: str, as_of: date,
                 first_control_number: int, created_at: datetime) -> Batch:
    batch = Batch(batch_id, run_id, as_of)
    providers = {bp.npi: bp for bp in settings.billing_providers}
    claims_by_provider: dict[str, list[Claim]] = {}
    for claim_id, claim_rows in groupby(rows, key=lambda r: r["claim_id"]):
        claim_rows = list(claim_rows)
        first = claim_rows[0]
        batch.service_months[claim_id] = first["service_month"]
        claim = _claim(claim_id, claim_rows, settings, batch.problems)
        claims_by_provider.setdefault(first["billing_provider_npi"], []).append(claim)
        for r in claim_rows:
            batch.csv_rows.append({
                "batch_id": batch_id, "claim_id": claim_id, "billing_npi": r["billing_npi"],
                "patient_id": r["patient_id"], "mbi": r["mbi"], "service_month": f"{r['service_month']:%Y-%m}",
                "date_of_service": r["date_of_service"].isoformat(), "cpt_code": r["cpt_code"], "units": r["units"],
                "minutes": r["minutes"], "icd10_codes": " ".join(r["icd10_codes"] or []),
                "charge_amount": f"{r['charge_amount']:.2f}", "expected_payment": f"{(r['expected_payment'] or 0):.2f}",
            })

    x12 = settings.x12
    interchanges = []
    for n, (npi, claims) in enumerate(sorted(claims_by_provider.items())):
        bp = providers.get(npi)
        if bp is None:
            batch.problems.append(f"billing provider NPI {npi!r} (core.code_lines.billing_provider_npi) is not in "
                                  f"billing_providers of {settings.source}; add it or fix the consent")
            continue
        number = first_control_number + n
        phone = x12.get("submitter_phone") or bp.phone or ""
        if not phone:
            batch.problems.append(f"x12.submitter_phone: the 837P submitter contact (1000A PER) needs a phone "
                                  f"number; set it in {settings.source}")
        env = Envelope(number, number, number, created_at, batch_id, x12["submitter_id"], x12["submitter_name"],
                       x12.get("submitter_contact") or x12["submitter_name"], phone, x12["receiver_id"],
                       x12["receiver_name"], settings.payer_name, settings.payer_id, x12.get("usage_indicator", "T"))
        info = BillingProviderInfo(bp.npi, bp.name, bp.tin, bp.taxonomy, bp.address.line1, bp.address.line2,
                                   bp.address.city, bp.address.state, bp.address.zip)
        name = f"{batch_id}_{npi}.x12"
        batch.x12[name] = render_interchange(env, info, claims)
        batch.control_rows.append((number, number, number, batch_id, npi, name))
        lines = [ln for c in claims for ln in c.lines]
        interchanges.append({
            "file": name, "billing_provider_npi": npi, "interchange_control_number": f"{number:09d}",
            "group_control_number": str(number), "transaction_set_control_number": f"{number:04d}",
            "claims": len(claims), "lines": len(lines), "units": sum(ln.units for ln in lines),
            "charges": str(sum((c.total_charge for c in claims), Decimal("0"))),
        })

    charges = sum((Decimal(r["charge_amount"]) for r in batch.csv_rows), Decimal("0"))
    expected = sum((Decimal(r["expected_payment"]) for r in batch.csv_rows), Decimal("0"))
    batch.totals = {"claims": len(batch.service_months), "lines": len(batch.csv_rows),
                    "units": sum(int(r["units"]) for r in batch.csv_rows),
                    "charges": float(charges), "expected_payment": float(expected)}

    files: dict[str, bytes] = {name: text.encode("ascii") for name, text in sorted(batch.x12.items())}
    files["claim_lines.csv"] = _csv_bytes(batch.csv_rows)
    for claim_id, packet in _audit_packets(con, batch_id).items():
        files[f"audit/{claim_id}.json"] = _json_bytes(packet)
    manifest = {
        "batch_id": batch_id, "as_of": as_of.isoformat(), "run_id": run_id, "created_at": created_at.isoformat(),
        "practice": settings.practice_name, "payer": {"name": settings.payer_name, "id": settings.payer_id},
        "usage_indicator": x12.get("usage_indicator", "T"),
        "counts": {"claims": batch.totals["claims"], "lines": batch.totals["lines"], "units": batch.totals["units"],
                   "interchanges": len(batch.x12), "audit_packets": sum(1 for f in files if f.startswith("audit/"))},
        "control_totals": {"claims": batch.totals["claims"], "lines": batch.totals["lines"],
                           "units": batch.totals["units"], "charges": str(charges), "expected_payment": str(expected)},
        "interchanges": interchanges,
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
    }
    files["manifest.json"] = _json_bytes(manifest)
    batch.manifest_sha256 = hashlib.sha256(files["manifest.json"]).hexdigest()
    batch.files = files
    return batch


def _claim(claim_id: str, rows: list[dict], settings: Settings, problems: list[str]) -> Claim:
    first = rows[0]
    at = f"claim {claim_id} (patient {first['patient_id']}, {first['service_month']:%Y-%m})"
    if len({(r["billing_npi"], r["billing_provider_npi"]) for r in rows}) > 1:
        problems.append(f"{at}: its code lines name more than one billing practitioner or provider")
    if first["mbi"] is None:
        problems.append(f"{at}: patient is not in staging.patients")
    if not first["rendering_name"]:
        problems.append(f"{at}: no staff member with NPI {first['billing_npi']} (the rendering practitioner's name)")

    diagnoses: list[str] = []
    for r in rows:
        diagnoses += [c for c in (r["icd10_codes"] or []) if c not in diagnoses]
    diagnoses = diagnoses[:MAX_DIAGNOSES]  # HI holds 12; codes come primary first
    lines = []
    for r in rows:
        own = [diagnoses.index(c) + 1 for c in (r["icd10_codes"] or []) if c in diagnoses]
        pointers = tuple(own[:MAX_POINTERS]) or tuple(range(1, min(len(diagnoses), MAX_POINTERS) + 1))
        lines.append(ClaimLine(r["cpt_code"], int(r["units"]), Decimal(r["charge_amount"]), r["date_of_service"],
                               pointers))
    last, first_name = split_name(first["rendering_name"] or "")
    subscriber = Subscriber(first["mbi"] or "", first["last_name"] or "", first["first_name"] or "",
                            first["address_line1"] or "", first["address_line2"], first["city"] or "",
                            first["state"] or "", first["zip"] or "", first["birth_date"] or date(1900, 1, 1),
                            first["sex"] or "U")
    return Claim(claim_id, subscriber, first["billing_npi"], last, first_name, tuple(diagnoses), tuple(lines),
                 settings.place_of_service or "11")


def _audit_packets(con, batch_id: str) -> dict[str, dict]:
    """Per claim: the activity log behind it, the eligibility evidence and the codes with their minutes.
    One query per kind of evidence for the whole batch, grouped by claim in Python."""
    con.execute("""
        create or replace temp table batch_claims as
        select claim_id, patient_id, service_month, any_value(billing_npi) as billing_npi,
               any_value(billing_provider_npi) as billing_provider_npi,
               any_value(countable_minutes) as countable_minutes,
               any_value(clinical_staff_minutes) as clinical_staff_minutes,
               any_value(practitioner_minutes) as practitioner_minutes,
               flatten(list(icd10_codes order by line_number)) as qualifying_codes
        from claimable_lines group by claim_id, patient_id, service_month
    """)
    packets: dict[str, dict] = {}
    for c in _fetch_dicts(con, "select * from batch_claims order by claim_id"):
        packets[c["claim_id"]] = {
            "batch_id": batch_id, "claim_id": c["claim_id"], "patient_id": c["patient_id"],
            "service_month": f"{c['service_month']:%Y-%m}", "billing_npi": c["billing_npi"],
            "billing_provider_npi": c["billing_provider_npi"],
            "minutes": {"countable": c["countable_minutes"], "clinical_staff": c["clinical_staff_minutes"],
                        "practitioner": c["practitioner_minutes"]},
            "codes": [], "activities": [],
            "eligibility": {"conditions": [], "consents": [], "care_plans": [], "encounters": [],
                            "initiating_visit": None},
        }

    def add(key: str, sql: str, sub: str | None = None) -> None:
        for r in _fetch_dicts(con, sql):
            target = packets[r.pop("claim_id")]
            (target["eligibility"] if sub else target)[key].append(r)

    add("codes", """
        select claim_id, cpt_code, units, minutes, charge_amount, expected_payment, date_of_service, icd10_codes
        from claimable_lines order by claim_id, line_number, cpt_code""")
    add("activities", """
        select b.claim_id, am.activity_id, a.started_at_local::date as date, a.started_at_local as started_at,
               am.duration_minutes as minutes, am.countable_minutes, am.counted_as, am.excluded_minutes,
               am.exclusion_reason, am.staff_id, s.full_name as staff_name, s.role as staff_role,
               coalesce(am.role_class, s.role_class) as role_class, s.npi as staff_npi,
               a.activity_type, a.face_to_face, a.note, a.documented_at_local as documented_at
        from batch_claims b
        join core.activity_minutes am using (patient_id, service_month)
        left join staging.activity_versions a using (activity_id)
        left join staging.staff s on s.staff_id = am.staff_id
        order by b.claim_id, a.started_at_local, am.activity_id""")
    add("conditions", """
        select b.claim_id, c.icd10_code, c.description, c.onset_date, c.resolved_date, c.chronic,
               list_contains(b.qualifying_codes, c.icd10_code) as qualifying
        from batch_claims b join staging.conditions c using (patient_id)
        order by b.claim_id, qualifying desc, c.icd10_code""", sub="eligibility")
    add("consents", """
        select b.claim_id, c.consent_date, c.method, c.billing_npi, c.revoked_date
        from batch_claims b join staging.consents c using (patient_id)
        order by b.claim_id, c.consent_date""", sub="eligibility")
    add("care_plans", """
        select b.claim_id, p.plan_id, p.established_date, p.revised_date, p.revision, p.complexity,
               p.shared_with_patient_date
        from batch_claims b join staging.care_plans p using (patient_id)
        where p.established_date <= last_day(b.service_month)
        order by b.claim_id, p.established_date, p.plan_id""", sub="eligibility")
    add("encounters", """
        select b.claim_id, e.encounter_id, e.encounter_date, e.cpt_code, e.rendering_npi
        from batch_claims b join staging.encounters e using (patient_id)
        where e.encounter_date <= last_day(b.service_month)
          and e.encounter_date >= b.service_month - interval 12 month
        order by b.claim_id, e.encounter_date desc, e.encounter_id""", sub="eligibility")
    codes = ", ".join(f"'{c}'" for c in INITIATING_VISIT_CODES)
    for r in _fetch_dicts(con, f"""
        select b.claim_id, e.encounter_id, e.encounter_date, e.cpt_code, e.rendering_npi
        from batch_claims b join staging.encounters e using (patient_id)
        where e.encounter_date <= last_day(b.service_month) and e.cpt_code in ({codes})
          and (e.rendering_npi is null or e.rendering_npi = b.billing_npi)
        qualify row_number() over (partition by b.claim_id order by e.encounter_date desc, e.encounter_id) = 1"""):
        packets[r.pop("claim_id")]["eligibility"]["initiating_visit"] = r
    # The rules stage's own verdict, whatever columns it carries.
    if table_exists(con, "core", "eligibility"):
        cols = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                          "where table_schema = 'core' and table_name = 'eligibility'").fetchall()}
        if {"patient_id", "service_month"} <= cols:
            for r in _fetch_dicts(con, """
                select b.claim_id, e.* from batch_claims b join core.eligibility e using (patient_id, service_month)
                order by b.claim_id"""):
                claim_id = r.pop("claim_id")
                packets[claim_id]["eligibility"]["rules_verdict"] = r
    return packets


# -- committing and delivering ----------------------------------------------------------------------

def _commit_batch(con, batch: Batch, final: Path) -> None:
    """One transaction: control numbers, ledger, ledger lines, batch row, batch bytes."""
    now = datetime.now(timezone.utc)
    files = pa.table({
        "batch_id": [batch.batch_id] * len(batch.files),
        "file_name": list(batch.files),
        "sha256": [hashlib.sha256(b).hexdigest() for b in batch.files.values()],
        "content": pa.array(list(batch.files.values()), type=pa.binary()),
    })
    con.begin()
    try:
        con.executemany("insert into billing.control_numbers values (?, ?, ?, ?, ?, ?, 'used', ?)",
                        [(*row, now) for row in batch.control_rows])
        con.execute("""
            insert into billing.ledger
            select patient_id, service_month, claim_id, ? as batch_id,
                   any_value(billing_npi), any_value(billing_provider_npi),
                   string_agg(cpt_code || case when units > 1 then 'x' || units else '' end, ' '
                              order by line_number, cpt_code),
                   any_value(countable_minutes), sum(units), sum(charge_amount), sum(expected_payment),
                   max(date_of_service), ? as run_id, ? as committed_at
            from claimable_lines group by patient_id, service_month, claim_id
        """, [batch.batch_id, batch.run_id, now])
        con.execute("""
            insert into billing.ledger_lines
            select claim_id, row_number() over (partition by claim_id order by line_number, cpt_code),
                   ? as batch_id, patient_id, service_month, billing_npi, billing_provider_npi, cpt_code, units,
                   minutes, charge_amount, expected_payment, date_of_service, coalesce(icd10_codes, [])
            from claimable_lines
        """, [batch.batch_id])
        t = batch.totals
        con.execute("insert into billing.batches values (?, ?, ?, 'committed', ?, ?, ?, ?, ?, ?, ?, ?, null)",
                    [batch.batch_id, batch.as_of, batch.run_id, str(final), t["claims"], t["lines"], t["units"],
                     Decimal(str(t["charges"])), Decimal(str(t["expected_payment"])), batch.manifest_sha256, now])
        con.register("new_batch_files", files)
        con.execute("insert into billing.batch_files select * from new_batch_files")
        con.unregister("new_batch_files")
        _fault("in_ledger")
        con.commit()
    except BaseException:
        _rollback(con)
        shutil.rmtree(final.parent / f"{TMP_PREFIX}{batch.batch_id}", ignore_errors=True)
        raise


def _rollback(con) -> None:
    try:
        con.rollback()
    except duckdb.Error:  # the failure was the commit itself; nothing is open
        pass


def _mark_delivered(con, batch_id: str) -> None:
    con.execute("update billing.batches set status = 'delivered', delivered_at = ? where batch_id = ?",
                [datetime.now(timezone.utc), batch_id])


def recover_batches(con: duckdb.DuckDBPyConnection, claims_dir: Path) -> dict[str, list[str]]:
    """Finish what a killed run left: committed batches are put in place (renamed, or rebuilt from
    billing.batch_files); temp folders that never reached the ledger are deleted (their claims are
    redone) after their control numbers are recorded as void."""
    out: dict[str, list[str]] = {"recovered": [], "abandoned": []}
    for batch_id, path in con.execute(
            "select batch_id, path from billing.batches where status = 'committed' order by batch_id").fetchall():
        final = Path(path)
        tmp = final.parent / f"{TMP_PREFIX}{batch_id}"
        expected = dict(con.execute("select file_name, sha256 from billing.batch_files where batch_id = ?",
                                    [batch_id]).fetchall())
        if _folder_matches(final, expected):
            pass  # killed after the rename: only the status is missing
        elif final.exists():
            raise RuntimeError(f"claim batch folder {final} does not match what billing.batch_files holds for "
                               f"{batch_id}; move it aside and rerun to rebuild it from the warehouse")
        else:
            if not _folder_matches(tmp, expected):  # missing or half-written: rebuild from the warehouse
                shutil.rmtree(tmp, ignore_errors=True)
                files = dict(con.execute("select file_name, content from billing.batch_files where batch_id = ? "
                                         "order by file_name = 'manifest.json', file_name", [batch_id]).fetchall())
                final.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                _write_folder(tmp, {name: bytes(data) for name, data in files.items()})
            os.rename(tmp, final)
            _fsync_dir(final.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        _mark_delivered(con, batch_id)
        out["recovered"].append(batch_id)
        log.warning("claims: recovered interrupted batch %s", batch_id)

    if claims_dir.is_dir():
        for tmp in sorted(claims_dir.glob(f"{TMP_PREFIX}B*")):
            batch_id = tmp.name[len(TMP_PREFIX):]
            match = BATCH_ID.match(batch_id)
            if not match or not tmp.is_dir():
                continue
            status = con.execute("select status from billing.batches where batch_id = ?", [batch_id]).fetchone()
            if status is None:  # never reached the ledger: keep its numbers out of use, redo its claims
                _abandon(con, tmp, batch_id, datetime.strptime(match.group(1), "%Y%m%d").date())
                out["abandoned"].append(batch_id)
                log.warning("claims: removed the temp folder of batch %s, which never reached the ledger", batch_id)
            shutil.rmtree(tmp)
    return out


def _abandon(con, tmp: Path, batch_id: str, as_of: date) -> None:
    numbers = []
    for f in sorted(tmp.glob("*.x12")):
        head = f.read_bytes()[:106].decode("ascii", "replace").split("*")
        if len(head) > 13 and head[0] == "ISA" and head[13].isdigit():
            numbers.append((int(head[13]), f.name))
    now = datetime.now(timezone.utc)
    con.begin()
    try:
        con.execute("insert into billing.batches (batch_id, as_of, status) values (?, ?, 'abandoned')",
                    [batch_id, as_of])
        for n, name in numbers:
            con.execute("""
                insert into billing.control_numbers
                select ?, ?, ?, ?, null, ?, 'void', ?
                where not exists (select 1 from billing.control_numbers
                                  where ? in (interchange_control_number, group_control_number,
                                              transaction_set_control_number))
            """, [n, n, n, batch_id, name, now, n])
        con.commit()
    except BaseException:
        _rollback(con)
        raise


# -- files -------------------------------------------------------------------------------------------

def _next_batch_id(con, as_of: date, claims_dir: Path) -> str:
    prefix = f"B{as_of:%Y%m%d}-"
    seq = con.execute("select coalesce(max(try_cast(split_part(batch_id, '-', 2) as integer)), 0) "
                      "from billing.batches where starts_with(batch_id, ?)", [prefix]).fetchone()[0] + 1
    # a folder the warehouse does not know about (a restored backup?) is never overwritten
    while (claims_dir / f"{prefix}{seq:03d}").exists() or (claims_dir / f"{TMP_PREFIX}{prefix}{seq:03d}").exists():
        seq += 1
    return f"{prefix}{seq:03d}"


def _write_folder(folder: Path, files: dict[str, bytes]) -> None:
    """Every file 0600, every folder 0700 (claims and audit packets are PHI), all
    on disk before the ledger commits. One sync for the lot, not an fsync per
    file: a batch holds an audit packet per claim (tens of thousands of files),
    and every byte is also in billing.batch_files, from which recovery rebuilds
    a folder that does not match its hashes."""
    _mkdir_private(folder)
    dirs = {folder}
    for i, (name, data) in enumerate(files.items()):
        path = folder / name
        if path.parent not in dirs:
            _mkdir_private(path.parent)
            dirs.add(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fchmod(fd, 0o600)  # whatever the umask
        finally:
            os.close(fd)
        if i == 0:
            _fault("mid_files")
    os.sync()
    for d in sorted(dirs, key=lambda p: len(p.parts), reverse=True):
        _fsync_dir(d)
    _fsync_dir(folder.parent)


def _mkdir_private(path: Path) -> None:
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _folder_matches(folder: Path, expected: dict[str, str]) -> bool:
    if not folder.is_dir() or not expected:
        return False
    present = {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}
    return set(present) == set(expected) and all(
        hashlib.sha256(present[name].read_bytes()).hexdigest() == sha for name, sha in expected.items())


def _csv_bytes(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _json_bytes(obj: Any) -> bytes:
    # No indent: it forces json's pure-Python encoder, 3x slower over tens of
    # thousands of audit packets. Any JSON viewer pretty-prints on opening.
    return (json.dumps(obj, default=_json_default, ensure_ascii=False) + "\n").encode("utf-8")


def _fetch_dicts(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
