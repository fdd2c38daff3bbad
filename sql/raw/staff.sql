-- raw.staff. Key: staff_id. npi is empty for clinical staff who never bill.
create table if not exists raw.staff (
    staff_id  varchar not null,
    full_name varchar not null,
    role      varchar not null,
    npi       varchar,
    _drop varchar not null, _file varchar not null, _row_number bigint not null, _run_id varchar not null
);
