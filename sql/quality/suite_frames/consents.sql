-- What the consents suite validates: structure, the consent method, and the
-- billing practitioner's NPI with its check digit (billing_npi_valid).
select
    nullif(trim(patient_id::varchar), '') as patient_id,
    try_cast(consent_date as date) as consent_date,
    nullif(trim(method::varchar), '') as method,
    nullif(trim(billing_npi::varchar), '') as billing_npi,
    -- null unless it is 10 digits (the format expectation reports those)
    case when regexp_full_match(trim(billing_npi::varchar), '[0-9]{10}') then npi_check_digit_ok(trim(billing_npi::varchar)) end
        as billing_npi_valid,
    _drop,
    _row_number
from validation_source
