-- implausible_duration (hold): under a minute, or longer than
-- documentation.max_activity_minutes for one sitting.
select
    activity_id,
    drop_name,
    'implausible_duration' as flag_code,
    'hold' as severity,
    format('duration of {} minutes', duration_minutes) as message,
    format('1 to {} minutes', getvariable('quality_max_activity_minutes')) as threshold,
    greatest(duration_minutes, 0) as held_minutes
from quality_run_versions
where status = 'active'
  and (duration_minutes < 1 or duration_minutes > getvariable('quality_max_activity_minutes'))
