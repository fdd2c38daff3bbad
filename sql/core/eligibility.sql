-- core.eligibility: one row per patient-month, every condition for billing
-- anything that month that does not depend on minutes. The rules of the
-- service month's calendar year apply (core.rules_*). eligibility_reasons lists
-- every condition that fails; eligible = none fails.
-- Evidence an auditor checks (care plan shared, consent elements, who obtained
-- the consent, staff credential and supervisor, care plan goals) is judged only
-- where the row's file carried the column (_absent_columns): missing there, it
-- is a hold (a reason) or a warning (evidence_gaps) by configuration (variable
-- evidence_holds lists the rules that hold); a column the export lacks is an
-- evidence gap ('not_exported: <table>.<column>') and never holds.
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
        mc.care_start_date,
        mc.initiating_visit_date,
        mc.initiating_encounter_id,
        mc.consent_obtained_by,
        mc.consent_elements_explained,
        mc.consent_absent_columns,
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
        -- a copy given to the patient by the month end; judged only where exported
        coalesce(bool_or(cp.established_date <= pm.month_end and cp.shared_with_patient_date <= pm.month_end),
                 false) as plan_shared,
        coalesce(bool_or(cp.established_date <= pm.month_end
                         and not coalesce(list_contains(cp._absent_columns, 'shared_with_patient_date'), true)), false)
            as shared_exported,
        coalesce(bool_or(cp.established_date <= pm.month_end and nullif(trim(cp.goals), '') is not null), false)
            as plan_goals,
        coalesce(bool_or(cp.established_date <= pm.month_end
                         and not coalesce(list_contains(cp._absent_columns, 'goals'), true)), false) as goals_exported,
        -- the condition a PCM plan targets: the newest plan in effect that names one
        arg_max(cp.focus_icd10, (cp.established_date, cp.plan_id))
            filter (where cp.established_date <= pm.month_end and cp.focus_icd10 is not null) as plan_focus_icd10,
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
conflicting_services as (
    -- services that rule out CCM/PCM that month by the same practitioner (an
    -- encounter without a rendering NPI may be theirs: it counts), one reason per
    -- group of the rules file (conflicting_service, apcm_in_month, ...)
    select pm.patient_id, pm.service_month,
           list(r.detail || ': ' || r.codes order by r.detail) as conflicting_reasons,
           flatten(list(r.code_list order by r.detail)) as conflicting_codes
    from patient_months pm
    join (
        select pm.patient_id, pm.service_month, r.detail,
               string_agg(distinct e.cpt_code, ' ' order by e.cpt_code) as codes,
               list(distinct e.cpt_code order by e.cpt_code) as code_list
        from patient_months pm
        join staging.encounters e
            on e.patient_id = pm.patient_id
            and (e.rendering_npi is null or e.rendering_npi = pm.billing_npi)
            and e.encounter_date between pm.service_month and pm.month_end
        join core.rules_codes r
            on r.rules_year = pm.rules_year and r.purpose = 'conflicting_service' and r.cpt_code = e.cpt_code
        group by all
    ) r using (patient_id, service_month)
    group by all
),
pcm_focus as (
    -- a plan's focus names an active condition of the patient (E11 names E11.65)
    select cp.patient_id, cp.service_month, cp.plan_focus_icd10 as pcm_focus_icd10,
           list(distinct ac.icd10_code order by ac.icd10_code) as focus_icd10_codes
    from care_plans cp
    join active_conditions ac
        on ac.patient_id = cp.patient_id and ac.service_month = cp.service_month
        and starts_with(ac.icd10_code, cp.plan_focus_icd10)
    group by all
),
staff_evidence as (
    -- everyone whose minutes count this month: their credential (and, for
    -- clinical staff, the practitioner supervising them) where the export carries it
    select
        a.patient_id,
        a.service_month,
        list(distinct s.staff_id order by s.staff_id) filter (
            where nullif(trim(s.credential), '') is null
              and not coalesce(list_contains(s._absent_columns, 'credential'), true)) as staff_without_credential,
        bool_or(coalesce(list_contains(s._absent_columns, 'credential'), true)) as credential_not_exported,
        list(distinct s.staff_id order by s.staff_id) filter (
            where s.role_class = 'clinical_staff' and nullif(trim(s.supervising_npi), '') is null
              and not coalesce(list_contains(s._absent_columns, 'supervising_npi'), true)) as staff_without_supervisor,
        bool_or(s.role_class = 'clinical_staff'
                and coalesce(list_contains(s._absent_columns, 'supervising_npi'), true)) as supervisor_not_exported
    from core.activity_minutes a
    join staging.staff s on s.staff_id = a.staff_id
    where a.countable_minutes > 0 and in_build(a.patient_id, a.service_month)
    group by all
),
consent_evidence as (
    select
        pm.patient_id,
        pm.service_month,
        list_filter(['availability', 'cost_sharing', 'one_practitioner', 'right_to_stop'],
                    lambda e: not list_contains(string_split(coalesce(pm.consent_elements_explained, ''), ';'), e))
            as consent_elements_missing,
        coalesce(list_contains(pm.consent_absent_columns, 'elements_explained'), true) as elements_not_exported,
        coalesce(list_contains(pm.consent_absent_columns, 'obtained_by'), true) as obtained_by_not_exported,
        case
            when pm.consent_obtained_by is null then 'consent_obtained_by_missing'
            when s.staff_id is null then 'consent_obtained_by_unknown: ' || pm.consent_obtained_by
        end as obtained_by_problem
    from patient_months pm
    left join staging.staff s on s.staff_id = pm.consent_obtained_by
    where pm.consent_status = 'ok'
),
checked as (
    select
        pm.*,
        coalesce(cc.chronic_condition_count, 0) as chronic_condition_count,
        coalesce(cc.qualifying_icd10, []::varchar[]) as qualifying_icd10,
        coalesce(cp.has_care_plan, false) as has_care_plan,
        coalesce(cp.has_complex_care_plan_in_month, false) as has_complex_care_plan_in_month,
        cs.conflicting_codes,
        cs.conflicting_reasons,
        pf.pcm_focus_icd10,
        -- a PCM claim's diagnoses: the focus condition first, then the chronic ones
        case when pf.pcm_focus_icd10 is not null
             then list_filter(list_concat(pf.focus_icd10_codes, coalesce(cc.qualifying_icd10, []::varchar[])),
                              lambda code, i: list_position(
                                  list_concat(pf.focus_icd10_codes, coalesce(cc.qualifying_icd10, []::varchar[])),
                                  code) = i)
        end as pcm_icd10,
        -- evidence findings, each [rule, finding]: held or warned by configuration
        list_filter([
            case when cp.has_care_plan and cp.shared_exported and not cp.plan_shared
                 then ['care_plan_shared', 'care_plan_not_shared'] end,
            case when cp.has_care_plan and cp.goals_exported and not cp.plan_goals
                 then ['care_plan_goals', 'care_plan_goals_missing'] end,
            case when ce.patient_id is not null and not ce.elements_not_exported and len(ce.consent_elements_missing) > 0
                 then ['consent_elements', 'consent_elements_missing: '
                                           || array_to_string(ce.consent_elements_missing, ' ')] end,
            case when ce.patient_id is not null and not ce.obtained_by_not_exported and ce.obtained_by_problem is not null
                 then ['consent_obtained_by', ce.obtained_by_problem] end,
            case when len(se.staff_without_credential) > 0
                 then ['staff_credential', 'staff_credential_missing: ' || array_to_string(se.staff_without_credential, ' ')] end,
            case when len(se.staff_without_supervisor) > 0
                 then ['staff_supervising_npi', 'staff_supervising_npi_missing: '
                                                || array_to_string(se.staff_without_supervisor, ' ')] end
        ], lambda f: f is not null) as evidence_findings,
        list_filter([
            case when cp.has_care_plan and not cp.shared_exported then 'not_exported: care_plans.shared_with_patient_date' end,
            case when cp.has_care_plan and not cp.goals_exported then 'not_exported: care_plans.goals' end,
            case when ce.patient_id is not null and ce.elements_not_exported then 'not_exported: consents.elements_explained' end,
            case when ce.patient_id is not null and ce.obtained_by_not_exported then 'not_exported: consents.obtained_by' end,
            case when se.credential_not_exported then 'not_exported: staff.credential' end,
            case when se.supervisor_not_exported then 'not_exported: staff.supervising_npi' end,
            case when cp.plan_focus_icd10 is not null and pf.pcm_focus_icd10 is null
                 then 'care_plan_focus_not_active: ' || cp.plan_focus_icd10 end
        ], lambda g: g is not null) as evidence_not_judged
    from patient_months pm
    left join chronic_conditions cc using (patient_id, service_month)
    left join care_plans cp using (patient_id, service_month)
    left join conflicting_services cs using (patient_id, service_month)
    left join pcm_focus pf using (patient_id, service_month)
    left join staff_evidence se using (patient_id, service_month)
    left join consent_evidence ce using (patient_id, service_month)
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
    care_start_date,
    initiating_visit_date,
    initiating_encounter_id,
    conflicting_codes,
    pcm_focus_icd10,
    pcm_focus_icd10 is not null as has_pcm_focus,
    pcm_icd10,
    -- warnings and what could not be judged: the month bills, the gap is reported
    list_concat(
        list_transform(list_filter(evidence_findings, lambda f: not list_contains(getvariable('evidence_holds'), f[1])),
                       lambda f: f[2]),
        evidence_not_judged) as evidence_gaps,
    -- a patient no drop has described yet: nothing else can be judged
    case when not is_known_patient then ['unknown_patient'] else list_filter([
        case when primary_payer <> 'medicare_part_b' then 'not_medicare_part_b: ' || primary_payer end,
        case when not has_rules then 'no_rules_for_year: ' || rules_year end,
        case when consent_status <> 'ok' then consent_status end,
        -- the billing practitioner and their initiating visit are judged under a valid consent only
        case when consent_status = 'ok' and billing_staff_id is null then 'no_billing_practitioner' end,
        -- a PCM plan's focus condition qualifies by itself (PCM territory)
        case when has_rules and chronic_condition_count = 0 and pcm_focus_icd10 is null then 'no_chronic_conditions' end,
        case when not has_care_plan then 'no_care_plan' end,
        case when consent_status = 'ok' and has_rules and initiating_visit_date is null then 'no_initiating_visit' end
    ], lambda r: r is not null)
    || coalesce(conflicting_reasons, []::varchar[])
    || list_transform(list_filter(evidence_findings, lambda f: list_contains(getvariable('evidence_holds'), f[1])),
                      lambda f: f[2]) end as eligibility_reasons,
    len(eligibility_reasons) = 0 as eligible
from checked;
