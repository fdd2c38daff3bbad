"""Billing: claims out, under the ledger (sql/billing/).

  batch.py     the claims stage: closed, unbilled patient-months -> one batch folder
  ledger.py    what was billed, committed once; recovery of an interrupted batch
  x12_837p.py  the 837P's segments, rendered with Polars
  edits.py     our own claim edits, and pyx12's
  delivery.py  a written batch checked, packaged into the outbox, receipted
"""
