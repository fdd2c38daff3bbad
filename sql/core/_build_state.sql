-- Bookkeeping of the incremental core builds (transforms/incremental.py).
--   build_state    per stage (minutes, codes): the fingerprint of what the
--                  build depends on besides the data (model SQL, rules,
--                  settings) and the drops it has seen. A new fingerprint
--                  means a full rebuild.
--   build_scope    patients whose minutes were recomputed and whose codes have
--                  not caught up yet; the codes stage empties it.
--   holds_applied  the documentation holds the last minutes build applied, so a
--                  changed hold (an amendment, a new overlap) puts its
--                  patient back in scope.
--   staff_applied  the staff roles and NPIs of the last minutes build: any
--                  change there rebuilds every patient.
create table if not exists core.build_state (
    stage        varchar primary key,
    fingerprint  varchar not null,
    built_drops  varchar[] not null,
    full_pending boolean not null default false,
    built_at     timestamptz not null
);
create table if not exists core.build_scope (
    patient_id varchar primary key
);
create table if not exists core.holds_applied (
    activity_id  varchar primary key,
    held_minutes integer not null
);
create table if not exists core.staff_applied (
    staff_id   varchar,
    role_class varchar,
    npi        varchar
);
