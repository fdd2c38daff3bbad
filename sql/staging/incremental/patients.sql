-- staging.patients, incrementally: the newest version of every rechecked key
-- (see _scope.sql), as staging/patients.sql builds it from all of raw.
delete from staging.patients s using recheck_patients r where s.patient_id = r.patient_id;

insert into staging.patients by name
select p.* exclude (_file, _run_id)
from raw.patients p
semi join recheck_patients r using (patient_id)
qualify row_number() over (partition by p.patient_id order by p._drop desc, p._row_number desc) = 1;
