-- billing.overpayments: paid claims whose patient-month would now bill less
-- or nothing (minutes voided or held, eligibility lost after payment). A row
-- is added when that state is first seen and whenever it changes, so the first
-- row of a claim is when the overpayment was identified: the 60-day clock of
-- 42 CFR 401.305 starts there. The responses stage detects them
-- (billing/detect_overpayments.sql); marts.overpayments shows the open ones.
create table if not exists billing.overpayments (
    claim_id                 varchar not null,
    identified_at            timestamptz not null,
    identified_run_id        varchar not null,
    patient_id               varchar not null,
    service_month            date    not null,
    paid_amount              decimal(12, 2) not null,   -- what the payer paid (835, net of reversals)
    billed_codes             varchar not null,
    billed_expected_payment  decimal(12, 2),
    current_codes            varchar not null,          -- what the month would bill now ('' = nothing)
    current_expected_payment decimal(12, 2),
    eligible_now             boolean not null,
    amount_at_risk           decimal(12, 2) not null,   -- the share of the payment the month no longer supports
    primary key (claim_id, identified_at)
);
