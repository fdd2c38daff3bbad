-- core.patient_month: one row per patient-month with any activity version, the
-- unit of billing: minutes by kind, eligibility, the codes chosen (closed
-- month or not: the claims stage claims closed months only), why nothing was
-- billed, and the minutes to the next threshold. Variables: as_of,
-- claim_grace_days, date_of_service_rule, timely_filing_warn_months.
-- Timely filing (42 CFR 424.44): a claim is filed within timely_filing_months
-- (the rules file) of its date of service, the first line's; a month past that
-- on as_of is never billed (past_timely_filing), one older than
-- timely_filing_warn_months is 'due_soon' so that it is billed before it is lost.
create or replace table core.patient_month as
with billed_sets as (
    select
        patient_id,
        service_month,
        string_agg(code_set, ' ' order by preference) as code_set,
        string_agg(
            base_code || case
                when add_on_units = 1 then ' ' || add_on_code
                when add_on_units > 1 then ' ' || add_on_code || 'x' || add_on_units
                else ''
            end,
            ' ' order by preference
        ) as billed_codes,
        sum(pool_minutes)::integer as billed_minutes,
        sum(fee_schedule_amount)::decimal(10, 2) as fee_schedule_amount,
        sum(charge_amount)::decimal(10, 2) as charge_amount,
        sum(allowed_amount)::decimal(10, 2) as allowed_amount,
        sum(expected_payment)::decimal(10, 2) as expected_payment,
        sum(patient_responsibility)::decimal(10, 2) as patient_responsibility,
        -- the claim's date (its first line's): the base threshold; with several sets, the earliest
        min(threshold_met_date) as threshold_met_date,
        bool_or(care_plan_focus_qualifies) as is_pcm
    from core.code_choice
    where is_billed and in_build(patient_id, service_month)
    group by all
),
filing as (
    -- the filing limit counts from the date of service the claim would carry
    -- (for a month that bills nothing, its last day)
    select
        m.patient_id,
        m.service_month,
        (coalesce(case when b.code_set is not null and getvariable('date_of_service_rule') = 'threshold_met'
                       then b.threshold_met_date end, last_day(m.service_month))
         + to_months(y.timely_filing_months))::date as timely_filing_deadline,
        (coalesce(case when b.code_set is not null and getvariable('date_of_service_rule') = 'threshold_met'
                       then b.threshold_met_date end, last_day(m.service_month))
         + to_months(getvariable('timely_filing_warn_months')))::date as timely_filing_warn_from
    from core.patient_month_minutes m
    join core.eligibility e using (patient_id, service_month)
    left join billed_sets b using (patient_id, service_month)
    left join core.rules_years y on y.rules_year = e.rules_year
    where in_build(m.patient_id, m.service_month)
),
billable_sets as (
    -- what bills: the chosen codes, unless the filing limit has passed
    select b.*
    from billed_sets b
    join filing f using (patient_id, service_month)
    where not coalesce(getvariable('as_of') > f.timely_filing_deadline, false)
),
choice_summary as (
    select
        patient_id,
        service_month,
        bool_or(qualifies) as any_set_qualifies,
        -- minutes are a reason only when no set the patient fits has enough
        bool_or(fits_conditions and fits_care_plan and meets_base) as minutes_suffice,
        max(next_threshold_minutes) filter (where is_progress_ladder) as next_threshold_minutes,
        max(minutes_to_next_threshold) filter (where is_progress_ladder) as minutes_to_next_threshold,
        -- (a reason only on a ladder the patient's conditions and care plan fit)
        max('below_threshold: ' || pool_minutes || ' of ' || base_minutes || ' minutes')
            filter (where is_progress_ladder and not meets_base and fits_conditions and fits_care_plan)
            as below_threshold_reason,
        -- a set that would bill but for a missing amount in the rules file
        list_sort(list_distinct(list('unpriced_code: ' || base_code)
            filter (where fits_conditions and fits_care_plan and meets_base and base_fee is null))) as unpriced_reasons
    from core.code_choice
    where in_build(patient_id, service_month)
    group by all
)
select
    m.patient_id,
    m.service_month,
    e.rules_year,
    e.consent_status,
    e.primary_payer,
    e.billing_npi,
    e.billing_staff_id,
    bp.billing_provider_npi,
    m.clinical_staff_minutes,
    m.practitioner_minutes,
    m.other_practitioner_minutes,
    m.countable_minutes,
    m.logged_minutes,
    m.excluded_minutes,
    m.excluded_face_to_face,
    m.excluded_non_clinical_role,
    m.excluded_before_consent,
    m.excluded_after_revocation,
    m.excluded_held_documentation,
    m.excluded_inpatient_stay,
    m.excluded_before_initiating_visit,
    m.excluded_voided,
    m.excluded_duplicate,
    m.excluded_unknown_patient_or_staff,
    m.activity_count,
    m.countable_activity_count,
    m.first_countable_date,
    m.last_countable_date,
    e.chronic_condition_count,
    -- the claim's diagnoses, primary first: a PCM claim's focus condition leads
    case when b.is_pcm and e.pcm_icd10 is not null then e.pcm_icd10 else e.qualifying_icd10 end as qualifying_icd10,
    e.pcm_focus_icd10,
    e.initiating_visit_date,
    e.initiating_encounter_id,
    e.eligible,
    e.evidence_gaps,
    b.code_set,
    b.billed_codes,
    b.billed_minutes,
    b.fee_schedule_amount,
    b.charge_amount,
    b.allowed_amount,
    b.expected_payment,
    b.patient_responsibility,
    case
        when b.code_set is null then null
        when getvariable('date_of_service_rule') = 'threshold_met' then b.threshold_met_date
        else last_day(m.service_month)
    end as date_of_service,
    f.timely_filing_deadline,
    f.timely_filing_warn_from,
    case
        when f.timely_filing_deadline is null then null
        when getvariable('as_of') > f.timely_filing_deadline then 'past'
        when getvariable('as_of') > f.timely_filing_warn_from then 'due_soon'
        else 'ok'
    end as timely_filing_status,
    case
        when b.code_set is not null then []::varchar[]
        else list_filter(list_concat(
            [case when getvariable('as_of') > f.timely_filing_deadline and fb.code_set is not null
                  then 'past_timely_filing: filing limit ' || strftime(f.timely_filing_deadline, '%Y-%m-%d') end],
            e.eligibility_reasons,
            [case when e.chronic_condition_count = 1 and not coalesce(c.any_set_qualifies, false)
                  then 'one_chronic_condition' end],
            [case when not c.minutes_suffice then c.below_threshold_reason end],
            coalesce(c.unpriced_reasons, []::varchar[])
        ), lambda r: r is not null)
    end as reasons_not_billed,
    c.next_threshold_minutes,
    c.minutes_to_next_threshold,
    -- as_of is the run's logical date, its day complete: with 5 grace days March closes on April 5
    getvariable('as_of') >= last_day(m.service_month) + getvariable('claim_grace_days') as month_closed,
    -- the month in progress tonight (reported as progress); a month in its grace days is neither
    date_trunc('month', getvariable('as_of'))::date = m.service_month
        and getvariable('as_of') < last_day(m.service_month) + getvariable('claim_grace_days') as is_open_month,
    getvariable('as_of') as as_of
from core.patient_month_minutes m
join core.eligibility e using (patient_id, service_month)
join filing f using (patient_id, service_month)
left join billed_sets fb using (patient_id, service_month)
left join billable_sets b using (patient_id, service_month)
left join choice_summary c using (patient_id, service_month)
left join core.billing_provider_map bp on bp.billing_npi = e.billing_npi
where in_build(m.patient_id, m.service_month);
