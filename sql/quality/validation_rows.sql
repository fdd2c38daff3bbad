-- quality_validation_keys: which rows of one table its suite validates in this
-- run, as (_drop, _row_hash) pairs over quality_table_rows (the table's raw rows
-- in the drops checked, with _key_hash: a hash of the drop and the columns its
-- uniqueness expectation reads, normalised). _row_hash is a hash of every
-- contract column. A row is validated in the first drop of this run that
-- carries it, unless the same row was validated in an earlier run: a reference
-- snapshot repeated by every drop costs nothing once checked, and a changed row
-- is checked. Whatever raw holds for the drops (full snapshots, or only new and
-- changed rows), the same rows are validated. Narrow on purpose: the rows
-- themselves are read again from raw when the suite frames are built.
create or replace temp table quality_validation_keys as
with drop_rows as (
    select _drop, _key_hash, hash(*COLUMNS(lambda c: not starts_with(c, '_'))) as _row_hash
    from quality_table_rows
)
select min(_drop) as _drop, _row_hash, arg_min(_key_hash, _drop) as _key_hash
from drop_rows
group by _row_hash;

-- Out go the rows validated by an earlier run. An inner join from this run's
-- rows (a table of known, small size: the hash table is built on it) rather
-- than NOT IN over the history, which would hash every row ever validated.
delete from quality_validation_keys
where _row_hash in (
    select k._row_hash
    from quality_validation_keys k
    join quality.validated_rows v on v.row_hash = k._row_hash
    where v.table_name = getvariable('quality_table')
      and v.drop_name not in (select unnest(getvariable('quality_drops')))
);

-- The uniqueness expectation ("repeats within one drop") needs the other rows of
-- a key that a new row brings into its drop, even when they were seen before.
insert into quality_validation_keys
select distinct d._drop, hash(*COLUMNS(lambda c: not starts_with(c, '_'))) as _row_hash, d._key_hash
from quality_table_rows d
semi join (select distinct _drop, _key_hash from quality_validation_keys) k
       on k._drop = d._drop
      and k._key_hash = d._key_hash
where (d._drop, _row_hash) not in (select (_drop, _row_hash) from quality_validation_keys);
