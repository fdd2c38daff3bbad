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

-- Optional evidence columns (contract, second release): added by ALTER so that a
-- warehouse loaded before them keeps its rows. _absent_columns: the evidence
-- columns the row's file did not have (a gap to report, not missing evidence).
alter table raw.care_plans add column if not exists focus_icd10 varchar;  -- the one condition a PCM plan targets (upper case, no dot)
alter table raw.care_plans add column if not exists goals varchar;  -- problems, goals, interventions as the plan states them
alter table raw.care_plans add column if not exists _absent_columns varchar[];
