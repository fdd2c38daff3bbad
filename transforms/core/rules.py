"""Yearly billing rules: find, load and validate `<year>.yaml`, and publish them as core.rules_* tables.

CMS changes codes, caps and prices every January, so every number the code
assignment uses lives in one file per calendar year (transforms/rules/, or the
practice's `billing.rules_dir`, which wins). A service month uses the file of
its own year. The format, all keys required unless marked optional:

    year: 2026                          # must match the file name
    sources: [...]                      # where the numbers come from (CMS PFS, MLN909188, NCCI)
    conversion_factor: 33.4009          # non-QP (or the only one)
    conversion_factor_qp: 33.5675       # optional: qualifying APM participants
    fee_schedule:
      source: "PPRRVU2026 ..."          # the CMS relative value file and release the RVUs come from
      rvus: {"99490": {work: 1.00, pe: 0.91, mp: 0.07, total: 1.98}, ...}   # null = unpriced;
                                        # work/pe/mp optional (all or none), needed for a locality
    payment: {coinsurance_rate: 0.20, sequestration_rate: 0.02}
    timely_filing_months: 12
    code_sets:                          # in preference order: the earlier wins a payment tie
      ccm_standard:
        minutes_pool: total             # total | practitioner | clinical_staff
        chronic_conditions: {min: 2}    # optional max; optional care_plan_focus: true
        requires_complex_care_plan_in_month: false   # optional
        base: {code: "99490", minutes: 20}
        add_on: {code: "99439", each_further_minutes: 20, max_units: 2,   # optional; max_units null = no CPT cap
                 mue: {units: 10, source: "..."}}                          # optional: a payer's cap, cited
    mutually_exclusive: [[ccm_standard, ...]]   # every set in exactly one group; one set per group is billed
    initiating_visit: {lookback_months: 12, codes: ["99202-99205", G0438, ...]}
    conflicting_services: [{reason: apcm_in_month, codes: [G0556, ...]}, ...]   # optional
    allowed_concurrent_services: ["99495-99496", ...]                            # optional
    inpatient_places_of_service: ["21", "31", "51", "61"]
    chronic_conditions_file: chronic_icd10.csv   # icd10_prefix,category,ccw_condition[,source]

Amounts: round(total RVU x conversion factor, 2) nationally; with a locality
(settings.locality) round((work x work GPCI + pe x PE GPCI + mp x MP GPCI) x CF, 2),
the GPCIs from CMS's GPCI<year>.csv in a rules folder (load_gpci). Every problem
in a file is reported at once, one line each, naming the file and the field.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import yaml

from transforms.paths import RULES_DIR
from transforms.settings import Settings
from transforms.warehouse import run_sql

MINUTES_POOLS = ("total", "practitioner", "clinical_staff")
_CODE = re.compile(r"^[0-9A-Z]{5}$")
_RANGE = re.compile(r"^([A-Z]?)(\d{4,5})-([A-Z]?)(\d{4,5})$")
_PREFIX = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")
_REASON = re.compile(r"^[a-z][a-z0-9_]*$")
_POS = re.compile(r"^\d{2}$")
CENT = Decimal("0.01")


class RulesError(ValueError):
    """A rules file is unusable; str() holds one line per problem."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


def money(value: Decimal) -> Decimal:
    """Dollars to the cent, half up (as CMS rounds fee schedule amounts)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Rvu:
    """One code's non-facility RVUs (PPRRVU): the components are None when not given."""
    total: Decimal
    work: Decimal | None = None
    pe: Decimal | None = None
    mp: Decimal | None = None

    @property
    def has_components(self) -> bool:
        return self.work is not None


@dataclass(frozen=True)
class Gpci:
    """A MAC locality's geographic practice cost indices (CMS GPCI<year>.csv)."""
    mac: str
    locality: str
    name: str
    work: Decimal
    pe: Decimal
    mp: Decimal
    path: Path


@dataclass(frozen=True)
class CodeSet:
    name: str
    preference: int
    exclusive_group: int
    minutes_pool: str
    min_chronic_conditions: int
    max_chronic_conditions: int | None
    requires_complex_care_plan_in_month: bool
    base_code: str
    base_minutes: int
    add_on_code: str | None = None
    add_on_minutes: int | None = None
    add_on_max_units: int | None = None     # CPT's cap; None = none
    care_plan_focus_qualifies: bool = False
    add_on_mue_units: int | None = None     # a payer's MUE, cited in the file
    add_on_mue_source: str | None = None

    @property
    def add_on_unit_cap(self) -> int | None:
        caps = [c for c in (self.add_on_max_units, self.add_on_mue_units) if c is not None]
        return min(caps) if caps else None


@dataclass(frozen=True)
class YearRules:
    year: int
    path: Path
    sources: tuple[str, ...]
    conversion_factor: Decimal
    conversion_factor_qp: Decimal | None
    fee_source: str
    rvus: dict[str, Rvu | None]
    coinsurance_rate: Decimal
    sequestration_rate: Decimal
    timely_filing_months: int
    code_sets: tuple[CodeSet, ...]
    initiating_lookback_months: int
    initiating_visit_codes: tuple[str, ...]
    conflicting_services: tuple[tuple[str, tuple[str, ...]], ...]   # (reason, codes)
    allowed_concurrent_codes: tuple[str, ...]
    inpatient_places_of_service: tuple[str, ...]
    chronic_icd10: tuple[tuple[str, str], ...]  # (prefix, category)

    @property
    def conflicting_service_codes(self) -> tuple[str, ...]:
        return tuple(code for _, codes in self.conflicting_services for code in codes)

    def fee(self, code: str, qp: bool = False, gpci: Gpci | None = None) -> Decimal | None:
        """The fee schedule amount per unit: national, or the locality's when `gpci` is given."""
        rvu = self.rvus.get(code)
        if rvu is None:
            return None
        factor = self.conversion_factor_qp if qp and self.conversion_factor_qp else self.conversion_factor
        if gpci is None:
            return money(rvu.total * factor)
        if not rvu.has_components:
            raise RulesError(self.path, [f"fee_schedule.rvus.{code}: pricing locality {gpci.mac}-{gpci.locality} "
                                         f"needs the work, pe and mp RVUs; fill them in from {self.fee_source}"])
        return money((rvu.work * gpci.work + rvu.pe * gpci.pe + rvu.mp * gpci.mp) * factor)

    @property
    def fees(self) -> dict[str, Decimal | None]:
        """National amounts per unit (non-QP): what the rules digest's table lists."""
        return {code: self.fee(code) for code in self.rvus}

    @property
    def fees_qp(self) -> dict[str, Decimal | None]:
        return {code: self.fee(code, qp=True) for code in self.rvus}


def rules_folders(settings: Settings | None = None) -> tuple[Path, ...]:
    """Where `<year>.yaml` is looked for: the practice's folder first, then the shipped one."""
    if settings is not None and settings.rules_dir:
        return (Path(settings.rules_dir), RULES_DIR)
    return (RULES_DIR,)


def find_rules_file(year: int, settings: Settings | None = None) -> Path | None:
    for folder in rules_folders(settings):
        if (folder / f"{year}.yaml").is_file():
            return folder / f"{year}.yaml"
    return None


def load_year(year: int, settings: Settings | None = None) -> YearRules | None:
    """The rules for one calendar year, or None when no folder has that year's file."""
    path = find_rules_file(year, settings)
    return load_rules_file(path) if path else None


def _codes(value: Any, where: str, problems: list[str]) -> tuple[str, ...]:
    """A list of codes, where "99202-99205" (or "G0568-G0570") stands for every code in the range."""
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: must be a non-empty list of codes")
        return ()
    out: list[str] = []
    for item in value:
        text = str(item).strip().upper()
        span = _RANGE.match(text)
        if span and span[1] == span[3] and len(span[1] + span[2]) == 5 == len(span[3] + span[4]):
            lo, hi = int(span[2]), int(span[4])
            if lo > hi:
                problems.append(f"{where}: range {text} runs backwards")
            width = len(span[2])
            out.extend(f"{span[1]}{c:0{width}d}" for c in range(lo, hi + 1))
        elif _CODE.match(text):
            out.append(text)
        else:
            problems.append(f"{where}: {item!r} is not a 5-character code or a range like 99202-99205")
    return tuple(dict.fromkeys(out))


def _whole(value: Any, where: str, problems: list[str], minimum: int = 0, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        problems.append(f"{where}: must be a whole number >= {minimum}" + (" or null" if nullable else ""))
        return None
    return value


def _amount(value: Any, where: str, problems: list[str], places: int = 2, maximum: Decimal | None = None
            ) -> Decimal | None:
    try:
        amount = Decimal(str(value)) if value is not None and not isinstance(value, bool) else None
    except InvalidOperation:
        amount = None
    if (amount is None or not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -places
            or (maximum is not None and amount > maximum)):
        bound = f" and <= {maximum}" if maximum is not None else ""
        problems.append(f"{where}: {value!r} is not a number >= 0{bound} with at most {places} decimals")
        return None
    return amount


def load_chronic_list(path: Path, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """ICD-10-CM prefixes (upper case, no dot) and the chronic condition category each belongs to.
    Extra columns (ccw_condition, source) document a row and are not read."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        problems.append(f"chronic_conditions_file: {path} cannot be read")
        return ()
    out: dict[str, str] = {}
    for n, row in enumerate(rows, start=2):
        prefix, category = (row.get("icd10_prefix") or "").strip(), (row.get("category") or "").strip()
        if not _PREFIX.match(prefix):
            problems.append(f"{path.name} line {n}, icd10_prefix: {prefix!r} is not an ICD-10-CM prefix without dot")
        elif not _CATEGORY.match(category):
            problems.append(f"{path.name} line {n}, category: {category!r} must be lower_snake_case")
        elif prefix in out:
            problems.append(f"{path.name} line {n}, icd10_prefix: {prefix} is listed twice")
        else:
            out[prefix] = category
    if not out:
        problems.append(f"{path.name}: no chronic condition codes")
    return tuple(out.items())


def _code_set(name: str, spec: Any, preference: int, problems: list[str]) -> CodeSet | None:
    where = f"code_sets.{name}"
    if not isinstance(spec, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    pool = spec.get("minutes_pool")
    if pool not in MINUTES_POOLS:
        problems.append(f"{where}.minutes_pool: {pool!r} is not one of {', '.join(MINUTES_POOLS)}")
    chronic = spec.get("chronic_conditions") if isinstance(spec.get("chronic_conditions"), dict) else {}
    low = _whole(chronic.get("min"), f"{where}.chronic_conditions.min", problems, minimum=1)
    high = _whole(chronic.get("max"), f"{where}.chronic_conditions.max", problems, minimum=1, nullable=True)
    if low is not None and high is not None and high < low:
        problems.append(f"{where}.chronic_conditions: max is below min")
    focus = chronic.get("care_plan_focus", False)
    if not isinstance(focus, bool):
        problems.append(f"{where}.chronic_conditions.care_plan_focus: must be true or false")
    complex_plan = spec.get("requires_complex_care_plan_in_month", False)
    if not isinstance(complex_plan, bool):
        problems.append(f"{where}.requires_complex_care_plan_in_month: must be true or false")
    base = spec.get("base") if isinstance(spec.get("base"), dict) else {}
    base_code = _codes([base.get("code")], f"{where}.base.code", problems)
    base_minutes = _whole(base.get("minutes"), f"{where}.base.minutes", problems, minimum=1)
    add_on = spec.get("add_on")
    add_on_code = add_on_minutes = add_on_max = mue_units = mue_source = None
    if add_on is not None:
        if not isinstance(add_on, dict):
            problems.append(f"{where}.add_on: must be a mapping")
            add_on = {}
        add_on_code = _codes([add_on.get("code")], f"{where}.add_on.code", problems)
        add_on_minutes = _whole(add_on.get("each_further_minutes"), f"{where}.add_on.each_further_minutes",
                                problems, minimum=1)
        if "max_units" not in add_on:
            problems.append(f"{where}.add_on.max_units: give CPT's cap, or null when CPT sets none")
        add_on_max = _whole(add_on.get("max_units"), f"{where}.add_on.max_units", problems, nullable=True)
        mue = add_on.get("mue")
        if mue is not None:
            if not isinstance(mue, dict) or not str(mue.get("source") or "").strip():
                problems.append(f"{where}.add_on.mue: a payer's MUE needs units and the source it is cited from")
            else:
                mue_units = _whole(mue.get("units"), f"{where}.add_on.mue.units", problems, minimum=1)
                mue_source = str(mue["source"]).strip()
    if problems:  # this set's own list: any problem and the set is not built
        return None
    return CodeSet(
        name=name, preference=preference, exclusive_group=-1, minutes_pool=pool,
        min_chronic_conditions=low, max_chronic_conditions=high,
        requires_complex_care_plan_in_month=complex_plan,
        base_code=base_code[0], base_minutes=base_minutes,
        add_on_code=add_on_code[0] if add_on_code else None, add_on_minutes=add_on_minutes, add_on_max_units=add_on_max,
        care_plan_focus_qualifies=focus, add_on_mue_units=mue_units, add_on_mue_source=mue_source,
    )


def _rvus(raw: Any, problems: list[str]) -> dict[str, Rvu | None]:
    out: dict[str, Rvu | None] = {}
    if not isinstance(raw, dict) or not raw:
        problems.append("fee_schedule.rvus: must map each code to its RVUs (null = unpriced)")
        return out
    for code, value in raw.items():
        code = str(code).upper()
        where = f"fee_schedule.rvus.{code}"
        if not _CODE.match(code):
            problems.append(f"{where}: not a 5-character code")
        if value is None:
            out[code] = None
            continue
        if not isinstance(value, dict):
            problems.append(f"{where}: give {{work, pe, mp, total}} or {{total}} (non-facility RVUs), or null")
            continue
        unknown = set(value) - {"work", "pe", "mp", "total"}
        if unknown:
            problems.append(f"{where}: unknown keys {', '.join(sorted(unknown))} (work, pe, mp, total)")
        total = _amount(value.get("total"), f"{where}.total", problems)
        given = [k for k in ("work", "pe", "mp") if value.get(k) is not None]
        parts = {k: _amount(value.get(k), f"{where}.{k}", problems) for k in given}
        if given and len(given) < 3:
            problems.append(f"{where}: give all of work, pe and mp, or none")
        elif given and total is not None and None not in parts.values() and sum(parts.values()) != total:
            problems.append(f"{where}: work + pe + mp = {sum(parts.values())} but total is {total}")
        if total is not None:
            out[code] = Rvu(total, parts.get("work"), parts.get("pe"), parts.get("mp")) if len(given) == 3 \
                else Rvu(total)
    return out


def load_rules_file(path: str | Path) -> YearRules:
    """Read and validate one `<year>.yaml`; RulesError lists every problem."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError:
        raise RulesError(path, ["file cannot be read"]) from None
    except yaml.YAMLError as exc:
        raise RulesError(path, [f"not valid YAML: {exc}".splitlines()[0]]) from None
    if not isinstance(raw, dict):
        raise RulesError(path, ["top level must be a mapping"])
    problems: list[str] = []

    year = raw.get("year")
    if year != _stem_year(path):
        problems.append(f"year: {year!r} does not match the file name {path.name}")
    sources = raw.get("sources")
    if not isinstance(sources, list) or not sources or not all(isinstance(s, str) and s.strip() for s in sources):
        problems.append("sources: name the documents the amounts and rules come from (a list of text)")
        sources = []
    factor = _amount(raw.get("conversion_factor"), "conversion_factor", problems, places=4)
    factor_qp = (_amount(raw.get("conversion_factor_qp"), "conversion_factor_qp", problems, places=4)
                 if raw.get("conversion_factor_qp") is not None else None)

    if "fees" in raw:
        problems.append("fees: amounts are computed from the CMS RVUs (fee_schedule.rvus) times the conversion "
                        "factor; give fee_schedule.rvus instead")
    schedule = raw.get("fee_schedule") if isinstance(raw.get("fee_schedule"), dict) else {}
    fee_source = str(schedule.get("source") or "").strip()
    if not fee_source:
        problems.append("fee_schedule.source: name the CMS relative value file and release the RVUs come from")
    rvus = _rvus(schedule.get("rvus"), problems)

    payment = raw.get("payment") if isinstance(raw.get("payment"), dict) else {}
    coinsurance = _amount(payment.get("coinsurance_rate"), "payment.coinsurance_rate", problems, places=4,
                          maximum=Decimal(1))
    sequestration = _amount(payment.get("sequestration_rate"), "payment.sequestration_rate", problems, places=4,
                            maximum=Decimal(1))
    filing = _whole(raw.get("timely_filing_months"), "timely_filing_months", problems, minimum=1)

    sets: list[CodeSet] = []
    raw_sets = raw.get("code_sets")
    if not isinstance(raw_sets, dict) or not raw_sets:
        problems.append("code_sets: must name at least one code set")
        raw_sets = {}
    for preference, (name, spec) in enumerate(raw_sets.items(), start=1):
        mine: list[str] = []
        code_set = _code_set(str(name), spec, preference, mine)
        problems.extend(mine)
        if code_set:
            sets.append(code_set)
            for code, field in ((code_set.base_code, "base"), (code_set.add_on_code, "add_on")):
                if code and code not in rvus and not any(p.startswith(f"fee_schedule.rvus.{code}") for p in problems):
                    problems.append(f"code_sets.{name}.{field}.code: {code} has no entry in fee_schedule.rvus "
                                    "(use null if unpriced)")

    groups = raw.get("mutually_exclusive")
    group_of: dict[str, int] = {}
    if not isinstance(groups, list) or not all(isinstance(g, list) for g in groups):
        problems.append("mutually_exclusive: must be a list of lists of code-set names")
        groups = []
    for number, group in enumerate(groups, start=1):
        for name in group:
            if name not in raw_sets:
                problems.append(f"mutually_exclusive[{number - 1}]: {name!r} is not a code set")
            elif name in group_of:
                problems.append(f"mutually_exclusive[{number - 1}]: {name} is already in another group")
            else:
                group_of[name] = number
    for name in raw_sets:
        if name not in group_of:
            problems.append(f"mutually_exclusive: code set {name} is in no group")
    sets = [replace(s, exclusive_group=group_of.get(s.name, -1)) for s in sets]

    initiating = raw.get("initiating_visit") if isinstance(raw.get("initiating_visit"), dict) else {}
    lookback = _whole(initiating.get("lookback_months"), "initiating_visit.lookback_months", problems)
    initiating_codes = _codes(initiating.get("codes"), "initiating_visit.codes", problems)
    conflicting = _conflicting_services(raw.get("conflicting_services"), problems)
    allowed = (_codes(raw.get("allowed_concurrent_services"), "allowed_concurrent_services", problems)
               if raw.get("allowed_concurrent_services") is not None else ())
    blocking = {code for _, codes in conflicting for code in codes}
    for code in sorted(blocking & set(allowed)):
        problems.append(f"allowed_concurrent_services: {code} is also in conflicting_services")
    places = raw.get("inpatient_places_of_service")
    if not isinstance(places, list) or not places or not all(_POS.match(str(p)) for p in places):
        problems.append("inpatient_places_of_service: a list of 2-digit CMS place of service codes, "
                        "e.g. [\"21\", \"31\", \"51\", \"61\"]")
        places = []

    chronic: tuple[tuple[str, str], ...] = ()
    chronic_name = raw.get("chronic_conditions_file")
    if not isinstance(chronic_name, str) or not chronic_name.strip():
        problems.append("chronic_conditions_file: name the ICD-10 list (e.g. chronic_icd10.csv)")
    else:
        # beside the rules file, else the shipped list
        chronic_path = next((p for p in (path.parent / chronic_name, RULES_DIR / chronic_name) if p.is_file()),
                            path.parent / chronic_name)
        chronic = load_chronic_list(chronic_path, problems)

    if problems:
        raise RulesError(path, problems)
    return YearRules(
        year=year, path=path, sources=tuple(sources), conversion_factor=factor, conversion_factor_qp=factor_qp,
        fee_source=fee_source, rvus=rvus, coinsurance_rate=coinsurance, sequestration_rate=sequestration,
        timely_filing_months=filing, code_sets=tuple(sets),
        initiating_lookback_months=lookback, initiating_visit_codes=initiating_codes,
        conflicting_services=conflicting, allowed_concurrent_codes=allowed,
        inpatient_places_of_service=tuple(str(p) for p in places), chronic_icd10=chronic,
    )


def _conflicting_services(value: Any, problems: list[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """[{reason, codes}, ...]; the older form {codes: [...]} is one group with reason conflicting_service."""
    if value is None:
        return ()
    if isinstance(value, dict):
        value = [{"reason": "conflicting_service", **value}]
    if not isinstance(value, list):
        problems.append("conflicting_services: a list of {reason, codes}")
        return ()
    out = []
    for n, group in enumerate(value):
        where = f"conflicting_services[{n}]"
        if not isinstance(group, dict) or not _REASON.match(str(group.get("reason") or "")):
            problems.append(f"{where}.reason: a lower_snake_case reason code, e.g. apcm_in_month")
            continue
        out.append((str(group["reason"]), _codes(group.get("codes"), f"{where}.codes", problems)))
    seen: dict[str, str] = {}
    for reason, codes in out:
        for code in codes:
            if code in seen and seen[code] != reason:
                problems.append(f"conflicting_services: {code} is in {seen[code]} and {reason}")
            seen.setdefault(code, reason)
    return tuple(out)


def _stem_year(path: Path) -> int | None:
    return int(path.stem) if path.stem.isdigit() else None


# ---------------------------------------------------------------- localities

def find_gpci_file(year: int, settings: Settings | None = None) -> Path | None:
    """CMS's GPCI<year>.csv in a rules folder (the practice's first)."""
    for folder in rules_folders(settings):
        for name in (f"GPCI{year}.csv", f"gpci{year}.csv"):
            if (folder / name).is_file():
                return folder / name
    return None


def load_gpci(path: Path, mac: str, locality: str) -> Gpci:
    """One locality's row of CMS's GPCI file (Addendum E layout: MAC, state, locality number,
    locality name, work GPCI (with the 1.0 floor), PE GPCI, MP GPCI; header lines above)."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError):
        raise RulesError(path, ["file cannot be read as CSV"]) from None
    header_at = next((i for i, r in enumerate(rows) if any("locality number" in c.lower() for c in r)), None)
    if header_at is None:
        raise RulesError(path, ["no header row naming 'Locality Number' (is this CMS's GPCI file?)"])
    header = [c.strip().lower() for c in rows[header_at]]

    def column(*words: str) -> int:
        for i, name in enumerate(header):
            if all(w in name for w in words):
                return i
        raise RulesError(path, [f"no column with {' '.join(words)!r} in the header row"])

    mac_i, loc_i, name_i = column("contractor"), column("locality", "number"), column("locality", "name")
    work_i, pe_i, mp_i = column("pw", "gpci"), column("pe", "gpci"), column("mp", "gpci")
    for row in rows[header_at + 1:]:
        if len(row) <= max(mac_i, loc_i, work_i, pe_i, mp_i):
            continue
        if row[mac_i].strip() == mac and row[loc_i].strip().zfill(2) == locality.zfill(2):
            problems: list[str] = []
            values = [_amount(row[i].strip(), f"locality {mac}-{locality} {label}", problems, places=3)
                      for i, label in ((work_i, "work GPCI"), (pe_i, "PE GPCI"), (mp_i, "MP GPCI"))]
            if problems:
                raise RulesError(path, problems)
            return Gpci(mac, locality, row[name_i].strip(), *values, path=path)
    raise RulesError(path, [f"no row for MAC {mac} locality {locality} (billing.locality in the configuration)"])


def locality_gpci(year: int, settings: Settings) -> Gpci | None:
    """The configured locality's GPCIs for `year`, or None for national amounts."""
    if settings.locality is None:
        return None
    mac, locality = settings.locality
    path = find_gpci_file(year, settings)
    if path is None:
        folders = " or ".join(str(f) for f in rules_folders(settings))
        raise RulesError(Path(f"GPCI{year}.csv"), [
            f"billing.locality {mac}-{locality} is configured but no folder has CMS's GPCI{year}.csv; "
            f"drop that year's GPCI file into {folders}"])
    return load_gpci(path, mac, locality)


# ---------------------------------------------------------------- publishing

def insert_rows(con: duckdb.DuckDBPyConnection, sql: str, rows: list[list]) -> None:
    """executemany that accepts no rows (a tiny configuration table, never activities)."""
    if rows:
        con.executemany(sql, rows)


def service_years(con: duckdb.DuckDBPyConnection) -> list[int]:
    """The calendar years of every service month with an activity version."""
    return [y for (y,) in con.execute(
        "select distinct year(service_month) from staging.activity_versions where service_month is not null"
    ).fetchall()]


def publish(con: duckdb.DuckDBPyConnection, years: list[int], settings: Settings) -> dict:
    """Rebuild core.rules_* for the given service years; a year without a file is reported, not billed."""
    run_sql(con, "core/billing_inputs.sql")
    loaded = {year: load_year(year, settings) for year in sorted(set(years))}
    found = [r for r in loaded.values() if r]
    gpcis = {r.year: locality_gpci(r.year, settings) for r in found}
    charges = {code: Decimal(str(amount)) for code, amount in settings.charges.items()}
    insert_rows(
        con, "insert into core.rules_years values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[r.year, str(r.path), r.conversion_factor, r.conversion_factor_qp, r.initiating_lookback_months,
          list(r.sources), r.fee_source, r.coinsurance_rate, r.sequestration_rate, r.timely_filing_months,
          f"{gpcis[r.year].mac}-{gpcis[r.year].locality}" if gpcis[r.year] else None,
          str(gpcis[r.year].path) if gpcis[r.year] else None] for r in found],
    )
    insert_rows(
        con, "insert into core.rules_code_sets values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[r.year, s.name, s.preference, s.exclusive_group, s.minutes_pool, s.min_chronic_conditions,
          s.max_chronic_conditions, s.requires_complex_care_plan_in_month, s.base_code, s.base_minutes,
          s.add_on_code, s.add_on_minutes, s.add_on_max_units, s.add_on_mue_units, s.add_on_unit_cap,
          s.care_plan_focus_qualifies] for r in found for s in r.code_sets],
    )
    fee_rows = []
    for r in found:
        for code, rvu in r.rvus.items():
            for status, qp in (("non_qp", False), ("qp", True)):
                fee = r.fee(code, qp=qp, gpci=gpcis[r.year])
                fee_rows.append([r.year, code, status, fee, r.fee(code, qp=qp), rvu.work if rvu else None,
                                 rvu.pe if rvu else None, rvu.mp if rvu else None, rvu.total if rvu else None,
                                 charges.get(code, fee)])
    insert_rows(con, "insert into core.rules_fees values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", fee_rows)
    insert_rows(
        con, "insert into core.rules_codes values (?, ?, ?, ?)",
        [[r.year, purpose, code, detail] for r in found
         for purpose, detail, codes in (
             ("initiating_visit", None, r.initiating_visit_codes),
             *(("conflicting_service", reason, codes) for reason, codes in r.conflicting_services),
             ("allowed_concurrent", None, r.allowed_concurrent_codes),
             ("inpatient_place_of_service", None, r.inpatient_places_of_service))
         for code in codes],
    )
    insert_rows(
        con, "insert into core.rules_chronic_icd10 values (?, ?, ?)",
        [[r.year, prefix, category] for r in found for prefix, category in r.chronic_icd10],
    )
    insert_rows(
        con, "insert into core.rules_qp_practitioners values (?, ?)",
        [[r.year, npi] for r in found if r.conversion_factor_qp
         for npi in sorted(settings.qualifying_apm_participants_in(r.year))],
    )
    return {
        "rules_files": {str(r.year): str(r.path) for r in found},  # str keys: the summary travels as JSON
        "years_without_rules": [year for year, r in loaded.items() if r is None],
        "fee_schedule": {str(r.year): (f"locality {gpcis[r.year].mac}-{gpcis[r.year].locality} "
                                       f"({gpcis[r.year].path.name})" if gpcis[r.year] else "national")
                         for r in found},
    }
