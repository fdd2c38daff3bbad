-- billing.ledger_lines: one row per billed claim line (the 837P 2400 loop and
-- the claim_lines.csv row), for dashboards and for the audit trail.
create table if not exists billing.ledger_lines (
    claim_id             varchar not null,
    line_number          integer not null,          -- LX01
    batch_id             varchar not null,
    patient_id           varchar not null,
    service_month        date    not null,
    billing_npi          varchar not null,
    billing_provider_npi varchar not null,
    cpt_code             varchar not null,
    units                integer not null,
    minutes              integer,
    charge_amount        decimal(10, 2) not null,
    expected_payment     decimal(10, 2),
    date_of_service      date    not null,
    icd10_codes          varchar[] not null,        -- primary first, no dots
    primary key (claim_id, line_number)
);
-- The allowed amount (the lower of charge and fee schedule amount) and the
-- patient's coinsurance, as billed; added after the first release.
alter table billing.ledger_lines add column if not exists allowed_amount decimal(10, 2);
alter table billing.ledger_lines add column if not exists patient_responsibility decimal(10, 2);
