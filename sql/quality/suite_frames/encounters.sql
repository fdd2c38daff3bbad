-- What the encounters suite validates: structure, the CPT/HCPCS code's format,
-- and the optional rendering NPI with its check digit (rendering_npi_valid).
select
    nullif(trim(encounter_id::varchar), '') as encounter_id,
    nullif(trim(patient_id::varchar), '') as patient_id,
    try_cast(encounter_date as date) as encounter_date,
    nullif(upper(trim(cpt_code::varchar)), '') as cpt_code,
    nullif(trim(rendering_npi::varchar), '') as rendering_npi,
    -- null unless it is 10 digits (the format expectation reports those)
    case when regexp_full_match(trim(rendering_npi::varchar), '[0-9]{10}') then npi_check_digit_ok(trim(rendering_npi::varchar)) end
        as rendering_npi_valid,
    _drop,
    _row_number
from validation_source
