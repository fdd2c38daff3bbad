-- quality_validation_rows: the rows of one table its suite has to validate in this
-- run, from quality_table_rows (the table's raw rows in the drops checked, with
-- _key_hash: a hash of the drop and the columns its uniqueness expectation
-- reads, normalised). A row is validated in the first drop of this run that
-- carries it, unless the same row (every contract column alike) was validated in
-- an earlier run: a reference snapshot repeated in every drop costs nothing once
-- checked, and a changed row is checked. Whatever raw holds for the drops (full
-- snapshots, or only new and changed rows), the same rows are validated.
create or replace temp table quality_validation_rows as
with drop_rows as (
    select *, hash(*COLUMNS(lambda c: not starts_with(c, '_'))) as _row_hash
    from quality_table_rows
),
validated_before as (
    select row_hash
    from quality.validated_rows
    where table_name = getvariable('quality_table')
      and drop_name not in (select unnest(getvariable('quality_drops')))
),
first_drop_per_row as (
    select _row_hash, min(_drop) as first_drop
    from drop_rows
    group by _row_hash
)
select d.*
from drop_rows d
join first_drop_per_row f
  on f._row_hash = d._row_hash
 and f.first_drop = d._drop
where d._row_hash not in (select row_hash from validated_before);

-- The uniqueness expectation ("repeats within one drop") needs the other rows of
-- a key that a new row brings into its drop, even when they were seen before.
insert into quality_validation_rows
with keys_of_new_rows as (
    select distinct _drop, _key_hash
    from quality_validation_rows
),
drop_rows as (
    select *, hash(*COLUMNS(lambda c: not starts_with(c, '_'))) as _row_hash
    from quality_table_rows
    semi join keys_of_new_rows using (_drop, _key_hash)
)
select d.*
from drop_rows d
anti join quality_validation_rows v
       on v._drop = d._drop
      and v._row_hash = d._row_hash;
