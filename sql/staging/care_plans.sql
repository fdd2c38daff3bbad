-- staging.care_plans: current state per plan_id, known patients only.
create or replace table staging.care_plans as
select c.* exclude (_file, _run_id)
from raw.care_plans c
semi join staging.patients p using (patient_id)
qualify row_number() over (partition by c.plan_id order by c._drop desc, c._row_number desc) = 1;
