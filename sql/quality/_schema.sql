-- quality.flags: one row per documentation finding on one activity version (the
-- drop it was raised on). Key: activity_id + drop_name + flag_code, kept by the
-- one statement that writes rows (record_flags.sql, a MERGE on that key) rather
-- than by a primary key index: other stages may create this table first, and an
-- index on years of flags costs memory on every open. History: a row is never
-- deleted. Re-checking the same version restates the row in place, and a
-- finding that no longer holds on that version (an overlap whose other activity
-- was amended or voided) is marked resolved, not removed.
create table if not exists quality.flags (
    activity_id     varchar     not null,
    drop_name       varchar     not null,   -- the activity version the flag was raised on
    flag_code       varchar     not null,   -- vague / late / documented_before_activity / implausible_duration / overlap / future_dated
    severity        varchar     not null,   -- hold: minutes kept out of billing; warn: reported only
    message         varchar     not null,   -- never quotes the note, names or the MBI
    threshold       varchar     not null,   -- the setting it was judged against, e.g. '6 words', '24 hours'
    held_minutes    integer     not null,   -- 0 for a warning; the overlapped minutes for an overlap
    run_id          varchar     not null,   -- the run that first raised it
    raised_at       timestamptz not null,
    resolved_run_id varchar,                -- set when a later check of the same version no longer finds it
    resolved_at     timestamptz
);

-- Other stages create quality.flags empty (without these columns) when they run
-- first, so that they never depend on this stage having run: add them.
alter table quality.flags add column if not exists resolved_run_id varchar;
alter table quality.flags add column if not exists resolved_at timestamptz;

-- quality.validated_rows: every distinct row (a hash of its contract columns)
-- the suites have validated, per table, with the drop it was first validated in.
-- Reference tables arrive as full snapshots in every drop and overlapping exports
-- repeat activities: a row already validated is not validated again, only a new
-- or changed one (sql/quality/validation_rows.sql). Rows first validated in a
-- drop being checked again are validated again (a rerun restates its results).
create table if not exists quality.validated_rows (
    table_name  varchar not null,
    row_hash    ubigint not null,
    drop_name   varchar not null    -- the drop it was first validated in
);
