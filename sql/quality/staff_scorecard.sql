-- quality.staff_scorecard: per staff member and service month, how much of the
-- current documentation is flagged, by flag code, and how many minutes are held.
-- From current activities and the standing flags on their current versions.
-- Rebuilt every run, from one pass over the current activities (entries and
-- minutes) and the few flagged ones (shares and holds), so that it costs little
-- more than a scan however long the history.
create or replace table quality.staff_scorecard as
with current_activities as not materialized (  -- two cheap scans beat materialising millions of rows
    select activity_id, version_drop, staff_id, service_month, duration_minutes
    from staging.activities
),
entries_per_staff_month as (
    select staff_id, service_month, count(*) as entries, sum(duration_minutes) as minutes
    from current_activities
    group by staff_id, service_month
),
standing_flags as (
    select f.activity_id, f.flag_code, c.staff_id, c.service_month
    from quality.flags f
    join current_activities c
      on c.activity_id = f.activity_id
     and c.version_drop = f.drop_name
    where f.resolved_at is null
),
flagged_activities as (
    select
        activity_id,
        staff_id,
        service_month,
        bool_or(flag_code = 'vague') as vague,
        bool_or(flag_code = 'late') as late,
        bool_or(flag_code = 'documented_before_activity') as documented_before_activity,
        bool_or(flag_code = 'implausible_duration') as implausible_duration,
        bool_or(flag_code = 'overlap') as overlap,
        bool_or(flag_code = 'future_dated') as future_dated
    from standing_flags
    group by activity_id, staff_id, service_month
),
-- held minutes come from hold flags, so only flagged activities have any
flags_per_staff_month as (
    select
        f.staff_id,
        f.service_month,
        count(*) as flagged_entries,
        count(*) filter (where f.vague) as vague,
        count(*) filter (where f.late) as late,
        count(*) filter (where f.documented_before_activity) as documented_before_activity,
        count(*) filter (where f.implausible_duration) as implausible_duration,
        count(*) filter (where f.overlap) as overlap,
        count(*) filter (where f.future_dated) as future_dated,
        sum(coalesce(h.held_minutes, 0)) as held_minutes
    from flagged_activities f
    left join quality.activity_holds h using (activity_id)
    group by f.staff_id, f.service_month
)
select
    e.staff_id,
    s.full_name,
    s.role,
    e.service_month,
    e.entries,
    e.minutes,
    coalesce(f.flagged_entries, 0) as flagged_entries,
    round(coalesce(f.flagged_entries, 0)::double / e.entries, 4) as share_flagged,
    round(coalesce(f.vague, 0)::double / e.entries, 4) as share_vague,
    round(coalesce(f.late, 0)::double / e.entries, 4) as share_late,
    round(coalesce(f.documented_before_activity, 0)::double / e.entries, 4) as share_documented_before_activity,
    round(coalesce(f.implausible_duration, 0)::double / e.entries, 4) as share_implausible_duration,
    round(coalesce(f.overlap, 0)::double / e.entries, 4) as share_overlap,
    round(coalesce(f.future_dated, 0)::double / e.entries, 4) as share_future_dated,
    coalesce(f.held_minutes, 0) as held_minutes
from entries_per_staff_month e
left join flags_per_staff_month f
       on f.staff_id is not distinct from e.staff_id
      and f.service_month is not distinct from e.service_month
left join staging.staff s on s.staff_id = e.staff_id;
