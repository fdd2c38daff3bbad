"""The claims stage: closed patient-months without a live claim -> one claim batch folder.

A patient-month has at most one live claim per usage (x12.usage_indicator: T
test, P production; billing.live_claims). It is claimed when it was never
billed in tonight's usage, or when its claim was rejected (999, 277CA, TA1)
and either the claim would now say something else or `ccm resubmit` released
it: then under a new claim id, the ledger row naming the claim it replaces
(sql/billing/claimable_lines.sql).

    <claims_dir>/<batch_id>/
        <batch_id>_<group NPI>.x12   one 837P interchange per billing provider
        claim_lines.csv               one row per billed code (the contract's columns)
        audit/<claim_id>.json         the activity log and eligibility evidence behind each claim
        manifest.json                 counts, control totals, control numbers, what was validated how,
                                      SHA-256 of every other file

Streaming: the batch is never held in memory. Claims are numbered in DuckDB
(billing/batch_claims.sql) and written CHUNK_CLAIMS at a time: each chunk's
claim segments are rendered with Polars (x12_837p.claim_blocks) and appended
to their provider's interchange (ISA/GS/ST header first, SE/GE/IEA with the
segment count last), its claim_lines.csv rows come out of DuckDB as text, and
the audit packets are built in DuckDB as JSON text (billing/audit_packets.sql)
and written one file each. Every file is hashed as it is written.

Edits: before anything is written, SQL over the whole batch and our own
element edits (billing.edits.claim_line_findings, vectorised, chunk by chunk)
find every claim the data cannot make. Such a claim is withheld, not the batch:
it is left out, its reasons go to billing.withheld_claims (and from there to
marts.patient_month and the worklist), its patient-month stays unbilled, and
every other claim goes out. Only what is wrong for every claim (the
configuration: a billing provider not configured, its NPI or ZIP+4, no
submitter phone) stops the batch. The CSV is read back and checked line for
line against the 837P's service lines. pyx12 reads each whole interchange when
the batch has at most x12_validation.full_max_claims claims (a practice's month
close; then edits.check_batch also re-reads the text, as before); above that,
pyx12 and check_interchange read a sample interchange per provider (the first
PYX12_SAMPLE_FIRST claims and one claim of every shape: number of lines and
diagnoses, second address line or not, set of codes), rendered with the same
envelope. manifest.json says which ("x12_validation"). A pyx12 finding on a
claim's segments withholds that claim and the batch is written again, once; any
other finding deletes the temp folder and aborts the batch before the ledger is
touched. The Airflow DAG (airflow_tasks.validate_interchange) still runs pyx12
on every whole interchange before a batch is published.

Exactly once: the files are written to a hidden temp folder, synced, then
committed to the ledger with their hashes, and only then renamed into place
(transforms.billing.ledger, which also recovers what a killed run left).
"""
from __future__ import annotations

import bisect
import csv
import hashlib
import json
import logging
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import polars as pl
import pyarrow as pa

from transforms.billing.edits import (FINDINGS_SCHEMA, ClaimEditError, check_batch, check_billing_provider,
                                      check_interchange, claim_line_findings, claim_of_segment, pyx12_findings)
from transforms.billing.ledger import (TMP_PREFIX, commit_batch, ensure_billing_schema, fault, fsync_dir,
                                       mark_delivered, next_batch_id, next_control_number, recover_batches)
from transforms.privacy import csv_value
from transforms.settings import Settings
from transforms.warehouse import run_sql, sql_text, table_exists
from transforms.billing.x12_837p import (BillingProviderInfo, Envelope, claim_blocks, interchange_header,
                                         interchange_trailer, prepare_claim_elements)

log = logging.getLogger(__name__)

# The contract's columns, in its order (allowed: the lower of charge and fee schedule amount;
# expected payment: Medicare's share of it; patient responsibility: the coinsurance).
CSV_COLUMNS = ("batch_id", "claim_id", "billing_npi", "patient_id", "mbi", "service_month", "date_of_service",
               "cpt_code", "units", "minutes", "icd10_codes", "charge_amount", "allowed_amount", "expected_payment",
               "patient_responsibility")
CHUNK_CLAIMS = 25_000  # claims rendered, checked and written at a time: bounds memory, not output
AUDIT_CHUNK_CLAIMS = 20_000  # audit packets (a few KB each) fetched at a time
PYX12_SAMPLE_FIRST = 300  # above x12_full_max_claims: pyx12 reads these first claims of each interchange ...
MAX_PROBLEMS = 50  # ... and messages per kind of finding (the rest are counted)


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
    usage = settings.x12.get("usage_indicator", "T")
    con.execute(f"set variable claim_usage = '{'P' if usage == 'P' else 'T'}'")
    _claim_settings(con, settings)
    review_before = con.execute("select count(*) from billing.review").fetchone()[0]
    run_sql(con, "billing/detect_review.sql")
    review_added = con.execute("select count(*) from billing.review").fetchone()[0] - review_before

    run_sql(con, "billing/claimable_lines.sql")
    run_sql(con, "billing/withheld_claims.sql")
    con.execute("create or replace temp table claim_months as "
                "select distinct claim_id, patient_id, service_month from claimable_lines")
    summary: dict[str, Any] = {
        "batch_id": None, "path": None, "claims": 0, "lines": 0, "units": 0, "charges": 0.0,
        "expected_payment": 0.0, "files": 0, "x12_files": [], "review_rows_added": review_added,
        "recovered_batches": recovery["recovered"], "abandoned_temp_folders": recovery["abandoned"],
        "usage_indicator": usage, **_decisions(con),
        "claims_withheld": 0, "withheld_by_edit": {},
    }
    if not con.execute("select count(*) from claimable_lines").fetchall()[0][0]:
        _record_withheld(con, run_id, _no_findings(), summary)
        log.info("claims: nothing to claim as of %s", as_of)
        return summary
    run_sql(con, "billing/batch_claims.sql")

    batch_id = next_batch_id(con, as_of, claims_dir)
    providers = con.execute("select count(distinct billing_provider_npi) from claimable_lines").fetchone()[0]
    first_control_number = next_control_number(con, settings.control_number_start, settings.control_number_end,
                                               claims_dir, providers)
    created_at = datetime.now(ZoneInfo(settings.time_zone)).replace(microsecond=0)
    batch = Batch(batch_id, run_id, as_of, created_at)
    batch.totals = _totals(con)
    # The configuration is wrong for every claim: nothing of the batch can go out.
    problems = _plan_interchanges(con, settings, batch, first_control_number)
    if problems:
        raise ClaimEditError(batch_id, problems)
    # A claim the data cannot make is withheld, with its reasons; the others go out.
    withheld = _claim_findings(con, batch)
    tmp, final = claims_dir / f"{TMP_PREFIX}{batch_id}", claims_dir / batch_id
    for attempt in (1, 2):
        if withheld.height:
            _withhold(con, withheld)
            _record_withheld(con, run_id, withheld, summary)
            if not con.execute("select count(*) from batch_claims").fetchall()[0][0]:
                log.warning("claims: every claim withheld as of %s (%d)", as_of, summary["claims_withheld"])
                return summary
            batch.totals = _totals(con)
            problems = _plan_interchanges(con, settings, batch, first_control_number)
            if problems:
                raise ClaimEditError(batch_id, problems)
        claims_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            _write_batch(con, settings, batch, tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # PHI never lingers in a folder that will not be delivered
            raise
        if not batch.problems:
            break
        shutil.rmtree(tmp, ignore_errors=True)
        # pyx12 found what our edits did not, on claims it names: withhold those and write
        # the batch again, once. A finding on no claim (the envelope) stops the batch.
        if attempt == 1 and batch.claim_findings.height and not batch.unattributed_problems:
            withheld = pl.concat([withheld, batch.claim_findings])
            continue
        raise ClaimEditError(batch_id, batch.problems)
    if not withheld.height:
        _record_withheld(con, run_id, withheld, summary)
    fault("after_files")
    commit_batch(con, batch, final, usage)
    fault("after_ledger")
    os.rename(tmp, final)
    fsync_dir(claims_dir)
    fault("after_rename")
    mark_delivered(con, batch_id)

    summary.update({k: batch.totals[k] for k in ("claims", "lines", "units", "charges", "expected_payment")},
                   batch_id=batch_id, path=str(final), files=batch.file_count,
                   x12_files=sorted(ic.file_name for ic in batch.interchanges))
    log.info("claims: batch %s delivered: %d claims, %d lines, %d units, charges %.2f (pyx12: %s, %d claims)",
             batch_id, summary["claims"], summary["lines"], summary["units"], summary["charges"],
             batch.validation["pyx12"], batch.validation["claims_checked_by_pyx12"])
    return summary


def _claim_settings(con, settings: Settings) -> None:
    """claim_settings (temp): per billing provider, a fingerprint of what the configuration puts on its
    claims (provider, payer, submitter, receiver, place of service), part of every claim's content hash:
    a rejected claim goes out again on its own when the practice corrects, say, its payer id."""
    x12 = settings.x12
    rows = []
    for bp in settings.billing_providers:
        said = [bp.npi, bp.name, bp.tin, bp.taxonomy, bp.address.line1, bp.address.line2 or "", bp.address.city,
                bp.address.state, bp.address.zip, settings.payer_name, settings.payer_id, x12.get("submitter_id", ""),
                x12.get("submitter_name", ""), x12.get("receiver_id", ""), x12.get("receiver_name", ""),
                settings.place_of_service or "11"]
        rows.append((bp.npi, hashlib.sha256("|".join(said).encode("utf-8")).hexdigest()))
    con.execute("create or replace temp table claim_settings (billing_provider_npi varchar, fingerprint varchar)")
    con.executemany("insert into claim_settings values (?, ?)", rows)


def _decisions(con) -> dict[str, int]:
    """How tonight's candidates were decided (claim_candidates.decision), for the summary."""
    counts = dict(con.execute("select decision, count(*) from claim_candidates group by all").fetchall())
    return {"rebilled_changed": counts.get("rebill_changed", 0), "rebilled_released": counts.get("rebill_released", 0),
            "rejected_unchanged_waiting": counts.get("held_unchanged", 0)}


# -- planning a batch --------------------------------------------------------------------------------

@dataclass
class Interchange:
    npi: str
    file_name: str
    number: int  # ISA13 = GS06 = ST02
    envelope: Envelope
    provider: BillingProviderInfo
    claims: int = 0


@dataclass
class Batch:
    batch_id: str
    run_id: str
    as_of: date
    created_at: datetime
    interchanges: list[Interchange] = None
    totals: dict[str, Any] = None
    files: list[pa.Table] = None  # file_name, sha256, size of every file written, manifest last
    file_count: int = 0
    manifest_sha256: str = ""
    validation: dict[str, Any] = None
    problems: list[str] = None
    interchange_rows: list[dict] = None  # manifest "interchanges"
    claim_findings: pl.DataFrame = None  # pyx12's findings on claims it names (claim_id, edit, reason)
    unattributed_problems: int = 0  # problems on no claim (or our own writer's): the batch stops


def _totals(con) -> dict[str, Any]:
    claims, lines, units, charges, allowed, expected, patient = con.execute("""
        select count(distinct claim_id), count(*), coalesce(sum(units), 0), coalesce(sum(charge_amount), 0),
               coalesce(sum(coalesce(allowed_amount, 0)), 0), coalesce(sum(coalesce(expected_payment, 0)), 0),
               coalesce(sum(coalesce(patient_responsibility, 0)), 0)
        from claimable_lines""").fetchall()[0]
    charges, allowed, expected, patient = (Decimal(v).quantize(Decimal("0.01"))
                                           for v in (charges, allowed, expected, patient))
    return {"claims": claims, "lines": lines, "units": int(units), "charges": float(charges),
            "expected_payment": float(expected), "charges_text": str(charges), "expected_payment_text": str(expected),
            "allowed_amount_text": str(allowed), "patient_responsibility_text": str(patient)}


def _plan_interchanges(con, settings: Settings, batch: Batch, first_control_number: int) -> list[str]:
    """One interchange per billing provider NPI in the batch, in NPI order; problems with the configuration."""
    providers = {bp.npi: bp for bp in settings.billing_providers}
    x12 = settings.x12
    problems: list[str] = []
    batch.interchanges = []
    batch.interchange_rows = []
    rows = con.execute("""
        select billing_provider_npi, count(distinct claim_id), count(*), sum(units), sum(charge_amount)
        from claimable_lines group by all order by 1""").fetchall()
    for n, (npi, claims, lines, units, charges) in enumerate(rows):
        bp = providers.get(npi)
        if bp is None:
            problems.append(f"billing provider NPI {npi!r} (core.code_lines.billing_provider_npi) is not in "
                            f"billing_providers of {settings.source}; add it or fix the consent")
            continue
        number = first_control_number + n
        phone = x12.get("submitter_phone") or bp.phone or ""
        if not phone:
            problems.append(f"x12.submitter_phone: the 837P submitter contact (1000A PER) needs a phone "
                            f"number; set it in {settings.source}")
        env = Envelope(number, number, number, batch.created_at, batch.batch_id, x12["submitter_id"],
                       x12["submitter_name"], x12.get("submitter_contact") or x12["submitter_name"], phone,
                       x12["receiver_id"], x12["receiver_name"], settings.payer_name, settings.payer_id,
                       x12.get("usage_indicator", "T"))
        info = BillingProviderInfo(bp.npi, bp.name, bp.tin, bp.taxonomy, bp.address.line1, bp.address.line2,
                                   bp.address.city, bp.address.state, bp.address.zip)
        name = f"{batch.batch_id}_{npi}.x12"
        batch.interchanges.append(Interchange(npi, name, number, env, info, claims))
        batch.interchange_rows.append({
            "file": name, "billing_provider_npi": npi, "interchange_control_number": f"{number:09d}",
            "group_control_number": str(number), "transaction_set_control_number": f"{number:04d}",
            "claims": claims, "lines": lines, "units": int(units), "charges": str(charges),
        })
        problems += check_billing_provider(name, bp.npi, bp.address.zip)
    return problems


def _no_findings() -> pl.DataFrame:
    return pl.DataFrame(schema=FINDINGS_SCHEMA)


def _claim_findings(con, batch: Batch) -> pl.DataFrame:
    """Every claim the data cannot make, with every reason (claim_id, edit, reason): SQL over
    the whole batch, then our element edits over every claim, chunk by chunk."""
    data = pl.from_arrow(con.sql("""
        select claim_id, 'practitioners' as edit,
               'its code lines name more than one billing practitioner or provider' as reason
        from batch_claims where practitioner_count > 1
        union all
        select claim_id, 'claim_id', 'the claim id names more than one patient-month'
        from batch_claims where patient_month_count > 1
        union all
        select claim_id, 'patient_unknown', 'the patient is not in staging.patients (no patients row has described them)'
        from batch_claims where mbi is null
        union all
        select claim_id, 'rendering_name', 'no staff member has NPI ' || coalesce(billing_npi, '')
               || ' (the rendering practitioner''s name): add them to the staff export'
        from batch_claims where coalesce(rendering_name, '') = ''
        union all
        -- one claim per patient-month: the ledger keys patient_id, and two patients with one MBI
        -- would be one Medicare beneficiary billed twice; which one is right, a person decides
        select claim_id, 'mbi_shared', 'another patient''s claim for the same month carries the same MBI; '
               || 'one claim per patient-month: correct the MBI of one of them in the EHR'
        from (select *, count(*) over (partition by mbi, service_month) as sharing
              from batch_claims where mbi is not null)
        where sharing > 1
    """).to_arrow_table())
    found = [data if data.height else _no_findings()]
    for lo, hi in _chunks(batch.totals["claims"]):
        found.append(claim_line_findings(_claim_lines(con, "", [lo, hi])))
    return pl.concat(found).unique(maintain_order=True)


def _withhold(con, findings: pl.DataFrame) -> None:
    """Take the claims of `findings` out of tonight's batch (claimable_lines, batch_claims)."""
    con.register("withheld_findings", findings.select("claim_id").unique().to_arrow())
    try:
        con.execute("delete from claimable_lines where claim_id in (select claim_id from withheld_findings)")
    finally:
        con.unregister("withheld_findings")
    run_sql(con, "billing/batch_claims.sql")


def _record_withheld(con, run_id: str, findings: pl.DataFrame, summary: dict) -> None:
    """billing.withheld_claims := tonight's withheld claims and their reasons (replaced every run)."""
    con.register("withheld_findings", findings.to_arrow())
    try:
        con.begin()
        try:
            con.execute("delete from billing.withheld_claims")
            con.execute("""
                insert into billing.withheld_claims
                select l.patient_id, l.service_month, f.claim_id, f.edit, f.reason, ?, now()
                from withheld_findings f
                join claim_months l using (claim_id)
            """, [run_id])
            con.commit()
        except BaseException:
            con.rollback()
            raise
    finally:
        con.unregister("withheld_findings")
    by_edit = con.execute("select edit, count(distinct claim_id) from billing.withheld_claims group by 1 "
                          "order by 2 desc, 1").fetchall()
    summary["claims_withheld"] = con.execute("select count(distinct claim_id) from billing.withheld_claims"
                                             ).fetchall()[0][0]
    summary["withheld_by_edit"] = dict(by_edit)


# -- writing a batch (streaming) --------------------------------------------------------------------

class _HashedFile:
    """A new private file (0600) written with os.write and hashed as it goes."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(self.fd, 0o600)  # whatever the umask
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.sha.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def close(self) -> tuple[str, int]:
        os.close(self.fd)
        return self.sha.hexdigest(), self.size


def _write_file(path: Path, data: bytes) -> str:
    f = _HashedFile(path)
    try:
        f.write(data)
    finally:
        digest, _ = f.close()
    return digest


def _chunks(total: int, size: int | None = None) -> list[tuple[int, int]]:
    size = size or CHUNK_CLAIMS
    return [(lo, min(lo + size - 1, total)) for lo in range(1, total + 1, size)]


def _claim_lines(con, sql_where: str, params: list) -> pl.DataFrame:
    sql = sql_text("billing/claim_chunk_lines.sql")
    if sql_where:
        sql = sql.replace("where claim_ordinal between $1 and $2", sql_where)
    return prepare_claim_elements(pl.from_arrow(con.sql(sql, params=params).to_arrow_table()))


def _write_batch(con, settings: Settings, batch: Batch, tmp: Path) -> None:
    """Every file of the batch into `tmp`, hashed as written; edits on every claim; pyx12 on the
    interchanges (whole or sampled); then the manifest; then one sync for the lot."""
    n_claims = batch.totals["claims"]
    batch.problems, names, shas, sizes = [], [], [], []
    batch.claim_findings, batch.unattributed_problems = _no_findings(), 0
    started, seconds = time.perf_counter(), {}
    _mkdir_private(tmp)
    _mkdir_private(tmp / "audit")

    # the interchanges and claim_lines.csv, chunk by chunk in claim order
    x12_files, segments = {}, {}
    for ic in batch.interchanges:
        head, segments[ic.npi] = interchange_header(ic.envelope, ic.provider)
        x12_files[ic.npi] = _HashedFile(tmp / ic.file_name)
        x12_files[ic.npi].write(head.encode("ascii"))
    csv_file = _HashedFile(tmp / "claim_lines.csv")
    csv_file.write((",".join(CSV_COLUMNS) + "\n").encode("utf-8"))
    x12_lines = []  # (claim_id, cpt_code, units, charge) of every SV1, to check the CSV against
    for i, (lo, hi) in enumerate(_chunks(n_claims)):
        lines = _claim_lines(con, "", [lo, hi])  # edited before (_claim_findings): withheld claims are gone
        blocks = claim_blocks(lines, settings.payer_name, settings.payer_id, settings.place_of_service or "11")
        for (npi,), part in blocks.partition_by("billing_provider_npi", as_dict=True, maintain_order=True).items():
            x12_files[npi].write(part["block"].str.join("").item().encode("ascii", "replace"))
            segments[npi] += int(part["segments"].sum())
        x12_lines.append(lines.select("claim_id", "cpt_code", "units", charge="x12_charge"))
        text = con.execute(sql_text("billing/claim_chunk_csv.sql"), [batch.batch_id, lo, hi]).fetchall()[0][0]
        csv_file.write(text.encode("utf-8"))
        del lines, blocks
        if i == 0:
            fault("mid_files")
    for ic in batch.interchanges:
        x12_files[ic.npi].write(interchange_trailer(ic.envelope, segments[ic.npi]).encode("ascii"))
        digest, size = x12_files[ic.npi].close()
        names.append(ic.file_name), shas.append(digest), sizes.append(size)
    digest, size = csv_file.close()
    names.append("claim_lines.csv"), shas.append(digest), sizes.append(size)
    mismatch = _csv_matches_x12(con, tmp / "claim_lines.csv", pl.concat(x12_lines))
    batch.problems += mismatch
    batch.unattributed_problems += len(mismatch)
    del x12_lines
    batch.files = [pa.table({"file_name": names, "sha256": shas, "size": sizes})]
    seconds["837p_csv_edits"] = time.perf_counter() - started

    # the validation pyx12 does on top of our edits
    batch.validation = _pyx12(con, settings, batch, tmp)
    seconds["pyx12"] = time.perf_counter() - started - sum(seconds.values())
    if batch.problems:
        return

    # audit packets, chunk by chunk in claim id order
    con.execute("create or replace temp macro iso_local(ts) as strftime(ts, '%Y-%m-%dT%H:%M:%S') || "
                "case when epoch_us(ts) % 1000000 <> 0 then strftime(ts, '.%f') else '' end")
    audit_sql = _audit_sql(con)
    chunks = _chunks(n_claims, AUDIT_CHUNK_CLAIMS)

    def fetch(i: int) -> list[tuple[str, str]]:
        return con.execute(audit_sql, [batch.batch_id, *chunks[i]]).fetchall()

    # DuckDB builds the next chunk's packets (releasing the GIL) while this
    # thread creates the files of the current one: at 10M the two take about
    # as long as each other. Only the fetching thread touches the connection.
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        pending = prefetch.submit(fetch, 0) if chunks else None
        for i in range(len(chunks)):
            rows = pending.result()
            pending = prefetch.submit(fetch, i + 1) if i + 1 < len(chunks) else None
            batch.files.append(_write_audit_chunk(tmp, rows))
    seconds["audit"] = time.perf_counter() - started - sum(seconds.values())

    manifest_sha, size = _write_manifest(settings, batch, tmp / "manifest.json")
    batch.files.append(pa.table({"file_name": ["manifest.json"], "sha256": [manifest_sha], "size": [size]}))
    batch.manifest_sha256 = manifest_sha
    batch.file_count = sum(t.num_rows for t in batch.files)
    # One sync for the lot, not an fsync per file: a batch holds an audit packet per claim.
    os.sync()
    fsync_dir(tmp / "audit")
    fsync_dir(tmp)
    fsync_dir(tmp.parent)
    seconds["manifest_sync"] = time.perf_counter() - started - sum(seconds.values())
    log.info("claims: batch %s written (%s)", batch.batch_id, ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))


def _write_audit_chunk(tmp: Path, rows: list[tuple[str, str]]) -> pa.Table:
    names, shas, sizes = [], [], []
    for claim_id, packet in rows:
        data = packet.encode("utf-8")
        name = f"audit/{claim_id}.json"
        shas.append(_write_file(tmp / name, data))
        names.append(name), sizes.append(len(data))
    return pa.table({"file_name": names, "sha256": shas, "size": sizes})


def _csv_matches_x12(con, csv_path: Path, x12_lines: pl.DataFrame) -> list[str]:
    """claim_lines.csv as written, read back, = the 837P's service lines, line for line."""
    con.register("x12_service_lines", x12_lines.to_arrow())
    try:
        rows = con.execute(f"""
            with csv_lines as (
                select csv_value(claim_id) as claim_id, csv_value(cpt_code) as cpt_code, units::integer as units,
                       charge_amount::decimal(18, 2) as charge
                from read_csv('{str(csv_path).replace("'", "''")}', header = true, all_varchar = true)
            ),
            x12_lines as (
                select claim_id, cpt_code, units::integer as units, charge::decimal(18, 2) as charge
                from x12_service_lines
            ),
            csv_only as (select * from csv_lines except all select * from x12_lines),
            x12_only as (select * from x12_lines except all select * from csv_lines)
            select 'claim_lines.csv', * from csv_only union all select 'the 837P files', * from x12_only
            order by all limit 10""").fetchall()
    finally:
        con.unregister("x12_service_lines")
    return [f"claim {claim_id}: line {cpt} x{units} {charge} is only in {label}; "
            "the CSV and the 837P must agree line for line" for label, claim_id, cpt, units, charge in rows]


def _pyx12(con, settings: Settings, batch: Batch, tmp: Path) -> dict[str, Any]:
    """pyx12 on every whole interchange (and the text edits of check_batch) up to x12_full_max_claims
    claims; above, on a sample interchange per provider. Findings go to batch.problems."""
    n_claims = batch.totals["claims"]
    if n_claims <= settings.x12_full_max_claims:
        texts = {ic.file_name: (tmp / ic.file_name).read_text(encoding="ascii") for ic in batch.interchanges}
        with open(tmp / "claim_lines.csv", newline="", encoding="utf-8") as fh:
            csv_rows = [{k: csv_value(v) for k, v in row.items()} for row in csv.DictReader(fh)]
        months = dict(con.execute("select claim_id, service_month from batch_claims").fetchall())
        found = check_batch(texts, csv_rows, months)
        batch.unattributed_problems += len(found)
        for name, text in texts.items():
            found += _pyx12_on(batch, text, name)
        batch.problems += [p for p in dict.fromkeys(found) if p not in batch.problems]
        return {"pyx12": "full", "claims_checked_by_pyx12": n_claims, "claims": n_claims,
                "own_edits": "every claim"}

    sample = con.execute(f"""
        select claim_ordinal from (
            select claim_ordinal,
                   row_number() over (partition by billing_provider_npi order by claim_ordinal) as nth,
                   row_number() over (partition by billing_provider_npi, line_count, len(diagnoses),
                                                   coalesce(address_line2, '') = '', list_sort(cpt_codes)
                                      order by claim_ordinal) as nth_of_shape
            from batch_claims)
        where nth <= {int(PYX12_SAMPLE_FIRST)} or nth_of_shape = 1
        order by claim_ordinal""").fetchall()
    ordinals = [r[0] for r in sample]
    checked = 0
    for lo in range(0, len(ordinals), CHUNK_CLAIMS):  # a sample is small; chunked all the same
        part = ordinals[lo:lo + CHUNK_CLAIMS]
        lines = _claim_lines(con, "where claim_ordinal in (select unnest($1::bigint[]))", [part])
        # HL01 numbers the claims of the sample interchange, 2 onwards
        lines = lines.with_columns(
            hl=pl.col("claim_ordinal").rank("dense").over("billing_provider_npi").cast(pl.Int64) + 1)
        blocks = claim_blocks(lines, settings.payer_name, settings.payer_id, settings.place_of_service or "11")
        months = dict(zip(*lines.select("claim_id", "service_month").unique().to_dict(as_series=False).values()))
        for ic in batch.interchanges:
            part_blocks = blocks.filter(pl.col("billing_provider_npi") == ic.npi)
            if part_blocks.is_empty():
                continue
            head, n = interchange_header(ic.envelope, ic.provider)
            text = (head + part_blocks["block"].str.join("").item()
                    + interchange_trailer(ic.envelope, n + int(part_blocks["segments"].sum())))
            found = check_interchange(text, f"{ic.file_name} (pyx12 sample)", months)
            batch.unattributed_problems += len(found)
            found += _pyx12_on(batch, text, f"{ic.file_name} (pyx12 sample)")
            batch.problems += found
            checked += part_blocks.height
    return {"pyx12": "sample", "claims_checked_by_pyx12": checked, "claims": n_claims, "own_edits": "every claim"}


def _pyx12_on(batch: Batch, text: str, label: str) -> list[str]:
    """pyx12 on one interchange's text: its findings as messages, and those on a claim (its
    segments) in batch.claim_findings, the others counted in batch.unattributed_problems."""
    spans = claim_of_segment(text)
    starts = [first for first, _, _ in spans]
    messages, rows = [], []
    for line, finding in pyx12_findings(text):
        messages.append(f"{label}: pyx12: {finding}")
        i = bisect.bisect_right(starts, line) - 1 if line is not None else -1
        if i >= 0 and spans[i][0] <= line <= spans[i][1] and spans[i][2]:
            rows.append((spans[i][2], "pyx12", f"pyx12 (005010X222A1): {finding.split(': ', 1)[-1]}"))
        else:
            batch.unattributed_problems += 1
    if rows:
        batch.claim_findings = pl.concat([batch.claim_findings,
                                          pl.DataFrame(rows, schema=FINDINGS_SCHEMA, orient="row")])
    return messages


def _json_value(expr: str, data_type: str) -> str:
    """A column as the old json.dumps(default=...) wrote it: dates ISO, timestamps ISO with T, decimals as text."""
    t = data_type.upper()
    if t.startswith("DECIMAL"):
        return f"{expr}::varchar"
    if t == "TIMESTAMP":
        return f"iso_local({expr})"
    if t.startswith("TIMESTAMP"):
        return f"strftime({expr}, '%Y-%m-%dT%H:%M:%S%z')"
    return expr


def _audit_sql(con) -> str:
    rules = "select null::varchar as claim_id, null::json as item where false"
    if table_exists(con, "core", "eligibility"):
        columns = con.execute("select column_name, data_type from information_schema.columns "
                              "where table_schema = 'core' and table_name = 'eligibility' "
                              "order by ordinal_position").fetchall()
        if {"patient_id", "service_month"} <= {c for c, _ in columns}:
            fields = ", ".join(f"'{c}', {_json_value('e.' + chr(34) + c + chr(34), t)}" for c, t in columns)
            rules = (f"select b.claim_id, json_object({fields}) as item from chunk b "
                     f"join core.eligibility e using (patient_id, service_month) "
                     f"qualify row_number() over (partition by b.claim_id) = 1")
    # the visit that initiated care management, as the rules stage found it (core.eligibility)
    initiating = "select null::varchar as claim_id, null::varchar as encounter_id where false"
    if table_exists(con, "core", "eligibility") and con.execute(
            "select count(*) from information_schema.columns where table_schema = 'core' "
            "and table_name = 'eligibility' and column_name = 'initiating_encounter_id'").fetchone()[0]:
        initiating = ("select b.claim_id, e.initiating_encounter_id as encounter_id from chunk b "
                      "join core.eligibility e using (patient_id, service_month)")
    return (sql_text("billing/audit_packets.sql").replace("{rules_verdict}", rules)
            .replace("{initiating_encounter}", initiating))


def _write_manifest(settings: Settings, batch: Batch, path: Path) -> tuple[str, int]:
    """manifest.json, its "files" object streamed from the per-chunk file tables."""
    t = batch.totals
    manifest = {
        "batch_id": batch.batch_id, "as_of": batch.as_of.isoformat(), "run_id": batch.run_id,
        "created_at": batch.created_at.isoformat(), "practice": settings.practice_name,
        "payer": {"name": settings.payer_name, "id": settings.payer_id},
        "usage_indicator": settings.x12.get("usage_indicator", "T"),
        "counts": {"claims": t["claims"], "lines": t["lines"], "units": t["units"],
                   "interchanges": len(batch.interchanges), "audit_packets": t["claims"]},
        "control_totals": {"claims": t["claims"], "lines": t["lines"], "units": t["units"],
                           "charges": t["charges_text"], "allowed_amount": t["allowed_amount_text"],
                           "expected_payment": t["expected_payment_text"],
                           "patient_responsibility": t["patient_responsibility_text"]},
        "interchanges": batch.interchange_rows,
        "x12_validation": batch.validation,
    }
    head = json.dumps(manifest, ensure_ascii=False)
    f = _HashedFile(path)
    try:
        f.write((head[:-1] + ', "files": {').encode("utf-8"))
        first = True
        for table in batch.files:
            frame = pl.from_arrow(table)
            text = frame.select(pl.concat_str([pl.lit('"'), pl.col("file_name"), pl.lit('": "'), pl.col("sha256"),
                                               pl.lit('"')]).str.join(", ")).item()
            if text:
                f.write(((", " if not first else "") + text).encode("utf-8"))
                first = False
        f.write(b"}}\n")
    finally:
        digest, size = f.close()
    return digest, size


# -- committing and delivering ----------------------------------------------------------------------


# -- files -------------------------------------------------------------------------------------------


def _mkdir_private(path: Path) -> None:
    os.mkdir(path, 0o700)
    os.chmod(path, 0o700)


