-- quality.activity_holds: minutes of each activity kept out of billing, from
-- the standing hold flags on its current version only. A later drop that amends
-- the activity so it passes has no hold flag on the new version, which clears
-- the hold; quality.flags keeps the history. The rules engine subtracts
-- held_minutes from the countable minutes. Rebuilt every run.
create or replace table quality.activity_holds as
with current_versions as not materialized (
    select activity_id, version_drop, duration_minutes
    from staging.activity_versions
    where status = 'active'
),
standing_holds as (
    select f.activity_id, f.flag_code, f.held_minutes, c.duration_minutes
    from quality.flags f
    join current_versions c
      on c.activity_id = f.activity_id
     and c.version_drop = f.drop_name
    where f.severity = 'hold'
      and f.resolved_at is null
)
select
    activity_id,
    -- a hold is the whole activity except for an overlap; never more than its duration
    greatest(least(max(held_minutes), any_value(duration_minutes)), 0)::integer as held_minutes,
    string_agg(distinct flag_code, ',' order by flag_code) as flag_codes
from standing_holds
group by activity_id;
