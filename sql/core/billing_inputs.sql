-- Tables the billing stage fills from files rather than from SQL, rebuilt on
-- every run so a claim can always be traced to the rules it was priced under:
-- the yearly rules files (transforms/rules/<year>.yaml, loaded and validated by
-- transforms/core/rules.py) and the practice's billing providers (configuration).
create or replace table core.rules_years (
    rules_year                 integer not null primary key,
    rules_file                 varchar not null,
    conversion_factor          decimal(10, 4) not null,
    initiating_lookback_months integer not null,
    sources                    varchar[] not null
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
    add_on_max_units                    integer,
    primary key (rules_year, code_set)
);

-- fee_amount null = unpriced: never billed
create or replace table core.rules_fees (
    rules_year      integer not null,
    cpt_code        varchar not null,
    fee_amount      decimal(10, 2),
    charge_per_unit decimal(10, 2),  -- the practice's charge, else the fee amount
    primary key (rules_year, cpt_code)
);

-- codes with a role in eligibility: initiating_visit / conflicting_service
create or replace table core.rules_codes (
    rules_year integer not null,
    purpose    varchar not null,
    cpt_code   varchar not null,
    primary key (rules_year, purpose, cpt_code)
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
