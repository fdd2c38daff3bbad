-- claimable_lines (temp, this connection only): the code lines to claim
-- tonight, with what the 837P needs. A patient-month is claimable when it is
-- eligible, its month has closed by the as-of date (last day + grace days),
-- its filing limit has not passed by then (42 CFR 424.44; the codes stage
-- bills nothing past it already, this holds if the two ran with different
-- as-of dates) and it is not in the ledger. Patients and staff are left-joined so missing
-- data fails a claim edit loudly instead of dropping a claim silently.
create or replace temp table claimable_lines as
with closed_unbilled_months as (
    select pm.*
    from core.patient_month pm
    anti join billing.ledger l using (patient_id, service_month)
    where pm.eligible
      and last_day(pm.service_month) + getvariable('claim_grace_days')::integer <= getvariable('claim_as_of')::date
      and not coalesce(getvariable('claim_as_of')::date > pm.timely_filing_deadline, false)
),
practitioner_by_npi as (
    select npi, full_name
    from staging.staff
    where npi is not null
    qualify row_number() over (partition by npi order by role_class = 'practitioner' desc, staff_id) = 1
)
select
    'CCM' || strftime(cl.service_month, '%y%m')
        || upper(left(sha256(cl.patient_id || '|' || cl.service_month::varchar), 12)) as claim_id,
    cl.patient_id,
    cl.service_month,
    cl.billing_npi,
    cl.billing_provider_npi,
    cl.line_number,
    cl.cpt_code,
    cl.units,
    cl.minutes,
    cl.charge_amount,
    cl.allowed_amount,
    cl.expected_payment,
    cl.patient_responsibility,
    cl.date_of_service,
    cl.icd10_codes,
    m.countable_minutes,
    m.clinical_staff_minutes,
    m.practitioner_minutes,
    m.billing_staff_id,
    -- NM1*82 must name the person the NPI belongs to
    coalesce(case when s.npi = cl.billing_npi then s.full_name end, pn.full_name) as rendering_name,
    p.mbi, p.first_name, p.last_name, p.birth_date, p.sex,
    p.address_line1, p.address_line2, p.city, p.state, p.zip
from core.code_lines cl
join closed_unbilled_months m using (patient_id, service_month)
left join staging.patients p using (patient_id)
left join staging.staff s on s.staff_id = m.billing_staff_id
left join practitioner_by_npi pn on pn.npi = cl.billing_npi;
