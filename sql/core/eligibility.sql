-- core.eligibility: one row per patient-month, every condition for billing
-- anything that month that does not depend on minutes. The rules of the
-- service month's calendar year apply (core.rules_*). eligibility_reasons lists
-- every condition that fails; eligible = none fails.
create or replace table core.eligibility as
with patient_months as (
    select
        m.patient_id,
        m.service_month,
        last_day(m.service_month) as month_end,
        year(m.service_month)::integer as rules_year,
        mc.consent_status,
        mc.billing_npi,
        mc.billing_staff_id,
        mc.first_consent_date,
        p.patient_id is not null as is_known_patient,
        p.primary_payer,
        y.rules_year is not null as has_rules,
        y.initiating_lookback_months
    from core.patient_month_minutes m
    join core.month_consent mc using (patient_id, service_month)
    left join staging.patients p on p.patient_id = m.patient_id
    left join core.rules_years y on y.rules_year = year(m.service_month)
    where in_build(m.patient_id, m.service_month)
),
active_conditions as (
    -- active in the month: begun by its end, not resolved before its start
    select
        pm.patient_id,
        pm.service_month,
        c.icd10_code,
        c.onset_date,
        c.chronic,
        l.category as listed_category
    from patient_months pm
    join staging.conditions c
        on c.patient_id = pm.patient_id
        and (c.onset_date is null or c.onset_date <= pm.month_end)
        and (c.resolved_date is null or c.resolved_date >= pm.service_month)
    left join core.rules_chronic_icd10 l
        on l.rules_year = pm.rules_year and starts_with(c.icd10_code, l.icd10_prefix)
    -- the most specific listed prefix wins
    qualify row_number() over (
        partition by pm.patient_id, pm.service_month, c.icd10_code order by length(l.icd10_prefix) desc nulls last
    ) = 1
),
chronic_conditions as (
    -- the export's chronic flag wins over the list. Two codes of one disease
    -- (E11.9 and E11.65) are one condition: count categories, not codes.
    select
        patient_id,
        service_month,
        count(distinct coalesce(listed_category, left(icd10_code, 3)))::integer as chronic_condition_count,
        -- primary first: the longest-standing condition, then the code
        list(icd10_code order by onset_date nulls last, icd10_code) as qualifying_icd10
    from active_conditions
    where coalesce(chronic, listed_category is not null)
    group by all
),
care_plans as (
    select
        pm.patient_id,
        pm.service_month,
        bool_or(cp.established_date <= pm.month_end) as has_care_plan,
        -- complex CCM: moderate/high complexity MDM at an establishment or a
        -- substantial revision of the care plan in this very month
        bool_or(
            cp.complexity = 'complex' and (
                cp.established_date between pm.service_month and pm.month_end
                or (cp.revision = 'substantial' and cp.revised_date between pm.service_month and pm.month_end)
            )
        ) as has_complex_care_plan_in_month
    from patient_months pm
    join staging.care_plans cp on cp.patient_id = pm.patient_id
    group by all
),
initiating_visits as (
    -- by the billing practitioner, from lookback_months before care management
    -- started (the first accepted consent) up to the month end
    select pm.patient_id, pm.service_month, max(e.encounter_date) as initiating_visit_date
    from patient_months pm
    join staging.encounters e
        on e.patient_id = pm.patient_id
        and e.rendering_npi = pm.billing_npi
        and e.encounter_date between (pm.first_consent_date - to_months(pm.initiating_lookback_months))::date
                                 and pm.month_end
    join core.rules_codes r
        on r.rules_year = pm.rules_year and r.purpose = 'initiating_visit' and r.cpt_code = e.cpt_code
    group by all
),
conflicting_services as (
    -- e.g. hospice/home health care-plan oversight or ESRD monthly services
    -- billed by the same practitioner in the month
    select pm.patient_id, pm.service_month, list(distinct e.cpt_code order by e.cpt_code) as conflicting_codes
    from patient_months pm
    join staging.encounters e
        on e.patient_id = pm.patient_id
        and e.rendering_npi = pm.billing_npi
        and e.encounter_date between pm.service_month and pm.month_end
    join core.rules_codes r
        on r.rules_year = pm.rules_year and r.purpose = 'conflicting_service' and r.cpt_code = e.cpt_code
    group by all
),
checked as (
    select
        pm.*,
        coalesce(cc.chronic_condition_count, 0) as chronic_condition_count,
        coalesce(cc.qualifying_icd10, []::varchar[]) as qualifying_icd10,
        coalesce(cp.has_care_plan, false) as has_care_plan,
        coalesce(cp.has_complex_care_plan_in_month, false) as has_complex_care_plan_in_month,
        iv.initiating_visit_date,
        cs.conflicting_codes
    from patient_months pm
    left join chronic_conditions cc using (patient_id, service_month)
    left join care_plans cp using (patient_id, service_month)
    left join initiating_visits iv using (patient_id, service_month)
    left join conflicting_services cs using (patient_id, service_month)
)
select
    patient_id,
    service_month,
    rules_year,
    has_rules,
    is_known_patient,
    primary_payer,
    consent_status,
    billing_npi,
    billing_staff_id,
    first_consent_date,
    chronic_condition_count,
    qualifying_icd10,
    has_care_plan,
    has_complex_care_plan_in_month,
    initiating_visit_date,
    conflicting_codes,
    -- a patient no drop has described yet: nothing else can be judged
    case when not is_known_patient then ['unknown_patient'] else list_filter([
        case when primary_payer <> 'medicare_part_b' then 'not_medicare_part_b: ' || primary_payer end,
        case when not has_rules then 'no_rules_for_year: ' || rules_year end,
        case when consent_status <> 'ok' then consent_status end,
        -- the billing practitioner and their initiating visit are judged under a valid consent only
        case when consent_status = 'ok' and billing_staff_id is null then 'no_billing_practitioner' end,
        case when has_rules and chronic_condition_count = 0 then 'no_chronic_conditions' end,
        case when not has_care_plan then 'no_care_plan' end,
        case when consent_status = 'ok' and has_rules and initiating_visit_date is null then 'no_initiating_visit' end,
        case when conflicting_codes is not null then 'conflicting_service: ' || array_to_string(conflicting_codes, ' ') end
    ], lambda r: r is not null) end as eligibility_reasons,
    len(eligibility_reasons) = 0 as eligible
from checked;
