-- raw.staff. Key: staff_id. npi is empty for clinical staff who never bill.
create table if not exists raw.staff (
    staff_id  varchar not null,
    full_name varchar not null,
    role      varchar not null,
    npi       varchar,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);

-- Optional evidence columns (contract, second release): added by ALTER so that a
-- warehouse loaded before them keeps its rows. _absent_columns: the evidence
-- columns the row's file did not have (a gap to report, not missing evidence).
alter table raw.staff add column if not exists credential varchar;  -- as signed: RN, LPN, CMA, MD, NP-C ...
alter table raw.staff add column if not exists supervising_npi varchar;  -- the practitioner whose general supervision clinical staff work under
alter table raw.staff add column if not exists _absent_columns varchar[];
