-- Tables the billing stage fills from files rather than from SQL, rebuilt on
-- every run so a claim can always be traced to the rules it was priced under:
-- the yearly rules files (transforms/rules/<year>.yaml, loaded and validated by
-- transforms/core/rules.py) and the practice's billing providers (configuration).
create or replace table core.rules_years (
    rules_year                 integer not null primary key,
    rules_file                 varchar not null,
    conversion_factor          decimal(10, 4) not null,   -- non-QP, or the only one
    conversion_factor_qp       decimal(10, 4),            -- qualifying APM participants (from 2026)
    initiating_lookback_months integer not null,
    sources                    varchar[] not null,
    fee_source                 varchar not null,          -- the CMS relative value file and release
    coinsurance_rate           decimal(6, 4) not null,    -- the patient's share of the allowed amount
    sequestration_rate         decimal(6, 4) not null,    -- payment adjustment on Medicare's share (0 = none)
    timely_filing_months       integer not null,          -- 42 CFR 424.44
    locality                   varchar,                   -- '<MAC>-<locality>' priced, null = national
    gpci_file                  varchar
);

create or replace table core.rules_code_sets (
    rules_year                          integer not null,
    code_set                            varchar not null,
    preference                          integer not null,  -- order in the file: wins a payment tie
    exclusive_group                     integer not null,  -- at most one set per group per patient-month
    minutes_pool                        varchar not null,  -- total / practitioner / clinical_staff
    min_chronic_conditions              integer not null,
    max_chronic_conditions              integer,
    requires_complex_care_plan_in_month boolean not null,
    base_code                           varchar not null,
    base_minutes                        integer not null,
    add_on_code                         varchar,
    add_on_minutes                      integer,           -- each further full block
    add_on_max_units                    integer,           -- CPT's cap; null = none
    add_on_mue_units                    integer,           -- a payer's MUE cited in the rules file
    add_on_unit_cap                     integer,           -- the lower of the two; null = no cap
    care_plan_focus_qualifies           boolean not null,  -- PCM: a care plan's focus condition qualifies
    primary key (rules_year, code_set)
);

-- The fee schedule amount per unit, for practitioners who are qualifying APM
-- participants ('qp') or not ('non_qp'; both equal in a year with one conversion
-- factor), at the configured locality (else national). fee_amount null =
-- unpriced: never billed.
create or replace table core.rules_fees (
    rules_year           integer not null,
    cpt_code             varchar not null,
    practitioner_status  varchar not null,  -- non_qp / qp
    fee_amount           decimal(10, 2),    -- what the code pays per unit here
    national_amount      decimal(10, 2),    -- round(total RVU x conversion factor, 2)
    work_rvu             decimal(8, 2),
    pe_rvu               decimal(8, 2),     -- non-facility
    mp_rvu               decimal(8, 2),
    total_rvu            decimal(8, 2),     -- non-facility total
    charge_per_unit      decimal(10, 2),    -- the practice's charge master, else the fee amount
    primary key (rules_year, cpt_code, practitioner_status)
);

-- codes with a role in eligibility or minutes: initiating_visit,
-- conflicting_service (detail: the reason code), allowed_concurrent,
-- inpatient_place_of_service (cpt_code holds the 2-digit POS code)
create or replace table core.rules_codes (
    rules_year integer not null,
    purpose    varchar not null,
    cpt_code   varchar not null,
    detail     varchar,
    primary key (rules_year, purpose, cpt_code)
);

-- Billing practitioners who are qualifying APM participants in a year with a QP
-- conversion factor (configuration: billing.qualifying_apm_participants)
create or replace table core.rules_qp_practitioners (
    rules_year  integer not null,
    billing_npi varchar not null,
    primary key (rules_year, billing_npi)
);

create or replace table core.rules_chronic_icd10 (
    rules_year   integer not null,
    icd10_prefix varchar not null,
    category     varchar not null,
    primary key (rules_year, icd10_prefix)
);

create or replace table core.billing_provider_map (
    billing_npi          varchar not null primary key,  -- the practitioner the consent names
    billing_provider_npi varchar not null               -- the practice's group NPI (2010AA)
);
