-- quality.staff_scorecard: per staff member and service month, how much of the
-- current documentation is flagged, by flag code, and how many minutes are held.
-- From current activities and the standing flags on their current versions.
create or replace table quality.staff_scorecard as
with current_activities as (
    select activity_id, version_drop, staff_id, service_month, duration_minutes
    from staging.activities
),
standing_flags as (
    select f.activity_id, f.flag_code
    from quality.flags f
    join current_activities c
      on c.activity_id = f.activity_id
     and c.version_drop = f.drop_name
    where f.resolved_at is null
),
flags_per_activity as (
    select
        activity_id,
        bool_or(flag_code = 'vague') as vague,
        bool_or(flag_code = 'late') as late,
        bool_or(flag_code = 'documented_before_activity') as documented_before_activity,
        bool_or(flag_code = 'implausible_duration') as implausible_duration,
        bool_or(flag_code = 'overlap') as overlap,
        bool_or(flag_code = 'future_dated') as future_dated
    from standing_flags
    group by activity_id
),
scored_activities as (
    select
        c.*,
        f.activity_id is not null as flagged,
        coalesce(f.vague, false) as vague,
        coalesce(f.late, false) as late,
        coalesce(f.documented_before_activity, false) as documented_before_activity,
        coalesce(f.implausible_duration, false) as implausible_duration,
        coalesce(f.overlap, false) as overlap,
        coalesce(f.future_dated, false) as future_dated,
        coalesce(h.held_minutes, 0) as held_minutes
    from current_activities c
    left join flags_per_activity f using (activity_id)
    left join quality.activity_holds h using (activity_id)
)
select
    a.staff_id,
    s.full_name,
    s.role,
    a.service_month,
    count(*) as entries,
    sum(a.duration_minutes) as minutes,
    count(*) filter (where a.flagged) as flagged_entries,
    round(avg(a.flagged::integer), 4) as share_flagged,
    round(avg(a.vague::integer), 4) as share_vague,
    round(avg(a.late::integer), 4) as share_late,
    round(avg(a.documented_before_activity::integer), 4) as share_documented_before_activity,
    round(avg(a.implausible_duration::integer), 4) as share_implausible_duration,
    round(avg(a.overlap::integer), 4) as share_overlap,
    round(avg(a.future_dated::integer), 4) as share_future_dated,
    sum(a.held_minutes) as held_minutes
from scored_activities a
left join staging.staff s using (staff_id)
group by a.staff_id, s.full_name, s.role, a.service_month;
