-- quality_run_activity_history: every version, in any drop, of the activities
-- this run's drops bring: one pass over raw.activities for both the first
-- documentation below and the overlap scope (overlap_scope.sql).
create or replace temp table quality_run_activity_history as
select activity_id, _drop, staff_id, started_at, duration_minutes, documented_at
from raw.activities
semi join (
    select distinct activity_id
    from raw.activities
    where _drop in (select unnest(getvariable('quality_drops')))
) run_activities using (activity_id);

-- quality_run_versions: the activity versions this run brings, one per activity
-- and drop being checked (a drop that repeats an activity: its later row), with
-- when the activity ended, when it was first documented (an amendment carries
-- its own, later documented_at: lateness is judged on the first note), and when
-- the drop's day closed in practice time (the run's as-of day for a folder
-- whose name is not a date).
create or replace temp table quality_run_versions as
with drop_rows as (
    -- only what the rules read: a full-history run carries millions of these
    select activity_id, _drop, _row_number, staff_id, status, started_at, duration_minutes, note, documented_at
    from raw.activities
    where _drop in (select unnest(getvariable('quality_drops')))
),
version_rows as (
    select *
    from drop_rows
    qualify row_number() over (partition by activity_id, _drop order by _row_number desc) = 1
),
first_documentation as (
    select v.activity_id, v._drop, min(r.documented_at) as first_documented_at
    from version_rows v
    join quality_run_activity_history r
      on r.activity_id = v.activity_id
     and r._drop <= v._drop
    group by v.activity_id, v._drop
)
select
    activity_id,
    _drop as drop_name,
    staff_id,
    status,
    started_at,
    started_at + to_minutes(duration_minutes) as ended_at,
    duration_minutes,
    note,
    documented_at,
    f.first_documented_at,
    coalesce(try_strptime(left(_drop, 10), '%Y-%m-%d')::date, getvariable('quality_as_of')) as drop_date,
    coalesce(
        drop_closes_at(_drop),
        timezone(getvariable('practice_tz'), (getvariable('quality_as_of') + 1)::timestamp)
    ) as drop_closes_at
from version_rows
join first_documentation f using (activity_id, _drop);
