-- staging.staff: current state per staff_id, with the role's billing class,
-- for the staff members in scope (_schema.sql).
create table if not exists staging.staff as
select * exclude (_file, _run_id), null::varchar as role_class from raw.staff limit 0;

delete from staging.staff where in_scope(staff_id);

insert into staging.staff by name
with current_staff as (
    select * exclude (_file, _run_id)
    from raw.staff
    where in_scope(staff_id)
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
