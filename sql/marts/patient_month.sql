-- marts.patient_month: one row per patient per service month (the unit of
-- billing): minutes by kind, minutes excluded by reason, eligibility, the code
-- choice, what the ledger says was billed, and for a closed month that was not
-- billed, why, and an estimate of the payment left on the table.
-- This view is where the marts define core.patient_month's columns;
-- revenue_summary reads this view. threshold_worklist reads the few columns it
-- needs from core.patient_month itself, with the definitions used here (keep
-- the two in step), for the open and previous month only.
create or replace view marts.patient_month as
with patient_months as (    -- core.patient_month, column by column
    select
        patient_id::varchar as patient_id,
        service_month::date as service_month,
        coalesce(rules_year, year(service_month))::integer as rules_year,
        coalesce(month_closed, false) as month_closed,
        billing_npi,
        billing_provider_npi,
        billing_staff_id,
        coalesce(clinical_staff_minutes, 0)::integer as clinical_staff_minutes,
        coalesce(practitioner_minutes, 0)::integer as practitioner_minutes,
        coalesce(countable_minutes, 0)::integer as countable_minutes,
        coalesce(excluded_face_to_face, 0)::integer as excluded_face_to_face,
        coalesce(excluded_non_clinical_role, 0)::integer as excluded_non_clinical_role,
        coalesce(excluded_before_consent, 0)::integer as excluded_before_consent,
        coalesce(excluded_after_revocation, 0)::integer as excluded_after_revocation,
        coalesce(excluded_held_documentation, 0)::integer as excluded_held_documentation,
        coalesce(excluded_voided, 0)::integer as excluded_voided,
        coalesce(excluded_duplicate, 0)::integer as excluded_duplicate,
        coalesce(excluded_inpatient_stay, 0)::integer as excluded_inpatient_stay,
        coalesce(excluded_before_initiating_visit, 0)::integer as excluded_before_initiating_visit,
        chronic_condition_count::integer as chronic_condition_count,
        qualifying_icd10::varchar[] as qualifying_icd10,
        initiating_visit_date::date as initiating_visit_date,
        coalesce(eligible, false) as eligible,
        coalesce(evidence_gaps, []::varchar[])::varchar[] as evidence_gaps,
        code_set,
        nullif(trim(billed_codes), '') as codes,
        fee_schedule_amount::decimal(10, 2) as fee_schedule_amount,
        charge_amount::decimal(10, 2) as charge_amount,
        allowed_amount::decimal(10, 2) as allowed_amount,
        expected_payment::decimal(10, 2) as expected_payment,
        patient_responsibility::decimal(10, 2) as patient_responsibility,
        date_of_service::date as date_of_service,
        timely_filing_deadline::date as timely_filing_deadline,
        timely_filing_status::varchar as timely_filing_status,
        coalesce(reasons_not_billed, []::varchar[])::varchar[] as reasons_not_billed,
        next_threshold_minutes::integer as next_threshold_minutes,
        minutes_to_next_threshold::integer as minutes_to_next_threshold
    from core.patient_month
),
ledger as (                 -- the patient-month's current claim: its live one (production before
                            -- test), else its newest (rejected, waiting to be billed again)
    select l.patient_id, l.service_month, l.batch_id, l.claim_id, l.run_id as billed_run_id,
           l.committed_at as billed_at
    from billing.ledger l
    left join billing.live_claims lc on lc.claim_id = l.claim_id
    qualify row_number() over (partition by l.patient_id, l.service_month
                               order by lc.claim_id is not null desc, l.usage_indicator = 'P' desc,
                                        l.committed_at desc, l.claim_id desc) = 1
),
ledger_lines as (           -- what went out on the claim, base code first
    select claim_id,
           string_agg(cpt_code || case when units > 1 then 'x' || units else '' end, ' '
                      order by line_number, cpt_code) as billed_codes,
           sum(charge_amount)::decimal(10, 2) as billed_charge_amount,
           sum(allowed_amount)::decimal(10, 2) as billed_allowed_amount,
           sum(expected_payment)::decimal(10, 2) as billed_expected_payment,
           sum(patient_responsibility)::decimal(10, 2) as billed_patient_responsibility
    from billing.ledger_lines
    group by claim_id
),
review as (                 -- minutes that arrived after the month was billed
    select distinct patient_id, service_month from billing.review
),
withheld as (               -- tonight's claim edits that kept the month's claim out of its batch
    select patient_id, service_month, list(edit || ': ' || reason order by edit, reason) as withheld_reasons
    from billing.withheld_claims
    group by patient_id, service_month
),
practitioners as (
    select staff_id, any_value(full_name) as full_name from staging.staff group by staff_id
),
-- The base code's fee the rules engine used, per rules year: a line's rules year is
-- its patient-month's, which is its calendar year (core.eligibility) except where
-- core.patient_month says otherwise. Only those exceptions are joined, not every
-- patient-month of history (core.code_lines holds lines of patient-months only).
rules_year_exceptions as (
    select patient_id::varchar as patient_id, service_month::date as service_month, rules_year::integer as rules_year
    from core.patient_month
    where rules_year is not null and rules_year <> year(service_month)
),
observed_fees as (
    select coalesce(x.rules_year, year(cl.service_month))::integer as rules_year,
           mode(round(cl.fee_schedule_amount / cl.units, 2)) as fee
    from core.code_lines cl
    left join rules_year_exceptions x on x.patient_id = cl.patient_id and x.service_month = cl.service_month
    where cl.cpt_code = '99490' and cl.units > 0 and cl.fee_schedule_amount is not null
    group by all
),
reference_fees as (         -- the rules files' amount, for a year nothing was coded in yet
    select rules_year, max(fee) as fee from marts.fee_reference where cpt_code = '99490' group by rules_year
),
-- Each distinct reasons_not_billed list parsed once (a few hundred lists) rather than
-- once per patient-month: list lambdas and regexes were the view's costliest part.
reason_lists as (
    select
        *,
        -- for a list with one reason code: what follows its colon ('medicaid')
        nullif(trim(list_first(list_transform(
            list_filter(reasons_not_billed, lambda r: trim(split_part(r, ':', 1)) = reason_codes[1]),
            lambda r: case when strpos(r, ':') > 0 then substr(r, strpos(r, ':') + 1) else '' end))), '')
            as reason_detail
    from (
        select
            reasons_not_billed,
            list_sort(list_distinct(list_transform(reasons_not_billed, lambda r: trim(split_part(r, ':', 1)))))
                as reason_codes,
            -- the threshold a below_threshold reason names ('19 of 20 minutes'), else 99490's 20
            coalesce(
                try_cast(list_first(list_transform(
                    list_filter(reasons_not_billed, lambda r: r like 'below_threshold%'),
                    lambda r: nullif(regexp_extract(r, 'of\s+(\d+)', 1), ''))) as integer),
                20) as base_threshold
        from (select distinct coalesce(reasons_not_billed, []::varchar[])::varchar[] as reasons_not_billed
              from core.patient_month)
    )
),
classified as (
    select
        pm.*,
        rl.reason_codes,
        rl.base_threshold,
        rl.reason_detail,
        l.patient_id is not null as billed,
        l.batch_id, l.claim_id, l.billed_run_id, l.billed_at,
        ll.billed_codes, ll.billed_charge_amount, ll.billed_allowed_amount, ll.billed_expected_payment,
        ll.billed_patient_responsibility,
        r.patient_id is not null as needs_review,
        w.patient_id is not null and l.patient_id is null as withheld,
        case when l.patient_id is null then w.withheld_reasons end as withheld_reasons,
        s.full_name as billing_practitioner_name,
        coalesce(o.fee, f.fee)::decimal(10, 2) as base_code_fee
    from patient_months pm
    left join ledger l using (patient_id, service_month)
    left join ledger_lines ll on ll.claim_id = l.claim_id
    left join review r using (patient_id, service_month)
    left join withheld w using (patient_id, service_month)
    left join practitioners s on s.staff_id = pm.billing_staff_id
    left join observed_fees o on o.rules_year = pm.rules_year
    left join reference_fees f on f.rules_year = pm.rules_year
    left join reason_lists rl using (reasons_not_billed)
),
outcomes as (
    select
        *,
        case
            when billed then 'billed'
            when not month_closed then 'in_progress'
            when codes is not null and len(reason_codes) = 0 then 'billable'
            else 'not_billed'
        end as outcome,
        -- minutes the patient-month would have with held notes amended and
        -- time before a late consent counted: "otherwise billable" test
        countable_minutes + excluded_held_documentation + excluded_before_consent as recoverable_minutes
    from classified
),
left_on_table as (
    select
        *,
        case
            when outcome <> 'not_billed' then null
            when len(reason_codes) = 0 then 'unexplained'
            when len(reason_codes) > 1 then 'multiple_reasons'
            when reason_codes[1] = 'below_threshold'
                 and countable_minutes + excluded_held_documentation >= base_threshold then 'held_documentation'
            else reason_codes[1]
        end as left_on_table_reason,
        greatest(ceil((base_threshold - countable_minutes) / 5), 1)::integer as short_bucket
    from outcomes
)
select
    patient_id,
    service_month,
    rules_year,
    month_closed,
    billing_npi,
    billing_provider_npi,
    billing_staff_id,
    billing_practitioner_name,
    clinical_staff_minutes,
    practitioner_minutes,
    countable_minutes,
    excluded_face_to_face,
    excluded_non_clinical_role,
    excluded_before_consent,
    excluded_after_revocation,
    excluded_held_documentation,
    excluded_voided,
    excluded_duplicate,
    excluded_inpatient_stay,
    excluded_before_initiating_visit,
    excluded_face_to_face + excluded_non_clinical_role + excluded_before_consent + excluded_after_revocation
        + excluded_held_documentation + excluded_voided + excluded_duplicate + excluded_inpatient_stay
        + excluded_before_initiating_visit as excluded_minutes,
    chronic_condition_count,
    qualifying_icd10,
    initiating_visit_date,
    eligible,
    evidence_gaps,
    code_set,
    codes,
    fee_schedule_amount,
    charge_amount,
    allowed_amount,
    expected_payment,
    patient_responsibility,
    date_of_service,
    timely_filing_deadline,
    timely_filing_status,
    reasons_not_billed,
    reason_codes,
    next_threshold_minutes,
    minutes_to_next_threshold,
    outcome,
    billed,
    batch_id,
    claim_id,
    billed_run_id,
    billed_at,
    billed_codes,
    billed_charge_amount,
    billed_allowed_amount,
    billed_expected_payment,
    billed_patient_responsibility,
    needs_review,
    left_on_table_reason,
    case
        when left_on_table_reason = 'below_threshold' then       -- 5-minute buckets: '15-19 of 20 min'
            greatest(base_threshold - 5 * short_bucket, 0) || '-' || (base_threshold - 5 * short_bucket + 4)
            || ' of ' || base_threshold || ' min'
        when left_on_table_reason = 'held_documentation' then
            countable_minutes || ' countable + ' || excluded_held_documentation || ' held of ' || base_threshold || ' min'
        when left_on_table_reason = 'multiple_reasons' then array_to_string(reason_codes, ' + ')
        when left_on_table_reason is not null then reason_detail   -- one reason: what follows its colon
    end as left_on_table_detail,
    case when left_on_table_reason = 'below_threshold' then base_threshold - countable_minutes end as minutes_short,
    '99490' as base_code,
    base_code_fee,
    case
        when left_on_table_reason is null then null
        when left_on_table_reason in ('below_threshold', 'held_documentation') then base_code_fee
        when left_on_table_reason in ('multiple_reasons', 'unexplained') then 0.00
        when recoverable_minutes >= base_threshold then base_code_fee
        else 0.00
    end::decimal(10, 2) as estimated_left_on_table,
    withheld,
    coalesce(withheld_reasons, []::varchar[]) as withheld_reasons
from left_on_table
