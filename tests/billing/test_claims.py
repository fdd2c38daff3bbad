"""Claim batches: 837P clean under pyx12, CSV = 837P, manifest hashes, our own edits,
each patient-month billed exactly once (reruns, backfills, crashes), late minutes to review."""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

import claims_fixtures

from claims_fixtures import (DR_CRUZ, GROUP2_NPI, GROUP_NPI, NP_ORTIZ, PATIENTS, TZ, add_patient_month,
                             insert_raw, manifest_problems, new_warehouse, read_manifest, sample_settings, set_codes)
from transforms.billing.edits import ClaimEditError, check_batch, check_interchange, parse_837p, validate_with_pyx12
from transforms.billing.batch import CSV_COLUMNS, write_claim_batch
from transforms.billing.ledger import FAULT_ENV, FAULT_EXIT_CODE, FAULT_POINTS
from transforms.paths import REPO_ROOT
from transforms.settings import Address
from transforms.warehouse import connect

JAN, FEB, MAR = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
AFTER_JAN = date(2026, 2, 10)  # January closed (grace 5 days), February open
AFTER_FEB = date(2026, 3, 10)


@pytest.fixture
def con(tmp_path):
    con = new_warehouse(tmp_path)
    yield con
    con.close()


def claims_dir(tmp_path: Path) -> Path:
    return tmp_path / "claims"


def run(con, tmp_path, as_of=AFTER_JAN, settings=None, run_id="run-test"):
    return write_claim_batch(con, settings or sample_settings(two_providers=True), run_id, as_of,
                             claims_dir(tmp_path))


def batch_dirs(tmp_path) -> list[Path]:
    return sorted(p for p in claims_dir(tmp_path).iterdir() if p.is_dir()) if claims_dir(tmp_path).exists() else []


def read_csv(batch_dir: Path) -> list[dict]:
    with open(batch_dir / "claim_lines.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def ledger_keys(con) -> list[tuple]:
    return con.execute("select patient_id, service_month from billing.ledger order by all").fetchall()


def january_for_everyone(con):
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 2)])
    add_patient_month(con, "P2", JAN, [("99491", 1)])
    add_patient_month(con, "P3", JAN, [("99490", 1)], billing_npi=NP_ORTIZ, group_npi=GROUP2_NPI)


# -- the 837P --------------------------------------------------------------------------------------------

def test_multi_provider_batch_has_one_interchange_per_group_npi_clean_under_pyx12(con, tmp_path):
    january_for_everyone(con)
    summary = run(con, tmp_path, settings=sample_settings(two_providers=True))
    batch = claims_dir(tmp_path) / summary["batch_id"]
    files = sorted(batch.glob("*.x12"))
    assert [f.name for f in files] == [f"{summary['batch_id']}_{GROUP_NPI}.x12", f"{summary['batch_id']}_{GROUP2_NPI}.x12"]
    for f in files:
        assert validate_with_pyx12(f) == [], f.name
        assert check_interchange(f.read_text(), f.name) == []
    first, second = (parse_837p(f.read_text()) for f in files)
    assert (first.billing_npi, len(first.claims)) == (GROUP_NPI, 2)
    assert (second.billing_npi, len(second.claims)) == (GROUP2_NPI, 1)
    assert second.claims[0].rendering_npi == NP_ORTIZ
    assert summary["claims"] == 3 and summary["lines"] == 4 and summary["units"] == 5
    assert set(summary) == {"batch_id", "path", "claims", "lines", "units", "charges", "expected_payment", "files",
                            "x12_files", "review_rows_added", "recovered_batches", "abandoned_temp_folders",
                            "usage_indicator", "rebilled_changed", "rebilled_released", "rejected_unchanged_waiting",
                            "claims_withheld", "withheld_by_edit"}
    assert (summary["claims_withheld"], summary["withheld_by_edit"]) == (0, {})


def test_pyx12_helper_reports_a_broken_file(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    path = next((claims_dir(tmp_path) / run(con, tmp_path)["batch_id"]).glob("*.x12"))
    broken = path.read_text().replace("SE*", "SE*9", 1).replace("DMG*D8*19500102*F", "DMG*D8*19501302*F")
    problems = validate_with_pyx12(broken)
    assert any("SE count" in p for p in problems)
    assert any("DMG" in p for p in problems)
    assert not any("19501302" in p for p in problems)  # pyx12 quotes values: a birth date is PHI


def test_837p_segments_follow_005010X222A1(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 2)], icd10=["E119", "I10", "N183"])
    summary = run(con, tmp_path)
    text = next((claims_dir(tmp_path) / summary["batch_id"]).glob("*.x12")).read_text()
    segments = [s.split("*") for s in text.split("~") if s]
    by_id = {}
    for s in segments:
        by_id.setdefault(s[0], []).append(s)
    isa = text.split("~")[0]
    assert len(isa) == 105 and isa.endswith("*:")  # fixed width: 106 with the terminator
    assert by_id["ISA"][0][6] == "RIVERBEND01".ljust(15) and by_id["ISA"][0][8] == "12502".ljust(15)
    assert by_id["ISA"][0][13] == by_id["IEA"][0][2] and len(by_id["ISA"][0][13]) == 9
    assert by_id["GS"][0][6] == by_id["GE"][0][2] and by_id["GE"][0][1] == "1" and by_id["IEA"][0][1] == "1"
    st = next(i for i, s in enumerate(segments) if s[0] == "ST")
    se = next(i for i, s in enumerate(segments) if s[0] == "SE")
    assert int(segments[se][1]) == se - st + 1 and segments[se][2] == segments[st][2]
    assert by_id["SBR"][0] == ["SBR", "P", "18", "", "", "", "", "", "", "MB"]
    assert ["NM1", "85", "2", "RIVERBEND FAMILY MEDICINE PC", "", "", "", "", "XX", GROUP_NPI] in by_id["NM1"]
    assert ["NM1", "82", "1", "CRUZ", "DANA", "", "", "", "XX", DR_CRUZ] in by_id["NM1"]
    assert ["NM1", "IL", "1", "LEE", "ANN", "", "", "", "MI", "1EG4TE5MK73"] in by_id["NM1"]
    assert by_id["N4"][0][3] == "190641234" and by_id["REF"][0] == ["REF", "EI", "123456789"]
    assert by_id["DMG"][0] == ["DMG", "D8", "19500102", "F"]
    assert by_id["HI"][0] == ["HI", "ABK:E119", "ABF:I10", "ABF:N183"]
    clm = by_id["CLM"][0]
    assert clm[5] == "11:B:1" and len(clm[1]) <= 20
    # 99439 x2 is one line with 2 units, pointing at the qualifying conditions
    assert by_id["SV1"] == [["SV1", "HC:99490", "66.13", "UN", "1", "", "", "1:2:3"],
                            ["SV1", "HC:99439", "95", "UN", "2", "", "", "1:2:3"]]
    assert clm[2] == "161.13"
    assert by_id["DTP"] == [["DTP", "472", "D8", "20260131"]] * 2


def test_claim_lines_csv_and_837p_agree_line_for_line(con, tmp_path):
    january_for_everyone(con)
    summary = run(con, tmp_path, settings=sample_settings(two_providers=True))
    batch = claims_dir(tmp_path) / summary["batch_id"]
    rows = read_csv(batch)
    assert list(rows[0]) == list(CSV_COLUMNS)
    x12_lines = []
    for f in sorted(batch.glob("*.x12")):
        for claim in parse_837p(f.read_text()).claims:
            dx = [code for _, code in claim.diagnoses]
            for ln in claim.lines:
                x12_lines.append((claim.claim_id, claim.mbi, ln.cpt_code, ln.units, ln.charge, ln.dates[0],
                                  " ".join(dx[int(p) - 1] for p in ln.pointers)))
    csv_lines = [(r["claim_id"], r["mbi"], r["cpt_code"], int(r["units"]), Decimal(r["charge_amount"]),
                  r["date_of_service"].replace("-", ""), r["icd10_codes"]) for r in rows]
    assert csv_lines == x12_lines
    assert {r["service_month"] for r in rows} == {"2026-01"}
    assert {r["batch_id"] for r in rows} == {summary["batch_id"]}
    assert check_batch({f.name: f.read_text() for f in batch.glob("*.x12")}, rows,
                       {r["claim_id"]: JAN for r in rows}) == []


def test_manifest_lists_every_file_with_its_sha256_and_control_totals(con, tmp_path):
    january_for_everyone(con)
    summary = run(con, tmp_path, settings=sample_settings(two_providers=True), run_id="run-manifest")
    batch = claims_dir(tmp_path) / summary["batch_id"]
    manifest = read_manifest(batch)
    assert manifest_problems(batch) == []
    assert len([f for f in manifest["files"] if f.startswith("audit/")]) == 3
    assert manifest["batch_id"] == summary["batch_id"] and manifest["as_of"] == "2026-02-10"
    assert manifest["run_id"] == "run-manifest"
    # allowed = charge here (the fixture charges the fee). Expected, line by line (80%, less 2%):
    # 66.13 -> 52.90 - 1.06 = 51.84; 95.00 -> 76.00 - 1.52 = 74.48; 86.00 -> 68.80 - 1.38 = 67.42; 66.13 -> 51.84
    # = 245.58 (it was the fee schedule amount before); patient 13.23 + 19.00 + 17.20 + 13.23 = 62.66
    assert manifest["control_totals"] == {"claims": 3, "lines": 4, "units": 5, "charges": "313.26",
                                          "allowed_amount": "313.26", "expected_payment": "245.58",
                                          "patient_responsibility": "62.66"}
    numbers = [i["interchange_control_number"] for i in manifest["interchanges"]]
    assert numbers == ["000000001", "000000002"]


def test_audit_packet_holds_the_activity_log_and_eligibility_evidence(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 1)], minutes=45)
    summary = run(con, tmp_path)
    batch = claims_dir(tmp_path) / summary["batch_id"]
    claim_id = read_csv(batch)[0]["claim_id"]
    packet = json.loads((batch / "audit" / f"{claim_id}.json").read_text())
    assert sum(a["countable_minutes"] for a in packet["activities"]) == 45
    activity = packet["activities"][0]
    assert activity["staff_name"] == "Joy Park" and activity["staff_role"] == "rn"
    assert activity["note"].startswith("Reviewed blood pressure log")
    assert activity["started_at"] == "2026-01-03T10:00:00" and activity["documented_at"] == "2026-01-03T10:30:00"
    assert [(c["cpt_code"], c["minutes"]) for c in packet["codes"]] == [("99490", 20), ("99439", 20)]
    evidence = packet["eligibility"]
    assert [c["icd10_code"] for c in evidence["conditions"] if c["qualifying"]] == ["E119", "I10"]
    assert evidence["consents"][0] == {"consent_date": "2025-06-01", "method": "verbal", "billing_npi": DR_CRUZ,
                                       "revoked_date": None, "obtained_by": None, "elements_explained": None}
    assert evidence["care_plans"][0]["established_date"] == "2025-06-15"
    assert evidence["initiating_visit"]["cpt_code"] == "99214"


# -- our own edits ----------------------------------------------------------------------------------------

def _bad_npi(con, settings):
    insert_raw(con, "staff", [dict(staff_id="S-X", full_name="Pat Wrong", role="physician", npi="1345678903")])
    add_patient_month(con, "P1", JAN, [("99490", 1)], billing_npi="1345678903")
    return settings


def _zip_without_plus4(con, settings):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    bp = settings.billing_providers[0]
    return dataclasses.replace(settings, billing_providers=(
        dataclasses.replace(bp, address=Address("100 Main Street", "Springfield", "PA", "19064")),))


def _dotted_icd10(con, settings):
    add_patient_month(con, "P1", JAN, [("99490", 1)], icd10=["E11.9", "I10"])
    return settings


def _malformed_mbi(con, settings):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    con.execute("update staging.patients set mbi = '1SG4-TE5-MK73' where patient_id = 'P1'")
    return settings


def _birth_date_after_the_month(con, settings):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    con.execute("update staging.patients set birth_date = date '2026-02-14' where patient_id = 'P1'")
    return settings


def _no_address(con, settings):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    con.execute("update staging.patients set address_line1 = '' where patient_id = 'P1'")
    return settings


def _add_on_without_base(con, settings):
    add_patient_month(con, "P1", JAN, [("99439", 1)])
    return settings


def withheld(con) -> list[tuple]:
    return con.execute("select patient_id, service_month, edit, reason from billing.withheld_claims "
                       "order by all").fetchall()


@pytest.mark.parametrize("make_bad, edit, message", [
    (_bad_npi, "rendering_npi", "rendering provider (2310B) NPI '1345678903' fails the NPI check digit"),
    (_dotted_icd10, "icd10", "HI position 1 code 'E11.9' is not an ICD-10-CM code without a dot"),
    (_malformed_mbi, "mbi", "subscriber MBI (2010BA NM109) is malformed"),
    (_add_on_without_base, "add_on", "line 1: add-on 99439 billed without its base code 99490"),
    (_birth_date_after_the_month, "birth_date_future", "DMG02 birth date is after the service month"),
    (_no_address, "empty_n301", "N301 subscriber address (N301) is empty"),
], ids=["npi_check_digit", "icd10_dotted", "mbi_format", "add_on_without_base", "future_birth_date", "no_address"])
def test_a_claim_failing_an_edit_is_withheld_with_its_reason_and_the_batch_goes_on(con, tmp_path, make_bad, edit,
                                                                                  message):
    add_patient_month(con, "P2", JAN, [("99491", 1)])  # a good claim of another patient
    settings = make_bad(con, sample_settings())
    summary = run(con, tmp_path, settings=settings)
    assert ledger_keys(con) == [("P2", JAN)]  # P2 is billed, P1 is not
    assert [r["patient_id"] for r in read_csv(claims_dir(tmp_path) / summary["batch_id"])] == ["P2"]
    rows = withheld(con)
    assert [(p, m, e) for p, m, e, _ in rows] == [("P1", JAN, edit)]
    assert message in rows[0][3]
    assert "1SG4-TE5-MK73" not in rows[0][3]  # the reason names what is wrong, never the MBI
    assert (summary["claims"], summary["claims_withheld"], summary["withheld_by_edit"]) == (1, 1, {edit: 1})


def test_a_withheld_claim_is_billed_once_its_data_is_fixed(con, tmp_path):
    settings = _malformed_mbi(con, sample_settings())
    assert run(con, tmp_path, settings=settings, run_id="run-1")["batch_id"] is None  # nothing else to bill
    assert [e for _, _, e, _ in withheld(con)] == ["mbi"]
    con.execute("update staging.patients set mbi = '1EG4TE5MK73' where patient_id = 'P1'")
    summary = run(con, tmp_path, settings=settings, as_of=date(2026, 2, 11), run_id="run-2")
    assert summary["claims"] == 1 and summary["claims_withheld"] == 0
    assert ledger_keys(con) == [("P1", JAN)] and withheld(con) == []


@pytest.mark.parametrize("make_bad, message", [
    (_zip_without_plus4, "ZIP+4"),
], ids=["billing_zip_plus4"])
def test_a_configuration_problem_stops_the_batch_and_commits_nothing(con, tmp_path, make_bad, message):
    add_patient_month(con, "P2", JAN, [("99491", 1)])  # a good claim goes down with the batch
    settings = make_bad(con, sample_settings())
    with pytest.raises(ClaimEditError) as err:
        run(con, tmp_path, settings=settings)
    assert message in str(err.value)
    assert ledger_keys(con) == []
    assert con.execute("select count(*) from billing.batches").fetchone()[0] == 0
    assert con.execute("select count(*) from billing.control_numbers").fetchone()[0] == 0
    assert not claims_dir(tmp_path).exists() or list(claims_dir(tmp_path).iterdir()) == []


def test_a_billing_provider_missing_from_the_configuration_stops_the_batch(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1)], group_npi=GROUP2_NPI)
    with pytest.raises(ClaimEditError, match=f"billing provider NPI '{GROUP2_NPI}'"):
        run(con, tmp_path, settings=sample_settings())  # one provider only
    assert ledger_keys(con) == []


def test_a_state_that_is_no_state_code_withholds_the_claim(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    add_patient_month(con, "P2", JAN, [("99491", 1)])
    con.execute("update staging.patients set state = 'XX' where patient_id = 'P1'")
    summary = run(con, tmp_path)
    assert ledger_keys(con) == [("P2", JAN)]
    assert [(p, e) for p, _, e, _ in withheld(con)] == [("P1", "state")]
    assert validate_with_pyx12(next((claims_dir(tmp_path) / summary["batch_id"]).glob("*.x12"))) == []


def test_a_claim_pyx12_rejects_is_withheld_and_the_batch_written_again_without_it(con, tmp_path, monkeypatch):
    from transforms.billing import batch as claims

    real = claims.claim_line_findings
    # as if our edits did not know state codes: only pyx12 finds the bad one
    monkeypatch.setattr(claims, "claim_line_findings", lambda lines: real(lines).filter(
        ~(claims.pl.col("edit") == "state")))
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    add_patient_month(con, "P2", JAN, [("99491", 1)])
    con.execute("update staging.patients set state = 'XX' where patient_id = 'P1'")
    summary = run(con, tmp_path)
    assert ledger_keys(con) == [("P2", JAN)]
    ((patient, _, edit, reason),) = withheld(con)
    assert (patient, edit) == ("P1", "pyx12") and "Subscriber State Code" in reason and "XX" not in reason
    batch = claims_dir(tmp_path) / summary["batch_id"]
    assert validate_with_pyx12(next(batch.glob("*.x12"))) == [] and manifest_problems(batch) == []
    assert [d.name for d in batch_dirs(tmp_path)] == [summary["batch_id"]]  # the first attempt left nothing


@pytest.fixture
def good_x12(con, tmp_path) -> str:
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 2)])
    return next((claims_dir(tmp_path) / run(con, tmp_path)["batch_id"]).glob("*.x12")).read_text()


def test_edit_clm02_must_equal_the_sum_of_line_charges(good_x12):
    assert check_interchange(good_x12, "f.x12") == []
    bad = good_x12.replace("*161.13***11:B:1", "*160.13***11:B:1")
    assert any("CLM02 total 160.13 does not equal the sum of SV102 line charges 161.13" in p
               for p in check_interchange(bad, "f.x12"))
    assert validate_with_pyx12(bad) == []  # pyx12 does not add up charges: that is why this edit exists


def test_edit_pointer_must_point_at_a_diagnosis_in_hi(good_x12):
    bad = good_x12.replace("*UN*2***1:2", "*UN*2***1:3")
    assert any("SV107 pointer 3 points at no diagnosis in HI" in p for p in check_interchange(bad, "f.x12"))


def test_edit_one_claim_per_patient_month_and_no_month_spanning(good_x12):
    spans = good_x12.replace("DTP*472*D8*20260131~LX*2", "DTP*472*D8*20260201~LX*2")
    assert any("span months" in p for p in check_interchange(spans, "f.x12"))
    claim = good_x12[good_x12.index("HL*2*"):good_x12.index("SE*")]
    twice = good_x12.replace(claim, claim + claim.replace("HL*2*", "HL*3*").replace("CLM*CCM", "CLM*CCX"))
    rows = [{"claim_id": c.claim_id, "cpt_code": ln.cpt_code, "units": ln.units, "charge_amount": ln.charge}
            for c in parse_837p(twice).claims for ln in c.lines]
    assert any("one claim per patient-month" in p for p in check_batch({"f.x12": twice}, rows, {}))


# -- exactly once ------------------------------------------------------------------------------------------

def test_rerun_with_the_same_as_of_makes_no_second_batch(con, tmp_path):
    january_for_everyone(con)
    first = run(con, tmp_path, run_id="run-1")
    ledger = con.execute("select * from billing.ledger order by all").fetchall()
    second = run(con, tmp_path, run_id="run-2")
    assert first["batch_id"] == "B20260210-001" and second["batch_id"] is None
    assert con.execute("select * from billing.ledger order by all").fetchall() == ledger
    assert [d.name for d in batch_dirs(tmp_path)] == ["B20260210-001"]
    assert manifest_problems(batch_dirs(tmp_path)[0]) == []


def test_backfill_never_bills_a_patient_month_twice(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    add_patient_month(con, "P1", FEB, [("99490", 1), ("99439", 1)])
    add_patient_month(con, "P2", FEB, [("99491", 1)])
    feb_batch = run(con, tmp_path, as_of=AFTER_JAN)
    mar_batch = run(con, tmp_path, as_of=AFTER_FEB)
    again = run(con, tmp_path, as_of=AFTER_JAN)  # an old night re-run after a later one
    assert (feb_batch["claims"], mar_batch["claims"], again["batch_id"]) == (1, 2, None)
    assert ledger_keys(con) == [("P1", JAN), ("P1", FEB), ("P2", FEB)]
    months = [{r["service_month"] for r in read_csv(d)} for d in batch_dirs(tmp_path)]
    assert months == [{"2026-01"}, {"2026-02"}]


def test_open_months_are_not_claimed(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    add_patient_month(con, "P1", FEB, [("99490", 1)])
    add_patient_month(con, "P2", JAN, [("99490", 1)], eligible=False)
    assert run(con, tmp_path, as_of=date(2026, 2, 4))["batch_id"] is None  # Jan 31 + 5 grace days = Feb 5
    assert run(con, tmp_path, as_of=date(2026, 2, 5))["claims"] == 1
    assert ledger_keys(con) == [("P1", JAN)]  # February still open, P2 not eligible


def test_late_minutes_for_a_billed_month_go_to_review_never_a_new_claim(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 1)], minutes=45)
    run(con, tmp_path, run_id="run-1")
    set_codes(con, "P1", JAN, [("99490", 1), ("99439", 2)], minutes=65)  # a late note arrives
    late = run(con, tmp_path, as_of=date(2026, 2, 11), run_id="run-2")
    assert late["batch_id"] is None and late["review_rows_added"] == 1
    review = con.execute("select patient_id, service_month, change, billed_codes, billed_minutes, current_codes, "
                         "current_minutes, detected_run_id from billing.review").fetchall()
    assert review == [("P1", JAN, "codes", "99490 99439", 45, "99490 99439x2", 65, "run-2")]
    assert run(con, tmp_path, as_of=date(2026, 2, 12), run_id="run-3")["review_rows_added"] == 0
    set_codes(con, "P1", JAN, [("99490", 1), ("99439", 2)], minutes=70)  # more minutes, same codes
    assert run(con, tmp_path, as_of=date(2026, 2, 13), run_id="run-4")["review_rows_added"] == 1
    assert con.execute("select count(*) from billing.ledger").fetchone()[0] == 1
    assert len(batch_dirs(tmp_path)) == 1


def test_control_numbers_increase_and_are_never_reused(con, tmp_path):
    settings = sample_settings(two_providers=True)
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    add_patient_month(con, "P3", JAN, [("99490", 1)], billing_npi=NP_ORTIZ, group_npi=GROUP2_NPI)
    add_patient_month(con, "P1", FEB, [("99490", 1)])
    add_patient_month(con, "P1", MAR, [("99490", 1)])
    run(con, tmp_path, as_of=AFTER_JAN, settings=settings)
    run(con, tmp_path, as_of=AFTER_FEB, settings=settings)
    run(con, tmp_path, as_of=date(2026, 4, 10), settings=settings)
    isa13 = [parse_isa13(f) for d in batch_dirs(tmp_path) for f in sorted(d.glob("*.x12"))]
    assert isa13 == [1, 2, 3, 4]
    stored = con.execute("select interchange_control_number, group_control_number, transaction_set_control_number "
                         "from billing.control_numbers order by 1").fetchall()
    assert stored == [(n, n, n) for n in (1, 2, 3, 4)]


def parse_isa13(path: Path) -> int:
    return int(path.read_text().split("*")[13])


def test_claim_files_are_private(con, tmp_path):
    january_for_everyone(con)
    old = os.umask(0o022)
    try:
        summary = run(con, tmp_path)
    finally:
        os.umask(old)
    batch = claims_dir(tmp_path) / summary["batch_id"]
    for path in [batch, *batch.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_logs_carry_no_phi(con, tmp_path, caplog):
    january_for_everyone(con)
    caplog.set_level(logging.DEBUG)
    run(con, tmp_path)
    add_patient_month(con, "P1", FEB, [("99439", 1)])
    con.execute("update staging.patients set mbi = '1SG4TE5MK73' where patient_id = 'P1'")
    summary = run(con, tmp_path, as_of=AFTER_FEB)
    assert summary["claims_withheld"] == 1
    text = caplog.text + json.dumps(summary) + json.dumps(withheld(con), default=str)
    for p in PATIENTS:
        for value in (p["mbi"], p["first_name"], p["last_name"], p["birth_date"], p["birth_date"].replace("-", "")):
            assert value not in text
    assert "1SG4TE5MK73" not in text
    assert "Reviewed blood pressure" not in text


# -- crash safety ------------------------------------------------------------------------------------------

CRASHING_RUN = """
import sys
from datetime import date, datetime
from pathlib import Path
sys.path.insert(0, {tests!r})
from claims_fixtures import TZ, sample_settings
from transforms.billing.batch import write_claim_batch
from transforms.warehouse import connect
con = connect({db!r}, TZ)
write_claim_batch(con, sample_settings(), "run-crash", date(2026, 2, 10), Path({claims!r}))
"""


def crash_at(tmp_path: Path, point: str) -> None:
    code = CRASHING_RUN.format(tests=str(Path(__file__).parent), db=str(tmp_path / "w.duckdb"),
                               claims=str(claims_dir(tmp_path)))
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, FAULT_ENV: point}, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == FAULT_EXIT_CODE, done.stderr


def query(tmp_path: Path, sql: str) -> list[tuple]:
    ro = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        return ro.execute(sql).fetchall()
    finally:
        ro.close()


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_a_kill_at_any_point_then_a_rerun_bills_each_patient_month_once(tmp_path, point):
    con = new_warehouse(tmp_path)
    january_for_everyone(con)
    con.execute("update core.code_lines set billing_provider_npi = ? where billing_provider_npi = ?",
                [GROUP_NPI, GROUP2_NPI])  # the crashing run uses the one-provider sample settings
    con.close()

    crash_at(tmp_path, point)
    committed = point in ("after_ledger", "after_rename")
    # Either no ledger rows (and only a temp folder), or all of them.
    assert query(tmp_path, "select count(*) from billing.ledger")[0][0] == (3 if committed else 0)
    assert (claims_dir(tmp_path) / "B20260210-001").exists() == (point == "after_rename")

    con = connect(tmp_path / "w.duckdb", TZ)
    summary = run(con, tmp_path, run_id="run-after-crash")
    assert summary["recovered_batches"] == (["B20260210-001"] if committed else [])
    assert summary["abandoned_temp_folders"] == ([] if committed else ["B20260210-001"])
    assert ledger_keys(con) == [("P1", JAN), ("P2", JAN), ("P3", JAN)]
    delivered = con.execute("select batch_id from billing.batches where status = 'delivered'").fetchall()
    assert len(delivered) == 1
    assert [d.name for d in batch_dirs(tmp_path)] == [delivered[0][0]]
    assert not list(claims_dir(tmp_path).glob(".tmp-*"))
    batch = batch_dirs(tmp_path)[0]
    assert manifest_problems(batch) == []
    assert len(read_csv(batch)) == 4
    assert validate_with_pyx12(next(batch.glob("*.x12"))) == []
    # a number that was written into a file is never handed out again, even if the file never left
    numbers = [parse_isa13(f) for f in batch.glob("*.x12")]
    assert numbers == ([1] if committed else [2])
    assert run(con, tmp_path, run_id="run-again")["batch_id"] is None
    con.close()


def test_a_complete_temp_folder_of_a_committed_batch_is_put_in_place(tmp_path):
    con = new_warehouse(tmp_path)
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 2)])
    con.close()
    crash_at(tmp_path, "after_ledger")
    con = connect(tmp_path / "w.duckdb", TZ)
    assert run(con, tmp_path)["recovered_batches"] == ["B20260210-001"]
    batch = claims_dir(tmp_path) / "B20260210-001"
    assert manifest_problems(batch) == []
    stored = con.execute("select manifest_sha256 from billing.batches").fetchone()[0]
    assert hashlib.sha256((batch / "manifest.json").read_bytes()).hexdigest() == stored
    assert stat.S_IMODE((batch / "claim_lines.csv").stat().st_mode) == 0o600
    con.close()


@pytest.mark.parametrize("damage", ["folder_gone", "file_missing", "file_altered"])
def test_a_committed_batch_whose_folder_is_lost_fails_loudly_naming_batch_and_folder(tmp_path, damage):
    con = new_warehouse(tmp_path)
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 2)])
    con.close()
    crash_at(tmp_path, "after_ledger")
    tmp = claims_dir(tmp_path) / ".tmp-B20260210-001"
    if damage == "folder_gone":
        shutil.rmtree(tmp)
    elif damage == "file_missing":
        (tmp / "claim_lines.csv").unlink()
    else:
        with open(tmp / "claim_lines.csv", "a") as fh:
            fh.write("x")
    con = connect(tmp_path / "w.duckdb", TZ)
    with pytest.raises(RuntimeError) as err:
        run(con, tmp_path)
    message = str(err.value)
    assert "B20260210-001" in message and str(tmp) in message and "cannot be rebuilt" in message
    assert ("is missing" if damage == "folder_gone" else "incomplete or altered") in message
    # nothing else happened: still committed, never billed again, no new batch
    assert con.execute("select status from billing.batches").fetchall() == [("committed",)]
    assert ledger_keys(con) == [("P1", JAN)]
    assert not (claims_dir(tmp_path) / "B20260210-001").exists()
    con.close()


def test_batch_files_hold_names_hashes_and_sizes_not_bytes(con, tmp_path):
    january_for_everyone(con)
    summary = run(con, tmp_path)
    batch = claims_dir(tmp_path) / summary["batch_id"]
    columns = [r[0] for r in con.execute("select column_name from information_schema.columns where "
                                         "table_schema = 'billing' and table_name = 'batch_files'").fetchall()]
    assert "content" not in columns
    stored = {name: (sha, size) for name, sha, size in con.execute(
        "select file_name, sha256, size from billing.batch_files where batch_id = ?", [summary["batch_id"]]).fetchall()}
    on_disk = {p.relative_to(batch).as_posix(): p.read_bytes() for p in batch.rglob("*") if p.is_file()}
    assert stored == {name: (hashlib.sha256(data).hexdigest(), len(data)) for name, data in on_disk.items()}
    assert summary["files"] == len(on_disk) == 2 + 1 + 3 + 1  # 2 interchanges, csv, 3 packets, manifest


def test_a_warehouse_with_the_old_content_column_still_works(con, tmp_path):
    con.execute("create schema if not exists billing")
    con.execute("create table billing.batch_files (batch_id varchar not null, file_name varchar not null, "
                "sha256 varchar not null, content blob not null, primary key (batch_id, file_name))")
    con.execute("insert into billing.batch_files values ('B20260101-001', 'manifest.json', 'ab', 'x'::blob)")
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    summary = run(con, tmp_path)
    assert summary["claims"] == 1
    assert con.execute("select count(*) from billing.batch_files").fetchone()[0] == 1 + summary["files"]


# -- streaming and large batches -------------------------------------------------------------------------

def _strip_clock(path: Path) -> bytes:
    """A file's bytes without the batch's creation time (ISA09/10, GS04/05, BHT04/05, created_at)."""
    text = path.read_text()
    if path.suffix == ".x12":
        text = re.sub(r"^(ISA(?:\*[^*]*){8})\*\d{6}\*\d{4}", r"\1*D*T", text)
        text = re.sub(r"(GS\*HC\*[^*]*\*[^*]*)\*\d{8}\*\d{4}", r"\1*D*T", text)
        text = re.sub(r"(BHT\*0019\*00\*[^*]*)\*\d{8}\*\d{4}", r"\1*D*T", text)
    if path.name == "manifest.json":
        manifest = json.loads(text)
        manifest.pop("created_at"), manifest.pop("files")
        text = json.dumps(manifest)
    return text.encode()


def three_claims_of_one_shape_but_an_address(con):
    """P1 (second address line), then P2 and P3 of one shape: a sample of 1 + one per shape reads P1, P2."""
    add_patient_month(con, "P1", JAN, [("99490", 1)])
    add_patient_month(con, "P2", JAN, [("99490", 1)])
    add_patient_month(con, "P3", JAN, [("99490", 1)])


def test_chunk_size_changes_nothing_in_the_files(tmp_path, monkeypatch):
    from transforms.billing import batch as claims

    folders = {}
    for chunk in (1, 25_000):
        monkeypatch.setattr(claims, "CHUNK_CLAIMS", chunk)
        monkeypatch.setattr(claims, "AUDIT_CHUNK_CLAIMS", chunk)
        root = tmp_path / f"chunk{chunk}"
        root.mkdir()
        claims_fixtures._activity_seq[0] = 0  # the same activity ids in both warehouses
        con = new_warehouse(root)
        january_for_everyone(con)
        add_patient_month(con, "P1", FEB, [("99490", 1), ("99439", 1)])
        folders[chunk] = claims_dir(root) / run(con, root, as_of=AFTER_FEB)["batch_id"]
        con.close()
    small, big = folders[1], folders[25_000]
    names = sorted(p.relative_to(big).as_posix() for p in big.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(small).as_posix() for p in small.rglob("*") if p.is_file())
    assert len(names) == 2 + 1 + 4 + 1
    for name in names:
        assert _strip_clock(small / name) == _strip_clock(big / name), name
    assert manifest_problems(small) == [] and manifest_problems(big) == []


def test_streamed_837p_is_what_the_reference_renderer_writes(con, tmp_path):
    from transforms.billing.x12_837p import (BillingProviderInfo, Claim, ClaimLine, Envelope, Subscriber,
                                     render_interchange)

    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 2)], icd10=["E119", "I10", "N183"])
    add_patient_month(con, "P2", JAN, [("99491", 1)])
    settings = sample_settings()
    summary = run(con, tmp_path, settings=settings)
    batch = claims_dir(tmp_path) / summary["batch_id"]
    manifest = read_manifest(batch)
    ids = {r["patient_id"]: r["claim_id"] for r in read_csv(batch)}
    eom = date(2026, 1, 31)
    p1, p2 = PATIENTS[0], PATIENTS[1]
    claims = [
        Claim(ids["P1"], Subscriber(p1["mbi"], "Lee", "Ann", "1 Elm St", "Apt 2", "Media", "PA", "19063",
                                    date(1950, 1, 2), "F"), DR_CRUZ, "CRUZ", "DANA", ("E119", "I10", "N183"),
              (ClaimLine("99490", 1, Decimal("66.13"), eom, (1, 2, 3)),
               ClaimLine("99439", 2, Decimal("95.00"), eom, (1, 2, 3))), "11"),
        Claim(ids["P2"], Subscriber(p2["mbi"], "Núñez", "José", "22 Oak Rd", None, "Chester", "PA", "19013-4321",
                                    date(1948, 7, 30), "M"), DR_CRUZ, "CRUZ", "DANA", ("E119", "I10"),
              (ClaimLine("99491", 1, Decimal("86.00"), eom, (1, 2)),), "11"),
    ]
    x12, bp = settings.x12, settings.billing_providers[0]
    env = Envelope(1, 1, 1, datetime.fromisoformat(manifest["created_at"]), summary["batch_id"], x12["submitter_id"],
                   x12["submitter_name"], x12["submitter_contact"], x12["submitter_phone"], x12["receiver_id"],
                   x12["receiver_name"], settings.payer_name, settings.payer_id, x12["usage_indicator"])
    info = BillingProviderInfo(bp.npi, bp.name, bp.tin, bp.taxonomy, bp.address.line1, bp.address.line2,
                               bp.address.city, bp.address.state, bp.address.zip)
    assert (batch / f"{summary['batch_id']}_{GROUP_NPI}.x12").read_text() == render_interchange(env, info, claims)


def test_claim_lines_csv_is_what_the_csv_module_writes_quotes_and_all(con, tmp_path):
    odd = dict(PATIENTS[0], patient_id='P"4,x', mbi="4EG4TE5MK76")
    insert_raw(con, "patients", [odd])
    add_patient_month(con, 'P"4,x', JAN, [("99490", 1), ("99439", 1)])
    add_patient_month(con, "P2", JAN, [("99491", 1)])
    batch = claims_dir(tmp_path) / run(con, tmp_path)["batch_id"]
    rows = read_csv(batch)
    assert {r["patient_id"] for r in rows} == {'P"4,x', "P2"}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    assert (batch / "claim_lines.csv").read_bytes() == out.getvalue().encode()
    assert [r["icd10_codes"] for r in rows if r["patient_id"] == "P2"] == ["E119 I10"]


def test_audit_packet_keys_and_value_types(con, tmp_path):
    add_patient_month(con, "P1", JAN, [("99490", 1), ("99439", 1)], minutes=45)
    batch = claims_dir(tmp_path) / run(con, tmp_path)["batch_id"]
    packet = json.loads(next((batch / "audit").glob("*.json")).read_text())
    assert list(packet) == ["batch_id", "claim_id", "patient_id", "service_month", "billing_npi",
                            "billing_provider_npi", "minutes", "codes", "activities", "eligibility"]
    assert packet["minutes"] == {"countable": 45, "clinical_staff": 45, "practitioner": 0}
    # 66.13 allowed: Medicare 80% = 52.90, less 2% (1.06) = 51.84; the patient's 20% = 13.23
    assert packet["codes"][0] == {"cpt_code": "99490", "units": 1, "minutes": 20, "charge_amount": "66.13",
                                  "allowed_amount": "66.13", "expected_payment": "51.84",
                                  "patient_responsibility": "13.23", "date_of_service": "2026-01-31",
                                  "icd10_codes": ["E119", "I10"]}
    assert list(packet["activities"][0]) == [
        "activity_id", "date", "started_at", "minutes", "countable_minutes", "counted_as", "excluded_minutes",
        "exclusion_reason", "staff_id", "staff_name", "staff_role", "role_class", "staff_npi", "staff_credential",
        "activity_type", "face_to_face", "note", "documented_at"]
    assert packet["activities"][0]["date"] == "2026-01-03"
    assert list(packet["eligibility"]) == ["conditions", "consents", "care_plans", "encounters",
                                           "initiating_visit", "rules_verdict"]
    assert packet["eligibility"]["rules_verdict"]["service_month"] == "2026-01-01"
    assert packet["eligibility"]["rules_verdict"]["eligible"] is True


def test_small_batch_is_read_whole_by_pyx12(con, tmp_path):
    january_for_everyone(con)
    batch = claims_dir(tmp_path) / run(con, tmp_path)["batch_id"]
    assert read_manifest(batch)["x12_validation"] == {"pyx12": "full", "claims_checked_by_pyx12": 3, "claims": 3,
                                                     "own_edits": "every claim"}


@pytest.fixture
def large_batch(monkeypatch):
    """Any batch over 2 claims is 'large'; pyx12's sample takes the first claim plus one of every shape."""
    from transforms.billing import batch as claims

    monkeypatch.setattr(claims, "PYX12_SAMPLE_FIRST", 1)
    return sample_settings(x12_full_max_claims=2)


def test_large_batch_pyx12_reads_a_sample_and_the_files_are_whole_and_clean(con, tmp_path, large_batch):
    three_claims_of_one_shape_but_an_address(con)
    summary = run(con, tmp_path, settings=large_batch)
    batch = claims_dir(tmp_path) / summary["batch_id"]
    assert read_manifest(batch)["x12_validation"] == {"pyx12": "sample", "claims_checked_by_pyx12": 2,
                                                     "claims": 3, "own_edits": "every claim"}
    assert manifest_problems(batch) == []
    (x12,) = batch.glob("*.x12")
    assert validate_with_pyx12(x12) == []  # what the DAG's validate_interchange task does
    assert check_batch({x12.name: x12.read_text()}, read_csv(batch), {r["claim_id"]: JAN for r in read_csv(batch)}) == []
    assert len(parse_837p(x12.read_text()).claims) == 3


def _zip_of_4_digits(con):
    con.execute("update staging.patients set zip = '1906' where patient_id = 'P3'")


def _name_with_no_ascii_letter(con):
    con.execute("update staging.patients set last_name = '李' where patient_id = 'P3'")


def _malformed_mbi_of_p3(con):
    con.execute("update staging.patients set mbi = '3SG4TE5MK75' where patient_id = 'P3'")


def _dotted_icd10_of_p3(con):
    con.execute("update core.code_lines set icd10_codes = ['E11.9', 'I10'] where patient_id = 'P3'")


def _month_spanning_line_of_p3(con):
    con.execute("update core.code_lines set date_of_service = date '2026-02-01' where patient_id = 'P3'")


@pytest.mark.parametrize("make_bad, message", [
    (_zip_of_4_digits, "N403 subscriber ZIP must be 5 or 9 digits"),
    (_name_with_no_ascii_letter, "NM103 subscriber last name (NM103) is empty"),
    (_malformed_mbi_of_p3, "subscriber MBI (2010BA NM109) is malformed"),
    (_dotted_icd10_of_p3, "HI position 1 code 'E11.9' is not an ICD-10-CM code without a dot"),
    (_month_spanning_line_of_p3, "dates of service fall outside the service month 2026-01"),
], ids=["zip", "empty_name", "mbi", "icd10", "service_month"])
def test_large_batch_our_edits_catch_a_claim_pyx12_does_not_read(con, tmp_path, large_batch, make_bad, message):
    three_claims_of_one_shape_but_an_address(con)
    make_bad(con)
    summary = run(con, tmp_path, settings=large_batch)
    ((patient, _, _, reason),) = withheld(con)
    assert patient == "P3" and message in reason
    assert "1906" not in reason and "3SG4TE5MK75" not in reason and "李" not in reason
    assert [p for p, _ in ledger_keys(con)] == ["P1", "P2"] and summary["claims"] == 2


def test_two_patients_with_one_mbi_in_one_month_are_both_withheld(con, tmp_path):
    january_for_everyone(con)
    con.execute("update staging.patients set mbi = '1EG4TE5MK73' where patient_id = 'P2'")
    run(con, tmp_path)
    rows = withheld(con)
    assert [(p, e) for p, _, e, _ in rows] == [("P1", "mbi_shared"), ("P2", "mbi_shared")]
    assert all("one claim per patient-month" in r and "1EG4TE5MK73" not in r for *_, r in rows)
    assert ledger_keys(con) == [("P3", JAN)]
