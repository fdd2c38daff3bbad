-- billing.remittance_lines: one row per 835 service line (SVC) of a claim payment.
create table if not exists billing.remittance_lines (
    response_sha256     varchar not null,
    claim_ordinal       integer not null,
    line_ordinal        integer not null,   -- SVC within the claim, 1 ..
    claim_id            varchar,            -- ours; null when the claim is unmatched
    procedure_qualifier varchar,            -- SVC01-1 (HC = CPT/HCPCS)
    procedure_code      varchar,            -- SVC01-2
    modifiers           varchar[] not null, -- SVC01-3 ..
    charge_amount       decimal(12, 2),     -- SVC02
    paid_amount         decimal(12, 2),     -- SVC03
    units_paid          decimal(10, 2),     -- SVC05
    service_date        date,               -- DTM*472, else DTM*150
    allowed_amount      decimal(12, 2),     -- AMT*B6
    line_control_number varchar,            -- REF*6R
    remark_codes        varchar[] not null, -- LQ*HE
    balanced            boolean not null,   -- SVC02 - line adjustments = SVC03
    primary key (response_sha256, claim_ordinal, line_ordinal)
);
