-- marts.claim_lines: one row per billed code line, as committed to the ledger
-- (billing.ledger_lines), with its batch and claim. Diagnoses, line number and
-- minutes come from core.code_lines for the same patient-month and code, i.e.
-- as computed now: if minutes arrived after billing, needs_review is true and
-- the current values may differ from what the claim carried.
create or replace view marts.claim_lines as
with lines as (
    select batch_id, claim_id, patient_id, service_month, cpt_code, units::integer as units,
           charge_amount::decimal(10, 2) as charge_amount, expected_payment::decimal(10, 2) as expected_payment,
           date_of_service
    from billing.ledger_lines
),
batches as (
    select batch_id, any_value(run_id) as run_id, any_value(as_of) as as_of, any_value(status) as status
    from billing.batches
    group by batch_id
),
ledger as (
    select patient_id, service_month, min(committed_at) as committed_at
    from billing.ledger
    group by patient_id, service_month
),
current_lines as (          -- one row per patient-month and code
    select patient_id, service_month, cpt_code,
           any_value(billing_npi) as billing_npi, any_value(billing_provider_npi) as billing_provider_npi,
           min(line_number)::integer as line_number, sum(minutes)::integer as minutes, any_value(icd10_codes) as icd10_codes
    from core.code_lines
    group by patient_id, service_month, cpt_code
),
patient_months as (
    select patient_id, service_month, any_value(billing_npi) as billing_npi,
           any_value(billing_provider_npi) as billing_provider_npi
    from core.patient_month
    group by patient_id, service_month
),
review as (
    select distinct patient_id, service_month from billing.review
)
select
    l.batch_id,
    b.run_id,
    b.as_of as batch_as_of,
    b.status as batch_status,
    g.committed_at,
    l.claim_id,
    l.patient_id,
    l.service_month,
    coalesce(c.billing_npi, pm.billing_npi) as billing_npi,
    coalesce(c.billing_provider_npi, pm.billing_provider_npi) as billing_provider_npi,
    c.line_number,
    l.cpt_code,
    l.units,
    c.minutes,
    l.charge_amount,
    l.expected_payment,
    l.date_of_service,
    c.icd10_codes,
    r.patient_id is not null as needs_review
from lines l
left join batches b using (batch_id)
left join ledger g using (patient_id, service_month)
left join current_lines c using (patient_id, service_month, cpt_code)
left join patient_months pm using (patient_id, service_month)
left join review r using (patient_id, service_month)
