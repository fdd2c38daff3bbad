-- marts.remittance_summary: one row per claim batch and service month: how
-- its claims stand (marts.claim_status) and what the payer made of them
-- (billing.remittance_claims, net of reversals): billed, allowed, paid, the
-- patient's share, adjustments, and the days from the batch to the payment
-- date (BPR16) of each claim's first payment. Adjustments by CARC:
-- marts.remittance_adjustments.
create or replace view marts.remittance_summary as
with claims as (
    select s.*, g.committed_at from marts.claim_status s join billing.ledger g using (claim_id)
),
remitted as (
    select rc.claim_id,
           sum(rc.allowed_amount) as allowed_amount,
           sum(rc.adjustment_amount) as adjustment_amount,
           min(rm.payment_date) filter (where rc.paid_amount > 0) as first_paid_on
    from billing.remittance_claims rc
    join billing.remittances rm
      on rm.response_sha256 = rc.response_sha256 and rm.transaction_ordinal = rc.transaction_ordinal
    where rc.claim_id is not null
    group by rc.claim_id
)
select
    c.batch_id,
    c.service_month,
    count(*) as claims,
    count(*) filter (where c.status = 'submitted') as submitted,
    count(*) filter (where c.status = 'accepted') as accepted,
    count(*) filter (where c.status = 'rejected') as rejected,
    count(*) filter (where c.status = 'paid') as paid,
    count(*) filter (where c.status = 'partially_paid') as partially_paid,
    count(*) filter (where c.status = 'denied') as denied,
    count(*) filter (where c.status = 'reversed') as reversed,
    sum(c.charge_amount)::decimal(12, 2) as billed_amount,
    coalesce(sum(r.allowed_amount), 0)::decimal(12, 2) as allowed_amount,
    coalesce(sum(c.paid_amount), 0)::decimal(12, 2) as paid_amount,
    coalesce(sum(c.patient_responsibility), 0)::decimal(12, 2) as patient_responsibility,
    coalesce(sum(r.adjustment_amount), 0)::decimal(12, 2) as adjustment_amount,
    count(r.first_paid_on) as claims_with_payment,
    round(avg(r.first_paid_on - c.committed_at::date), 1) as avg_days_to_payment,
    max(r.first_paid_on - c.committed_at::date)::integer as max_days_to_payment
from claims c
left join remitted r using (claim_id)
group by c.batch_id, c.service_month
