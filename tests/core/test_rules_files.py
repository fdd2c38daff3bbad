"""The yearly rules files: shipped ones valid and matching the reference amounts; broken ones reported in full."""
from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from core_fixtures import Practice, settings_with
from transforms.paths import RULES_DIR
from transforms.core.rules import RulesError, load_rules_file, load_year

SHIPPED_YEARS = sorted(int(p.stem) for p in RULES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("year", SHIPPED_YEARS)
def test_every_shipped_rules_file_is_valid_and_names_its_sources(year):
    rules = load_rules_file(RULES_DIR / f"{year}.yaml")
    assert rules.year == year
    text = " ".join(rules.sources)
    assert "MLN909188" in text and "Physician Fee Schedule" in text


def test_2025_and_2026_are_shipped():
    assert {2025, 2026} <= set(SHIPPED_YEARS)


# shared/domain/ccm-rules.md, "Reference amounts"; None = not priced there
@pytest.mark.parametrize(
    "year, code, amount",
    [(2025, c, a) for c, a in [("99490", "60.49"), ("99439", "45.93"), ("99487", "131.65"), ("99489", "70.52"),
                               ("99491", "82.16"), ("99437", "57.58"), ("99424", "80.87"), ("99425", "58.87"),
                               ("99426", None), ("99427", "50.46")]]
    + [(2026, c, a) for c, a in [("99490", "66.13"), ("99439", "47.50"), ("99487", "144.29"), ("99489", "78.16"),
                                 ("99491", "86.00"), ("99437", "63.13"), ("99424", "87.51"), ("99425", "61.46"),
                                 ("99426", None), ("99427", None)]],
)
def test_fee_amounts_match_the_reference_table(year, code, amount):
    assert load_year(year).fees[code] == (Decimal(amount) if amount else None)


@pytest.mark.parametrize("year, factor", [(2025, "32.3465"), (2026, "33.4009")])
def test_conversion_factor(year, factor):
    assert load_year(year).conversion_factor == Decimal(factor)


@pytest.mark.parametrize("year", [2025, 2026])
@pytest.mark.parametrize(
    "code_set, pool, chronic, base, add_on",
    [
        ("ccm_standard", "total", (2, None), ("99490", 20), ("99439", 20, 2)),
        ("ccm_complex", "total", (2, None), ("99487", 60), ("99489", 30, 10)),
        ("ccm_practitioner", "practitioner", (2, None), ("99491", 30), ("99437", 30, 2)),
        ("pcm_practitioner", "practitioner", (1, 1), ("99424", 30), ("99425", 30, 2)),
        ("pcm_staff", "clinical_staff", (1, 1), ("99426", 30), ("99427", 30, 2)),
    ],
)
def test_code_set_ladders(year, code_set, pool, chronic, base, add_on):
    s = {s.name: s for s in load_year(year).code_sets}[code_set]
    assert (s.minutes_pool, (s.min_chronic_conditions, s.max_chronic_conditions), (s.base_code, s.base_minutes),
            (s.add_on_code, s.add_on_minutes, s.add_on_max_units)) == (pool, chronic, base, add_on)
    assert s.requires_complex_care_plan_in_month == (code_set == "ccm_complex")


@pytest.mark.parametrize("year", [2025, 2026])
def test_all_code_sets_are_mutually_exclusive(year):
    assert {s.exclusive_group for s in load_year(year).code_sets} == {1}


@pytest.mark.parametrize(
    "code, initiates",
    [("99202", True), ("99215", True), ("99211", False), ("99345", True), ("G0438", True), ("G0439", True),
     ("G0402", True), ("99496", True), ("99490", False)],
)
def test_initiating_visit_codes(code, initiates):
    assert (code in load_year(2026).initiating_visit_codes) is initiates


def test_code_ranges_expand_to_every_code():
    conflicting = load_year(2026).conflicting_service_codes
    assert conflicting == ("G0181", "G0182", *(str(c) for c in range(90951, 90971)))


@pytest.mark.parametrize(
    "code, category",
    [("E119", "diabetes"), ("E1165", "diabetes"), ("I10", "hypertension"), ("E785", "hyperlipidemia"),
     ("N183", "chronic_kidney_disease"), ("J449", "copd"), ("J4520", "asthma"), ("I5022", "heart_failure"),
     ("F329", "depression"), ("F331", "depression"), ("M170", "osteoarthritis"),
     ("G309", "alzheimers_related_dementia"), ("F039", "alzheimers_related_dementia"),
     ("I2510", "ischemic_heart_disease"), ("I4891", "atrial_fibrillation"), ("I739", "peripheral_vascular_disease"),
     ("K219", None), ("J069", None), ("I2109", None), ("I738", None)],
)
def test_chronic_icd10_list(code, category):
    prefixes = dict(load_year(2026).chronic_icd10)
    matches = [p for p in prefixes if code.startswith(p)]
    assert (prefixes[max(matches, key=len)] if matches else None) == category


BROKEN = """
year: 2024
sources: []
conversion_factor: abc
fees: {"99490": 60.491, "99439": null}
code_sets:
  ccm_standard:
    minutes_pool: staff_only
    chronic_conditions: {min: 2}
    base: {code: "99490", minutes: 0}
    add_on: {code: "99439", max_units: 2}
  orphan:
    minutes_pool: total
    chronic_conditions: {min: 2, max: 1}
    base: {code: "99999", minutes: 20}
mutually_exclusive:
  - [ccm_standard, nonexistent]
initiating_visit: {lookback_months: 12, codes: ["99215-99202"]}
chronic_conditions_file: missing.csv
"""


def test_a_broken_rules_file_reports_every_problem_with_file_and_field(tmp_path):
    path = tmp_path / "2025.yaml"
    path.write_text(BROKEN)
    with pytest.raises(RulesError) as caught:
        load_rules_file(path)
    message = str(caught.value)
    for field in ("year", "sources", "conversion_factor", "fees.99490", "code_sets.ccm_standard.minutes_pool",
                  "code_sets.ccm_standard.base.minutes", "code_sets.ccm_standard.add_on.each_further_minutes",
                  "code_sets.orphan.chronic_conditions", "mutually_exclusive[0]: 'nonexistent'",
                  "mutually_exclusive: code set orphan is in no group", "initiating_visit.codes",
                  "chronic_conditions_file"):
        assert field in message, field
    assert all(line.startswith(f"{path}: ") for line in message.splitlines())


def test_a_code_set_code_without_a_fee_entry_is_an_error(tmp_path):
    raw = yaml.safe_load((RULES_DIR / "2026.yaml").read_text())
    del raw["fees"]["99437"]
    path = tmp_path / "2026.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RulesError, match=r"code_sets.ccm_practitioner.add_on.code: 99437 has no entry in fees"):
        load_rules_file(path)


def test_a_year_without_a_file_has_no_rules():
    assert load_year(1999) is None


def test_the_practices_rules_folder_wins_and_a_new_year_needs_no_code(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    raw = yaml.safe_load((RULES_DIR / "2026.yaml").read_text())
    raw["year"] = 2027
    raw["fees"]["99490"] = 70.00
    (folder / "2027.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))  # the ICD-10 list comes from the shipped folder
    settings = settings_with(rules_dir=folder)
    assert load_year(2027, settings).fees["99490"] == Decimal("70.00")
    assert load_year(2026, settings).path == RULES_DIR / "2026.yaml"

    practice = Practice(tmp_path / "w.duckdb", settings=settings).team()
    practice.enrolled()
    practice.log("P1", "RN", "2027-02", 25)
    practice.run(as_of="2027-03-31")
    row = practice.month("P1", "2027-02")
    assert (row["rules_year"], row["billed_codes"], row["expected_payment"]) == (2027, "99490", Decimal("70.00"))


def test_a_copy_of_the_shipped_folder_works_as_a_practice_rules_dir(tmp_path):
    copy = Path(shutil.copytree(RULES_DIR, tmp_path / "copy"))
    for year in SHIPPED_YEARS:
        assert load_rules_file(copy / f"{year}.yaml").chronic_icd10 == load_year(year).chronic_icd10
