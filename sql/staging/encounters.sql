-- staging.encounters: current state per encounter_id (newest drop wins), known
-- patients only; a newest version naming an unknown patient waits in
-- staging.rejected_rows.
create or replace table staging.encounters as
with current_encounters as (
    select * exclude (_file, _run_id)
    from raw.encounters
    qualify row_number() over (partition by encounter_id order by _drop desc, _row_number desc) = 1
)
select e.*
from current_encounters e
semi join staging.patients p using (patient_id);
