-- marts.claim_lines: one row per billed code line of every claim ever written,
-- exactly as committed to the ledger (billing.ledger_lines): NPIs, line
-- number, minutes and diagnoses as the claim carried them, with its batch. A
-- rejected claim billed again appears under both claim ids (marts.claim_status
-- says which is live). needs_review is true when minutes or
-- codes changed after billing (billing.review); the claim itself never changes.
create or replace view marts.claim_lines as
with lines as (
    select batch_id, claim_id, patient_id, service_month, billing_npi, billing_provider_npi,
           line_number::integer as line_number, cpt_code, units::integer as units, minutes::integer as minutes,
           charge_amount::decimal(10, 2) as charge_amount, allowed_amount::decimal(10, 2) as allowed_amount,
           expected_payment::decimal(10, 2) as expected_payment,
           patient_responsibility::decimal(10, 2) as patient_responsibility,
           date_of_service, icd10_codes
    from billing.ledger_lines
),
batches as (
    select batch_id, any_value(run_id) as run_id, any_value(as_of) as as_of, any_value(status) as status
    from billing.batches
    group by batch_id
),
ledger as (
    select claim_id, committed_at from billing.ledger
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
    l.billing_npi,
    l.billing_provider_npi,
    l.line_number,
    l.cpt_code,
    l.units,
    l.minutes,
    l.charge_amount,
    l.allowed_amount,
    l.expected_payment,
    l.patient_responsibility,
    l.date_of_service,
    l.icd10_codes,
    r.patient_id is not null as needs_review
from lines l
left join batches b using (batch_id)
left join ledger g using (claim_id)
left join review r using (patient_id, service_month);
