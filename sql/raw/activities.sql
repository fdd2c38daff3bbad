-- raw.activities. Key: activity_id. Timestamps are instants: a naive landing
-- value was read as practice-local time, one with an offset as given.
create table if not exists raw.activities (
    activity_id      varchar     not null,
    patient_id       varchar     not null,
    staff_id         varchar     not null,
    started_at       timestamptz not null,
    duration_minutes integer     not null,
    activity_type    varchar     not null,
    face_to_face     boolean     not null,
    note             varchar,                -- empty notes are flagged by the documentation checks, not dropped
    documented_at    timestamptz not null,
    status           varchar     not null,   -- active / voided (empty in the landing = active)
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);
