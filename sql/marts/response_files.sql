-- marts.response_files: one row per response file found in the responses
-- folder (billing.response_files): what it was, whether it was read or
-- quarantined and why, what it matched, and for an 835 its payments and
-- whether they reconcile to the cent (billing.remittances).
create or replace view marts.response_files as
with payments as (
    select response_sha256, count(*) as payments, sum(total_payment)::decimal(14, 2) as total_payment,
           bool_and(reconciled) as reconciled, sum(difference)::decimal(14, 2) as unreconciled_amount
    from billing.remittances
    group by all
)
select
    f.file_name,
    f.sha256,
    f.kind,
    f.status,
    f.reason,
    f.read_at,
    f.run_id,
    f.interchange_control_number,
    f.usage_indicator,
    f.claims_matched,
    f.claims_unmatched,
    f.pyx12_findings,
    f.pyx12_first_finding,
    coalesce(p.payments, 0) as payments,
    p.total_payment,
    p.reconciled,
    p.unreconciled_amount
from billing.response_files f
left join payments p on p.response_sha256 = f.sha256
