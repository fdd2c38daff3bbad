"""Ingest stores only what changed, and staging follows the drops incrementally.

Rules proven here:
  - a row identical (typed) to the current version of its key is counted, not stored;
  - a key changed and changed back stores the newest drop's row (in one run or across runs);
  - incremental staging equals a full rebuild, and a plain-Python "newest drop wins"
    reading of the landing, on random multi-drop landings.
"""
from __future__ import annotations

import random
from datetime import date, timedelta
import shutil
from pathlib import Path

import duckdb
import pytest

from landing_builder import DOCTOR, NOTE, PATIENT, RN, activity, write_drop, write_table
from transforms import pipeline
from transforms.ingest import raw, staging
from transforms.ingest.plan import InputError
from transforms.contract import TABLES
from transforms.settings import load_settings

SETTINGS = load_settings(None)


def ingest_run(tmp_path: Path, strict: bool = False, as_of: str = "2026-03-01") -> dict:
    """discover + start_run + the ingest stage, as `ccm run` does them (no later stages)."""
    request = pipeline.RunRequest.from_strings(str(tmp_path / "landing"), str(tmp_path / "w.duckdb"),
                                               str(tmp_path / "claims"), as_of, strict=strict)
    pipeline.discover(request, SETTINGS)
    ctx = pipeline.RunContext(request, SETTINGS, pipeline.new_run_id(request.as_of))
    pipeline.start_run(ctx)
    return pipeline.stage_ingest(ctx)


def query(tmp_path: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        con.execute("set TimeZone = 'America/New_York'")
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def file_rows(tmp_path: Path, drop: str, table: str) -> tuple:
    return query(tmp_path, "select rows_read, rows_new, rows_changed, rows_unchanged, rows_quarantined "
                           "from raw.loaded_file_rows where drop_name = ? and table_name = ?", [drop, table])[0]


# ---------------------------------------------------------------- store only what changed

def test_unchanged_row_is_counted_and_not_stored(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1"), activity("A2")])
    write_drop(landing, "2026-01-20", [activity("A1"), activity("A2", duration_minutes="12"), activity("A3")])
    summary = ingest_run(tmp_path)
    # drop 2: A1 unchanged (counted, not stored), A2 changed, A3 new; patients and staff unchanged
    assert file_rows(tmp_path, "2026-01-20", "activities") == (3, 1, 1, 1, 0)
    assert file_rows(tmp_path, "2026-01-20", "patients") == (1, 0, 0, 1, 0)
    assert file_rows(tmp_path, "2026-01-20", "staff") == (2, 0, 0, 2, 0)
    assert file_rows(tmp_path, "2026-01-13", "activities") == (2, 2, 0, 0, 0)
    assert query(tmp_path, "select _drop, activity_id, duration_minutes from raw.activities order by all") == [
        ("2026-01-13", "A1", 10), ("2026-01-13", "A2", 10), ("2026-01-20", "A2", 12), ("2026-01-20", "A3", 10)]
    assert query(tmp_path, "select count(*) from raw.patients") == [(1,)]
    # raw.loaded_files: rows_loaded is what was stored
    assert query(tmp_path, "select rows_read, rows_loaded, rows_quarantined from raw.loaded_files "
                           "where drop_name = '2026-01-20' and table_name = 'activities'") == [(3, 2, 0)]
    assert summary["rows_loaded"]["activities"] == 4 and summary["rows_unchanged"]["activities"] == 1
    assert query(tmp_path, "select activity_id, duration_minutes, version_drop from staging.activities order by 1") \
        == [("A1", 10, "2026-01-13"), ("A2", 12, "2026-01-20"), ("A3", 10, "2026-01-20")]


def test_same_typed_values_written_differently_are_unchanged(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1")])
    write_drop(landing, "2026-01-20", [activity("A1", started_at="2026-01-12 10:00:00", duration_minutes=" 10",
                                                face_to_face="FALSE", status="active")],
               staff=[dict(RN, role="RN"), DOCTOR])
    ingest_run(tmp_path)
    assert file_rows(tmp_path, "2026-01-20", "activities") == (1, 0, 0, 1, 0)
    assert file_rows(tmp_path, "2026-01-20", "staff") == (2, 0, 0, 2, 0)


@pytest.mark.parametrize("runs", ["one run", "a run per drop"])
def test_key_changed_and_changed_back_stores_the_newest_drops_row(tmp_path, runs):
    landing = tmp_path / "landing"
    drops = [("2026-01-13", "5"), ("2026-01-20", "7"), ("2026-01-27", "5")]
    for name, minutes in drops:
        write_drop(landing, name, [activity("A1", duration_minutes=minutes)])
        if runs == "a run per drop":
            ingest_run(tmp_path)
    if runs == "one run":
        ingest_run(tmp_path)
    assert query(tmp_path, "select _drop, duration_minutes from raw.activities order by 1") == [
        ("2026-01-13", 5), ("2026-01-20", 7), ("2026-01-27", 5)]
    assert query(tmp_path, "select duration_minutes, version_drop from staging.activities") == [(5, "2026-01-27")]


def test_repeats_within_one_drop_compare_in_file_order(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1")])
    # X (unchanged), Y (changed), X (changed back), X (unchanged): 2 stored, the last stored row wins
    write_drop(landing, "2026-01-20", [activity("A1"), activity("A1", duration_minutes="7"), activity("A1"),
                                       activity("A1")])
    ingest_run(tmp_path)
    assert file_rows(tmp_path, "2026-01-20", "activities") == (4, 0, 2, 2, 0)
    assert query(tmp_path, "select _drop, _row_number, duration_minutes from raw.activities order by all") == [
        ("2026-01-13", 1, 10), ("2026-01-20", 2, 7), ("2026-01-20", 3, 10)]
    assert query(tmp_path, "select duration_minutes, version_drop, version_row from staging.activities") \
        == [(10, "2026-01-20", 3)]


def test_quarantined_row_leaves_the_current_version_in_place(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1")])
    write_drop(landing, "2026-01-20", [activity("A1", duration_minutes="ten")])
    write_drop(landing, "2026-01-27", [activity("A1")])
    ingest_run(tmp_path)
    assert file_rows(tmp_path, "2026-01-20", "activities") == (1, 0, 0, 0, 1)
    assert file_rows(tmp_path, "2026-01-27", "activities") == (1, 0, 0, 1, 0)
    assert query(tmp_path, "select count(*) from raw.activities") == [(1,)]
    assert query(tmp_path, "select duration_minutes, version_drop from staging.activities") == [(10, "2026-01-13")]


def test_strict_failure_leaves_no_trace_in_what_the_next_run_compares_with(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1")])
    write_drop(landing, "2026-01-20", [activity("A1", duration_minutes="12"), activity("A2", duration_minutes="-5")])
    with pytest.raises(InputError):
        ingest_run(tmp_path, strict=True)
    # the complete first drop stays; nothing of the second
    assert query(tmp_path, "select distinct drop_name from raw.loaded_files") == [("2026-01-13",)]
    assert query(tmp_path, "select count(*) from raw.activities") == [(1,)]
    ingest_run(tmp_path)  # without --strict: A1's change must still be seen as a change
    assert file_rows(tmp_path, "2026-01-20", "activities") == (2, 0, 1, 0, 1)
    assert query(tmp_path, "select duration_minutes from staging.activities") == [(12,)]


def test_fingerprints_are_rebuilt_from_raw_for_a_warehouse_loaded_before_them(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1"), activity("A2")])
    ingest_run(tmp_path)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    for table in TABLES:
        con.execute(f"drop table raw.latest_{table}")
    con.close()
    write_drop(landing, "2026-01-20", [activity("A1"), activity("A2", duration_minutes="12")])
    ingest_run(tmp_path)
    assert file_rows(tmp_path, "2026-01-20", "activities") == (2, 0, 1, 1, 0)
    assert file_rows(tmp_path, "2026-01-20", "patients") == (1, 0, 0, 1, 0)


def test_a_drop_sorting_before_a_loaded_drop_is_refused(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-20", [activity("A1")])
    ingest_run(tmp_path)
    write_drop(landing, "2026-01-13", [activity("A1", duration_minutes="7")])
    with pytest.raises(InputError, match="2026-01-13.*sorts before 2026-01-20"):
        ingest_run(tmp_path)


# ---------------------------------------------------------------- incremental staging

def test_rows_of_an_unknown_patient_are_accepted_when_a_later_drop_brings_the_patient(tmp_path):
    landing = tmp_path / "landing"
    p2 = dict(PATIENT, patient_id="P2", mbi="2EG4TE5MK73")
    drop1 = write_drop(landing, "2026-01-13", [activity("A1"), activity("A2", patient_id="P2")])
    write_table(drop1, "conditions", [dict(patient_id="P2", icd10_code="I10", description="", onset_date="",
                                           resolved_date="", chronic="true")])
    write_table(drop1, "care_plans", [dict(plan_id="CP2", patient_id="P2", established_date="2026-01-02",
                                           revised_date="", revision="none", complexity="standard",
                                           shared_with_patient_date="")])
    ingest_run(tmp_path)
    assert query(tmp_path, "select table_name, record_key from staging.rejected_rows order by 1") == [
        ("activities", "A2"), ("care_plans", "CP2"), ("conditions", "P2|I10")]
    assert query(tmp_path, "select activity_id from staging.activities") == [("A1",)]
    # the next drop describes P2 and repeats nothing else
    write_drop(landing, "2026-01-20", [], patients=[PATIENT, p2])
    summary = ingest_run(tmp_path)
    assert summary["staging"]["mode"] == "incremental"
    assert query(tmp_path, "select count(*) from staging.rejected_rows") == [(0,)]
    assert query(tmp_path, "select activity_id from staging.activities order by 1") == [("A1",), ("A2",)]
    assert query(tmp_path, "select plan_id from staging.care_plans") == [("CP2",)]
    assert query(tmp_path, "select patient_id, icd10_code from staging.conditions") == [("P2", "I10")]


def test_staging_catches_up_on_drops_loaded_by_a_run_that_failed_before_staging(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1")])
    ingest_run(tmp_path)
    write_drop(landing, "2026-01-20", [activity("A1", duration_minutes="7"), activity("A2")])
    request = pipeline.RunRequest.from_strings(str(landing), str(tmp_path / "w.duckdb"), str(tmp_path / "claims"),
                                               "2026-03-01")
    ctx = pipeline.RunContext(request, SETTINGS, "run-interrupted")
    plan = pipeline.discover(request, SETTINGS)
    with ctx.warehouse() as con:  # load, then "crash" before staging
        raw.load_drops(con, plan, SETTINGS, ctx.run_id)
    summary = ingest_run(tmp_path)  # nothing new to load, but staging is behind
    assert summary["drops_loaded"] == [] and summary["staging"]["mode"] == "incremental"
    assert query(tmp_path, "select activity_id, duration_minutes from staging.activities order by 1") == [
        ("A1", 7), ("A2", 10)]


# A random landing: a few patients (one described only from a later drop, one
# never), staff (one arriving late), activities amended, voided, repeated,
# duplicated within a drop, changed back, some rows bad; care plans and
# encounters that move between patients.

PATIENTS = [dict(PATIENT, patient_id=f"P{i}", mbi=f"{i}EG4TE5MK73") for i in range(1, 5)]
STAFF = [RN, DOCTOR, dict(staff_id="S-MA", full_name="Lou Ma", role="ma", npi="")]


def _random_landing(landing: Path, rng: random.Random, n_drops: int) -> list[str]:
    names = [(date(2026, 1, 3) + timedelta(days=7 * i)).isoformat() for i in range(n_drops)]  # weekly drops
    for i, name in enumerate(names):
        patients = [p for p in PATIENTS if p["patient_id"] == "P1" or (p["patient_id"] == "P2" and i >= n_drops // 2)
                    or (p["patient_id"] == "P3" and rng.random() < 0.5)]
        patients = [dict(p, city=rng.choice(["Media", "Media", "Chester"])) for p in patients]
        staff = [s for s in STAFF if s["staff_id"] != "S-MA" or i >= n_drops - 2]
        staff = [dict(s, full_name=rng.choice([s["full_name"], s["full_name"].upper()])) for s in staff]
        rows = []
        for n in range(1, 13):
            if rng.random() < 0.5:
                continue
            row = activity(f"A{n}", patient_id=rng.choice(["P1", "P2", "P3", "P4"]),
                           staff_id=rng.choice(["S-RN", "S-RN", "S-MD", "S-MA"]),
                           duration_minutes=rng.choice(["5", "10", "12"]), note=rng.choice([NOTE, "f/u"]),
                           status=rng.choice(["", "", "", "voided"]))
            if rng.random() < 0.1:
                row["duration_minutes"] = rng.choice(["-5", "ten"])
            rows.append(row)
            if rng.random() < 0.15:
                rows.append(dict(row, duration_minutes=rng.choice(["5", "10"])))
        rng.shuffle(rows)
        drop = write_drop(landing, name, rows, patients=patients, staff=staff)
        write_table(drop, "conditions", [
            dict(patient_id=p, icd10_code=code, description="", onset_date=rng.choice(["", "2020-01-01"]),
                 resolved_date="", chronic=rng.choice(["true", ""]))
            for p in ("P1", "P2", "P3") for code in ("I10", "E11.9") if rng.random() < 0.7])
        write_table(drop, "care_plans", [
            dict(plan_id=f"CP{n}", patient_id=rng.choice(["P1", "P2", "P3"]), established_date="2026-01-02",
                 revised_date="", revision="none", complexity=rng.choice(["standard", "complex"]),
                 shared_with_patient_date="") for n in range(1, 4)])
        write_table(drop, "encounters", [
            dict(encounter_id=f"E{n}", patient_id=rng.choice(["P1", "P4"]), encounter_date="2026-01-02",
                 cpt_code="99214", rendering_npi="") for n in range(1, 3) if rng.random() < 0.8])
        write_table(drop, "consents", [
            dict(patient_id=p, consent_date="2025-12-01", method=rng.choice(["written", "verbal"]),
                 billing_npi=DOCTOR["npi"], revoked_date="") for p in ("P1", "P2", "P3")])
    return names


def _staging_snapshot(con) -> dict[str, list[tuple]]:
    return {t: con.execute(f"select * from staging.{t} order by all").fetchall() for t in staging.STAGING_TABLES}


def _current_activities_by_hand(landing: Path, names: list[str]) -> list[tuple]:
    """Newest drop wins, later row within a drop, bad rows ignored, voids out, known patient and staff only."""
    import csv

    current, patients, staff = {}, set(), set()
    for name in names:
        with open(landing / name / "patients.csv") as fh:
            patients |= {r["patient_id"] for r in csv.DictReader(fh)}
        with open(landing / name / "staff.csv") as fh:
            staff |= {r["staff_id"] for r in csv.DictReader(fh)}
        with open(landing / name / "activities.csv") as fh:
            for r in csv.DictReader(fh):
                if r["duration_minutes"].isdigit():
                    current[r["activity_id"]] = r
    return sorted((a, int(r["duration_minutes"]), r["note"]) for a, r in current.items()
                  if r["status"] != "voided" and r["patient_id"] in patients and r["staff_id"] in staff)


@pytest.mark.parametrize("seed", range(8))
def test_incremental_staging_equals_a_full_rebuild_and_newest_drop_wins(tmp_path, seed):
    rng = random.Random(seed)
    names = _random_landing(tmp_path / "all", rng, n_drops=6)
    # nightly: drops arrive in runs of 1-3
    (tmp_path / "landing").mkdir()
    i = 0
    while i < len(names):
        step = rng.randint(1, 3)
        for name in names[i:i + step]:
            shutil.copytree(tmp_path / "all" / name, tmp_path / "landing" / name)  # links are never followed
        summary = ingest_run(tmp_path)
        assert summary["staging"]["mode"] == ("full" if i == 0 else "incremental")
        i += step
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("set TimeZone = 'America/New_York'")
    con.execute("set variable practice_tz = 'America/New_York'")
    incremental = _staging_snapshot(con)
    raw_nightly = {t: con.execute(f"select * exclude (_run_id) from raw.{t} order by all").fetchall() for t in TABLES}
    staging.build_staging(con)
    assert _staging_snapshot(con) == incremental
    con.close()
    assert sorted(r[:1] + r[7:8] + r[10:11] for r in incremental["activities"]) == \
        _current_activities_by_hand(tmp_path / "all", names)
    # the same drops in one run (a backfill) store the very same raw rows
    (tmp_path / "once").mkdir()
    (tmp_path / "once" / "landing").symlink_to(tmp_path / "all")  # the landing itself may be a link
    ingest_run(tmp_path / "once")
    con = duckdb.connect(str(tmp_path / "once" / "w.duckdb"), read_only=True)
    raw_once = {t: con.execute(f"select * exclude (_run_id) from raw.{t} order by all").fetchall() for t in TABLES}
    con.close()
    assert raw_once == raw_nightly


def test_staging_without_its_ledger_is_rebuilt_in_full_once(tmp_path):
    landing = tmp_path / "landing"
    write_drop(landing, "2026-01-13", [activity("A1")])
    ingest_run(tmp_path)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("drop table staging.staged_drops")  # a warehouse staged by an earlier version
    con.close()
    write_drop(landing, "2026-01-20", [activity("A2")])
    assert ingest_run(tmp_path)["staging"]["mode"] == "full"
    write_drop(landing, "2026-01-27", [activity("A3")])
    assert ingest_run(tmp_path)["staging"]["mode"] == "incremental"
    assert query(tmp_path, "select activity_id from staging.activities order by 1") == [("A1",), ("A2",), ("A3",)]
