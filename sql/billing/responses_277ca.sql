-- A 277CA file, matched (temp tables, this connection only). status_claims:
-- one row per claim status (2200D): TRN02 is our CLM01, STC04 its total
-- charge, which must be ours too, or the claim is not ours (never matched by
-- guess). status_levels: the information receiver (2200B, TRN02 = our
-- BHT03, the batch id) and billing provider (2200C, NM109 = its NPI)
-- statuses. A receiver or provider rejected with nothing listed under it
-- (HL04 0) rejects every claim of the batch (of that provider).
create or replace temp table response_claims as
select s.*, l.claim_id as our_claim_id,
       case when l.claim_id is null then 'no such claim'
            when s.charge is not null and s.charge <> l.charge_amount then 'charge differs'
            else 'matched' end as match
from status_claims s
left join billing.ledger l on l.claim_id = s.claim_id;

create or replace temp table response_acknowledgments as
select
    s.ordinal, '277CA' as source, s.level,
    null::bigint as interchange_control_number, null::bigint as group_control_number,
    null::varchar as transaction_set_control_number,
    b.batch_id,
    s.billing_provider_npi,
    list_last(s.actions) as code,
    s.reason_codes,
    b.batch_id is not null
        and (s.level = 'batch' or s.billing_provider_npi in (
             select billing_provider_npi from billing.ledger where batch_id = b.batch_id)) as matched,
    s.verdict,
    s.has_children
from status_levels s
left join billing.batches b on b.batch_id = s.batch_id;

create or replace temp table response_events as
with claim_verdicts as (
    select 0 as acknowledgment_ordinal, ordinal as sort_key, our_claim_id as claim_id, verdict as status,
           reason_codes, payer_claim_control_number
    from response_claims
    where match = 'matched' and verdict is not null
),
level_verdicts as (
    select a.ordinal, a.ordinal * 1000000 as sort_key, l.claim_id, 'rejected' as status, a.reason_codes,
           null::varchar as payer_claim_control_number
    from response_acknowledgments a
    join billing.ledger l on l.batch_id = a.batch_id
                         and (a.level = 'batch' or l.billing_provider_npi = a.billing_provider_npi)
    where a.matched and a.verdict = 'rejected' and coalesce(a.has_children, '0') = '0'
      and l.claim_id not in (select claim_id from claim_verdicts)
)
select row_number() over (order by sort_key, claim_id) as ordinal, acknowledgment_ordinal, claim_id, status,
       reason_codes, payer_claim_control_number
from (select * from claim_verdicts union all select * from level_verdicts)
qualify row_number() over (partition by claim_id order by sort_key) = 1;

create or replace temp table response_unmatched as
select count(*) filter (where match <> 'matched') as unmatched from response_claims;
