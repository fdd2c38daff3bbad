"""A kill at every stage of `ccm run` (SIGKILL, no clean-up), then a rerun: the warehouse,
the claim batch and the ledger are those of a run that was never interrupted, nothing is
billed twice, and the killed run is recorded as failed, not left `running`."""
from __future__ import annotations

import csv
import signal
import time
from pathlib import Path

import pytest

from reliability_fixtures import (NOTES, PATIENTS, Place, activity, ccm, ccm_subprocess, write_csv, write_full_drop)
from transforms.billing.edits import parse_837p, validate_with_pyx12
from transforms.billing.ledger import FAULT_ENV
from transforms.contract import TABLES
from transforms.pipeline import RUN_FAULT_POINTS

# before and between the stages, between two drops, and inside the claims stage
KILL_POINTS = (*RUN_FAULT_POINTS, "mid_files", "in_ledger", "after_ledger")
COMPARED = ("raw.patients", "raw.staff", "raw.conditions", "raw.consents", "raw.care_plans", "raw.encounters",
            "raw.activities", "raw.quarantine", "raw.loaded_file_rows", "staging.patients", "staging.activities",
            "staging.rejected_rows", "quality.flags", "quality.activity_holds", "core.activity_minutes",
            "core.patient_month", "core.code_lines", "billing.ledger", "billing.ledger_lines",
            "billing.withheld_claims")


def two_night_landing(landing: Path) -> None:
    write_full_drop(landing)
    drop = landing / "2026-01-20"
    write_csv(drop / "activities.csv", [activity("A5", "P2", 15, "7", NOTES[1]),
                                        activity("A6", "P1", 16, "oops", NOTES[0])],  # quarantined
              list(TABLES["activities"].columns))
    write_csv(drop / "patients.csv", [dict(PATIENTS[0], city="Wallingford")], list(TABLES["patients"].columns))


def state(place: Place) -> dict:
    """What a run leaves, without what differs from run to run (run ids, clock times)."""
    out = {}
    for table in COMPARED:
        schema, name = table.split(".")
        cols = [c for (c,) in place.query(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [schema, name])
            if not (c.endswith("run_id") or c.endswith("_at") or c == "batch_id")]
        out[table] = place.query(f"select {', '.join(cols)} from {table} order by all")
    batches = sorted(p for p in place.claims.iterdir() if p.is_dir()) if place.claims.exists() else []
    out["batch_folders"] = [p.name.startswith(".") for p in batches]
    with open(batches[-1] / "claim_lines.csv", newline="") as fh:
        out["claim_lines.csv"] = [{k: v for k, v in r.items() if k != "batch_id"} for r in csv.DictReader(fh)]
    out["837p"] = sorted((c.claim_id, c.total, c.mbi, [(ln.cpt_code, ln.units, ln.charge) for ln in c.lines])
                         for f in batches[-1].glob("*.x12") for c in parse_837p(f.read_text()).claims)
    out["batches_delivered"] = place.query("select count(*) from billing.batches where status = 'delivered'")
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    place = Place(tmp_path_factory.mktemp("clean"))
    two_night_landing(place.landing)
    assert ccm(place) == 0
    return state(place)


def _after_the_kill(place: Place, clean: dict) -> None:
    running = place.query("select run_id from raw.runs where status = 'running'") \
        if place.warehouse.exists() else []
    assert ccm(place) == 0  # --wait 0: a dead holder's lease is taken over at once
    assert state(place) == clean
    statuses = dict(place.query("select run_id, status from raw.runs"))
    assert "running" not in statuses.values()
    for (run_id,) in running:
        assert statuses[run_id] == "failed"
        assert "ended without finishing" in place.query("select summary->>'interrupted' from raw.runs "
                                                        "where run_id = ?", [run_id])[0][0]
    assert not list(place.claims.glob(".tmp-*"))
    batch = next(p for p in place.claims.iterdir() if p.is_dir())
    assert all(validate_with_pyx12(f) == [] for f in batch.glob("*.x12"))
    assert ccm(place, as_of="2026-02-11") == 0  # and again: nothing new is billed
    assert place.query("select count(*) from billing.ledger") == [(2,)]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_a_kill_at_any_stage_then_a_rerun_equals_an_uninterrupted_run(tmp_path, clean, point):
    place = Place(tmp_path)
    two_night_landing(place.landing)
    killed = ccm_subprocess(place, env={FAULT_ENV: point, f"{FAULT_ENV}_SIGNAL": "KILL"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    _after_the_kill(place, clean)


def test_a_kill_from_outside_in_the_middle_of_a_run_then_a_rerun_equals_an_uninterrupted_run(tmp_path, clean):
    place = Place(tmp_path)
    two_night_landing(place.landing)
    run = ccm_subprocess(place, wait=False)
    deadline = time.monotonic() + 60
    while not place.warehouse.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # somewhere in ingest or validate, by then
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    _after_the_kill(place, clean)
