-- After a response file's events are in billing.claim_events (same
-- transaction): the claims it spoke about get their current status by
-- billing.event_rank (an 835 outranks a 277CA, which outranks a 999 or TA1;
-- among equals the newest file, then the latest in the file), and the live
-- claims follow: a claim whose status is now rejected is no longer live; a
-- claim accepted or adjudicated after a rejection is live again unless its
-- patient-month has another live claim by now (claims_live_conflicts: a person
-- decides). getvariable('response_sha256') = the file's SHA-256.
create or replace temp table touched_status as
select e.claim_id, e.status
from billing.claim_events e
join billing.response_files f on f.sha256 = e.response_sha256
semi join (select claim_id from billing.claim_events where response_sha256 = getvariable('response_sha256')) k
     using (claim_id)
qualify row_number() over (partition by e.claim_id
                           order by billing.event_rank(e.source) desc, f.file_seq desc, e.ordinal desc) = 1;

delete from billing.live_claims
where claim_id in (select claim_id from touched_status where status = 'rejected');

create or replace temp table claims_live_conflicts as
select t.claim_id, lc.claim_id as live_claim_id
from touched_status t
join billing.ledger l using (claim_id)
join billing.live_claims lc
  on lc.usage_indicator = l.usage_indicator and lc.patient_id = l.patient_id
 and lc.service_month = l.service_month and lc.claim_id <> l.claim_id
where t.status <> 'rejected';

insert into billing.live_claims
select l.usage_indicator, l.patient_id, l.service_month, l.claim_id, now()
from touched_status t
join billing.ledger l using (claim_id)
anti join billing.live_claims lc on lc.claim_id = l.claim_id
anti join billing.live_claims lk
       on lk.usage_indicator = l.usage_indicator and lk.patient_id = l.patient_id
      and lk.service_month = l.service_month
where t.status <> 'rejected';
