"""Incremental core builds (transforms/core/incremental.py): a night recomputes only the
patient-months whose inputs changed, and the tables are exactly what a full
rebuild gives. Every test ends by rebuilding everything and comparing."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import yaml

from core_fixtures import Practice, settings_with
from transforms.core import incremental
from transforms.core.minutes import compute_minutes
from transforms.paths import RULES_DIR
from transforms.ingest.staging import build_staging

CORE_TABLES = ("month_consent", "activity_minutes", "patient_month_minutes", "eligibility", "code_choice",
               "patient_month", "code_lines")
MARCH, APRIL = "2025-03", "2025-04"


@pytest.fixture(autouse=True)
def incremental_even_for_most_patients(monkeypatch):
    """These warehouses hold two or three patient-months: without this, touching one is half of them."""
    monkeypatch.setattr(incremental, "FULL_BUILD_SHARE", 1.0)


@pytest.fixture
def practice(tmp_path) -> Practice:
    p = Practice(tmp_path / "warehouse.duckdb").team()
    p.enrolled("P1")
    p.enrolled("P2")
    p.log("P1", "RN", MARCH, 25)
    p.log("P2", "RN", MARCH, 15)
    return p


def snapshot(p: Practice) -> dict[str, list[tuple]]:
    return {t: sorted(p.con.execute(f"select * from core.{t}").fetchall(), key=repr) for t in CORE_TABLES}


def assert_same_as_full_rebuild(p: Practice, as_of: str = "2025-12-31") -> None:
    incremental = snapshot(p)
    p.con.execute("delete from core.build_state")
    minutes, codes = p.run(as_of)
    assert minutes["build"]["mode"] == codes["build"]["mode"] == "full"
    assert snapshot(p) == incremental


def test_first_build_is_full_and_a_night_without_changes_recomputes_nobody(practice):
    minutes, codes = practice.run()
    assert minutes["build"] == {"mode": "full", "reason": "first build", "patient_months": 2}
    assert codes["build"] == {"mode": "full", "reason": "first build", "patient_months": 2}
    minutes, codes = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 0}
    assert codes["build"]["patient_months"] == 0
    assert practice.con.execute("select count(*) from core.build_months").fetchone()[0] == 0
    assert_same_as_full_rebuild(practice)


def test_a_new_drop_recomputes_only_its_patients(practice):
    practice.run()
    practice.drop = "2026-03-02"
    practice.log("P2", "RN", MARCH, 10)  # P2: 15 + 10 = 25 minutes, not yet 99490
    practice.log("P2", "MA", MARCH, 5, day=12)  # now 30 minutes
    minutes, codes = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 1}
    assert codes["build"] == {"mode": "incremental", "reason": None, "patient_months": 1}
    assert practice.month("P2", MARCH)["countable_minutes"] == 30
    assert practice.month("P2", MARCH)["billed_codes"] == "99490"
    assert practice.month("P1", MARCH)["countable_minutes"] == 25
    assert_same_as_full_rebuild(practice)


def test_an_activity_moved_to_another_patient_leaves_the_first_one(practice):
    moved = practice.log("P1", "RN", MARCH, 20, day=11)  # P1: 45 minutes
    practice.run()
    assert practice.month("P1", MARCH)["countable_minutes"] == 45
    practice.drop = "2026-03-02"  # the EHR corrects the chart: the same activity was P2's
    practice.activity("P2", "RN", f"{MARCH}-11 10:00:00", 20, activity_id=moved)
    minutes, _ = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 2}
    assert practice.month("P1", MARCH)["countable_minutes"] == 25
    assert practice.month("P2", MARCH)["countable_minutes"] == 35
    assert_same_as_full_rebuild(practice)


def test_a_changed_documentation_hold_recomputes_its_patient(practice):
    held = practice.log("P1", "RN", MARCH, 10, day=12)
    practice.run()
    assert practice.month("P1", MARCH)["countable_minutes"] == 35
    practice.hold(held, 10)  # the validate stage held the note; no new drop
    minutes, _ = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 1}
    assert practice.month("P1", MARCH)["countable_minutes"] == 25
    assert practice.month("P1", MARCH)["excluded_held_documentation"] == 10
    practice.con.execute("delete from quality.activity_holds")  # the note was amended
    minutes, _ = practice.run()
    assert minutes["build"]["patient_months"] == 1
    assert practice.month("P1", MARCH)["countable_minutes"] == 35
    assert_same_as_full_rebuild(practice)


def test_a_staff_role_change_rebuilds_everyone(practice):
    practice.run()
    practice.drop = "2026-03-02"
    practice.insert("staff", staff_id="RN", full_name="RN name", role="front_desk", npi=None)
    minutes, codes = practice.run()
    assert minutes["build"] == {"mode": "full", "reason": "staff roles, NPIs or credentials changed", "patient_months": 2}
    assert codes["build"]["mode"] == "full"
    assert practice.month("P1", MARCH)["countable_minutes"] == 0
    assert_same_as_full_rebuild(practice)


def test_a_staff_name_change_alone_stays_incremental(practice):
    practice.run()
    practice.drop = "2026-03-02"
    practice.insert("staff", staff_id="RN", full_name="Renamed", role="rn", npi=None)
    minutes, _ = practice.run()
    assert minutes["build"]["mode"] == "incremental"


def test_months_close_for_patients_nobody_touched_when_as_of_moves(practice):
    practice.log("P1", "RN", APRIL, 25)
    practice.run(as_of="2025-04-20")
    assert practice.month("P1", APRIL)["month_closed"] is False
    assert practice.month("P1", APRIL)["is_open_month"] is True
    assert {ln["month_closed"] for ln in practice.lines("P1", APRIL)} == {False}
    minutes, codes = practice.run(as_of="2025-05-10")  # no new data: only the calendar moved
    assert codes["build"] == {"mode": "incremental", "reason": None, "patient_months": 0}
    month = practice.month("P1", APRIL)
    assert (month["month_closed"], month["is_open_month"], month["as_of"]) == (True, False, date(2025, 5, 10))
    assert {ln["month_closed"] for ln in practice.lines("P1", APRIL)} == {True}
    assert codes["billed_closed"] == 2  # P1 March and April
    assert_same_as_full_rebuild(practice, as_of="2025-05-10")


def test_a_new_fee_schedule_recomputes_every_month(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    raw = yaml.safe_load((RULES_DIR / "2025.yaml").read_text())
    (folder / "2025.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    p = Practice(tmp_path / "w.duckdb", settings=settings_with(rules_dir=folder)).team()
    p.enrolled("P1")
    p.log("P1", "RN", MARCH, 25)
    p.run()
    assert p.month("P1", MARCH)["fee_schedule_amount"] == Decimal("60.49")   # 1.87 x 32.3465
    # a corrected relative value file is a data change: 1.90 x 32.3465 = 61.458 -> 61.46
    raw["fee_schedule"]["rvus"]["99490"] = {"work": 1.00, "pe": 0.84, "mp": 0.06, "total": 1.90}
    (folder / "2025.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _, codes = p.run()
    assert codes["build"]["mode"] == "full"
    assert codes["build"]["reason"] == "model SQL, rules or settings changed"
    assert p.month("P1", MARCH)["fee_schedule_amount"] == Decimal("61.46")
    assert_same_as_full_rebuild(p)


def test_codes_catch_up_on_every_patient_minutes_touched_since_they_last_ran(practice):
    practice.run()
    practice.drop = "2026-03-02"
    practice.log("P1", "RN", MARCH, 5, day=20)
    build_staging(practice.con)
    compute_minutes(practice.con, practice.settings)  # the codes stage of that night failed
    practice.drop = "2026-03-03"
    practice.log("P2", "RN", MARCH, 5, day=21)
    minutes, codes = practice.run()
    assert minutes["build"]["patient_months"] == 2  # P1 still waiting for codes, P2 new
    assert codes["build"]["patient_months"] == 2
    assert practice.month("P1", MARCH)["countable_minutes"] == 30
    assert_same_as_full_rebuild(practice)


def test_night_by_night_through_ccm_run_equals_one_full_rebuild(tmp_path):
    """Generated drops arriving one night at a time (overlapping exports, voids,
    amendments, vague and late notes): after the last night the incremental
    core tables equal one catch-up run's full build of the same drops."""
    import shutil

    from transforms import pipeline
    from transforms.devtools.generate import generate
    from transforms.settings import load_settings
    from transforms.warehouse import connect

    source = generate(tmp_path / "generated", patients=50, months=2, seed=3).out
    drops = sorted(p for p in source.iterdir() if p.is_dir())
    landing = tmp_path / "landing"
    landing.mkdir()
    settings = load_settings()
    request = lambda d, w: pipeline.RunRequest(landing, tmp_path / w, tmp_path / f"claims-{w}",  # noqa: E731
                                               date.fromisoformat(d.name), None)
    for d in drops[:-3]:
        shutil.copytree(d, landing / d.name)
    modes = []
    for d in drops[-3:]:
        shutil.copytree(d, landing / d.name)
        summary = pipeline.run(request(d, "nightly.duckdb"), settings)
        modes.append(summary["minutes"]["build"]["mode"])
    assert modes == ["full", "incremental", "incremental"]
    catch_up = pipeline.run(request(drops[-1], "catch_up.duckdb"), settings)
    assert catch_up["minutes"]["build"]["mode"] == "full"

    def tables(name: str) -> dict[str, list[tuple]]:
        con = connect(tmp_path / name, settings.time_zone, read_only=True)
        try:
            out = {t: sorted(con.execute(f"select * exclude (as_of) from core.{t}" if t == "patient_month"
                                         else f"select * from core.{t}").fetchall(), key=repr) for t in CORE_TABLES}
            return out
        finally:
            con.close()

    nightly, full = tables("nightly.duckdb"), tables("catch_up.duckdb")
    assert nightly["activity_minutes"] and nightly["code_lines"]
    assert nightly == full


def test_when_most_patients_changed_a_full_rebuild_is_cheaper(practice, monkeypatch):
    monkeypatch.setattr(incremental, "FULL_BUILD_SHARE", 0.5)
    practice.enrolled("P3")
    practice.log("P3", "RN", MARCH, 5)
    practice.run()
    practice.drop = "2026-03-02"
    practice.log("P1", "RN", MARCH, 5, day=20)  # one of three patients: incremental
    minutes, _ = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 1}
    practice.drop = "2026-03-03"
    practice.log("P1", "RN", MARCH, 5, day=21)
    practice.log("P2", "RN", MARCH, 5, day=21)  # two of three: full
    minutes, codes = practice.run()
    assert minutes["build"] == {"mode": "full", "reason": "most patient-months changed", "patient_months": 3}
    assert codes["build"]["mode"] == "full"
    assert practice.month("P1", MARCH)["countable_minutes"] == 35
    assert_same_as_full_rebuild(practice)


def test_a_new_activity_recomputes_its_month_and_a_new_condition_every_month(practice):
    practice.log("P1", "RN", APRIL, 22)
    practice.run()
    practice.drop = "2026-03-02"
    practice.log("P1", "RN", APRIL, 20, day=14)  # April only: March is not recomputed
    minutes, codes = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 1}
    assert codes["build"]["patient_months"] == 1
    assert practice.month("P1", APRIL)["billed_codes"] == "99490 99439"
    practice.drop = "2026-03-03"
    practice.condition("P1", "N18.4")  # a third chronic condition: any month may change
    minutes, _ = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 2}
    assert practice.month("P1", MARCH)["chronic_condition_count"] == 3
    assert practice.month("P1", APRIL)["chronic_condition_count"] == 3
    assert_same_as_full_rebuild(practice)


def test_a_month_passing_its_filing_limit_is_recomputed_on_the_night_it_passes(practice):
    practice.run(as_of="2026-03-31")      # March 2025's limit is 2026-03-31: still billable
    assert practice.month("P1", MARCH)["billed_codes"] == "99490"
    _, codes = practice.run(as_of="2026-04-01")   # no new drop: only tonight's date moved
    assert codes["build"] == {"mode": "incremental", "reason": None, "patient_months": 2}
    assert practice.month("P1", MARCH)["reasons_not_billed"] == ["past_timely_filing: filing limit 2026-03-31"]
    assert practice.lines("P1", MARCH) == []
    assert_same_as_full_rebuild(practice, as_of="2026-04-01")


def test_a_new_inpatient_stay_in_a_drop_recomputes_its_patient(practice):
    practice.run()
    practice.drop = "2026-03-02"
    # P1's 25 minutes on March 10th fall inside a hospital stay the new drop reports
    practice.encounter("P1", "2025-03-09", "99223", place_of_service="21", discharge_date="2025-03-12")
    minutes, _ = practice.run()
    assert minutes["build"] == {"mode": "incremental", "reason": None, "patient_months": 1}
    assert practice.month("P1", MARCH)["excluded_inpatient_stay"] == 25
    assert_same_as_full_rebuild(practice)


def test_a_staff_credential_change_rebuilds_everyone(practice):
    practice.run()
    practice.drop = "2026-03-02"
    practice.staff_member("RN", "rn", _absent_columns=[], credential=None, supervising_npi=None)
    minutes, _ = practice.run()
    assert minutes["build"]["mode"] == "full"
    # the export now carries credential and leaves the RN's empty: held
    assert practice.month("P1", MARCH)["reasons_not_billed"] == ["staff_credential_missing: RN"]
    assert_same_as_full_rebuild(practice)
