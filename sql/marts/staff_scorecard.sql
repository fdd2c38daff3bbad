-- marts.staff_scorecard: one row per staff member per service month
-- (quality.staff_scorecard), with the staff member's name and role, the share
-- of entries flagged, and flag counts by severity and the most frequent flag.
-- Per-flag-code breakdowns: group marts.dq_flags by staff_id and flag_code.
create or replace view marts.staff_scorecard as
with scorecard as (
    select staff_id, service_month, entries, minutes, flagged_entries, held_minutes
    from quality.staff_scorecard
),
staff as (
    select staff_id, any_value(full_name) as full_name, any_value(role) as role, any_value(role_class) as role_class
    from staging.staff
    group by staff_id
),
flag_counts as (
    select staff_id, service_month,
           count(*) filter (where severity = 'hold') as hold_flags,
           count(*) filter (where severity is distinct from 'hold') as warn_flags
    from marts.dq_flags
    group by staff_id, service_month
),
top_flags as (
    select staff_id, service_month, flag_code as top_flag_code, n as top_flag_count
    from (select staff_id, service_month, flag_code, count(*) as n from marts.dq_flags group by all)
    qualify row_number() over (partition by staff_id, service_month order by n desc, flag_code) = 1
)
select
    c.staff_id,
    s.full_name as staff_name,
    s.role as staff_role,
    s.role_class,
    c.service_month,
    coalesce(c.entries, 0)::bigint as entries,
    coalesce(c.minutes, 0)::bigint as minutes,
    coalesce(c.flagged_entries, 0)::bigint as flagged_entries,
    round(coalesce(c.flagged_entries, 0) / nullif(c.entries, 0), 4)::double as flagged_share,
    coalesce(f.hold_flags, 0) as hold_flags,
    coalesce(f.warn_flags, 0) as warn_flags,
    t.top_flag_code,
    coalesce(t.top_flag_count, 0) as top_flag_count,
    coalesce(c.held_minutes, 0)::bigint as held_minutes
from scorecard c
left join staff s using (staff_id)
left join flag_counts f using (staff_id, service_month)
left join top_flags t using (staff_id, service_month)
