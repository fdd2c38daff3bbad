-- late: first documented long after the activity ended (start + duration).
-- Past documentation.late_warn_hours it is reported (warn); past late_hold_days
-- it looks reconstructed and the whole activity is held. Judged on the first
-- note of the activity, so a later amendment of a timely note is not late.
with active_versions as (
    select
        activity_id,
        drop_name,
        duration_minutes,
        epoch(first_documented_at) - epoch(ended_at) as seconds_after_end
    from quality_run_versions
    where status = 'active'
),
late_versions as (
    select
        *,
        seconds_after_end > getvariable('quality_late_hold_days') * 86400 as beyond_hold
    from active_versions
    where seconds_after_end > least(getvariable('quality_late_warn_hours') * 3600,
                                    getvariable('quality_late_hold_days') * 86400)
)
select
    activity_id,
    drop_name,
    'late' as flag_code,
    case when beyond_hold then 'hold' else 'warn' end as severity,
    case
        when seconds_after_end >= 2 * 86400
            then format('documented {} days after the activity ended', round(seconds_after_end / 86400, 1))
        else format('documented {} hours after the activity ended', round(seconds_after_end / 3600, 1))
    end as message,
    case when beyond_hold then getvariable('quality_late_hold_label') else getvariable('quality_late_warn_label') end
        as threshold,
    case when beyond_hold then greatest(duration_minutes, 0) else 0 end as held_minutes
from late_versions
