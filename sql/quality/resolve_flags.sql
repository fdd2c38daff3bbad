-- A standing flag on a version this run checked again, which this run did not
-- raise, no longer holds (an overlap whose other activity moved or was voided,
-- or a rerun under changed thresholds): mark it resolved, keep the row.
update quality.flags f
set resolved_run_id = getvariable('quality_run_id'),
    resolved_at = now()
where f.resolved_at is null
  and (
      exists (
          select 1 from quality_run_versions v
          where v.activity_id = f.activity_id and v.drop_name = f.drop_name
      )
      or (f.flag_code = 'overlap' and exists (
          select 1 from quality_overlap_scope s
          where s.activity_id = f.activity_id and s.version_drop = f.drop_name
      ))
  )
  and not exists (
      select 1 from quality_run_flags r
      where r.activity_id = f.activity_id and r.drop_name = f.drop_name and r.flag_code = f.flag_code
  );
