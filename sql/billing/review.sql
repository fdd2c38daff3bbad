-- billing.review: billed patient-months whose codes or countable minutes have
-- since changed (late or voided documentation). Never billed again
-- automatically: a person decides (a corrected claim, or nothing).
-- A row is added when the current state differs from what was billed and from
-- the last review row of that patient-month, so a rerun adds nothing new.
create table if not exists billing.review (
    patient_id      varchar not null,
    service_month   date    not null,
    claim_id        varchar not null,
    batch_id        varchar not null,
    change          varchar not null,   -- codes / minutes
    billed_codes    varchar not null,
    billed_minutes  integer,
    current_codes   varchar not null,   -- what the month would bill now ('' = nothing)
    current_minutes integer,
    detected_run_id varchar not null,
    detected_at     timestamptz not null
);
