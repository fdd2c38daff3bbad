"""Practice configuration: load (YAML or TOML), validate, and hand out typed settings.

Every problem is reported at once, one line each, naming the file and the field,
so a practice fixes its configuration in one pass.
"""
from __future__ import annotations

import csv
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from transforms.contract import npi_is_valid
from transforms.paths import SAMPLE_CONFIG

MAX_GRACE_DAYS = 7  # the contract caps the late-note grace at 7 days
MAX_CONTROL_NUMBER = 999_999_999  # ISA13 is 9 digits

# Evidence an auditor asks for, checked when the export carries its column:
# hold = the patient-month is not billed until it is documented; warn = billed, reported.
EVIDENCE_RULES = {
    "care_plan_shared": "hold",        # care_plans.shared_with_patient_date
    "consent_elements": "hold",        # consents.elements_explained (all four elements)
    "consent_obtained_by": "hold",     # consents.obtained_by names a staff member
    "staff_credential": "hold",        # staff.credential of everyone whose minutes count
    "staff_supervising_npi": "warn",   # staff.supervising_npi of clinical staff whose minutes count
    "care_plan_goals": "warn",         # care_plans.goals
}
EVIDENCE_POLICIES = ("hold", "warn")
# When a revocation takes effect: the day it is dated (our stricter default: activities
# after it do not count) or the end of its calendar month (CMS's reading).
REVOCATION_EFFECTIVE = ("revocation_date", "end_of_month")


class ConfigError(ValueError):
    """The configuration is unusable; str() holds one line per problem."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


@dataclass(frozen=True)
class Address:
    line1: str
    city: str
    state: str
    zip: str
    line2: str | None = None


@dataclass(frozen=True)
class BillingProvider:
    npi: str
    name: str
    tin: str
    taxonomy: str
    address: Address
    phone: str | None = None
    practitioner_npis: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Documentation:
    vague_min_words: int = 6
    vague_phrases: tuple[str, ...] = ()
    late_warn_hours: float = 24
    late_hold_days: float = 7
    max_activity_minutes: int = 120


# Files a drop may hold besides the contract's, skipped and named (shell patterns):
# what operating systems leave in folders.
DEFAULT_IGNORE_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class VendorMapping:
    files: dict[str, str] = field(default_factory=dict)  # file stem -> contract table
    columns: dict[str, dict[str, str]] = field(default_factory=dict)  # table -> {vendor: ours}
    ignore_files: tuple[str, ...] = DEFAULT_IGNORE_FILES  # file names in a drop to skip (and name)


@dataclass(frozen=True)
class Settings:
    source: Path
    practice_name: str
    time_zone: str
    billing_providers: tuple[BillingProvider, ...]
    payer_name: str
    payer_id: str
    x12: dict[str, str]
    place_of_service: str
    claim_grace_days: int
    consent_methods: tuple[str, ...]
    date_of_service: str
    rules_dir: Path | None
    charges: dict[str, float]
    documentation: Documentation
    vendor: VendorMapping
    # pyx12 reads a whole interchange up to this many claims in the batch; above it, a sample
    # per interchange (our own vectorised edits still cover every claim). See transforms/billing/batch.py.
    x12_full_max_claims: int = 5000
    charge_master: Path | None = None          # the file `charges` was read from, if any
    # billing practitioner NPIs who are qualifying APM participants, per service year (None: every year)
    qualifying_apm_participants: dict[int | None, frozenset[str]] = field(default_factory=dict)
    locality: tuple[str, str] | None = None    # (MAC, locality number) of CMS's GPCI file; None = national
    timely_filing_warn_months: int = 11        # flag an unbilled month this many months after its date of service
    evidence: dict[str, str] = field(default_factory=lambda: dict(EVIDENCE_RULES))
    revocation_effective: str = "revocation_date"

    def qualifying_apm_participants_in(self, year: int) -> frozenset[str]:
        return self.qualifying_apm_participants.get(year, self.qualifying_apm_participants.get(None, frozenset()))
    # ISA13/GS06/ST02 come from one counter in [start, end]. Each warehouse of a practice gets its own range
    # (x12.control_number_start / _end), so no two ever send the same interchange control number.
    control_number_start: int = 1
    control_number_end: int = MAX_CONTROL_NUMBER

    def billing_provider_for(self, practitioner_npi: str) -> BillingProvider:
        for bp in self.billing_providers:
            if bp.practitioner_npis and practitioner_npi in bp.practitioner_npis:
                return bp
        for bp in self.billing_providers:
            if not bp.practitioner_npis:
                return bp
        return self.billing_providers[0]


_X12_REQUIRED = ("submitter_id", "submitter_name", "receiver_id", "receiver_name")


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        return tomllib.loads(text)
    data = yaml.safe_load(text)
    return data or {}


def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate a practice configuration; the shipped sample when path is None."""
    path = Path(path) if path else SAMPLE_CONFIG
    try:
        raw = _read(path)
    except FileNotFoundError:
        raise ConfigError(path, ["file not found"]) from None
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(path, [f"not valid YAML/TOML: {exc}".splitlines()[0]]) from None
    if not isinstance(raw, dict):
        raise ConfigError(path, ["top level must be a mapping"])

    problems: list[str] = []

    def need(section: dict, dotted: str, key: str) -> Any:
        value = section.get(key) if isinstance(section, dict) else None
        if value is None or (isinstance(value, str) and not value.strip()):
            problems.append(f"missing field {dotted}.{key}")
            return None
        return value

    practice = raw.get("practice") or {}
    name = need(practice, "practice", "name")
    tz = need(practice, "practice", "time_zone")
    if tz:
        try:
            ZoneInfo(str(tz))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"practice.time_zone: unknown time zone {tz!r} (use an IANA name such as America/New_York)")

    providers: list[BillingProvider] = []
    raw_providers = raw.get("billing_providers")
    if not raw_providers:
        problems.append("missing field billing_providers (at least one group NPI)")
        raw_providers = []
    for i, bp in enumerate(raw_providers):
        where = f"billing_providers[{i}]"
        npi = str(need(bp, where, "npi") or "")
        if npi and not npi_is_valid(npi):
            problems.append(f"{where}.npi: {npi!r} fails the NPI check digit")
        tin = str(need(bp, where, "tin") or "")
        if tin and not re.fullmatch(r"\d{9}", tin):
            problems.append(f"{where}.tin: must be 9 digits")
        addr = bp.get("address") if isinstance(bp, dict) else None
        addr = addr if isinstance(addr, dict) else {}
        if not addr:
            problems.append(f"missing field {where}.address")
        line1 = need(addr, f"{where}.address", "line1") if addr else None
        city = need(addr, f"{where}.address", "city") if addr else None
        state = need(addr, f"{where}.address", "state") if addr else None
        zip_ = str(need(addr, f"{where}.address", "zip") or "").replace("-", "") if addr else ""
        if zip_ and not re.fullmatch(r"\d{9}", zip_):
            problems.append(f"{where}.address.zip: the 837P billing provider needs ZIP+4 (9 digits)")
        pnpis = bp.get("practitioner_npis") if isinstance(bp, dict) else None
        for p in pnpis or []:
            if not npi_is_valid(str(p)):
                problems.append(f"{where}.practitioner_npis: {p!r} fails the NPI check digit")
        providers.append(
            BillingProvider(
                npi=npi,
                name=str(need(bp, where, "name") or ""),
                tin=tin,
                taxonomy=str(need(bp, where, "taxonomy") or ""),
                address=Address(str(line1 or ""), str(city or ""), str(state or ""), zip_, addr.get("line2")),
                phone=str(bp["phone"]) if isinstance(bp, dict) and bp.get("phone") else None,
                practitioner_npis=tuple(str(p) for p in pnpis) if pnpis else None,
            )
        )

    payer = raw.get("payer") or {}
    payer_name = need(payer, "payer", "name")
    payer_id = need(payer, "payer", "id")

    x12 = raw.get("x12") or {}
    for key in _X12_REQUIRED:
        need(x12, "x12", key)
    usage = str(x12.get("usage_indicator", "T"))
    if usage not in ("T", "P"):
        problems.append("x12.usage_indicator: must be T (test) or P (production)")
    numbers = {}
    for key, default in (("control_number_start", 1), ("control_number_end", MAX_CONTROL_NUMBER)):
        value = x12.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CONTROL_NUMBER:
            problems.append(f"x12.{key}: must be a whole number from 1 to {MAX_CONTROL_NUMBER}")
            value = default
        numbers[key] = value
    if numbers["control_number_start"] > numbers["control_number_end"]:
        problems.append("x12.control_number_start: must not be above x12.control_number_end")

    billing = raw.get("billing") or {}
    grace = billing.get("claim_grace_days", 5)
    if not isinstance(grace, int) or not 0 <= grace <= MAX_GRACE_DAYS:
        problems.append(f"billing.claim_grace_days: must be a whole number from 0 to {MAX_GRACE_DAYS}")
        grace = 5
    methods = tuple(billing.get("consent_methods") or ("verbal", "written"))
    if not set(methods) <= {"verbal", "written"} or not methods:
        problems.append("billing.consent_methods: use [verbal, written] or [written]")
    dos = billing.get("date_of_service", "end_of_month")
    if dos not in ("end_of_month", "threshold_met"):
        problems.append("billing.date_of_service: must be end_of_month or threshold_met")
    rules_dir = billing.get("rules_dir")
    if rules_dir:
        rules_dir = (path.parent / rules_dir).resolve()
        if not rules_dir.is_dir():
            problems.append(f"billing.rules_dir: {rules_dir} is not a folder")

    charges, charge_master = _charges(billing, path, problems)
    qp = _qualifying_apm_participants(billing.get("qualifying_apm_participants"), problems)
    locality = _locality(billing.get("locality"), problems)
    warn_months = billing.get("timely_filing_warn_after_months", 11)
    if isinstance(warn_months, bool) or not isinstance(warn_months, int) or not 1 <= warn_months <= 11:
        problems.append("billing.timely_filing_warn_after_months: a whole number of months from 1 to 11 "
                        "(the filing limit is 12 months after the date of service)")
        warn_months = 11
    evidence = dict(EVIDENCE_RULES)
    raw_evidence = billing.get("evidence") or {}
    if not isinstance(raw_evidence, dict):
        problems.append(f"billing.evidence: a mapping of {', '.join(EVIDENCE_RULES)} to hold or warn")
        raw_evidence = {}
    for rule, policy in raw_evidence.items():
        if rule not in EVIDENCE_RULES:
            problems.append(f"billing.evidence.{rule}: unknown rule (one of {', '.join(EVIDENCE_RULES)})")
        elif policy not in EVIDENCE_POLICIES:
            problems.append(f"billing.evidence.{rule}: must be hold or warn")
        else:
            evidence[rule] = policy
    revocation = billing.get("revocation_effective", "revocation_date")
    if revocation not in REVOCATION_EFFECTIVE:
        problems.append("billing.revocation_effective: revocation_date (activities after it do not count) or "
                        "end_of_month (CMS: the revocation takes effect at the end of its month)")
        revocation = "revocation_date"

    full_max = (raw.get("x12_validation") or {}).get("full_max_claims", 5000)
    if not isinstance(full_max, int) or isinstance(full_max, bool) or full_max < 0:
        problems.append("x12_validation.full_max_claims: must be a whole number of claims, 0 or more")
        full_max = 5000

    doc_raw = raw.get("documentation") or {}
    doc = Documentation(
        vague_min_words=int(doc_raw.get("vague_min_words", 6)),
        vague_phrases=tuple(str(p).lower() for p in doc_raw.get("vague_phrases") or ()),
        late_warn_hours=float(doc_raw.get("late_warn_hours", 24)),
        late_hold_days=float(doc_raw.get("late_hold_days", 7)),
        max_activity_minutes=int(doc_raw.get("max_activity_minutes", 120)),
    )

    vendor = VendorMapping()
    vendor_raw = raw.get("vendor")
    if isinstance(vendor_raw, str):
        vpath = (path.parent / vendor_raw).resolve()
        try:
            vendor_raw = yaml.safe_load(vpath.read_text(encoding="utf-8")) or {}
        except OSError:
            problems.append(f"vendor: mapping file {vpath} cannot be read")
            vendor_raw = {}
    if isinstance(vendor_raw, dict):
        ignore = vendor_raw.get("ignore_files")
        if ignore is not None and not (isinstance(ignore, list) and all(isinstance(p, str) for p in ignore)):
            problems.append("vendor.ignore_files: must be a list of file name patterns, e.g. [\"*.md5\"]")
            ignore = None
        vendor = VendorMapping(
            files={str(k): str(v) for k, v in (vendor_raw.get("files") or {}).items()},
            columns={str(t): {str(k): str(v) for k, v in (m or {}).items()} for t, m in (vendor_raw.get("columns") or {}).items()},
            ignore_files=tuple(ignore) if ignore is not None else DEFAULT_IGNORE_FILES,
        )

    if problems:
        raise ConfigError(path, problems)
    return Settings(
        source=path,
        practice_name=str(name),
        time_zone=str(tz),
        billing_providers=tuple(providers),
        payer_name=str(payer_name),
        payer_id=str(payer_id),
        x12={k: str(v) for k, v in x12.items()} | {"usage_indicator": usage},
        place_of_service=str(billing.get("place_of_service", "11")),
        claim_grace_days=grace,
        consent_methods=methods,
        date_of_service=dos,
        rules_dir=Path(rules_dir) if rules_dir else None,
        charges=charges,
        documentation=doc,
        vendor=vendor,
        x12_full_max_claims=full_max,
        charge_master=charge_master,
        qualifying_apm_participants=qp,
        locality=locality,
        timely_filing_warn_months=warn_months,
        evidence=evidence,
        revocation_effective=revocation,
        control_number_start=numbers["control_number_start"],
        control_number_end=numbers["control_number_end"],
    )


_CPT = re.compile(r"^[0-9A-Z]{5}$")
_AMOUNT = re.compile(r"^\d+(\.\d{1,2})?$")


def _charges(billing: dict, path: Path, problems: list[str]) -> tuple[dict[str, float], Path | None]:
    """The practice's charge per unit by code: billing.charge_master (a CSV of cpt_code,charge_amount)
    or billing.charges inline. A code not listed is charged at its fee schedule amount."""
    inline, master = billing.get("charges"), billing.get("charge_master")
    if inline and master:
        problems.append("billing.charges and billing.charge_master: give one of them, not both")
    if master:
        # beside the configuration, else the shipped one (the sample names the sample beside it)
        file = next((f for f in ((path.parent / str(master)).resolve(), (SAMPLE_CONFIG.parent / str(master)).resolve())
                     if f.is_file()), (path.parent / str(master)).resolve())
        try:
            with file.open(encoding="utf-8-sig", newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError:
            problems.append(f"billing.charge_master: {file} cannot be read")
            return {}, file
        out: dict[str, float] = {}
        for n, row in enumerate(rows, start=2):
            code = (row.get("cpt_code") or "").strip().upper()
            amount = (row.get("charge_amount") or "").strip()
            if not _CPT.match(code):
                problems.append(f"{file} line {n}, column cpt_code: {code!r} is not a 5-character code")
            elif not _AMOUNT.match(amount):
                problems.append(f"{file} line {n}, column charge_amount: {amount!r} is not an amount like 95.00")
            elif code in out:
                problems.append(f"{file} line {n}, column cpt_code: {code} is listed twice")
            else:
                out[code] = float(amount)
        return out, file
    if inline is not None and not isinstance(inline, dict):
        problems.append("billing.charges: a mapping of CPT code to the practice's charge per unit")
        return {}, None
    out = {}
    for code, amount in (inline or {}).items():
        if not _CPT.match(str(code)) or isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
            problems.append(f"billing.charges.{code}: a 5-character code and an amount >= 0")
        else:
            out[str(code)] = float(amount)
    return out, None


def _qualifying_apm_participants(value: Any, problems: list[str]) -> dict[int | None, frozenset[str]]:
    """[npi, ...] (every year) or {year: [npi, ...]}: QP status is determined per year."""
    where = "billing.qualifying_apm_participants"
    if value is None:
        return {}
    by_year = value if isinstance(value, dict) else {None: value}
    out: dict[int | None, frozenset[str]] = {}
    for year, npis in by_year.items():
        if year is not None and (isinstance(year, bool) or not isinstance(year, int)):
            problems.append(f"{where}: {year!r} is not a year (give {{2026: [npi, ...]}} or a list of NPIs)")
            continue
        if not isinstance(npis, list):
            problems.append(f"{where}{'' if year is None else f'.{year}'}: a list of billing practitioner NPIs")
            continue
        for npi in npis:
            if not npi_is_valid(str(npi)):
                problems.append(f"{where}: {npi!r} fails the NPI check digit")
        out[year] = frozenset(str(n) for n in npis)
    return out


def _locality(value: Any, problems: list[str]) -> tuple[str, str] | None:
    """{mac: "12502", locality: "01"}: the row of CMS's GPCI<year>.csv the practice is paid at."""
    if value is None:
        return None
    mac = str(value.get("mac", "")).strip() if isinstance(value, dict) else ""
    locality = str(value.get("locality", "")).strip() if isinstance(value, dict) else ""
    if not re.fullmatch(r"\d{5}", mac) or not re.fullmatch(r"\d{1,2}", locality):
        problems.append("billing.locality: {mac: <5-digit MAC number>, locality: <locality number>}, as in "
                        "CMS's GPCI file, e.g. {mac: \"12502\", locality: \"01\"}")
        return None
    return mac, locality.zfill(2)
