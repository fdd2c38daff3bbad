-- staging.conditions: current state per patient + ICD-10 code (codes stored
-- upper-case without the dot), for known patients only.
-- Rows naming a patient no drop has described wait in staging.rejected_rows.
-- For the keys in scope (_schema.sql).
create or replace temp table current_conditions as
select * exclude (_file, _run_id)
from raw.conditions
where in_scope(patient_id, icd10_code)
qualify row_number() over (partition by patient_id, icd10_code order by _drop desc, _row_number desc) = 1;

create table if not exists staging.conditions as select * from current_conditions limit 0;

delete from staging.conditions where in_scope(patient_id, icd10_code);

insert into staging.conditions by name
select c.*
from current_conditions c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows where table_name = 'conditions' and in_scope_record(record_key);

insert into staging.rejected_rows by name
select 'conditions' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, record_key(patient_id, icd10_code) as record_key
from current_conditions c
anti join staging.patients p using (patient_id);

drop table current_conditions;
