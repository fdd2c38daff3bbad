-- marts.denials_to_appeal: one row per claim the payer denied, wholly or some
-- of its lines (marts.claim_status: denied, partially_paid), with the
-- adjustment reasons (CARC) and remarks (RARC) of its newest 835 in words, and
-- the deadline for a Medicare redetermination: 120 days from the remittance
-- date (42 CFR 405.942 counts 120 days from receipt of the notice, presumed 5
-- days after its date: the deadline here is the earlier, safe one). The
-- remittance date is the 835's production date (DTM*405), else its payment
-- date (BPR16). days_left counts from the newest run's as-of (today without one).
create or replace view marts.denials_to_appeal as
with as_of as (
    select coalesce((select as_of from raw.runs where status <> 'failed' and as_of is not null
                     order by started_at desc limit 1), current_date) as as_of
),
newest as (
    select rc.*, coalesce(rm.production_date, rm.payment_date) as remittance_date
    from billing.remittance_claims rc
    join billing.response_files f on f.sha256 = rc.response_sha256
    join billing.remittances rm
      on rm.response_sha256 = rc.response_sha256 and rm.transaction_ordinal = rc.transaction_ordinal
    where rc.claim_id is not null
    qualify row_number() over (partition by rc.claim_id order by f.file_seq desc, rc.claim_ordinal desc) = 1
),
adjustments as (
    select n.claim_id,
           list_distinct(list(a.group_code || '-' || a.reason_code)) as carcs
    from newest n
    join billing.remittance_adjustments a
      on a.response_sha256 = n.response_sha256 and a.claim_ordinal = n.claim_ordinal
    where a.group_code <> 'PR' and a.reason_code <> '253'   -- the patient's share and sequestration are no denial
    group by n.claim_id
),
remarks as (
    select n.claim_id,
           list_distinct(list_concat(coalesce(flatten(list(ln.remark_codes) filter (where ln.remark_codes is not null)),
                                              []),
                                     any_value(n.remark_codes))) as rarcs
    from newest n
    left join billing.remittance_lines ln
      on ln.response_sha256 = n.response_sha256 and ln.claim_ordinal = n.claim_ordinal
    group by n.claim_id
),
denied_lines as (           -- lines paid nothing that the patient does not owe either
    select n.claim_id, sum(ln.charge_amount) as denied_amount
    from newest n
    join billing.remittance_lines ln
      on ln.response_sha256 = n.response_sha256 and ln.claim_ordinal = n.claim_ordinal
    where coalesce(ln.paid_amount, 0) = 0
      and not exists (select 1 from billing.remittance_adjustments a
                      where a.response_sha256 = ln.response_sha256 and a.claim_ordinal = ln.claim_ordinal
                        and a.line_ordinal = ln.line_ordinal and a.group_code = 'PR' and a.amount > 0)
    group by n.claim_id
),
words as (
    select claim_id,
           string_agg(w.words, '; ' order by code) filter (where starts_with(code, 'CARC:')) as carc_reason,
           string_agg(w.words, '; ' order by code) filter (where starts_with(code, 'RARC:')) as rarc_reason
    from (select claim_id, 'CARC:' || unnest(carcs) as code from adjustments
          union all
          select claim_id, 'RARC:' || unnest(rarcs) from remarks) c
    left join marts.reason_codes w on w.reason_code = c.code
    group by claim_id
)
select
    s.claim_id,
    s.batch_id,
    s.patient_id,
    s.service_month,
    s.status,
    s.payer_claim_control_number,
    n.remittance_date,
    (n.remittance_date + 120)::date as appeal_deadline,
    ((n.remittance_date + 120) - (select as_of from as_of))::integer as days_left,
    s.charge_amount,
    s.paid_amount,
    coalesce(d.denied_amount, case when s.status = 'denied' then s.charge_amount end)::decimal(12, 2)
        as denied_amount,
    array_to_string(list_sort(a.carcs), ' ') as carcs,
    w.carc_reason,
    array_to_string(list_sort(r.rarcs), ' ') as rarcs,
    w.rarc_reason
from marts.claim_status s
join newest n using (claim_id)
left join adjustments a using (claim_id)
left join remarks r using (claim_id)
left join denied_lines d using (claim_id)
left join words w using (claim_id)
where s.status in ('denied', 'partially_paid')
