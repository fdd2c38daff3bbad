-- The keys whose staging rows may change with the drops not staged yet
-- (temp table staging_pending_drops, from transforms/ingest/staging.py):
-- every key with a row in those drops (raw holds only new and changed rows),
-- and every key with a row naming a patient or staff member those drops
-- describe for the first time (rows that waited in staging.rejected_rows).
-- Patients and staff are never removed, so no other staging row can change.
create or replace temp table new_patients as
select distinct r.patient_id
from raw.patients r
semi join staging_pending_drops d on d.drop_name = r._drop
anti join staging.patients s on s.patient_id = r.patient_id;

create or replace temp table new_staff as
select distinct r.staff_id
from raw.staff r
semi join staging_pending_drops d on d.drop_name = r._drop
anti join staging.staff s on s.staff_id = r.staff_id;

create or replace temp table recheck_patients as
select distinct patient_id
from raw.patients r
semi join staging_pending_drops d on d.drop_name = r._drop;

create or replace temp table recheck_staff as
select distinct staff_id
from raw.staff r
semi join staging_pending_drops d on d.drop_name = r._drop;

create or replace temp table recheck_conditions as
select distinct patient_id, icd10_code
from raw.conditions
where _drop in (select drop_name from staging_pending_drops)
   or patient_id in (select patient_id from new_patients);

create or replace temp table recheck_consents as
select distinct patient_id, consent_date
from raw.consents
where _drop in (select drop_name from staging_pending_drops)
   or patient_id in (select patient_id from new_patients);

create or replace temp table recheck_care_plans as
select distinct plan_id
from raw.care_plans
where _drop in (select drop_name from staging_pending_drops)
   or patient_id in (select patient_id from new_patients);

create or replace temp table recheck_encounters as
select distinct encounter_id
from raw.encounters
where _drop in (select drop_name from staging_pending_drops)
   or patient_id in (select patient_id from new_patients);

create or replace temp table recheck_activities as
select distinct activity_id
from raw.activities
where _drop in (select drop_name from staging_pending_drops)
   or patient_id in (select patient_id from new_patients)
   or staff_id in (select staff_id from new_staff);
