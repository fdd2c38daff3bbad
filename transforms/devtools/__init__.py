"""Tools for developers and demos, apart from the product: no stage imports them.

  generate.py   realistic synthetic drops (`ccm generate`)
  demo.py       `make demo`: generated drops through the Airflow DAGs
  benchmark.py  `make bench`: the full run against its floors
"""
