-- billing.acknowledgments: each verdict a TA1, 999 or 277CA gave on something
-- larger than one claim: an interchange (TA1), a functional group (999 AK9),
-- a transaction set (999 IK5), a batch or a billing provider (277CA 2200B,
-- 2200C). claims = how many of our claims it set a status on.
create table if not exists billing.acknowledgments (
    response_sha256                varchar not null,
    ordinal                        integer not null,
    source                         varchar not null,   -- TA1, 999, 277CA
    level                          varchar not null,   -- interchange, group, transaction_set, batch, billing_provider
    interchange_control_number     bigint,             -- ours, that it answers
    group_control_number           bigint,             -- ours (AK102)
    transaction_set_control_number varchar,            -- ours (AK202)
    batch_id                       varchar,
    billing_provider_npi           varchar,
    code                           varchar,            -- TA104, AK901, IK501, STC03
    reason_codes                   varchar[] not null,
    claims                         integer not null,
    primary key (response_sha256, ordinal)
);
