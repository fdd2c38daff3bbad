-- quality_overlap_scope: the current activities whose overlap may have changed
-- in this run. A staff member's current activities that share time with the
-- span of any version, old or new, of an activity this run brings: an amendment
-- or a void can end an overlap as well as start one. Only these are rechecked;
-- the rest of history keeps its flags. Activities of implausible length are left
-- out: they are held whole already, and their times cannot be trusted to hold
-- someone else's minutes.
create or replace temp table quality_overlap_scope as
with touched_versions as (
    -- every version of the activities of this run (quality_run_activity_history)
    select staff_id, started_at, started_at + to_minutes(greatest(duration_minutes, 0)) as ended_at
    from quality_run_activity_history
),
touched_span_per_staff as (
    select staff_id, min(started_at) as span_start, max(ended_at) as span_end
    from touched_versions
    group by staff_id
),
plausible_current_activities as (
    select
        activity_id,
        version_drop,
        staff_id,
        started_at,
        started_at + to_minutes(duration_minutes) as ended_at,
        duration_minutes
    from staging.activities
    where duration_minutes between 1 and getvariable('quality_max_activity_minutes')
)
select a.*
from plausible_current_activities a
join touched_span_per_staff s using (staff_id)
where a.started_at < s.span_end
  and a.ended_at > s.span_start;
