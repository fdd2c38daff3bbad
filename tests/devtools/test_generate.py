"""The synthetic landing generator: contract shape, determinism, planted defects."""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from transforms.devtools.generate import (
    COLUMNS, DEFECT_RATES, MBI_REGEX, TABLES, UNKNOWN_PATIENT_ID, VAGUE_NOTES,
    generate, main, npi_with_check_digit, valid_npi,
)

NEW_YORK = ZoneInfo("America/New_York")


def _read(path: Path) -> pl.DataFrame:
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)  # everything as text, as the contract has it
    return pl.read_parquet(path)


def _activities(result) -> pl.DataFrame:
    """All activity rows of all drops, with the drop they came from."""
    return pl.concat([
        _read(result.out / drop / f"activities.{result.fmt}")
        .with_columns(pl.col(pl.Int64, pl.Boolean).cast(pl.String), drop=pl.lit(drop))
        for drop in result.drops
    ])


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("small"), patients=60, months=2, seed=11)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("medium"), patients=400, months=3, seed=5,
                    start="2026-01")  # spans the March DST change


@pytest.fixture(scope="module")
def medium_activities(medium):
    return _activities(medium)


# --- determinism ---------------------------------------------------------------

def test_same_seed_writes_byte_identical_files(tmp_path, small):
    again = generate(tmp_path / "again", patients=60, months=2, seed=11)
    assert _digest(again.out) == _digest(small.out)


def test_different_seed_writes_different_activities(tmp_path, small):
    other = generate(tmp_path / "other", patients=60, months=2, seed=12)
    last = small.drops[-1]
    assert other.drops == small.drops
    assert (other.out / last / "activities.csv").read_bytes() != (small.out / last / "activities.csv").read_bytes()


def test_parquet_is_deterministic_and_matches_csv_columns(tmp_path, small):
    first = generate(tmp_path / "p1", patients=60, months=2, seed=11, fmt="parquet")
    second = generate(tmp_path / "p2", patients=60, months=2, seed=11, fmt="parquet")
    assert _digest(first.out) == _digest(second.out)
    for table in TABLES:
        frame = pl.read_parquet(first.out / first.drops[-1] / f"{table}.parquet")
        assert frame.columns == COLUMNS[table]
        assert frame.columns == _read(small.out / small.drops[-1] / f"{table}.csv").columns
    # same data apart from the CSV-only malformed rows
    assert first.unique_activities == small.unique_activities
    assert not any(first.planted[k] for k in ("malformed_started_at", "negative_duration", "unknown_patient"))


# --- the contract's shape -------------------------------------------------------

def test_every_drop_holds_the_seven_files_with_exactly_the_contract_columns(small):
    for drop in small.drops:
        files = sorted(p.name for p in (small.out / drop).iterdir())
        assert files == sorted(f"{t}.csv" for t in TABLES)
        for table in TABLES:
            assert _read(small.out / drop / f"{table}.csv").columns == COLUMNS[table], (drop, table)


def test_drop_names_sort_in_date_order_and_the_last_closes_every_month(small, medium):
    for result in (small, medium):
        dates = [date.fromisoformat(d) for d in result.drops]
        assert result.drops == sorted(result.drops)
        assert all(b - a <= timedelta(days=7) for a, b in zip(dates, dates[1:]))
        first = date.fromisoformat(result.start_month + "-01")
        y, m = divmod(first.year * 12 + first.month - 1 + result.months, 12)
        assert dates[-1] >= date(y, m + 1, 1) + timedelta(days=7)
        assert result.last_drop_date == dates[-1]
    assert small.start_month == "2026-09"  # default: the closed months before 2026-11


def test_vocabularies_follow_the_contract(medium, medium_activities):
    last = medium.out / medium.drops[-1]
    patients = _read(last / "patients.csv")
    assert set(patients["sex"]) <= {"M", "F", "U"}
    assert set(patients["primary_payer"]) <= {"medicare_part_b", "medicare_advantage", "medicaid",
                                              "commercial", "self_pay"}
    assert 0.78 < (patients["primary_payer"] == "medicare_part_b").mean() < 0.92
    assert patients["zip"].str.contains(r"^\d{5}(-\d{4})?$").all()
    consents = _read(last / "consents.csv")
    assert set(consents["method"]) == {"verbal", "written"}
    plans = _read(last / "care_plans.csv")
    assert set(plans["revision"]) <= {"none", "minor", "substantial"}
    assert set(plans["complexity"]) == {"standard", "complex"}
    assert set(_read(last / "encounters.csv")["cpt_code"]) <= {"99213", "99214", "G0438", "G0439"}
    assert set(_read(last / "conditions.csv")["chronic"].drop_nulls()) == {"true", "false"}
    assert set(medium_activities["face_to_face"]) == {"true", "false"}
    assert set(medium_activities["status"].drop_nulls()) == {"active", "voided"}


def test_staff_has_practitioners_clinical_and_non_clinical_roles(small):
    staff = _read(small.out / small.drops[-1] / "staff.csv")
    roles = set(staff["role"])
    assert {"physician", "np", "rn", "ma", "lpn", "pharmacist", "care_coordinator",
            "front_desk", "billing"} <= roles
    practitioners = staff.filter(pl.col("role").is_in(["physician", "np"]))
    assert 2 <= practitioners.height <= 3
    assert staff.filter(~pl.col("role").is_in(["physician", "np"]))["npi"].is_null().all()


def test_practitioner_npis_pass_the_luhn_check(small):
    assert npi_with_check_digit("123456789") == "1234567893"  # CMS's published example
    assert valid_npi("1234567893") and not valid_npi("1234567890")
    npis = _read(small.out / small.drops[-1] / "staff.csv")["npi"].drop_nulls()
    assert len(npis) >= 2 and all(valid_npi(n) for n in npis)
    consent_npis = set(_read(small.out / small.drops[-1] / "consents.csv")["billing_npi"])
    assert consent_npis <= set(npis)


def test_mbis_match_the_cms_format_and_are_unique(medium):
    mbis = _read(medium.out / medium.drops[-1] / "patients.csv")["mbi"]
    assert all(MBI_REGEX.fullmatch(m) for m in mbis)
    assert mbis.n_unique() == len(mbis)


# --- drops overlap, repeat, amend and void -------------------------------------

def test_consecutive_drops_overlap(small):
    acts = _activities(small)
    for a, b in zip(small.drops, small.drops[1:-1]):
        ids_a = set(acts.filter(pl.col("drop") == a)["activity_id"])
        ids_b = set(acts.filter(pl.col("drop") == b)["activity_id"])
        assert ids_a & ids_b, (a, b)


def test_some_rows_are_written_twice_within_one_drop(medium, medium_activities):
    dupes = medium_activities.filter(pl.struct(pl.all()).is_duplicated())
    assert dupes.height // 2 == medium.planted["duplicate_in_drop"] > 0


def test_voids_arrive_in_a_later_drop_than_the_original(medium, medium_activities):
    voided = medium_activities.filter(pl.col("status") == "voided")
    assert voided["activity_id"].n_unique() == medium.planted["voided"] > 0
    first_seen = medium_activities.group_by("activity_id").agg(pl.col("drop").min().alias("first"))
    first_void = voided.group_by("activity_id").agg(pl.col("drop").min().alias("void"))
    joined = first_void.join(first_seen, on="activity_id")
    assert (joined["void"] > joined["first"]).all()


def test_amended_notes_differ_arrive_later_and_are_documented_later(medium, medium_activities):
    versions = medium_activities.unique(["activity_id", "note", "documented_at"])
    amended_ids = versions.filter(pl.col("activity_id").is_duplicated() & (pl.col("status").fill_null("") != "voided"))
    amended_ids = set(amended_ids["activity_id"]) - set(
        medium_activities.filter(pl.col("status") == "voided")["activity_id"])
    assert len(amended_ids) == medium.planted["amended_note"] > 0
    for aid in list(amended_ids)[:20]:
        rows = medium_activities.filter(pl.col("activity_id") == aid).sort("drop")
        original, amended = rows.row(0, named=True), rows.row(-1, named=True)
        assert amended["note"] != original["note"]
        assert amended["drop"] > original["drop"]
        assert _instant(amended["documented_at"]) > _instant(original["documented_at"])


# --- planted defect rates ---------------------------------------------------------

def test_vague_note_share_is_between_2_and_7_percent(medium, medium_activities):
    firsts = medium_activities.unique("activity_id", keep="first", maintain_order=True)
    share = firsts["note"].is_in(VAGUE_NOTES).mean()
    assert 0.02 <= share <= 0.07


@pytest.mark.parametrize("kind", [k for k in DEFECT_RATES if k not in ("malformed", "duplicate_in_drop")])
def test_planted_counts_are_within_four_sigma_of_their_rate(medium, kind):
    expected = DEFECT_RATES[kind] * medium.unique_activities
    assert expected >= 5  # the run is big enough to say anything
    assert abs(medium.planted[kind] - expected) <= 4 * expected ** 0.5 + 2, (kind, medium.planted[kind], expected)


def test_within_drop_duplicates_are_about_half_a_percent_of_rows(medium):
    expected = DEFECT_RATES["duplicate_in_drop"] * (medium.activities_total - medium.planted["duplicate_in_drop"])
    assert abs(medium.planted["duplicate_in_drop"] - expected) <= 4 * expected ** 0.5 + 2


def test_activity_files_show_the_planted_defects(medium, medium_activities):
    firsts = medium_activities.unique("activity_id", keep="first", maintain_order=True)
    staff = _read(medium.out / medium.drops[-1] / "staff.csv")
    by_non_clinical = firsts.join(staff, on="staff_id").filter(pl.col("role").is_in(["front_desk", "billing"]))
    assert by_non_clinical.height == medium.planted["non_clinical_staff"]
    assert (firsts["face_to_face"] == "true").sum() == medium.planted["face_to_face"]
    minutes = firsts["duration_minutes"].cast(pl.Int64, strict=False)
    assert minutes.is_in([0, 300]).sum() == medium.planted["implausible_duration"]
    assert (minutes < 0).sum() == medium.planted["negative_duration"]
    assert (firsts["patient_id"] == UNKNOWN_PATIENT_ID).sum() == medium.planted["unknown_patient"]


def test_documentation_lag_matches_the_planted_counts(medium, medium_activities):
    firsts = medium_activities.unique("activity_id", keep="first", maintain_order=True)
    lags = []
    for started, minutes, documented in firsts.select("started_at", "duration_minutes", "documented_at").iter_rows():
        try:
            start = _instant(started)
        except ValueError:
            continue  # a planted malformed started_at
        end = start + timedelta(minutes=abs(int(minutes)))
        lags.append((_instant(documented) - start, _instant(documented) - end))
    before = sum(from_start < timedelta(0) for from_start, _ in lags)
    late = sum(timedelta(days=2) <= after < timedelta(days=7) for _, after in lags)
    very_late = sum(after > timedelta(days=7) for _, after in lags)
    assert before == medium.planted["documented_before_activity"]
    assert late == medium.planted["late_documentation"]
    assert very_late == medium.planted["very_late_documentation"]


def test_patient_months_cluster_around_the_20_minute_threshold(medium_activities):
    current = medium_activities.unique("activity_id", keep="last", maintain_order=True)
    month = pl.col("started_at").str.slice(0, 7)
    totals = (current.filter(pl.col("started_at").str.contains(r"^\d{4}-\d{2}-\d{2}T"))
              .group_by("patient_id", month).agg(pl.col("duration_minutes").cast(pl.Int64).sum().alias("m"))["m"])
    assert (totals.is_between(15, 19)).mean() > 0.12       # just short of 99490
    assert (totals.is_between(20, 39)).mean() > 0.25
    assert (totals >= 60).mean() > 0.08                     # complex / 99439 territory


# --- timestamps -------------------------------------------------------------------

def _instant(text: str) -> datetime:
    """Naive = practice-local (the contract); offsets and Z are instants."""
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=NEW_YORK)


def test_timestamps_mix_naive_offset_and_utc_with_dst_correct_offsets(medium_activities):
    started = medium_activities.filter(pl.col("started_at").str.contains(r"^\d{4}-\d{2}-\d{2}T"))["started_at"]
    with_offset = started.filter(started.str.contains(r"[+-]\d{2}:\d{2}$"))
    utc = started.filter(started.str.ends_with("Z"))
    assert 0.10 < len(with_offset) / len(started) < 0.20
    assert 0.10 < len(utc) / len(started) < 0.20
    assert {"-05:00", "-04:00"} <= set(with_offset.str.slice(-6))  # January .. March crosses DST
    for text in with_offset.head(300):
        parsed = datetime.fromisoformat(text)
        assert parsed.astimezone(NEW_YORK).utcoffset() == parsed.utcoffset(), text


def _parses(text: str) -> bool:
    try:
        _instant(text)
        return True
    except ValueError:
        return False


def test_malformed_rows_are_planted_in_csv_only(tmp_path, medium, medium_activities):
    unparseable = medium_activities.filter(~pl.col("started_at").map_elements(_parses, return_dtype=pl.Boolean))
    assert unparseable["activity_id"].n_unique() == medium.planted["malformed_started_at"]
    assert sum(medium.planted[k] for k in ("malformed_started_at", "negative_duration", "unknown_patient")) > 0
    parquet = generate(tmp_path / "pq", patients=400, months=3, seed=5, start="2026-01", fmt="parquet")
    rows = _activities(parquet)
    assert rows["started_at"].map_elements(_parses, return_dtype=pl.Boolean).all()
    assert (rows["duration_minutes"].cast(pl.Int64) >= 0).all()
    assert UNKNOWN_PATIENT_ID not in set(rows["patient_id"])


# --- command line -----------------------------------------------------------------

def test_suggest_as_of_prints_the_last_drop_name(small, capsys):
    assert main(["--suggest-as-of", str(small.out)]) == 0
    assert capsys.readouterr().out.strip() == small.drops[-1]


def test_cli_generates_and_refuses_to_mix_with_other_runs(tmp_path, capsys):
    out = tmp_path / "landing"
    assert main(["--out", str(out), "--patients", "20", "--months", "1", "--start", "2026-03"]) == 0
    assert sorted(p.name for p in out.iterdir())[0] == "2026-03-03"
    assert main(["--out", str(out), "--patients", "20", "--months", "1", "--start", "2026-05"]) == 2
    assert "remove them" in capsys.readouterr().err
