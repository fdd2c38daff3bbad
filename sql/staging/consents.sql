-- staging.consents: current state per patient + consent date, known patients only.
-- Rows naming a patient no drop has described wait in staging.rejected_rows.
-- For the keys in scope (_schema.sql).
create or replace temp table current_consents as
select * exclude (_file, _run_id)
from raw.consents
where in_scope(patient_id, consent_date)
qualify row_number() over (partition by patient_id, consent_date order by _drop desc, _row_number desc) = 1;

create table if not exists staging.consents as select * from current_consents limit 0;

delete from staging.consents where in_scope(patient_id, consent_date);

insert into staging.consents by name
select c.*
from current_consents c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows where table_name = 'consents' and in_scope_record(record_key);

insert into staging.rejected_rows by name
select 'consents' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, record_key(patient_id, consent_date) as record_key
from current_consents c
anti join staging.patients p using (patient_id);

drop table current_consents;
