-- core.code_lines: one row per billed code per patient-month (closed month or
-- not; the claims stage claims closed months only). The base line carries the
-- first base_minutes of the pool (all of it when there is no add-on line), the
-- add-on line the rest, so a claim's line minutes add up to its pool minutes.
create or replace table core.code_lines as
with lines as (
    select
        patient_id, service_month, code_set, preference, 0 as line_kind,
        base_code as cpt_code, 1 as units,
        case when add_on_units > 0 then base_minutes else pool_minutes end as minutes,
        base_charge as charge_per_unit, base_fee as fee_amount
    from core.code_choice
    where is_billed and in_build(patient_id, service_month)
    union all
    select
        patient_id, service_month, code_set, preference, 1 as line_kind,
        add_on_code, add_on_units,
        pool_minutes - base_minutes,
        add_on_charge, add_on_fee
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
    (l.units * l.charge_per_unit)::decimal(10, 2) as charge_amount,
    (l.units * l.fee_amount)::decimal(10, 2) as expected_payment,
    pm.date_of_service,
    pm.qualifying_icd10 as icd10_codes,
    pm.month_closed
from lines l
join core.patient_month pm using (patient_id, service_month);
