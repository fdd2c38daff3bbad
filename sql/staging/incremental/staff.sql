-- staging.staff, incrementally: as staging/staff.sql, for the rechecked keys.
delete from staging.staff s using recheck_staff r where s.staff_id = r.staff_id;

insert into staging.staff by name
with current_staff as (
    select s.* exclude (_file, _run_id)
    from raw.staff s
    semi join recheck_staff r using (staff_id)
    qualify row_number() over (partition by s.staff_id order by s._drop desc, s._row_number desc) = 1
)
select
    *,
    case
        when role in ('physician', 'np', 'pa', 'cns', 'cnm') then 'practitioner'
        when role in ('rn', 'lpn', 'ma', 'pharmacist', 'care_coordinator') then 'clinical_staff'
        else 'non_clinical'
    end as role_class
from current_staff;
