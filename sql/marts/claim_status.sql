-- marts.claim_status: one row per claim ever written (billing.ledger), with
-- where it stands, as the export contract fixes it. status: submitted (no
-- response yet), accepted (999 or 277CA), rejected (999, 277CA, TA1), paid,
-- partially_paid, denied, reversed (835). The responses are ranked by
-- billing.event_rank (835 over 277CA over 999 / TA1; the newest wins among
-- equals), as the live claims are. Amounts are the payer's, summed over every
-- 835 that paid or reversed the claim (a reversal's are negative), so they
-- add up to the remittances' totals; adjustment_reason_codes and the payer's
-- claim control number come from the newest 835 for the claim.
create or replace view marts.claim_status as
with current_event as (
    select e.claim_id, e.status, e.payer_claim_control_number, f.read_at
    from billing.claim_events e
    join billing.response_files f on f.sha256 = e.response_sha256
    qualify row_number() over (partition by e.claim_id
                               order by billing.event_rank(e.source) desc, f.file_seq desc, e.ordinal desc) = 1
),
payments as (
    select claim_id, sum(paid_amount) as paid_amount, sum(patient_responsibility) as patient_responsibility
    from billing.remittance_claims
    where claim_id is not null
    group by claim_id
),
newest_remittance as (
    select rc.claim_id, rc.response_sha256, rc.claim_ordinal, rc.payer_claim_control_number
    from billing.remittance_claims rc
    join billing.response_files f on f.sha256 = rc.response_sha256
    where rc.claim_id is not null
    qualify row_number() over (partition by rc.claim_id order by f.file_seq desc, rc.claim_ordinal desc) = 1
),
carcs as (
    select n.claim_id,
           string_agg(distinct a.group_code || '-' || a.reason_code, ' '
                      order by a.group_code || '-' || a.reason_code) as adjustment_reason_codes
    from newest_remittance n
    join billing.remittance_adjustments a
      on a.response_sha256 = n.response_sha256 and a.claim_ordinal = n.claim_ordinal
    group by n.claim_id
),
replacements as (
    select replaces_claim_id as claim_id, min(claim_id) as replaced_by_claim_id
    from billing.ledger
    where replaces_claim_id is not null
    group by all
)
select
    l.claim_id,
    l.batch_id,
    l.patient_id,
    l.service_month,
    coalesce(e.status, 'submitted') as status,
    l.charge_amount::decimal(10, 2) as charge_amount,
    p.paid_amount::decimal(12, 2) as paid_amount,
    p.patient_responsibility::decimal(12, 2) as patient_responsibility,
    c.adjustment_reason_codes,
    coalesce(n.payer_claim_control_number, e.payer_claim_control_number) as payer_claim_control_number,
    e.read_at as status_at,
    r.replaced_by_claim_id
from billing.ledger l
left join current_event e using (claim_id)
left join payments p using (claim_id)
left join newest_remittance n using (claim_id)
left join carcs c using (claim_id)
left join replacements r using (claim_id)
