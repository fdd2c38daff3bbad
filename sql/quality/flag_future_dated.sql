-- future_dated (hold): an activity that starts after the day its drop was
-- exported (the folder name's date, to the end of that day in practice time)
-- has not happened yet.
select
    activity_id,
    drop_name,
    'future_dated' as flag_code,
    'hold' as severity,
    format('starts {} hours after the end of the drop''s date',
           round((epoch(started_at) - epoch(drop_closes_at)) / 3600, 1)) as message,
    format('on or before {}', drop_date) as threshold,
    greatest(duration_minutes, 0) as held_minutes
from quality_run_versions
where status = 'active'
  and started_at >= drop_closes_at
