"""Yearly billing rules: find, load and validate `<year>.yaml`, and publish them as core.rules_* tables.

CMS changes codes, caps and prices every January, so every number the code
assignment uses lives in one file per calendar year (transforms/rules/, or the
practice's `billing.rules_dir`, which wins). A service month uses the file of
its own year. The format, all keys required unless marked optional:

    year: 2026                          # must match the file name
    sources: [...]                      # where the numbers come from (CMS PFS, MLN909188, NCCI)
    conversion_factor: 33.4009
    fees: {"99490": 66.13, ...}         # per unit; null = unpriced, never billed
    code_sets:                          # in preference order: the earlier wins a payment tie
      ccm_standard:
        minutes_pool: total             # total | practitioner | clinical_staff
        chronic_conditions: {min: 2}    # optional max
        requires_complex_care_plan_in_month: false   # optional
        base: {code: "99490", minutes: 20}
        add_on: {code: "99439", each_further_minutes: 20, max_units: 2}   # optional; max_units null = no cap
    mutually_exclusive: [[ccm_standard, ...]]   # every set in exactly one group; one set per group is billed
    initiating_visit: {lookback_months: 12, codes: ["99202-99205", G0438, ...]}
    conflicting_services: {codes: [G0181, "90951-90970"]}   # optional
    chronic_conditions_file: chronic_icd10.csv   # icd10_prefix,category,ccw_condition

Every problem in a file is reported at once, one line each, naming the file and the field.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import duckdb
import yaml

from transforms.paths import RULES_DIR
from transforms.settings import Settings
from transforms.warehouse import run_sql

MINUTES_POOLS = ("total", "practitioner", "clinical_staff")
_CODE = re.compile(r"^[0-9A-Z]{5}$")
_RANGE = re.compile(r"^(\d{5})-(\d{5})$")
_PREFIX = re.compile(r"^[A-Z][0-9][0-9A-Z]{1,5}$")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")


class RulesError(ValueError):
    """A rules file is unusable; str() holds one line per problem."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


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
    add_on_max_units: int | None = None


@dataclass(frozen=True)
class YearRules:
    year: int
    path: Path
    sources: tuple[str, ...]
    conversion_factor: Decimal
    fees: dict[str, Decimal | None]
    code_sets: tuple[CodeSet, ...]
    initiating_lookback_months: int
    initiating_visit_codes: tuple[str, ...]
    conflicting_service_codes: tuple[str, ...]
    chronic_icd10: tuple[tuple[str, str], ...]  # (prefix, category)


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
    """A list of codes, where "99202-99205" stands for every code in the range."""
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: must be a non-empty list of codes")
        return ()
    out: list[str] = []
    for item in value:
        text = str(item).strip().upper()
        span = _RANGE.match(text)
        if span:
            lo, hi = int(span[1]), int(span[2])
            if lo > hi:
                problems.append(f"{where}: range {text} runs backwards")
            out.extend(f"{c:05d}" for c in range(lo, hi + 1))
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


def _amount(value: Any, where: str, problems: list[str], places: int = 2) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or amount.as_tuple().exponent < -places:
        problems.append(f"{where}: {value!r} is not an amount >= 0 with at most {places} decimals")
        return None
    return amount


def load_chronic_list(path: Path, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """ICD-10-CM prefixes (upper case, no dot) and the chronic condition category each belongs to."""
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
    complex_plan = spec.get("requires_complex_care_plan_in_month", False)
    if not isinstance(complex_plan, bool):
        problems.append(f"{where}.requires_complex_care_plan_in_month: must be true or false")
    base = spec.get("base") if isinstance(spec.get("base"), dict) else {}
    base_code = _codes([base.get("code")], f"{where}.base.code", problems)
    base_minutes = _whole(base.get("minutes"), f"{where}.base.minutes", problems, minimum=1)
    add_on = spec.get("add_on")
    add_on_code = add_on_minutes = add_on_max = None
    if add_on is not None:
        if not isinstance(add_on, dict):
            problems.append(f"{where}.add_on: must be a mapping")
            add_on = {}
        add_on_code = _codes([add_on.get("code")], f"{where}.add_on.code", problems)
        add_on_minutes = _whole(add_on.get("each_further_minutes"), f"{where}.add_on.each_further_minutes",
                                problems, minimum=1)
        add_on_max = _whole(add_on.get("max_units"), f"{where}.add_on.max_units", problems, nullable=True)
    if problems:  # this set's own list: any problem and the set is not built
        return None
    return CodeSet(
        name=name, preference=preference, exclusive_group=-1, minutes_pool=pool,
        min_chronic_conditions=low, max_chronic_conditions=high,
        requires_complex_care_plan_in_month=complex_plan,
        base_code=base_code[0], base_minutes=base_minutes,
        add_on_code=add_on_code[0] if add_on_code else None, add_on_minutes=add_on_minutes, add_on_max_units=add_on_max,
    )


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

    fees: dict[str, Decimal | None] = {}
    raw_fees = raw.get("fees")
    if not isinstance(raw_fees, dict) or not raw_fees:
        problems.append("fees: must map each code to its amount (null = unpriced)")
        raw_fees = {}
    for code, value in raw_fees.items():
        code = str(code).upper()
        if not _CODE.match(code):
            problems.append(f"fees.{code}: not a 5-character code")
        fees[code] = None if value is None else _amount(value, f"fees.{code}", problems)

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
                if code and code not in fees:
                    problems.append(f"code_sets.{name}.{field}.code: {code} has no entry in fees (use null if unpriced)")

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
    sets = [CodeSet(**{**s.__dict__, "exclusive_group": group_of.get(s.name, -1)}) for s in sets]

    initiating = raw.get("initiating_visit") if isinstance(raw.get("initiating_visit"), dict) else {}
    lookback = _whole(initiating.get("lookback_months"), "initiating_visit.lookback_months", problems)
    initiating_codes = _codes(initiating.get("codes"), "initiating_visit.codes", problems)
    conflicting = raw.get("conflicting_services") or {}
    conflicting_codes = _codes(conflicting.get("codes"), "conflicting_services.codes", problems) if conflicting else ()

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
        year=year, path=path, sources=tuple(sources), conversion_factor=factor, fees=fees, code_sets=tuple(sets),
        initiating_lookback_months=lookback, initiating_visit_codes=initiating_codes,
        conflicting_service_codes=conflicting_codes, chronic_icd10=chronic,
    )


def _stem_year(path: Path) -> int | None:
    return int(path.stem) if path.stem.isdigit() else None


def insert_rows(con: duckdb.DuckDBPyConnection, sql: str, rows: list[list]) -> None:
    """executemany that accepts no rows (a tiny configuration table, never activities)."""
    if rows:
        con.executemany(sql, rows)


def publish(con: duckdb.DuckDBPyConnection, years: list[int], settings: Settings) -> dict:
    """Rebuild core.rules_* for the given service years; a year without a file is reported, not billed."""
    run_sql(con, "core/billing_inputs.sql")
    loaded = {year: load_year(year, settings) for year in sorted(set(years))}
    found = [r for r in loaded.values() if r]
    charges = {code: Decimal(str(amount)) for code, amount in settings.charges.items()}
    insert_rows(
        con, "insert into core.rules_years values (?, ?, ?, ?, ?)",
        [[r.year, str(r.path), r.conversion_factor, r.initiating_lookback_months, list(r.sources)] for r in found],
    )
    insert_rows(
        con, "insert into core.rules_code_sets values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [[r.year, s.name, s.preference, s.exclusive_group, s.minutes_pool, s.min_chronic_conditions,
          s.max_chronic_conditions, s.requires_complex_care_plan_in_month, s.base_code, s.base_minutes,
          s.add_on_code, s.add_on_minutes, s.add_on_max_units] for r in found for s in r.code_sets],
    )
    insert_rows(
        con, "insert into core.rules_fees values (?, ?, ?, ?)",
        [[r.year, code, fee, charges.get(code, fee)] for r in found for code, fee in r.fees.items()],
    )
    insert_rows(
        con, "insert into core.rules_codes values (?, ?, ?)",
        [[r.year, purpose, code] for r in found
         for purpose, codes in (("initiating_visit", r.initiating_visit_codes),
                                ("conflicting_service", r.conflicting_service_codes))
         for code in codes],
    )
    insert_rows(
        con, "insert into core.rules_chronic_icd10 values (?, ?, ?)",
        [[r.year, prefix, category] for r in found for prefix, category in r.chronic_icd10],
    )
    return {
        "rules_files": {str(r.year): str(r.path) for r in found},  # str keys: the summary travels as JSON
        "years_without_rules": [year for year, r in loaded.items() if r is None],
    }
