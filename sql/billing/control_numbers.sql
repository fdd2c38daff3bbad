-- billing.control_numbers: every X12 interchange control number ever put in a
-- file (ISA13, GS06, ST02 come from one counter). Allocated in the ledger
-- transaction; numbers found in an abandoned temp folder are kept as 'void',
-- so no number is ever used twice.
create table if not exists billing.control_numbers (
    interchange_control_number     bigint primary key,   -- ISA13 / IEA02
    group_control_number           bigint not null unique, -- GS06 / GE02
    transaction_set_control_number bigint not null unique, -- ST02 / SE02
    batch_id             varchar not null,
    billing_provider_npi varchar,
    file_name            varchar,
    status               varchar not null,   -- used / void
    allocated_at         timestamptz not null
);
