-- New billing.overpayments rows (the table: billing/overpayments.sql). A claim
-- the payer paid (835, net of reversals) whose patient-month would now bill
-- less (a lower expected payment: fewer units or codes) or nothing (no longer
-- eligible, or no codes) is an overpayment to refund; the share at risk is the
-- payment times the share of the billed expected payment the month no longer
-- supports, to the cent. A row is added only when that state is new or
-- changed for the claim; an open overpayment whose month supports the payment
-- again (or that the payer took back) gets a row with 0 at risk.
-- getvariable('responses_run_id') names the run.
insert into billing.overpayments
with paid as (
    select claim_id, sum(paid_amount) as paid_amount
    from billing.remittance_claims
    where claim_id is not null
    group by claim_id
),
last_row as (
    select claim_id, current_codes, eligible_now, amount_at_risk
    from billing.overpayments
    qualify row_number() over (partition by claim_id order by identified_at desc) = 1
),
watched as (                -- paid claims, and claims with an open overpayment
    select claim_id from paid where paid_amount > 0
    union
    select claim_id from last_row where amount_at_risk > 0
),
current_codes as (
    select patient_id, service_month,
           string_agg(cpt_code || case when units > 1 then 'x' || units else '' end, ' '
                      order by line_number, cpt_code) as codes,
           sum(expected_payment) as expected_payment
    from core.code_lines
    semi join (select l.patient_id, l.service_month from watched w join billing.ledger l using (claim_id)) k
         using (patient_id, service_month)
    group by all
),
state as (
    select
        l.claim_id, l.patient_id, l.service_month,
        coalesce(p.paid_amount, 0) as paid_amount,
        l.billed_codes,
        l.expected_payment as billed_expected_payment,
        coalesce(pm.eligible, false) as eligible_now,
        case when coalesce(pm.eligible, false) then coalesce(cc.codes, '') else '' end as current_codes,
        case when coalesce(pm.eligible, false) then coalesce(cc.expected_payment, 0) else 0 end
            as current_expected_payment
    from watched w
    join billing.ledger l using (claim_id)
    left join paid p using (claim_id)
    left join core.patient_month pm on pm.patient_id = l.patient_id and pm.service_month = l.service_month
    left join current_codes cc on cc.patient_id = l.patient_id and cc.service_month = l.service_month
),
judged as (
    select *,
           case when paid_amount <= 0 then 0
                when current_codes = '' then paid_amount
                when current_expected_payment >= coalesce(billed_expected_payment, 0) then 0
                else round(paid_amount * (1 - current_expected_payment / billed_expected_payment), 2)
           end::decimal(12, 2) as amount_at_risk
    from state
)
select j.claim_id, now(), getvariable('responses_run_id'), j.patient_id, j.service_month, j.paid_amount,
       j.billed_codes, j.billed_expected_payment, j.current_codes, j.current_expected_payment, j.eligible_now,
       j.amount_at_risk
from judged j
left join last_row r using (claim_id)
where (j.amount_at_risk > 0
       and (r.claim_id is null or r.amount_at_risk <> j.amount_at_risk or r.current_codes <> j.current_codes
            or r.eligible_now <> j.eligible_now))
   or (j.amount_at_risk = 0 and r.amount_at_risk > 0);
