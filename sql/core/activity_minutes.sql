-- core.activity_minutes: one row per activity version (voided and unmatched
-- ones too, so every logged minute is accounted for), with the minutes that
-- count toward billing and why the rest do not. One exclusion reason per
-- activity, the first that applies in the order below; a documentation hold
-- removes only the held minutes. No rounding anywhere. Variables:
-- consent_methods, revocation_effective (revocation_date: nothing after the day
-- it is dated counts; end_of_month: CMS's reading, the rest of its month counts).
create or replace table core.activity_minutes as
with versions as (
    select
        a.activity_id,
        a.patient_id,
        a.staff_id,
        s.role_class,
        a.service_month,
        a.started_at_local,
        a.started_at_local::date as activity_date,
        a.duration_minutes,
        a.face_to_face,
        a.status,
        a.started_at,
        p.patient_id is not null and s.staff_id is not null as is_known
    from staging.activity_versions a
    left join staging.staff s on s.staff_id = a.staff_id
    left join staging.patients p on p.patient_id = a.patient_id
    where in_build(a.patient_id, a.service_month)
),
duplicate_ids as (
    -- the same time logged twice under two ids: the later id is the copy. One
    -- row per activity id (its current version), so an activity repeated or
    -- amended in later drops is never a copy of itself.
    select activity_id
    from versions
    where status = 'active'
    qualify row_number() over (
        partition by patient_id, staff_id, started_at, duration_minutes order by activity_id
    ) > 1
),
inpatient_days as (
    -- during an inpatient stay (an encounter at an inpatient place of service,
    -- from its date through its discharge date; the admission day alone without
    -- one) the time does not count
    select distinct v.activity_id
    from versions v
    join staging.encounters e
        on e.patient_id = v.patient_id
        and v.activity_date between e.encounter_date and coalesce(e.discharge_date, e.encounter_date)
    join core.rules_codes r
        on r.rules_year = year(v.service_month) and r.purpose = 'inpatient_place_of_service'
        and r.cpt_code = e.place_of_service
),
consent_cover as (
    -- covered: an accepted consent dated on/before the activity and not revoked
    -- before it (the revocation day itself still counts)
    select
        v.activity_id,
        bool_or(c.revoked_date is null or v.activity_date <= case getvariable('revocation_effective')
                                                                  when 'end_of_month' then last_day(c.revoked_date)
                                                                  else c.revoked_date end) as is_covered
    from versions v
    join staging.consents c
        on c.patient_id = v.patient_id
        and c.consent_date <= v.activity_date
        and list_contains(getvariable('consent_methods'), c.method)
    group by v.activity_id
),
held as (
    select activity_id, sum(greatest(held_minutes, 0)) as held_minutes
    from quality.activity_holds
    group by activity_id
),
classified as (
    select
        v.*,
        mc.billing_staff_id,
        case
            when v.status = 'voided' then 'voided'
            when not v.is_known then 'unknown_patient_or_staff'
            when d.activity_id is not null then 'duplicate'
            when v.role_class = 'non_clinical' then 'non_clinical_role'
            when v.face_to_face then 'face_to_face'
            when cc.is_covered is null then 'before_consent'
            -- consented before but not covered now: a revocation came first
            when not cc.is_covered then 'after_revocation'
            when ip.activity_id is not null then 'inpatient_stay'
            -- the visit that initiated care management comes first (same day counts)
            when v.activity_date < mc.initiating_visit_date then 'before_initiating_visit'
        end as whole_exclusion,
        least(coalesce(h.held_minutes, 0), v.duration_minutes)::integer as held_minutes
    from versions v
    left join duplicate_ids d using (activity_id)
    left join consent_cover cc using (activity_id)
    left join held h using (activity_id)
    left join inpatient_days ip using (activity_id)
    left join core.month_consent mc using (patient_id, service_month)
),
counted as (
    select
        *,
        case when whole_exclusion is null then duration_minutes - held_minutes else 0 end as countable_minutes
    from classified
),
attributed as (
    select
        *,
        -- another practitioner's time counts as clinical-staff time, never toward 99491
        case
            when countable_minutes > 0 and staff_id = billing_staff_id then 'practitioner'
            when countable_minutes > 0 then 'clinical_staff'
        end as counted_as
    from counted
)
select
    activity_id,
    patient_id,
    staff_id,
    role_class,
    service_month,
    activity_date,
    started_at_local,
    duration_minutes,
    countable_minutes,
    counted_as,
    coalesce(staff_id = billing_staff_id, false) as is_billing_practitioner,
    duration_minutes - countable_minutes as excluded_minutes,
    coalesce(whole_exclusion, case when held_minutes > 0 then 'held_documentation' end) as exclusion_reason,
    -- running totals per minutes pool, for the date a threshold was first met
    (sum(countable_minutes) over month_so_far)::integer as cumulative_total_minutes,
    (sum(case when counted_as = 'practitioner' then countable_minutes else 0 end) over month_so_far)::integer
        as cumulative_practitioner_minutes,
    (sum(case when counted_as = 'clinical_staff' then countable_minutes else 0 end) over month_so_far)::integer
        as cumulative_clinical_staff_minutes
from attributed
window month_so_far as (
    partition by patient_id, service_month
    order by started_at_local, activity_id
    rows between unbounded preceding and current row
);
