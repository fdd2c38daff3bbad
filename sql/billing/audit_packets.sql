-- The audit packet of each batch claim whose audit_ordinal is between $2 and
-- $3, as JSON text: the activity log behind the claim, the eligibility
-- evidence and the codes with their minutes. $1 = the batch id.
-- {rules_verdict} is filled in by transforms/billing/batch.py: the rules stage's
-- own verdict (core.eligibility), whatever columns it carries; {initiating_encounter}
-- the encounter the rules stage found initiated care management (the first
-- qualifying visit by the billing practitioner, core.month_consent).
-- Dates as YYYY-MM-DD, local timestamps as YYYY-MM-DDTHH:MM:SS, amounts as
-- strings (exact decimals), absent values as null.
with chunk as (
    select * from batch_claims where audit_ordinal between $2 and $3
),
codes as (
    select l.claim_id,
           '[' || string_agg(json_object('cpt_code', l.cpt_code, 'units', l.units, 'minutes', l.minutes,
                            'charge_amount', l.charge_amount::varchar,
                            'allowed_amount', l.allowed_amount::varchar,
                            'expected_payment', l.expected_payment::varchar,
                            'patient_responsibility', l.patient_responsibility::varchar,
                            'date_of_service', l.date_of_service, 'icd10_codes', l.icd10_codes)::varchar, ','
                order by l.line_number, l.cpt_code) || ']' as items
    from chunk b join claimable_lines l using (claim_id)
    group by l.claim_id
),
activities as (
    select b.claim_id,
           '[' || string_agg(json_object('activity_id', am.activity_id, 'date', a.started_at_local::date,
                            'started_at', iso_local(a.started_at_local), 'minutes', am.duration_minutes,
                            'countable_minutes', am.countable_minutes, 'counted_as', am.counted_as,
                            'excluded_minutes', am.excluded_minutes, 'exclusion_reason', am.exclusion_reason,
                            'staff_id', am.staff_id, 'staff_name', s.full_name, 'staff_role', s.role,
                            'role_class', coalesce(am.role_class, s.role_class), 'staff_npi', s.npi,
                            'staff_credential', s.credential,
                            'activity_type', a.activity_type, 'face_to_face', a.face_to_face, 'note', a.note,
                            'documented_at', iso_local(a.documented_at_local))::varchar, ','
                order by a.started_at_local, am.activity_id) || ']' as items
    from chunk b
    join core.activity_minutes am using (patient_id, service_month)
    left join staging.activity_versions a using (activity_id)
    left join staging.staff s on s.staff_id = am.staff_id
    group by b.claim_id
),
conditions as (
    select b.claim_id,
           '[' || string_agg(json_object('icd10_code', c.icd10_code, 'description', c.description, 'onset_date', c.onset_date,
                            'resolved_date', c.resolved_date, 'chronic', c.chronic,
                            'qualifying', list_contains(b.qualifying_codes, c.icd10_code))::varchar, ','
                order by list_contains(b.qualifying_codes, c.icd10_code) desc, c.icd10_code) || ']' as items
    from chunk b join staging.conditions c using (patient_id)
    group by b.claim_id
),
consents as (
    select b.claim_id,
           '[' || string_agg(json_object('consent_date', c.consent_date, 'method', c.method, 'billing_npi', c.billing_npi,
                            'revoked_date', c.revoked_date, 'obtained_by', c.obtained_by,
                            'elements_explained', c.elements_explained)::varchar, ','
                order by c.consent_date) || ']' as items
    from chunk b join staging.consents c using (patient_id)
    group by b.claim_id
),
care_plans as (
    select b.claim_id,
           '[' || string_agg(json_object('plan_id', p.plan_id, 'established_date', p.established_date,
                            'revised_date', p.revised_date, 'revision', p.revision, 'complexity', p.complexity,
                            'shared_with_patient_date', p.shared_with_patient_date,
                            'focus_icd10', p.focus_icd10, 'goals', p.goals)::varchar, ','
                order by p.established_date, p.plan_id) || ']' as items
    from chunk b join staging.care_plans p using (patient_id)
    where p.established_date <= last_day(b.service_month)
    group by b.claim_id
),
encounters as (
    select b.claim_id,
           '[' || string_agg(json_object('encounter_id', e.encounter_id, 'encounter_date', e.encounter_date,
                            'cpt_code', e.cpt_code, 'rendering_npi', e.rendering_npi,
                            'place_of_service', e.place_of_service, 'discharge_date', e.discharge_date)::varchar, ','
                order by e.encounter_date desc, e.encounter_id) || ']' as items
    from chunk b join staging.encounters e using (patient_id)
    where e.encounter_date <= last_day(b.service_month)
      and e.encounter_date >= b.service_month - interval 12 month
    group by b.claim_id
),
initiating_visit as (
    select i.claim_id,
           json_object('encounter_id', e.encounter_id, 'encounter_date', e.encounter_date,
                       'cpt_code', e.cpt_code, 'rendering_npi', e.rendering_npi) as item
    from ({initiating_encounter}) i
    join staging.encounters e on e.encounter_id = i.encounter_id
),
rules_verdict as (
    {rules_verdict}
)
select
    b.claim_id,
    -- assembled as text: each part is JSON text already (re-parsing it would cost more than the rest)
    left(head, length(head) - 1)
        || ',"codes":' || coalesce(codes.items, '[]')
        || ',"activities":' || coalesce(activities.items, '[]')
        || ',"eligibility":{"conditions":' || coalesce(conditions.items, '[]')
        || ',"consents":' || coalesce(consents.items, '[]')
        || ',"care_plans":' || coalesce(care_plans.items, '[]')
        || ',"encounters":' || coalesce(encounters.items, '[]')
        || ',"initiating_visit":' || coalesce(initiating_visit.item::varchar, 'null')
        || coalesce(',"rules_verdict":' || rules_verdict.item::varchar, '')
        || '}}' || chr(10) as packet
from (select *, json_object(
          'batch_id', $1, 'claim_id', claim_id, 'patient_id', patient_id,
          'service_month', strftime(service_month, '%Y-%m'), 'billing_npi', billing_npi,
          'billing_provider_npi', billing_provider_npi,
          'minutes', json_object('countable', countable_minutes, 'clinical_staff', clinical_staff_minutes,
                                 'practitioner', practitioner_minutes))::varchar as head
      from chunk) b
left join codes using (claim_id)
left join activities using (claim_id)
left join conditions using (claim_id)
left join consents using (claim_id)
left join care_plans using (claim_id)
left join encounters using (claim_id)
left join initiating_visit using (claim_id)
left join rules_verdict using (claim_id)
order by b.claim_id;
