-- staging.consents, incrementally: as staging/consents.sql and its part of
-- staging.rejected_rows (staging/activities.sql), for the rechecked keys (_scope.sql).
create or replace temp table current_consents as
select c.* exclude (_file, _run_id)
from raw.consents c
semi join recheck_consents r using (patient_id, consent_date)
qualify row_number() over (partition by c.patient_id, c.consent_date order by c._drop desc, c._row_number desc) = 1;

delete from staging.consents s using recheck_consents r where s.patient_id = r.patient_id and s.consent_date = r.consent_date;

insert into staging.consents by name
select c.*
from current_consents c
semi join staging.patients p using (patient_id);

delete from staging.rejected_rows t using recheck_consents r
where t.table_name = 'consents' and t.record_key = r.patient_id || '|' || r.consent_date;

insert into staging.rejected_rows by name
select 'consents' as table_name, c._drop as drop_name, c._row_number as row_number, 'patient_id' as column_name,
       'unknown patient' as reason, c.patient_id || '|' || c.consent_date as record_key
from current_consents c
anti join staging.patients p using (patient_id);

drop table current_consents;
