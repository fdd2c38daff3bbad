-- raw.care_plans. Key: plan_id.
create table if not exists raw.care_plans (
    plan_id                  varchar not null,
    patient_id               varchar not null,
    established_date         date    not null,
    revised_date             date,
    revision                 varchar not null,
    complexity               varchar not null,
    shared_with_patient_date date,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);
