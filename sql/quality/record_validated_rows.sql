-- Remember the rows this run validates for one table (quality_validation_keys),
-- so that later drops repeating them do not validate them again. (Joined from
-- this run's rows, as in validation_rows.sql, to hash only those.)
insert into quality.validated_rows
select getvariable('quality_table'), _row_hash, min(_drop)
from quality_validation_keys
where _row_hash not in (
    select k._row_hash
    from quality_validation_keys k
    join quality.validated_rows v on v.row_hash = k._row_hash
    where v.table_name = getvariable('quality_table')
)
group by _row_hash;
