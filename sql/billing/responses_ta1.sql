-- A TA1 file, matched (temp tables, this connection only). ta1_rows (from
-- transforms/billing/responses/parse.py): one row per TA1 segment. TA101 names
-- our interchange by its ISA13 (billing.control_numbers). A rejected
-- interchange (TA104 R) never reached the payer: every claim in it is
-- rejected. An accepted one changes no claim (the 999 and 277CA will).
create or replace temp table response_acknowledgments as
select
    t.ordinal,
    'TA1' as source,
    'interchange' as level,
    t.interchange_control_number,
    c.group_control_number,
    c.transaction_set_control_number::varchar as transaction_set_control_number,
    c.batch_id,
    c.billing_provider_npi,
    t.code,
    list_filter(['TA104:' || coalesce(t.code, '?'), 'TA105:' || t.note], lambda x: x is not null) as reason_codes,
    c.batch_id is not null as matched
from ta1_rows t
left join billing.control_numbers c
       on c.interchange_control_number = t.interchange_control_number and c.status = 'used';

create or replace temp table response_events as
select
    row_number() over (order by a.ordinal, l.claim_id) as ordinal,
    a.ordinal as acknowledgment_ordinal,
    l.claim_id,
    'rejected' as status,
    a.reason_codes,
    null::varchar as payer_claim_control_number
from response_acknowledgments a
join billing.ledger l on l.batch_id = a.batch_id and l.billing_provider_npi = a.billing_provider_npi
where a.matched and a.code = 'R';

create or replace temp table response_unmatched as
select count(*) filter (where not matched) as unmatched from response_acknowledgments;
