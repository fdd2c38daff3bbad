-- staging.patients: current state per patient_id (newest drop wins; within a
-- drop, the later row).
create or replace table staging.patients as
select * exclude (_file, _run_id)
from raw.patients
qualify row_number() over (partition by patient_id order by _drop desc, _row_number desc) = 1;
