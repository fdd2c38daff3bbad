-- An 835 file, matched (temp tables, this connection only). remit_* come from
-- transforms/billing/responses/parse.py. A payment (TRN02 trace number of a
-- payer, TRN03) already posted from another file is skipped, with its claims:
-- the same remittance twice changes nothing. A claim payment is ours when
-- CLP01 is one of our claim ids and CLP03 its charge (a reversal's charge is
-- negative); otherwise it is kept unmatched, never attached by guess.
create or replace temp table response_transactions as
select t.*,
       exists (select 1 from billing.remittances r
               where r.trace_number = t.trace_number
                 and r.payer_identifier is not distinct from t.payer_identifier) as posted_before
from remit_transactions t;

create or replace temp table response_remittance_claims as
select c.*,
       case when l.claim_id is null then null
            when abs(c.charge_amount) = l.charge_amount then l.claim_id end as claim_id,
       case when l.claim_id is null then 'no such claim'
            when abs(c.charge_amount) = l.charge_amount then 'matched'
            else 'charge differs' end as match
from remit_claims c
join response_transactions t using (transaction_ordinal)
left join billing.ledger l on l.claim_id = c.patient_control_number
where not t.posted_before;

create or replace temp table response_remittances as
with claims as (
    select transaction_ordinal, count(*) as claims, count(claim_id) as claims_matched,
           coalesce(sum(paid_amount), 0) as claim_payments
    from response_remittance_claims group by all
),
plb as (
    select transaction_ordinal, coalesce(sum(amount), 0) as provider_adjustments from remit_plb group by all
)
select
    t.transaction_ordinal, t.transaction_set_control_number, t.handling_code, t.total_payment, t.credit_debit,
    t.payment_method, t.payment_date, t.trace_number, t.payer_identifier, t.production_date, t.payer_name,
    t.payer_id, t.payee_name, t.payee_id,
    coalesce(c.claims, 0) as claims, coalesce(c.claims_matched, 0) as claims_matched,
    coalesce(c.claim_payments, 0)::decimal(14, 2) as claim_payments,
    coalesce(p.provider_adjustments, 0)::decimal(14, 2) as provider_adjustments,
    -- BPR03 D: the provider pays the payer
    ((case when t.credit_debit = 'D' then -1 else 1 end) * t.total_payment
        - (coalesce(c.claim_payments, 0) - coalesce(p.provider_adjustments, 0)))::decimal(14, 2) as difference
from response_transactions t
left join claims c using (transaction_ordinal)
left join plb p using (transaction_ordinal)
where not t.posted_before;

create or replace temp table response_events as
with adjustments as (
    select a.claim_ordinal, list_distinct(list('CARC:' || a.group_code || '-' || a.reason_code
                                               order by a.line_ordinal, a.adjustment_ordinal)) as carcs
    from remit_adjustments a
    group by a.claim_ordinal
),
line_remarks as (
    select claim_ordinal, flatten(list(remark_codes order by line_ordinal)) as remarks
    from remit_lines group by claim_ordinal
)
select
    row_number() over (order by c.claim_ordinal) as ordinal,
    c.claim_ordinal as acknowledgment_ordinal,
    c.claim_id,
    c.status,
    list_concat(coalesce(a.carcs, []),
                list_transform(list_distinct(list_concat(c.remark_codes, coalesce(r.remarks, []))),
                               lambda x: 'RARC:' || x)) as reason_codes,
    c.payer_claim_control_number
from response_remittance_claims c
left join adjustments a using (claim_ordinal)
left join line_remarks r using (claim_ordinal)
where c.claim_id is not null;

create or replace temp table response_unmatched as
select count(*) filter (where claim_id is null) as unmatched from response_remittance_claims;
