"""Responses: TA1, 999, 277CA, 835 read once and recorded; claims rejected, accepted, paid, denied,
reversed; one live claim per patient-month and usage, enforced by the warehouse; rejected claims billed
again when they change or are released, adjudicated ones never; remittances reconcile to the cent;
overpayments found; crash safety during intake. Amounts are worked by hand from the rules digest:
allowed = charge, coinsurance 20% to the cent, sequestration 2% of Medicare's 80% to the cent."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from claims_fixtures import PATIENTS, TZ, add_patient_month, new_warehouse, set_codes
from responses_fixtures import (AFTER_JAN, PAID_ON, answer, batch_dir, bill, interchange, live, read, remittance,
                                reversal_of, settings, status, write)
from transforms.billing.edits import validate_with_pyx12
from transforms.billing.ledger import FAULT_ENV, FAULT_EXIT_CODE, ensure_billing_schema
from transforms.billing.resubmit import release
from transforms.billing.responses import RESPONSE_FAULT_POINTS
from transforms.billing.responses.validate import pyx12_check
from transforms.devtools import payer
from transforms.paths import REPO_ROOT
from transforms.warehouse import connect, run_sql

JAN, FEB = date(2026, 1, 1), date(2026, 2, 1)
AFTER_FEB = date(2026, 3, 10)
SHARED_835 = Path("/work/shared/data/x12/835")


@pytest.fixture
def con(tmp_path):
    con = new_warehouse(tmp_path)
    yield con
    con.close()


def three_claims(con):
    """P1 99490 + 99439 (66.13 + 47.50), P2 99491 (86.00), P3 99490 (66.13): one billing provider."""
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 1)])
    add_patient_month(con, "P2", JAN, [("99491", 1)])
    add_patient_month(con, "P3", JAN, [("99490", 1)])


def ids(con) -> dict[str, str]:
    """patient_id -> claim id of its January claim (the first one)."""
    return dict(con.execute("select patient_id, claim_id from billing.ledger where replaces_claim_id is null "
                            "and service_month = ? and usage_indicator = 'T'", [JAN]).fetchall())


# -- what the payer simulator sends is clean X12 ---------------------------------------------------------

def test_payer_simulator_files_are_clean_under_pyx12(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    answer(tmp_path, summary, tmp_path / "in", reject={c["P1"]}, deny={c["P2"]: "CO-97"})
    for f in sorted((tmp_path / "in").iterdir()):
        found = pyx12_check(f.read_text())
        assert (found.failed, found.envelope, found.body) == (None, [], []), f.name


# -- 999 ----------------------------------------------------------------------------------------------------

def test_999_accepting_the_transaction_set_makes_its_claims_accepted_and_keeps_them_live(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    sub = interchange(tmp_path, summary)
    write(tmp_path / "in", "ack.txt", payer.write_999(sub, datetime(2026, 2, 11, 6), reject=False))
    out = read(con, tmp_path / "in")
    assert out["files_read"] == 1 and out["by_kind"] == {"999": 1} and out["claim_events"] == {"accepted": 3}
    assert {s[0] for s in status(con).values()} == {"accepted"}
    assert len(live(con)) == 3


def test_999_rejecting_the_whole_functional_group_rejects_every_claim_and_frees_their_months(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    answer(tmp_path, summary, tmp_path / "in", reject_interchanges={f"{summary['batch_id']}_1234567893.x12"})
    out = read(con, tmp_path / "in")
    assert out["claim_events"] == {"rejected": 3}
    assert {s[0] for s in status(con).values()} == {"rejected"}
    assert live(con) == []
    acks = con.execute("select level, code, reason_codes, claims from billing.acknowledgments order by ordinal").fetchall()
    assert acks == [("group", "R", ["AK901:R"], 0),
                    ("transaction_set", "R", ["IK501:R", "IK502:5", "IK304:8", "IK403:7"], 3)]
    run_sql(con, "marts/rejections_to_fix.sql")
    reasons = con.execute("select rejected_by, reason from marts.rejections_to_fix").fetchall()
    assert len(reasons) == 3
    assert reasons[0] == ("999", "rejected; one or more segments in error; segment has data element errors; "
                                 "invalid code value")


def test_999_group_rejected_without_any_transaction_set_response_rejects_the_group(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    sub = interchange(tmp_path, summary)
    text = payer.write_999(sub, datetime(2026, 2, 11, 6), reject=True)
    # no AK2 loop at all: AK1, then AK9 R with a group-level error (5: transaction set count wrong)
    body = text[text.index("AK2*"):text.index("AK9*")]
    text = text.replace(body, "").replace("AK9*R*1*1*0~", "AK9*R*1*1*0*5~").replace("SE*8*", "SE*4*")
    write(tmp_path / "in", "group.999", text)
    assert pyx12_check(text).envelope == []
    assert read(con, tmp_path / "in")["claim_events"] == {"rejected": 3}
    assert con.execute("select distinct reason_codes from billing.claim_events").fetchall() == [(["AK901:R", "AK905:5"],)]


# -- TA1 ----------------------------------------------------------------------------------------------------

def ta1(sub: payer.Submitted, code: str, note: str) -> str:
    return (f"ISA*00*          *00*          *ZZ*{sub.receiver_id.ljust(15)}*ZZ*{sub.submitter_id.ljust(15)}*"
            f"260211*0600*^*00501*900000001*0*T*:~TA1*{sub.isa13}*260210*1200*{code}*{note}~IEA*0*900000001~")


def test_ta1_rejecting_the_interchange_rejects_its_claims_and_one_accepting_it_changes_none(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    sub = interchange(tmp_path, summary)
    write(tmp_path / "in", "a.ta1", ta1(sub, "A", "000"))
    assert read(con, tmp_path / "in")["claim_events"] == {}
    assert {s[0] for s in status(con).values()} == {"submitted"} and len(live(con)) == 3
    write(tmp_path / "in", "r.ta1", ta1(sub, "R", "025"))
    assert read(con, tmp_path / "in")["claim_events"] == {"rejected": 3}
    assert live(con) == []
    assert con.execute("select distinct reason_codes from billing.claim_events").fetchall() == [(["TA104:R", "TA105:025"],)]


# -- 277CA --------------------------------------------------------------------------------------------------

def test_277ca_rejection_frees_the_patient_month_and_acceptance_keeps_it_live(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    sub = interchange(tmp_path, summary)
    write(tmp_path / "in", "ca.277", payer.write_277ca(sub, datetime(2026, 2, 12, 6), {c["P1"]},
                                                       "MEDICARE PART B", "12502"))
    out = read(con, tmp_path / "in")
    assert out["claim_events"] == {"accepted": 2, "rejected": 1} and out["claims_unmatched"] == 0
    s = status(con)
    assert (s[c["P1"]][0], s[c["P2"]][0], s[c["P3"]][0]) == ("rejected", "accepted", "accepted")
    assert sorted(r[3] for r in live(con)) == sorted([c["P2"], c["P3"]])
    run_sql(con, "marts/rejections_to_fix.sql")
    (row,) = con.execute("select claim_id, rejected_by, reason_codes, reason from marts.rejections_to_fix").fetchall()
    assert row == (c["P1"], "277CA", "STC:A7:164:IL", "rejected for invalid information; entity's contract or member "
                                                       "number (for the subscriber: the MBI); subscriber (insured)")
    # the payer's claim control number of an accepted claim comes from REF*1K
    assert con.execute("select payer_claim_control_number from marts.claim_status where claim_id = ?",
                       [c["P2"]]).fetchone()[0] == payer._payer_claim_number(c["P2"])


def test_277ca_rejecting_the_whole_batch_at_the_receiver_level_rejects_every_claim(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    text = (f"ISA*00*          *00*          *ZZ*12502          *ZZ*RIVERBEND01    *260212*0600*^*00501*"
            f"800000001*0*T*:~GS*HN*12502*RIVERBEND01*20260212*0600*800000001*X*005010X214~ST*277*0001*005010X214~"
            f"BHT*0085*08*X1*20260212*0600*TH~HL*1**20*1~NM1*PR*2*MEDICARE PART B*****PI*12502~TRN*1*X1~"
            f"DTP*050*D8*20260210~DTP*009*D8*20260212~HL*2*1*21*0~NM1*41*2*SUBMITTER*****46*RIVERBEND01~"
            f"TRN*2*{summary['batch_id']}~STC*A3:24:41*20260212*U*{summary['charges']:.2f}~QTY*AA*3~"
            f"AMT*YY*{summary['charges']:.2f}~SE*14*0001~GE*1*800000001~IEA*1*800000001~")
    write(tmp_path / "in", "batch.277", text)
    assert read(con, tmp_path / "in")["claim_events"] == {"rejected": 3}
    assert live(con) == []
    assert con.execute("select level, batch_id, claims from billing.acknowledgments").fetchall() == [
        ("batch", summary["batch_id"], 3)]


# -- 835 ----------------------------------------------------------------------------------------------------

def test_835_pays_line_by_line_with_coinsurance_and_sequestration_to_the_cent(con, tmp_path):
    # 99490 66.13: coinsurance 20% = 13.226 -> 13.23; Medicare's 52.90, 2% of it = 1.058 -> 1.06; paid 51.84.
    # 99439 47.50: coinsurance 9.50; Medicare's 38.00, 2% = 0.76; paid 37.24. The claim: 89.08, the patient 22.73.
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    answer(tmp_path, summary, tmp_path / "in", reject=set(), deny={})
    read(con, tmp_path / "in")
    s = status(con)
    assert s[c["P1"]][:4] == ("paid", Decimal("89.08"), Decimal("22.73"), "CO-253 PR-2")
    # 99491 86.00: 17.20 coinsurance, 68.80 x 2% = 1.376 -> 1.38, paid 67.42
    assert s[c["P2"]][:3] == ("paid", Decimal("67.42"), Decimal("17.20"))
    lines = con.execute("select l.procedure_code, l.charge_amount, l.paid_amount, l.allowed_amount, l.balanced "
                        "from billing.remittance_lines l where claim_id = ? order by line_ordinal", [c["P1"]]).fetchall()
    assert lines == [("99490", Decimal("66.13"), Decimal("51.84"), Decimal("66.13"), True),
                     ("99439", Decimal("47.50"), Decimal("37.24"), Decimal("47.50"), True)]
    adjustments = con.execute("select line_ordinal, group_code, reason_code, amount from billing.remittance_adjustments "
                              "where claim_id = ? order by all", [c["P1"]]).fetchall()
    assert adjustments == [(1, "CO", "253", Decimal("1.06")), (1, "PR", "2", Decimal("13.23")),
                           (2, "CO", "253", Decimal("0.76")), (2, "PR", "2", Decimal("9.50"))]


def test_claim_payments_add_up_to_bpr02_to_the_cent(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    answer(tmp_path, summary, tmp_path / "in", reject=set(), deny={})
    read(con, tmp_path / "in")
    # 89.08 + 67.42 + 51.84 = 208.34
    assert con.execute("select total_payment, claim_payments, provider_adjustments, difference, reconciled, "
                       "payment_date, trace_number from billing.remittances").fetchall() == [
        (Decimal("208.34"), Decimal("208.34"), Decimal("0.00"), Decimal("0.00"), True, PAID_ON, "EFT000000001")]
    assert sum(s[1] for s in status(con).values()) == Decimal("208.34")


def test_provider_level_interest_reconciles_and_is_kept_off_the_claims(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    sub = interchange(tmp_path, summary)
    adj = [payer.adjudicate(claim, None) for claim in sub.claims]
    # interest paid to us (PLB L6, negative = added): BPR02 = 208.34 + 1.27 = 209.61
    write(tmp_path / "in", "pay.835", remittance(sub, adj, provider_adjustments=[("L6", Decimal("-1.27"))]))
    read(con, tmp_path / "in")
    assert con.execute("select total_payment, provider_adjustments, reconciled from billing.remittances").fetchall() == [
        (Decimal("209.61"), Decimal("-1.27"), True)]
    assert con.execute("select reason_code, amount from billing.provider_adjustments").fetchall() == [
        ("L6", Decimal("-1.27"))]
    assert sum(s[1] for s in status(con).values()) == Decimal("208.34")


def test_a_remittance_that_does_not_add_up_is_reported_and_never_absorbed(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    sub = interchange(tmp_path, summary)
    text = remittance(sub, [payer.adjudicate(claim, None) for claim in sub.claims])
    write(tmp_path / "in", "pay.835", text.replace("BPR*I*208.34*", "BPR*I*208.35*"))
    out = read(con, tmp_path / "in")
    assert con.execute("select difference, reconciled from billing.remittances").fetchall() == [(Decimal("0.01"), False)]
    assert out["unreconciled_payments"] == [
        "pay.835: payment EFT1 (ST 0001): BPR02 208.35 but claims 208.34 less provider adjustments 0.00: 0.01 unaccounted"]
    assert sum(s[1] for s in status(con).values()) == Decimal("208.34")  # the claims keep what the payer said


def test_denial_with_co97_is_denied_in_words_with_an_appeal_deadline_120_days_after_the_remittance(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    answer(tmp_path, summary, tmp_path / "in", reject=set(), deny={c["P2"]: "CO-97", c["P3"]: "CO-16"})
    read(con, tmp_path / "in")
    s = status(con)
    assert s[c["P2"]][:4] == ("denied", Decimal("0.00"), None, "CO-97")
    run_sql(con, "marts/denials_to_appeal.sql")
    rows = con.execute("select claim_id, remittance_date, appeal_deadline, denied_amount, carcs, carc_reason, rarcs "
                       "from marts.denials_to_appeal order by carcs").fetchall()
    remitted = interchange(tmp_path, summary).created + timedelta(days=14)  # the 835's DTM*405: 14 days after the 837
    assert rows == [
        (c["P3"], remitted, remitted + timedelta(days=120), Decimal("66.13"), "CO-16",
         "claim or service lacks information or has submission or billing errors (the remark codes say which) "
         "(CO, contractual obligation: written off, not billed to the patient)", "MA01 N290"),
        (c["P2"], remitted, remitted + timedelta(days=120), Decimal("86.00"), "CO-97",
         "the benefit for this service is included in the payment for another service already adjudicated "
         "(CO, contractual obligation: written off, not billed to the patient)", "M80 MA01"),
    ]
    assert sorted(r[3] for r in live(con)) == sorted(c.values())  # adjudicated claims stay live


def test_one_denied_line_of_two_makes_the_claim_partially_paid(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    sub = interchange(tmp_path, summary)
    p1 = next(x for x in sub.claims if x.claim_id == c["P1"])
    paid = payer.adjudicate(payer.Claim(p1.claim_id, p1.charge, "", "", "", p1.lines[:1]), None)
    denied_line = (p1.lines[1], Decimal(0), [("CO", "151", p1.lines[1].charge)], Decimal(0))
    partial = payer.Adjudication(p1.claim_id, "1", p1.charge, paid.paid, paid.patient, paid.lines + [denied_line])
    write(tmp_path / "in", "pay.835", remittance(sub, [partial]))
    read(con, tmp_path / "in")
    assert status(con)[c["P1"]][:4] == ("partially_paid", Decimal("51.84"), Decimal("13.23"), "CO-151 CO-253 PR-2")


def test_paid_as_secondary_is_paid(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    sub = interchange(tmp_path, summary)
    adj = payer.adjudicate(next(x for x in sub.claims if x.claim_id == c["P2"]), None)
    adj.status = "2"
    write(tmp_path / "in", "pay.835", remittance(sub, [adj]))
    read(con, tmp_path / "in")
    assert status(con)[c["P2"]][:2] == ("paid", Decimal("67.42"))
    assert con.execute("select status_code from billing.remittance_claims").fetchall() == [("2",)]


def test_reversal_takes_the_payment_back_and_a_correction_sets_what_is_paid(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    sub = interchange(tmp_path, summary)
    p2, p3 = (next(x for x in sub.claims if x.claim_id == c[p]) for p in ("P2", "P3"))
    write(tmp_path / "in", "1.835", remittance(sub, [payer.adjudicate(p2, None)], trace="EFT1"))
    read(con, tmp_path / "in")
    assert status(con)[c["P2"]][:2] == ("paid", Decimal("67.42"))
    # P3 paid 51.84 and P2's 67.42 taken back: -15.58, carried forward (PLB FB): BPR02 0.00
    write(tmp_path / "in", "2.835", remittance(sub, [payer.adjudicate(p3, None), reversal_of(p2)], trace="EFT2",
                                               provider_adjustments=[("FB", Decimal("-15.58"))]))
    read(con, tmp_path / "in")
    assert status(con)[c["P2"]][:3] == ("reversed", Decimal("0.00"), Decimal("0.00"))
    # the corrected payment: 10.00 of the allowed 86.00 goes to the deductible (PR-1); of the 76.00 left the
    # patient owes 15.20 (20%), Medicare's 60.80 less 2% (1.216 -> 1.22) is 59.58; the balance carried
    # forward (15.58) is recovered: BPR02 = 59.58 - 15.58 = 44.00
    line = p2.lines[0]
    corrected = payer.Adjudication(p2.claim_id, "1", p2.charge, Decimal("59.58"), Decimal("25.20"), [
        (line, Decimal("59.58"), [("PR", "1", Decimal("10.00")), ("PR", "2", Decimal("15.20")),
                                  ("CO", "253", Decimal("1.22"))], line.charge)])
    write(tmp_path / "in", "3.835", remittance(sub, [corrected], trace="EFT3",
                                               provider_adjustments=[("FB", Decimal("15.58"))]))
    read(con, tmp_path / "in")
    assert status(con)[c["P2"]][:4] == ("paid", Decimal("59.58"), Decimal("25.20"), "CO-253 PR-1 PR-2")
    assert con.execute("select total_payment, reconciled from billing.remittances order by trace_number").fetchall() == [
        (Decimal("67.42"), True), (Decimal("0.00"), True), (Decimal("44.00"), True)]
    # what the payer sent in all equals what the claims say they were paid: 59.58 + 51.84
    assert sum(s[1] or 0 for s in status(con).values()) == Decimal("111.42") == Decimal("67.42") + Decimal("44.00")


# -- files read once, bad files quarantined -----------------------------------------------------------------

def test_the_same_835_twice_changes_nothing(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    answer(tmp_path, summary, tmp_path / "in", reject=set(), deny={})
    read(con, tmp_path / "in")
    before = {t: con.execute(f"select * from billing.{t} order by all").fetchall()
              for t in ("claim_events", "remittances", "remittance_claims", "live_claims")}
    (path,) = (tmp_path / "in").glob("*.835")
    write(tmp_path / "in", "copy of remittance.txt", path.read_text())                    # same bytes, new name
    write(tmp_path / "in", "resent.835", path.read_text().replace("300000001", "300000002"))  # new envelope
    again = read(con, tmp_path / "in", run_id="run-again")
    assert again["files_already_read"] == 4 and again["files_read"] == 0
    assert again["quarantined"] == ["resent.835: every payment in it (TRN02) was posted before, from another file"]
    assert {t: con.execute(f"select * from billing.{t} order by all").fetchall() for t in before} == before


def test_a_corrupt_or_foreign_file_is_quarantined_with_one_line_and_the_others_are_read(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    answer(tmp_path, summary, tmp_path / "in", reject=set(), deny={})
    text = next((tmp_path / "in").glob("*.835")).read_text()
    write(tmp_path / "in", "cut.835", text[:len(text) // 2])
    write(tmp_path / "in", "notes.txt", "call the clearinghouse on Monday\n")
    write(tmp_path / "in", "sent.x12", next(batch_dir(tmp_path, summary).glob("*.x12")).read_text())  # our own 837
    write(tmp_path / "in", "bad-count.999", (tmp_path / "in" / f"{summary['batch_id']}_1234567893.999").read_text()
          .replace("SE*6*", "SE*7*"))
    out = read(con, tmp_path / "in")
    assert out["files_read"] == 3 and out["files_quarantined"] == 4
    assert sorted(out["quarantined"]) == [
        "bad-count.999: not valid X12: transaction set 0001: SE01 says 7 segments, it has 6",
        "cut.835: not valid X12: 1 ISA segments but 0 IEA: the file is cut short or damaged",
        "notes.txt: not X12: does not start with an ISA segment",
        "sent.x12: not a response we read (GS01 HC GS08 005010X222A1); we read 999 005010X231A1, 277CA "
        "005010X214, 835 005010X221A1 and TA1",
    ]
    assert {s[0] for s in status(con).values()} == {"paid"}
    assert con.execute("select count(*) from billing.response_files where status = 'quarantined'").fetchone()[0] == 4
    # read once: the next night says nothing more about them
    assert read(con, tmp_path / "in", run_id="run-2")["quarantined"] == []


def test_public_sample_835s_parse_and_are_reported_unmatched_never_attached_by_guess(con, tmp_path):
    three_claims(con)
    bill(con, tmp_path)
    out = read(con, SHARED_835)
    # demo.835 and medicare-part-a.835 are the same bytes: read once
    assert out["files_seen"] == 6 and out["files_already_read"] == 1 and out["files_quarantined"] == 5
    assert all(q.endswith(" unmatched)") and "matches none of our claims" in q for q in out["quarantined"])
    assert out["claims_unmatched"] == 1 + 2 + 2 + 2 + 1  # CLP segments: cob, demo, managed-care, secondary, tertiary
    assert con.execute("select count(*) from billing.claim_events").fetchone()[0] == 0
    assert con.execute("select count(*) from billing.remittance_claims").fetchone()[0] == 0
    assert len(live(con)) == 3


def test_public_sample_835s_parse_without_error_and_reconcile(tmp_path):
    from transforms.billing.responses.parse import parse_835
    from transforms.billing.responses.segments import envelope_problems, read_interchange

    for path in sorted(SHARED_835.glob("*.835")):
        ic = read_interchange(path.read_bytes())
        assert envelope_problems(ic) == [], path.name
        remit = parse_835(ic)
        t = remit["transactions"].row(0, named=True)
        claims = sum(remit["claims"]["paid_amount"].to_list(), Decimal(0))
        plb = sum(remit["provider_adjustments"]["amount"].to_list(), Decimal(0))
        assert t["total_payment"] == claims - plb, path.name  # demo.835: 149998.73 + 1.27 = 150000.00


def test_a_claim_id_of_ours_with_another_charge_is_not_ours(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    sub = interchange(tmp_path, summary)
    p2 = next(x for x in sub.claims if x.claim_id == c["P2"])
    other = payer.Claim(p2.claim_id, Decimal("90.00"), "", "", "", [payer.Line("99491", Decimal("90.00"), "1",
                                                                               "20260131")])
    p3 = next(x for x in sub.claims if x.claim_id == c["P3"])
    write(tmp_path / "in", "pay.835", remittance(sub, [payer.adjudicate(other, None), payer.adjudicate(p3, None)]))
    out = read(con, tmp_path / "in")
    assert out["claims_unmatched"] == 1 and out["claim_events"] == {"paid": 1}
    assert con.execute("select patient_control_number, claim_id, match from billing.remittance_claims "
                       "order by claim_ordinal").fetchall() == [(c["P2"], None, "charge differs"),
                                                                (c["P3"], c["P3"], "matched")]
    assert status(con)[c["P2"]][0] == "submitted"


def test_nothing_a_response_holds_about_the_patient_is_stored_or_logged(con, tmp_path, caplog):
    three_claims(con)
    summary = bill(con, tmp_path)
    answer(tmp_path, summary, tmp_path / "in", reject={ids(con)["P1"]}, deny={})
    caplog.set_level("DEBUG")
    out = read(con, tmp_path / "in")
    stored = " ".join(str(r) for t in ("response_files", "claim_events", "acknowledgments", "remittances",
                                       "remittance_claims", "remittance_lines")
                      for r in con.execute(f"select * from billing.{t}").fetchall())
    for p in PATIENTS:
        for value in (p["mbi"], p["last_name"].upper(), p["first_name"].upper()):
            assert value not in stored and value not in caplog.text and value not in str(out)


# -- crash during intake ------------------------------------------------------------------------------------

CRASHING_INTAKE = """
import sys
from datetime import date
from pathlib import Path
sys.path.insert(0, {tests!r})
from responses_fixtures import read
from transforms.warehouse import connect, run_sql
con = connect({db!r}, "America/New_York")
read(con, Path({folder!r}), run_id="run-crash")
"""


@pytest.mark.parametrize("point", RESPONSE_FAULT_POINTS)
def test_a_kill_during_intake_then_a_rerun_reads_every_file_exactly_once(tmp_path, point):
    con = new_warehouse(tmp_path)
    three_claims(con)
    summary = bill(con, tmp_path)
    c = ids(con)
    answer(tmp_path, summary, tmp_path / "in", reject={c["P1"]}, deny={})
    con.close()
    code = CRASHING_INTAKE.format(tests=str(Path(__file__).parent), db=str(tmp_path / "w.duckdb"),
                                  folder=str(tmp_path / "in"))
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, FAULT_ENV: point}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == FAULT_EXIT_CODE, done.stderr
    ro = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    # killed in the first file's transaction (the 999): nothing of it; killed after it: all of it
    assert ro.execute("select count(*) from billing.response_files").fetchone()[0] == (1 if point == "after_response"
                                                                                        else 0)
    assert ro.execute("select count(*) from billing.live_claims").fetchone()[0] == 3
    ro.close()
    con = connect(tmp_path / "w.duckdb", TZ)
    out = read(con, tmp_path / "in", run_id="run-after-crash")
    assert out["files_read"] == (2 if point == "after_response" else 3)
    assert con.execute("select kind, count(*) from billing.response_files group by all order by 1").fetchall() == [
        ("277CA", 1), ("835", 1), ("999", 1)]
    assert con.execute("select count(*), count(distinct (response_sha256, claim_id)) "
                       "from billing.claim_events").fetchone() == (3 + 3 + 2, 3 + 3 + 2)
    assert sorted(r[3] for r in live(con)) == sorted([c["P2"], c["P3"]])
    con.close()


def test_a_responses_folder_that_does_not_exist_fails_the_run_before_the_warehouse_is_touched(tmp_path):
    from transforms.ingest.plan import InputError
    from transforms.pipeline import RunRequest, run

    request = RunRequest(tmp_path / "landing", tmp_path / "w.duckdb", tmp_path / "claims", AFTER_JAN,
                         responses=tmp_path / "no-such-folder")
    (tmp_path / "landing").mkdir()
    with pytest.raises(InputError, match="no-such-folder: the responses folder .* does not exist"):
        run(request, settings())
    assert not (tmp_path / "w.duckdb").exists()


# -- one live claim per patient-month; rebills -------------------------------------------------------------

def test_the_warehouse_itself_refuses_a_second_live_claim_for_a_patient_month(con, tmp_path):
    three_claims(con)
    bill(con, tmp_path)
    with pytest.raises(duckdb.ConstraintException):
        con.execute("insert into billing.live_claims values ('T', 'P1', ?, 'CCM-OTHER', now())", [JAN])


def reject_p1(con, tmp_path, summary) -> str:
    p1 = ids(con)["P1"]
    answer(tmp_path, summary, tmp_path / "in", reject={p1}, deny={})
    read(con, tmp_path / "in")
    return p1


def test_a_rejected_claim_whose_mbi_was_corrected_is_billed_again_under_a_new_id(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    old = reject_p1(con, tmp_path, first)
    con.execute("update staging.patients set mbi = '1EG4TE5MK74' where patient_id = 'P1'")  # corrected in a drop
    second = bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=1), run_id="run-2")
    assert (second["claims"], second["rebilled_changed"], second["rebilled_released"]) == (1, 1, 0)
    new_id, replaces = con.execute("select claim_id, replaces_claim_id from billing.ledger "
                                   "where batch_id = ?", [second["batch_id"]]).fetchone()
    assert replaces == old and new_id != old and len(new_id) <= 20
    assert status(con)[old][0] == "rejected" and status(con)[old][4] == new_id
    assert ("T", "P1", JAN, new_id) in live(con)
    (x12,) = batch_dir(tmp_path, second).glob("*.x12")
    assert validate_with_pyx12(x12) == [] and f"CLM*{new_id}*" in x12.read_text() and "1EG4TE5MK74" in x12.read_text()
    # and only once: the next night has nothing to bill
    assert bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=2), run_id="run-3")["batch_id"] is None


def test_a_rejected_claim_is_not_resent_unchanged_until_it_is_released(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    old = reject_p1(con, tmp_path, first)
    waiting = bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=1), run_id="run-2")
    assert waiting["batch_id"] is None and waiting["rejected_unchanged_waiting"] == 1
    assert release(con, [old], False) == ([old], [], [])
    again = bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=2), run_id="run-3")
    assert (again["claims"], again["rebilled_released"]) == (1, 1)
    assert status(con)[old][4] is not None
    assert bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=3), run_id="run-4")["batch_id"] is None
    # released once: the claim it was is no longer releasable
    assert release(con, [old], False)[2] == [f"claim {old}: already billed again as claim {status(con)[old][4]}"]


def test_a_claim_accepted_after_its_rejection_is_live_again(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    old = reject_p1(con, tmp_path, first)
    sub = interchange(tmp_path, first)
    # a later 277CA from the payer accepts the claim after all (it was entered in adjudication)
    write(tmp_path / "later", "again.277", payer.write_277ca(sub, datetime(2026, 2, 20, 6), set(), "MEDICARE PART B",
                                                             "12502"))
    read(con, tmp_path / "later", run_id="run-later")
    assert status(con)[old][0] == "accepted"  # the newest 277CA speaks last
    assert ("T", "P1", JAN, old) in live(con)
    assert bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=5), run_id="run-2")["batch_id"] is None


def test_an_old_claim_paid_after_its_month_was_billed_again_is_reported_and_never_makes_two_live_claims(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    c = ids(con)
    sub = interchange(tmp_path, first)
    write(tmp_path / "in", "ca.277", payer.write_277ca(sub, datetime(2026, 2, 12, 6), {c["P1"]}, "MEDICARE PART B",
                                                       "12502"))
    read(con, tmp_path / "in")
    con.execute("update staging.patients set mbi = '1EG4TE5MK74' where patient_id = 'P1'")
    rebill = bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=1), run_id="run-2")
    new = con.execute("select claim_id from billing.ledger where batch_id = ?", [rebill["batch_id"]]).fetchone()[0]
    # and then the payer pays the rejected claim anyway
    p1 = next(x for x in sub.claims if x.claim_id == c["P1"])
    write(tmp_path / "late", "late.835", remittance(sub, [payer.adjudicate(p1, None)], trace="EFT9"))
    out = read(con, tmp_path / "late", run_id="run-late")
    assert out["live_conflicts"] == [f"claim {c['P1']} answered after its patient-month was billed again as {new}"]
    assert status(con)[c["P1"]][:2] == ("paid", Decimal("89.08"))
    assert ("T", "P1", JAN, new) in live(con) and c["P1"] not in {r[3] for r in live(con)}


def test_resubmit_releases_nothing_when_a_claim_named_cannot_be_released(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    old = reject_p1(con, tmp_path, first)
    paid = ids(con)["P2"]
    assert release(con, [old, paid, "CCM-NOPE"], False) == ([], [], [
        f"claim {paid} is paid: only a rejected claim can be released (a paid or denied claim is appealed or "
        "corrected, never billed again by us)", "claim CCM-NOPE: no such claim in billing.ledger"])
    assert con.execute("select count(*) from billing.releases").fetchone()[0] == 0
    assert release(con, None, True) == ([old], [], [])
    assert release(con, [old], False) == ([], [old], [])  # twice is harmless


def test_resubmit_command_line_exit_codes(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    old = reject_p1(con, tmp_path, first)
    con.close()
    ccm = [sys.executable, "-m", "transforms.cli", "resubmit", "--warehouse", str(tmp_path / "w.duckdb")]
    bad = subprocess.run(ccm + ["--claim", "CCM-NOPE"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert bad.returncode == 2 and bad.stderr.splitlines() == ["claim CCM-NOPE: no such claim in billing.ledger",
                                                               "nothing was released"]
    ok = subprocess.run(ccm + ["--rejected"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert ok.returncode == 0 and ok.stdout.splitlines()[0] == f"released 1 rejected claim: {old}"


def test_paid_and_denied_claims_are_never_billed_again_even_when_what_they_say_changes(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    c = ids(con)
    answer(tmp_path, first, tmp_path / "in", reject=set(), deny={c["P2"]: "CO-16"})
    read(con, tmp_path / "in")
    con.execute("update staging.patients set address_line1 = '9 New Road'")
    later = bill(con, tmp_path, as_of=AFTER_JAN + timedelta(days=5), run_id="run-2")
    assert later["batch_id"] is None and later["rebilled_changed"] == 0
    assert release(con, [c["P2"]], False)[2][0].startswith(f"claim {c['P2']} is denied")
    assert con.execute("select count(*) from billing.ledger").fetchone()[0] == 3


def test_no_patient_month_ever_has_two_live_claims_however_often_the_nights_are_rerun(con, tmp_path):
    three_claims(con)
    add_patient_month(con, "P1", FEB, [("99490", 1)])
    first = bill(con, tmp_path)
    reject_p1(con, tmp_path, first)
    con.execute("update staging.patients set mbi = '1EG4TE5MK74' where patient_id = 'P1'")
    for night, as_of in enumerate([AFTER_JAN + timedelta(days=1), AFTER_JAN + timedelta(days=1), AFTER_FEB,
                                   AFTER_JAN, AFTER_FEB]):
        bill(con, tmp_path, as_of=as_of, run_id=f"run-{night}")
        read(con, tmp_path / "in", run_id=f"run-r{night}")
    assert con.execute("select count(*) from (select usage_indicator, patient_id, service_month from "
                       "billing.live_claims group by all having count(*) > 1)").fetchone()[0] == 0
    assert con.execute("select count(*) from billing.ledger").fetchone()[0] == 3 + 1 + 1  # Jan x3, the rebill, Feb


def test_test_batches_are_apart_and_switching_to_production_bills_what_they_held(con, tmp_path):
    three_claims(con)
    test = bill(con, tmp_path, usage="T")
    assert bill(con, tmp_path, usage="T", as_of=AFTER_JAN + timedelta(days=1), run_id="run-t2")["batch_id"] is None
    production = bill(con, tmp_path, usage="P", as_of=AFTER_JAN + timedelta(days=2), run_id="run-p")
    assert (test["claims"], production["claims"], production["usage_indicator"]) == (3, 3, "P")
    (x12,) = batch_dir(tmp_path, production).glob("*.x12")
    assert x12.read_text().split("*")[15] == "P" and validate_with_pyx12(x12) == []
    by_usage = con.execute("select usage_indicator, count(*), count(distinct claim_id) from billing.live_claims "
                           "group by all order by 1").fetchall()
    assert by_usage == [("P", 3, 3), ("T", 3, 3)]
    t_ids = set(con.execute("select claim_id from billing.ledger where usage_indicator = 'T'").fetchall())
    p_ids = set(con.execute("select claim_id from billing.ledger where usage_indicator = 'P'").fetchall())
    assert not t_ids & p_ids
    # a test rejection frees only the test claim
    reject_p1(con, tmp_path, test)
    assert ("P", "P1", JAN) in {r[:3] for r in live(con)} and ("T", "P1", JAN) not in {r[:3] for r in live(con)}
    assert bill(con, tmp_path, usage="P", as_of=AFTER_JAN + timedelta(days=3), run_id="run-p2")["batch_id"] is None


def test_a_warehouse_from_before_responses_is_migrated_in_place(tmp_path):
    con = new_warehouse(tmp_path)
    con.execute("create schema if not exists billing")
    con.execute("""create table billing.ledger (patient_id varchar not null, service_month date not null,
        claim_id varchar not null unique, batch_id varchar not null, billing_npi varchar not null,
        billing_provider_npi varchar not null, billed_codes varchar not null, billed_minutes integer,
        units integer not null, charge_amount decimal(10, 2) not null, expected_payment decimal(10, 2),
        date_of_service date not null, run_id varchar not null, committed_at timestamptz not null,
        primary key (patient_id, service_month))""")
    folder = tmp_path / "claims" / "B20260110-001"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text('{"usage_indicator": "T"}')
    con.execute("create table billing.batches (batch_id varchar primary key, as_of date, run_id varchar, status "
                "varchar not null, path varchar, claims integer, lines integer, units integer, charges decimal(12, 2), "
                "expected_payment decimal(12, 2), manifest_sha256 varchar, committed_at timestamptz, "
                "delivered_at timestamptz)")
    con.execute("insert into billing.batches (batch_id, status, path) values ('B20260110-001', 'delivered', ?), "
                "('B20260210-001', 'delivered', '/nowhere')", [str(folder)])
    con.execute("insert into billing.ledger values ('P1', '2025-12-01', 'CCM-OLD1', 'B20260110-001', '1345678902', "
                "'1234567893', '99490', 25, 1, 66.13, 66.13, '2025-12-31', 'r', now()), "
                "('P2', '2026-01-01', 'CCM-OLD2', 'B20260210-001', '1345678902', '1234567893', '99490', 25, 1, "
                "66.13, 66.13, '2026-01-31', 'r', now())")
    ensure_billing_schema(con)
    assert con.execute("select claim_id, usage_indicator, content_hash from billing.ledger order by 1").fetchall() == [
        ("CCM-OLD1", "T", None), ("CCM-OLD2", "P", None)]   # the manifest says T; no manifest: production
    assert sorted(r[3] for r in live(con)) == ["CCM-OLD1", "CCM-OLD2"]
    ensure_billing_schema(con)  # idempotent
    # one row per claim now: a second claim of a patient-month is allowed in the ledger
    con.execute("insert into billing.ledger (patient_id, service_month, claim_id, batch_id, billing_npi, "
                "billing_provider_npi, billed_codes, units, charge_amount, date_of_service, run_id, committed_at) "
                "values ('P1', '2025-12-01', 'CCM-NEW', 'B', 'x', 'y', '99490', 1, 1, '2025-12-31', 'r', now())")
    con.close()


# -- control numbers --------------------------------------------------------------------------------------

def test_control_numbers_start_at_the_configured_value_and_stop_at_the_end_of_the_range(con, tmp_path):
    three_claims(con)
    summary = bill(con, tmp_path, control_number_start=500_000_001, control_number_end=500_000_001)
    assert interchange(tmp_path, summary).isa13 == "500000001"
    add_patient_month(con, "P1", FEB, [("99490", 1)])
    with pytest.raises(RuntimeError, match="no 1 unused numbers left after 500000001"):
        bill(con, tmp_path, as_of=AFTER_FEB, run_id="run-2", control_number_start=500_000_001,
             control_number_end=500_000_001)


def test_a_rebuilt_warehouse_never_reuses_an_isa13_already_in_the_claims_folder(tmp_path):
    con = new_warehouse(tmp_path)
    three_claims(con)
    bill(con, tmp_path)
    con.close()
    (tmp_path / "w.duckdb").unlink()  # the warehouse is lost; the claims folder (what was sent) is not
    con = new_warehouse(tmp_path)
    add_patient_month(con, "P1", FEB, [("99490", 1)])
    summary = bill(con, tmp_path, as_of=AFTER_FEB)
    assert interchange(tmp_path, summary).isa13 == "000000002"
    con.close()


# -- overpayments -----------------------------------------------------------------------------------------

def test_a_paid_month_that_loses_minutes_is_an_overpayment_to_refund_within_60_days(con, tmp_path):
    three_claims(con)
    first = bill(con, tmp_path)
    c = ids(con)
    answer(tmp_path, first, tmp_path / "in", reject=set(), deny={})
    assert read(con, tmp_path / "in")["overpayment_rows_added"] == 0
    # a voided note: P1 now bills 99490 alone. Expected payment billed 66.13 + 47.50 = 113.63, now 66.13:
    # at risk = 89.08 x (1 - 66.13 / 113.63) = 89.08 x 0.418023... = 37.2375 -> 37.24
    set_codes(con, "P1", JAN, [("99490", 1)], minutes=25)
    assert read(con, tmp_path / "empty", run_id="run-2")["overpayment_rows_added"] == 1
    run_sql(con, "marts/overpayments.sql")
    row = con.execute("select claim_id, paid_amount, billed_codes, current_codes, amount_at_risk, "
                      "refund_deadline - identified_at::date from marts.overpayments").fetchall()
    assert row == [(c["P1"], Decimal("89.08"), "99490 99439", "99490", Decimal("37.24"), 60)]
    assert read(con, tmp_path / "empty", run_id="run-3")["overpayment_rows_added"] == 0  # nothing new
    con.execute("update core.patient_month set eligible = false where patient_id = 'P3'")   # P3 loses eligibility
    read(con, tmp_path / "empty", run_id="run-4")
    assert con.execute("select claim_id, amount_at_risk, eligible_now from marts.overpayments where claim_id = ?",
                       [c["P3"]]).fetchall() == [(c["P3"], Decimal("51.84"), False)]
    set_codes(con, "P1", JAN, [("99490", 1), ("99439", 1)], minutes=45)  # the note is restored
    read(con, tmp_path / "empty", run_id="run-5")
    assert [r[0] for r in con.execute("select claim_id from marts.overpayments").fetchall()] == [c["P3"]]


@pytest.fixture(autouse=True)
def empty_folder(tmp_path):
    (tmp_path / "empty").mkdir(exist_ok=True)


# -- the report's revenue-cycle numbers -------------------------------------------------------------------

def test_revenue_cycle_numbers_of_the_report(con, tmp_path):
    from transforms.marts.report import revenue_cycle_data

    three_claims(con)
    first = bill(con, tmp_path)
    c = ids(con)
    answer(tmp_path, first, tmp_path / "in", reject={c["P1"]}, deny={c["P2"]: "CO-97"})
    read(con, tmp_path / "in")
    con.execute("create schema if not exists marts")
    for view in ("reason_codes", "claim_status", "rejections_to_fix", "denials_to_appeal", "overpayments",
                 "remittance_summary"):
        run_sql(con, f"marts/{view}.sql")
    rc = revenue_cycle_data(con)
    # 3 written; P1 rejected; P2 denied and P3 paid (51.84) were accepted; only P3 paid
    assert rc["funnel"] == [("submitted", 3), ("accepted", 2), ("paid", 1)]
    assert rc["statuses"] == {"rejected": 1, "denied": 1, "paid": 1} and rc["paid_amount"] == 51.84
    assert rc["denials_by_reason"] == [("CO-97", 1, 86.0, "the benefit for this service is included in the payment "
                                        "for another service already adjudicated (CO, contractual obligation: "
                                        "written off, not billed to the patient)")]
    # the batch was committed today (the test's clock) and paid on PAID_ON
    assert rc["claims_with_payment"] == 1
    assert rc["rejections_to_fix"] == 1 and rc["overpayments"] == 0
