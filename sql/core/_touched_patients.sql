-- touched_patients: every patient whose core rows may differ from the last
-- minutes build. Variable new_drops lists the drops loaded since that build.
--   * any row of a new drop names its patient (raw keeps every version);
--   * an activity, care plan or encounter keyed by its own id may have moved
--     to another patient: every patient any version of a changed key named;
--   * a documentation hold that changed since the last build (an amendment,
--     an overlap with a new activity) names its activity's patients.
create or replace temp table touched_patients as
with new_activities as (
    select activity_id, patient_id from raw.activities where list_contains(getvariable('new_drops'), _drop)
),
new_care_plans as (
    select plan_id, patient_id from raw.care_plans where list_contains(getvariable('new_drops'), _drop)
),
new_encounters as (
    select encounter_id, patient_id from raw.encounters where list_contains(getvariable('new_drops'), _drop)
),
holds_now as (
    select activity_id, sum(greatest(held_minutes, 0))::integer as held_minutes
    from quality.activity_holds
    group by activity_id
),
changed_holds as (
    select activity_id
    from holds_now n
    full join core.holds_applied a using (activity_id)
    where n.held_minutes is distinct from a.held_minutes
)
select patient_id from new_activities
union select patient_id from raw.activities semi join new_activities using (activity_id)
union select patient_id from core.activity_minutes semi join new_activities using (activity_id)
union select patient_id from new_care_plans
union select patient_id from raw.care_plans semi join new_care_plans using (plan_id)
union select patient_id from new_encounters
union select patient_id from raw.encounters semi join new_encounters using (encounter_id)
union select patient_id from raw.patients where list_contains(getvariable('new_drops'), _drop)
union select patient_id from raw.conditions where list_contains(getvariable('new_drops'), _drop)
union select patient_id from raw.consents where list_contains(getvariable('new_drops'), _drop)
union select patient_id from staging.activity_versions semi join changed_holds using (activity_id)
union select patient_id from core.activity_minutes semi join changed_holds using (activity_id);
