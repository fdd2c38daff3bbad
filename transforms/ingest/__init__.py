"""Ingest: landing drops -> raw (sql/raw/) -> staging (sql/staging/).

  plan.py      which drops are new, and can every file be used (no writes)
  readers.py   a landing file as text columns named per the contract
  raw.py       typed rows appended to raw.*, bad rows to raw.quarantine
  staging.py   the current state per key, in full or for the touched keys
"""
