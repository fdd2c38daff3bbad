-- batch_claims (temp, this connection only): one row per claim of tonight's
-- batch, from claimable_lines. Claim-level values are taken from the claim's
-- first line (line_number, cpt_code), as the 837P names them once per claim.
-- claim_ordinal: the order claims are written in (billing provider, service
-- month, patient); hl: the claim's HL01 in its provider's interchange;
-- audit_ordinal: claim id order, the order audit packets are written in.
-- diagnoses: the claim's ICD-10 codes, primary first, each once, at most 12
-- (what HI holds). The *_count and shape columns feed the edits and the
-- pyx12 sample.
create or replace temp table batch_claims as
with claims as (
    select
        claim_id,
        first(patient_id order by line_number, cpt_code) as patient_id,
        first(service_month order by line_number, cpt_code) as service_month,
        first(billing_npi order by line_number, cpt_code) as billing_npi,
        first(billing_provider_npi order by line_number, cpt_code) as billing_provider_npi,
        count(distinct (billing_npi, billing_provider_npi)) as practitioner_count,
        count(distinct (patient_id, service_month)) as patient_month_count,
        count(*) as line_count,
        list_distinct(list(cpt_code)) as cpt_codes,
        flatten(list(coalesce(icd10_codes, []) order by line_number, cpt_code)) as all_codes,
        first(countable_minutes order by line_number, cpt_code) as countable_minutes,
        first(clinical_staff_minutes order by line_number, cpt_code) as clinical_staff_minutes,
        first(practitioner_minutes order by line_number, cpt_code) as practitioner_minutes,
        first(rendering_name order by line_number, cpt_code) as rendering_name,
        first(mbi order by line_number, cpt_code) as mbi,
        first(first_name order by line_number, cpt_code) as first_name,
        first(last_name order by line_number, cpt_code) as last_name,
        first(birth_date order by line_number, cpt_code) as birth_date,
        first(sex order by line_number, cpt_code) as sex,
        first(address_line1 order by line_number, cpt_code) as address_line1,
        first(address_line2 order by line_number, cpt_code) as address_line2,
        first(city order by line_number, cpt_code) as city,
        first(state order by line_number, cpt_code) as state,
        first(zip order by line_number, cpt_code) as zip,
        sum(charge_amount) as total_charge
    from claimable_lines
    group by claim_id
)
select
    * exclude (all_codes),
    list_filter(all_codes, lambda code, i: list_position(all_codes, code) = i)[1:12] as diagnoses,
    all_codes as qualifying_codes,
    row_number() over (order by billing_provider_npi, service_month, patient_id, claim_id) as claim_ordinal,
    row_number() over (partition by billing_provider_npi order by service_month, patient_id, claim_id) + 1 as hl,
    row_number() over (order by claim_id) as audit_ordinal
from claims;
