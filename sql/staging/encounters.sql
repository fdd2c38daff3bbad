-- staging.encounters: current state per encounter_id (newest drop wins), known
-- patients only: a newest version naming an unknown patient is held, never an older one used.
-- Rows naming a patient no drop has described wait in staging.rejected_rows.
-- For the keys in scope (_schema.sql).
create or replace temp table current_encounters as
select * exclude (_file, _run_id)
from raw.encounters
where in_scope(encounter_id)
qualify row_number() over (partition by encounter_id order by _drop desc, _row_number desc) = 1;

create table if not exists staging.encounters as select * from current_encounters limit 0;

delete from staging.encounters where in_scope(encounter_id);

insert into staging.encounters by name
select c.*
from current_encounters c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows where table_name = 'encounters' and in_scope_record(record_key);

insert into staging.rejected_rows by name
select 'encounters' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, record_key(encounter_id) as record_key
from current_encounters c
anti join staging.patients p using (patient_id);

drop table current_encounters;
