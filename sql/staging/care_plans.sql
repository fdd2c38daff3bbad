-- staging.care_plans: current state per plan_id (newest drop wins), known patients
-- only: a newest version naming an unknown patient is held, never an older one used.
-- Rows naming a patient no drop has described wait in staging.rejected_rows.
-- For the keys in scope (_schema.sql).
create or replace temp table current_care_plans as
select * exclude (_file, _run_id)
from raw.care_plans
where in_scope(plan_id)
qualify row_number() over (partition by plan_id order by _drop desc, _row_number desc) = 1;

create table if not exists staging.care_plans as select * from current_care_plans limit 0;

delete from staging.care_plans where in_scope(plan_id);

insert into staging.care_plans by name
select c.*
from current_care_plans c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows where table_name = 'care_plans' and in_scope_record(record_key);

insert into staging.rejected_rows by name
select 'care_plans' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, record_key(plan_id) as record_key
from current_care_plans c
anti join staging.patients p using (patient_id);

drop table current_care_plans;
