"""Documentation-quality checks (issue 4): every rule flags a failing entry and
passes a good one, holds are cleared by amendments, reruns are idempotent, and
the GX suites give clear messages and write Data Docs.

Rule tests use the SQL half of the stage (flag_documentation: DuckDB only);
the few GX tests share one module-scoped run, since importing GX is slow.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta

import pandas as pd
import polars as pl
import pytest

from quality_fixtures import (
    SETTINGS,
    SPECIFIC_NOTE,
    VAGUE_NOTE,
    add_activity,
    add_patient,
    base_drop,
    build_staging,
    flag,
    flags_of,
    hold_of,
    new_warehouse,
)
from transforms.contract import npi_is_valid

D1, D2 = "2026-02-03", "2026-02-04"


@pytest.fixture
def con(tmp_path):
    con = new_warehouse(tmp_path)
    base_drop(con, D1)
    yield con
    con.close()


def codes(con, activity_id: str) -> set[str]:
    return {row[1] for row in flags_of(con, activity_id) if not row[4]}


# ---------------------------------------------------------------- vague

def test_note_patient_call_5_minutes_is_vague_and_held(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 5, note=VAGUE_NOTE)
    summary = flag(con, [D1])
    assert flags_of(con, "A1") == [(D1, "vague", "hold", 5, False)]
    assert hold_of(con, "A1") == (5, "vague")
    assert summary["flags"]["vague"] == 1 and summary["held_minutes"] == 5


def test_specific_note_from_the_domain_rules_is_not_vague(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 8, note=SPECIFIC_NOTE)
    flag(con, [D1])
    assert flags_of(con, "A1") == []
    assert hold_of(con, "A1") is None


@pytest.mark.parametrize("note", [None, "", "   ", "15 minutes", "Duration: 20 mins"])
def test_empty_note_or_one_that_only_states_a_duration_is_vague(con, note):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 20, note=note)
    flag(con, [D1])
    assert codes(con, "A1") == {"vague"}


def test_note_under_vague_min_words_is_vague_and_at_the_minimum_passes(con):
    add_activity(con, D1, "SHORT", "2026-02-02 10:00", 20, note="Reviewed labs, adjusted insulin dose.")  # 5 words
    add_activity(con, D1, "ENOUGH", "2026-02-02 11:00", 20, note="Reviewed labs, adjusted evening insulin dose.")  # 6
    flag(con, [D1])
    assert codes(con, "SHORT") == {"vague"}
    assert codes(con, "ENOUGH") == set()
    message, threshold = con.execute(
        "select message, threshold from quality.flags where activity_id = 'SHORT'").fetchall()[0]
    assert threshold == "6 words" and "5 words" in message


def test_note_of_only_generic_phrases_is_vague_however_long(con):
    # 6 words, every one of them a configured generic phrase
    add_activity(con, D1, "A1", "2026-02-02 10:00", 10, note="Called patient. Left message. Follow up. 10 minutes.")
    flag(con, [D1])
    assert codes(con, "A1") == {"vague"}
    assert "generic phrase" in con.execute("select message from quality.flags").fetchall()[0][0]


def test_vague_thresholds_come_from_the_practice_configuration(con):
    lenient = replace(SETTINGS, documentation=replace(SETTINGS.documentation, vague_min_words=2, vague_phrases=()))
    add_activity(con, D1, "A1", "2026-02-02 10:00", 5, note=VAGUE_NOTE)
    flag(con, [D1], settings=lenient)
    assert codes(con, "A1") == set()


# ---------------------------------------------------------------- late

@pytest.mark.parametrize(
    "after, expected",
    [
        (timedelta(hours=23), None),
        (timedelta(hours=25), ("warn", 0, "24 hours")),
        (timedelta(days=7), ("warn", 0, "24 hours")),
        (timedelta(days=8), ("hold", 30, "7 days")),
    ],
    ids=["23h-ok", "25h-warn", "7d-warn", "8d-hold"],
)
def test_late_documentation_warns_after_24_hours_and_holds_after_7_days(con, after, expected):
    add_activity(con, D2, "A1", "2026-02-01 10:00", 30, documented_after=after)
    flag(con, [D2])
    rows = con.execute(
        "select severity, held_minutes, threshold from quality.flags where flag_code = 'late'").fetchall()
    assert rows == ([expected] if expected else [])
    assert hold_of(con, "A1") == ((30, "late") if expected and expected[0] == "hold" else None)


# ---------------------------------------------------------------- documented before the activity

def test_documented_before_activity_is_held_and_documented_during_passes(con):
    add_activity(con, D1, "BEFORE", "2026-02-02 10:00", 20, documented_at="2026-02-02 09:59")
    add_activity(con, D1, "DURING", "2026-02-02 11:00", 20, documented_at="2026-02-02 11:10")
    flag(con, [D1])
    assert flags_of(con, "BEFORE") == [(D1, "documented_before_activity", "hold", 20, False)]
    assert codes(con, "DURING") == set()


# ---------------------------------------------------------------- implausible duration

@pytest.mark.parametrize("minutes, flagged", [(0, True), (1, False), (120, False), (121, True), (600, True)])
def test_implausible_duration_under_1_or_over_max_activity_minutes_is_held(con, minutes, flagged):
    add_activity(con, D1, "A1", "2026-02-02 08:00", minutes)
    flag(con, [D1])
    assert codes(con, "A1") == ({"implausible_duration"} if flagged else set())
    if flagged:
        assert hold_of(con, "A1") == (minutes, "implausible_duration")


# ---------------------------------------------------------------- overlap

def test_overlap_holds_only_the_overlapping_minutes_for_both_activities(con):
    add_patient(con, D1, "P2")
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30)  # 10:00-10:30
    add_activity(con, D1, "A2", "2026-02-02 10:20", 30, patient_id="P2")  # 10:20-10:50, another patient
    add_activity(con, D1, "A3", "2026-02-02 10:50", 20)  # starts as A2 ends: no overlap
    add_activity(con, D1, "B1", "2026-02-02 10:00", 30, staff_id="S2")  # another staff member, same time
    flag(con, [D1])
    assert hold_of(con, "A1") == (10, "overlap")
    assert hold_of(con, "A2") == (10, "overlap")
    assert codes(con, "A3") == set() and codes(con, "B1") == set()
    message = con.execute("select message from quality.flags where activity_id = 'A1'").fetchall()[0][0]
    assert message == "overlaps 1 other activity of the same staff member (A2) for 10 of its 30 minutes"


def test_overlap_minutes_covered_by_several_activities_are_held_once(con):
    add_activity(con, D1, "LONG", "2026-02-02 10:00", 60)  # 10:00-11:00
    add_activity(con, D1, "X", "2026-02-02 10:10", 10)  # 10:10-10:20
    add_activity(con, D1, "Y", "2026-02-02 10:15", 25)  # 10:15-10:40
    add_activity(con, D1, "Z", "2026-02-02 10:50", 20)  # 10:50-11:10
    flag(con, [D1])
    assert hold_of(con, "LONG") == (40, "overlap")  # 10:10-10:40 and 10:50-11:00
    assert hold_of(con, "X") == (10, "overlap")
    assert hold_of(con, "Y") == (25, "overlap")
    assert hold_of(con, "Z") == (10, "overlap")


def test_overlap_with_an_activity_of_an_earlier_drop_flags_that_one_on_its_own_version(con):
    add_activity(con, D1, "OLD", "2026-02-02 10:00", 30)
    flag(con, [D1])
    assert codes(con, "OLD") == set()
    add_activity(con, D2, "NEW", "2026-02-02 10:15", 30)  # a late entry overlapping yesterday's
    flag(con, [D2], run_id="run-2")
    assert flags_of(con, "OLD") == [(D1, "overlap", "hold", 15, False)]
    assert flags_of(con, "NEW") == [(D2, "overlap", "hold", 15, False)]


def test_overlap_hold_clears_when_the_other_activity_is_voided(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30)
    add_activity(con, D1, "A2", "2026-02-02 10:20", 30)
    flag(con, [D1])
    assert hold_of(con, "A1") == (10, "overlap")
    add_activity(con, D2, "A2", "2026-02-02 10:20", 30, status="voided")
    flag(con, [D2], run_id="run-2")
    assert hold_of(con, "A1") is None
    assert flags_of(con, "A1") == [(D1, "overlap", "hold", 10, True)]  # history kept, marked resolved


# ---------------------------------------------------------------- future dated

def test_future_dated_activity_is_held_and_one_on_the_drop_date_passes(con):
    add_activity(con, D1, "FUTURE", "2026-02-04 00:10", 20, documented_at="2026-02-04 00:40")
    add_activity(con, D1, "LATE_EVENING", "2026-02-03 23:30", 20, documented_at="2026-02-03 23:55")
    flag(con, [D1])
    assert flags_of(con, "FUTURE") == [(D1, "future_dated", "hold", 20, False)]
    assert codes(con, "LATE_EVENING") == set()


# ---------------------------------------------------------------- holds, history, idempotency

def test_amendment_in_a_later_drop_clears_the_hold_and_flags_keep_the_history(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 15, note=VAGUE_NOTE)
    flag(con, [D1])
    assert hold_of(con, "A1") == (15, "vague")
    add_activity(con, D2, "A1", "2026-02-02 10:00", 15, note=SPECIFIC_NOTE)  # amended note
    summary = flag(con, [D2], run_id="run-2")
    assert hold_of(con, "A1") is None
    assert flags_of(con, "A1") == [(D1, "vague", "hold", 15, False)]
    assert summary["flags"]["vague"] == 0


def test_late_is_judged_on_the_first_note_so_a_late_amendment_clears_a_vague_hold(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 15, note=VAGUE_NOTE)  # documented an hour later
    flag(con, [D1])
    # the addendum arrives 3 weeks on; its documented_at is the time of the edit
    add_activity(con, "2026-02-24", "A1", "2026-02-02 10:00", 15, note=SPECIFIC_NOTE,
                 documented_at="2026-02-23 16:00")
    flag(con, ["2026-02-24"], run_id="run-2")
    assert hold_of(con, "A1") is None
    assert codes(con, "A1") == {"vague"}  # on the first version, kept as history


def test_a_note_first_written_late_stays_late_when_amended(con):
    add_activity(con, D1, "A1", "2026-01-20 10:00", 15, documented_after=timedelta(days=9))
    add_activity(con, "2026-02-24", "A1", "2026-01-20 10:00", 15, documented_at="2026-02-23 16:00")
    flag(con, [D1, "2026-02-24"])
    assert hold_of(con, "A1") == (15, "late")


def test_an_unchanged_repeat_in_a_later_drop_keeps_the_hold(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 15, note=VAGUE_NOTE)
    flag(con, [D1])
    add_activity(con, D2, "A1", "2026-02-02 10:00", 15, note=VAGUE_NOTE)
    flag(con, [D2], run_id="run-2")
    assert hold_of(con, "A1") == (15, "vague")


def test_rerunning_the_same_drop_does_not_duplicate_flags(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30, note=VAGUE_NOTE)
    add_activity(con, D1, "A2", "2026-02-02 10:20", 30)
    first = flag(con, [D1])
    before = con.execute("select * from quality.flags order by all").fetchall()
    second = flag(con, [D1], run_id="run-2")
    assert con.execute("select * from quality.flags order by all").fetchall() == before
    assert len(before) == 3 and {r[7] for r in before} == {"run-1"}
    assert first["flags"] == second["flags"] and first["held_minutes"] == second["held_minutes"] == 40


def test_hold_is_the_largest_hold_flag_and_never_more_than_the_duration(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30, note=VAGUE_NOTE)  # vague: all 30
    add_activity(con, D1, "A2", "2026-02-02 10:20", 30)  # overlaps A1 by 10
    add_activity(con, D2, "A3", "2026-02-02 12:00", 20, documented_after=timedelta(hours=30))  # late: warn only
    flag(con, [D1, D2])
    assert hold_of(con, "A1") == (30, "overlap,vague")
    assert hold_of(con, "A3") is None


def test_only_the_drops_of_this_run_are_checked(con):
    add_activity(con, D1, "OLD_VAGUE", "2026-02-02 09:00", 20, note=VAGUE_NOTE)
    add_activity(con, D2, "NEW", "2026-02-02 14:00", 20)
    summary = flag(con, [D2])
    assert summary["activity_versions_checked"] == 1
    assert con.execute("select count(*) from quality.flags").fetchall()[0][0] == 0


def test_flag_messages_never_quote_the_note_or_patient_details(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30, note="Lisinopril call")
    add_activity(con, D1, "A2", "2026-02-02 10:20", 400, documented_after=timedelta(days=9))
    flag(con, [D1])
    text = " ".join(m for (m,) in con.execute("select message || ' ' || threshold from quality.flags").fetchall())
    for secret in ("Lisinopril", "Ada", "Lovelace", "1EG4TE5MK73", "1950"):
        assert secret not in text


def test_staff_scorecard_counts_entries_flags_shares_and_held_minutes(con):
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30, note=VAGUE_NOTE)  # vague + overlap
    add_activity(con, D1, "A2", "2026-02-02 10:20", 30)  # overlap (10 held)
    add_activity(con, D1, "A3", "2026-02-02 12:00", 20, documented_after=timedelta(hours=30))  # late warn
    add_activity(con, D1, "A4", "2026-02-02 14:00", 20)  # clean
    add_activity(con, D1, "A5", "2026-01-30 14:00", 15)  # clean, January
    add_activity(con, D1, "B1", "2026-02-02 10:00", 25, staff_id="S2")  # clean
    flag(con, [D1])
    card = con.execute(
        "select staff_id, service_month, entries, minutes, flagged_entries, share_flagged, share_vague, "
        "share_overlap, share_late, share_future_dated, held_minutes from quality.staff_scorecard order by 1, 2"
    ).fetchall()
    assert card == [
        ("S1", date(2026, 1, 1), 1, 15, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0),
        ("S1", date(2026, 2, 1), 4, 100, 3, 0.75, 0.25, 0.5, 0.25, 0.0, 40),
        ("S2", date(2026, 2, 1), 1, 25, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0),
    ]


def test_npi_check_digit_macro_agrees_with_the_npi_module(con):
    flag(con, [D1])  # creates the macros on this connection
    samples = ["1234567893", "1234567890", "1245319599", "1003000126", "1679576722", "0000000000"]
    for npi in samples:
        assert con.execute("select npi_check_digit_ok(?)", [npi]).fetchall()[0][0] == npi_is_valid(npi), npi


def test_flags_table_created_empty_by_another_stage_first_is_completed_and_used(con):
    # sql/marts/_sources.sql creates quality.flags without the resolution columns
    con.execute("create table quality.flags (activity_id varchar, drop_name varchar, flag_code varchar, "
                "severity varchar, message varchar, threshold varchar, held_minutes integer, run_id varchar, "
                "raised_at timestamptz)")
    add_activity(con, D1, "A1", "2026-02-02 10:00", 5, note=VAGUE_NOTE)
    flag(con, [D1])
    flag(con, [D1], run_id="run-2")
    assert flags_of(con, "A1") == [(D1, "vague", "hold", 5, False)]



def test_inside_the_callers_transaction_the_stage_leaves_commit_or_rollback_to_the_caller(con):
    from transforms.quality.flags import flag_documentation

    add_activity(con, D1, "A1", "2026-02-02 10:00", 5, note=VAGUE_NOTE)
    build_staging(con)
    con.begin()  # as transforms.pipeline.stage_validate does
    flag_documentation(con, SETTINGS, "run-1", [D1], date(2026, 2, 10))
    con.rollback()
    assert con.execute("select count(*) from information_schema.tables "
                       "where table_schema = 'quality' and table_name = 'flags'").fetchall() == [(0,)]

# ---------------------------------------------------------------- GX: suites, messages, Data Docs

@pytest.fixture(scope="module")
def gx_run(tmp_path_factory):
    """One full stage run (SQL flags + GX suites + Data Docs) on a small drop."""
    from transforms.quality.checks import check_documentation

    folder = tmp_path_factory.mktemp("gx")
    con = new_warehouse(folder)
    base_drop(con, D1)
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30, note=VAGUE_NOTE)
    add_activity(con, D1, "A2", "2026-02-02 10:20", 30)
    add_activity(con, D1, "A3", "2026-02-02 12:00", 20)
    build_staging(con)
    docs = folder / "data_docs" / "run-gx"
    summary = check_documentation(con, SETTINGS, "run-gx", [D1], date(2026, 2, 10), docs)
    yield con, summary, docs
    con.close()


def test_stage_summary_counts_rows_flags_holds_and_names_the_data_docs_index(gx_run):
    con, summary, docs = gx_run
    assert summary["rows_validated"] == {"patients": 1, "staff": 2, "conditions": 0, "consents": 0,
                                         "care_plans": 0, "encounters": 0, "activities": 3}
    assert summary["flags"] == {"vague": 1, "late": 0, "documented_before_activity": 0,
                                "implausible_duration": 0, "overlap": 2, "future_dated": 0}
    assert summary["held_minutes"] == 40 and summary["activities_held"] == 2
    assert summary["suites_failed"] == []
    assert summary["data_docs_index"] == str(docs / "index.html")
    json.dumps(summary)  # goes into raw.runs.summary as JSON


def test_data_docs_index_is_written_for_the_run_without_phi(gx_run):
    _, _, docs = gx_run
    index = docs / "index.html"
    assert index.is_file()
    pages = list(docs.glob("validations/**/*.html"))
    assert {p.parts[len(docs.parts) + 1] for p in pages} == {"patients", "staff", "activities"}
    # offline, GX's own index lists nothing (its scripts come from CDNs): ours links every page
    offline = index.read_text().split('id="offline-contents"')[1]
    for page in pages:
        assert f'href="{page.relative_to(docs).as_posix()}"' in offline
    html = " ".join(p.read_text() for p in [index, *pages])
    for secret in ("1EG4TE5MK73", "Lovelace", "blood pressure", "Patient call"):
        assert secret not in html


def test_suite_fails_on_structurally_broken_activities_frame_with_clear_messages():
    from transforms.quality.validation import validate_table

    frame = pd.DataFrame({
        "activity_id": ["A1", None, "A1"],
        "patient_id": ["P1", "P1", "P1"],
        "staff_id": ["S1", "S1", "S1"],
        "started_at": ["2026-02-02T10:00:00", "2026-02-02T11:00:00", "not a time"],
        "duration_minutes": [20, 20, 20],
        "activity_type": ["care_coordination"] * 3,
        "face_to_face": ["false"] * 3,
        "note": [SPECIFIC_NOTE] * 3,
        "documented_at": ["2026-02-02T12:00:00"] * 3,
        "status": ["active", "archived", ""],
    })
    report = validate_table("activities", frame)
    assert not report.success
    errors = report.errors
    assert any(m.startswith("activities.activity_id: is empty or unreadable in 1 of 3 rows") and "row 2" in m
               for m in errors), errors
    assert any(m.startswith("activities.status: is not one of active, voided in 1 of 3 rows")
               and "'archived'" in m for m in errors), errors
    assert any(m.startswith("activities.started_at: is empty or unreadable in 1 of 3 rows") for m in errors), errors
    assert any(m.startswith("activities.activity_id: repeats within one drop") for m in report.warnings)
    assert all("\n" not in m for m in report.messages)


def test_suite_names_a_missing_column_and_checks_mbi_and_npi_formats():
    from transforms.quality.validation import validate_table

    patients = pd.DataFrame({
        "patient_id": ["P1", "P2"], "mbi": ["1EG4TE5MK73", "1EG4TE5MK7S"], "first_name": ["Ada", "Bo"],
        "last_name": ["L", "M"], "birth_date": ["1950-01-02", "1960-03-04"], "sex": ["F", "M"],
        "address_line1": ["1 Elm", "2 Oak"], "city": ["X", "Y"], "state": ["PA", "PA"], "zip": ["19064", "19064"],
    })  # no primary_payer
    report = validate_table("patients", patients)
    assert not report.success
    assert report.errors[0] == ("patients.primary_payer: required column is missing "
                                "(add it, or map the vendor's column name onto it)")
    mbi = [m for m in report.errors if m.startswith("patients.mbi:")]
    assert len(mbi) == 1 and "1 of 2 rows" in mbi[0] and "patient_id P2" in mbi[0]
    assert "1EG4TE5MK7S" not in mbi[0]  # the shape is shown, never the MBI

    staff = pl.DataFrame({"staff_id": ["S1", "S2", "S3"], "full_name": ["A", "B", "C"],  # Polars, as ingest reads
                          "role": ["physician", "rn", "np"], "npi": ["1234567893", None, "1234567890"]})
    report = validate_table("staff", staff)
    assert not report.success
    assert report.errors == ["staff.npi: fails the NPI check digit in 1 of 3 rows (33.3%); first at row 3 (staff_id S3)"]


# ---------------------------------------------------------------- an activity never overlaps itself

@pytest.mark.parametrize(
    "versions",
    [
        # (drop, start, minutes): the same activity id seen twice
        pytest.param([(D1, "2026-02-02 10:00", 30), (D1, "2026-02-02 10:00", 30)], id="twice_in_one_drop_identical"),
        pytest.param([(D1, "2026-02-02 10:00", 30), (D1, "2026-02-02 10:10", 30)], id="twice_in_one_drop_amended"),
        pytest.param([(D1, "2026-02-02 10:00", 30), (D2, "2026-02-02 10:00", 30)], id="in_two_drops_identical"),
        pytest.param([(D1, "2026-02-02 10:00", 30), (D2, "2026-02-02 10:15", 30)], id="in_two_drops_amended"),
    ],
)
def test_an_activity_seen_twice_is_one_activity_and_never_overlaps_itself(con, versions):
    base_drop(con, D1)
    for drop, start, minutes in versions:
        add_activity(con, drop, "A1", start, minutes)
    flag(con, sorted({d for d, _, _ in versions}))
    assert [f for f in flags_of(con, "A1") if f[1] == "overlap"] == []
    assert hold_of(con, "A1") is None
    assert con.execute("select count(*) from staging.activities where activity_id = 'A1'").fetchone()[0] == 1


def test_two_different_activities_of_one_staff_member_still_overlap(con):
    base_drop(con, D1)
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30)
    add_activity(con, D1, "A1", "2026-02-02 10:00", 30)   # A1 repeated: still one activity
    add_activity(con, D1, "A2", "2026-02-02 10:20", 30)   # a different activity: 10 shared minutes
    flag(con, [D1])
    assert hold_of(con, "A1") == (10, "overlap") and hold_of(con, "A2") == (10, "overlap")
    message = con.execute("select message from quality.flags where activity_id = 'A1'").fetchone()[0]
    assert message == "overlaps 1 other activity of the same staff member (A2) for 10 of its 30 minutes"
