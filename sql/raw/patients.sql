-- raw.patients: every typed row of every drop's patients file. Key: patient_id.
create table if not exists raw.patients (
    patient_id    varchar not null,
    mbi           varchar not null,
    first_name    varchar not null,
    last_name     varchar not null,
    birth_date    date    not null,
    sex           varchar not null,
    address_line1 varchar not null,
    address_line2 varchar,
    city          varchar not null,
    state         varchar not null,
    zip           varchar not null,
    primary_payer varchar not null,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);
