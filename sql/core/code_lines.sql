-- core.code_lines: one row per billed code per patient-month (closed month or
-- not; the claims stage claims closed months only; never a month past its
-- filing limit: core.patient_month bills nothing there). The base line carries
-- the first base_minutes of the pool (all of it when there is no add-on line),
-- the add-on line the rest, so a claim's line minutes add up to its pool
-- minutes. Amounts per line as core.code_choice computes them. Date of
-- service: the month end, or under 'threshold_met' each line's own threshold
-- (the base's, and the add-on's first further block: 99439's 40th minute).
create or replace table core.code_lines as
with lines as (
    select
        patient_id, service_month, code_set, preference, 0 as line_kind,
        base_code as cpt_code, 1 as units,
        case when add_on_units > 0 then base_minutes else pool_minutes end as minutes,
        base_charge as charge_per_unit, base_fee as fee_per_unit,
        base_line_charge as charge_amount, base_line_fee as fee_schedule_amount, base_line_allowed as allowed_amount,
        base_line_expected as expected_payment, base_line_patient as patient_responsibility,
        threshold_met_date as line_threshold_met_date
    from core.code_choice
    where is_billed and in_build(patient_id, service_month)
    union all
    select
        patient_id, service_month, code_set, preference, 1 as line_kind,
        add_on_code, add_on_units,
        pool_minutes - base_minutes,
        add_on_charge, add_on_fee,
        add_on_line_charge, add_on_line_fee, add_on_line_allowed,
        add_on_line_expected, add_on_line_patient,
        add_on_threshold_met_date
    from core.code_choice
    where is_billed and add_on_units > 0 and in_build(patient_id, service_month)
)
select
    l.patient_id,
    l.service_month,
    pm.rules_year,
    l.code_set,
    pm.billing_npi,
    pm.billing_provider_npi,
    row_number() over (
        partition by l.patient_id, l.service_month order by l.preference, l.line_kind
    )::integer as line_number,
    l.cpt_code,
    l.units::integer as units,
    l.minutes::integer as minutes,
    l.charge_amount::decimal(10, 2) as charge_amount,
    l.fee_schedule_amount::decimal(10, 2) as fee_schedule_amount,
    l.allowed_amount::decimal(10, 2) as allowed_amount,
    l.expected_payment::decimal(10, 2) as expected_payment,
    l.patient_responsibility::decimal(10, 2) as patient_responsibility,
    case when getvariable('date_of_service_rule') = 'threshold_met' then l.line_threshold_met_date
         else pm.date_of_service end as date_of_service,
    pm.qualifying_icd10 as icd10_codes,
    pm.month_closed
from lines l
join core.patient_month pm using (patient_id, service_month)
where pm.code_set is not null;
