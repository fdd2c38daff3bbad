"""Bad input, case by case: every byte sequence a drop can hold either loads, or is
quarantined by row with its reason, or fails the run with exit 2 and one line per
problem naming the file (and the line or row, and the column) before anything is
stored. Whatever happens, no name, MBI, birth date or note reaches the output.

Each case adds a drop `2026-01-20` to its own copy of a loaded warehouse (the
complete practice of reliability_fixtures, January billed) and runs `ccm run`.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from reliability_fixtures import (ACTIVITIES, NOTES, PATIENTS, Place, activity, ccm, copy_place, phi_found, sha256,
                                  write_csv, write_full_drop)
from transforms.contract import TABLES

DROP = "2026-01-20"
ACT = list(TABLES["activities"].columns)
PAT = list(TABLES["patients"].columns)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Place:
    place = Place(tmp_path_factory.mktemp("loaded"))
    write_full_drop(place.landing)
    assert ccm(place) == 0
    return place


# ---------------------------------------------------------------- how a case's file is written

def csv_text(rows: list[list[str]], newline: str = "\n") -> str:
    out = io.StringIO()
    import csv
    csv.writer(out, lineterminator=newline).writerows(rows)
    return out.getvalue()


def act_rows(*rows: dict) -> list[list[str]]:
    return [ACT] + [[r[c] for c in ACT] for r in rows]


GOOD = activity("B1", "P1", 9, "12", NOTES[0])
GOOD_LINE = ",".join(GOOD[c] if "," not in GOOD[c] else f'"{GOOD[c]}"' for c in ACT)
HEADER = ",".join(ACT)


def activities_bytes(data: bytes, name: str = "activities.csv") -> Callable[[Path], None]:
    return lambda drop: (drop / name).write_bytes(data)


def activities_csv(*rows: dict, newline: str = "\n", name: str = "activities.csv") -> Callable[[Path], None]:
    return activities_bytes(csv_text(act_rows(*rows), newline).encode(), name)


def patients_csv(*changes: dict) -> Callable[[Path], None]:
    rows = [dict(PATIENTS[0], **c) for c in changes]
    return lambda drop: write_csv(drop / "patients.csv", rows, PAT)


def parquet(table: pa.Table, name: str = "activities.parquet") -> Callable[[Path], None]:
    def build(drop: Path) -> None:
        drop.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, drop / name)
    return build


def act_table(**columns) -> pa.Table:
    """GOOD as a one-row Parquet table, some columns replaced by typed arrays."""
    data = {c: pa.array([GOOD[c]]) for c in ACT}
    data.update(columns)
    return pa.table(data)


# ---------------------------------------------------------------- what a case promises

@dataclass
class Fails:
    """Exit 2, each line naming a path in the landing, `message` among them; nothing stored changed."""
    message: str
    names: str = "activities"  # a word of the file or folder the line names


@dataclass
class Quarantined:
    """Exit 0; exactly these (table, row, column, reason) rows quarantined from the new drop."""
    rows: list[tuple]


@dataclass
class Loads:
    """Exit 0, nothing quarantined from the new drop; `check(place)` holds."""
    check: Callable[[Place], None] | None = None
    files: list[str] = field(default_factory=lambda: ["activities"])


def stored(place: Place, sql: str):
    return place.query(sql)


def activity_is(activity_id: str, **expected):
    def check(place: Place) -> None:
        columns = ", ".join(expected)
        rows = place.query(f"select {columns} from raw.activities where activity_id = ? and _drop = ?",
                           [activity_id, DROP])
        assert rows == [tuple(expected.values())], rows
    return check


def activities_in_drop(n: int):
    def check(place: Place) -> None:
        assert place.query("select rows_read from raw.loaded_file_rows where drop_name = ? "
                           "and table_name = 'activities'", [DROP]) == [(n,)]
    return check


def minutes_of(activity_id: str, minutes: int):
    return activity_is(activity_id, duration_minutes=minutes)


WHOLE = "not a whole number"
TWELVE_FIELDS = "has 11 fields; the header has 10"

# ---------------------------------------------------------------- the cases

CASES: list[tuple[str, Callable[[Path], None], object]] = [
    # -- encodings
    ("cp1252_byte_in_note", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n".replace("glucose", "glucos\x00").encode()
                                             .replace(b"\x00", b"\xe9")),
     Fails("row 1, column note: is not UTF-8 text")),
    ("latin1_patient_name", lambda d: (d / "patients.csv").write_bytes(
        csv_text([PAT, [dict(PATIENTS[0], last_name="Nuñez")[c] for c in PAT]]).encode("latin-1")),
     Fails("row 1, column last_name: is not UTF-8 text", "patients")),
    ("invalid_utf8_header", activities_bytes(f"activity_id,patient_id\xff\n".encode("latin-1")),
     Fails("line 1, column 2: the header is not UTF-8 text")),
    ("utf16_with_bom", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n".encode("utf-16")), Fails("is UTF-16 text")),
    ("utf16_without_bom", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n".encode("utf-16-le")), Fails("NUL bytes")),
    ("truncated_multibyte_at_end", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n".encode()[:-30] + b"\xe2\x82"),
     Fails("is not UTF-8 text")),
    ("utf8_bom", activities_bytes(b"\xef\xbb\xbf" + f"{HEADER}\n{GOOD_LINE}\n".encode()),
     Loads(minutes_of("B1", 12))),
    ("utf8_accents_and_cjk", activities_csv(dict(GOOD, note="Señora Li 李 confirmed the plan; résumé of goals.")),
     Loads(activity_is("B1", note="Señora Li 李 confirmed the plan; résumé of goals."))),
    ("nul_byte_in_a_value", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n".replace("phone_outreach", "phone\x00x")
                                             .encode()),
     Quarantined([("activities", 1, "activity_type", "holds a NUL byte")])),
    # -- delimiters and line ends
    ("crlf_line_ends", activities_csv(GOOD, newline="\r\n"), Loads(minutes_of("B1", 12))),
    ("mixed_line_ends", activities_bytes(f"{HEADER}\r\n{GOOD_LINE}\r\n{GOOD_LINE.replace('B1', 'B2')}\n".encode()),
     Loads(activity_is("B2", status="active"))),  # no CR left in the last value
    ("bare_carriage_return_in_a_value", activities_bytes(
        f"{HEADER}\n{GOOD_LINE.replace('phone_outreach', 'phone' + chr(13) + 'outreach')}\n".encode()),
     Fails("line 2: its line end differs from the header's")),
    ("quoted_crlf_in_an_lf_file", activities_csv(dict(GOOD, note="one\r\ntwo")), Loads(activity_is("B1", note="one\r\ntwo"))),
    ("no_final_newline", activities_bytes(f"{HEADER}\n{GOOD_LINE}".encode()), Loads(minutes_of("B1", 12))),
    ("trailing_blank_lines", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n\n\n".encode()),
     Loads(activities_in_drop(1))),
    ("blank_line_between_rows", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n\n{GOOD_LINE.replace('B1', 'B2')}\n"
                                                 .encode()),
     Loads(activities_in_drop(2))),
    ("semicolon_delimited", activities_bytes(f"{HEADER}\n{GOOD_LINE}\n".replace(",", ";").encode()),
     Fails("missing required column activity_id (the header reads as one column: the contract's CSV is "
           "comma-delimited)")),
    ("tab_delimited", activities_bytes(f"{HEADER}\n".replace(",", "\t").encode()),
     Fails("comma-delimited")),
    # -- quoting
    ("unbalanced_quote_mid_file", activities_bytes(
        f'{HEADER}\n{GOOD_LINE.replace("phone_outreach", chr(34) + "phone_outreach")}\n'
        f'{GOOD_LINE.replace("B1", "B2")}\n'.encode()),
     Fails("row 1, column activity_type: a quote is not closed")),
    ("unbalanced_quote_on_last_row", activities_bytes(
        f'{HEADER}\n{GOOD_LINE}\n{GOOD_LINE.replace("B1", "B2").replace(",false,", ",false," + chr(34))}\n'
        .encode()),
     Fails("row 2, column note: a quote is not closed")),
    ("unterminated_quote_among_quoted_line_breaks", activities_bytes(
        (f'{HEADER}\n' + csv_text(act_rows(dict(GOOD, note="line one\nline two")))[len(HEADER) + 1:]
         + f'B3,P1,S-RN,2026-01-09T10:00:00,5,phone_outreach,false,"never closed,2026-01-09T10:30:00,\n').encode()),
     Fails("row 2, column note: a quote is not closed")),  # row 1 spans two lines
    ("value_after_closing_quote", activities_bytes(
        f'{HEADER}\n{GOOD_LINE.replace("phone_outreach", chr(34) + "phone" + chr(34) + "_outreach")}\n'.encode()),
     Fails("a value goes on after its closing quote")),
    ("quote_inside_unquoted_value", activities_bytes(
        f'{HEADER}\n{GOOD_LINE.replace("phone_outreach", "phone" + chr(34) + "outreach")}\n'.encode()),
     Loads(activity_is("B1", activity_type='phone"outreach'))),
    ("quoted_line_break_in_note", activities_csv(dict(GOOD, note="First line of the note.\r\nSecond line.")),
     Loads(activity_is("B1", note="First line of the note.\r\nSecond line."))),
    ("quoted_comma_and_doubled_quotes", activities_csv(dict(GOOD, note='He said "fine", then "better".')),
     Loads(activity_is("B1", note='He said "fine", then "better".'))),
    # -- ragged rows: quarantined whole, never shifted
    ("one_field_too_many", activities_bytes(
        f"{HEADER}\n{GOOD_LINE}\n{GOOD_LINE.replace('B1', 'B2').replace(',false,', ',false,extra,')}\n".encode()),
     Quarantined([("activities", 2, None, TWELVE_FIELDS)])),
    ("one_field_too_few", activities_bytes(
        f"{HEADER}\n{GOOD_LINE.replace(',false,', ',')}\n{GOOD_LINE.replace('B1', 'B2')}\n".encode()),
     Quarantined([("activities", 1, None, "has 9 fields; the header has 10")])),
    ("trailing_comma_on_one_row", activities_bytes(f"{HEADER}\n{GOOD_LINE},\n".encode()),
     Quarantined([("activities", 1, None, TWELVE_FIELDS)])),
    ("whitespace_only_row", activities_bytes(f"{HEADER}\n   \n{GOOD_LINE}\n".encode()),
     Quarantined([("activities", 1, None, "has 1 fields; the header has 10")])),
    ("row_with_far_too_many_fields", activities_bytes(f"{HEADER}\n{GOOD_LINE}{',x' * 40}\n".encode()),
     Fails("row 1: has more than twice the header's fields")),
    ("unnamed_trailing_column_everywhere", activities_bytes(f"{HEADER},\n{GOOD_LINE},\n".encode()),
     Loads(minutes_of("B1", 12))),
    # -- headers and columns
    ("duplicate_column", activities_bytes(f"{HEADER},duration_minutes\n{GOOD_LINE},99\n".encode()),
     Fails("columns 5 ('duration_minutes') and 11 ('duration_minutes') both read as duration_minutes")),
    ("duplicate_after_normalising", activities_bytes(f"{HEADER},Note\n{GOOD_LINE},other\n".encode()),
     Fails("columns 8 ('note') and 11 ('Note') both read as note")),
    ("missing_required_column", activities_bytes(f"{HEADER.replace(',face_to_face', '')}\n".encode()),
     Fails("missing required column face_to_face")),
    ("missing_optional_column", activities_bytes(
        f"{HEADER.removesuffix(',status')}\n{GOOD_LINE.removesuffix(',')}\n".encode()),
     Loads(activity_is("B1", status="active"))),
    ("extra_unknown_column", activities_bytes(f"{HEADER},ehr_internal\n{GOOD_LINE},=cmd|x\n".encode()),
     Loads(minutes_of("B1", 12))),
    ("header_names_in_other_case_and_spaces", activities_bytes(
        (" Activity_ID ," + HEADER.split(",", 1)[1].upper() + f"\n{GOOD_LINE}\n").encode()),
     Loads(minutes_of("B1", 12))),
    ("empty_file", activities_bytes(b""), Fails("is empty (0 bytes)")),
    ("header_only", activities_bytes(f"{HEADER}\n".encode()), Loads(activities_in_drop(0))),
    ("header_only_without_newline", activities_bytes(HEADER.encode()), Loads(activities_in_drop(0))),
    # -- types and sizes
    ("fractional_minutes", activities_csv(dict(GOOD, duration_minutes="12.5")),
     Quarantined([("activities", 1, "duration_minutes", WHOLE)])),
    ("minutes_too_large_for_an_integer", activities_csv(dict(GOOD, duration_minutes="99999999999")),
     Quarantined([("activities", 1, "duration_minutes", "a whole number too large to be true")])),
    ("negative_minutes", activities_csv(dict(GOOD, duration_minutes="-5")),
     Quarantined([("activities", 1, "duration_minutes", "negative minutes")])),
    ("minutes_in_scientific_notation", activities_csv(dict(GOOD, duration_minutes="1e3")),
     Quarantined([("activities", 1, "duration_minutes", WHOLE)])),
    ("minutes_with_spaces_and_plus", activities_csv(dict(GOOD, duration_minutes=" +15 ")), Loads(minutes_of("B1", 15))),
    ("minutes_empty", activities_csv(dict(GOOD, duration_minutes="")),
     Quarantined([("activities", 1, "duration_minutes", "missing value")])),
    ("face_to_face_not_boolean", activities_csv(dict(GOOD, face_to_face="maybe")),
     Quarantined([("activities", 1, "face_to_face", "not true/false")])),
    ("note_of_a_megabyte", activities_csv(dict(GOOD, note="Reviewed the plan. " * 55_000)),
     Loads(activity_is("B1", duration_minutes=12))),
    ("row_longer_than_8_mb", activities_csv(dict(GOOD, note="x" * (9 << 20))), Fails("a row is longer than 8 MB")),
    # -- dates and timestamps
    ("day_first_timestamp", activities_csv(dict(GOOD, started_at="31/01/2026 10:00")),
     Quarantined([("activities", 1, "started_at", "not an ISO 8601 timestamp")])),
    ("impossible_date_in_timestamp", activities_csv(dict(GOOD, started_at="2026-02-30T10:00:00")),
     Quarantined([("activities", 1, "started_at", "not an ISO 8601 timestamp")])),
    ("utc_timestamp", activities_csv(dict(GOOD, started_at="2026-01-09T15:00:00Z")), Loads(minutes_of("B1", 12))),
    ("birth_date_in_the_future", patients_csv(dict(birth_date="2026-03-01")),
     Quarantined([("patients", 1, "birth_date", "in the future (after the drop's date)")])),
    ("birth_date_month_13", patients_csv(dict(birth_date="1950-13-01")),
     Quarantined([("patients", 1, "birth_date", "not a date (YYYY-MM-DD)")])),
    ("birth_date_us_format", patients_csv(dict(birth_date="01/02/1950")),
     Quarantined([("patients", 1, "birth_date", "not a date (YYYY-MM-DD)")])),
    ("consent_date_without_leading_zeros", lambda d: write_csv(d / "consents.csv", [dict(
        patient_id="P1", consent_date="2026-1-5", method="verbal", billing_npi="1345678902", revoked_date="")]),
     Quarantined([("consents", 1, "consent_date", "not a date (YYYY-MM-DD)")])),
    # -- vocabularies
    ("sex_outside_the_vocabulary", patients_csv(dict(sex="X")),
     Quarantined([("patients", 1, "sex", "not one of M/F/U")])),
    ("sex_in_lower_case", patients_csv(dict(sex="f")), Loads(files=["patients"])),
    ("payer_outside_the_vocabulary", patients_csv(dict(primary_payer="Medicare")),
     Quarantined([("patients", 1, "primary_payer", "not one of medicare_part_b/")])),
    ("status_outside_the_vocabulary", activities_csv(dict(GOOD, status="deleted")),
     Quarantined([("activities", 1, "status", "not one of active/voided")])),
    ("consent_method_outside_the_vocabulary", lambda d: write_csv(d / "consents.csv", [dict(
        patient_id="P1", consent_date="2026-01-05", method="phone", billing_npi="1345678902", revoked_date="")]),
     Quarantined([("consents", 1, "method", "not one of written/verbal")])),
    # -- ids
    ("empty_activity_id", activities_csv(dict(GOOD, activity_id="")),
     Quarantined([("activities", 1, "activity_id", "missing value")])),
    ("same_row_twice_in_a_file", activities_csv(GOOD, GOOD), Loads(activities_in_drop(2))),
    ("activity_of_an_unknown_patient", activities_csv(dict(GOOD, patient_id="P404")),
     Loads(lambda p: p.query("select reason from staging.rejected_rows where record_key = 'B1'")
           == [("unknown patient",)])),
    # -- Parquet schemas
    ("parquet_float_minutes_whole", parquet(act_table(duration_minutes=pa.array([20.0]))), Loads(minutes_of("B1", 20))),
    ("parquet_float_minutes_fraction", parquet(act_table(duration_minutes=pa.array([20.5]))),
     Quarantined([("activities", 1, "duration_minutes", WHOLE)])),
    ("parquet_int64_minutes", parquet(act_table(duration_minutes=pa.array([17], pa.int64()))),
     Loads(minutes_of("B1", 17))),
    ("parquet_decimal_minutes", parquet(act_table(duration_minutes=pa.array([pa.scalar(18, pa.decimal128(5, 2))
                                                                            .as_py()], pa.decimal128(5, 2)))),
     Loads(minutes_of("B1", 18))),
    ("parquet_list_column", parquet(act_table(note=pa.array([["a", "b"]]))),
     Fails("column note: is a list")),
    ("parquet_struct_column", parquet(act_table(patient_id=pa.array([{"id": "P1"}]))),
     Fails("column patient_id: is a struct")),
    ("parquet_typed_timestamps_and_boolean", parquet(act_table(
        started_at=pa.array([pa.scalar(1767970800_000_000, pa.timestamp("us", "UTC")).as_py()],
                            pa.timestamp("us", "UTC")),
        face_to_face=pa.array([False]))),
     Loads(activity_is("B1", face_to_face=False))),
    ("parquet_binary_not_utf8", parquet(act_table(note=pa.array([b"\xe9t\xe9"], pa.binary()))),
     Fails("column note: holds bytes that are not UTF-8 text")),
    ("parquet_duplicate_columns", parquet(pa.Table.from_arrays(
        [pa.array([GOOD[c]]) for c in ACT] + [pa.array(["x"])], names=ACT + ["note"])),
     Fails("both read as note")),
    ("parquet_extra_nested_column", parquet(act_table(ehr_tags=pa.array([["x"]]))), Loads(minutes_of("B1", 12))),
    ("parquet_no_rows", parquet(act_table().slice(0, 0)), Loads(activities_in_drop(0))),
    ("parquet_corrupt_body", lambda d: (parquet(act_table())(d), (d / "activities.parquet").write_bytes(
        (lambda b: b[:8] + bytes(len(b) - 16) + b[-8:])((d / "activities.parquet").read_bytes()))),
     Fails("cannot be read as Parquet")),
    ("parquet_that_is_text", activities_bytes(b"activity_id,patient_id\nB1,P1\n", "activities.parquet"),
     Fails("cannot be read as Parquet")),
    ("parquet_empty_file", activities_bytes(b"", "activities.parquet"), Fails("cannot be read as Parquet")),
    # -- file names and the file system
    ("upper_case_extension", activities_csv(GOOD, name="activities.CSV"), Loads(minutes_of("B1", 12))),
    ("upper_case_name", activities_csv(GOOD, name="ACTIVITIES.csv"), Loads(minutes_of("B1", 12))),
    ("unknown_extension", activities_csv(GOOD, name="activities.txt"), Fails("not a file of the export contract")),
    ("compressed_file", activities_bytes(b"\x1f\x8b\x08\x00", "activities.csv.gz"),
     Fails("not a file of the export contract")),
    ("partial_upload_beside_the_files", lambda d: (activities_csv(GOOD)(d),
                                                   (d / ".patients.csv.part").write_bytes(b"patient_id\n")),
     Fails(".patients.csv.part: not a file of the export contract", "patients")),
    ("os_litter_is_named_and_skipped", lambda d: (activities_csv(GOOD)(d), (d / ".DS_Store").write_bytes(b"\0\1")),
     Loads(minutes_of("B1", 12))),
    ("two_files_for_one_table", lambda d: (activities_csv(GOOD)(d), parquet(act_table())(d)),
     Fails("a second file for table activities")),
    ("folder_inside_a_drop", lambda d: (activities_csv(GOOD)(d), (d / "more").mkdir()), Fails("a folder inside drop",
                                                                                               "more")),
    ("symlinked_file_to_outside", lambda d: ((d.parent.parent / "elsewhere").mkdir(),
                                             activities_csv(GOOD)(d.parent.parent / "elsewhere"),
                                             (d / "activities.csv").symlink_to(
                                                 d.parent.parent / "elsewhere" / "activities.csv")),
     Fails("activities.csv: is a symbolic link")),
    ("fifo_in_a_drop", lambda d: os.mkfifo(d / "activities.csv"), Fails("is not a regular file")),
]


@pytest.mark.parametrize("build, outcome", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input(loaded, tmp_path, capsys, caplog, build, outcome):
    place = copy_place(loaded, tmp_path / "case")
    drop = place.landing / DROP
    drop.mkdir()
    build(drop)
    before = sha256(place.warehouse)
    capsys.readouterr()
    code = ccm(place)
    out, err = capsys.readouterr()
    assert phi_found(out + err + caplog.text) == []
    if isinstance(outcome, Fails):
        lines = err.strip().splitlines()
        assert code == 2, err
        assert lines and all(line.startswith(str(place.landing)) for line in lines), lines
        assert any(outcome.message in line and outcome.names in line for line in lines), lines
        assert "Traceback" not in err and out == ""
        assert sha256(place.warehouse) == before  # nothing stored changed
        return
    assert code == 0, err
    assert err == ""
    quarantined = place.query("select table_name, row_number, column_name, reason from raw.quarantine "
                              "where drop_name = ? order by all", [DROP])
    if isinstance(outcome, Quarantined):
        assert [q[:3] for q in quarantined] == [r[:3] for r in outcome.rows]
        assert all(r[3] in q[3] for q, r in zip(quarantined, outcome.rows)), quarantined
        assert f"rows quarantined: {len(outcome.rows)}" in out
        # the drop is loaded: every file recorded, the bad row counted
        assert place.query("select sum(rows_quarantined) from raw.loaded_files where drop_name = ?",
                           [DROP]) == [(len(outcome.rows),)]
    else:
        assert quarantined == []
        recorded = [r[0] for r in place.query("select table_name from raw.loaded_files where drop_name = ? "
                                              "order by 1", [DROP])]
        assert recorded == outcome.files
        if outcome.check is not None:
            assert outcome.check(place) is not False


# ---------------------------------------------------------------- drops and the landing

def test_a_drop_not_named_for_its_date_is_refused_before_anything_is_stored(loaded, tmp_path, capsys):
    place = copy_place(loaded, tmp_path / "case")
    (place.landing / "latest").mkdir()
    activities_csv(GOOD)(place.landing / "latest")
    before = sha256(place.warehouse)
    assert ccm(place) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{place.landing / 'latest'}: drop folder name 'latest' does not start with a date; drops are "
                   f"named YYYY-MM-DD (optionally followed by -, _, . or T and more, e.g. 2026-02-03-2) so that "
                   f"name order is drop order: rename the folder; nothing was stored"]
    assert sha256(place.warehouse) == before
    # renamed, it loads, and the dated drops after it still do
    (place.landing / "latest").rename(place.landing / "2026-01-20")
    assert ccm(place) == 0
    assert place.query("select count(*) from raw.activities where _drop = '2026-01-20'") == [(1,)]


@pytest.mark.parametrize("name", ["2026-02-30", "20260120", "2026-01-20 copy", "Feb-03"])
def test_drop_names_that_are_no_date_are_refused(loaded, tmp_path, capsys, name):
    place = copy_place(loaded, tmp_path / "case")
    activities_csv(GOOD)((place.landing / name).mkdir() or place.landing / name)
    before = sha256(place.warehouse)
    assert ccm(place) == 2
    assert "does not start with a date" in capsys.readouterr().err
    assert sha256(place.warehouse) == before


def test_a_symlinked_drop_is_never_followed(loaded, tmp_path, capsys):
    place = copy_place(loaded, tmp_path / "case")
    elsewhere = tmp_path / "elsewhere" / DROP
    activities_csv(GOOD)(elsewhere.mkdir(parents=True) or elsewhere)
    (place.landing / DROP).symlink_to(elsewhere, target_is_directory=True)
    before = sha256(place.warehouse)
    assert ccm(place) == 2
    assert capsys.readouterr().err.strip() == (
        f"{place.landing / DROP}: is a symbolic link; drops are read from folders inside the landing itself, "
        f"links are never followed: move the drop into the landing")
    assert sha256(place.warehouse) == before


def test_an_upper_case_extension_is_loaded_never_ignored_and_a_rename_does_not_lose_it(loaded, tmp_path, capsys):
    place = copy_place(loaded, tmp_path / "case")
    drop = place.landing / DROP
    drop.mkdir()
    activities_csv(GOOD, name="activities.CSV")(drop)
    assert ccm(place) == 0
    assert place.query("select file_name from raw.loaded_files where drop_name = ?", [DROP]) == [("activities.CSV",)]
    # renamed the next night: the file is named as new in a loaded drop, not silently skipped
    (drop / "activities.CSV").rename(drop / "activities.csv")
    before = sha256(place.warehouse)
    capsys.readouterr()
    assert ccm(place, as_of="2026-02-11") == 2
    assert "activities.csv: added to drop 2026-01-20 after it was loaded" in capsys.readouterr().err
    assert sha256(place.warehouse) == before


def test_a_drop_sorting_before_a_loaded_one_is_refused(loaded, tmp_path, capsys):
    place = copy_place(loaded, tmp_path / "case")
    activities_csv(GOOD)((place.landing / "2026-01-02").mkdir() or place.landing / "2026-01-02")
    before = sha256(place.warehouse)
    assert ccm(place) == 2
    assert "drop sorts before 2026-01-13, which is already loaded" in capsys.readouterr().err
    assert sha256(place.warehouse) == before


def test_an_empty_drop_is_not_recorded_and_loads_once_its_files_arrive(loaded, tmp_path, capsys):
    place = copy_place(loaded, tmp_path / "case")
    (place.landing / DROP).mkdir()
    capsys.readouterr()
    assert ccm(place) == 0
    assert f"drops with no files yet (not recorded; loaded once files arrive): {DROP}" in capsys.readouterr().out
    assert place.query("select count(*) from raw.loaded_files where drop_name = ?", [DROP]) == [(0,)]
    activities_csv(GOOD)(place.landing / DROP)
    assert ccm(place, as_of="2026-02-11") == 0
    assert place.query("select count(*) from raw.activities where _drop = ?", [DROP]) == [(1,)]


def test_entries_beside_the_drops_are_named_and_left_alone(loaded, tmp_path, capsys):
    place = copy_place(loaded, tmp_path / "case")
    (place.landing / "README.txt").write_text("exports land here")
    (place.landing / ".incoming").mkdir()
    capsys.readouterr()
    assert ccm(place) == 0
    out = capsys.readouterr().out
    assert f"ignored: {place.landing / '.incoming'} (hidden: not a drop)" in out
    assert f"ignored: {place.landing / 'README.txt'} (a file beside the drop folders: not in a drop)" in out


def test_a_parse_error_never_echoes_the_row(loaded, tmp_path, capsys):
    """The issue's example: an unbalanced quote in a row holding a note and a name."""
    place = copy_place(loaded, tmp_path / "case")
    drop = place.landing / DROP
    drop.mkdir()
    row = dict(GOOD, note=f'"{NOTES[1]} for {PATIENTS[1]["first_name"]} {PATIENTS[1]["last_name"]}')
    activities_bytes((HEADER + "\n" + ",".join(row[c] for c in ACT) + "\n").encode())(drop)
    assert ccm(place) == 2
    out, err = capsys.readouterr()
    assert phi_found(out + err) == [] and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_a_quote_never_closed_behind_many_short_rows_is_still_found(loaded, tmp_path, capsys, monkeypatch):
    """The quote scan keeps QUOTE_SCAN_REJECTS rejects; past them it counts the quotes."""
    from transforms.ingest import readers

    monkeypatch.setattr(readers, "QUOTE_SCAN_REJECTS", 2)
    place = copy_place(loaded, tmp_path / "case")
    drop = place.landing / DROP
    drop.mkdir()
    short = GOOD_LINE.replace(",false,", ",")
    activities_bytes((f"{HEADER}\n{short}\n{short}\n{short}\n"
                      f"{GOOD_LINE.replace(',false,', ',false,' + chr(34))}\n").encode())(drop)
    before = sha256(place.warehouse)
    assert ccm(place) == 2
    assert "a quote is never closed (the file holds an odd number of quote characters)" in capsys.readouterr().err
    assert sha256(place.warehouse) == before
