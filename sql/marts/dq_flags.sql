-- marts.dq_flags: one row per data-quality flag (quality.flags), with the
-- activity's patient, staff member and service month. Severity `hold` keeps
-- the activity's minutes out of billing until it is amended; `warn` does not.
-- resolved_at is set when a later check of the same version no longer finds the
-- flag (an overlap whose other activity was voided): history, no longer active.
create or replace view marts.dq_flags as
with flags as (
    select activity_id, drop_name, flag_code, severity, message, threshold, held_minutes, run_id, raised_at,
           resolved_at
    from quality.flags
),
-- Only flagged activities are looked up (semi joins): a few flags against years of
-- activities, rather than every activity grouped and then mostly thrown away.
activity_minutes as (       -- one row per activity (minutes may be split by how they counted)
    select activity_id, any_value(patient_id) as patient_id, any_value(staff_id) as staff_id,
           any_value(role_class) as role_class, any_value(service_month) as service_month,
           any_value(activity_date) as activity_date, max(duration_minutes) as duration_minutes
    from core.activity_minutes
    where activity_id in (select activity_id from quality.flags)
    group by activity_id
),
activities as (             -- staging, for an activity the minutes stage has not seen
    select activity_id, any_value(patient_id) as patient_id, any_value(staff_id) as staff_id,
           any_value(started_at_local) as started_at_local
    from staging.activities
    where activity_id in (select activity_id from quality.flags)
    group by activity_id
),
staff as (
    select staff_id, any_value(full_name) as full_name, any_value(role) as role, any_value(role_class) as role_class
    from staging.staff
    group by staff_id
)
select
    f.run_id,
    f.raised_at,
    f.drop_name,
    f.activity_id,
    f.flag_code,
    f.severity,
    f.message,
    f.threshold::varchar as threshold,
    coalesce(f.held_minutes, 0)::integer as held_minutes,
    coalesce(m.patient_id, a.patient_id) as patient_id,
    coalesce(m.staff_id, a.staff_id) as staff_id,
    s.full_name as staff_name,
    s.role as staff_role,
    coalesce(m.role_class, s.role_class) as role_class,
    coalesce(m.service_month, date_trunc('month', a.started_at_local)::date) as service_month,
    coalesce(m.activity_date, a.started_at_local::date) as activity_date,
    m.duration_minutes::integer as duration_minutes,
    f.resolved_at
from flags f
left join activity_minutes m using (activity_id)
left join activities a using (activity_id)
left join staff s on s.staff_id = coalesce(m.staff_id, a.staff_id)
