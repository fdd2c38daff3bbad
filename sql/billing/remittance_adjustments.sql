-- billing.remittance_adjustments: one row per CAS adjustment (group code,
-- CARC, amount, quantity), at the claim (line_ordinal 0) or a service line.
create table if not exists billing.remittance_adjustments (
    response_sha256     varchar not null,
    claim_ordinal       integer not null,
    line_ordinal        integer not null,   -- 0 = claim level
    adjustment_ordinal  integer not null,
    claim_id            varchar,            -- ours; null when the claim is unmatched
    group_code          varchar not null,   -- CO, OA, PI, PR
    reason_code         varchar not null,   -- CARC
    amount              decimal(12, 2) not null,
    quantity            decimal(10, 2),
    primary key (response_sha256, claim_ordinal, line_ordinal, adjustment_ordinal)
);
