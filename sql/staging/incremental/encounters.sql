-- staging.encounters, incrementally: as staging/encounters.sql and its part of
-- staging.rejected_rows (staging/activities.sql), for the rechecked keys (_scope.sql).
create or replace temp table current_encounters as
select c.* exclude (_file, _run_id)
from raw.encounters c
semi join recheck_encounters r using (encounter_id)
qualify row_number() over (partition by c.encounter_id order by c._drop desc, c._row_number desc) = 1;

delete from staging.encounters s using recheck_encounters r where s.encounter_id = r.encounter_id;

insert into staging.encounters by name
select c.*
from current_encounters c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows t using recheck_encounters r
where t.table_name = 'encounters' and t.record_key = r.encounter_id;

insert into staging.rejected_rows by name
select 'encounters' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, c.encounter_id as record_key
from current_encounters c
anti join staging.patients p using (patient_id);

drop table current_encounters;
