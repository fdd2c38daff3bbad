-- Where the claims that tonight's response files spoke about stand now (the
-- run summary): their current status, ranked as marts.claim_status ranks it.
-- getvariable('responses_run_id') = the run.
with touched as (
    select distinct claim_id from billing.claim_events where run_id = getvariable('responses_run_id')
),
current_status as (
    select e.claim_id, e.status
    from billing.claim_events e
    join billing.response_files f on f.sha256 = e.response_sha256
    semi join touched using (claim_id)
    qualify row_number() over (partition by e.claim_id
                               order by billing.event_rank(e.source) desc, f.file_seq desc, e.ordinal desc) = 1
)
select status, count(*) from current_status group by all order by 1
