-- Bookkeeping of the incremental core builds (transforms/core/incremental.py).
--   build_state    per stage (minutes, codes): the fingerprint of what the
--                  build depends on besides the data (model SQL, rules,
--                  settings) and the drops it has seen. A new fingerprint
--                  means a full rebuild.
--   build_months   patient-months whose minutes were recomputed and whose
--                  codes have not caught up yet; the codes stage empties it.
--   holds_applied  the documentation holds the last minutes build applied, so a
--                  changed hold (an amendment, a new overlap) puts its
--                  activity's month back in scope.
--   staff_applied  the staff roles, NPIs and evidence (credential, supervisor)
--                  of the last minutes build: any change there rebuilds every
--                  patient-month.
create table if not exists core.build_state (
    stage        varchar primary key,
    fingerprint  varchar not null,
    built_drops  varchar[] not null,
    full_pending boolean not null default false,
    built_at     timestamptz not null
);
create table if not exists core.build_months (
    patient_id    varchar,
    service_month date,
    primary key (patient_id, service_month)
);
create table if not exists core.holds_applied (
    activity_id  varchar,   -- no key: replaced whole every build, and an index
    held_minutes integer    -- would make that commit cost seconds at 10M
);
create table if not exists core.staff_applied (
    staff_id   varchar,
    role_class varchar,
    npi        varchar
);
-- evidence the codes read (staff credential, supervisor): added after the first release
alter table core.staff_applied add column if not exists credential varchar;
alter table core.staff_applied add column if not exists supervising_npi varchar;
alter table core.staff_applied add column if not exists _absent_columns varchar[];
