-- After an incremental codes build: the columns of core.patient_month and
-- core.code_lines that depend on as_of alone, for the patients the build did
-- not recompute (same expressions as sql/core/patient_month.sql). Rows whose
-- month neither closed nor opened tonight only get the new as_of.
update core.patient_month
set month_closed = getvariable('as_of') >= last_day(service_month) + getvariable('claim_grace_days'),
    is_open_month = date_trunc('month', getvariable('as_of'))::date = service_month
        and getvariable('as_of') < last_day(service_month) + getvariable('claim_grace_days'),
    as_of = getvariable('as_of')
where as_of is distinct from getvariable('as_of');

update core.code_lines l
set month_closed = pm.month_closed
from core.patient_month pm
where pm.patient_id = l.patient_id
  and pm.service_month = l.service_month
  and l.month_closed is distinct from pm.month_closed;
