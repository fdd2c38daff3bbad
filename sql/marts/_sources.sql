-- What the marts read, as the marts expect it. Every table below is created
-- by its own stage (core: minutes/codes, quality: validate); these statements
-- only make an empty one where that stage has not run yet, so every marts view
-- always binds. billing.* and quality.flags are not stood in for: build_marts
-- creates them from their own DDL (sql/billing, sql/quality/_schema.sql), so a
-- narrower stand-in can never pre-empt the real table.
-- `create table if not exists` never touches a table that exists.
-- The views name only the columns listed here; extra columns are ignored.

create table if not exists core.patient_month (
    patient_id                  varchar,
    service_month               date,        -- first day of the month, practice time
    rules_year                  integer,
    billing_npi                 varchar,     -- the billing practitioner's NPI (consent)
    billing_staff_id            varchar,     -- the billing practitioner's staff_id
    billing_provider_npi        varchar,     -- the group NPI the claim goes out under (2010AA)
    clinical_staff_minutes      integer,
    practitioner_minutes        integer,
    countable_minutes           integer,
    excluded_face_to_face       integer,
    excluded_non_clinical_role  integer,
    excluded_before_consent     integer,
    excluded_after_revocation   integer,
    excluded_held_documentation integer,
    excluded_voided             integer,
    excluded_duplicate          integer,
    excluded_inpatient_stay     integer,
    excluded_before_initiating_visit integer,
    chronic_condition_count     integer,
    qualifying_icd10            varchar[],
    initiating_visit_date       date,
    eligible                    boolean,
    evidence_gaps               varchar[],   -- e.g. 'not_exported: care_plans.goals'
    code_set                    varchar,
    billed_codes                varchar,     -- e.g. '99490 99439x2'
    fee_schedule_amount         decimal(10, 2),
    charge_amount               decimal(10, 2),
    allowed_amount              decimal(10, 2),
    expected_payment            decimal(10, 2),
    patient_responsibility      decimal(10, 2),
    date_of_service             date,
    timely_filing_deadline      date,
    timely_filing_status        varchar,     -- ok / due_soon / past
    reasons_not_billed          varchar[],   -- e.g. 'below_threshold: 19 of 20 minutes'
    next_threshold_minutes      integer,
    minutes_to_next_threshold   integer,
    month_closed                boolean
);

create table if not exists core.code_lines (
    patient_id           varchar,
    service_month        date,
    billing_npi          varchar,
    billing_provider_npi varchar,
    cpt_code             varchar,
    units                integer,
    minutes              integer,
    charge_amount        decimal(10, 2),
    fee_schedule_amount  decimal(10, 2),
    allowed_amount       decimal(10, 2),
    expected_payment     decimal(10, 2),
    patient_responsibility decimal(10, 2),
    date_of_service      date,
    line_number          integer,
    icd10_codes          varchar[]
);

create table if not exists core.activity_minutes (
    activity_id       varchar,
    patient_id        varchar,
    staff_id          varchar,
    role_class        varchar,
    service_month     date,
    activity_date     date,
    duration_minutes  integer,
    countable_minutes integer,
    counted_as        varchar,
    excluded_minutes  integer,
    exclusion_reason  varchar
);

create table if not exists quality.staff_scorecard (
    staff_id        varchar,
    service_month   date,
    entries         integer,
    minutes         integer,
    flagged_entries integer,
    held_minutes    integer
);

create table if not exists staging.patients (
    patient_id varchar,
    first_name varchar,
    last_name  varchar
);

create table if not exists staging.staff (
    staff_id   varchar,
    full_name  varchar,
    role       varchar,
    role_class varchar
);

create table if not exists staging.activities (
    activity_id      varchar,
    patient_id       varchar,
    staff_id         varchar,
    started_at_local timestamp
);

-- The base code's fee per rules year, read from the rules files by
-- build_marts (transforms/marts/views.py): the national amount for practitioners
-- who are not qualifying APM participants. marts.patient_month prefers the fee
-- the rules engine actually used (core.code_lines) and falls back to this.
create table if not exists marts.fee_reference (
    rules_year integer,
    cpt_code   varchar,
    fee        decimal(10, 2),
    source     varchar
);
