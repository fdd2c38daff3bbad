-- billing.response_files: every file ever found in the responses folder, once
-- by its SHA-256 (a file copied under another name is the same file). A file
-- is read in a transaction of its own: its row, what it says (claim_events,
-- acknowledgments, remittance_*) and the live claims it rejects commit
-- together or not at all. status: read, or quarantined (reason says why, one
-- line: not X12, not a response we read, or it matches none of our claims).
create table if not exists billing.response_files (
    sha256                     varchar primary key,
    file_seq                   bigint  not null unique,  -- the order files were read in
    file_name                  varchar not null,         -- relative to the responses folder, as first seen
    size                       bigint  not null,         -- bytes
    kind                       varchar,                  -- TA1, 999, 277CA, 835; null when not X12
    status                     varchar not null,         -- read / quarantined
    reason                     varchar,                  -- why it was quarantined
    interchange_control_number varchar,                  -- the response's own ISA13
    sender_id                  varchar,                  -- ISA06
    usage_indicator            varchar,                  -- ISA15
    interchange_date           date,                     -- ISA09
    pyx12_findings             integer,                  -- implementation-guide findings that did not stop the read
    pyx12_first_finding        varchar,                  -- the first of them (values redacted)
    claims_matched             integer,                  -- claims of ours it speaks about
    claims_unmatched           integer,                  -- claims it names that are not ours (835, 277CA)
    run_id                     varchar not null,
    read_at                    timestamptz not null
);
