-- billing.withheld_claims: the claims tonight's claims stage withheld, one row per
-- claim and reason. A claim the data cannot make (a malformed MBI, an ICD-10 code
-- that is not one, no address, a birth date after the service month, a finding
-- pyx12 makes on its segments ...) is left out of the batch; every other claim
-- goes out. Its patient-month stays unbilled and is claimed again, by the next
-- run, once the data is fixed. Replaced by every claims stage: it says what is
-- withheld now (earlier nights: raw.runs.summary, claims.withheld_by_edit).
create table if not exists billing.withheld_claims (
    patient_id    varchar     not null,
    service_month date        not null,
    claim_id      varchar     not null,   -- the claim id it would have had (CLM01)
    edit          varchar     not null,   -- which edit, e.g. mbi, icd10, birth_date_future, pyx12
    reason        varchar     not null,   -- what is wrong and where to fix it; never an MBI, name or birth date
    run_id        varchar     not null,
    withheld_at   timestamptz not null
);
