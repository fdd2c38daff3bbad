-- staging.staff: current state per staff_id, with the role's billing class.
create or replace table staging.staff as
with current_staff as (
    select * exclude (_file, _run_id)
    from raw.staff
    qualify row_number() over (partition by staff_id order by _drop desc, _row_number desc) = 1
)
select
    *,
    case
        when role in ('physician', 'np', 'pa', 'cns', 'cnm') then 'practitioner'
        when role in ('rn', 'lpn', 'ma', 'pharmacist', 'care_coordinator') then 'clinical_staff'
        else 'non_clinical'
    end as role_class
from current_staff;
