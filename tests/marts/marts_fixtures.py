"""A tiny warehouse for the marts tests: the tables the marts read, created here
with exactly the columns the upstream stages promise (nothing more), and a
scenario a care team would recognise.

Months: Dec 2025 (rules year 2025, closed, claimed by RUN_1), Jan 2026 (closed,
claimed by RUN_2), Feb 2026 (open: AS_OF is 2026-02-10, 18 days left).

Jan 2026, one patient-month each:
  P1  45 min, eligible            -> billed 99490 + 99439 (ledger, batch B-JAN)
  P2  19 min                      -> below threshold, 1 min short ('15-19 of 20 min')
  P3  12 min + 10 held            -> held_documentation (amending would reach 22)
  P4  25 min before consent       -> no_consent (otherwise billable: valued)
  P5  30 min, Medicaid            -> not_medicare_part_b (valued)
  P6   8 min, no care plan        -> multiple_reasons (valued 0)
  P7  22 min, eligible            -> billable, not in a batch yet
Feb 2026 (open):
  P1 18 min (2 to 20), P2 35 min (5 to 40), P3 5 min (15 to 20), P9 3 min
  (ineligible only for minutes: 17 to 20), P10 65 min (nothing left to reach),
  P8 no consent and P5 Medicaid (not on the worklist), P7 nothing yet (carried
  forward from January, 20 to go).
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import duckdb

from transforms.billing.ledger import ensure_billing_schema
from transforms.warehouse import connect, ensure_schema, run_sql

AS_OF = date(2026, 2, 10)
RUN_1 = "run-20260110-a"
RUN_2 = "run-20260210-b"
TZ = "America/New_York"

# PHI the report must never show (the worklist may show names)
PATIENT_NAMES = {f"P{i}": (f"Firstname{i}", f"Zebulon{i}") for i in range(1, 11)}
MBI = {f"P{i}": f"1EG4TE5MK{i:02d}" for i in range(1, 11)}
NOTE_TEXT = "Discussed insulin titration with daughter Ramona"
FLAG_MESSAGE = "vague note: 'Patient call re Ramona'"

SOURCE_DDL = """
create table core.patient_month (
    patient_id varchar, service_month date, rules_year integer, billing_npi varchar, billing_staff_id varchar,
    billing_provider_npi varchar, clinical_staff_minutes integer, practitioner_minutes integer,
    countable_minutes integer, excluded_face_to_face integer, excluded_non_clinical_role integer,
    excluded_before_consent integer, excluded_after_revocation integer, excluded_held_documentation integer,
    excluded_voided integer, excluded_duplicate integer, chronic_condition_count integer,
    qualifying_icd10 varchar[], eligible boolean, code_set varchar, billed_codes varchar,
    expected_payment decimal(10,2), charge_amount decimal(10,2), date_of_service date,
    reasons_not_billed varchar[], next_threshold_minutes integer, minutes_to_next_threshold integer,
    month_closed boolean, excluded_inpatient_stay integer, excluded_before_initiating_visit integer,
    initiating_visit_date date, evidence_gaps varchar[], fee_schedule_amount decimal(10,2),
    allowed_amount decimal(10,2), patient_responsibility decimal(10,2), timely_filing_deadline date,
    timely_filing_status varchar);
create table core.code_lines (
    patient_id varchar, service_month date, billing_npi varchar, billing_provider_npi varchar, cpt_code varchar,
    units integer, minutes integer, charge_amount decimal(10,2), expected_payment decimal(10,2),
    date_of_service date, line_number integer, icd10_codes varchar[], fee_schedule_amount decimal(10,2),
    allowed_amount decimal(10,2), patient_responsibility decimal(10,2));
create table core.activity_minutes (
    activity_id varchar, patient_id varchar, staff_id varchar, role_class varchar, service_month date,
    activity_date date, duration_minutes integer, countable_minutes integer, counted_as varchar,
    excluded_minutes integer, exclusion_reason varchar);
create table quality.staff_scorecard (
    staff_id varchar, service_month date, entries integer, minutes integer, flagged_entries integer,
    share_vague double, share_late double, held_minutes integer);
create or replace table staging.patients (
    patient_id varchar, mbi varchar, first_name varchar, last_name varchar, primary_payer varchar);
create or replace table staging.staff (
    staff_id varchar, full_name varchar, role varchar, npi varchar, role_class varchar);
create or replace table staging.activities (
    activity_id varchar, patient_id varchar, staff_id varchar, started_at_local timestamp, note varchar);
"""

MD_NPI, GROUP_NPI = "1345678902", "1234567893"
DEC, JAN, FEB = date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)


def patient_month(patient_id: str, month: date, minutes: int, *, eligible: bool = True, codes: str | None = None,
                  payment: str | None = None, reasons: list[str] | None = None, held: int = 0,
                  before_consent: int = 0, next_threshold: int | None = 20, to_next: int | None = None,
                  closed: bool = True, filing: tuple[date, str] | None = None) -> dict:
    """The amounts are what the marts pass through (fee = charge = allowed = `payment`), not
    Medicare's arithmetic, which the core tests prove. filing: (deadline, status)."""
    if to_next is None and next_threshold is not None:
        to_next = next_threshold - minutes
    return dict(
        patient_id=patient_id, service_month=month, rules_year=month.year, billing_npi=MD_NPI,
        billing_staff_id="S-MD", billing_provider_npi=GROUP_NPI, clinical_staff_minutes=minutes,
        practitioner_minutes=0, countable_minutes=minutes, excluded_face_to_face=0, excluded_non_clinical_role=0,
        excluded_before_consent=before_consent, excluded_after_revocation=0, excluded_held_documentation=held,
        excluded_voided=0, excluded_duplicate=0, chronic_condition_count=2, qualifying_icd10=["E119", "I10"],
        eligible=eligible, code_set="ccm" if codes else None, billed_codes=codes,
        expected_payment=Decimal(payment) if payment else None, charge_amount=Decimal(payment) if payment else None,
        date_of_service=(month.replace(day=28) if codes else None), reasons_not_billed=reasons or [],
        next_threshold_minutes=next_threshold, minutes_to_next_threshold=to_next, month_closed=closed,
        excluded_inpatient_stay=0, excluded_before_initiating_visit=0, initiating_visit_date=date(2025, 5, 20),
        evidence_gaps=[], fee_schedule_amount=Decimal(payment) if payment else None,
        allowed_amount=Decimal(payment) if payment else None, patient_responsibility=None,
        timely_filing_deadline=filing[0] if filing else None, timely_filing_status=filing[1] if filing else "ok")


PATIENT_MONTHS = [
    # December 2025 (2025 fee: 60.49)
    patient_month("P1", DEC, 25, codes="99490", payment="60.49", next_threshold=40),
    patient_month("P2", DEC, 17, reasons=["below_threshold: 17 of 20 minutes"]),
    # January 2026
    patient_month("P1", JAN, 45, codes="99490 99439", payment="113.63", next_threshold=60),
    patient_month("P2", JAN, 19, reasons=["below_threshold: 19 of 20 minutes"]),
    patient_month("P3", JAN, 12, held=10, reasons=["below_threshold: 12 of 20 minutes"]),
    patient_month("P4", JAN, 0, eligible=False, before_consent=25, reasons=["no_consent"]),
    patient_month("P5", JAN, 30, eligible=False, reasons=["not_medicare_part_b: medicaid"], next_threshold=40),
    patient_month("P6", JAN, 8, eligible=False, reasons=["below_threshold: 8 of 20 minutes", "no_care_plan"]),
    patient_month("P7", JAN, 22, codes="99490", payment="66.13", next_threshold=40),
    # February 2026, open
    patient_month("P1", FEB, 18, closed=False),
    patient_month("P2", FEB, 35, next_threshold=40, closed=False, codes="99490", payment="66.13"),
    patient_month("P3", FEB, 5, closed=False),
    patient_month("P9", FEB, 3, eligible=False, reasons=["below_threshold: 3 of 20 minutes"], closed=False),
    patient_month("P10", FEB, 65, closed=False, next_threshold=None, to_next=None, codes="99490 99439x2",
                  payment="161.13"),
    patient_month("P8", FEB, 15, eligible=False, reasons=["no_consent"], closed=False),
    patient_month("P5", FEB, 25, eligible=False, reasons=["not_medicare_part_b: medicaid"], closed=False),
]

CODE_LINES = [
    ("P1", DEC, "99490", 1, 25, "60.49", "60.49", 1),
    ("P1", JAN, "99490", 1, 20, "66.13", "66.13", 1),
    ("P1", JAN, "99439", 1, 25, "47.50", "47.50", 2),
    ("P7", JAN, "99490", 1, 22, "66.13", "66.13", 1),
    ("P2", FEB, "99490", 1, 35, "66.13", "66.13", 1),
    ("P10", FEB, "99490", 1, 20, "66.13", "66.13", 1),
    ("P10", FEB, "99439", 2, 45, "95.00", "95.00", 2),
]

STAFF = [("S-RN", "Joy Parkhurst", "rn", None, "clinical_staff"),
         ("S-MA", "Lee Ortega", "ma", None, "clinical_staff"),
         ("S-MD", "Dana Cruz", "physician", MD_NPI, "practitioner")]


def _ts(d: date, hour: int = 10) -> datetime:
    return datetime(d.year, d.month, d.day, hour, tzinfo=timezone.utc)


def build_warehouse(path: Path, extra_columns: bool = False) -> duckdb.DuckDBPyConnection:
    """A warehouse at `path` with every source the marts read; returns an open connection."""
    con = connect(path, TZ)
    ensure_schema(con)
    ensure_billing_schema(con)  # billing.* and quality.flags as their stages create them
    run_sql(con, "quality/_schema.sql")
    con.execute(SOURCE_DDL)
    if extra_columns:  # an upstream stage adding a column must not change any mart
        con.execute("alter table core.patient_month add column upstream_extra varchar")
        con.execute("alter table quality.flags add column upstream_extra varchar")

    for pm in PATIENT_MONTHS:
        cols = list(pm)
        con.execute(f"insert into core.patient_month ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                    [pm[c] for c in cols])
    con.executemany(
        "insert into core.code_lines values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, null)",
        [[p, m, MD_NPI, GROUP_NPI, code, units, mins, Decimal(ch), Decimal(pay), m.replace(day=28), line,
          ["E119", "I10"], Decimal(ch), Decimal(ch)] for p, m, code, units, mins, ch, pay, line in CODE_LINES])

    con.executemany("insert into staging.patients values (?, ?, ?, ?, ?)",
                    [[p, MBI[p], first, last, "medicaid" if p == "P5" else "medicare_part_b"]
                     for p, (first, last) in PATIENT_NAMES.items()])
    con.executemany("insert into staging.staff values (?, ?, ?, ?, ?)", [list(s) for s in STAFF])

    activities = [  # (activity_id, patient, staff, date, minutes)
        ("A1", "P1", "S-RN", date(2026, 1, 5), 45),
        ("A2", "P2", "S-RN", date(2026, 1, 20), 19),
        ("A3", "P3", "S-MA", date(2026, 1, 8), 12),
        ("A4", "P3", "S-MA", date(2026, 1, 22), 10),
        ("A5", "P7", "S-RN", date(2026, 1, 14), 22),
        ("A6", "P1", "S-RN", date(2026, 2, 3), 18),
        ("A7", "P2", "S-RN", date(2026, 2, 9), 35),
        ("A8", "P3", "S-MA", date(2026, 2, 2), 5),
        ("A9", "P9", "S-MA", date(2026, 2, 6), 3),
        ("A10", "P10", "S-RN", date(2026, 2, 4), 65),
        ("A11", "P2", "S-RN", date(2026, 2, 12), 4),   # after as_of: not a contact yet as of Feb 10
    ]
    con.executemany(
        "insert into core.activity_minutes values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[a, p, s, "clinical_staff", d.replace(day=1), d, m, m, "clinical_staff", 0, None]
         for a, p, s, d, m in activities])
    con.executemany("insert into staging.activities values (?, ?, ?, ?, ?)",
                    [[a, p, s, datetime(d.year, d.month, d.day, 9), NOTE_TEXT] for a, p, s, d, _ in activities])

    flags = [  # (activity, code, severity, held minutes, run)
        ("A4", "late_documentation", "hold", 10, RUN_2),
        ("A3", "vague_note", "warn", 0, RUN_2),
        ("A2", "vague_note", "warn", 0, RUN_2),
        ("A8", "vague_note", "warn", 0, RUN_2),
        ("A9", "missing_note", "hold", 3, RUN_2),
        ("A1", "late_documentation", "warn", 0, RUN_1),
    ]
    con.executemany(
        "insert into quality.flags (activity_id, drop_name, flag_code, severity, message, threshold, held_minutes, "
        "run_id, raised_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[a, "2026-02-09", code, sev, FLAG_MESSAGE, "24h", held, run, _ts(AS_OF)] for a, code, sev, held, run in flags])
    con.executemany(
        "insert into quality.staff_scorecard values (?, ?, ?, ?, ?, ?, ?, ?)",
        [["S-RN", JAN, 3, 86, 1, 0.33, 0.0, 0], ["S-MA", JAN, 2, 22, 2, 0.5, 0.5, 10],
         ["S-RN", FEB, 3, 118, 1, 0.33, 0.0, 0], ["S-MA", FEB, 2, 8, 2, 0.5, 0.0, 3]])

    # runs: RUN_1 claimed December, RUN_2 (tonight, still running) claimed January
    con.execute("insert into raw.runs values (?, ?, ?, ?, 'succeeded', ?)",
                [RUN_1, date(2026, 1, 10), _ts(date(2026, 1, 11), 2), _ts(date(2026, 1, 11), 3),
                 '{"ingest": {"rows_quarantined": 2}}'])
    con.execute("insert into raw.runs values (?, ?, ?, null, 'running', null)",
                [RUN_2, AS_OF, _ts(date(2026, 2, 11), 2)])
    con.executemany(
        "insert into raw.loaded_files values (?, ?, ?, 'x', ?, ?, ?, ?, ?)",
        [["2026-01-10", "activities", "activities.csv", 40, 38, 2, RUN_1, _ts(date(2026, 1, 11))],
         ["2026-02-09", "activities", "activities.csv", 60, 59, 1, RUN_2, _ts(AS_OF)],
         ["2026-02-09", "patients", "patients.csv", 10, 10, 0, RUN_2, _ts(AS_OF)]])
    con.execute("insert into raw.quarantine values ('2026-02-09', 'activities', 'activities.csv', 7, "
                "'duration_minutes', 'negative minutes', 'A99', ?)", [RUN_2])

    con.executemany(
        "insert into billing.batches (batch_id, run_id, as_of, status, path, claims, lines, charges) "
        "values (?, ?, ?, 'committed', ?, ?, ?, ?)",
        [["B-DEC", RUN_1, date(2026, 1, 10), "claims/B-DEC", 1, 1, Decimal("60.49")],
         ["B-JAN", RUN_2, AS_OF, "claims/B-JAN", 1, 2, Decimal("113.63")]])
    ledger = [["P1", DEC, "B-DEC", "C-DEC-P1", "99490", 1, Decimal("60.49"), date(2025, 12, 31),
               RUN_1, _ts(date(2026, 1, 11), 3)],
              ["P1", JAN, "B-JAN", "C-JAN-P1", "99490 99439", 2, Decimal("113.63"), date(2026, 1, 31),
               RUN_2, _ts(date(2026, 2, 11), 3)]]
    con.executemany(
        "insert into billing.ledger (patient_id, service_month, batch_id, claim_id, billing_npi, "
        "billing_provider_npi, billed_codes, units, charge_amount, date_of_service, run_id, committed_at) "
        f"values (?, ?, ?, ?, '{MD_NPI}', '{GROUP_NPI}', ?, ?, ?, ?, ?, ?)", ledger)
    con.executemany(
        "insert into billing.ledger_lines (batch_id, claim_id, line_number, patient_id, service_month, billing_npi, "
        "billing_provider_npi, cpt_code, units, minutes, charge_amount, expected_payment, date_of_service, icd10_codes) "
        f"values (?, ?, ?, ?, ?, '{MD_NPI}', '{GROUP_NPI}', ?, ?, ?, ?, ?, ?, ['E119', 'I10'])",
        [["B-DEC", "C-DEC-P1", 1, "P1", DEC, "99490", 1, 25, Decimal("60.49"), Decimal("60.49"), date(2025, 12, 31)],
         ["B-JAN", "C-JAN-P1", 2, "P1", JAN, "99439", 1, 25, Decimal("47.50"), Decimal("47.50"), date(2026, 1, 31)],
         ["B-JAN", "C-JAN-P1", 1, "P1", JAN, "99490", 1, 20, Decimal("66.13"), Decimal("66.13"), date(2026, 1, 31)]])
    con.execute(
        "insert into billing.review (patient_id, service_month, claim_id, batch_id, change, billed_codes, "
        "current_codes, detected_run_id, detected_at) values ('P1', ?, 'C-DEC-P1', 'B-DEC', 'codes', '99490', "
        "'99490 99439', ?, ?)", [DEC, RUN_2, _ts(AS_OF)])
    return con


def add_edge_cases(con: duckdb.DuckDBPyConnection) -> None:
    """Patient-months whose reasons are worded unusually: no list, an empty one, a null
    entry, a repeated code, a code without detail, text after a second colon, another
    threshold, spaces around a code, null flags; and a month (Nov 2025) before any fee
    was observed."""
    nov = date(2025, 11, 1)
    rows = [
        patient_month("E1", nov, 12, reasons=["below_threshold: 12 of 20 minutes"]),
        patient_month("E2", nov, 0, eligible=False, reasons=None),
        patient_month("E3", JAN, 5, eligible=False, reasons=[None, "no_consent"]),
        patient_month("E4", JAN, 31, eligible=False, reasons=["not_medicare_part_b: medicaid",
                                                               "not_medicare_part_b: dual: qmb"]),
        patient_month("E5", JAN, 26, eligible=False, reasons=["one_chronic_condition",
                                                              "below_threshold: 26 of 30 minutes"]),
        patient_month("E6", JAN, 24, reasons=["below_threshold: 24 of 30 minutes"], next_threshold=30),
        patient_month("E7", JAN, 10, eligible=False, reasons=["no_care_plan:", "no_care_plan"]),
        patient_month("E8", JAN, 22, codes="99490", payment="66.13", reasons=[None]),
        patient_month("E9", JAN, 3, reasons=[], next_threshold=None, to_next=None),
        patient_month("E10", FEB, 7, eligible=False, reasons=["below_threshold: 7 of 20 minutes", None],
                      closed=False),
        patient_month("E11", FEB, 0, eligible=False, reasons=["no_consent", "below_threshold: 0 of 20 minutes"],
                      closed=False),
        patient_month("E12", JAN, 14, eligible=True, reasons=["below_threshold: 14 of 20 minutes"]),
        patient_month("E13", FEB, 4, eligible=False, reasons=[" below_threshold : 4 of 20 minutes"], closed=False),
        patient_month("E13", JAN, 9, eligible=False, reasons=["no_consent ", " below_threshold: 9 of 20 minutes"]),
    ]
    rows[1]["reasons_not_billed"] = None
    rows[1]["eligible"] = None
    rows[11]["rules_year"] = None
    rows[11]["month_closed"] = None
    # a November 2025 month judged under 2024 rules (no rules file): its 99490 line is
    # 2024's only observed fee
    rows.append(patient_month("E14", nov, 21, codes="99490", payment="55.00"))
    rows[-1]["rules_year"] = 2024
    con.execute("insert into core.code_lines values ('E14', ?, ?, ?, '99490', 1, 21, 55.00, 55.00, ?, 1, ['E119'], "
                "55.00, 55.00, null)",
                [nov, MD_NPI, GROUP_NPI, date(2025, 11, 30)])
    for pm in rows:
        cols = list(pm)
        con.execute(f"insert into core.patient_month ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                    [pm[c] for c in cols])
    # E12 eligible in January with nothing yet in February: carried forward
    con.execute("insert into core.activity_minutes values ('E-A1', 'E12', 'S-RN', 'clinical_staff', ?, ?, 14, 14, "
                "'clinical_staff', 0, null)", [JAN, date(2026, 1, 9)])
    con.execute("insert into core.activity_minutes values ('E-A2', 'E12', 'S-RN', 'clinical_staff', ?, ?, 6, 0, "
                "null, 6, 'voided')", [FEB, date(2026, 2, 2)])
    # E8's January claim withheld by two claim edits; a withheld row of a patient-month
    # core does not know (listed nowhere)
    run_sql(con, "billing/withheld_claims.sql")
    con.executemany("insert into billing.withheld_claims values (?, ?, ?, ?, ?, ?, ?)", [
        ["E8", JAN, "CCM-E8", "mbi", "subscriber MBI (2010BA NM109) is malformed", RUN_2, _ts(AS_OF)],
        ["E8", JAN, "CCM-E8", "icd10", "HI position 1 code 'E11.9' is not an ICD-10-CM code", RUN_2, _ts(AS_OF)],
        ["E99", JAN, "CCM-E99", "mbi", "subscriber MBI (2010BA NM109) is malformed", RUN_2, _ts(AS_OF)],
    ])
    # a flag on an activity only staging knows, and one on an activity nobody knows
    con.execute("insert into staging.activities values ('E-A3', 'E3', 'S-MA', ?, 'x')", [datetime(2026, 1, 7, 9)])
    con.executemany(
        "insert into quality.flags (activity_id, drop_name, flag_code, severity, message, threshold, held_minutes, "
        "run_id, raised_at) values (?, 'd', ?, ?, 'm', 't', ?, ?, ?)",
        [["E-A3", "vague_note", "warn", 0, RUN_2, _ts(AS_OF)],
         ["E-A9", "orphan", "hold", 0, RUN_2, _ts(AS_OF)],
         ["E-A1", "late_documentation", "hold", 14, RUN_1, _ts(AS_OF)]])
