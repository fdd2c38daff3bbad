-- marts.revenue_summary: one row per service month x outcome x reason x
-- reason detail, from marts.patient_month. Outcomes: billed (in the ledger:
-- the ledger's amounts), billable (closed, codes chosen, not in a batch yet),
-- in_progress (the open month: amounts so far), not_billed (closed, a reason
-- stands in the way: estimated_left_on_table, see DATA_DICTIONARY.md).
create or replace view marts.revenue_summary as
select
    service_month,
    rules_year,
    bool_and(month_closed) as month_closed,
    outcome,
    left_on_table_reason as reason,
    left_on_table_detail as reason_detail,
    count(*) as patient_months,
    sum(countable_minutes)::bigint as countable_minutes,
    sum(case when outcome = 'billed' then billed_charge_amount
             when outcome in ('billable', 'in_progress') then charge_amount
             else 0 end)::decimal(12, 2) as charge_amount,
    sum(case when outcome = 'billed' then billed_allowed_amount
             when outcome in ('billable', 'in_progress') then allowed_amount
             else 0 end)::decimal(12, 2) as allowed_amount,
    sum(case when outcome = 'billed' then billed_expected_payment
             when outcome in ('billable', 'in_progress') then expected_payment
             else 0 end)::decimal(12, 2) as expected_payment,
    sum(case when outcome = 'billed' then billed_patient_responsibility
             when outcome in ('billable', 'in_progress') then patient_responsibility
             else 0 end)::decimal(12, 2) as patient_responsibility,
    sum(coalesce(estimated_left_on_table, 0))::decimal(12, 2) as estimated_left_on_table,
    any_value(base_code_fee) as base_code_fee
from marts.patient_month
group by service_month, rules_year, outcome, left_on_table_reason, left_on_table_detail
