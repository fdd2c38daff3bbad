-- staging.conditions: current state per patient + ICD-10 code (codes stored
-- upper-case without the dot), for known patients only.
create or replace table staging.conditions as
select c.* exclude (_file, _run_id)
from raw.conditions c
semi join staging.patients p using (patient_id)
qualify row_number() over (partition by c.patient_id, c.icd10_code order by c._drop desc, c._row_number desc) = 1;
