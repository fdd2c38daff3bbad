-- staging.care_plans: current state per plan_id (newest drop wins), known
-- patients only; a newest version naming an unknown patient waits in
-- staging.rejected_rows.
create or replace table staging.care_plans as
with current_plans as (
    select * exclude (_file, _run_id)
    from raw.care_plans
    qualify row_number() over (partition by plan_id order by _drop desc, _row_number desc) = 1
)
select c.*
from current_plans c
semi join staging.patients p using (patient_id);
