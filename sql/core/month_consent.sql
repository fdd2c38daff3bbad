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
-- The initiating visit: care management by a practitioner starts with their
-- first accepted consent (a new practitioner needs a new consent); the visit
-- that initiated it is the FIRST qualifying visit (core.rules_codes
-- initiating_visit, the service year's rules) by that practitioner from
-- lookback_months before that start to the month end. Minutes before it do not
-- count (core.activity_minutes: before_initiating_visit).
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
    select pm.patient_id, pm.service_month, c.consent_date, c.method, c.billing_npi, c.revoked_date,
           c.obtained_by, c.elements_explained, c._absent_columns as consent_absent_columns
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
first_consent_by_practitioner as (
    select patient_id, billing_npi, min(consent_date) as care_start_date
    from accepted_consents
    group by all
),
billing_practitioners as (
    -- a practitioner the consent names; min() keeps it deterministic if two staff rows share an NPI
    select npi, min(staff_id) as staff_id
    from staging.staff
    where role_class = 'practitioner' and npi is not null
    group by npi
),
month_practitioners as (
    select pm.patient_id, pm.service_month, pm.month_end, lc.billing_npi, fp.care_start_date,
           y.initiating_lookback_months
    from patient_months pm
    join latest_accepted_consent lc using (patient_id, service_month)
    join first_consent_by_practitioner fp on fp.patient_id = pm.patient_id and fp.billing_npi = lc.billing_npi
    join core.rules_years y on y.rules_year = year(pm.service_month)
),
initiating_visits as (
    select
        mp.patient_id,
        mp.service_month,
        min(e.encounter_date) as initiating_visit_date,
        arg_min(e.encounter_id, (e.encounter_date, e.encounter_id)) as initiating_encounter_id,
        arg_min(e.cpt_code, (e.encounter_date, e.encounter_id)) as initiating_visit_code
    from month_practitioners mp
    join staging.encounters e
        on e.patient_id = mp.patient_id
        and e.rendering_npi = mp.billing_npi
        and e.encounter_date between (mp.care_start_date - to_months(mp.initiating_lookback_months))::date
                                 and mp.month_end
    join core.rules_codes r
        on r.rules_year = year(mp.service_month) and r.purpose = 'initiating_visit' and r.cpt_code = e.cpt_code
    group by all
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
    lc.obtained_by as consent_obtained_by,
    lc.elements_explained as consent_elements_explained,
    lc.consent_absent_columns,
    fc.first_consent_date,
    lc.billing_npi,
    bp.staff_id as billing_staff_id,
    mp.care_start_date,
    iv.initiating_visit_date,
    iv.initiating_encounter_id,
    iv.initiating_visit_code
from patient_months pm
left join latest_accepted_consent lc using (patient_id, service_month)
left join month_practitioners mp using (patient_id, service_month)
left join initiating_visits iv using (patient_id, service_month)
left join any_consent ac using (patient_id, service_month)
left join first_accepted_consent fc on fc.patient_id = pm.patient_id and fc.first_consent_date <= pm.month_end
left join billing_practitioners bp on bp.npi = lc.billing_npi;
