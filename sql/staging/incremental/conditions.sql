-- staging.conditions, incrementally: as staging/conditions.sql and its part of
-- staging.rejected_rows (staging/activities.sql), for the rechecked keys (_scope.sql).
create or replace temp table current_conditions as
select c.* exclude (_file, _run_id)
from raw.conditions c
semi join recheck_conditions r using (patient_id, icd10_code)
qualify row_number() over (partition by c.patient_id, c.icd10_code order by c._drop desc, c._row_number desc) = 1;

delete from staging.conditions s using recheck_conditions r where s.patient_id = r.patient_id and s.icd10_code = r.icd10_code;

insert into staging.conditions by name
select c.*
from current_conditions c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows t using recheck_conditions r
where t.table_name = 'conditions' and t.record_key = r.patient_id || '|' || r.icd10_code;

insert into staging.rejected_rows by name
select 'conditions' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, c.patient_id || '|' || c.icd10_code as record_key
from current_conditions c
anti join staging.patients p using (patient_id);

drop table current_conditions;
