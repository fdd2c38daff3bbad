-- What the conditions suite validates: the key, and the ICD-10 code's format.
select
    nullif(trim(patient_id::varchar), '') as patient_id,
    nullif(upper(replace(trim(icd10_code::varchar), '.', '')), '') as icd10_code,
    _drop,
    _row_number
from validation_source
