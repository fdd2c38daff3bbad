-- billing.live_claims: the one live claim a patient-month may have, per usage
-- (T test, P production). The primary key is the warehouse's own guard against
-- two live claims: a row is inserted in the same transaction as the claim's
-- ledger row, and deleted in the transaction that reads the 999, 277CA or TA1
-- rejecting it. A claim the payer adjudicated (835) stays live: it is never
-- billed again automatically.
create table if not exists billing.live_claims (
    usage_indicator varchar not null,
    patient_id      varchar not null,
    service_month   date    not null,
    claim_id        varchar not null unique,
    live_since      timestamptz not null,
    primary key (usage_indicator, patient_id, service_month)
);
