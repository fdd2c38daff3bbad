-- core.code_choice: every code set of the service month's rules, evaluated
-- for every patient-month: the minutes of its pool, its units, what it would
-- pay, and whether it is the one billed. Within a mutually exclusive group the
-- billed set is the qualifying one with the highest fee schedule amount (what
-- Medicare's payment is a fixed share of); ties go to the earlier set in the
-- rules file. Amounts per line (base, add-on), each rounded to the cent:
--   charge    units x the practice's charge (core.rules_fees.charge_per_unit)
--   fee       units x the fee schedule amount (the practitioner's QP status, the locality)
--   allowed   the lower of charge and fee
--   share     round(allowed x (1 - coinsurance), 2): Medicare's 80%
--   expected  share - round(share x sequestration, 2): what Medicare pays
--   patient   allowed - share: the coinsurance (any unmet deductible is not known here)
create or replace table core.code_choice as
with code_set_candidates as (
    select
        e.patient_id,
        e.service_month,
        e.rules_year,
        e.eligible,
        cs.code_set,
        cs.preference,
        cs.exclusive_group,
        cs.minutes_pool,
        cs.base_code,
        cs.base_minutes,
        cs.add_on_code,
        cs.add_on_minutes,
        case cs.minutes_pool
            when 'total' then m.countable_minutes
            when 'practitioner' then m.practitioner_minutes
            when 'clinical_staff' then m.clinical_staff_minutes
        end as pool_minutes,
        e.chronic_condition_count between cs.min_chronic_conditions
            and coalesce(cs.max_chronic_conditions, e.chronic_condition_count)
            or (cs.care_plan_focus_qualifies and e.has_pcm_focus) as fits_conditions,
        cs.care_plan_focus_qualifies,
        cs.add_on_unit_cap,
        y.coinsurance_rate,
        y.sequestration_rate,
        not cs.requires_complex_care_plan_in_month or e.has_complex_care_plan_in_month as fits_care_plan,
        base_fee.fee_amount as base_fee,
        base_fee.charge_per_unit as base_charge,
        add_on_fee.fee_amount as add_on_fee,
        add_on_fee.charge_per_unit as add_on_charge
    from core.eligibility e
    join core.patient_month_minutes m using (patient_id, service_month)
    join core.rules_code_sets cs on cs.rules_year = e.rules_year
    join core.rules_years y on y.rules_year = e.rules_year
    -- the billing practitioner's conversion factor: qualifying APM participant or not
    left join core.rules_qp_practitioners qp on qp.rules_year = e.rules_year and qp.billing_npi = e.billing_npi
    left join core.rules_fees base_fee
        on base_fee.rules_year = cs.rules_year and base_fee.cpt_code = cs.base_code
        and base_fee.practitioner_status = case when qp.billing_npi is null then 'non_qp' else 'qp' end
    left join core.rules_fees add_on_fee
        on add_on_fee.rules_year = cs.rules_year and add_on_fee.cpt_code = cs.add_on_code
        and add_on_fee.practitioner_status = case when qp.billing_npi is null then 'non_qp' else 'qp' end
    where in_build(e.patient_id, e.service_month)
),
candidate_units as (
    select
        *,
        pool_minutes >= base_minutes as meets_base,
        -- an add-on unit per further FULL block: 39 standard minutes are 99490 alone
        case
            when pool_minutes >= base_minutes and add_on_code is not null and add_on_fee is not null
                then least(coalesce(add_on_unit_cap, 2147483647), (pool_minutes - base_minutes) // add_on_minutes)
            else 0
        end as add_on_units
    from code_set_candidates
),
candidate_thresholds as (
    select
        *,
        fits_conditions and fits_care_plan and meets_base and base_fee is not null as qualifies,
        case
            when pool_minutes < base_minutes then base_minutes
            when add_on_code is null or add_on_fee is null then null
            when add_on_units >= coalesce(add_on_unit_cap, 2147483647) then null
            else base_minutes + (add_on_units + 1) * add_on_minutes
        end as next_threshold_minutes
    from candidate_units
),
candidate_lines as (
    select
        *,
        case when qualifies then base_charge end as base_line_charge,
        case when qualifies then base_fee end as base_line_fee,
        case when qualifies and add_on_units > 0 then (add_on_units * add_on_charge)::decimal(10, 2) end
            as add_on_line_charge,
        case when qualifies and add_on_units > 0 then (add_on_units * add_on_fee)::decimal(10, 2) end
            as add_on_line_fee
    from candidate_thresholds
),
candidate_shares as (
    select
        *,
        least(base_line_charge, base_line_fee) as base_line_allowed,
        least(add_on_line_charge, add_on_line_fee) as add_on_line_allowed,
        round(least(base_line_charge, base_line_fee) * (1 - coinsurance_rate), 2)::decimal(10, 2) as base_line_share,
        round(least(add_on_line_charge, add_on_line_fee) * (1 - coinsurance_rate), 2)::decimal(10, 2)
            as add_on_line_share
    from candidate_lines
),
candidate_payments as (
    select
        *,
        (base_line_share - round(base_line_share * sequestration_rate, 2))::decimal(10, 2) as base_line_expected,
        (add_on_line_share - round(add_on_line_share * sequestration_rate, 2))::decimal(10, 2)
            as add_on_line_expected,
        (base_line_allowed - base_line_share)::decimal(10, 2) as base_line_patient,
        (add_on_line_allowed - add_on_line_share)::decimal(10, 2) as add_on_line_patient,
        (base_line_fee + coalesce(add_on_line_fee, 0))::decimal(10, 2) as fee_schedule_amount,
        (base_line_charge + coalesce(add_on_line_charge, 0))::decimal(10, 2) as charge_amount,
        (base_line_allowed + coalesce(add_on_line_allowed, 0))::decimal(10, 2) as allowed_amount,
        next_threshold_minutes - pool_minutes as minutes_to_next_threshold
    from candidate_shares
),
candidate_totals as (
    select
        *,
        (base_line_expected + coalesce(add_on_line_expected, 0))::decimal(10, 2) as expected_payment,
        (base_line_patient + coalesce(add_on_line_patient, 0))::decimal(10, 2) as patient_responsibility
    from candidate_payments
),
-- The two choices below are grouped arg_max lookups joined back, not window
-- functions: a window over every candidate sorts all ~25 columns of 7M rows
-- (10M activities) and took most of this model's time. Booleans rank
-- true > false > null and a missing payment or gap ranks last, as the
-- DESC/ASC NULLS LAST orders they replace did; preference is unique per year.
best_in_group as (
    select
        patient_id, service_month, exclusive_group,
        arg_max(code_set, struct_pack(
            q := case when qualifies then 2 when not qualifies then 1 else 0 end,
            pay := coalesce(fee_schedule_amount, -1),
            pref := -preference
        )) as best_code_set
    from candidate_totals
    group by all
),
billed_choices as (
    select c.*, c.eligible and c.qualifies and c.code_set = b.best_code_set as is_billed
    from candidate_totals c
    join best_in_group b using (patient_id, service_month, exclusive_group)
),
ladders as (
    -- the ladder shown as progress: the billed set; else, among priced sets the
    -- patient's conditions and care plan fit, the one that would bill (ineligible
    -- month), else the one closest to its next threshold
    select
        patient_id, service_month,
        arg_max(code_set, struct_pack(
            billed := case when is_billed then 2 when not is_billed then 1 else 0 end,
            fits := case when fits_conditions and fits_care_plan then 2
                         when not (fits_conditions and fits_care_plan) then 1 else 0 end,
            priced := case when base_fee is not null then 1 else 0 end,
            pay := coalesce(fee_schedule_amount, -1),
            gap := -coalesce(minutes_to_next_threshold, 2147483647),
            pref := -preference
        )) as ladder_code_set
    from billed_choices
    group by all
),
progress_ladders as (
    select c.*, c.code_set = l.ladder_code_set as is_progress_ladder
    from billed_choices c
    join ladders l using (patient_id, service_month)
),
threshold_dates as (
    -- the local date the pool first reached the base threshold, and the add-on's
    -- own (base + one block: 99439's is the day the 40th minute was logged), for
    -- the date of service 'threshold_met'
    select
        patient_id, service_month, code_set,
        min(activity_date) as threshold_met_date,
        min(activity_date) filter (where add_on_units > 0 and pool_so_far >= base_minutes + add_on_minutes)
            as add_on_threshold_met_date
    from (
        select r.patient_id, r.service_month, r.code_set, r.base_minutes, r.add_on_minutes, r.add_on_units,
               a.activity_date,
               case r.minutes_pool
                   when 'total' then a.cumulative_total_minutes
                   when 'practitioner' then a.cumulative_practitioner_minutes
                   when 'clinical_staff' then a.cumulative_clinical_staff_minutes
               end as pool_so_far
        from progress_ladders r
        join core.activity_minutes a using (patient_id, service_month)
        where r.meets_base
    )
    where pool_so_far >= base_minutes
    group by all
)
select
    r.patient_id,
    r.service_month,
    r.rules_year,
    r.code_set,
    r.preference,
    r.exclusive_group,
    r.minutes_pool,
    r.pool_minutes,
    r.fits_conditions,
    r.fits_care_plan,
    r.meets_base,
    r.base_fee is not null as base_is_priced,
    r.qualifies,
    r.base_code,
    r.base_minutes,
    r.add_on_code,
    r.add_on_minutes,
    r.add_on_units,
    r.add_on_unit_cap,
    r.care_plan_focus_qualifies,
    r.base_fee,
    r.add_on_fee,
    r.base_charge,
    r.add_on_charge,
    r.fee_schedule_amount,
    r.charge_amount,
    r.allowed_amount,
    r.expected_payment,
    r.patient_responsibility,
    r.base_line_charge,
    r.base_line_fee,
    r.base_line_allowed,
    r.base_line_expected,
    r.base_line_patient,
    r.add_on_line_charge,
    r.add_on_line_fee,
    r.add_on_line_allowed,
    r.add_on_line_expected,
    r.add_on_line_patient,
    r.next_threshold_minutes,
    r.minutes_to_next_threshold,
    t.threshold_met_date,
    t.add_on_threshold_met_date,
    r.is_billed,
    r.is_progress_ladder
from progress_ladders r
left join threshold_dates t using (patient_id, service_month, code_set);
