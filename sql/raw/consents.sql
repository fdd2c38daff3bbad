-- raw.consents. Key: patient_id + consent_date.
create table if not exists raw.consents (
    patient_id   varchar not null,
    consent_date date    not null,
    method       varchar not null,
    billing_npi  varchar not null,
    revoked_date date,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);
