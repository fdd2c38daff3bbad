"""Minutes per patient-month, eligibility and code choice: one row per rule, expectations computed by hand.

Fee amounts (national, non-facility; shared/domain/ccm-rules.md) used below:
  2025: 99490 60.49, 99439 45.93, 99487 131.65, 99489 70.52, 99491 82.16, 99437 57.58, 99424 80.87, 99425 58.87,
        99426 61.78, 99427 50.46
  2026: 99490 66.13, 99439 50.44, 99487 144.29, 99489 78.16, 99491 89.18, 99437 63.13
"fee_schedule_amount" is units x these: the amount the code choice ranks by.
"expected_payment" is Medicare's share of the allowed amount (tests/core/test_rules_second_pass.py).
The default patient (core_fixtures.Practice.enrolled) has E11.9 and I10, verbal
consent of 2024-12-01 naming DOC, a standard care plan of 2024-12-01 and a
99214 by DOC on 2024-11-15; minutes are logged in March 2025 unless stated.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import yaml

from core_fixtures import DOCTOR_NPI, GROUP_NPI, OTHER_NP_NPI, UNKNOWN_NPI, Practice, settings_with
from transforms.paths import RULES_DIR

MARCH = "2025-03"


@pytest.fixture
def practice(tmp_path) -> Practice:
    return Practice(tmp_path / "warehouse.duckdb").team()


def money(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def assert_has(row: dict, expected: dict) -> None:
    got = {k: row[k] for k in expected}
    assert got == expected


# -- CCM ladders -------------------------------------------------------------

@pytest.mark.parametrize(
    "minutes, billed_codes, payment, reasons, next_threshold, to_next",
    [
        pytest.param(19, None, None, ["below_threshold: 19 of 20 minutes"], 20, 1, id="19_minutes_bill_nothing"),
        pytest.param(20, "99490", "60.49", [], 40, 20, id="20_minutes_bill_99490"),
        pytest.param(39, "99490", "60.49", [], 40, 1, id="39_minutes_bill_99490_only_no_rounding"),
        pytest.param(40, "99490 99439", "106.42", [], 60, 20, id="40_minutes_add_one_99439"),
        pytest.param(59, "99490 99439", "106.42", [], 60, 1, id="59_minutes_still_one_99439"),
        pytest.param(60, "99490 99439x2", "152.35", [], None, None, id="60_minutes_add_two_99439"),
        pytest.param(75, "99490 99439x2", "152.35", [], None, None, id="99439_capped_at_two_units"),
    ],
)
def test_standard_ccm_bills_99490_then_each_full_20_minutes(practice, minutes, billed_codes, payment, reasons,
                                                            next_threshold, to_next):
    practice.enrolled()
    practice.log("P1", "RN", MARCH, minutes)
    practice.run()
    assert_has(practice.month("P1", MARCH), {
        "clinical_staff_minutes": minutes, "countable_minutes": minutes, "eligible": True,
        "billed_codes": billed_codes, "fee_schedule_amount": money(payment), "reasons_not_billed": reasons,
        "next_threshold_minutes": next_threshold, "minutes_to_next_threshold": to_next,
    })


@pytest.mark.parametrize(
    "minutes, complex_qualifies, complex_add_on_units, billed_codes, payment",
    [
        pytest.param(59, False, 0, "99490 99439", "106.42", id="59_complex_minutes_not_99487"),
        # 99487 alone (131.65) pays less than 99490 + 99439x2 (152.35): the higher one is billed
        pytest.param(60, True, 0, "99490 99439x2", "152.35", id="60_minutes_99487_qualifies_but_standard_pays_more"),
        pytest.param(89, True, 0, "99490 99439x2", "152.35", id="89_minutes_no_99489_no_rounding"),
        pytest.param(90, True, 1, "99487 99489", "202.17", id="90_minutes_99487_99489"),
        pytest.param(95, True, 1, "99487 99489", "202.17", id="95_minutes_still_one_99489"),
        pytest.param(120, True, 2, "99487 99489x2", "272.69", id="120_minutes_two_99489"),
    ],
)
def test_complex_ccm_bills_99487_then_each_full_30_minutes(practice, minutes, complex_qualifies,
                                                           complex_add_on_units, billed_codes, payment):
    practice.enrolled()
    practice.care_plan("P1", established="2025-03-05", complexity="complex")
    practice.log("P1", "RN", MARCH, minutes)
    practice.run()
    complex_ = practice.candidate("P1", MARCH, "ccm_complex")
    assert (complex_["qualifies"], complex_["add_on_units"]) == (complex_qualifies, complex_add_on_units)
    assert_has(practice.month("P1", MARCH), {"billed_codes": billed_codes, "fee_schedule_amount": money(payment)})


@pytest.mark.parametrize(
    "plan, billed_codes",
    [
        pytest.param(dict(established="2025-03-05", complexity="complex"), "99487 99489",
                     id="complex_plan_established_in_month"),
        pytest.param(dict(established="2024-06-01", complexity="complex", revision="substantial", revised="2025-03-20"),
                     "99487 99489", id="complex_plan_substantially_revised_in_month"),
        pytest.param(dict(established="2025-02-27", complexity="complex"), "99490 99439x2",
                     id="complex_plan_from_last_month_is_not_enough"),
        pytest.param(dict(established="2024-06-01", complexity="complex", revision="minor", revised="2025-03-20"),
                     "99490 99439x2", id="minor_revision_is_not_enough"),
        pytest.param(dict(established="2025-03-05", complexity="standard"), "99490 99439x2",
                     id="standard_complexity_plan_in_month_is_not_enough"),
    ],
)
def test_complex_ccm_needs_a_complex_care_plan_established_or_substantially_revised_in_the_month(
        practice, plan, billed_codes):
    practice.enrolled()
    practice.care_plan("P1", **plan)
    practice.log("P1", "RN", MARCH, 90)
    practice.run()
    assert practice.month("P1", MARCH)["billed_codes"] == billed_codes


@pytest.mark.parametrize(
    "minutes, practitioner_units, code_set, billed_codes, payment, next_threshold",
    [
        # practitioner time also counts toward 99490: 29 minutes are 99490
        pytest.param(29, None, "ccm_standard", "99490", "60.49", 40, id="29_practitioner_minutes_bill_99490"),
        pytest.param(30, 0, "ccm_practitioner", "99491", "82.16", 60, id="30_practitioner_minutes_bill_99491"),
        pytest.param(35, 0, "ccm_practitioner", "99491", "82.16", 60, id="35_practitioner_minutes_99491_only"),
        # 99491 + 99437 = 139.74 < 99490 + 99439x2 = 152.35
        pytest.param(60, 1, "ccm_standard", "99490 99439x2", "152.35", None,
                     id="60_practitioner_minutes_standard_pays_more"),
        # 99491 + 99437x2 = 197.32 > 152.35
        pytest.param(90, 2, "ccm_practitioner", "99491 99437x2", "197.32", None, id="90_practitioner_minutes_99437x2"),
        pytest.param(130, 2, "ccm_practitioner", "99491 99437x2", "197.32", None, id="99437_capped_at_two_units"),
    ],
)
def test_practitioner_ccm_bills_99491_then_each_full_30_minutes(practice, minutes, practitioner_units, code_set,
                                                                billed_codes, payment, next_threshold):
    practice.enrolled()
    practice.log("P1", "DOC", MARCH, minutes)
    practice.run()
    ladder = practice.candidate("P1", MARCH, "ccm_practitioner")
    assert (ladder["add_on_units"] if ladder["qualifies"] else None) == practitioner_units
    assert_has(practice.month("P1", MARCH), {
        "practitioner_minutes": minutes, "clinical_staff_minutes": 0, "code_set": code_set,
        "billed_codes": billed_codes, "fee_schedule_amount": money(payment), "next_threshold_minutes": next_threshold,
    })


@pytest.mark.parametrize(
    "doctor, nurse, billed_codes, payment",
    [
        pytest.param(35, 30, "99490 99439x2", "152.35", id="practitioner_35_staff_30_standard_152_35_beats_99491_82_16"),
        pytest.param(35, 5, "99490 99439", "106.42", id="practitioner_35_staff_5_standard_106_42_beats_99491_82_16"),
        pytest.param(30, 5, "99491", "82.16", id="practitioner_30_staff_5_99491_82_16_beats_99490_60_49"),
    ],
)
def test_practitioner_and_staff_time_bill_the_set_that_pays_more(practice, doctor, nurse, billed_codes, payment):
    practice.enrolled()
    practice.log("P1", "DOC", MARCH, doctor, day=3)
    practice.log("P1", "RN", MARCH, nurse, day=4)
    practice.run()
    assert_has(practice.month("P1", MARCH), {
        "practitioner_minutes": doctor, "clinical_staff_minutes": nurse, "countable_minutes": doctor + nurse,
        "billed_codes": billed_codes, "fee_schedule_amount": money(payment),
    })
    assert len(practice.rows("select * from core.code_choice where is_billed")) == 1  # mutually exclusive


def test_another_practitioners_time_counts_as_clinical_staff_time_not_toward_99491(practice):
    practice.enrolled()
    activity = practice.log("P1", "NP2", MARCH, 30)
    practice.run()
    assert_has(practice.activity_row(activity), {"counted_as": "clinical_staff", "is_billing_practitioner": False})
    assert_has(practice.month("P1", MARCH), {
        "practitioner_minutes": 0, "clinical_staff_minutes": 30, "other_practitioner_minutes": 30,
        "billed_codes": "99490",
    })


def test_the_consent_in_effect_at_month_end_names_the_one_billing_practitioner(practice):
    practice.enrolled()
    practice.consent("P1", "2025-03-20", npi=OTHER_NP_NPI)
    # NP2's own visit before March 5 (was 2025-03-20: minutes before the initiating
    # visit no longer count, and March 5 would have been before it)
    practice.encounter("P1", "2025-02-15", "99213", npi=OTHER_NP_NPI)
    february = practice.log("P1", "DOC", "2025-02", 30)
    march = practice.log("P1", "DOC", MARCH, 30, day=5)
    practice.run()
    assert practice.activity_row(february)["counted_as"] == "practitioner"
    assert practice.activity_row(march)["counted_as"] == "clinical_staff"
    assert_has(practice.month("P1", "2025-02"), {"billing_npi": DOCTOR_NPI, "billed_codes": "99491"})
    assert_has(practice.month("P1", MARCH), {"billing_npi": OTHER_NP_NPI, "billing_staff_id": "NP2",
                                             "billed_codes": "99490"})


# -- PCM -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "staff_id, minutes, billed_codes, payment, reasons",
    [
        pytest.param("DOC", 35, "99424", "80.87", [], id="one_condition_practitioner_35_bills_99424"),
        pytest.param("DOC", 60, "99424 99425", "139.74", [], id="one_condition_practitioner_60_adds_99425"),
        pytest.param("DOC", 20, None, None, ["one_chronic_condition", "below_threshold: 20 of 30 minutes"],
                     id="one_condition_below_pcm_threshold"),
        # 99426 is priced now (PPRRVU2025: 1.91 RVU x 32.3465 = 61.78); it used to be unpriced and never billed
        pytest.param("RN", 40, "99426", "61.78", [], id="one_condition_staff_40_bills_99426"),
    ],
)
def test_one_chronic_condition_is_pcm_never_ccm(practice, staff_id, minutes, billed_codes, payment, reasons):
    practice.enrolled(conditions=("E119",))
    practice.log("P1", staff_id, MARCH, minutes)
    practice.run()
    assert_has(practice.month("P1", MARCH), {
        "chronic_condition_count": 1, "eligible": True, "billed_codes": billed_codes,
        "fee_schedule_amount": money(payment), "reasons_not_billed": reasons,
    })
    assert all(line["icd10_codes"] == ["E119"] for line in practice.lines("P1", MARCH))


# -- eligibility -------------------------------------------------------------

def _no_consent(p):
    p.enrolled(consent=False)


def _revoked_before_month(p):
    p.enrolled(consent=False)
    p.consent("P1", "2024-12-01", revoked="2025-02-10")


def _no_care_plan(p):
    p.enrolled(care_plan=False)


def _care_plan_after_month(p):
    p.enrolled(care_plan=False)
    p.care_plan("P1", established="2025-04-01")


def _no_initiating_visit(p):
    p.enrolled(visit=False)


def _visit_by_another_practitioner(p):
    p.enrolled(visit=False)
    p.encounter("P1", "2024-11-15", "99214", npi=OTHER_NP_NPI)


def _visit_99211_does_not_initiate(p):
    p.enrolled(visit=False)
    p.encounter("P1", "2024-11-15", "99211")


def _visit_over_12_months_before_consent(p):
    p.enrolled(visit=False)
    p.encounter("P1", "2023-11-30", "99214")


def _visit_after_month_end(p):
    p.enrolled(visit=False)
    p.encounter("P1", "2025-04-02", "G0439")


def _medicaid(p):
    p.enrolled(payer="medicaid")


def _consent_names_no_staff_member(p):
    p.enrolled(consent=False, visit=False)
    p.consent("P1", npi=UNKNOWN_NPI)
    p.encounter("P1", npi=UNKNOWN_NPI)  # the initiating visit is there: only the staff row is missing


def _hospice_oversight_same_month(p):
    p.enrolled()
    p.encounter("P1", "2025-03-03", "G0181")


def _no_chronic_conditions(p):
    p.enrolled(conditions=("J069",))  # acute upper respiratory infection


@pytest.mark.parametrize(
    "setup, reasons",
    [
        pytest.param(_no_consent, ["no_consent", "below_threshold: 0 of 20 minutes"], id="no_consent"),
        pytest.param(_revoked_before_month, ["consent_revoked", "below_threshold: 0 of 20 minutes"],
                     id="consent_revoked_in_an_earlier_month"),
        pytest.param(_no_care_plan, ["no_care_plan"], id="no_care_plan"),
        pytest.param(_care_plan_after_month, ["no_care_plan"], id="care_plan_established_after_the_month"),
        pytest.param(_no_initiating_visit, ["no_initiating_visit"], id="no_initiating_visit"),
        pytest.param(_visit_by_another_practitioner, ["no_initiating_visit"],
                     id="initiating_visit_must_be_by_the_billing_practitioner"),
        pytest.param(_visit_99211_does_not_initiate, ["no_initiating_visit"], id="99211_is_not_an_initiating_visit"),
        pytest.param(_visit_over_12_months_before_consent, ["no_initiating_visit"],
                     id="initiating_visit_more_than_12_months_before_consent"),
        pytest.param(_visit_after_month_end, ["no_initiating_visit"], id="initiating_visit_after_the_month"),
        pytest.param(_medicaid, ["not_medicare_part_b: medicaid"], id="medicaid_payer_reported_not_billed"),
        pytest.param(_consent_names_no_staff_member, ["no_billing_practitioner"], id="no_billing_practitioner"),
        pytest.param(_hospice_oversight_same_month, ["conflicting_service: G0181"],
                     id="hospice_care_plan_oversight_same_practitioner_same_month"),
        pytest.param(_no_chronic_conditions, ["no_chronic_conditions"], id="no_chronic_conditions"),
    ],
)
def test_an_ineligible_month_is_reported_with_its_reasons_and_never_billed(practice, setup, reasons):
    setup(practice)
    practice.log("P1", "RN", MARCH, 25)
    practice.run()
    assert_has(practice.month("P1", MARCH), {
        "eligible": False, "code_set": None, "billed_codes": None, "expected_payment": None,
        "date_of_service": None, "reasons_not_billed": reasons,
    })
    assert practice.lines("P1", MARCH) == []


@pytest.mark.parametrize(
    "visit_date, cpt, eligible",
    [
        pytest.param("2023-12-01", "99214", True, id="visit_exactly_12_months_before_consent"),
        pytest.param("2025-03-20", "G0439", True, id="awv_after_consent_within_the_month"),
        pytest.param("2024-06-01", "G0402", True, id="ippe_within_12_months"),
        pytest.param("2024-06-01", "99495", True, id="tcm_visit"),
    ],
)
def test_initiating_visit_window_and_codes(practice, visit_date, cpt, eligible):
    practice.enrolled(visit=False)
    practice.encounter("P1", visit_date, cpt)
    practice.log("P1", "RN", MARCH, 25)
    practice.run()
    assert practice.month("P1", MARCH)["eligible"] is eligible


@pytest.mark.parametrize(
    "conditions, count, qualifying",
    [
        pytest.param([("E119", "2018-01-01", None, None), ("I10", "2010-05-01", None, None)], 2, ["I10", "E119"],
                     id="two_listed_conditions_longest_standing_first"),
        pytest.param([("E119", None, None, None), ("E1165", None, None, None)], 1, ["E1165", "E119"],
                     id="two_codes_of_one_disease_are_one_condition"),
        pytest.param([("E119", None, None, None), ("I10", None, None, False)], 1, ["E119"],
                     id="chronic_false_in_export_overrides_the_list"),
        pytest.param([("E119", None, None, None), ("K219", None, None, True)], 2, ["E119", "K219"],
                     id="chronic_true_in_export_adds_an_unlisted_code"),
        pytest.param([("E119", None, None, None), ("I10", "2010-01-01", "2025-02-28", None)], 1, ["E119"],
                     id="condition_resolved_before_the_month_does_not_count"),
        pytest.param([("E119", None, None, None), ("I10", "2010-01-01", "2025-03-15", None)], 2, ["I10", "E119"],
                     id="condition_resolved_during_the_month_counts"),
        pytest.param([("E119", None, None, None), ("I10", "2025-04-02", None, None)], 1, ["E119"],
                     id="condition_starting_after_the_month_does_not_count"),
        pytest.param([("E119", None, None, None), ("J069", None, None, None)], 1, ["E119"],
                     id="acute_code_is_not_chronic"),
    ],
)
def test_chronic_conditions_active_in_the_month(practice, conditions, count, qualifying):
    practice.enrolled(conditions=())
    for code, onset, resolved, chronic in conditions:
        practice.condition("P1", code, onset=onset, resolved=resolved, chronic=chronic)
    practice.log("P1", "RN", MARCH, 25)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"chronic_condition_count": count, "qualifying_icd10": qualifying})


@pytest.mark.parametrize(
    "accepted, method, eligible, reasons",
    [
        pytest.param(("written",), "verbal", False, ["consent_method_not_accepted", "below_threshold: 0 of 20 minutes"],
                     id="written_only_practice_rejects_verbal_consent"),
        pytest.param(("written",), "written", True, [], id="written_only_practice_accepts_written_consent"),
        pytest.param(("verbal", "written"), "verbal", True, [], id="verbal_consent_accepted_by_default"),
    ],
)
def test_consent_methods_come_from_the_practice_configuration(tmp_path, accepted, method, eligible, reasons):
    practice = Practice(tmp_path / "w.duckdb", settings=settings_with(consent_methods=accepted)).team()
    practice.enrolled(consent=False)
    practice.consent("P1", method=method)
    practice.log("P1", "RN", MARCH, 25)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"eligible": eligible, "reasons_not_billed": reasons})


# -- minutes that do not count ---------------------------------------------

def _face_to_face(p):
    p.activity("P1", "RN", "2025-03-05 09:00", 25, face_to_face=True)
    p.activity("P1", "RN", "2025-03-06 09:00", 15)


def _non_clinical(p):
    p.activity("P1", "FD", "2025-03-05 09:00", 30)
    p.activity("P1", "RN", "2025-03-06 09:00", 10)


def _unknown_staff(p):
    p.activity("P1", "GHOST", "2025-03-05 09:00", 30)
    p.activity("P1", "RN", "2025-03-06 09:00", 10)


def _duplicate(p):
    p.activity("P1", "RN", "2025-03-05 09:00", 15, activity_id="A1")
    p.activity("P1", "RN", "2025-03-05 09:00", 15, activity_id="A2")  # re-entered: the later id is the copy


def _voided(p):
    p.activity("P1", "RN", "2025-03-05 09:00", 20, activity_id="A1", drop="2025-03-06")
    p.activity("P1", "RN", "2025-03-05 09:00", 20, activity_id="A1", status="voided", drop="2025-03-07")
    p.activity("P1", "RN", "2025-03-06 09:00", 15, activity_id="A2")


def _held(p):
    p.activity("P1", "RN", "2025-03-05 09:00", 25, activity_id="A1")
    p.hold("A1", 10)


def _held_more_than_logged(p):
    p.activity("P1", "RN", "2025-03-05 09:00", 25, activity_id="A1")
    p.activity("P1", "RN", "2025-03-06 09:00", 15, activity_id="A2")
    p.hold("A1", 40)


@pytest.mark.parametrize(
    "setup, countable, excluded_column, excluded",
    [
        pytest.param(_face_to_face, 15, "excluded_face_to_face", 25, id="face_to_face_time_never_counts"),
        pytest.param(_non_clinical, 10, "excluded_non_clinical_role", 30, id="front_desk_time_never_counts"),
        pytest.param(_unknown_staff, 10, "excluded_unknown_patient_or_staff", 30, id="unknown_staff_time_does_not_count"),
        pytest.param(_duplicate, 15, "excluded_duplicate", 15, id="duplicate_entry_counts_once"),
        pytest.param(_voided, 15, "excluded_voided", 20, id="voided_activity_does_not_count"),
        pytest.param(_held, 15, "excluded_held_documentation", 10, id="held_minutes_are_subtracted"),
        pytest.param(_held_more_than_logged, 15, "excluded_held_documentation", 25,
                     id="hold_capped_at_the_activity_minutes"),
    ],
)
def test_minutes_that_do_not_count_are_excluded_with_their_reason(practice, setup, countable, excluded_column,
                                                                  excluded):
    practice.enrolled()
    setup(practice)
    practice.run()
    row = practice.month("P1", MARCH)
    assert_has(row, {"countable_minutes": countable, excluded_column: excluded, "excluded_minutes": excluded,
                     "billed_codes": None, "reasons_not_billed": [f"below_threshold: {countable} of 20 minutes"]})


def test_activity_of_an_unknown_patient_is_reported_not_billed(practice):
    practice.activity("P404", "RN", "2025-03-05 09:00", 30)
    practice.run()
    # no below_threshold reason any more: minutes are a reason only on a ladder the patient's
    # conditions fit, and nothing is known of this patient's
    assert_has(practice.month("P404", MARCH), {
        "excluded_unknown_patient_or_staff": 30, "eligible": False, "billed_codes": None,
        "reasons_not_billed": ["unknown_patient"],
    })


def test_the_later_id_of_a_duplicate_is_the_one_excluded(practice):
    practice.enrolled()
    _duplicate(practice)
    practice.run()
    assert_has(practice.activity_row("A1"), {"countable_minutes": 15, "exclusion_reason": None})
    assert_has(practice.activity_row("A2"), {"countable_minutes": 0, "exclusion_reason": "duplicate",
                                             "counted_as": None})


@pytest.mark.parametrize(
    "consent, activities, countable, excluded_column, excluded, billed_codes",
    [
        pytest.param(dict(consent_date="2025-03-10"), [("2025-03-05", 15), ("2025-03-10", 20)], 20,
                     "excluded_before_consent", 15, "99490", id="time_before_consent_date_does_not_count"),
        pytest.param(dict(revoked="2025-03-15"), [("2025-03-10", 15), ("2025-03-15", 10), ("2025-03-20", 20)], 25,
                     "excluded_after_revocation", 20, "99490",
                     id="revoked_mid_month_minutes_before_count_after_do_not"),
    ],
)
def test_consent_dates_bound_the_minutes_that_count(practice, consent, activities, countable, excluded_column,
                                                    excluded, billed_codes):
    practice.enrolled(consent=False)
    practice.consent("P1", **consent)
    for day, minutes in activities:
        practice.activity("P1", "RN", f"{day} 09:00", minutes)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"countable_minutes": countable, excluded_column: excluded,
                                             "billed_codes": billed_codes})


def test_month_after_revocation_is_not_eligible(practice):
    practice.enrolled(consent=False)
    practice.consent("P1", revoked="2025-03-15")
    practice.log("P1", "RN", "2025-04", 30)
    practice.run()
    assert_has(practice.month("P1", "2025-04"), {
        "eligible": False, "excluded_after_revocation": 30, "billed_codes": None,
        "reasons_not_billed": ["consent_revoked", "below_threshold: 0 of 20 minutes"],
    })


def test_minutes_never_carry_over_between_months(practice):
    practice.enrolled()
    practice.log("P1", "RN", "2025-02", 15)
    practice.log("P1", "RN", MARCH, 15)
    practice.run()
    for month in ("2025-02", MARCH):
        assert_has(practice.month("P1", month), {"countable_minutes": 15, "billed_codes": None})


@pytest.mark.parametrize(
    "started_at, month, activity_date",
    [
        pytest.param("2026-02-01T03:30:00Z", "2026-01", date(2026, 1, 31), id="utc_february_is_local_january_31"),
        pytest.param("2026-01-31 22:30:00", "2026-01", date(2026, 1, 31), id="naive_time_is_practice_local"),
        pytest.param("2026-02-01T05:30:00Z", "2026-02", date(2026, 2, 1), id="utc_after_local_midnight_is_february"),
    ],
)
def test_service_month_is_the_practice_local_month(practice, started_at, month, activity_date):
    practice.enrolled()
    activity = practice.activity("P1", "RN", started_at, 20)
    practice.run()
    assert practice.activity_row(activity)["activity_date"] == activity_date
    assert practice.month("P1", month)["billed_codes"] == "99490"
    assert len(practice.rows("select * from core.patient_month")) == 1


# -- rules by year, dates, lines ------------------------------------------------

@pytest.mark.parametrize(
    "month, staff_id, minutes, rules_year, billed_codes, payment",
    [
        pytest.param("2025-12", "RN", 40, 2025, "99490 99439", "106.42", id="december_2025_uses_2025_amounts"),
        # 2026 amounts from PPRRVU2026 (the digest's corrected table): 99439 50.44 (was ~47.50), 99491 89.18 (was ~86)
        # 66.13 + 50.44 = 116.57
        pytest.param("2026-01", "RN", 40, 2026, "99490 99439", "116.57", id="january_2026_uses_2026_amounts"),
        pytest.param("2026-01", "DOC", 30, 2026, "99491", "89.18", id="2026_99491_amount"),
        # 66.13 + 2 x 50.44 = 167.01 beats 89.18 + 63.13 = 152.31
        pytest.param("2026-01", "DOC", 60, 2026, "99490 99439x2", "167.01", id="2026_standard_167_01_beats_152_31"),
    ],
)
def test_each_service_month_uses_its_own_years_rules(practice, month, staff_id, minutes, rules_year, billed_codes,
                                                     payment):
    practice.enrolled()
    practice.log("P1", staff_id, month, minutes)
    practice.run()
    assert_has(practice.month("P1", month), {"rules_year": rules_year, "billed_codes": billed_codes,
                                             "fee_schedule_amount": money(payment)})


def test_a_year_without_a_rules_file_is_reported_not_billed(practice):
    practice.enrolled()
    practice.log("P1", "RN", "2031-03", 45)
    _, summary = practice.run(as_of="2031-06-30")
    assert summary["years_without_rules"] == [2031]
    assert_has(practice.month("P1", "2031-03"), {"eligible": False, "billed_codes": None,
                                                 "reasons_not_billed": ["no_rules_for_year: 2031"]})


@pytest.mark.parametrize(
    "rule, activities, date_of_service, line_dates",
    [
        pytest.param("end_of_month", [("RN", "2025-03-03", 10), ("RN", "2025-03-09", 10), ("RN", "2025-03-20", 25)],
                     date(2025, 3, 31), [date(2025, 3, 31), date(2025, 3, 31)], id="end_of_month_is_the_last_day"),
        # 20 minutes on the 9th (99490), 45 on the 20th: 99439's 40th minute was logged on the 20th
        # (the add-on used to share the base's date)
        pytest.param("threshold_met", [("RN", "2025-03-03", 10), ("RN", "2025-03-09", 10), ("RN", "2025-03-20", 25)],
                     date(2025, 3, 9), [date(2025, 3, 9), date(2025, 3, 20)],
                     id="threshold_met_each_line_its_own_threshold"),
        # 99491 is billed: its own pool (practitioner minutes) reaches 30 on the 6th; total reached 20 on the 4th
        pytest.param("threshold_met", [("DOC", "2025-03-02", 15), ("RN", "2025-03-04", 5), ("DOC", "2025-03-06", 15)],
                     date(2025, 3, 6), [date(2025, 3, 6)], id="threshold_met_uses_the_billed_sets_own_minutes"),
    ],
)
def test_date_of_service_per_line(tmp_path, rule, activities, date_of_service, line_dates):
    practice = Practice(tmp_path / "w.duckdb", settings=settings_with(date_of_service=rule)).team()
    practice.enrolled()
    for staff_id, day, minutes in activities:
        practice.activity("P1", staff_id, f"{day} 09:00", minutes)
    practice.run()
    assert practice.month("P1", MARCH)["date_of_service"] == date_of_service
    assert [line["date_of_service"] for line in practice.lines("P1", MARCH)] == line_dates


@pytest.mark.parametrize(
    "as_of, grace_days, closed, open_month",
    [
        pytest.param("2025-03-20", 5, False, True, id="current_month_is_open"),
        pytest.param("2025-04-04", 5, False, False, id="within_grace_days_not_closed"),
        pytest.param("2025-04-05", 5, True, False, id="closed_on_month_end_plus_grace_days"),
        pytest.param("2025-03-31", 0, True, False, id="no_grace_closes_on_the_last_day_so_not_open"),
    ],
)
def test_month_closes_after_the_grace_days(tmp_path, as_of, grace_days, closed, open_month):
    practice = Practice(tmp_path / "w.duckdb", settings=settings_with(claim_grace_days=grace_days)).team()
    practice.enrolled()
    practice.log("P1", "RN", MARCH, 25)
    practice.run(as_of=as_of)
    assert_has(practice.month("P1", MARCH), {"month_closed": closed, "is_open_month": open_month,
                                             "billed_codes": "99490"})


def test_code_lines_carry_units_minutes_amounts_and_diagnoses(practice):
    practice.enrolled()
    practice.log("P1", "RN", MARCH, 75)
    practice.run()
    columns = ("line_number", "cpt_code", "units", "minutes", "charge_amount", "fee_schedule_amount",
               "allowed_amount", "expected_payment", "patient_responsibility")
    lines = [{k: line[k] for k in columns} for line in practice.lines("P1", MARCH)]
    # charges from the sample charge master (99490 95.00, 99439 70.00 a unit); allowed = the lower of
    # charge and fee. 99490: 60.49 -> Medicare 80% = 48.39, less 2% = 0.97 -> 47.42; patient 12.10.
    # 99439 x2: 91.86 -> 73.49, less 1.47 -> 72.02; patient 18.37.
    assert lines == [
        {"line_number": 1, "cpt_code": "99490", "units": 1, "minutes": 20, "charge_amount": Decimal("95.00"),
         "fee_schedule_amount": Decimal("60.49"), "allowed_amount": Decimal("60.49"),
         "expected_payment": Decimal("47.42"), "patient_responsibility": Decimal("12.10")},
        {"line_number": 2, "cpt_code": "99439", "units": 2, "minutes": 55, "charge_amount": Decimal("140.00"),
         "fee_schedule_amount": Decimal("91.86"), "allowed_amount": Decimal("91.86"),
         "expected_payment": Decimal("72.02"), "patient_responsibility": Decimal("18.37")},
    ]
    for line in practice.lines("P1", MARCH):
        assert_has(line, {"billing_npi": DOCTOR_NPI, "billing_provider_npi": GROUP_NPI,
                          "icd10_codes": ["E119", "I10"], "date_of_service": date(2025, 3, 31)})


def test_practice_charges_set_the_charge_not_the_allowed_amount(tmp_path):
    practice = Practice(tmp_path / "w.duckdb", settings=settings_with(charges={"99490": 120.0, "99439": 80.0})).team()
    practice.enrolled()
    practice.log("P1", "RN", MARCH, 60)
    practice.run()
    lines = [(l["cpt_code"], l["charge_amount"], l["allowed_amount"]) for l in practice.lines("P1", MARCH)]
    assert lines == [("99490", Decimal("120.00"), Decimal("60.49")), ("99439", Decimal("160.00"), Decimal("91.86"))]
    # expected: 47.42 + 72.02 = 119.44 (see test_code_lines_carry_units_minutes_amounts_and_diagnoses)
    assert_has(practice.month("P1", MARCH), {"charge_amount": Decimal("280.00"), "allowed_amount": Decimal("152.35"),
                                             "expected_payment": Decimal("119.44")})


@pytest.mark.parametrize(
    "minutes, complex_plan, staff_id, conditions, next_threshold, to_next",
    [
        pytest.param(0, False, "FD", ("E119", "I10"), 20, 20, id="nothing_yet_20_to_go"),
        pytest.param(45, False, "RN", ("E119", "I10"), 60, 15, id="standard_45_next_60"),
        pytest.param(95, True, "RN", ("E119", "I10"), 120, 25, id="complex_95_next_120"),
        pytest.param(35, False, "DOC", ("E119", "I10"), 60, 25, id="practitioner_35_next_60"),
        pytest.param(10, False, "DOC", ("E119",), 30, 20, id="pcm_10_next_30"),
    ],
)
def test_minutes_to_next_threshold_follow_the_patients_ladder(practice, minutes, complex_plan, staff_id, conditions,
                                                              next_threshold, to_next):
    practice.enrolled(conditions=conditions)
    if complex_plan:
        practice.care_plan("P1", established="2025-03-02", complexity="complex")
    practice.log("P1", staff_id, MARCH, minutes)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"next_threshold_minutes": next_threshold,
                                             "minutes_to_next_threshold": to_next})


def test_stage_summaries_and_a_repeated_run_gives_the_same_tables(practice):
    practice.enrolled()
    practice.enrolled("P2", payer="medicaid")
    practice.log("P1", "RN", MARCH, 45)
    practice.log("P1", "FD", MARCH, 10)
    practice.log("P2", "RN", MARCH, 30)
    minutes, billing = practice.run()
    assert minutes == {"build": {"mode": "full", "reason": "first build", "patient_months": 2},
                       "activities": 3, "patient_months": 2, "countable_minutes": 75, "excluded_minutes": 10,
                       "excluded_by_reason": {"non_clinical_role": 10}}
    # 99490 60.49 -> 47.42; 99439 45.93 -> 80% 36.74, less 2% 0.73 -> 36.01; 47.42 + 36.01 = 83.43
    assert_has(billing, {"patient_months": 2, "eligible": 1, "billed": 1, "billed_closed": 1, "code_lines": 2,
                         "expected_payment": 83.43, "years_without_rules": []})
    first = practice.rows("select * from core.patient_month order by patient_id")
    practice.run()
    assert practice.rows("select * from core.patient_month order by patient_id") == first


def test_a_payment_tie_goes_to_the_earlier_code_set_in_the_rules_file(tmp_path):
    raw = yaml.safe_load((RULES_DIR / "2025.yaml").read_text())
    raw["fee_schedule"]["rvus"]["99491"] = {"total": 1.87}  # now 99491 pays exactly what 99490 pays (60.49)
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "2025.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    practice = Practice(tmp_path / "w.duckdb", settings=settings_with(rules_dir=folder)).team()
    practice.enrolled()
    practice.log("P1", "DOC", MARCH, 30)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"code_set": "ccm_standard", "fee_schedule_amount": Decimal("60.49")})


def test_enough_minutes_in_an_ineligible_month_report_only_what_is_missing(practice):
    practice.enrolled(payer="medicaid")
    practice.log("P1", "RN", MARCH, 65)
    practice.run()
    assert_has(practice.month("P1", MARCH), {"reasons_not_billed": ["not_medicare_part_b: medicaid"],
                                             "next_threshold_minutes": None, "code_set": None})
