-- staging.consents: current state per patient + consent date, known patients only.
create or replace table staging.consents as
select c.* exclude (_file, _run_id)
from raw.consents c
semi join staging.patients p using (patient_id)
qualify row_number() over (partition by c.patient_id, c.consent_date order by c._drop desc, c._row_number desc) = 1;
