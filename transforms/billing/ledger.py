"""The ledger (sql/billing/): what was billed, committed in one transaction with
its control numbers, batch row and file hashes, and the recovery of a batch a
killed run left half-way.

billing.ledger holds one row per claim ever written, and billing.live_claims
the one live claim each patient-month may have per usage (test, production;
its primary key is the guard), both written in the same DuckDB transaction as
the control numbers, the batch row and the name, SHA-256 and size of every
file (billing.batch_files; not the bytes: a batch is hundreds of MB of PHI
that the warehouse need not hold twice). A 999, 277CA or TA1 rejecting a claim
deletes its live row (transforms.billing.responses); nothing else does. The batch writer
(transforms.billing.batch) writes the files to a hidden temp folder first and
renames it into place only after that transaction commits. A kill at any point
leaves either no ledger rows and a temp folder (deleted, its control numbers
voided, its claims redone on the next run), or ledger rows and a complete temp
folder, which the next run checks against the hashes and renames into place. A
committed batch whose folder is gone or does not match its hashes cannot be
rebuilt from the warehouse (staging has moved on): the run stops with a message
naming the batch and the folder, to be restored from a backup.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import signal
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from transforms.warehouse import run_sql

if TYPE_CHECKING:
    from transforms.billing.batch import Batch

log = logging.getLogger(__name__)

BILLING_TABLES = ("batches", "control_numbers", "ledger", "ledger_lines", "batch_files", "review", "live_claims",
                  "releases", "response_files", "claim_events", "acknowledgments", "remittances",
                  "remittance_claims", "remittance_lines", "remittance_adjustments", "provider_adjustments",
                  "overpayments", "code_descriptions")
TMP_PREFIX = ".tmp-"  # a batch being written; renamed into place once the ledger holds it
BATCH_ID = re.compile(r"^B(\d{8})-(\d{3,})$")


# Fault injection for the crash tests: CCM_FAULT=<point> kills the process there
# (CCM_FAULT_SIGNAL=KILL: by SIGKILL, else by os._exit). These points are inside the
# claims stage; pipeline.RUN_FAULT_POINTS are the run's, between and inside stages.
FAULT_ENV = "CCM_FAULT"
FAULT_POINTS = ("mid_files", "after_files", "in_ledger", "after_ledger", "after_rename")
FAULT_EXIT_CODE = 75


def fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        if os.environ.get(f"{FAULT_ENV}_SIGNAL") == "KILL":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(FAULT_EXIT_CODE)  # no cleanup, no flush: what a kill -9 leaves behind


def ensure_billing_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists billing")
    _migrate_ledger(con)
    for name in BILLING_TABLES:
        run_sql(con, f"billing/{name}.sql")
    # Warehouses from before streaming batches kept every file's bytes: drop them, keep the hashes.
    columns = {r[0] for r in con.execute("select column_name from information_schema.columns where "
                                         "table_schema = 'billing' and table_name = 'batch_files'").fetchall()}
    if "content" in columns:
        con.execute("alter table billing.batch_files drop column content")
    if "size" not in columns:
        con.execute("alter table billing.batch_files add column size bigint")


def _migrate_ledger(con) -> None:
    """Warehouses from before responses held one ledger row per patient-month (its primary key, "billed
    once, ever"). Rebuild the table in place with one row per claim, in one transaction: every old claim
    is live (no response was ever read), in the usage its batch's manifest names (P when it cannot be
    read: a month is then never billed twice in production)."""
    columns = {r[0] for r in con.execute("select column_name from information_schema.columns where "
                                         "table_schema = 'billing' and table_name = 'ledger'").fetchall()}
    if not columns or "usage_indicator" in columns:
        return
    batches = con.execute("select distinct l.batch_id, b.path from billing.ledger l "
                          "left join billing.batches b using (batch_id)").fetchall()
    usage = {batch_id: _batch_usage(Path(path) if path else None) for batch_id, path in batches}
    try:
        con.begin()
        own_transaction = True
    except duckdb.TransactionException:  # the caller's transaction holds the migration too
        own_transaction = False
    try:
        con.execute("create or replace temp table batch_usage (batch_id varchar, usage_indicator varchar)")
        if usage:
            con.executemany("insert into batch_usage values (?, ?)", list(usage.items()))
        con.execute("create table billing.ledger_before_claims as select * from billing.ledger")
        con.execute("drop table billing.ledger")
        run_sql(con, "billing/ledger.sql")
        con.execute("""
            insert into billing.ledger (patient_id, service_month, claim_id, batch_id, billing_npi,
                billing_provider_npi, billed_codes, billed_minutes, units, charge_amount, expected_payment,
                date_of_service, run_id, committed_at, usage_indicator)
            select patient_id, service_month, claim_id, batch_id, billing_npi, billing_provider_npi, billed_codes,
                   billed_minutes, units, charge_amount, expected_payment, date_of_service, run_id, committed_at,
                   coalesce(u.usage_indicator, 'P')
            from billing.ledger_before_claims left join batch_usage u using (batch_id)""")
        run_sql(con, "billing/live_claims.sql")
        con.execute("insert into billing.live_claims select usage_indicator, patient_id, service_month, claim_id, "
                    "committed_at from billing.ledger")
        con.execute("drop table billing.ledger_before_claims")
        if own_transaction:
            con.commit()
    except BaseException:
        if own_transaction:
            _rollback(con)
        raise
    log.warning("billing.ledger: migrated to one row per claim (%d batches)", len(batches))


def _batch_usage(folder: Path | None) -> str:
    """T or P as a delivered batch says it (manifest.json, else ISA15 of an interchange); P when unknown."""
    if folder is None:
        return "P"
    try:
        usage = json.loads((folder / "manifest.json").read_text(encoding="utf-8")).get("usage_indicator")
        if usage in ("T", "P"):
            return usage
    except (OSError, ValueError):
        pass
    for f in sorted(folder.glob("*.x12"))[:1]:
        head = f.read_bytes()[:106].decode("ascii", "replace")
        if head.startswith("ISA") and len(head) == 106 and head[102] in ("T", "P"):
            return head[102]
    return "P"


def next_control_number(con, start: int, end: int, claims_dir: Path, needed: int) -> int:
    """The first of `needed` consecutive unused ISA13/GS06/ST02 numbers in the practice's range for this
    warehouse (x12.control_number_start .. _end). A warehouse with no numbers yet over a claims folder
    that has batches (a rebuilt warehouse) continues after the highest ISA13 found there, so a number
    that left for the clearinghouse is never sent again."""
    used = con.execute("select max(interchange_control_number) from billing.control_numbers "
                       "where interchange_control_number between ? and ?", [start, end]).fetchone()[0]
    if used is None and con.execute("select count(*) from billing.control_numbers").fetchone()[0] == 0:
        found = [n for n in _isa13_in(claims_dir) if start <= n <= end]
        used = max(found, default=None)
    first = max(start, (used or 0) + 1)
    if first + needed - 1 > end:
        raise RuntimeError(f"x12 control numbers: the range {start}..{end} (x12.control_number_start/_end) has no "
                           f"{needed} unused numbers left after {used}; give this warehouse a new range that no "
                           f"other warehouse of the practice uses")
    return first


def _isa13_in(claims_dir: Path) -> list[int]:
    numbers = []
    for f in Path(claims_dir).glob("*/*.x12") if Path(claims_dir).is_dir() else []:
        head = f.read_bytes()[:106].decode("ascii", "replace").split("*")
        if len(head) > 13 and head[0] == "ISA" and head[13].isdigit():
            numbers.append(int(head[13]))
    return numbers


def commit_batch(con, batch: Batch, final: Path, usage_indicator: str = "P") -> None:
    """One transaction: control numbers, ledger, live claims, ledger lines, batch row, file names and
    hashes. A patient-month that already has a live claim in this usage fails the insert (the primary key
    of billing.live_claims) and with it the whole batch."""
    now = datetime.now(timezone.utc)
    files = pa.concat_tables(batch.files)
    files = files.add_column(0, "batch_id", pa.array([batch.batch_id] * files.num_rows, pa.string()))
    control_rows = [(ic.number, ic.number, ic.number, batch.batch_id, ic.npi, ic.file_name)
                    for ic in batch.interchanges]
    con.begin()
    try:
        con.executemany("insert into billing.control_numbers values (?, ?, ?, ?, ?, ?, 'used', ?)",
                        [(*row, now) for row in control_rows])
        con.execute("""
            insert into billing.ledger (patient_id, service_month, claim_id, batch_id, billing_npi,
                billing_provider_npi, billed_codes, billed_minutes, units, charge_amount, expected_payment,
                date_of_service, run_id, committed_at, usage_indicator, content_hash, replaces_claim_id,
                allowed_amount, patient_responsibility)
            select patient_id, service_month, claim_id, ? as batch_id,
                   any_value(billing_npi), any_value(billing_provider_npi),
                   string_agg(cpt_code || case when units > 1 then 'x' || units else '' end, ' '
                              order by line_number, cpt_code),
                   any_value(countable_minutes), sum(units), sum(charge_amount), sum(expected_payment),
                   max(date_of_service), ? as run_id, ? as committed_at, ? as usage_indicator,
                   any_value(content_hash), any_value(replaces_claim_id), sum(allowed_amount),
                   sum(patient_responsibility)
            from claimable_lines group by patient_id, service_month, claim_id
        """, [batch.batch_id, batch.run_id, now, usage_indicator])
        con.execute("""
            insert into billing.live_claims
            select distinct ?, patient_id, service_month, claim_id, ?::timestamptz from claimable_lines
        """, [usage_indicator, now])
        con.execute("""
            insert into billing.ledger_lines (claim_id, line_number, batch_id, patient_id, service_month, billing_npi,
                                              billing_provider_npi, cpt_code, units, minutes, charge_amount,
                                              expected_payment, date_of_service, icd10_codes, allowed_amount,
                                              patient_responsibility)
            select claim_id, row_number() over (partition by claim_id order by line_number, cpt_code),
                   ? as batch_id, patient_id, service_month, billing_npi, billing_provider_npi, cpt_code, units,
                   minutes, charge_amount, expected_payment, date_of_service, coalesce(icd10_codes, []),
                   allowed_amount, patient_responsibility
            from claimable_lines
        """, [batch.batch_id])
        t = batch.totals
        con.execute("insert into billing.batches values (?, ?, ?, 'committed', ?, ?, ?, ?, ?, ?, ?, ?, null)",
                    [batch.batch_id, batch.as_of, batch.run_id, str(final), t["claims"], t["lines"], t["units"],
                     Decimal(str(t["charges"])), Decimal(str(t["expected_payment"])), batch.manifest_sha256, now])
        con.register("new_batch_files", files)
        con.execute("insert into billing.batch_files (batch_id, file_name, sha256, size) "
                    "select batch_id, file_name, sha256, size from new_batch_files")
        con.unregister("new_batch_files")
        fault("in_ledger")
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


def mark_delivered(con, batch_id: str) -> None:
    con.execute("update billing.batches set status = 'delivered', delivered_at = ? where batch_id = ?",
                [datetime.now(timezone.utc), batch_id])


def recover_batches(con: duckdb.DuckDBPyConnection, claims_dir: Path) -> dict[str, list[str]]:
    """Finish what a killed run left: committed batches whose complete temp folder (every file, every
    hash as in billing.batch_files) is there are renamed into place; a committed batch whose folder is
    gone or does not match fails the run (the warehouse holds hashes, not bytes: it cannot be rebuilt);
    temp folders that never reached the ledger are deleted (their claims are redone) after their
    control numbers are recorded as void."""
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
            raise RuntimeError(f"claim batch {batch_id}: folder {final} does not match the SHA-256 hashes in "
                               f"billing.batch_files; restore the batch's folder from a backup (the warehouse "
                               f"holds only its hashes) and rerun")
        elif _folder_matches(tmp, expected):
            os.rename(tmp, final)
            fsync_dir(final.parent)
        else:
            state = "is incomplete or altered" if tmp.exists() else "is missing"
            raise RuntimeError(f"claim batch {batch_id} is in the ledger but its folder {tmp} {state} (it was "
                               f"to be renamed to {final}); it cannot be rebuilt from the warehouse, which holds "
                               f"only the files' hashes: restore the folder from a backup and rerun")
        mark_delivered(con, batch_id)
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


def next_batch_id(con, as_of: date, claims_dir: Path) -> str:
    prefix = f"B{as_of:%Y%m%d}-"
    seq = con.execute("select coalesce(max(try_cast(split_part(batch_id, '-', 2) as integer)), 0) "
                      "from billing.batches where starts_with(batch_id, ?)", [prefix]).fetchone()[0] + 1
    # a folder the warehouse does not know about (a restored backup?) is never overwritten
    while (claims_dir / f"{prefix}{seq:03d}").exists() or (claims_dir / f"{TMP_PREFIX}{prefix}{seq:03d}").exists():
        seq += 1
    return f"{prefix}{seq:03d}"


def fsync_dir(path: Path) -> None:
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
