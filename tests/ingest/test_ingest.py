"""Ingestion: drops into raw (append-only, once), staging (newest wins, voids out)."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from landing_builder import NOTE, PATIENT, activity, write_drop, write_table
from transforms.cli import main
from transforms.paths import CONFIG_DIR, SAMPLE_CONFIG


def ccm_run(tmp_path: Path, *extra: str, as_of: str = "2026-02-10") -> int:
    return main(["run", "--landing", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "w.duckdb"),
                 "--claims-dir", str(tmp_path / "claims"), "--as-of", as_of, *extra])


def query(tmp_path: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True)
    try:
        con.execute("set TimeZone = 'America/New_York'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_overlapping_drops_count_each_activity_once(tmp_path):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1"), activity("A2")])
    write_drop(tmp_path / "landing", "2026-01-20", [activity("A2"), activity("A3")])
    assert ccm_run(tmp_path) == 0
    # A2 repeats unchanged in the second drop: counted there, stored once
    assert query(tmp_path, "select _drop, activity_id from raw.activities order by all") == [
        ("2026-01-13", "A1"), ("2026-01-13", "A2"), ("2026-01-20", "A3")]
    assert query(tmp_path, "select count(*) from staging.activities") == [(3,)]
    assert query(tmp_path, "select activity_id from staging.activities order by 1") == [("A1",), ("A2",), ("A3",)]


def test_repeated_row_within_one_drop_is_one_activity(tmp_path):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1"), activity("A1")])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select count(*), sum(duration_minutes) from staging.activities") == [(1, 10)]


def test_voided_row_in_later_drop_removes_the_activity(tmp_path):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1"), activity("A2")])
    write_drop(tmp_path / "landing", "2026-01-20", [activity("A2", status="voided")])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select activity_id from staging.activities") == [("A1",)]
    # the void is kept, with the minutes it took away, for attribution downstream
    assert query(tmp_path, "select status, duration_minutes from staging.activity_versions where activity_id = 'A2'") \
        == [("voided", 10)]


def test_amended_activity_newest_drop_wins(tmp_path):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1", note="f/u", duration_minutes="5")])
    write_drop(tmp_path / "landing", "2026-01-20",
               [activity("A1", note=NOTE, duration_minutes="12", documented_at="2026-01-19T09:00:00")])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select note, duration_minutes, version_drop from staging.activities") \
        == [(NOTE, 12, "2026-01-20")]


def test_newest_drop_wins_even_when_loaded_in_a_later_run(tmp_path):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1", duration_minutes="5")])
    assert ccm_run(tmp_path) == 0
    write_drop(tmp_path / "landing", "2026-01-20", [activity("A1", duration_minutes="7")])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select duration_minutes from staging.activities") == [(7,)]


def test_already_loaded_drop_is_skipped_and_changes_nothing(tmp_path, capsys):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1")])
    assert ccm_run(tmp_path) == 0
    before = query(tmp_path, "select * from raw.activities order by all")
    capsys.readouterr()
    assert ccm_run(tmp_path) == 0
    out = capsys.readouterr().out
    assert "drops loaded: 0" in out and "drops skipped (already loaded): 1" in out
    assert query(tmp_path, "select * from raw.activities order by all") == before
    assert query(tmp_path, "select count(*) from raw.loaded_files") == [(3,)]


def test_loaded_files_record_drop_and_checksum(tmp_path):
    drop = write_drop(tmp_path / "landing", "2026-01-13", [activity("A1")])
    assert ccm_run(tmp_path) == 0
    rows = query(tmp_path, "select file_name, sha256 from raw.loaded_files where table_name = 'activities'")
    assert rows == [("activities.csv", sha(drop / "activities.csv"))]


def test_missing_column_fails_naming_file_and_column_and_changes_nothing(tmp_path, capsys):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1")])
    assert ccm_run(tmp_path) == 0
    before = sha(tmp_path / "w.duckdb")
    bad = tmp_path / "landing" / "2026-01-20"
    columns = [c for c in activity("x") if c != "duration_minutes"]
    write_table(bad, "activities", [activity("A2")], columns=columns)
    capsys.readouterr()
    assert ccm_run(tmp_path) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{bad / 'activities.csv'}: missing required column duration_minutes"]
    assert sha(tmp_path / "w.duckdb") == before


def test_missing_column_on_first_run_creates_no_warehouse(tmp_path, capsys):
    write_table(tmp_path / "landing" / "2026-01-13", "staff", [{"staff_id": "S1", "full_name": "A B"}],
                columns=["staff_id", "full_name"])
    assert ccm_run(tmp_path) != 0
    assert "staff.csv: missing required column role" in capsys.readouterr().err
    assert not (tmp_path / "w.duckdb").exists()


def test_unreadable_file_fails_naming_the_file(tmp_path, capsys):
    drop = write_drop(tmp_path / "landing", "2026-01-13", [activity("A1")])
    (drop / "encounters.parquet").write_bytes(b"this is not parquet")
    assert ccm_run(tmp_path) != 0
    err = capsys.readouterr().err
    assert str(drop / "encounters.parquet") in err and "cannot be read" in err


def test_bad_rows_are_quarantined_with_reason_and_the_run_goes_on(tmp_path, capsys):
    write_drop(tmp_path / "landing", "2026-01-13", [
        activity("A1"),
        activity("A2", started_at="31/02/2026 10:00"),
        activity("A3", duration_minutes="-5"),
        activity("A4", duration_minutes="12.5"),
        activity("A5", face_to_face="maybe"),
    ])
    assert ccm_run(tmp_path) == 0
    assert "rows quarantined: 4" in capsys.readouterr().out
    assert query(tmp_path, "select row_number, column_name, reason, record_key from raw.quarantine order by 1") == [
        (2, "started_at", "not an ISO 8601 timestamp", "A2"),
        (3, "duration_minutes", "negative minutes", "A3"),
        (4, "duration_minutes", "not a whole number", "A4"),
        (5, "face_to_face", "not true/false", "A5"),
    ]
    assert query(tmp_path, "select activity_id from staging.activities") == [("A1",)]


def test_strict_makes_a_bad_row_fatal_and_stores_nothing(tmp_path, capsys):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1"), activity("A2", duration_minutes="-5")])
    assert ccm_run(tmp_path, "--strict") != 0
    err = capsys.readouterr().err
    assert "activities.csv: row 2, column duration_minutes: negative minutes" in err
    assert query(tmp_path, "select count(*) from raw.activities") == [(0,)]
    assert query(tmp_path, "select count(*) from raw.loaded_files") == [(0,)]


def test_activity_of_unknown_patient_is_held_out_and_reported(tmp_path):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1"), activity("A2", patient_id="P404")])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select activity_id from staging.activities") == [("A1",)]
    assert query(tmp_path, "select table_name, column_name, reason, record_key from staging.rejected_rows") == [
        ("activities", "patient_id", "unknown patient", "A2")]


@pytest.mark.parametrize("started_at, local, month", [
    ("2026-01-31T23:30:00", "2026-01-31 23:30:00", "2026-01-01"),        # naive = practice time
    ("2026-02-01T04:30:00Z", "2026-01-31 23:30:00", "2026-01-01"),       # UTC instant, still January in New York
    ("2026-02-01T00:30:00-05:00", "2026-02-01 00:30:00", "2026-02-01"),
    ("2026-02-01T06:30:00+01:00", "2026-02-01 00:30:00", "2026-02-01"),
    ("2026-08-01T03:30:00Z", "2026-07-31 23:30:00", "2026-07-01"),       # summer: UTC-4
    ("2026-08-01 00:10:00", "2026-08-01 00:10:00", "2026-08-01"),
])
def test_timestamps_normalised_to_practice_month(tmp_path, started_at, local, month):
    write_drop(tmp_path / "landing", "2026-09-01", [activity("A1", started_at=started_at)])
    assert ccm_run(tmp_path, as_of="2026-09-02") == 0
    assert query(tmp_path, "select strftime(started_at_local, '%Y-%m-%d %H:%M:%S'), service_month::varchar "
                           "from staging.activities") == [(local, month)]


def test_practice_time_zone_comes_from_configuration(tmp_path):
    config = yaml.safe_load(SAMPLE_CONFIG.read_text())
    config["practice"]["time_zone"] = "America/Los_Angeles"
    (tmp_path / "practice.yaml").write_text(yaml.safe_dump(config))
    write_drop(tmp_path / "landing", "2026-02-03", [activity("A1", started_at="2026-02-01T06:30:00Z")])
    assert ccm_run(tmp_path, "--config", str(tmp_path / "practice.yaml")) == 0
    # 06:30 UTC is 22:30 on January 31st in Los Angeles
    assert query(tmp_path, "select service_month::varchar from staging.activities") == [("2026-01-01",)]


def test_parquet_drop_loads_like_csv(tmp_path):
    drop = write_drop(tmp_path / "landing", "2026-01-13", [activity("A1"), activity("A2", duration_minutes="7")])
    pl.read_csv(drop / "activities.csv", infer_schema=False).write_parquet(drop / "activities.parquet")
    (drop / "activities.csv").unlink()
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select sum(duration_minutes) from staging.activities") == [(17,)]


def test_vendor_export_is_mapped_by_configuration_end_to_end(tmp_path):
    mapping = yaml.safe_load((CONFIG_DIR / "vendor_mapping.sample.yaml").read_text())
    to_vendor = {ours: theirs for theirs, ours in mapping["columns"]["activities"].items()}
    drop = tmp_path / "landing" / "2026-01-13"
    write_table(drop, "patients", [PATIENT])
    write_table(drop, "staff", [dict(staff_id="S-RN", full_name="Joy Park", role="RN", npi="")])
    row = activity("A1", duration_minutes="14")
    vendor_row = {to_vendor[k]: v for k, v in row.items()}
    write_table(drop, "activities", [vendor_row], columns=list(vendor_row))
    (drop / "activities.csv").rename(drop / "CCM_TimeLog.csv")
    shutil.copy(CONFIG_DIR / "vendor_mapping.sample.yaml", tmp_path / "vendor.yaml")
    config = yaml.safe_load(SAMPLE_CONFIG.read_text())
    config["vendor"] = "vendor.yaml"
    (tmp_path / "practice.yaml").write_text(yaml.safe_dump(config))
    assert ccm_run(tmp_path, "--config", str(tmp_path / "practice.yaml")) == 0
    assert query(tmp_path, "select activity_id, duration_minutes from staging.activities") == [("A1", 14)]


def test_warehouse_is_readable_by_its_owner_only(tmp_path):
    write_drop(tmp_path / "landing", "2026-01-13", [activity("A1")])
    assert ccm_run(tmp_path) == 0
    assert (tmp_path / "w.duckdb").stat().st_mode & 0o077 == 0


# -- evidence columns: present (maybe empty) or absent, recorded per row and per file --------------------

PLAN = dict(plan_id="CP1", patient_id="P1", established_date="2025-12-01", revised_date="", revision="none",
            complexity="standard", shared_with_patient_date="", focus_icd10="", goals="")
REQUIRED_PLAN_COLUMNS = ["plan_id", "patient_id", "established_date", "revision", "complexity"]


def test_whether_a_file_had_an_evidence_column_is_recorded_and_an_empty_one_is_a_new_version(tmp_path):
    landing = tmp_path / "landing"
    write_table(write_drop(landing, "2026-01-13", [activity("A1")]), "care_plans", [PLAN],
                columns=REQUIRED_PLAN_COLUMNS)
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select absent_columns from raw.loaded_file_columns where table_name = 'care_plans'") == [
        (["focus_icd10", "goals", "shared_with_patient_date"],)]
    # the next export carries the columns, empty for this plan: the same values, but now
    # known to be missing (evidence to hold on), so a new version of the row is stored
    write_table(write_drop(landing, "2026-01-14", [activity("A1")]), "care_plans", [PLAN])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select _drop, _absent_columns from raw.care_plans order by _drop") == [
        ("2026-01-13", ["focus_icd10", "goals", "shared_with_patient_date"]), ("2026-01-14", [])]
    assert query(tmp_path, "select _absent_columns from staging.care_plans") == [([],)]
    # and a third, identical export stores nothing new
    write_table(write_drop(landing, "2026-01-15", [activity("A1")]), "care_plans", [PLAN])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select count(*) from raw.care_plans") == [(2,)]


def test_consent_elements_are_read_as_a_set_and_an_unknown_one_is_quarantined(tmp_path):
    landing = tmp_path / "landing"
    drop = write_drop(landing, "2026-01-13", [activity("A1")])
    consent = dict(patient_id="P1", consent_date="2025-12-01", method="verbal", billing_npi="1345678902",
                   revoked_date="", obtained_by="S-RN")
    write_table(drop, "consents", [dict(consent, elements_explained=" Right_to_stop;availability ; cost_sharing;"),
                                   dict(consent, consent_date="2025-12-02", elements_explained="availability;cash")])
    assert ccm_run(tmp_path) == 0
    assert query(tmp_path, "select elements_explained from raw.consents") == [
        ("availability;cost_sharing;right_to_stop",)]
    assert query(tmp_path, "select column_name, reason from raw.quarantine where table_name = 'consents'") == [
        ("elements_explained", "not a list (; between) of availability/cost_sharing/one_practitioner/right_to_stop")]
