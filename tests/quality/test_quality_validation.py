"""The GX half of the quality stage at scale (issue 8): a table's rows are
validated in chunks merged into one result per suite, and only rows the suites
have not validated before are validated (reference snapshots repeat in every
drop; overlapping exports repeat activities).
"""
from __future__ import annotations

from datetime import date

import pytest

from quality_fixtures import (
    SETTINGS,
    VAGUE_NOTE,
    add_activity,
    add_patient,
    add_staff,
    base_drop,
    build_staging,
    new_warehouse,
)
from transforms.quality.checks import check_documentation
from transforms.quality.flags import prepare
from transforms.quality import validation
from transforms.quality.validation import select_rows_to_validate, suite_chunks, validate_frames
from transforms.warehouse import run_sql

D1, D2, D3 = "2026-02-03", "2026-02-04", "2026-02-05"
AS_OF = date(2026, 2, 10)


@pytest.fixture
def con(tmp_path):
    con = new_warehouse(tmp_path)
    yield con
    con.close()


def validate(con, drops, tmp_path, run_id="run-1", chunk_rows=None):
    build_staging(con)
    return check_documentation(con, SETTINGS, run_id, drops, AS_OF, tmp_path / "docs" / run_id,
                                       chunk_rows=chunk_rows)


def messages(summary, table):
    return [m for m in summary["suite_warnings"] if m.startswith(f"{table}.")]


def many_activities(con, drop, count, *, voided_status_at=None, vague_at=()):
    for i in range(count):
        add_activity(con, drop, f"A{i:03d}", f"2026-02-02 {8 + i // 6:02d}:{(i % 6) * 10:02d}", 5,
                     note=VAGUE_NOTE if i in vague_at else quality_note(i),
                     status="archived" if i == voided_status_at else "active")


def quality_note(i: int) -> str:
    return f"Reviewed medication list and blood pressure readings with patient, entry {i}, refilled prescriptions."


# ---------------------------------------------------------------- chunks

def test_a_violation_in_a_later_chunk_is_reported_once_with_its_count_over_all_rows(con, tmp_path):
    base_drop(con, D1)
    many_activities(con, D1, 24, voided_status_at=17)
    summary = validate(con, [D1], tmp_path, chunk_rows=5)
    assert summary["gx_batches"]["activities"] >= 3
    [failed] = [f for f in summary["suites_failed"] if f["suite"] == "activities"]
    assert failed["reason"].startswith("activities.status: is not one of active, voided in 1 of 24 rows")
    assert "'archived'" in failed["reason"] and "row 18 (activity_id A017)" in failed["reason"]


def test_chunked_and_single_batch_validation_give_the_same_outcomes(con, tmp_path):
    base_drop(con, D1)
    many_activities(con, D1, 30, voided_status_at=3, vague_at=(1, 2, 20))
    add_activity(con, D1, "A005", "2026-02-02 23:00", 5)  # repeats within the drop
    build_staging(con)

    def outcomes(chunk_rows):
        prepare(con, SETTINGS, run_id="r", drops=[D1], as_of=AS_OF)
        run_sql(con, "quality/_schema.sql")
        con.execute("delete from quality.validated_rows")
        select_rows_to_validate(con, [D1])
        chunks = suite_chunks(con, "activities", chunk_rows)
        reports = validate_frames({"activities": chunks}, SETTINGS, "r", None)
        report = reports["activities"]
        return report.chunks, report.rows, report.success, sorted(
            (f.expectation, f.column, f.severity, f.success, f.unexpected_count, f.element_count)
            for f in report.failures)

    single, chunked = outcomes(1000), outcomes(4)
    assert single[0] == 1 and chunked[0] > 3
    assert single[1:] == chunked[1:]
    assert any(f[0] == "expect_compound_columns_to_be_unique" and f[4] == 2 for f in chunked[3])


def test_mostly_is_judged_over_all_rows_not_per_chunk(con, tmp_path):
    # 1 vague note in 20 rows is 5%: the suite allows it (mostly 0.95), although
    # the chunk that holds it is all vague
    base_drop(con, D1)
    many_activities(con, D1, 20, vague_at=(7,))
    summary = validate(con, [D1], tmp_path, chunk_rows=2)
    assert summary["gx_batches"]["activities"] > 1
    assert not any(m.startswith("activities.note_words") for m in summary["suite_warnings"]), summary


def test_chunked_data_docs_show_one_merged_result_per_suite(con, tmp_path):
    base_drop(con, D1)
    many_activities(con, D1, 12, voided_status_at=9)
    summary = validate(con, [D1], tmp_path, chunk_rows=3)
    assert summary["gx_batches"]["activities"] > 1
    docs = tmp_path / "docs" / "run-1"
    pages = list(docs.glob("validations/activities/**/*.html"))
    assert len(pages) == 1
    assert "12" in pages[0].read_text()


# ---------------------------------------------------------------- only what is new

def test_an_unchanged_reference_row_of_a_later_drop_is_not_validated_again_and_a_changed_one_is(con, tmp_path):
    base_drop(con, D1)
    validate(con, [D1], tmp_path)
    base_drop(con, D2)  # the same snapshot again...
    add_staff(con, D2, "S3", "rn", full_name="New Nurse")  # ...with a new staff member
    con.execute("update raw.patients set sex = 'X' where _drop = ?", [D2])  # and a changed, broken patient row
    summary = validate(con, [D2], tmp_path, run_id="run-2")
    assert summary["rows_validated"]["staff"] == 1 and summary["rows_already_validated"]["staff"] == 2
    assert summary["rows_validated"]["patients"] == 1
    [failed] = summary["suites_failed"]
    assert failed["suite"] == "patients" and failed["reason"].startswith("patients.sex: is not one of M, F, U in 1 of 1")


def test_a_snapshot_repeated_by_several_drops_of_one_run_is_validated_once(con, tmp_path):
    for drop in (D1, D2, D3):
        base_drop(con, drop)
    add_activity(con, D1, "A1", "2026-02-02 10:00", 20)
    add_activity(con, D2, "A1", "2026-02-02 10:00", 20)  # an overlapping export repeats it
    summary = validate(con, [D1, D2, D3], tmp_path)
    assert summary["rows_validated"] == {"patients": 1, "staff": 2, "conditions": 0, "consents": 0,
                                         "care_plans": 0, "encounters": 0, "activities": 1}
    assert summary["rows_already_validated"]["patients"] == 2 and summary["rows_already_validated"]["activities"] == 1


def test_rerunning_the_same_drop_validates_its_rows_again(con, tmp_path):
    base_drop(con, D1)
    first = validate(con, [D1], tmp_path)
    again = validate(con, [D1], tmp_path, run_id="run-2")
    assert again["rows_validated"] == first["rows_validated"]


def test_a_repeated_key_is_reported_even_when_one_of_its_rows_was_validated_before(con, tmp_path):
    base_drop(con, D1)
    validate(con, [D1], tmp_path)
    base_drop(con, D2)
    add_patient(con, D2, "P1", mbi="1EG4TE5MK74")  # P1 twice in D2: the old row and a changed one
    summary = validate(con, [D2], tmp_path, run_id="run-2")
    assert summary["rows_validated"]["patients"] == 2
    assert any(m.startswith("patients.patient_id: repeats within one drop") for m in messages(summary, "patients"))


def test_nothing_new_runs_no_gx_and_writes_no_data_docs(con, tmp_path, monkeypatch):
    base_drop(con, D1)
    validate(con, [D1], tmp_path)
    base_drop(con, D2)

    def no_gx(*args, **kwargs):
        raise AssertionError("GX ran with nothing new to validate")

    monkeypatch.setattr(validation, "run_suites", no_gx)
    summary = validate(con, [D2], tmp_path, run_id="run-2")
    assert set(summary["rows_validated"].values()) == {0}
    assert summary["data_docs_index"] is None and summary["gx_batches"] == {}


def test_drops_validated_before_validated_rows_existed_count_as_validated(con, tmp_path):
    base_drop(con, D1)
    con.execute("create table quality.validated_drops "
                "(drop_name varchar primary key, run_id varchar not null, validated_at timestamptz not null)")
    con.execute("insert into quality.validated_drops values (?, 'run-old', now())", [D1])
    base_drop(con, D2)
    summary = validate(con, [D2], tmp_path, run_id="run-2")
    assert summary["rows_validated"]["patients"] == 0 and summary["rows_already_validated"]["patients"] == 1


def test_a_failed_validation_leaves_its_rows_to_be_validated_again(con, tmp_path, monkeypatch):
    base_drop(con, D1)

    def broken(*args, **kwargs):
        raise RuntimeError("GX broke")

    monkeypatch.setattr(validation, "run_suites", broken)
    build_staging(con)
    con.begin()  # as the pipeline does: its rollback undoes the stage
    with pytest.raises(RuntimeError):
        check_documentation(con, SETTINGS, "run-1", [D1], AS_OF, tmp_path / "docs")
    con.rollback()
    monkeypatch.undo()
    summary = validate(con, [D1], tmp_path, run_id="run-2")
    assert summary["rows_validated"]["patients"] == 1


def test_chunks_keep_the_rows_a_uniqueness_expectation_compares_together(monkeypatch):
    from transforms.quality import suites as gx_suites

    def suite(expectations):
        monkeypatch.setattr(gx_suites, "load_suite", lambda table: {"name": table, "expectations": expectations})

    suite([{"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["_drop", "activity_id"]}},
           {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "activity_id"}}])
    assert gx_suites.partition_columns("activities") == ("_drop", "activity_id")
    suite([{"type": "expect_column_values_to_be_unique", "kwargs": {"column": "activity_id"}},
           {"type": "expect_compound_columns_to_be_unique", "kwargs": {"column_list": ["_drop", "activity_id"]}}])
    assert gx_suites.partition_columns("activities") == ("activity_id",)  # across drops too
    suite([{"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "activity_id"}}])
    assert gx_suites.partition_columns("activities") == ()
    suite([{"type": "expect_column_mean_to_be_between", "kwargs": {"column": "duration_minutes"}}])
    assert gx_suites.partition_columns("activities") is None  # one batch, whatever its size
