-- documented_before_activity (hold): a note written before the work it
-- describes began cannot be a record of that work.
select
    activity_id,
    drop_name,
    'documented_before_activity' as flag_code,
    'hold' as severity,
    format('documented {} minutes before the activity started',
           ceil((epoch(started_at) - epoch(documented_at)) / 60)::bigint) as message,
    'at or after the start' as threshold,
    greatest(duration_minutes, 0) as held_minutes
from quality_run_versions
where status = 'active'
  and documented_at < started_at
