-- Record this run's findings in quality.flags. A finding already recorded for
-- the same version (a rerun of the same drop, or an overlap restated after a
-- neighbouring activity changed) is restated in place, never duplicated; its
-- run_id and raised_at stay those of the run that first raised it.
merge into quality.flags f
using quality_run_flags r
   on f.activity_id = r.activity_id
  and f.drop_name = r.drop_name
  and f.flag_code = r.flag_code
when matched and (
       f.severity is distinct from r.severity
    or f.message is distinct from r.message
    or f.threshold is distinct from r.threshold
    or f.held_minutes is distinct from r.held_minutes
    or f.resolved_at is not null
) then update set
    severity = r.severity,
    message = r.message,
    threshold = r.threshold,
    held_minutes = r.held_minutes,
    resolved_run_id = null,
    resolved_at = null
when not matched then insert (
    activity_id, drop_name, flag_code, severity, message, threshold, held_minutes,
    run_id, raised_at, resolved_run_id, resolved_at
) values (
    r.activity_id, r.drop_name, r.flag_code, r.severity, r.message, r.threshold, r.held_minutes,
    getvariable('quality_run_id'), now(), null, null
);
