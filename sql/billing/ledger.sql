-- billing.ledger: one row per claim ever written, never changed afterwards.
-- A patient-month may have several claims over time (a rejected claim is
-- billed again under a new claim id, replaces_claim_id naming the old one);
-- billing.live_claims is the guard that lets it have at most one live claim
-- per usage (test or production) at a time.
create table if not exists billing.ledger (
    patient_id           varchar not null,
    service_month        date    not null,
    claim_id             varchar primary key,       -- CLM01
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
    -- ISA15 of the claim's interchange: T (test) or P (production). Claims from
    -- before this column was kept are P unless their batch's manifest says T.
    usage_indicator      varchar not null default 'P',
    -- SHA-256 of what the claim says (patient, providers, payer, lines,
    -- diagnoses): a rejected claim is billed again on its own only when the
    -- same patient-month would now say something else. Null for claims billed
    -- before it was kept: those go out again only when released (ccm resubmit).
    content_hash         varchar,
    replaces_claim_id    varchar                    -- the rejected claim this one bills again
);
-- Added after the first release: the claim's allowed amount and the patient's coinsurance.
alter table billing.ledger add column if not exists allowed_amount decimal(10, 2);
alter table billing.ledger add column if not exists patient_responsibility decimal(10, 2);
