-- Staging's bookkeeping tables (transforms/ingest/staging.py). Every staging
-- table file (<table>.sql) replaces the rows of the keys in scope: every key
-- in a full build, the keys the new drops touch in an incremental one
-- (_scope.sql); the in_scope(...) and in_scope_record(...) macros say which.
--   rejected_rows  rows naming a patient or staff member no drop has described,
--                  held out until a later drop describes them; each table file
--                  keeps its own part (table_name)
--   staged_drops   the loaded drops staging reflects
create table if not exists staging.rejected_rows (
    table_name  varchar,
    drop_name   varchar,
    row_number  bigint,
    column_name varchar,
    reason      varchar,
    record_key  varchar
);
create table if not exists staging.staged_drops (
    drop_name varchar primary key,
    staged_at timestamptz not null
);
