"""Response files in, one transaction each: read, check, match, record.

For every file of the responses folder (hidden files and folders aside), in
the order TA1, 999, 277CA, 835, then by interchange date and name (a
rejection and a payment arriving the same night are read in the order they
happened):

1. its SHA-256: a file already in billing.response_files (under any name) is
   skipped, so a night rerun, or the same 835 dropped twice, changes nothing;
2. not X12, a damaged envelope (segments.envelope_problems), a transaction set
   we do not read (an 837, a 4010 file) or pyx12 findings on the envelope:
   quarantined, one line naming it, and the next file is read;
3. parsed (parse.py) and matched to our interchanges, batches and claims in
   SQL (sql/billing/responses_<kind>.sql); a file that matches nothing of
   ours is quarantined too (its claims are counted as unmatched);
4. one transaction: the file's row, what it says (claim_events,
   acknowledgments, remittance_*), and billing.live_claims brought in line
   (sql/billing/apply_claim_events.sql). A kill before the commit leaves no
   trace of the file (fault points in_response, after_response): the next run
   reads it again.

Nothing here logs or stores PHI: file names, control numbers, claim ids,
codes and amounts only.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from transforms.billing.ledger import ensure_billing_schema, fault
from transforms.billing.responses.codes import load_code_lists
from transforms.billing.responses.parse import parse_277ca, parse_835, parse_999, parse_ta1
from transforms.billing.responses.segments import NotX12, envelope_problems, read_interchange
from transforms.billing.responses.validate import pyx12_check
from transforms.settings import Settings
from transforms.warehouse import run_sql, sql_text

log = logging.getLogger(__name__)

RESPONSE_FAULT_POINTS = ("in_response", "after_response")
# GS01 functional identifier and GS08 version of each response we read
KINDS = {("FA", "005010X231A1"): "999", ("HN", "005010X214"): "277CA", ("HP", "005010X221A1"): "835"}
KIND_ORDER = {"TA1": 0, "999": 1, "277CA": 2, "835": 3, None: 4}
MAX_LISTED = 20  # quarantined files named one by one in the summary; the rest counted


@dataclass
class ResponseFile:
    path: Path
    name: str  # relative to the responses folder
    sha256: str
    size: int
    head: bytes  # the first bytes: ISA and, usually, GS


@dataclass
class Intake:
    """What one file was, for the stage summary."""
    name: str
    kind: str | None
    status: str  # read / quarantined
    reason: str | None = None
    claims_matched: int = 0
    claims_unmatched: int = 0
    events: dict[str, int] = field(default_factory=dict)
    pyx12_findings: int = 0
    paid: str = "0.00"
    unreconciled: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str]] = field(default_factory=list)


def read_responses(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, responses_dir: Path | None,
                   as_of: date) -> dict:
    """The stage: every new response file, then overpayments. Returns a summary without PHI."""
    ensure_billing_schema(con)
    load_code_lists(con)
    summary: dict[str, Any] = {"responses_dir": str(responses_dir) if responses_dir else None,
                               "files_seen": 0, "files_already_read": 0, "files_read": 0, "files_quarantined": 0,
                               "by_kind": {}, "claim_events": {}, "claims_unmatched": 0, "quarantined": [],
                               "unreconciled_payments": [], "live_conflicts": [], "paid_amount": "0.00"}
    if responses_dir is not None:
        files = discover(responses_dir)
        summary["files_seen"] = len(files)
        known = {r[0] for r in con.execute("select sha256 from billing.response_files").fetchall()}
        new = [f for f in files if f.sha256 not in known]
        summary["files_already_read"] = len(files) - len(new)
        paid_total = 0
        seen: set[str] = set()
        for f in sorted(new, key=_order):
            if f.sha256 in seen:  # the same bytes twice tonight under two names
                summary["files_already_read"] += 1
                continue
            seen.add(f.sha256)
            result = intake_file(con, f, run_id)
            fault("after_response")
            if result.status == "quarantined":
                summary["files_quarantined"] += 1
                if len(summary["quarantined"]) < MAX_LISTED:
                    summary["quarantined"].append(f"{f.name}: {result.reason}")
                log.info("responses: %s quarantined: %s", f.name, result.reason)  # the summary names it too
            else:
                summary["files_read"] += 1
                summary["by_kind"][result.kind] = summary["by_kind"].get(result.kind, 0) + 1
                for status, n in result.events.items():
                    summary["claim_events"][status] = summary["claim_events"].get(status, 0) + n
                paid_total += float(result.paid)
                summary["unreconciled_payments"] += [f"{f.name}: {u}" for u in result.unreconciled]
                summary["live_conflicts"] += [f"claim {a} answered after its patient-month was billed again as {b}"
                                              for a, b in result.conflicts]
            summary["claims_unmatched"] += result.claims_unmatched
        summary["paid_amount"] = f"{paid_total:.2f}"
    con.execute(f"set variable responses_run_id = '{run_id.replace(chr(39), chr(39) * 2)}'")
    summary["claims_now"] = dict(con.execute(sql_text("billing/response_run_statuses.sql")).fetchall())
    before = con.execute("select count(*) from billing.overpayments").fetchone()[0]
    run_sql(con, "billing/detect_overpayments.sql")
    summary["overpayment_rows_added"] = con.execute("select count(*) from billing.overpayments").fetchone()[0] - before
    log.info("responses: %d files read, %d quarantined, %d already read", summary["files_read"],
             summary["files_quarantined"], summary["files_already_read"])
    return summary


def discover(folder: Path) -> list[ResponseFile]:
    """Every regular file under the folder, hidden ones aside, with its checksum (streamed)."""
    folder = Path(folder)
    files = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        digest, size, head = hashlib.sha256(), 0, b""
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                if not head:
                    head = chunk[:512]
                digest.update(chunk)
                size += len(chunk)
        files.append(ResponseFile(path, relative.as_posix(), digest.hexdigest(), size, head))
    return files


def _peek_kind(head: bytes) -> tuple[str | None, str]:
    """The kind a file's first bytes announce, and its ISA09/ISA10 (to order files by)."""
    text = head.decode("latin-1").lstrip("\ufeff\r\n\t ")
    if not text.startswith("ISA") or len(text) < 106:
        return None, ""
    sep, term = text[3], text[105]
    when = text[70:75 + 6]
    for segment in text[106:].split(term)[:3]:
        parts = segment.strip().split(sep)
        if parts[0] == "GS" and len(parts) > 8:
            return KINDS.get((parts[1], parts[8])), when
        if parts[0] == "TA1":
            return "TA1", when
    return None, when


def _order(f: ResponseFile):
    kind, when = _peek_kind(f.head)
    return KIND_ORDER.get(kind, 4), when, f.name


# -- one file ------------------------------------------------------------------------------------------

def intake_file(con, f: ResponseFile, run_id: str) -> Intake:
    data = f.path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha != f.sha256:  # changed since it was listed: take it as it is now
        f.sha256, f.size = sha, len(data)
    try:
        ic = read_interchange(data)
    except NotX12 as exc:
        return _quarantine(con, f, run_id, None, None, f"not X12: {exc}")
    problems = envelope_problems(ic)
    if problems:
        return _quarantine(con, f, run_id, None, ic, f"not valid X12: {problems[0]}")
    kind, problem = _kind(ic)
    if kind is None:
        return _quarantine(con, f, run_id, None, ic, problem)
    checked = pyx12_check(data.decode("latin-1").lstrip("\ufeff\r\n\t "))
    if checked.failed or checked.envelope:
        return _quarantine(con, f, run_id, kind, ic, f"not valid X12 (pyx12): {checked.failed or checked.envelope[0]}")

    con.begin()
    try:
        try:
            matched = _match(con, kind, ic)
        except (duckdb.Error, pl.exceptions.PolarsError, ValueError) as exc:
            # a value no 835/277CA/999 should hold (an amount that is not one, say): the file, not the run
            _rollback(con)
            return _quarantine(con, f, run_id, kind, ic, f"cannot be read as a {kind} ({type(exc).__name__} "
                               "while matching it; nothing of it was stored)", checked.body)
        unmatched = int(con.execute("select unmatched from response_unmatched").fetchone()[0] or 0)
        if matched == 0:
            reason = _nothing_matched(con, kind, unmatched)
            con.rollback()
            return _quarantine(con, f, run_id, kind, ic, reason, checked.body, unmatched)
        result = _record(con, f, run_id, kind, ic, checked.body, matched, unmatched)
        fault("in_response")
        con.commit()
    except BaseException:
        _rollback(con)
        raise
    log.info("responses: %s (%s): %d claims matched, %d unmatched", f.name, kind, matched, unmatched)
    return result


def _kind(ic) -> tuple[str | None, str]:
    groups = list(zip(ic.functional_ids(), ic.versions()))
    if not groups:
        if (ic.segments["seg_id"] == "TA1").any():
            return "TA1", ""
        return None, "not a response we read: no functional group and no TA1"
    kinds = {KINDS.get(g) for g in groups}
    if len(kinds) == 1 and None not in kinds:
        return kinds.pop(), ""
    named = ", ".join(sorted({f"GS01 {a} GS08 {b}" for a, b in groups}))
    return None, (f"not a response we read ({named}); we read 999 005010X231A1, 277CA 005010X214, "
                  "835 005010X221A1 and TA1")


def _nothing_matched(con, kind: str, unmatched: int) -> str:
    if kind == "835":
        posted = con.execute("select count(*) filter (where posted_before), count(*) "
                             "from response_transactions").fetchone()
        if posted[1] and posted[0] == posted[1]:
            return "every payment in it (TRN02) was posted before, from another file"
        return f"matches none of our claims ({_claims(unmatched)} unmatched)"
    if kind == "277CA":
        return f"matches none of our claims or batches ({_claims(unmatched)} unmatched)"
    return "matches none of our interchanges (ISA13 / GS06 / ST02)"


def _claims(n: int) -> str:
    return f"{n} claim" + ("" if n == 1 else "s")


def _register(con, name: str, frame: pl.DataFrame) -> None:
    con.register(name, frame.to_arrow())


def _match(con, kind: str, ic) -> int:
    """Run the kind's matching SQL over the parsed frames; how many things of ours the file names."""
    if kind == "TA1":
        _register(con, "ta1_rows", parse_ta1(ic))
        run_sql(con, "billing/responses_ta1.sql")
        return con.execute("select count(*) filter (where matched) from response_acknowledgments").fetchone()[0]
    if kind == "999":
        groups, sets = parse_999(ic)
        _register(con, "ack_groups", groups)
        _register(con, "ack_sets", sets)
        run_sql(con, "billing/responses_999.sql")
        return con.execute("select count(*) filter (where matched) from response_acknowledgments").fetchone()[0]
    if kind == "277CA":
        claims, levels = parse_277ca(ic)
        _register(con, "status_claims", claims)
        _register(con, "status_levels", levels)
        run_sql(con, "billing/responses_277ca.sql")
        return con.execute("select (select count(*) from response_claims where match = 'matched') "
                           "+ (select count(*) filter (where matched) from response_acknowledgments)").fetchone()[0]
    remit = parse_835(ic)
    for name, frame in remit.items():
        _register(con, f"remit_{'plb' if name == 'provider_adjustments' else name}", frame)
    run_sql(con, "billing/responses_835.sql")
    con.execute("create or replace temp table response_acknowledgments as select null::integer as ordinal "
                "where false")
    return con.execute("select count(claim_id) from response_remittance_claims").fetchone()[0]


def _isa_date(ic) -> date | None:
    try:
        return datetime.strptime(ic.date, "%y%m%d").date()
    except ValueError:
        return None


def _file_row(con, f: ResponseFile, run_id: str, kind, ic, status: str, reason: str | None, findings: list[str],
              matched: int, unmatched: int) -> None:
    seq = con.execute("select coalesce(max(file_seq), 0) + 1 from billing.response_files").fetchone()[0]
    con.execute("insert into billing.response_files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        f.sha256, seq, f.name, f.size, kind, status, reason,
        ic.control_number if ic else None, ic.sender_id if ic else None, ic.usage_indicator if ic else None,
        _isa_date(ic) if ic else None, len(findings), findings[0][:300] if findings else None,
        matched, unmatched, run_id, datetime.now(timezone.utc)])


def _quarantine(con, f: ResponseFile, run_id: str, kind, ic, reason: str, findings: list[str] | None = None,
                unmatched: int = 0) -> Intake:
    con.begin()
    try:
        _file_row(con, f, run_id, kind, ic, "quarantined", reason, findings or [], 0, unmatched)
        fault("in_response")
        con.commit()
    except BaseException:
        _rollback(con)
        raise
    return Intake(f.name, kind, "quarantined", reason, claims_unmatched=unmatched)


def _record(con, f: ResponseFile, run_id: str, kind: str, ic, findings: list[str], matched: int,
            unmatched: int) -> Intake:
    """Everything the file says, in the caller's transaction."""
    now = datetime.now(timezone.utc)
    claims_matched = con.execute("select count(distinct claim_id) from response_events").fetchone()[0]
    if kind == "277CA":
        claims_matched = con.execute("select count(*) from response_claims where match = 'matched'").fetchone()[0]
    elif kind == "835":
        claims_matched = matched
    _file_row(con, f, run_id, kind, ic, "read", None, findings, claims_matched, unmatched)
    con.execute("set variable response_sha256 = ?", [f.sha256])
    con.execute("""
        insert into billing.claim_events
        select getvariable('response_sha256'), ordinal, claim_id, ?, status, reason_codes,
               payer_claim_control_number, ?, ?
        from response_events""", [kind, run_id, now])
    result = Intake(f.name, kind, "read", claims_matched=claims_matched, claims_unmatched=unmatched,
                    pyx12_findings=len(findings))
    if kind in ("TA1", "999", "277CA"):
        con.execute("""
            insert into billing.acknowledgments
            select getvariable('response_sha256'), a.ordinal, a.source, a.level, a.interchange_control_number,
                   a.group_control_number, a.transaction_set_control_number, a.batch_id, a.billing_provider_npi,
                   a.code, a.reason_codes,
                   (select count(*) from response_events e where e.acknowledgment_ordinal = a.ordinal)
            from response_acknowledgments a""")
    else:
        result.paid, result.unreconciled = _record_remittance(con)
    run_sql(con, "billing/apply_claim_events.sql")
    result.events = dict(con.execute("select status, count(*) from response_events group by all").fetchall())
    result.conflicts = con.execute("select claim_id, live_claim_id from claims_live_conflicts order by 1").fetchall()
    return result


def _record_remittance(con) -> tuple[str, list[str]]:
    con.execute("""
        insert into billing.remittances
        select getvariable('response_sha256'), transaction_ordinal, transaction_set_control_number, handling_code,
               total_payment, credit_debit, payment_method, payment_date, trace_number, payer_identifier,
               production_date, payer_name, payer_id, payee_name, payee_id, claims, claims_matched, claim_payments,
               provider_adjustments, difference, difference = 0
        from response_remittances""")
    con.execute("""
        insert into billing.remittance_claims
        select getvariable('response_sha256'), claim_ordinal, transaction_ordinal, claim_id, patient_control_number,
               match, status_code, status, charge_amount, paid_amount, patient_responsibility, allowed_amount,
               filing_indicator, payer_claim_control_number, frequency_code, remark_codes, adjustment_amount,
               balanced, balance_note
        from response_remittance_claims""")
    con.execute("""
        insert into billing.remittance_lines
        select getvariable('response_sha256'), l.claim_ordinal, l.line_ordinal, c.claim_id, l.procedure_qualifier,
               l.procedure_code, l.modifiers, l.charge_amount, l.paid_amount, l.units_paid, l.service_date,
               l.allowed_amount, l.line_control_number, l.remark_codes, l.balanced
        from remit_lines l join response_remittance_claims c using (claim_ordinal)""")
    con.execute("""
        insert into billing.remittance_adjustments
        select getvariable('response_sha256'), a.claim_ordinal, a.line_ordinal, a.adjustment_ordinal, c.claim_id,
               a.group_code, a.reason_code, a.amount, a.quantity
        from remit_adjustments a join response_remittance_claims c using (claim_ordinal)""")
    con.execute("""
        insert into billing.provider_adjustments
        select getvariable('response_sha256'), p.transaction_ordinal, p.adjustment_ordinal, p.provider_id,
               p.fiscal_period_date, p.reason_code, p.reference, p.amount
        from remit_plb p semi join response_remittances r using (transaction_ordinal)""")
    paid = con.execute("select coalesce(sum(paid_amount), 0)::decimal(14, 2)::varchar from response_remittance_claims "
                       "where claim_id is not null").fetchone()[0]
    unreconciled = [f"payment {trace} (ST {st}): BPR02 {total} but claims {claims} less provider adjustments "
                    f"{plb}: {diff} unaccounted"
                    for trace, st, total, claims, plb, diff in con.execute("""
                        select trace_number, transaction_set_control_number, total_payment, claim_payments,
                               provider_adjustments, difference
                        from response_remittances where difference <> 0 order by transaction_ordinal""").fetchall()]
    unreconciled += [f"claim payment {pcn}: {note}" for pcn, note in con.execute("""
        select patient_control_number, balance_note from response_remittance_claims
        where not balanced order by claim_ordinal limit 20""").fetchall()]
    return paid, unreconciled


def _rollback(con) -> None:
    try:
        con.rollback()
    except duckdb.Error:
        pass
