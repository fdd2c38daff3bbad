-- marts.remittance_adjustments: one row per claim batch, service month,
-- adjustment group and reason (CARC): what the payer took off our claims and
-- why, in words (billing.remittance_adjustments of matched claims, net of
-- reversals; marts.reason_codes).
create or replace view marts.remittance_adjustments as
select
    g.batch_id,
    g.service_month,
    a.group_code,
    a.reason_code,
    count(distinct a.claim_id) as claims,
    sum(a.amount)::decimal(12, 2) as amount,
    any_value(w.words) as reason
from billing.remittance_adjustments a
join billing.ledger g using (claim_id)
left join marts.reason_codes w on w.reason_code = 'CARC:' || a.group_code || '-' || a.reason_code
group by g.batch_id, g.service_month, a.group_code, a.reason_code
