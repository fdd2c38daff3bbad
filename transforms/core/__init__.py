"""Core: minutes, eligibility and codes per patient-month (sql/core/).

  minutes.py      the minutes stage: countable minutes per activity and patient-month
  codes.py        the codes stage: eligibility and the code set each month bills
  rules.py        the yearly rules files (transforms/rules/<year>.yaml), checked and published
  incremental.py  which patient-months a night recomputes
"""
