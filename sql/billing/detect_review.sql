-- New billing.review rows: patient-months with a live claim in tonight's usage
-- whose codes or countable minutes now differ from what was billed and from
-- their last review row, so a rerun adds nothing. (A rejected claim is not
-- reviewed: changed content bills it again.) The table itself: billing/review.sql.
insert into billing.review
with current_codes as (
    select patient_id, service_month,
           string_agg(cpt_code || case when units > 1 then 'x' || units else '' end, ' '
                      order by line_number, cpt_code) as codes
    from core.code_lines
    group by patient_id, service_month
),
current_state as (
    select pm.patient_id, pm.service_month,
           coalesce(cc.codes, '') as current_codes,
           pm.countable_minutes::integer as current_minutes
    from core.patient_month pm
    left join current_codes cc using (patient_id, service_month)
),
last_review as (
    select patient_id, service_month, current_codes, current_minutes
    from billing.review
    qualify row_number() over (partition by patient_id, service_month
                               order by detected_at desc, detected_run_id desc) = 1
)
select
    l.patient_id, l.service_month, l.claim_id, l.batch_id,
    case when c.current_codes <> l.billed_codes then 'codes' else 'minutes' end as change,
    l.billed_codes, l.billed_minutes, c.current_codes, c.current_minutes,
    getvariable('claims_run_id') as detected_run_id,
    now() as detected_at
from billing.ledger l
join billing.live_claims lc on lc.claim_id = l.claim_id and lc.usage_indicator = getvariable('claim_usage')
join current_state c on c.patient_id = l.patient_id and c.service_month = l.service_month
left join last_review r on r.patient_id = l.patient_id and r.service_month = l.service_month
where (c.current_codes <> l.billed_codes or c.current_minutes is distinct from l.billed_minutes)
  and (r.patient_id is null
       or r.current_codes <> c.current_codes
       or r.current_minutes is distinct from c.current_minutes);
