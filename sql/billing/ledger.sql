-- billing.ledger: what was billed, one row per patient-month, ever. The
-- primary key is the guard against billing a patient-month twice.
create table if not exists billing.ledger (
    patient_id           varchar not null,
    service_month        date    not null,
    claim_id             varchar not null unique,   -- CLM01
    batch_id             varchar not null,
    billing_npi          varchar not null,          -- rendering practitioner (2310B)
    billing_provider_npi varchar not null,          -- group NPI (2010AA)
    billed_codes         varchar not null,          -- e.g. '99490 99439x2'
    billed_minutes       integer,                   -- countable minutes when billed
    units                integer not null,
    charge_amount        decimal(10, 2) not null,   -- CLM02
    expected_payment     decimal(10, 2),
    date_of_service      date not null,
    run_id               varchar not null,
    committed_at         timestamptz not null,
    primary key (patient_id, service_month)
);
-- Added after the first release: the claim's allowed amount and the patient's coinsurance.
alter table billing.ledger add column if not exists allowed_amount decimal(10, 2);
alter table billing.ledger add column if not exists patient_responsibility decimal(10, 2);
