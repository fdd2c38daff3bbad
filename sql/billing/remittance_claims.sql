-- billing.remittance_claims: one row per 835 claim payment (CLP), as the payer
-- sent it, matched to our claim by CLP01 = CLM01 and the charge (CLP03): a
-- claim id we never wrote, or one whose charge differs, is kept unmatched
-- (claim_id null), never attached by guess. Reversals (CLP02 22) carry the
-- payer's negative amounts.
create table if not exists billing.remittance_claims (
    response_sha256            varchar not null,
    claim_ordinal              integer not null,   -- CLP within the file, 1 ..
    transaction_ordinal        integer not null,
    claim_id                   varchar,            -- ours; null when unmatched
    patient_control_number     varchar not null,   -- CLP01 as sent
    match                      varchar not null,   -- matched / no such claim / charge differs
    status_code                varchar not null,   -- CLP02
    status                     varchar not null,   -- paid, partially_paid, denied, reversed
    charge_amount              decimal(12, 2),     -- CLP03
    paid_amount                decimal(12, 2),     -- CLP04
    patient_responsibility     decimal(12, 2),     -- CLP05
    allowed_amount             decimal(12, 2),     -- sum of the lines' AMT*B6; else charge less CO/OA/PI adjustments but sequestration
    filing_indicator           varchar,            -- CLP06 (MB = Medicare Part B)
    payer_claim_control_number varchar,            -- CLP07
    frequency_code             varchar,            -- CLP09
    remark_codes               varchar[] not null, -- RARCs of MOA / MIA
    adjustment_amount          decimal(12, 2) not null,  -- every CAS amount of the claim and its lines
    balanced                   boolean not null,   -- CLP03 - adjustments = CLP04, and the lines add up
    balance_note               varchar,            -- what did not add up
    primary key (response_sha256, claim_ordinal)
);
