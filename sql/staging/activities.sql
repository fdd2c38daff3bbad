-- staging.activity_versions: the current version of every activity_id
-- (newest drop wins), voids included, with practice-local times and the
-- service month. version_drop/version_row point at the raw row: the drop where
-- this version was first stored (a later drop that repeats it unchanged stores
-- nothing). staging/incremental/activities.sql does the same for the keys a
-- nightly drop touches: change both together.
create or replace table staging.activity_versions as
with current_version as (
    select * exclude (_file, _run_id)
    from raw.activities
    qualify row_number() over (partition by activity_id order by _drop desc, _row_number desc) = 1
),
-- what a voided activity looked like before the void, for minutes attribution
last_active as (
    select activity_id, arg_max(duration_minutes, (_drop, _row_number)) as duration_minutes
    from raw.activities
    where status = 'active'
    group by activity_id
)
select
    v.activity_id,
    v.patient_id,
    v.staff_id,
    v.started_at,
    timezone(getvariable('practice_tz'), v.started_at) as started_at_local,
    timezone(getvariable('practice_tz'), v.started_at) + to_minutes(v.duration_minutes) as ended_at_local,
    date_trunc('month', timezone(getvariable('practice_tz'), v.started_at))::date as service_month,
    case when v.status = 'voided' then coalesce(a.duration_minutes, v.duration_minutes) else v.duration_minutes end
        as duration_minutes,
    v.activity_type,
    v.face_to_face,
    v.note,
    v.documented_at,
    timezone(getvariable('practice_tz'), v.documented_at) as documented_at_local,
    v.status,
    v._drop as version_drop,
    v._row_number as version_row
from current_version v
left join last_active a using (activity_id);

-- staging.activities: what the contract calls the current activities: voids
-- removed, and only rows whose patient and staff member are known.
create or replace table staging.activities as
select a.*
from staging.activity_versions a
semi join staging.patients p on p.patient_id = a.patient_id
semi join staging.staff s on s.staff_id = a.staff_id
where a.status = 'active';

-- Rows pointing at a patient or staff member no drop has described: held out
-- and reported until a later drop describes them.
create or replace table staging.rejected_rows as
select 'activities' as table_name, version_drop as drop_name, version_row as row_number,
       'patient_id' as column_name, 'unknown patient' as reason, activity_id as record_key
from staging.activity_versions a
where status = 'active' and not exists (select 1 from staging.patients p where p.patient_id = a.patient_id)
union all
select 'activities', version_drop, version_row, 'staff_id', 'unknown staff member', activity_id
from staging.activity_versions a
where status = 'active' and not exists (select 1 from staging.staff s where s.staff_id = a.staff_id)
union all
select t.table_name, t._drop, t._row_number, 'patient_id', 'unknown patient', t.record_key
from (
    select 'conditions' as table_name, _drop, _row_number, patient_id, patient_id || '|' || icd10_code as record_key
    from raw.conditions
    qualify row_number() over (partition by patient_id, icd10_code order by _drop desc, _row_number desc) = 1
    union all
    select 'consents', _drop, _row_number, patient_id, patient_id || '|' || consent_date
    from raw.consents
    qualify row_number() over (partition by patient_id, consent_date order by _drop desc, _row_number desc) = 1
    union all
    select 'care_plans', _drop, _row_number, patient_id, plan_id
    from raw.care_plans
    qualify row_number() over (partition by plan_id order by _drop desc, _row_number desc) = 1
    union all
    select 'encounters', _drop, _row_number, patient_id, encounter_id
    from raw.encounters
    qualify row_number() over (partition by encounter_id order by _drop desc, _row_number desc) = 1
) t
where not exists (select 1 from staging.patients p where p.patient_id = t.patient_id);
