"""Quality: documentation checks (sql/quality/).

  checks.py      the stage: flags and suites for this run's drops
  flags.py       vague, late, overlapping, impossible entries; the minutes they hold
  validation.py  new rows to the GX suites, in chunks
  suites.py      GX Core: the suites in expectations/, results, Data Docs
"""
