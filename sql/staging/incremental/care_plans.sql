-- staging.care_plans, incrementally: as staging/care_plans.sql and its part of
-- staging.rejected_rows (staging/activities.sql), for the rechecked keys (_scope.sql).
create or replace temp table current_care_plans as
select c.* exclude (_file, _run_id)
from raw.care_plans c
semi join recheck_care_plans r using (plan_id)
qualify row_number() over (partition by c.plan_id order by c._drop desc, c._row_number desc) = 1;

delete from staging.care_plans s using recheck_care_plans r where s.plan_id = r.plan_id;

insert into staging.care_plans by name
select c.*
from current_care_plans c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows t using recheck_care_plans r
where t.table_name = 'care_plans' and t.record_key = r.plan_id;

insert into staging.rejected_rows by name
select 'care_plans' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, c.plan_id as record_key
from current_care_plans c
anti join staging.patients p using (patient_id);

drop table current_care_plans;
