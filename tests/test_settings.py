"""Practice configuration: the sample runs as shipped; mistakes are named."""
import pytest
import yaml

from transforms.contract import npi_is_valid
from transforms.paths import SAMPLE_CONFIG
from transforms.settings import ConfigError, load_settings


def write_config(tmp_path, mutate):
    config = yaml.safe_load(SAMPLE_CONFIG.read_text())
    mutate(config)
    path = tmp_path / "practice.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_sample_configuration_loads_with_no_edits():
    settings = load_settings(None)
    assert settings.time_zone == "America/New_York"
    assert settings.billing_providers[0].npi == "1234567893"
    assert settings.claim_grace_days <= 7


@pytest.mark.parametrize("npi, valid", [("1234567893", True), ("1345678902", True), ("1234567890", False),
                                        ("123456789", False), ("12345678AB", False)])
def test_npi_check_digit(npi, valid):
    assert npi_is_valid(npi) is valid


def test_npi_failing_its_check_digit_is_named(tmp_path):
    path = write_config(tmp_path, lambda c: c["billing_providers"][0].update(npi="1234567890"))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value) == f"{path}: billing_providers[0].npi: '1234567890' fails the NPI check digit"


def test_unknown_time_zone_is_named(tmp_path):
    path = write_config(tmp_path, lambda c: c["practice"].update(time_zone="America/Gotham"))
    with pytest.raises(ConfigError, match="practice.time_zone: unknown time zone 'America/Gotham'"):
        load_settings(path)


def test_missing_field_is_named(tmp_path):
    path = write_config(tmp_path, lambda c: c["payer"].pop("id"))
    with pytest.raises(ConfigError, match=r"missing field payer\.id"):
        load_settings(path)


def test_every_problem_is_reported_at_once(tmp_path):
    def mutate(c):
        c["practice"]["time_zone"] = "Mars/Base"
        c["billing_providers"][0]["address"]["zip"] = "19064"
        c["billing"]["claim_grace_days"] = 10
    path = write_config(tmp_path, mutate)
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert len(err.value.problems) == 3
    assert any("ZIP+4" in p for p in err.value.problems)
    assert any("claim_grace_days" in p for p in err.value.problems)


def test_toml_configuration_is_accepted(tmp_path):
    path = tmp_path / "practice.toml"
    path.write_text(
        '[practice]\nname = "Toml Clinic"\ntime_zone = "America/Chicago"\n'
        '[[billing_providers]]\nnpi = "1234567893"\nname = "Toml Clinic"\ntin = "123456789"\ntaxonomy = "207Q00000X"\n'
        '[billing_providers.address]\nline1 = "1 Main"\ncity = "Austin"\nstate = "TX"\nzip = "787011234"\n'
        '[payer]\nname = "MEDICARE"\nid = "04412"\n'
        '[x12]\nsubmitter_id = "S"\nsubmitter_name = "S"\nreceiver_id = "R"\nreceiver_name = "R"\n'
    )
    settings = load_settings(path)
    assert settings.time_zone == "America/Chicago" and settings.practice_name == "Toml Clinic"


def test_config_error_via_cli_exits_nonzero_with_one_line(tmp_path, capsys):
    from transforms.cli import main
    path = write_config(tmp_path, lambda c: c["practice"].update(time_zone="Nowhere/Land"))
    rc = main(["run", "--landing", str(tmp_path), "--warehouse", str(tmp_path / "w.duckdb"),
               "--claims-dir", str(tmp_path / "c"), "--as-of", "2026-02-01", "--config", str(path)])
    assert rc == 2
    assert capsys.readouterr().err.strip() == f"{path}: practice.time_zone: unknown time zone 'Nowhere/Land' (use an IANA name such as America/New_York)"
    assert not (tmp_path / "w.duckdb").exists()


def test_the_sample_ships_a_charge_master_and_second_pass_defaults():
    settings = load_settings(None)
    assert settings.charge_master.name == "charge_master.sample.csv"
    assert settings.charges["99490"] == 95.0 and len(settings.charges) == 10
    assert settings.evidence == {"care_plan_shared": "hold", "consent_elements": "hold", "consent_obtained_by": "hold",
                                 "staff_credential": "hold", "staff_supervising_npi": "warn",
                                 "care_plan_goals": "warn"}
    assert (settings.locality, settings.timely_filing_warn_months, settings.revocation_effective) == (
        None, 11, "revocation_date")
    assert settings.qualifying_apm_participants_in(2026) == frozenset()


def test_qualifying_apm_participants_by_year_or_for_every_year(tmp_path):
    by_year = load_settings(write_config(tmp_path, lambda c: c["billing"].update(
        qualifying_apm_participants={2026: ["1345678902"]})))
    assert by_year.qualifying_apm_participants_in(2026) == {"1345678902"}
    assert by_year.qualifying_apm_participants_in(2027) == frozenset()
    every = load_settings(write_config(tmp_path, lambda c: c["billing"].update(
        qualifying_apm_participants=["1345678902"])))
    assert every.qualifying_apm_participants_in(2031) == {"1345678902"}


def test_a_charge_master_beside_the_configuration(tmp_path):
    (tmp_path / "charges.csv").write_text("cpt_code,charge_amount\n99490,120.00\n99439,85\n")
    settings = load_settings(write_config(tmp_path, lambda c: c["billing"].update(charge_master="charges.csv")))
    assert settings.charges == {"99490": 120.0, "99439": 85.0}


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(locality={"mac": "125", "locality": "01"}), "billing.locality: {mac: <5-digit MAC number>"),
        (dict(qualifying_apm_participants={2026: ["1234567890"]}),
         "billing.qualifying_apm_participants: '1234567890' fails the NPI check digit"),
        (dict(timely_filing_warn_after_months=12), "billing.timely_filing_warn_after_months: a whole number of "
                                                   "months from 1 to 11"),
        (dict(evidence={"care_plan_shared": "ignore"}), "billing.evidence.care_plan_shared: must be hold or warn"),
        (dict(evidence={"care_plan_colour": "hold"}), "billing.evidence.care_plan_colour: unknown rule"),
        (dict(revocation_effective="next_year"), "billing.revocation_effective: revocation_date"),
        (dict(charges={"99490": 95.0}), "billing.charges and billing.charge_master: give one of them, not both"),
        (dict(charge_master="missing.csv"), "billing.charge_master: "),
    ],
)
def test_second_pass_settings_are_validated_one_line_each(tmp_path, change, message):
    path = write_config(tmp_path, lambda c: c["billing"].update(change))
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert len(err.value.problems) == 1 and message in err.value.problems[0]


def test_a_bad_charge_master_row_names_the_file_line_and_column(tmp_path):
    (tmp_path / "charges.csv").write_text("cpt_code,charge_amount\n99490,abc\n")
    path = write_config(tmp_path, lambda c: c["billing"].update(charge_master="charges.csv"))
    with pytest.raises(ConfigError, match=r"charges.csv line 2, column charge_amount: 'abc' is not an amount"):
        load_settings(path)


def test_control_number_range_is_read_and_a_bad_one_named(tmp_path):
    path = write_config(tmp_path, lambda c: c["x12"].update(control_number_start=500_000_000,
                                                            control_number_end=999_999_999))
    settings = load_settings(path)
    assert (settings.control_number_start, settings.control_number_end) == (500_000_000, 999_999_999)
    path = write_config(tmp_path, lambda c: c["x12"].update(control_number_start=7, control_number_end=6))
    with pytest.raises(ConfigError, match="x12.control_number_start: must not be above x12.control_number_end"):
        load_settings(path)
    path = write_config(tmp_path, lambda c: c["x12"].update(control_number_end=1_000_000_000))
    with pytest.raises(ConfigError, match="x12.control_number_end: must be a whole number from 1 to 999999999"):
        load_settings(path)
