"""The yearly rules files: shipped ones valid and matching the reference amounts; broken ones reported in full."""
from __future__ import annotations

import re
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from core_fixtures import Practice, settings_with
from transforms.paths import RULES_DIR
from transforms.core.rules import RulesError, load_gpci, load_rules_file, load_year

SHIPPED_YEARS = sorted(int(p.stem) for p in RULES_DIR.glob("*.yaml"))
# The rules digest the amounts must agree with, in the team repository beside this one.
DIGEST = Path(__file__).resolve().parents[3] / "shared" / "domain" / "ccm-rules.md"


def digest_amounts() -> dict[tuple[int, str], Decimal]:
    """The digest's "Reference amounts" table: {(year, code): amount}, read from the markdown."""
    text = DIGEST.read_text(encoding="utf-8").split("## Reference amounts", 1)[1]
    lines = [ln for ln in text.splitlines() if ln.startswith("|")]
    years = [int(y) for y in re.findall(r"\d{4}", lines[0])]
    amounts = {}
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        for year, cell in zip(years, cells[1:]):
            amounts[(year, cells[0])] = Decimal(cell)
    return amounts


@pytest.mark.parametrize("year", SHIPPED_YEARS)
def test_every_shipped_rules_file_is_valid_and_names_its_sources(year):
    rules = load_rules_file(RULES_DIR / f"{year}.yaml")
    assert rules.year == year
    text = " ".join(rules.sources)
    assert "MLN909188" in text and "Physician Fee Schedule" in text


def test_2025_and_2026_are_shipped():
    assert {2025, 2026} <= set(SHIPPED_YEARS)


@pytest.mark.skipif(not DIGEST.is_file(), reason="the team's rules digest is not beside this checkout")
def test_the_digests_amount_table_and_the_shipped_files_agree_to_the_cent():
    amounts = digest_amounts()
    assert len(amounts) == 20  # ten codes, 2025 and 2026: every code priced in both years
    for (year, code), amount in amounts.items():
        assert load_year(year).fees[code] == amount, (year, code)


# round(non-facility total RVU x CF, 2), by hand: 2025 CF 32.3465; 2026 33.4009 (non-QP) / 33.5675 (QP)
@pytest.mark.parametrize(
    "year, code, total_rvu, qp, amount",
    [
        (2025, "99490", "1.87", False, "60.49"),   # 1.87 x 32.3465 = 60.488 -> 60.49
        (2025, "99426", "1.91", False, "61.78"),   # 1.91 x 32.3465 = 61.782 -> 61.78 (was unpriced)
        (2025, "99490", "1.87", True, "60.49"),    # one conversion factor in 2025: QP changes nothing
        (2026, "99490", "1.98", False, "66.13"),   # 1.98 x 33.4009 = 66.134 -> 66.13
        (2026, "99490", "1.98", True, "66.46"),    # 1.98 x 33.5675 = 66.464 -> 66.46
        (2026, "99439", "1.51", False, "50.44"),   # 1.51 x 33.4009 = 50.435 -> 50.44
        (2026, "99427", "1.62", True, "54.38"),    # 1.62 x 33.5675 = 54.379 -> 54.38
    ],
)
def test_a_fee_is_the_total_rvu_times_the_conversion_factor(year, code, total_rvu, qp, amount):
    rules = load_year(year)
    assert rules.rvus[code].total == Decimal(total_rvu)
    assert rules.fee(code, qp=qp) == Decimal(amount)


@pytest.mark.parametrize("year, factor, factor_qp", [(2025, "32.3465", None), (2026, "33.4009", "33.5675")])
def test_conversion_factors(year, factor, factor_qp):
    rules = load_year(year)
    assert rules.conversion_factor == Decimal(factor)
    assert rules.conversion_factor_qp == (Decimal(factor_qp) if factor_qp else None)


@pytest.mark.parametrize("year", SHIPPED_YEARS)
def test_the_fee_schedule_names_its_cms_file_and_payment_rates(year):
    rules = load_year(year)
    assert f"PPRRVU{year}" in rules.fee_source
    assert (rules.coinsurance_rate, rules.sequestration_rate, rules.timely_filing_months) == (
        Decimal("0.20"), Decimal("0.02"), 12)


GPCI_FILE = """ADDENDUM E. FINAL CY 2026 GEOGRAPHIC PRACTICE COST INDICES (GPCIs) BY STATE AND MEDICARE LOCALITY,,,,,,
,,,,,,
Medicare Administrative Contractor (MAC),State,Locality Number,Locality Name,2026 PW GPCI (with 1.0 Floor),2026 PE GPCI,2026 MP GPCI
12502,PA,01,METROPOLITAN PHILADELPHIA,1.02,1.1,1.3
12502,PA,99,REST OF PENNSYLVANIA,1,0.9,0.8
"""


def test_a_locality_prices_each_rvu_component_with_its_gpci(tmp_path):
    (tmp_path / "GPCI2025.csv").write_text(GPCI_FILE)
    gpci = load_gpci(tmp_path / "GPCI2025.csv", "12502", "1")
    assert (gpci.work, gpci.pe, gpci.mp, gpci.name) == (Decimal("1.02"), Decimal("1.1"), Decimal("1.3"),
                                                         "METROPOLITAN PHILADELPHIA")
    # 99490 2025: (1.00 x 1.02 + 0.81 x 1.1 + 0.06 x 1.3) x 32.3465 = (1.02 + 0.891 + 0.078) x 32.3465
    #           = 1.989 x 32.3465 = 64.337 -> 64.34
    assert load_year(2025).fee("99490", gpci=gpci) == Decimal("64.34")


def test_a_locality_needs_the_component_rvus(tmp_path):
    (tmp_path / "GPCI2026.csv").write_text(GPCI_FILE)
    gpci = load_gpci(tmp_path / "GPCI2026.csv", "12502", "01")
    # 99439's 2026 components are not in the shipped file: a locality cannot be priced, and says why
    with pytest.raises(RulesError, match=r"fee_schedule.rvus.99439: pricing locality 12502-01 needs the work, pe"):
        load_year(2026).fee("99439", gpci=gpci)
    # 99490's are: (1.00 x 1.02 + 0.91 x 1.1 + 0.07 x 1.3) x 33.4009 = 2.112 x 33.4009 = 70.543 -> 70.54
    assert load_year(2026).fee("99490", gpci=gpci) == Decimal("70.54")


def test_an_unknown_locality_names_the_file_and_the_setting(tmp_path):
    (tmp_path / "GPCI2026.csv").write_text(GPCI_FILE)
    with pytest.raises(RulesError, match=r"GPCI2026.csv: no row for MAC 12502 locality 07 \(billing.locality"):
        load_gpci(tmp_path / "GPCI2026.csv", "12502", "07")


@pytest.mark.parametrize("year", [2025, 2026])
@pytest.mark.parametrize(
    "code_set, pool, chronic, base, add_on",
    [
        ("ccm_standard", "total", (2, None), ("99490", 20), ("99439", 20, 2)),
        ("ccm_complex", "total", (2, None), ("99487", 60), ("99489", 30, 10)),
        ("ccm_practitioner", "practitioner", (2, None), ("99491", 30), ("99437", 30, 2)),
        # PCM: CPT sets no cap on 99425/99427 (was 2); the practitioner's own minutes count toward
        # 99426/99427 when 99424 is not reported, so staff PCM's pool is the total (was clinical_staff)
        ("pcm_practitioner", "practitioner", (1, 1), ("99424", 30), ("99425", 30, None)),
        ("pcm_staff", "total", (1, 1), ("99426", 30), ("99427", 30, None)),
    ],
)
def test_code_set_ladders(year, code_set, pool, chronic, base, add_on):
    s = {s.name: s for s in load_year(year).code_sets}[code_set]
    assert (s.minutes_pool, (s.min_chronic_conditions, s.max_chronic_conditions), (s.base_code, s.base_minutes),
            (s.add_on_code, s.add_on_minutes, s.add_on_unit_cap)) == (pool, chronic, base, add_on)
    assert s.requires_complex_care_plan_in_month == (code_set == "ccm_complex")
    assert s.care_plan_focus_qualifies == code_set.startswith("pcm")


@pytest.mark.parametrize("year", [2025, 2026])
def test_99489_has_no_cpt_cap_and_its_mue_is_cited(year):
    s = {s.name: s for s in load_year(year).code_sets}["ccm_complex"]
    assert (s.add_on_max_units, s.add_on_mue_units) == (None, 10)
    assert "MUE" in s.add_on_mue_source


@pytest.mark.parametrize("year", [2025, 2026])
def test_all_code_sets_are_mutually_exclusive(year):
    assert {s.exclusive_group for s in load_year(year).code_sets} == {1}


@pytest.mark.parametrize(
    "code, initiates",
    [("99202", True), ("99215", True), ("99211", False), ("99345", True), ("G0438", True), ("G0439", True),
     ("G0402", True), ("99496", True), ("99490", False), ("99304", True), ("99310", True), ("99303", False)],
)
def test_initiating_visit_codes(code, initiates):
    assert (code in load_year(2026).initiating_visit_codes) is initiates


def test_code_ranges_expand_to_every_code():
    conflicting = dict(load_year(2026).conflicting_services)
    assert conflicting["conflicting_service"] == ("G0181", "G0182", *(str(c) for c in range(90951, 90971)))
    # a range with a letter: G0568-G0570
    assert conflicting["apcm_in_month"] == ("G0556", "G0557", "G0558", "G0568", "G0569", "G0570")
    assert dict(load_year(2025).conflicting_services)["apcm_in_month"] == ("G0556", "G0557", "G0558")


@pytest.mark.parametrize(
    "code, category",
    [("E119", "diabetes"), ("E1165", "diabetes"), ("I10", "hypertension"), ("E785", "hyperlipidemia"),
     ("N183", "chronic_kidney_disease"), ("J449", "copd"), ("J4520", "asthma"), ("I5022", "heart_failure"),
     ("F329", "depression"), ("F331", "depression"), ("M170", "osteoarthritis"),
     ("G309", "alzheimers_related_dementia"), ("F039", "alzheimers_related_dementia"),
     ("I2510", "ischemic_heart_disease"), ("I4891", "atrial_fibrillation"), ("I739", "peripheral_vascular_disease"),
     ("K219", None), ("J069", None), ("I2109", None), ("I738", None),
     # every malignant neoplasm (MLN909188), myeloma, lymphomas and leukaemias included
     ("C3490", "lung_cancer"), ("C000", "cancer_lip_oral_pharynx"), ("C250", "cancer_digestive"),
     ("C4311", "cancer_skin"), ("C7A010", "cancer_endocrine_neuroendocrine"), ("C799", "cancer_secondary_or_unspecified"),
     ("C9000", "multiple_myeloma"), ("C8330", "lymphoma"), ("C8190", "lymphoma"), ("C9110", "leukemia"),
     ("C9200", "leukemia"), ("D0510", None),
     # autism spectrum disorders and the CCW "other chronic or potentially disabling conditions"
     ("F840", "autism_spectrum_disorder"), ("F845", "autism_spectrum_disorder"), ("G809", "cerebral_palsy"),
     ("D5700", "sickle_cell_disease"), ("F17210", "tobacco_use_disorder"), ("G43909", "migraine_chronic_headache"),
     ("F411", "anxiety_disorder"), ("F4310", "ptsd"), ("F432", None), ("Q059", "spina_bifida_nervous_system_anomaly"),
     ("L89154", "pressure_chronic_ulcer"), ("B182", "viral_hepatitis"), ("B171", None), ("S060X0A", None)],
)
def test_chronic_icd10_list(code, category):
    prefixes = dict(load_year(2026).chronic_icd10)
    matches = [p for p in prefixes if code.startswith(p)]
    assert (prefixes[max(matches, key=len)] if matches else None) == category


BROKEN = """
year: 2024
sources: []
conversion_factor: abc
fees: {"99490": 60.491}
fee_schedule:
  rvus: {"99490": {work: 1.00, pe: 0.81, total: 1.87}, "99439": null, "99426": {total: 1.9}}
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
    for field in ("year", "sources", "conversion_factor", "fees: amounts are computed", "fee_schedule.source",
                  "fee_schedule.rvus.99490: give all of work, pe and mp", "payment.coinsurance_rate",
                  "timely_filing_months", "inpatient_places_of_service", "code_sets.ccm_standard.minutes_pool",
                  "code_sets.ccm_standard.base.minutes", "code_sets.ccm_standard.add_on.each_further_minutes",
                  "code_sets.orphan.chronic_conditions", "mutually_exclusive[0]: 'nonexistent'",
                  "mutually_exclusive: code set orphan is in no group", "initiating_visit.codes",
                  "chronic_conditions_file"):
        assert field in message, field
    assert all(line.startswith(f"{path}: ") for line in message.splitlines())


def test_a_code_set_code_without_a_fee_entry_is_an_error(tmp_path):
    raw = yaml.safe_load((RULES_DIR / "2026.yaml").read_text())
    del raw["fee_schedule"]["rvus"]["99437"]
    path = tmp_path / "2026.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RulesError,
                       match=r"code_sets.ccm_practitioner.add_on.code: 99437 has no entry in fee_schedule.rvus"):
        load_rules_file(path)


def test_components_that_do_not_add_up_to_the_total_are_an_error(tmp_path):
    raw = yaml.safe_load((RULES_DIR / "2025.yaml").read_text())
    raw["fee_schedule"]["rvus"]["99490"] = {"work": 1.00, "pe": 0.81, "mp": 0.06, "total": 1.88}
    path = tmp_path / "2025.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RulesError, match=r"fee_schedule.rvus.99490: work \+ pe \+ mp = 1.87 but total is 1.88"):
        load_rules_file(path)


def test_a_year_without_a_file_has_no_rules():
    assert load_year(1999) is None


def test_the_practices_rules_folder_wins_and_a_new_year_needs_no_code(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    raw = yaml.safe_load((RULES_DIR / "2026.yaml").read_text())
    raw["year"] = 2027
    raw["fee_schedule"]["rvus"]["99490"] = {"total": 2.10}   # 2.10 x 33.4009 = 70.14
    (folder / "2027.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))  # the ICD-10 list comes from the shipped folder
    settings = settings_with(rules_dir=folder)
    assert load_year(2027, settings).fees["99490"] == Decimal("70.14")
    assert load_year(2026, settings).path == RULES_DIR / "2026.yaml"

    practice = Practice(tmp_path / "w.duckdb", settings=settings).team()
    practice.enrolled()
    practice.log("P1", "RN", "2027-02", 25)
    practice.run(as_of="2027-03-31")
    row = practice.month("P1", "2027-02")
    assert (row["rules_year"], row["billed_codes"], row["fee_schedule_amount"]) == (2027, "99490", Decimal("70.14"))


def test_a_copy_of_the_shipped_folder_works_as_a_practice_rules_dir(tmp_path):
    copy = Path(shutil.copytree(RULES_DIR, tmp_path / "copy"))
    for year in SHIPPED_YEARS:
        assert load_rules_file(copy / f"{year}.yaml").chronic_icd10 == load_year(year).chronic_icd10
