"""Marts: what dashboards and people read (sql/marts/).

  views.py     the stage: every marts view, then the worklist and the report
  worklist.py  the open month's threshold worklist as a CSV
  report.py    the self-contained HTML run report
"""
