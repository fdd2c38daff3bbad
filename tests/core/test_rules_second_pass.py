"""The billing rules' second pass (issue 13), one table row per rule, each expectation worked by hand
from shared/domain/ccm-rules.md (the arithmetic is in the row's comment).

Money, per line: allowed = the lower of charge and fee; Medicare's share = round(allowed x 0.80, 2);
expected payment = share - round(share x 0.02, 2) (sequestration); patient responsibility = allowed - share.
The default patient (core_fixtures.Practice.enrolled) has E11.9 and I10, verbal consent of 2024-12-01
naming DOC, a standard care plan of 2024-12-01 and a 99214 by DOC on 2024-11-15. The sample charge
master charges 99490 95.00, 99439 70.00, 99426 100.00, 99427 80.00 a unit.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import yaml

from core_fixtures import DOCTOR_NPI, OTHER_NP_NPI, Practice, settings_with
from transforms.core.rules import RulesError
from transforms.paths import RULES_DIR

MARCH = "2025-03"
ALL_ELEMENTS = "availability;cost_sharing;one_practitioner;right_to_stop"


def money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def assert_has(row: dict, expected: dict) -> None:
    assert {k: row[k] for k in expected} == expected


def practice_with(tmp_path, **settings) -> Practice:
    return Practice(tmp_path / "w.duckdb", settings=settings_with(**settings) if settings else None).team()


# -- 1. amounts from CMS's files: allowed, expected payment, patient responsibility ----------------------

@pytest.mark.parametrize(
    "month, settings, staff_id, minutes, codes, charge, allowed, expected, patient",
    [
        # charge 95.00 > fee 60.49: allowed 60.49; 80% = 48.392 -> 48.39; 2% = 0.9678 -> 0.97; 48.39 - 0.97 = 47.42;
        # patient 60.49 - 48.39 = 12.10
        pytest.param(MARCH, {}, "RN", 20, "99490", "95.00", "60.49", "47.42", "12.10", id="charge_above_fee"),
        # charge 50.00 < fee 60.49: allowed 50.00; 80% = 40.00; 2% = 0.80 -> 39.20; patient 10.00
        pytest.param(MARCH, {"charges": {"99490": 50.0}}, "RN", 20, "99490", "50.00", "50.00", "39.20", "10.00",
                     id="charge_below_fee_caps_allowed"),
        # 99490 not in the charge master: charged at its fee 60.49 (allowed 60.49 as above)
        pytest.param(MARCH, {"charges": {"99439": 70.0}}, "RN", 20, "99490", "60.49", "60.49", "47.42", "12.10",
                     id="code_missing_from_charge_master_is_charged_at_the_fee"),
        # 2026, not a QP: 1.98 x 33.4009 = 66.13; 80% = 52.904 -> 52.90; 2% = 1.058 -> 1.06; 51.84; patient 13.23
        pytest.param("2026-01", {}, "RN", 20, "99490", "95.00", "66.13", "51.84", "13.23", id="2026_non_qp"),
        # 2026, DOC a QP: 1.98 x 33.5675 = 66.46; 80% = 53.168 -> 53.17; 2% = 1.0634 -> 1.06; 52.11; patient 13.29
        pytest.param("2026-01", {"qualifying_apm_participants": {2026: frozenset({DOCTOR_NPI})}}, "RN", 20, "99490",
                     "95.00", "66.46", "52.11", "13.29", id="2026_qp_billing_practitioner_gets_the_qp_factor"),
        # the year boundary: December 2025 has one conversion factor, QP or not: 60.49 as in the first row
        pytest.param("2025-12", {"qualifying_apm_participants": {None: frozenset({DOCTOR_NPI})}}, "RN", 20, "99490",
                     "95.00", "60.49", "47.42", "12.10", id="december_2025_qp_still_32_3465"),
        # ... and January 2026 the QP one (66.46 as above), the same configuration
        pytest.param("2026-01", {"qualifying_apm_participants": {None: frozenset({DOCTOR_NPI})}}, "RN", 20, "99490",
                     "95.00", "66.46", "52.11", "13.29", id="january_2026_qp_33_5675"),
        # a QP who is not the month's billing practitioner changes nothing: 66.13 as in 2026_non_qp
        pytest.param("2026-01", {"qualifying_apm_participants": {2026: frozenset({OTHER_NP_NPI})}}, "RN", 20,
                     "99490", "95.00", "66.13", "51.84", "13.23", id="another_practitioners_qp_status_is_not_ours"),
        # two lines: 99490 47.42 / 12.10 and 99439 x2: fee 91.86, 80% = 73.488 -> 73.49, 2% = 1.4698 -> 1.47,
        # 72.02, patient 18.37; charge 95.00 + 140.00; allowed 60.49 + 91.86 = 152.35; expected 119.44; 30.47
        pytest.param(MARCH, {}, "RN", 60, "99490 99439x2", "235.00", "152.35", "119.44", "30.47",
                     id="each_line_rounded_then_summed"),
    ],
)
def test_allowed_expected_and_patient_amounts(tmp_path, month, settings, staff_id, minutes, codes, charge, allowed,
                                               expected, patient):
    practice = practice_with(tmp_path, **settings)
    practice.enrolled()
    practice.log("P1", staff_id, month, minutes)
    practice.run(as_of="2026-02-28")
    assert_has(practice.month("P1", month), {
        "billed_codes": codes, "charge_amount": money(charge), "allowed_amount": money(allowed),
        "expected_payment": money(expected), "patient_responsibility": money(patient),
    })
    lines = practice.lines("P1", month)
    assert sum(l["allowed_amount"] for l in lines) == money(allowed)
    assert all(l["allowed_amount"] == min(l["charge_amount"], l["fee_schedule_amount"]) for l in lines)


def test_no_sequestration_where_it_is_not_in_force(tmp_path):
    raw = yaml.safe_load((RULES_DIR / "2025.yaml").read_text())
    raw["payment"]["sequestration_rate"] = 0
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "2025.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    practice = practice_with(tmp_path, rules_dir=folder)
    practice.enrolled()
    practice.log("P1", "RN", MARCH, 20)
    practice.run()
    # 60.49 x 0.80 = 48.392 -> 48.39, nothing taken off
    assert_has(practice.month("P1", MARCH), {"expected_payment": Decimal("48.39"),
                                             "patient_responsibility": Decimal("12.10")})


GPCI_2025 = """ADDENDUM E. FINAL CY 2025 GEOGRAPHIC PRACTICE COST INDICES (GPCIs) BY STATE AND MEDICARE LOCALITY,,,,,,
,,,,,,
Medicare Administrative Contractor (MAC),State,Locality Number,Locality Name,2025 PW GPCI (with 1.0 Floor),2025 PE GPCI,2025 MP GPCI
12502,PA,01,METROPOLITAN PHILADELPHIA,1.02,1.1,1.3
"""


def test_a_named_locality_prices_from_the_gpci_file_in_the_rules_folder(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "GPCI2025.csv").write_text(GPCI_2025)
    practice = practice_with(tmp_path, rules_dir=folder, locality=("12502", "01"))
    practice.enrolled()
    practice.log("P1", "RN", MARCH, 20)
    _, summary = practice.run()
    # (1.00 x 1.02 + 0.81 x 1.1 + 0.06 x 1.3) x 32.3465 = 1.989 x 32.3465 = 64.337 -> 64.34;
    # 80% = 51.472 -> 51.47; 2% = 1.0294 -> 1.03; 50.44; patient 12.87
    assert_has(practice.month("P1", MARCH), {"fee_schedule_amount": Decimal("64.34"),
                                             "allowed_amount": Decimal("64.34"),
                                             "expected_payment": Decimal("50.44"),
                                             "patient_responsibility": Decimal("12.87")})
    assert summary["fee_schedule"] == {"2025": "locality 12502-01 (GPCI2025.csv)"}


def test_a_locality_without_its_years_gpci_file_stops_with_one_line(tmp_path):
    practice = practice_with(tmp_path, locality=("12502", "01"))
    practice.enrolled()
    practice.log("P1", "RN", MARCH, 20)
    with pytest.raises(RulesError, match=r"billing.locality 12502-01 is configured but no folder has CMS's GPCI2025"):
        practice.run()


# -- 2. services that exclude CCM in the month, as data ---------------------------------------------------

@pytest.mark.parametrize(
    "month, encounters, conditions, staff_id, minutes, codes, reasons",
    [
        # APCM by the billing practitioner bundles CCM: not billed
        pytest.param(MARCH, [("2025-03-03", "G0556", DOCTOR_NPI)], ("E119", "I10"), "RN", 25, None,
                     ["apcm_in_month: G0556"], id="apcm_g0556_same_practitioner_blocks_ccm"),
        # ... and PCM (one condition, DOC 35 minutes would be 99424)
        pytest.param(MARCH, [("2025-03-03", "G0558", DOCTOR_NPI)], ("E119",), "DOC", 35, None,
                     ["apcm_in_month: G0558"], id="apcm_blocks_pcm"),
        # the 2026 behavioural health add-ons ride on APCM
        pytest.param("2026-01", [("2026-01-05", "G0568", DOCTOR_NPI)], ("E119", "I10"), "RN", 25, None,
                     ["apcm_in_month: G0568"], id="apcm_add_on_g0568_2026"),
        # an APCM code billed by another practitioner does not block ours
        pytest.param(MARCH, [("2025-03-03", "G0557", OTHER_NP_NPI)], ("E119", "I10"), "RN", 25, "99490", [],
                     id="apcm_by_another_practitioner_allowed"),
        # an encounter without a rendering NPI may be ours: it blocks
        pytest.param(MARCH, [("2025-03-03", "G0557", None)], ("E119", "I10"), "RN", 25, None,
                     ["apcm_in_month: G0557"], id="apcm_without_rendering_npi_blocks"),
        # APCM in February does not block March
        pytest.param(MARCH, [("2025-02-27", "G0556", DOCTOR_NPI)], ("E119", "I10"), "RN", 25, "99490", [],
                     id="apcm_in_another_month_allowed"),
        # both groups found: both reasons, alphabetical
        pytest.param(MARCH, [("2025-03-03", "G0556", DOCTOR_NPI), ("2025-03-04", "G0182", DOCTOR_NPI)],
                     ("E119", "I10"), "RN", 25, None, ["apcm_in_month: G0556", "conflicting_service: G0182"],
                     id="apcm_and_hospice_oversight"),
        # the existing exclusions stay: ESRD monthly services
        pytest.param(MARCH, [("2025-03-03", "90960", DOCTOR_NPI)], ("E119", "I10"), "RN", 25, None,
                     ["conflicting_service: 90960"], id="esrd_monthly_service_blocks"),
    ],
)
def test_services_that_exclude_ccm_and_pcm_in_the_month(tmp_path, month, encounters, conditions, staff_id, minutes,
                                                        codes, reasons):
    practice = practice_with(tmp_path)
    practice.enrolled(conditions=conditions)
    for day, cpt, npi in encounters:
        practice.encounter("P1", day, cpt, npi=npi)
    practice.log("P1", staff_id, month, minutes, day=12)
    practice.run(as_of="2026-02-28")
    assert_has(practice.month("P1", month), {"billed_codes": codes, "reasons_not_billed": reasons})


@pytest.mark.parametrize("cpt", ["99495", "99496", "99453", "99454", "99457", "99458", "99091", "98975", "98980",
                                 "98981", "99484", "99492", "99493", "99494"])
def test_tcm_rpm_rtm_bhi_and_cocm_in_the_month_do_not_block_ccm(tmp_path, cpt):
    practice = practice_with(tmp_path)
    practice.enrolled()
    practice.encounter("P1", "2025-03-03", cpt)
    practice.log("P1", "RN", MARCH, 25)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"billed_codes": "99490", "reasons_not_billed": []})


# -- 3. the initiating visit comes first ---------------------------------------------------------------

@pytest.mark.parametrize(
    "visits, activities, countable, before_visit, codes, visit_date",
    [
        # not seen before: the first qualifying visit is 2025-03-10; the 15 minutes on the 5th came before it
        # and do not count; the 10th itself counts: 10 + 15 = 25 -> 99490
        pytest.param([("2025-03-10", "99214")], [("2025-03-05", 15), ("2025-03-10", 10), ("2025-03-20", 15)],
                     25, 15, "99490", date(2025, 3, 10), id="minutes_before_the_initiating_visit_do_not_count"),
        # ... which can cost the month: 15 before, 10 after -> 10 of 20
        pytest.param([("2025-03-10", "99214")], [("2025-03-05", 15), ("2025-03-12", 10)], 10, 15, None,
                     date(2025, 3, 10), id="minutes_before_the_visit_can_cost_the_threshold"),
        # a nursing facility E/M (99304-99310) initiates
        pytest.param([("2024-11-15", "99306")], [("2025-03-05", 25)], 25, 0, "99490", date(2024, 11, 15),
                     id="nursing_facility_visit_99306_initiates"),
        # the visit that initiated care is the FIRST in the window (not the latest, as before)
        pytest.param([("2024-06-01", "99214"), ("2025-02-01", "99213")], [("2025-03-05", 25)], 25, 0, "99490",
                     date(2024, 6, 1), id="the_first_visit_in_the_window_initiated_care"),
        # a visit before the 12-month lookback (consent 2024-12-01 -> from 2023-12-01) does not; the next does
        pytest.param([("2023-11-30", "99214"), ("2025-03-15", "99213")], [("2025-03-05", 10), ("2025-03-18", 20)],
                     20, 10, "99490", date(2025, 3, 15), id="visit_before_the_lookback_does_not_initiate"),
    ],
)
def test_the_initiating_visit_comes_first(tmp_path, visits, activities, countable, before_visit, codes, visit_date):
    practice = practice_with(tmp_path)
    practice.enrolled(visit=False)
    ids = [practice.encounter("P1", day, cpt) for day, cpt in visits]
    for day, minutes in activities:
        practice.activity("P1", "RN", f"{day} 09:00", minutes)
    practice.run()
    row = practice.month("P1", MARCH)
    assert_has(row, {"countable_minutes": countable, "excluded_before_initiating_visit": before_visit,
                     "billed_codes": codes, "initiating_visit_date": visit_date})
    assert row["initiating_encounter_id"] == ids[[d for d, _ in visits].index(visit_date.isoformat())]
    if before_visit:
        excluded = practice.rows("select exclusion_reason, excluded_minutes from core.activity_minutes "
                                 "where exclusion_reason = 'before_initiating_visit'")
        assert excluded == [{"exclusion_reason": "before_initiating_visit", "excluded_minutes": before_visit}]


def test_a_new_billing_practitioner_starts_their_own_care_management(tmp_path):
    practice = practice_with(tmp_path)
    practice.enrolled()
    # NP2 takes over with a consent of 2025-03-01 and their own first visit on 2025-03-12
    practice.consent("P1", "2025-03-01", npi=OTHER_NP_NPI)
    practice.encounter("P1", "2025-03-12", "99214", npi=OTHER_NP_NPI)
    practice.activity("P1", "RN", "2025-03-05 09:00", 15)   # before NP2's initiating visit
    practice.activity("P1", "RN", "2025-03-14 09:00", 20)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"billing_npi": OTHER_NP_NPI, "initiating_visit_date": date(2025, 3, 12),
                                             "excluded_before_initiating_visit": 15, "billed_codes": "99490"})


# -- 4. timely filing ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "as_of, settings, status, codes, reasons",
    [
        # March 2025, date of service 2025-03-31 (month end): the limit is 2026-03-31 (12 months, 42 CFR 424.44)
        pytest.param("2026-02-28", {}, "ok", "99490", [], id="eleven_months_to_the_day_is_not_yet_due"),
        # older than 11 months (after 2026-02-28): flagged so it is billed before it is lost
        pytest.param("2026-03-01", {}, "due_soon", "99490", [], id="older_than_11_months_is_due_soon"),
        pytest.param("2026-03-31", {}, "due_soon", "99490", [], id="the_last_day_still_bills"),
        # more than 12 months: never billed
        pytest.param("2026-04-01", {}, "past", None, ["past_timely_filing: filing limit 2026-03-31"],
                     id="more_than_12_months_is_never_billed"),
        # the margin is configuration: 6 months -> due after 2025-09-30
        pytest.param("2025-10-01", {"timely_filing_warn_months": 6}, "due_soon", "99490", [],
                     id="configurable_margin"),
        # threshold_met: the date of service is the day 20 minutes were reached, 2025-03-09 -> limit 2026-03-09
        pytest.param("2026-03-10", {"date_of_service": "threshold_met"}, "past", None,
                     ["past_timely_filing: filing limit 2026-03-09"], id="threshold_met_date_counts_from_that_day"),
    ],
)
def test_timely_filing(tmp_path, as_of, settings, status, codes, reasons):
    practice = practice_with(tmp_path, **settings)
    practice.enrolled()
    practice.activity("P1", "RN", "2025-03-09 09:00", 25)
    practice.run(as_of=as_of)
    assert_has(practice.month("P1", MARCH), {"timely_filing_status": status, "billed_codes": codes,
                                             "reasons_not_billed": reasons})
    assert len(practice.lines("P1", MARCH)) == (1 if codes else 0)


# -- 5. PCM as CPT defines it ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    "conditions, focus, activities, codes, fee, icd10",
    [
        # a plan focused on I10, the patient also has E11.9: PCM fits. RN 35: 99426 61.78 > 99490 60.49
        pytest.param(("E119", "I10"), "I10", [("RN", 35)], "99426", "61.78", ["I10", "E119"],
                     id="focus_condition_makes_pcm_fit_with_other_conditions"),
        # without a focus two conditions are CCM only: 99490
        pytest.param(("E119", "I10"), None, [("RN", 35)], "99490", "60.49", ["E119", "I10"],
                     id="without_a_focus_two_conditions_are_ccm"),
        # the practitioner's own minutes count toward 99426 when 99424 is not reported: DOC 20 + RN 15 = 35
        # (99424 needs 30 of DOC's own; before, staff PCM counted the 15 staff minutes only)
        pytest.param(("E119",), None, [("DOC", 20), ("RN", 15)], "99426", "61.78", ["E119"],
                     id="practitioner_minutes_count_toward_99426"),
        # no CPT cap on 99427: 150 minutes = 30 + 4 x 30 -> 99426 + 99427 x4 = 61.78 + 4 x 50.46 = 263.62
        pytest.param(("E119",), None, [("RN", 150)], "99426 99427x4", "263.62", ["E119"],
                     id="99427_has_no_unit_cap"),
        # a focus on a condition the chronic list does not know (K21.9, export's chronic empty) still qualifies
        pytest.param(("K219",), "K21", [("RN", 35)], "99426", "61.78", ["K219"],
                     id="focus_condition_outside_the_chronic_list"),
        # a focus naming no active condition is reported and does not qualify: E11.9 + I10 stay CCM
        pytest.param(("E119", "I10"), "J45", [("RN", 35)], "99490", "60.49", ["E119", "I10"],
                     id="focus_on_an_inactive_condition_does_not_qualify"),
    ],
)
def test_pcm_targets_one_condition(tmp_path, conditions, focus, activities, codes, fee, icd10):
    practice = practice_with(tmp_path)
    practice.enrolled(conditions=conditions, care_plan=False)
    practice.care_plan("P1", focus_icd10=focus)
    for n, (staff_id, minutes) in enumerate(activities):
        practice.log("P1", staff_id, MARCH, minutes, day=5 + n)
    practice.run()
    row = practice.month("P1", MARCH)
    assert_has(row, {"billed_codes": codes, "fee_schedule_amount": money(fee), "qualifying_icd10": icd10})
    assert all(line["icd10_codes"] == icd10 for line in practice.lines("P1", MARCH))
    if focus == "J45":
        assert "care_plan_focus_not_active: J45" in row["evidence_gaps"]


# -- 6. chronic conditions -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "conditions, count, codes",
    [
        # myeloma (C90.00) and autism (F84.0): two chronic conditions -> CCM 99490
        pytest.param([("C9000", None), ("F840", None)], 2, "99490", id="myeloma_and_autism_are_chronic"),
        # a lymphoma and a leukaemia are two conditions
        pytest.param([("C8330", None), ("C9110", None)], 2, "99490", id="lymphoma_and_leukaemia"),
        # sickle cell disease and cerebral palsy (CCW other chronic or potentially disabling conditions)
        pytest.param([("D5700", None), ("G809", None)], 2, "99490", id="ccw_other_chronic_conditions"),
        # the export's chronic = false wins over the list: breast cancer not counted, I10 alone -> one
        pytest.param([("C50911", False), ("I10", None)], 1, None, id="export_chronic_false_wins"),
    ],
)
def test_chronic_conditions(tmp_path, conditions, count, codes):
    practice = practice_with(tmp_path)
    practice.enrolled(conditions=())
    for code, chronic in conditions:
        practice.condition("P1", code, chronic=chronic)
    practice.log("P1", "RN", MARCH, 25)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"chronic_condition_count": count, "billed_codes": codes})


# -- 7. the evidence an auditor checks, as rules with a policy ----------------------------------------------

def _documented(p: Practice, plan: dict | None = None, consent: dict | None = None, nurse: dict | None = None) -> None:
    """A patient whose export carries every evidence column, filled in unless told otherwise."""
    p.staff_member("RN2", "rn", **{"_absent_columns": [], "credential": "RN", "supervising_npi": DOCTOR_NPI,
                                   **(nurse or {})})
    p.enrolled(consent=False, care_plan=False)
    p.consent("P1", **{"_absent_columns": [], "obtained_by": "RN2", "elements_explained": ALL_ELEMENTS,
                       **(consent or {})})
    p.care_plan("P1", **{"_absent_columns": [], "shared_with_patient_date": "2024-12-02",
                         "goals": "A1c below 8; daily BP log", **(plan or {})})
    p.log("P1", "RN2", MARCH, 25)


@pytest.mark.parametrize(
    "plan, consent, nurse, settings, codes, reasons, gaps",
    [
        pytest.param(None, None, None, {}, "99490", [], [], id="everything_documented_bills"),
        # the export carries shared_with_patient_date, empty for this plan: held
        pytest.param({"shared_with_patient_date": None}, None, None, {}, None, ["care_plan_not_shared"], [],
                     id="care_plan_not_shared_is_held"),
        # shared only after the month: not shown to have been shared in March
        pytest.param({"shared_with_patient_date": "2025-04-02"}, None, None, {}, None, ["care_plan_not_shared"], [],
                     id="care_plan_shared_after_the_month_is_held"),
        # the same, configured as a warning: billed, reported
        pytest.param({"shared_with_patient_date": None}, None, None,
                     {"evidence": {"care_plan_shared": "warn"}}, "99490", [], ["care_plan_not_shared"],
                     id="care_plan_shared_as_a_warning_bills"),
        # the export lacks the column altogether: billing goes on, the gap is reported
        pytest.param({"shared_with_patient_date": None, "_absent_columns": ["shared_with_patient_date"]}, None, None,
                     {}, "99490", [], ["not_exported: care_plans.shared_with_patient_date"],
                     id="column_not_exported_bills_and_reports_the_gap"),
        # two of the four elements explained
        pytest.param(None, {"elements_explained": "availability;one_practitioner"}, None, {}, None,
                     ["consent_elements_missing: cost_sharing right_to_stop"], [],
                     id="consent_elements_missing_is_held"),
        pytest.param(None, {"obtained_by": None}, None, {}, None, ["consent_obtained_by_missing"], [],
                     id="consent_obtained_by_missing_is_held"),
        pytest.param(None, {"obtained_by": "NOBODY"}, None, {}, None, ["consent_obtained_by_unknown: NOBODY"], [],
                     id="consent_obtained_by_unknown_staff_is_held"),
        pytest.param(None, None, {"credential": None}, {}, None, ["staff_credential_missing: RN2"], [],
                     id="staff_credential_missing_is_held"),
        # supervisor and goals warn by default
        pytest.param(None, None, {"supervising_npi": None}, {}, "99490", [], ["staff_supervising_npi_missing: RN2"],
                     id="staff_supervising_npi_missing_warns"),
        pytest.param({"goals": " "}, None, None, {}, "99490", [], ["care_plan_goals_missing"],
                     id="care_plan_goals_missing_warns"),
    ],
)
def test_evidence_rules_hold_or_warn(tmp_path, plan, consent, nurse, settings, codes, reasons, gaps):
    if "evidence" in settings:
        settings = {"evidence": {**settings_with().evidence, **settings["evidence"]}}
    practice = practice_with(tmp_path, **settings)
    _documented(practice, plan, consent, nurse)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"billed_codes": codes, "reasons_not_billed": reasons,
                                             "evidence_gaps": gaps})


def test_an_export_without_any_evidence_column_bills_and_reports_every_gap(tmp_path):
    practice = practice_with(tmp_path)
    practice.enrolled()   # no evidence columns anywhere (_absent_columns null: a file without them)
    practice.log("P1", "RN", MARCH, 25)
    practice.run()
    row = practice.month("P1", MARCH)
    assert row["billed_codes"] == "99490"
    assert row["evidence_gaps"] == [
        "not_exported: care_plans.shared_with_patient_date", "not_exported: care_plans.goals",
        "not_exported: consents.elements_explained", "not_exported: consents.obtained_by",
        "not_exported: staff.credential", "not_exported: staff.supervising_npi"]


@pytest.mark.parametrize(
    "stay, countable, excluded",
    [
        # inpatient hospital (POS 21) from the 5th through the 8th: the 6th (15) and the 8th (10) do not
        # count; the 4th and the 9th do: 10 + 10 = 20 -> 99490
        pytest.param(("21", "2025-03-05", "2025-03-08"), 20, 25, id="inpatient_hospital_stay"),
        # SNF (POS 31), same dates
        pytest.param(("31", "2025-03-05", "2025-03-08"), 20, 25, id="skilled_nursing_facility_stay"),
        # an office visit (POS 11) is no stay
        pytest.param(("11", "2025-03-05", None), 45, 0, id="office_visit_is_not_a_stay"),
        # no discharge date: only the admission day is known to be inside the stay (nothing logged on the 5th)
        pytest.param(("21", "2025-03-05", None), 45, 0, id="stay_without_discharge_date_is_the_admission_day"),
    ],
)
def test_time_during_an_inpatient_stay_does_not_count(tmp_path, stay, countable, excluded):
    practice = practice_with(tmp_path)
    practice.enrolled()
    pos, admitted, discharged = stay
    practice.encounter("P1", admitted, "99223", place_of_service=pos, discharge_date=discharged)
    for day, minutes in (("2025-03-04", 10), ("2025-03-06", 15), ("2025-03-08", 10), ("2025-03-09", 10)):
        practice.activity("P1", "RN", f"{day} 09:00", minutes)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"countable_minutes": countable, "excluded_inpatient_stay": excluded})


@pytest.mark.parametrize(
    "policy, countable, after, april_reasons",
    [
        # stricter default: revoked 2025-03-15, the 20 minutes on the 20th do not count: 15 -> below 20
        pytest.param("revocation_date", 15, 20, ["consent_revoked"], id="default_nothing_after_the_revocation_date"),
        # CMS's reading: effective at the end of March, 15 + 20 = 35 count; April still not eligible
        pytest.param("end_of_month", 35, 0, ["consent_revoked"], id="cms_end_of_month_option"),
    ],
)
def test_revocation_policy(tmp_path, policy, countable, after, april_reasons):
    practice = practice_with(tmp_path, revocation_effective=policy)
    practice.enrolled(consent=False)
    practice.consent("P1", revoked="2025-03-15")
    practice.activity("P1", "RN", "2025-03-10 09:00", 15)
    practice.activity("P1", "RN", "2025-03-20 09:00", 20)
    practice.log("P1", "RN", "2025-04", 30)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"countable_minutes": countable, "excluded_after_revocation": after})
    assert practice.month("P1", "2025-04")["reasons_not_billed"][:1] == april_reasons
