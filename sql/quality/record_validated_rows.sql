-- Remember the rows this run validates for one table (quality_validation_keys),
-- so that later drops repeating them do not validate them again.
insert into quality.validated_rows
select getvariable('quality_table'), _row_hash, min(_drop)
from quality_validation_keys
where _row_hash not in (
    select row_hash from quality.validated_rows where table_name = getvariable('quality_table')
)
group by _row_hash;
