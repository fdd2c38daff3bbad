-- raw.conditions. Key: patient_id + icd10_code. chronic empty = decided from the code.
create table if not exists raw.conditions (
    patient_id    varchar not null,
    icd10_code    varchar not null,
    description   varchar,
    onset_date    date,
    resolved_date date,
    chronic       boolean,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);
