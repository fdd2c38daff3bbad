"""Responses for the tiny claims warehouse (claims_fixtures): bill a batch, have the payer simulator
answer it or build a response by hand, read the responses folder."""
from __future__ import annotations

import dataclasses
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from claims_fixtures import sample_settings
from transforms.billing.batch import write_claim_batch
from transforms.billing.responses import read_responses
from transforms.devtools import payer

AFTER_JAN = date(2026, 2, 10)
PAID_ON = date(2026, 2, 24)
WHEN = datetime(2026, 2, 12, 6, 0)


def settings(usage: str = "T", **changes):
    s = sample_settings(**changes)
    return dataclasses.replace(s, x12=s.x12 | {"usage_indicator": usage})


def bill(con, tmp_path: Path, as_of: date = AFTER_JAN, usage: str = "T", run_id: str = "run-bill", **changes) -> dict:
    return write_claim_batch(con, settings(usage, **changes), run_id, as_of, tmp_path / "claims")


def batch_dir(tmp_path: Path, summary: dict) -> Path:
    return tmp_path / "claims" / summary["batch_id"]


def interchange(tmp_path: Path, summary: dict) -> payer.Submitted:
    """The batch's (only) 837P as the payer reads it."""
    (path,) = sorted(batch_dir(tmp_path, summary).glob("*.x12"))
    return payer.read_837(path)


def read(con, folder: Path, run_id: str = "run-responses", as_of: date = date(2026, 3, 1)) -> dict:
    return read_responses(con, settings(), run_id, folder, as_of)


def answer(tmp_path: Path, summary: dict, folder: Path, **kwargs) -> dict:
    return payer.answer_batch(batch_dir(tmp_path, summary), folder, paid_on=PAID_ON, **kwargs)


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="ascii")
    return path


def status(con) -> dict[str, tuple]:
    """claim_id -> (status, paid_amount, patient_responsibility, adjustment_reason_codes, replaced_by)."""
    from transforms.warehouse import run_sql

    con.execute("create schema if not exists marts")
    for view in ("reason_codes", "claim_status"):
        run_sql(con, f"marts/{view}.sql")
    return {r[0]: r[1:] for r in con.execute(
        "select claim_id, status, paid_amount, patient_responsibility, adjustment_reason_codes, replaced_by_claim_id "
        "from marts.claim_status").fetchall()}


def live(con) -> list[tuple]:
    return con.execute("select usage_indicator, patient_id, service_month, claim_id from billing.live_claims "
                       "order by all").fetchall()


def reversal_of(claim: payer.Claim) -> payer.Adjudication:
    """What the payer sends to take back the payment it made on `claim` (CLP02 22, every amount negated)."""
    paid = payer.adjudicate(claim, None)
    return payer.Adjudication(
        claim.claim_id, "22", -paid.charge, -paid.paid, -paid.patient,
        [(dataclasses.replace(line, charge=-line.charge), -amount, [(g, c, -a) for g, c, a in cas], -allowed)
         for line, amount, cas, allowed in paid.lines])


def remittance(sub: payer.Submitted, adjudications: list[payer.Adjudication], trace: str = "EFT1",
               provider_adjustments=(), when: datetime = WHEN) -> str:
    return payer.write_835(sub, when, PAID_ON, adjudications, "MEDICARE PART B", "12502", trace,
                           list(provider_adjustments))


def money(text: str) -> Decimal:
    return Decimal(text)
