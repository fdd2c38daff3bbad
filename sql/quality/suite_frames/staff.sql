-- What the staff suite validates: structure, and the NPI's check digit as a
-- computed column (npi_valid; null where the optional NPI is empty).
select
    nullif(trim(staff_id::varchar), '') as staff_id,
    nullif(trim(full_name::varchar), '') as full_name,
    nullif(trim(role::varchar), '') as role,
    nullif(trim(npi::varchar), '') as npi,
    -- null unless it is 10 digits (the format expectation reports those)
    case when regexp_full_match(trim(npi::varchar), '[0-9]{10}') then npi_check_digit_ok(trim(npi::varchar)) end
        as npi_valid,
    _drop,
    _row_number
from validation_source
