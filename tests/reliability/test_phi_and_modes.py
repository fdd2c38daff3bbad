"""PHI stays put. A night with bad rows, a withheld claim and failing expectations, run
as a user runs it (its own process, a permissive umask, -v): no name, MBI, birth date or
note reaches its output, the run's summary, a quarantine row, a flag message, a withheld
claim's reason, the report, the manifest or a Data Docs page; and every file the
pipeline or DuckDB wrote is owner-only, the WAL and the spill folder included."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability_fixtures import (ACTIVITIES, NOTES, PATIENTS, PHI, TABLE_ROWS, Place, activity, ccm_subprocess,
                                  loose_modes, write_csv, write_full_drop)
from transforms.billing.ledger import FAULT_ENV
from transforms.contract import TABLES

BAD_MBI = "2EG4TE5MK7"  # one character short: P2's claim is withheld, the MBI suite expectation fails
NIGHT_PHI = sorted(set(PHI) | {BAD_MBI, "2031-05-05", "Velvetmoss"})


def bad_night(landing: Path) -> None:
    """The practice's first drop, with: P2's MBI malformed, a third patient born in the future
    (quarantined), a ragged activity row holding a note, and a vague note (flagged)."""
    patients = [PATIENTS[0], dict(PATIENTS[1], mbi=BAD_MBI),
                dict(PATIENTS[0], patient_id="P3", last_name="Velvetmoss", birth_date="2031-05-05")]
    tables = dict(TABLE_ROWS, patients=patients,
                  activities=[*ACTIVITIES, activity("A9", "P1", 9, "5", "call")])
    drop = write_full_drop(landing, tables=tables)
    with open(drop / "activities.csv", "a", encoding="utf-8") as fh:  # one field too many
        fh.write(f"A10,P1,S-RN,2026-01-10T10:00:00,5,phone,false,{NOTES[0]},extra,2026-01-10T11:00:00,\n")


@pytest.fixture(scope="module")
def night(tmp_path_factory) -> tuple[Place, object]:
    place = Place(tmp_path_factory.mktemp("night"))
    bad_night(place.landing)
    done = ccm_subprocess(place, umask=0o022, verbose=True)
    return place, done


def test_the_night_ran_and_did_what_the_bad_rows_call_for(night):
    place, done = night
    assert done.returncode == 0, done.stderr
    assert place.query("select patient_id from billing.ledger") == [("P1",)]
    assert place.query("select patient_id, edit from billing.withheld_claims") == [("P2", "mbi")]
    assert sorted(place.query("select table_name, row_number, column_name from raw.quarantine")) == [
        ("activities", 6, None), ("patients", 3, "birth_date")]
    assert place.query("select count(*) from quality.flags") != [(0,)]


def _texts(place: Place, done) -> dict[str, str]:
    runs = place.warehouse.parent / "runs"
    texts = {"stdout": done.stdout, "stderr (log)": done.stderr}
    for label, sql in {
        "raw.runs.summary": "select summary::varchar from raw.runs",
        "raw.quarantine": "select * from raw.quarantine",
        "staging.rejected_rows": "select * from staging.rejected_rows",
        "quality.flags": "select * from quality.flags",
        "marts.dq_flags.message": "select message from marts.dq_flags",
        "billing.withheld_claims": "select * from billing.withheld_claims",
        "marts.pipeline_runs": "select summary::varchar from marts.pipeline_runs",
    }.items():
        texts[label] = json.dumps(place.query(sql), default=str)
    pages = [p for p in runs.rglob("*") if p.is_file() and p.suffix in (".html", ".json", ".js")]
    assert any("data_docs" in p.parts for p in pages), "no Data Docs were written"
    for page in pages:
        texts[str(page.relative_to(runs))] = page.read_text(encoding="utf-8", errors="replace")
    for manifest in place.claims.glob("*/manifest.json"):
        texts[str(manifest)] = manifest.read_text()
    return texts


def test_no_phi_in_any_log_summary_message_or_data_docs_page(night):
    place, done = night
    found = {label: [v for v in NIGHT_PHI if v in text] for label, text in _texts(place, done).items()}
    assert {label: values for label, values in found.items() if values} == {}


def test_the_scan_would_see_phi_where_it_is_meant_to_be(night):
    """The worklist and the claims name patients by design (care teams call them, the payer
    pays them): the same scan finds them there, so it is looking for the right values."""
    place, _ = night
    worklist = next((place.warehouse.parent / "runs").glob("*/worklist.csv")).read_text()
    assert "Marrowdale" in worklist
    assert "MARROWDALE" in next(place.claims.glob("*/*.x12")).read_text()


def test_every_file_written_is_owner_only_whatever_the_umask(night):
    place, done = night
    assert done.returncode == 0
    assert loose_modes(place.warehouse.parent / "runs", place.claims, place.warehouse,
                       place.warehouse.with_name("w.duckdb.private")) == []
    assert not place.warehouse.with_name("w.duckdb.wal").exists()  # checkpointed at the end


def test_the_wal_and_the_spill_folder_of_a_killed_run_are_owner_only(tmp_path):
    place = Place(tmp_path)
    write_full_drop(place.landing)
    # killed with the warehouse open, a drop committed: its changes are in the WAL DuckDB created
    killed = ccm_subprocess(place, umask=0o022, env={FAULT_ENV: "mid_ingest", f"{FAULT_ENV}_SIGNAL": "KILL",
                                                      "CCM_DUCKDB_MEMORY_LIMIT": "64MB"})
    assert killed.returncode == -9, killed.stderr
    wal = place.warehouse.with_name("w.duckdb.wal")
    assert wal.exists()
    private = place.warehouse.with_name("w.duckdb.private")
    assert loose_modes(wal, place.warehouse, private, place.root / "runs") == []
    assert oct(private.stat().st_mode & 0o777) == "0o700"


def test_a_run_called_without_the_cli_still_writes_owner_only(tmp_path):
    """The pipeline as a library (a test, a notebook): opening the warehouse tightens the umask."""
    import os
    from datetime import date

    from transforms.pipeline import RunRequest, run

    place = Place(tmp_path)
    write_full_drop(place.landing)
    old = os.umask(0o022)
    try:
        run(RunRequest(place.landing, place.warehouse, place.claims, date(2026, 2, 10), lock_wait_seconds=0))
    finally:
        os.umask(old)
    assert loose_modes(place.root / "runs", place.claims, place.warehouse) == []
