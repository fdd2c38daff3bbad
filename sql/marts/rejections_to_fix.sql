-- marts.rejections_to_fix: one row per rejected claim not billed again yet
-- (marts.claim_status: status rejected, no replaced_by_claim_id): what
-- rejected it and why, in words (marts.reason_codes), and what happens next.
-- A rejected claim is billed again, under a new claim id, by the first run
-- after what it says changed (the fix arrived in a drop, or the practice
-- configuration was corrected), or after `ccm resubmit` released it.
create or replace view marts.rejections_to_fix as
with rejection as (         -- the response that rejected it (its current status)
    select e.claim_id, e.source, e.reason_codes
    from billing.claim_events e
    join billing.response_files f on f.sha256 = e.response_sha256
    qualify row_number() over (partition by e.claim_id
                               order by billing.event_rank(e.source) desc, f.file_seq desc, e.ordinal desc) = 1
),
words as (
    select r.claim_id, string_agg(w.words, '; ' order by i) as reason
    from (select claim_id, unnest(reason_codes) as reason_code, generate_subscripts(reason_codes, 1) as i
          from rejection) r
    join marts.reason_codes w using (reason_code)
    group by r.claim_id
)
select
    s.claim_id,
    s.batch_id,
    s.patient_id,
    s.service_month,
    l.usage_indicator,
    r.source as rejected_by,
    s.status_at as rejected_at,
    array_to_string(r.reason_codes, ' ') as reason_codes,
    w.reason,
    rel.claim_id is not null as released,
    rel.released_at,
    case when rel.claim_id is not null then 'released: the next run bills it again'
         else 'fix what the reason names in the EHR or the practice configuration (the next run bills it '
              || 'again once the claim would say something else), or release it: ccm resubmit --claim '
              || s.claim_id end as next_step
from marts.claim_status s
join billing.ledger l using (claim_id)
join rejection r using (claim_id)
left join words w using (claim_id)
left join billing.releases rel using (claim_id)
where s.status = 'rejected' and s.replaced_by_claim_id is null
