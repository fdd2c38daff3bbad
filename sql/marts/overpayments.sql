-- marts.overpayments: one row per open overpayment: a paid claim whose
-- patient-month would now bill less or nothing (billing.overpayments, newest
-- row per claim with an amount at risk). 42 CFR 401.305: report and return
-- within 60 days of identification (identified_at: the first row of the
-- current episode; a timely good-faith investigation of related overpayments
-- may suspend the clock up to 180 days). days_left counts from the newest
-- run's as-of (today without one).
create or replace view marts.overpayments as
with as_of as (
    select coalesce((select as_of from raw.runs where status <> 'failed' and as_of is not null
                     order by started_at desc limit 1), current_date) as as_of
),
rows as (
    select *,
           -- episodes: a row with nothing at risk closes one; the next row opens the next
           sum(case when amount_at_risk = 0 then 1 else 0 end)
               over (partition by claim_id order by identified_at rows between unbounded preceding and 1 preceding)
               as closed_before
    from billing.overpayments
),
latest as (
    select * from rows qualify row_number() over (partition by claim_id order by identified_at desc) = 1
),
episode_start as (
    select r.claim_id, min(r.identified_at) as identified_at
    from rows r join latest l on l.claim_id = r.claim_id
     and coalesce(r.closed_before, 0) = coalesce(l.closed_before, 0)
    group by r.claim_id
)
select
    l.claim_id,
    g.batch_id,
    l.patient_id,
    l.service_month,
    l.paid_amount,
    l.billed_codes,
    l.current_codes,
    l.eligible_now,
    l.amount_at_risk,
    case when not l.eligible_now then 'the patient-month is no longer eligible'
         when l.current_codes = '' then 'the patient-month no longer bills any code'
         else 'the patient-month would now bill ' || l.current_codes || ' instead of ' || l.billed_codes end
        as reason,
    e.identified_at,
    (e.identified_at::date + 60)::date as refund_deadline,
    ((e.identified_at::date + 60) - (select as_of from as_of))::integer as days_left
from latest l
join episode_start e using (claim_id)
join billing.ledger g using (claim_id)
where l.amount_at_risk > 0
