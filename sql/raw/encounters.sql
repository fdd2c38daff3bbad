-- raw.encounters. Key: encounter_id.
create table if not exists raw.encounters (
    encounter_id   varchar not null,
    patient_id     varchar not null,
    encounter_date date    not null,
    cpt_code       varchar not null,
    rendering_npi  varchar,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);
