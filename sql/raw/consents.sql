-- raw.consents. Key: patient_id + consent_date.
create table if not exists raw.consents (
    patient_id   varchar not null,
    consent_date date    not null,
    method       varchar not null,
    billing_npi  varchar not null,
    revoked_date date,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);

-- Optional evidence columns (contract, second release): added by ALTER so that a
-- warehouse loaded before them keeps its rows. _absent_columns: the evidence
-- columns the row's file did not have (a gap to report, not missing evidence).
alter table raw.consents add column if not exists obtained_by varchar;  -- staff_id of who obtained the consent
alter table raw.consents add column if not exists elements_explained varchar;  -- ';'-separated, lower case: availability;cost_sharing;one_practitioner;right_to_stop
alter table raw.consents add column if not exists _absent_columns varchar[];
