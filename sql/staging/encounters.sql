-- staging.encounters: current state per encounter_id, known patients only.
create or replace table staging.encounters as
select e.* exclude (_file, _run_id)
from raw.encounters e
semi join staging.patients p using (patient_id)
qualify row_number() over (partition by e.encounter_id order by e._drop desc, e._row_number desc) = 1;
