-- marts.reason_codes: one row per reason code any response gave (billing.
-- claim_events, billing.acknowledgments), in words, from the shipped code
-- lists (billing.code_descriptions; transforms/billing/codes/). The other
-- revenue-cycle marts join it to say why. A code no list holds is named as such.
create or replace view marts.reason_codes as
with seen as (
    select distinct unnest(reason_codes) as reason_code from billing.claim_events
    union
    select distinct unnest(reason_codes) from billing.acknowledgments
),
parts as (
    select reason_code, split_part(reason_code, ':', 1) as prefix, string_split(reason_code, ':') as p
    from seen
),
codes as (
    select code_list, code, description from billing.code_descriptions
)
select
    x.reason_code,
    lower(x.prefix) as code_list,
    case
        when x.prefix = 'STC' then concat_ws('; ',
            coalesce(cat.description, 'claim status category ' || x.p[2] || ' (not in our code list)'),
            coalesce(st.description, 'claim status ' || x.p[3] || ' (not in our code list)'),
            case when len(x.p) >= 4 and x.p[4] <> '' then coalesce(ent.description, 'entity ' || x.p[4]) end)
        when x.prefix = 'CARC' then
            coalesce(carc.description, 'CARC ' || split_part(x.p[2], '-', 2) || ' (not in our code list)')
            || ' (' || split_part(x.p[2], '-', 1) || ', ' || coalesce(grp.description, 'group not in our code list')
            || ')'
        else coalesce(d.description, x.prefix || ' ' || coalesce(x.p[2], '') || ' (not in our code list)')
    end as words
from parts x
left join codes d on d.code_list = lower(x.prefix) and d.code = x.p[2]
left join codes cat on x.prefix = 'STC' and cat.code_list = 'stc_category' and cat.code = x.p[2]
left join codes st on x.prefix = 'STC' and st.code_list = 'stc_status' and st.code = x.p[3]
left join codes ent on x.prefix = 'STC' and ent.code_list = 'stc_entity' and ent.code = x.p[4]
left join codes grp on x.prefix = 'CARC' and grp.code_list = 'cas_group' and grp.code = split_part(x.p[2], '-', 1)
left join codes carc on x.prefix = 'CARC' and carc.code_list = 'carc' and carc.code = split_part(x.p[2], '-', 2)
