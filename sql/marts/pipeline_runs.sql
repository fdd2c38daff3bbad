-- marts.pipeline_runs: one row per pipeline run (raw.runs), with what it
-- loaded (raw.loaded_files), quarantined (raw.quarantine), flagged
-- (quality.flags) and claimed (billing.batches, billing.ledger_lines), all
-- matched by run_id. The run's own summary JSON is kept for anything else.
create or replace view marts.pipeline_runs as
with runs as (
    select run_id, as_of, started_at, finished_at, status, summary from raw.runs
),
loaded as (
    select run_id, count(distinct drop_name) as drops_loaded, count(*) as files_loaded,
           sum(rows_read)::bigint as rows_read, sum(rows_loaded)::bigint as rows_loaded
    from raw.loaded_files
    group by run_id
),
quarantined as (
    select run_id, count(*) as rows_quarantined from raw.quarantine group by run_id
),
flags as (
    select run_id, count(*) as flags_raised, count(*) filter (where severity = 'hold') as hold_flags,
           sum(coalesce(held_minutes, 0))::bigint as held_minutes
    from quality.flags
    group by run_id
),
batches as (                -- one batch per run that claimed anything
    select run_id, string_agg(batch_id, ' ' order by batch_id) as batch_id,
           string_agg(distinct status, ' ') as batch_status,
           sum(claims)::bigint as claims, sum(lines)::bigint as claim_lines, sum(charges)::decimal(12, 2) as charges
    from billing.batches
    group by run_id
),
payments as (
    select b.run_id, sum(l.expected_payment)::decimal(12, 2) as expected_payment
    from billing.ledger_lines l
    join (select distinct batch_id, run_id from billing.batches) b using (batch_id)
    group by b.run_id
)
select
    r.run_id,
    r.as_of,
    r.started_at,
    r.finished_at,
    round(epoch(r.finished_at - r.started_at), 1) as duration_seconds,
    r.status,
    coalesce(l.drops_loaded, 0) as drops_loaded,
    coalesce(l.files_loaded, 0) as files_loaded,
    coalesce(l.rows_read, 0) as rows_in,
    coalesce(l.rows_loaded, 0) as rows_loaded,
    coalesce(q.rows_quarantined,
             try_cast(json_extract_string(r.summary, '$.ingest.rows_quarantined') as bigint), 0) as rows_quarantined,
    coalesce(f.flags_raised, 0) as flags_raised,
    coalesce(f.hold_flags, 0) as hold_flags,
    coalesce(f.held_minutes, 0) as held_minutes,
    b.batch_id,
    b.batch_status,
    coalesce(b.claims, 0) as claims,
    coalesce(b.claim_lines, 0) as claim_lines,
    coalesce(b.charges, 0) as charges,
    coalesce(p.expected_payment, 0) as expected_payment,
    r.summary
from runs r
left join loaded l using (run_id)
left join quarantined q using (run_id)
left join flags f using (run_id)
left join batches b using (run_id)
left join payments p using (run_id)
