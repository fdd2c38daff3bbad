-- touched_months: every patient-month whose core rows may differ from the last
-- minutes build. Variable new_drops lists the drops stored since that build
-- (ingest stores only new and changed rows, so these are the changes).
--   * an activity of a new drop touches its month, and so does every earlier
--     version of it (an amendment may move it to another day or patient) and
--     the row the last build made of it;
--   * a documentation hold that changed since the last build (an amendment,
--     an overlap with a new activity) touches its activity's months;
--   * a change to a patient, condition, consent, care plan or encounter can
--     change any month of its patient (eligibility, consent, initiating
--     visit): every month of every patient any version of the row named.
create or replace temp table touched_months as
with new_activities as (
    select activity_id from raw.activities where list_contains(getvariable('new_drops'), _drop)
),
activity_months as (
    select patient_id, date_trunc('month', timezone(getvariable('practice_tz'), started_at))::date as service_month
    from raw.activities semi join new_activities using (activity_id)
    union
    select patient_id, service_month from core.activity_minutes semi join new_activities using (activity_id)
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
),
hold_months as (
    select patient_id, service_month from staging.activity_versions semi join changed_holds using (activity_id)
    union
    select patient_id, service_month from core.activity_minutes semi join changed_holds using (activity_id)
),
new_care_plans as (
    select plan_id from raw.care_plans where list_contains(getvariable('new_drops'), _drop)
),
new_encounters as (
    select encounter_id from raw.encounters where list_contains(getvariable('new_drops'), _drop)
),
reference_patients as (
    select patient_id from raw.patients where list_contains(getvariable('new_drops'), _drop)
    union select patient_id from raw.conditions where list_contains(getvariable('new_drops'), _drop)
    union select patient_id from raw.consents where list_contains(getvariable('new_drops'), _drop)
    union select patient_id from raw.care_plans semi join new_care_plans using (plan_id)
    union select patient_id from raw.encounters semi join new_encounters using (encounter_id)
),
patient_months as (
    select patient_id, service_month from staging.activity_versions semi join reference_patients using (patient_id)
    union
    select patient_id, service_month from core.patient_month_minutes semi join reference_patients using (patient_id)
)
select * from activity_months
union select * from hold_months
union select * from patient_months;
