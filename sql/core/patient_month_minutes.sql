-- core.patient_month_minutes: one row per patient-month with any activity
-- version. Minutes never carry over between months. Pools:
--   practitioner_minutes   the billing practitioner's own countable time (99491, 99424)
--   clinical_staff_minutes clinical staff plus other practitioners (99426)
--   countable_minutes      both, each minute once (99490, 99487)
create or replace table core.patient_month_minutes as
select
    patient_id,
    service_month,
    coalesce(sum(countable_minutes) filter (where counted_as = 'clinical_staff'), 0)::integer as clinical_staff_minutes,
    coalesce(sum(countable_minutes) filter (where counted_as = 'practitioner'), 0)::integer as practitioner_minutes,
    -- part of clinical_staff_minutes: practitioners other than the billing one
    coalesce(sum(countable_minutes) filter (where counted_as = 'clinical_staff' and role_class = 'practitioner'), 0)::integer
        as other_practitioner_minutes,
    sum(countable_minutes)::integer as countable_minutes,
    sum(duration_minutes)::integer as logged_minutes,
    sum(excluded_minutes)::integer as excluded_minutes,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'face_to_face'), 0)::integer as excluded_face_to_face,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'non_clinical_role'), 0)::integer as excluded_non_clinical_role,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'before_consent'), 0)::integer as excluded_before_consent,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'after_revocation'), 0)::integer as excluded_after_revocation,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'held_documentation'), 0)::integer as excluded_held_documentation,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'inpatient_stay'), 0)::integer as excluded_inpatient_stay,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'before_initiating_visit'), 0)::integer
        as excluded_before_initiating_visit,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'voided'), 0)::integer as excluded_voided,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'duplicate'), 0)::integer as excluded_duplicate,
    coalesce(sum(excluded_minutes) filter (where exclusion_reason = 'unknown_patient_or_staff'), 0)::integer
        as excluded_unknown_patient_or_staff,
    count(*)::integer as activity_count,
    count(*) filter (where countable_minutes > 0)::integer as countable_activity_count,
    min(activity_date) filter (where countable_minutes > 0) as first_countable_date,
    max(activity_date) filter (where countable_minutes > 0) as last_countable_date
from core.activity_minutes
where in_build(patient_id, service_month)
group by patient_id, service_month;
