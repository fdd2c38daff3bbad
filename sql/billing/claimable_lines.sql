-- candidate_lines, claim_candidates and claimable_lines (temp, this connection only): the code
-- lines to claim tonight, with what the 837P needs. A patient-month is a
-- candidate when it is eligible, its month has closed by the as-of date (last
-- day + grace days), its filing limit has not passed by then (42 CFR 424.44;
-- the codes stage bills nothing past it already, this holds if the two ran
-- with different as-of dates) and it has no live claim in tonight's usage (T or P:
-- getvariable('claim_usage'); a test claim never stands in for a production
-- one). A candidate is claimed when it was never billed in this usage, or its
-- newest claim (rejected, since it is not live) was released by ccm resubmit,
-- or the claim would now say something else (content_hash: a corrected MBI,
-- codes, diagnoses, the practice's payer or provider settings in
-- claim_settings). A rejected claim whose content did not change waits:
-- decision 'held_unchanged'. Patients and staff are left-joined so missing
-- data fails a claim edit loudly instead of dropping a claim silently.
-- claim_settings (temp: billing_provider_npi, fingerprint) is filled by
-- transforms/billing/batch.py from the configuration.
create or replace temp table candidate_lines as
with closed_months as (
    select pm.*
    from core.patient_month pm
    where pm.eligible
      and last_day(pm.service_month) + getvariable('claim_grace_days')::integer <= getvariable('claim_as_of')::date
      and not coalesce(getvariable('claim_as_of')::date > pm.timely_filing_deadline, false)
),
not_live as (
    select m.*
    from closed_months m
    anti join (select patient_id, service_month from billing.live_claims
               where usage_indicator = getvariable('claim_usage')) lc using (patient_id, service_month)
),
practitioner_by_npi as (
    select npi, full_name
    from staging.staff
    where npi is not null
    qualify row_number() over (partition by npi order by role_class = 'practitioner' desc, staff_id) = 1
),
lines as (
    select
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
    join not_live m using (patient_id, service_month)
    left join staging.patients p using (patient_id)
    left join staging.staff s on s.staff_id = m.billing_staff_id
    left join practitioner_by_npi pn on pn.npi = cl.billing_npi
)
select * from lines;

create or replace temp table claim_candidates as
with contents as (               -- what each claim would say, hashed
    select
        l.patient_id, l.service_month,
        sha256(array_to_string([
            l.patient_id, l.service_month::varchar,
            coalesce(first(l.billing_npi order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.billing_provider_npi order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.rendering_name order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.mbi order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.first_name order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.last_name order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.birth_date order by l.line_number, l.cpt_code)::varchar, ''),
            coalesce(first(l.sex order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.address_line1 order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.address_line2 order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.city order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.state order by l.line_number, l.cpt_code), ''),
            coalesce(first(l.zip order by l.line_number, l.cpt_code), ''),
            coalesce(first(cs.fingerprint order by l.line_number, l.cpt_code), ''),
            string_agg(array_to_string([coalesce(l.line_number::varchar, ''), l.cpt_code,
                                        coalesce(l.units::varchar, ''), coalesce(l.charge_amount::varchar, ''),
                                        coalesce(l.date_of_service::varchar, ''),
                                        array_to_string(coalesce(l.icd10_codes, []), ' ')], ':'),
                       ';' order by l.line_number, l.cpt_code)
        ], '|')) as content_hash
    from candidate_lines l
    left join claim_settings cs using (billing_provider_npi)
    group by l.patient_id, l.service_month
),
previous as (               -- the newest claim of each candidate in this usage
    select l.patient_id, l.service_month, l.claim_id, l.content_hash, r.claim_id is not null as released
    from billing.ledger l
    semi join contents using (patient_id, service_month)
    left join billing.releases r on r.claim_id = l.claim_id
    where l.usage_indicator = getvariable('claim_usage')
    qualify row_number() over (partition by l.patient_id, l.service_month
                               order by l.committed_at desc, l.claim_id desc) = 1
),
claims_before as (          -- claims ever written for the patient-month, in any usage: numbers the next id
    select patient_id, service_month, count(*) as n
    from billing.ledger
    semi join contents using (patient_id, service_month)
    group by all
)
select
    c.patient_id,
    c.service_month,
    c.content_hash,
    p.claim_id as replaces_claim_id,
    case when p.claim_id is null then 'new'
         when p.released then 'rebill_released'
         when p.content_hash is not null and p.content_hash <> c.content_hash then 'rebill_changed'
         else 'held_unchanged' end as decision,
    -- the first claim keeps the id it always had; the n-th claim after it hashes n in
    'CCM' || strftime(c.service_month, '%y%m')
        || upper(left(sha256(c.patient_id || '|' || c.service_month::varchar
                             || case when coalesce(b.n, 0) = 0 then '' else '|' || b.n end), 12)) as claim_id
from contents c
left join previous p using (patient_id, service_month)
left join claims_before b using (patient_id, service_month);

create or replace temp table claimable_lines as
select c.claim_id, l.*, c.content_hash, c.replaces_claim_id
from candidate_lines l
join claim_candidates c using (patient_id, service_month)
where c.decision <> 'held_unchanged';
