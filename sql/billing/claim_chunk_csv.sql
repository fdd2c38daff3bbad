-- claim_lines.csv rows (no header) for the batch claims whose claim_ordinal is
-- between $2 and $3, as one text: the contract's columns, '\n' line ends,
-- fields quoted only when they hold a comma, a quote or a line break (what
-- Python's csv module writes). $1 = the batch id. People open this file in a
-- spreadsheet: csv_cell() (transforms/privacy.py) puts an apostrophe before a
-- value that would run as a formula (=, +, -, @, tab, CR); plain numbers stay.
with chunk as (
    select claim_id, claim_ordinal from batch_claims where claim_ordinal between $2 and $3
),
fields as (
    select
        c.claim_ordinal, l.line_number, l.cpt_code as sort_cpt,
        [$1, l.claim_id, l.billing_npi, l.patient_id, coalesce(l.mbi, ''), strftime(l.service_month, '%Y-%m'),
         strftime(l.date_of_service, '%Y-%m-%d'), l.cpt_code, coalesce(l.units::varchar, ''),
         coalesce(l.minutes::varchar, ''), array_to_string(coalesce(l.icd10_codes, []), ' '),
         l.charge_amount::decimal(18, 2)::varchar,
         coalesce(l.allowed_amount, 0)::decimal(18, 2)::varchar,
         coalesce(l.expected_payment, 0)::decimal(18, 2)::varchar,
         coalesce(l.patient_responsibility, 0)::decimal(18, 2)::varchar] as values
    from chunk c
    join claimable_lines l using (claim_id)
)
select string_agg(
           array_to_string(list_transform(list_transform(values, lambda v: csv_cell(v)), lambda v:
               case when regexp_matches(coalesce(v, ''), '[,"\r\n]') then '"' || replace(v, '"', '""') || '"'
                    else coalesce(v, '') end), ','),
           chr(10) order by claim_ordinal, line_number, sort_cpt) || chr(10) as csv
from fields;
