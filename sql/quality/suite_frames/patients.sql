-- What the patients suite validates. Identifying columns are replaced by their
-- shape (phi_shape keeps digit and letter classes, so the MBI and ZIP formats
-- check the same) or by whether they hold a date: Data Docs never show PHI.
select
    nullif(trim(patient_id::varchar), '') as patient_id,
    phi_shape(nullif(trim(mbi::varchar), '')) as mbi,
    phi_shape(nullif(trim(first_name::varchar), '')) as first_name,
    phi_shape(nullif(trim(last_name::varchar), '')) as last_name,
    case when try_cast(birth_date as date) is not null then 'a date' end as birth_date,
    nullif(trim(sex::varchar), '') as sex,
    phi_shape(nullif(trim(address_line1::varchar), '')) as address_line1,
    nullif(trim(city::varchar), '') as city,
    nullif(trim(state::varchar), '') as state,
    phi_shape(nullif(trim(zip::varchar), '')) as zip,
    nullif(trim(primary_payer::varchar), '') as primary_payer,
    _drop,
    _row_number
from validation_source
