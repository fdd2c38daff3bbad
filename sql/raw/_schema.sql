-- Schemas and the load ledger. The raw layer is append-only: a drop is loaded
-- once (by name), with every file's SHA-256, and never rewritten.
create schema if not exists raw;
create schema if not exists staging;
create schema if not exists core;
create schema if not exists quality;
create schema if not exists billing;
create schema if not exists marts;

create table if not exists raw.loaded_files (
    drop_name   varchar not null,
    table_name  varchar not null,
    file_name   varchar not null,
    sha256      varchar not null,
    rows_read   bigint  not null,
    rows_loaded bigint  not null,
    rows_quarantined bigint not null,
    run_id      varchar not null,
    loaded_at   timestamptz not null,
    primary key (drop_name, table_name)
);
-- Per loaded file, the contract's evidence columns it did not have
-- (transforms/contract.py TableSpec.evidence): what they would prove is
-- reported as missing evidence, never held. Every row of such a file says the
-- same in raw.<table>._absent_columns, which is what the rules read.
create table if not exists raw.loaded_file_columns (
    drop_name      varchar   not null,
    table_name     varchar   not null,
    absent_columns varchar[] not null,
    run_id         varchar   not null,
    primary key (drop_name, table_name)
);

-- What each loaded file held, row by row: rows_read = rows_new + rows_changed
-- + rows_unchanged + rows_quarantined. Only new and changed rows are stored in
-- raw.<table> (rows_loaded above); an unchanged row (identical, typed, to the
-- newest stored version of its key, or to the row before it in the same file)
-- is counted here and not stored again.
create table if not exists raw.loaded_file_rows (
    drop_name        varchar not null,
    table_name       varchar not null,
    rows_read        bigint  not null,
    rows_new         bigint  not null,   -- a key not stored before
    rows_changed     bigint  not null,   -- a new version of a stored key
    rows_unchanged   bigint  not null,   -- same as the current version: not stored
    rows_quarantined bigint  not null,
    run_id           varchar not null,
    primary key (drop_name, table_name)
);

-- One row per landing row that could not be typed: the run goes on without it.
create table if not exists raw.quarantine (
    drop_name   varchar not null,
    table_name  varchar not null,
    file_name   varchar not null,
    row_number  bigint  not null,   -- 1-based data row (the header and blank lines are not rows)
    column_name varchar,            -- null for a row with more or fewer fields than the header
    reason      varchar not null,
    record_key  varchar,            -- the row's key, when it has one (never PHI columns)
    run_id      varchar not null
);

create table if not exists raw.runs (
    run_id      varchar primary key,
    as_of       date,
    started_at  timestamptz not null,
    finished_at timestamptz,
    status      varchar not null,   -- running / succeeded / failed
    summary     json
);
