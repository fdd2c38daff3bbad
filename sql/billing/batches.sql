-- billing.batches: one row per claim batch (one run's claim output folder).
-- status: committed (ledger written, folder not yet in place) -> delivered
-- (folder renamed into place); abandoned = a crashed run's temp folder that
-- never reached the ledger: deleted, its id and control numbers never reused.
create table if not exists billing.batches (
    batch_id         varchar primary key,
    as_of            date,
    run_id           varchar,
    status           varchar not null,
    path             varchar,          -- the delivered folder
    claims           integer,
    lines            integer,
    units            integer,
    charges          decimal(12, 2),
    expected_payment decimal(12, 2),
    manifest_sha256  varchar,
    committed_at     timestamptz,
    delivered_at     timestamptz
);
