-- billing.provider_adjustments: one row per PLB adjustment of an 835 payment
-- (interest, recoupments, withholds): provider-level, so on no claim. A
-- positive amount reduces the payment, a negative one adds to it.
create table if not exists billing.provider_adjustments (
    response_sha256     varchar not null,
    transaction_ordinal integer not null,
    adjustment_ordinal  integer not null,
    provider_id         varchar,            -- PLB01
    fiscal_period_date  date,               -- PLB02
    reason_code         varchar not null,   -- PLB03-1 (L6 interest, WO overpayment recovery ...)
    reference           varchar,            -- PLB03-2
    amount              decimal(12, 2) not null,
    primary key (response_sha256, transaction_ordinal, adjustment_ordinal)
);
