-- One row per code line of the batch claims whose claim_ordinal is between
-- $1 and $2 (one chunk of the batch), in the order the 837P writes them,
-- with the claim's values repeated and the element values SQL can decide:
-- LX01, SV102 and CLM02 as X12 amounts (66.10 -> 66.1, 60.00 -> 60), the HI
-- elements and SV107 pointers (the line's own diagnoses, else the claim's
-- first four). Text elements are cleaned in transforms/billing/x12_837p.py.
with chunk as (
    select * from batch_claims where claim_ordinal between $1 and $2
),
lines as (
    select
        b.*,
        l.cpt_code, l.units, l.charge_amount, l.date_of_service,
        row_number() over (partition by b.claim_id order by l.line_number, l.cpt_code) as lx,
        list_transform(
            list_filter(coalesce(l.icd10_codes, []), lambda code: list_contains(b.diagnoses, code)),
            lambda code: list_position(b.diagnoses, code))[1:4]::bigint[] as own_pointers
    from chunk b
    join claimable_lines l using (claim_id)
)
select
    claim_ordinal, hl, claim_id, patient_id, service_month, billing_npi, billing_provider_npi, rendering_name,
    mbi, first_name, last_name, birth_date, sex, address_line1, address_line2, city, state, zip,
    diagnoses,
    array_to_string(list_transform(diagnoses, lambda code, i: case when i = 1 then 'ABK:' else 'ABF:' end || code),
                    '*') as x12_hi,
    rtrim(rtrim(total_charge::varchar, '0'), '.') as x12_total_charge,
    lx, cpt_code, units, charge_amount, date_of_service,
    rtrim(rtrim(charge_amount::varchar, '0'), '.') as x12_charge,
    case when len(own_pointers) > 0 then own_pointers
         else range(1, least(len(diagnoses), 4) + 1) end as pointers,
    array_to_string(case when len(own_pointers) > 0 then own_pointers
                         else range(1, least(len(diagnoses), 4) + 1) end, ':') as x12_pointers
from lines
order by claim_ordinal, lx;
