-- raw.encounters. Key: encounter_id.
create table if not exists raw.encounters (
    encounter_id   varchar not null,
    patient_id     varchar not null,
    encounter_date date    not null,
    cpt_code       varchar not null,
    rendering_npi  varchar,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);

-- Optional evidence columns (contract, second release): added by ALTER so that a
-- warehouse loaded before them keeps its rows. _absent_columns: the evidence
-- columns the row's file did not have (a gap to report, not missing evidence).
alter table raw.encounters add column if not exists place_of_service varchar;  -- CMS POS code; 21, 31, 51, 61 = an inpatient stay
alter table raw.encounters add column if not exists discharge_date date;  -- end of an inpatient stay
alter table raw.encounters add column if not exists _absent_columns varchar[];
