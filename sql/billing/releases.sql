-- billing.releases: rejected claims released by `ccm resubmit`, so the next
-- run bills their patient-month again although what the claim says did not
-- change. One row per released claim, never deleted.
create table if not exists billing.releases (
    claim_id    varchar primary key,
    released_at timestamptz not null,
    released_by varchar             -- how: 'ccm resubmit --claim' or 'ccm resubmit --rejected'
);
