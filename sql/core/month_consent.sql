-- Input written by the documentation checks (quality stage); created empty so
-- that minutes can be computed before, or without, that stage.
create table if not exists quality.activity_holds (
    activity_id  varchar,
    held_minutes integer,
    flag_codes   varchar
);

-- core.month_consent: one row per patient-month that has any activity version.
-- The consent in effect at the end of the month names the one billing
-- practitioner for the whole month (OIG found most CCM overpayments in months
-- billed twice, by one or two practitioners). Variable consent_methods holds
-- the methods the practice accepts.
create or replace table core.month_consent as
with patient_months as (
    select distinct patient_id, service_month, last_day(service_month) as month_end
    from staging.activity_versions
    where in_build(patient_id, service_month)
),
accepted_consents as (
    select *
    from staging.consents
    where list_contains(getvariable('consent_methods'), method)
),
latest_accepted_consent as (
    -- the newest accepted consent dated on or before the month end, even if
    -- revoked during the month: minutes before the revocation still bill
    select pm.patient_id, pm.service_month, c.consent_date, c.method, c.billing_npi, c.revoked_date
    from patient_months pm
    join accepted_consents c on c.patient_id = pm.patient_id and c.consent_date <= pm.month_end
    qualify row_number() over (partition by pm.patient_id, pm.service_month order by c.consent_date desc) = 1
),
first_accepted_consent as (
    -- when care management started, for the initiating-visit window
    select patient_id, min(consent_date) as first_consent_date
    from accepted_consents
    group by patient_id
),
any_consent as (
    select pm.patient_id, pm.service_month, count(*) as consents_on_file
    from patient_months pm
    join staging.consents c on c.patient_id = pm.patient_id and c.consent_date <= pm.month_end
    group by all
),
billing_practitioners as (
    -- a practitioner the consent names; min() keeps it deterministic if two staff rows share an NPI
    select npi, min(staff_id) as staff_id
    from staging.staff
    where role_class = 'practitioner' and npi is not null
    group by npi
)
select
    pm.patient_id,
    pm.service_month,
    case
        when lc.consent_date is not null and lc.revoked_date < pm.service_month then 'consent_revoked'
        when lc.consent_date is not null then 'ok'
        when ac.consents_on_file > 0 then 'consent_method_not_accepted'
        else 'no_consent'
    end as consent_status,
    lc.consent_date,
    lc.method as consent_method,
    lc.revoked_date,
    fc.first_consent_date,
    lc.billing_npi,
    bp.staff_id as billing_staff_id
from patient_months pm
left join latest_accepted_consent lc using (patient_id, service_month)
left join any_consent ac using (patient_id, service_month)
left join first_accepted_consent fc on fc.patient_id = pm.patient_id and fc.first_consent_date <= pm.month_end
left join billing_practitioners bp on bp.npi = lc.billing_npi;
