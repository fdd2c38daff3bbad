-- overlap (hold): one staff member cannot spend the same minute on two
-- activities (any patients). Every activity in quality_overlap_scope that shares
-- time with another current activity of the same staff member is flagged, and
-- only the shared minutes are held: the minutes of this activity covered by any
-- other (overlapping others merged, so no minute is held twice).
with scope_span_per_staff as (
    select staff_id, min(started_at) as span_start, max(ended_at) as span_end
    from quality_overlap_scope
    group by staff_id
),
candidate_others as (
    select
        a.activity_id,
        a.staff_id,
        a.started_at,
        a.started_at + to_minutes(a.duration_minutes) as ended_at
    from staging.activities a
    join scope_span_per_staff s using (staff_id)
    where a.duration_minutes between 1 and getvariable('quality_max_activity_minutes')
      and a.started_at < s.span_end
      and a.started_at + to_minutes(a.duration_minutes) > s.span_start
),
-- day buckets turn the interval join into an equality join on staff + day
scope_days as (
    select *, unnest(range(floor(epoch(started_at) / 86400)::bigint, floor(epoch(ended_at) / 86400)::bigint + 1)) as day_number
    from quality_overlap_scope
),
other_days as (
    select *, unnest(range(floor(epoch(started_at) / 86400)::bigint, floor(epoch(ended_at) / 86400)::bigint + 1)) as day_number
    from candidate_others
),
overlapping_pairs as (
    select distinct
        s.activity_id,
        s.version_drop,
        s.duration_minutes,
        o.activity_id as other_activity_id,
        greatest(s.started_at, o.started_at) as shared_from,
        least(s.ended_at, o.ended_at) as shared_to
    from scope_days s
    join other_days o
      on o.staff_id = s.staff_id
     and o.day_number = s.day_number
    where o.activity_id <> s.activity_id
      and o.started_at < s.ended_at
      and s.started_at < o.ended_at
),
-- the shared stretches of one activity, merged where they overlap each other
stretch_starts as (
    select
        *,
        coalesce(shared_from > max(shared_to) over (
            partition by activity_id order by shared_from, shared_to, other_activity_id
            rows between unbounded preceding and 1 preceding), true) as starts_new_stretch
    from overlapping_pairs
),
numbered_stretches as (
    select
        *,
        sum(starts_new_stretch::integer) over (
            partition by activity_id order by shared_from, shared_to, other_activity_id
            rows unbounded preceding) as stretch_number
    from stretch_starts
),
merged_stretches as (
    select activity_id, stretch_number, min(shared_from) as stretch_from, max(shared_to) as stretch_to
    from numbered_stretches
    group by activity_id, stretch_number
),
covered_seconds_per_activity as (
    select activity_id, sum(epoch(stretch_to) - epoch(stretch_from)) as covered_seconds
    from merged_stretches
    group by activity_id
),
others_per_activity as (
    select
        activity_id,
        any_value(version_drop) as version_drop,
        any_value(duration_minutes) as duration_minutes,
        count(*) as other_count,
        list(other_activity_id order by other_activity_id) as other_activity_ids
    from overlapping_pairs
    group by activity_id
),
held_per_activity as (
    select
        o.*,
        least(o.duration_minutes, ceil(c.covered_seconds / 60))::integer as overlapped_minutes
    from others_per_activity o
    join covered_seconds_per_activity c using (activity_id)
)
select
    activity_id,
    version_drop as drop_name,
    'overlap' as flag_code,
    'hold' as severity,
    format('overlaps {} other activit{} of the same staff member ({}{}) for {} of its {} minutes',
           other_count,
           case when other_count = 1 then 'y' else 'ies' end,
           array_to_string(other_activity_ids[1:3], ', '),
           case when other_count > 3 then ', ...' else '' end,
           overlapped_minutes,
           duration_minutes) as message,
    'no overlap' as threshold,
    overlapped_minutes as held_minutes
from held_per_activity
