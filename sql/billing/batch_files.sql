-- billing.batch_files: the exact bytes of every file of every batch, so a batch
-- whose folder was lost in a crash is rebuilt identically from the warehouse
-- (staging moves on; the claim that was committed must not).
create table if not exists billing.batch_files (
    batch_id  varchar not null,
    file_name varchar not null,   -- relative to the batch folder, '/'-separated
    sha256    varchar not null,
    content   blob    not null,
    primary key (batch_id, file_name)
);
