-- staging.activity_versions: the current version of every activity_id in
-- scope (newest drop wins), voids included, with practice-local times and the
-- service month. version_drop/version_row point at the raw row: the drop where
-- this version was first stored (a later drop that repeats it unchanged stores
-- nothing). staging.activities: what the contract calls the current
-- activities: voids removed, and only rows whose patient and staff member are
-- known; the others wait in staging.rejected_rows. For the keys in scope
-- (_schema.sql).
create or replace temp table current_activity_versions as
with raw_rows as (
    select * exclude (_file, _run_id)
    from raw.activities
    where in_scope(activity_id)
),
current_version as (
    select *
    from raw_rows
    qualify row_number() over (partition by activity_id order by _drop desc, _row_number desc) = 1
),
-- what a voided activity looked like before the void, for minutes attribution
last_active as (
    select activity_id, arg_max(duration_minutes, (_drop, _row_number)) as duration_minutes
    from raw_rows
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

create table if not exists staging.activity_versions as select * from current_activity_versions limit 0;
create table if not exists staging.activities as select * from current_activity_versions limit 0;

delete from staging.activity_versions where in_scope(activity_id);

insert into staging.activity_versions by name
select * from current_activity_versions;

delete from staging.activities where in_scope(activity_id);

insert into staging.activities by name
select a.*
from current_activity_versions a
semi join staging.patients p on p.patient_id = a.patient_id
semi join staging.staff s on s.staff_id = a.staff_id
where a.status = 'active';

delete from staging.rejected_rows where table_name = 'activities' and in_scope_record(record_key);

insert into staging.rejected_rows by name
select 'activities' as table_name, version_drop as drop_name, version_row as row_number,
       'patient_id' as column_name, 'unknown patient' as reason, record_key(activity_id) as record_key
from current_activity_versions a
where status = 'active' and not exists (select 1 from staging.patients p where p.patient_id = a.patient_id)
union all
select 'activities', version_drop, version_row, 'staff_id', 'unknown staff member', record_key(activity_id)
from current_activity_versions a
where status = 'active' and not exists (select 1 from staging.staff s where s.staff_id = a.staff_id);

drop table current_activity_versions;
