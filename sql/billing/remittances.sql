-- billing.remittances: one row per 835 transaction set (one payment: BPR,
-- TRN), with its reconciliation: BPR02 must equal the sum of CLP04 less the
-- PLB provider-level adjustments, to the cent. A difference is stored and
-- reported, never absorbed into a claim. A trace number (TRN02, per payer
-- TRN03) is posted once: the same payment in another file is skipped.
create table if not exists billing.remittances (
    response_sha256                varchar not null,
    transaction_ordinal            integer not null,   -- ST/SE within the file, 1 ..
    transaction_set_control_number varchar,            -- ST02
    handling_code                  varchar,            -- BPR01 (I remittance with payment, H notification only ...)
    total_payment                  decimal(14, 2) not null,  -- BPR02
    credit_debit                   varchar,            -- BPR03 (C credit, D debit)
    payment_method                 varchar,            -- BPR04 (ACH, CHK, NON ...)
    payment_date                   date,               -- BPR16, the check or EFT date
    trace_number                   varchar not null,   -- TRN02, the check or EFT trace number
    payer_identifier               varchar,            -- TRN03
    production_date                date,               -- DTM*405, when the payer produced the remittance
    payer_name                     varchar,            -- N1*PR
    payer_id                       varchar,            -- N1*PR N104, else REF*2U
    payee_name                     varchar,            -- N1*PE
    payee_id                       varchar,            -- N1*PE N104 (NPI when N103 = XX)
    claims                         integer not null,
    claims_matched                 integer not null,
    claim_payments                 decimal(14, 2) not null,  -- sum of CLP04
    provider_adjustments           decimal(14, 2) not null,  -- sum of PLB amounts (positive = withheld)
    difference                     decimal(14, 2) not null,  -- BPR02 - (claim_payments - provider_adjustments)
    reconciled                     boolean not null,
    primary key (response_sha256, transaction_ordinal)
);
