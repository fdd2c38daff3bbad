-- Once, when quality.validated_rows is new in a warehouse whose drops were
-- validated before it existed: the rows of those drops (quality_table_rows over
-- quality.validated_drops) count as validated, so the next night validates only
-- what changed rather than a whole snapshot again.
insert into quality.validated_rows
select getvariable('quality_table'), hash(*COLUMNS(lambda c: not starts_with(c, '_'))) as row_hash, min(_drop)
from quality_table_rows
group by row_hash;
