-- staging.patients: current state per patient_id (newest drop wins; within a
-- drop, the later row), for the patients in scope (_schema.sql).
create table if not exists staging.patients as
select * exclude (_file, _run_id) from raw.patients limit 0;

delete from staging.patients where in_scope(patient_id);

insert into staging.patients by name
select * exclude (_file, _run_id)
from raw.patients
where in_scope(patient_id)
qualify row_number() over (partition by patient_id order by _drop desc, _row_number desc) = 1;
