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
    month_closed boolean);
create table core.code_lines (
    patient_id varchar, service_month date, billing_npi varchar, billing_provider_npi varchar, cpt_code varchar,
    units integer, minutes integer, charge_amount decimal(10,2), expected_payment decimal(10,2),
    date_of_service date, line_number integer, icd10_codes varchar[]);
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
                  closed: bool = True) -> dict:
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
        next_threshold_minutes=next_threshold, minutes_to_next_threshold=to_next, month_closed=closed)


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
        "insert into core.code_lines values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[p, m, MD_NPI, GROUP_NPI, code, units, mins, Decimal(ch), Decimal(pay), m.replace(day=28), line,
          ["E119", "I10"]] for p, m, code, units, mins, ch, pay, line in CODE_LINES])

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


# ---------------------------------------------------------------- reference definitions
# The marts views as first written, straightforwardly (windows and look-ups over all
# history, one parse per row). The views are now written to let filters reach the
# scans; tests check they still return exactly these rows (ref.<view>).

REFERENCE_VIEWS = {
    "patient_month": r"""
-- marts.patient_month: one row per patient per service month (the unit of
-- billing): minutes by kind, minutes excluded by reason, eligibility, the code
-- choice, what the ledger says was billed, and for a closed month that was not
-- billed, why, and an estimate of the payment left on the table.
-- This view is the one place the marts name core.patient_month's columns;
-- revenue_summary and threshold_worklist read this view.
create or replace view ref.patient_month as
with patient_months as (    -- core.patient_month, column by column
    select
        patient_id::varchar as patient_id,
        service_month::date as service_month,
        coalesce(rules_year, year(service_month))::integer as rules_year,
        coalesce(month_closed, false) as month_closed,
        billing_npi,
        billing_provider_npi,
        billing_staff_id,
        coalesce(clinical_staff_minutes, 0)::integer as clinical_staff_minutes,
        coalesce(practitioner_minutes, 0)::integer as practitioner_minutes,
        coalesce(countable_minutes, 0)::integer as countable_minutes,
        coalesce(excluded_face_to_face, 0)::integer as excluded_face_to_face,
        coalesce(excluded_non_clinical_role, 0)::integer as excluded_non_clinical_role,
        coalesce(excluded_before_consent, 0)::integer as excluded_before_consent,
        coalesce(excluded_after_revocation, 0)::integer as excluded_after_revocation,
        coalesce(excluded_held_documentation, 0)::integer as excluded_held_documentation,
        coalesce(excluded_voided, 0)::integer as excluded_voided,
        coalesce(excluded_duplicate, 0)::integer as excluded_duplicate,
        chronic_condition_count::integer as chronic_condition_count,
        qualifying_icd10::varchar[] as qualifying_icd10,
        coalesce(eligible, false) as eligible,
        code_set,
        nullif(trim(billed_codes), '') as codes,
        expected_payment::decimal(10, 2) as expected_payment,
        charge_amount::decimal(10, 2) as charge_amount,
        date_of_service::date as date_of_service,
        coalesce(reasons_not_billed, []::varchar[])::varchar[] as reasons_not_billed,
        next_threshold_minutes::integer as next_threshold_minutes,
        minutes_to_next_threshold::integer as minutes_to_next_threshold
    from core.patient_month
),
ledger as (                 -- one row per patient-month ever billed (the ledger's guarantee)
    select patient_id, service_month,
           min(batch_id) as batch_id, min(claim_id) as claim_id,
           min(run_id) as billed_run_id, min(committed_at) as billed_at
    from billing.ledger
    group by patient_id, service_month
),
ledger_lines as (           -- what went out on the claim, base code first
    select patient_id, service_month,
           string_agg(cpt_code || case when units > 1 then 'x' || units else '' end, ' '
                      order by expected_payment / greatest(units, 1) desc, cpt_code) as billed_codes,
           sum(charge_amount)::decimal(10, 2) as billed_charge_amount,
           sum(expected_payment)::decimal(10, 2) as billed_expected_payment
    from billing.ledger_lines
    group by patient_id, service_month
),
review as (                 -- minutes that arrived after the month was billed
    select distinct patient_id, service_month from billing.review
),
withheld as (               -- tonight's claim edits that kept the month's claim out of its batch
    select patient_id, service_month, list(edit || ': ' || reason order by edit, reason) as withheld_reasons
    from billing.withheld_claims
    group by patient_id, service_month
),
practitioners as (
    select staff_id, any_value(full_name) as full_name from staging.staff group by staff_id
),
observed_fees as (          -- the base code's fee the rules engine used, per rules year
    select pm.rules_year, mode(round(cl.expected_payment / cl.units, 2)) as fee
    from core.code_lines cl
    join patient_months pm using (patient_id, service_month)
    where cl.cpt_code = '99490' and cl.units > 0 and cl.expected_payment is not null
    group by pm.rules_year
),
reference_fees as (         -- the rules files' amount, for a year nothing was coded in yet
    select rules_year, max(fee) as fee from marts.fee_reference where cpt_code = '99490' group by rules_year
),
classified as (
    select
        pm.*,
        list_sort(list_distinct(list_transform(pm.reasons_not_billed, lambda r: trim(split_part(r, ':', 1)))))
            as reason_codes,
        -- the threshold a below_threshold reason names ('19 of 20 minutes'), else 99490's 20
        coalesce(
            try_cast(list_first(list_transform(
                list_filter(pm.reasons_not_billed, lambda r: r like 'below_threshold%'),
                lambda r: nullif(regexp_extract(r, 'of\s+(\d+)', 1), ''))) as integer),
            20) as base_threshold,
        l.patient_id is not null as billed,
        l.batch_id, l.claim_id, l.billed_run_id, l.billed_at,
        ll.billed_codes, ll.billed_charge_amount, ll.billed_expected_payment,
        r.patient_id is not null as needs_review,
        w.patient_id is not null and l.patient_id is null as withheld,
        case when l.patient_id is null then w.withheld_reasons end as withheld_reasons,
        s.full_name as billing_practitioner_name,
        coalesce(o.fee, f.fee)::decimal(10, 2) as base_code_fee
    from patient_months pm
    left join ledger l using (patient_id, service_month)
    left join ledger_lines ll using (patient_id, service_month)
    left join review r using (patient_id, service_month)
    left join withheld w using (patient_id, service_month)
    left join practitioners s on s.staff_id = pm.billing_staff_id
    left join observed_fees o on o.rules_year = pm.rules_year
    left join reference_fees f on f.rules_year = pm.rules_year
),
outcomes as (
    select
        *,
        case
            when billed then 'billed'
            when not month_closed then 'in_progress'
            when codes is not null and len(reason_codes) = 0 then 'billable'
            else 'not_billed'
        end as outcome,
        -- minutes the patient-month would have with held notes amended and
        -- time before a late consent counted: "otherwise billable" test
        countable_minutes + excluded_held_documentation + excluded_before_consent as recoverable_minutes
    from classified
),
left_on_table as (
    select
        *,
        case
            when outcome <> 'not_billed' then null
            when len(reason_codes) = 0 then 'unexplained'
            when len(reason_codes) > 1 then 'multiple_reasons'
            when reason_codes[1] = 'below_threshold'
                 and countable_minutes + excluded_held_documentation >= base_threshold then 'held_documentation'
            else reason_codes[1]
        end as left_on_table_reason,
        greatest(ceil((base_threshold - countable_minutes) / 5), 1)::integer as short_bucket
    from outcomes
)
select
    patient_id,
    service_month,
    rules_year,
    month_closed,
    billing_npi,
    billing_provider_npi,
    billing_staff_id,
    billing_practitioner_name,
    clinical_staff_minutes,
    practitioner_minutes,
    countable_minutes,
    excluded_face_to_face,
    excluded_non_clinical_role,
    excluded_before_consent,
    excluded_after_revocation,
    excluded_held_documentation,
    excluded_voided,
    excluded_duplicate,
    excluded_face_to_face + excluded_non_clinical_role + excluded_before_consent + excluded_after_revocation
        + excluded_held_documentation + excluded_voided + excluded_duplicate as excluded_minutes,
    chronic_condition_count,
    qualifying_icd10,
    eligible,
    code_set,
    codes,
    charge_amount,
    expected_payment,
    date_of_service,
    reasons_not_billed,
    reason_codes,
    next_threshold_minutes,
    minutes_to_next_threshold,
    outcome,
    billed,
    batch_id,
    claim_id,
    billed_run_id,
    billed_at,
    billed_codes,
    billed_charge_amount,
    billed_expected_payment,
    needs_review,
    left_on_table_reason,
    case
        when left_on_table_reason = 'below_threshold' then       -- 5-minute buckets: '15-19 of 20 min'
            greatest(base_threshold - 5 * short_bucket, 0) || '-' || (base_threshold - 5 * short_bucket + 4)
            || ' of ' || base_threshold || ' min'
        when left_on_table_reason = 'held_documentation' then
            countable_minutes || ' countable + ' || excluded_held_documentation || ' held of ' || base_threshold || ' min'
        when left_on_table_reason = 'multiple_reasons' then array_to_string(reason_codes, ' + ')
        when left_on_table_reason is not null then             -- what follows the colon: 'medicaid'
            nullif(trim(list_first(list_transform(
                list_filter(reasons_not_billed, lambda r: trim(split_part(r, ':', 1)) = left_on_table_reason),
                lambda r: case when strpos(r, ':') > 0 then substr(r, strpos(r, ':') + 1) else '' end))), '')
    end as left_on_table_detail,
    case when left_on_table_reason = 'below_threshold' then base_threshold - countable_minutes end as minutes_short,
    '99490' as base_code,
    base_code_fee,
    case
        when left_on_table_reason is null then null
        when left_on_table_reason in ('below_threshold', 'held_documentation') then base_code_fee
        when left_on_table_reason in ('multiple_reasons', 'unexplained') then 0.00
        when recoverable_minutes >= base_threshold then base_code_fee
        else 0.00
    end::decimal(10, 2) as estimated_left_on_table,
    withheld,
    coalesce(withheld_reasons, []::varchar[]) as withheld_reasons
from left_on_table
""",
    "dq_flags": r"""
-- marts.dq_flags: one row per data-quality flag (quality.flags), with the
-- activity's patient, staff member and service month. Severity `hold` keeps
-- the activity's minutes out of billing until it is amended; `warn` does not.
-- resolved_at is set when a later check of the same version no longer finds the
-- flag (an overlap whose other activity was voided): history, no longer active.
create or replace view ref.dq_flags as
with flags as (
    select activity_id, drop_name, flag_code, severity, message, threshold, held_minutes, run_id, raised_at,
           resolved_at
    from quality.flags
),
activity_minutes as (       -- one row per activity (minutes may be split by how they counted)
    select activity_id, any_value(patient_id) as patient_id, any_value(staff_id) as staff_id,
           any_value(role_class) as role_class, any_value(service_month) as service_month,
           any_value(activity_date) as activity_date, max(duration_minutes) as duration_minutes
    from core.activity_minutes
    group by activity_id
),
activities as (             -- staging, for an activity the minutes stage has not seen
    select activity_id, any_value(patient_id) as patient_id, any_value(staff_id) as staff_id,
           any_value(started_at_local) as started_at_local
    from staging.activities
    group by activity_id
),
staff as (
    select staff_id, any_value(full_name) as full_name, any_value(role) as role, any_value(role_class) as role_class
    from staging.staff
    group by staff_id
)
select
    f.run_id,
    f.raised_at,
    f.drop_name,
    f.activity_id,
    f.flag_code,
    f.severity,
    f.message,
    f.threshold::varchar as threshold,
    coalesce(f.held_minutes, 0)::integer as held_minutes,
    coalesce(m.patient_id, a.patient_id) as patient_id,
    coalesce(m.staff_id, a.staff_id) as staff_id,
    s.full_name as staff_name,
    s.role as staff_role,
    coalesce(m.role_class, s.role_class) as role_class,
    coalesce(m.service_month, date_trunc('month', a.started_at_local)::date) as service_month,
    coalesce(m.activity_date, a.started_at_local::date) as activity_date,
    m.duration_minutes::integer as duration_minutes,
    f.resolved_at
from flags f
left join activity_minutes m using (activity_id)
left join activities a using (activity_id)
left join staff s on s.staff_id = coalesce(m.staff_id, a.staff_id)
""",
    "threshold_worklist": r"""
-- marts.threshold_worklist: one row per patient to work in the OPEN month
-- (the month containing as_of, practice time): eligible patients, or patients
-- held back only by minutes, who still have a threshold (20/40/60…) to reach.
-- as_of is the newest run's (raw.runs, failed runs skipped); `set variable
-- worklist_as_of = date '…'` overrides it on one connection (build_marts does,
-- for the CSV). Minutes are the warehouse's current ones either way.
-- Patients eligible last month with no minutes yet this month are listed too
-- (worklist_status = 'no_minutes_yet'), unless last month already lost minutes
-- to a revocation. Order by priority: smallest gap first,
-- then fewest days left, then longest since the last contact.
-- Holds PHI (the patient's name): care teams call the patient.
create or replace view ref.threshold_worklist as
with as_of as (
    select coalesce(
        try_cast(getvariable('worklist_as_of') as date),
        (select as_of from raw.runs where status <> 'failed' and as_of is not null
         order by started_at desc limit 1),
        current_date) as as_of
),
open_month as (
    select as_of, date_trunc('month', as_of)::date as service_month, last_day(as_of) as month_end from as_of
),
this_month as (
    select pm.*,
           case when pm.eligible then 'eligible' else 'eligible_but_for_minutes' end as worklist_status
    from ref.patient_month pm
    join open_month o using (service_month)
    where pm.eligible
       -- held back only by minutes (or by the month still being open)
       or list_bool_and(list_transform(pm.reason_codes,
              lambda r: r in ('below_threshold', 'month_open', 'open_month', 'month_not_closed', 'in_progress')))
),
carried_forward as (        -- eligible last month, nothing logged yet this month
    select prev.patient_id, o.service_month, prev.billing_npi, prev.billing_provider_npi, prev.billing_staff_id,
           prev.billing_practitioner_name
    from ref.patient_month prev
    join open_month o on prev.service_month = (o.service_month - interval 1 month)::date
    where prev.eligible and prev.excluded_after_revocation = 0
      and not exists (select 1 from ref.patient_month cur
                      where cur.patient_id = prev.patient_id and cur.service_month = o.service_month)
),
candidates as (
    select patient_id, service_month, billing_npi, billing_provider_npi, billing_staff_id, billing_practitioner_name,
           countable_minutes, clinical_staff_minutes, practitioner_minutes, excluded_held_documentation,
           coalesce(next_threshold_minutes,
                    case when countable_minutes < 20 then 20 when countable_minutes < 40 then 40
                         when countable_minutes < 60 then 60 end) as next_threshold_minutes,
           minutes_to_next_threshold, codes, expected_payment, worklist_status
    from this_month
    union all by name
    select patient_id, service_month, billing_npi, billing_provider_npi, billing_staff_id, billing_practitioner_name,
           0 as countable_minutes, 0 as clinical_staff_minutes, 0 as practitioner_minutes,
           0 as excluded_held_documentation, 20 as next_threshold_minutes, 20 as minutes_to_next_threshold,
           null as codes, null::decimal(10, 2) as expected_payment, 'no_minutes_yet' as worklist_status
    from carried_forward
),
gaps as (
    select *,
           coalesce(minutes_to_next_threshold, next_threshold_minutes - countable_minutes) as gap
    from candidates
    where next_threshold_minutes is not null
),
last_contact as (
    select a.patient_id, max(a.activity_date) as last_contact_date
    from core.activity_minutes a, open_month o
    where a.activity_date <= o.as_of and a.exclusion_reason is distinct from 'voided'
    group by a.patient_id
),
patients as (
    select patient_id, any_value(trim(concat_ws(' ', first_name, last_name))) as patient_name
    from staging.patients
    group by patient_id
),
listed as (
    select patient_id, service_month, worklist_status, billing_staff_id, billing_practitioner_name, billing_npi,
           billing_provider_npi, countable_minutes, clinical_staff_minutes, practitioner_minutes,
           excluded_held_documentation, next_threshold_minutes, gap, codes, expected_payment,
           null::varchar as withheld_reasons
    from gaps
    where gap > 0
    union all
    select patient_id, service_month, 'claim_withheld', billing_staff_id, billing_practitioner_name, billing_npi,
           billing_provider_npi, countable_minutes, clinical_staff_minutes, practitioner_minutes,
           excluded_held_documentation, null, null, codes, expected_payment,
           array_to_string(withheld_reasons, '; ')
    from ref.patient_month
    where withheld
)
select
    o.as_of,
    g.service_month,
    (o.month_end - o.as_of)::integer as days_left_in_month,
    row_number() over (order by g.worklist_status = 'claim_withheld' desc, g.gap, o.month_end - o.as_of,
                                g.next_threshold_minutes, lc.last_contact_date nulls first, g.service_month,
                                g.patient_id)::integer as priority,
    g.patient_id,
    p.patient_name,
    g.worklist_status,
    g.billing_staff_id,
    g.billing_practitioner_name,
    g.billing_npi as billing_practitioner_npi,
    g.billing_provider_npi,
    g.countable_minutes,
    g.clinical_staff_minutes,
    g.practitioner_minutes,
    g.excluded_held_documentation as held_minutes,
    g.next_threshold_minutes,
    g.gap::integer as minutes_to_next_threshold,
    g.codes as codes_so_far,
    g.expected_payment as expected_payment_so_far,
    lc.last_contact_date,
    (o.as_of - lc.last_contact_date)::integer as days_since_last_contact,
    g.withheld_reasons
from listed g
cross join open_month o
left join last_contact lc using (patient_id)
left join patients p using (patient_id)
""",
}


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
    con.execute("insert into core.code_lines values ('E14', ?, ?, ?, '99490', 1, 21, 55.00, 55.00, ?, 1, ['E119'])",
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
