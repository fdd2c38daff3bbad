-- billing.batch_files: the name, SHA-256 and size of every file of every
-- batch, committed with the ledger. Recovery after a crash renames a temp
-- folder into place only when every file matches; the bytes themselves are
-- not kept (a batch is hundreds of MB of PHI), so a lost folder is restored
-- from a backup, not rebuilt. (Warehouses from before kept a content column:
-- transforms/claims.ensure_billing_schema drops it.)
create table if not exists billing.batch_files (
    batch_id  varchar not null,
    file_name varchar not null,   -- relative to the batch folder, '/'-separated
    sha256    varchar not null,
    size      bigint,             -- bytes
    primary key (batch_id, file_name)
);
