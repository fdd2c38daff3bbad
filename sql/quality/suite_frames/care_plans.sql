-- What the care_plans suite validates: structure and the two vocabularies.
select
    nullif(trim(plan_id::varchar), '') as plan_id,
    nullif(trim(patient_id::varchar), '') as patient_id,
    try_cast(established_date as date) as established_date,
    nullif(trim(revision::varchar), '') as revision,
    nullif(trim(complexity::varchar), '') as complexity,
    _drop,
    _row_number
from validation_source
