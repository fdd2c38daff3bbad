-- billing.claim_events: what each response said about each of our claims, in
-- the order it was read; never changed. marts.claim_status takes a claim's
-- status from these rows (an 835 outranks a 277CA, a 277CA a 999 or TA1; the
-- newest wins among equals). reason_codes are prefixed by their code list:
-- TA105:022, IK501:R, IK304:8, IK403:7, AK905:5, STC:A7:164:IL, CARC:CO-97,
-- RARC:N290 (words: billing.code_descriptions).
create table if not exists billing.claim_events (
    response_sha256            varchar not null,
    ordinal                    integer not null,   -- order within the file
    claim_id                   varchar not null,
    source                     varchar not null,   -- TA1, 999, 277CA, 835
    status                     varchar not null,   -- accepted, rejected, paid, partially_paid, denied, reversed
    reason_codes               varchar[] not null,
    payer_claim_control_number varchar,            -- 277CA REF*1K, 835 CLP07
    run_id                     varchar not null,
    read_at                    timestamptz not null,
    primary key (response_sha256, ordinal)
);

-- How much a response's word on a claim counts: an 835 (adjudication) over a
-- 277CA (the payer's front end) over a 999 or TA1 (the clearinghouse).
create or replace macro billing.event_rank(source) as
    case source when '835' then 3 when '277CA' then 2 else 1 end;
