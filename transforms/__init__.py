"""CCM claims pipeline. The spine on top, one package per layer below it,
named as sql/ names its folders:

  pipeline.py       the stages of a run, in order (`ccm run` and the DAG call the same functions)
  cli.py            the `ccm` command line
  settings.py       the practice configuration, checked on load
  warehouse.py      DuckDB connections and the SQL files of sql/
  contract.py       the export contract as data
  run_lock.py       one run at a time per warehouse: the lease across the DAG's tasks
  errors.py         the one-line errors: a busy warehouse, a folder that cannot be written
  privacy.py        owner-only files, error texts without row data, spreadsheet-safe CSV cells
  airflow_tasks.py  what the DAGs' tasks need besides the stages
  ingest/           landing drops -> raw -> staging       (sql/raw/, sql/staging/)
  quality/          documentation flags and GX suites      (sql/quality/)
  core/             minutes, eligibility, codes, rules     (sql/core/)
  billing/          claim batches, the ledger, the 837P    (sql/billing/)
  marts/            dashboards' views, worklist, report    (sql/marts/)
  devtools/         generator, demo, benchmark: not on the product path
"""
