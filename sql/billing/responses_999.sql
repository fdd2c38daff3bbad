-- A 999 file, matched (temp tables, this connection only). ack_groups: one row
-- per acknowledged functional group (AK1 .. AK9); ack_sets: one row per
-- transaction set response (AK2 .. IK5). AK102 names our group by GS06 and
-- AK202 our transaction set by ST02 (billing.control_numbers; only 837
-- groups, GS01 HC, are ours). A transaction set accepted (IK501 A, E) makes
-- its claims accepted, one rejected (R, M, W, X) makes them rejected. A group
-- rejected as a whole (AK901 R, M, W, X) rejects every claim of it that no
-- transaction set response speaks for; a group accepted without any AK2
-- accepts them.
create or replace temp table response_acknowledgments as
with groups as (
    select g.ordinal, g.group_control_number, g.code,
           list_concat(['AK901:' || coalesce(g.code, '?')], g.reason_codes) as reason_codes,
           c.interchange_control_number, c.transaction_set_control_number, c.batch_id, c.billing_provider_npi
    from ack_groups g
    left join billing.control_numbers c
           on c.group_control_number = g.group_control_number and c.status = 'used' and g.functional_id = 'HC'
),
sets as (
    select row_number() over (order by s.st_no, s.set_control_number) as set_ordinal, s.group_control_number,
           s.set_control_number, s.code, s.reason_codes,
           c.interchange_control_number, c.batch_id, c.billing_provider_npi
    from ack_sets s
    left join billing.control_numbers c
           on c.group_control_number = s.group_control_number and c.status = 'used' and s.set_id = '837'
          and try_cast(s.set_control_number as bigint) = c.transaction_set_control_number
)
select
    row_number() over (order by level_order, level_ordinal) as ordinal, '999' as source, level,
    interchange_control_number, group_control_number, transaction_set_control_number, batch_id,
    billing_provider_npi, code, reason_codes, batch_id is not null as matched
from (
    select 1 as level_order, ordinal as level_ordinal, 'group' as level, interchange_control_number,
           group_control_number, null::varchar as transaction_set_control_number, batch_id, billing_provider_npi,
           code, reason_codes
    from groups
    union all
    select 2, set_ordinal, 'transaction_set', interchange_control_number, group_control_number,
           set_control_number, batch_id, billing_provider_npi, code, reason_codes
    from sets
);

create or replace temp table response_events as
with set_verdicts as (
    select a.ordinal, l.claim_id,
           case when a.code in ('A', 'E') then 'accepted' when a.code in ('R', 'M', 'W', 'X') then 'rejected' end
               as status,
           a.reason_codes
    from response_acknowledgments a
    join billing.ledger l on l.batch_id = a.batch_id and l.billing_provider_npi = a.billing_provider_npi
    where a.level = 'transaction_set' and a.matched
),
group_verdicts as (         -- the group's own verdict, for claims no transaction set response covers
    select a.ordinal, l.claim_id,
           case when a.code in ('R', 'M', 'W', 'X') then 'rejected'
                when a.code in ('A', 'E') then 'accepted' end as status,
           a.reason_codes
    from response_acknowledgments a
    join billing.ledger l on l.batch_id = a.batch_id and l.billing_provider_npi = a.billing_provider_npi
    where a.level = 'group' and a.matched
      and l.claim_id not in (select claim_id from set_verdicts)
)
select row_number() over (order by ordinal, claim_id) as ordinal, ordinal as acknowledgment_ordinal, claim_id,
       status, reason_codes, null::varchar as payer_claim_control_number
from (select * from set_verdicts union all select * from group_verdicts)
where status is not null;

create or replace temp table response_unmatched as
select count(*) filter (where not matched) as unmatched from response_acknowledgments;
