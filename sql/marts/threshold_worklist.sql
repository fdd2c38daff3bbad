-- marts.threshold_worklist: one row per patient to work in the OPEN month
-- (the month containing as_of, practice time): eligible patients, or patients
-- held back only by minutes, who still have a threshold (20/40/60…) to reach.
-- as_of is the newest run's (raw.runs, failed runs skipped); `set variable
-- worklist_as_of = date '…'` overrides it on one connection (build_marts does,
-- for the CSV). Minutes are the warehouse's current ones either way.
-- Patients eligible last month with no minutes yet this month are listed too
-- (worklist_status = 'no_minutes_yet'), unless last month already lost minutes
-- to a revocation. Order by priority: smallest gap first,
-- then fewest days left, then longest since the last contact.
-- Listed too, first: closed months not billed yet whose filing limit is near
-- (core.patient_month.timely_filing_status 'due_soon': older than
-- billing.timely_filing_warn_after_months), worklist_status 'timely_filing_due',
-- with their deadline and what stands in the way, so that they are billed
-- before they are lost (42 CFR 424.44); then closed months whose claim was
-- withheld by a claim edit (worklist_status = 'claim_withheld', with
-- withheld_reasons): their data is fixed in the EHR, and the next run bills them.
-- Holds PHI (the patient's name): care teams call the patient.
create or replace view marts.threshold_worklist as
with as_of as (
    select coalesce(
        try_cast(getvariable('worklist_as_of') as date),
        (select as_of from raw.runs where status <> 'failed' and as_of is not null
         order by started_at desc limit 1),
        current_date) as as_of
),
open_month as (
    select as_of, date_trunc('month', as_of)::date as service_month, last_day(as_of) as month_end,
           (date_trunc('month', as_of) - interval 1 month)::date as previous_month
    from as_of
),
-- The open month's and the previous month's patient-months, read once, from
-- core.patient_month with marts.patient_month's definitions of the columns used
-- here (not from that view: its ledger, fee and reason look-ups cover every
-- month of history and the worklist needs none of them). When worklist_as_of is
-- set its two months are also named as constants, so that only they are read (a
-- join on open_month alone does not reach the scan); unset, the bounds fall back
-- to the row's own month (no filter).
recent as (
    select
        pm.patient_id::varchar as patient_id,
        pm.service_month::date as service_month,
        pm.billing_npi,
        pm.billing_provider_npi,
        pm.billing_staff_id,
        s.full_name as billing_practitioner_name,
        coalesce(pm.countable_minutes, 0)::integer as countable_minutes,
        coalesce(pm.clinical_staff_minutes, 0)::integer as clinical_staff_minutes,
        coalesce(pm.practitioner_minutes, 0)::integer as practitioner_minutes,
        coalesce(pm.excluded_held_documentation, 0)::integer as excluded_held_documentation,
        coalesce(pm.excluded_after_revocation, 0)::integer as excluded_after_revocation,
        coalesce(pm.eligible, false) as eligible,
        coalesce(pm.reasons_not_billed, []::varchar[])::varchar[] as reasons_not_billed,
        pm.next_threshold_minutes::integer as next_threshold_minutes,
        pm.minutes_to_next_threshold::integer as minutes_to_next_threshold,
        nullif(trim(pm.billed_codes), '') as codes,
        pm.expected_payment::decimal(10, 2) as expected_payment
    from core.patient_month pm
    left join (select staff_id, any_value(full_name) as full_name from staging.staff group by staff_id) s
        on s.staff_id = pm.billing_staff_id
    where pm.service_month::date
          between coalesce((date_trunc('month', try_cast(getvariable('worklist_as_of') as date))
                            - interval 1 month)::date, pm.service_month::date)
              and coalesce(date_trunc('month', try_cast(getvariable('worklist_as_of') as date))::date,
                           pm.service_month::date)
),
this_month as (
    select pm.*,
           case when pm.eligible then 'eligible' else 'eligible_but_for_minutes' end as worklist_status
    from recent pm
    join open_month o using (service_month)
    where pm.eligible
       -- held back only by minutes (or by the month still being open): every reason
       -- code (marts.patient_month.reason_codes: the text before ':') is one of these
       or list_bool_and(list_transform(pm.reasons_not_billed,
              lambda r: trim(split_part(r, ':', 1))
                        in ('below_threshold', 'month_open', 'open_month', 'month_not_closed', 'in_progress')))
),
carried_forward as (        -- eligible last month, nothing logged yet this month
    select prev.patient_id, o.service_month, prev.billing_npi, prev.billing_provider_npi, prev.billing_staff_id,
           prev.billing_practitioner_name
    from recent prev
    join open_month o on prev.service_month = o.previous_month
    where prev.eligible and prev.excluded_after_revocation = 0
      and not exists (select 1 from recent cur
                      where cur.patient_id = prev.patient_id and cur.service_month = o.service_month)
),
candidates as (
    select patient_id, service_month, billing_npi, billing_provider_npi, billing_staff_id, billing_practitioner_name,
           countable_minutes, clinical_staff_minutes, practitioner_minutes, excluded_held_documentation,
           coalesce(next_threshold_minutes,
                    case when countable_minutes < 20 then 20 when countable_minutes < 40 then 40
                         when countable_minutes < 60 then 60 end) as next_threshold_minutes,
           minutes_to_next_threshold, codes, expected_payment, worklist_status
    from this_month
    union all by name
    select patient_id, service_month, billing_npi, billing_provider_npi, billing_staff_id, billing_practitioner_name,
           0 as countable_minutes, 0 as clinical_staff_minutes, 0 as practitioner_minutes,
           0 as excluded_held_documentation, 20 as next_threshold_minutes, 20 as minutes_to_next_threshold,
           null as codes, null::decimal(10, 2) as expected_payment, 'no_minutes_yet' as worklist_status
    from carried_forward
),
gaps as (
    select *,
           coalesce(minutes_to_next_threshold, next_threshold_minutes - countable_minutes) as gap
    from candidates
    where next_threshold_minutes is not null
),
filing_due as (             -- closed, not billed, the filing limit near
    select
        pm.patient_id::varchar as patient_id,
        pm.service_month::date as service_month,
        pm.billing_npi, pm.billing_provider_npi, pm.billing_staff_id,
        s.full_name as billing_practitioner_name,
        coalesce(pm.countable_minutes, 0)::integer as countable_minutes,
        coalesce(pm.clinical_staff_minutes, 0)::integer as clinical_staff_minutes,
        coalesce(pm.practitioner_minutes, 0)::integer as practitioner_minutes,
        coalesce(pm.excluded_held_documentation, 0)::integer as excluded_held_documentation,
        pm.next_threshold_minutes::integer as next_threshold_minutes,
        pm.minutes_to_next_threshold::integer as gap,
        nullif(trim(pm.billed_codes), '') as codes,
        pm.expected_payment::decimal(10, 2) as expected_payment,
        'timely_filing_due' as worklist_status,
        pm.timely_filing_deadline::date as timely_filing_deadline,
        coalesce(pm.reasons_not_billed, []::varchar[])::varchar[] as reasons_not_billed
    from core.patient_month pm
    -- no live claim (a rejected one is billed again, before the limit)
    anti join billing.live_claims l on l.patient_id = pm.patient_id and l.service_month = pm.service_month
    left join (select staff_id, any_value(full_name) as full_name from staging.staff group by staff_id) s
        on s.staff_id = pm.billing_staff_id
    where pm.timely_filing_status = 'due_soon' and coalesce(pm.month_closed, false)
),
last_contact as (
    select a.patient_id, max(a.activity_date) as last_contact_date
    from core.activity_minutes a, open_month o
    where a.activity_date <= o.as_of and a.exclusion_reason is distinct from 'voided'
    group by a.patient_id
),
patients as (
    select patient_id, any_value(trim(concat_ws(' ', first_name, last_name))) as patient_name
    from staging.patients
    group by patient_id
),
-- Closed months whose claim the claims stage withheld (billing.withheld_claims):
-- the data to fix before the claim can go out, listed first (after the months
-- whose filing limit is near, which show the same reasons).
withheld as (
    select patient_id, service_month,
           string_agg(edit || ': ' || reason, '; ' order by edit, reason) as withheld_reasons
    from billing.withheld_claims
    where (patient_id, service_month) not in (select patient_id, service_month from billing.live_claims)
    group by patient_id, service_month
),
listed as (
    select *, null::date as timely_filing_deadline, null::varchar[] as reasons_not_billed,
           null::varchar as withheld_reasons
    from gaps
    where gap > 0
    union all by name
    select f.*, w.withheld_reasons
    from filing_due f
    left join withheld w using (patient_id, service_month)
    union all by name
    select w.patient_id, w.service_month, 'claim_withheld' as worklist_status, pm.billing_staff_id,
           s.full_name as billing_practitioner_name, pm.billing_npi, pm.billing_provider_npi,
           coalesce(pm.countable_minutes, 0)::integer as countable_minutes,
           coalesce(pm.clinical_staff_minutes, 0)::integer as clinical_staff_minutes,
           coalesce(pm.practitioner_minutes, 0)::integer as practitioner_minutes,
           coalesce(pm.excluded_held_documentation, 0)::integer as excluded_held_documentation,
           null::integer as next_threshold_minutes, null::integer as gap,
           nullif(trim(pm.billed_codes), '') as codes, pm.expected_payment::decimal(10, 2) as expected_payment,
           null::date as timely_filing_deadline,
           coalesce(pm.reasons_not_billed, []::varchar[])::varchar[] as reasons_not_billed, w.withheld_reasons
    from withheld w
    join core.patient_month pm on pm.patient_id::varchar = w.patient_id and pm.service_month::date = w.service_month
    left join (select staff_id, any_value(full_name) as full_name from staging.staff group by staff_id) s
        on s.staff_id = pm.billing_staff_id
    anti join filing_due f on f.patient_id = w.patient_id and f.service_month = w.service_month
),
select
    o.as_of,
    g.service_month,
    case when g.worklist_status not in ('timely_filing_due', 'claim_withheld')
         then (o.month_end - o.as_of)::integer end as days_left_in_month,
    -- the filing limit first (the soonest lost), then withheld claims, then the open
    -- month: smallest gap first
    row_number() over (order by g.worklist_status = 'timely_filing_due' desc, g.timely_filing_deadline,
                                g.worklist_status = 'claim_withheld' desc,
                                g.gap, o.month_end - o.as_of, g.next_threshold_minutes,
                                lc.last_contact_date nulls first, g.service_month, g.patient_id)::integer as priority,
    g.patient_id,
    p.patient_name,
    g.worklist_status,
    g.billing_staff_id,
    g.billing_practitioner_name,
    g.billing_npi as billing_practitioner_npi,
    g.billing_provider_npi,
    g.countable_minutes,
    g.clinical_staff_minutes,
    g.practitioner_minutes,
    g.excluded_held_documentation as held_minutes,
    g.next_threshold_minutes,
    g.gap::integer as minutes_to_next_threshold,
    g.codes as codes_so_far,
    g.expected_payment as expected_payment_so_far,
    lc.last_contact_date,
    (o.as_of - lc.last_contact_date)::integer as days_since_last_contact,
    g.timely_filing_deadline,
    g.reasons_not_billed,
    g.withheld_reasons
from listed g
cross join open_month o
left join last_contact lc using (patient_id)
left join patients p using (patient_id)
