"""Our own claim edits: what a payer rejects that pyx12's 837P map does not check.

check_interchange/check_batch re-read the rendered X12 text (not the data it
was rendered from), so they prove the file says what we meant; the claims
stage runs them on every interchange of a batch up to
x12_validation.full_max_claims claims, and on the pyx12 sample above that.
claim_line_findings runs the same edits, plus element checks (X12 character
set, lengths, formats, pyx12's code lists), vectorised with Polars over the
element values every claim is rendered from, on every claim of every batch,
before anything is written: a claim with a finding is withheld, with its
reasons, and the batch goes on (transforms/billing/batch.py). Findings name the
claim and the element, and never carry an MBI, a name or a birth date.
"""
from __future__ import annotations

import functools
import io
import json
import logging
import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from transforms.contract import npi_is_valid

# add-on code -> its base code (CPT: an add-on is never billed without its base)
ADD_ON_BASE = {"99439": "99490", "99489": "99487", "99437": "99491", "99425": "99424", "99427": "99426"}
ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z]{0,5}$")  # ICD-10-CM, no dot
_MBI_ALPHA = "AC-HJKMNP-RT-Y"  # letters minus S, L, O, I, B, Z
MBI = re.compile(
    rf"^[1-9][{_MBI_ALPHA}][{_MBI_ALPHA}0-9][0-9][{_MBI_ALPHA}][{_MBI_ALPHA}0-9][0-9][{_MBI_ALPHA}]{{2}}[0-9]{{2}}$"
)
MAX_DIAGNOSES, MAX_POINTERS = 12, 4


class ClaimEditError(RuntimeError):
    """What stops a whole batch (the configuration, or a file that fails its checks after it was
    written): nothing was written or committed. str() lists every finding. A claim the data cannot
    make is withheld instead (transforms/billing/batch.py)."""

    def __init__(self, batch_id: str, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"claim batch {batch_id} not written: {len(problems)} problem(s) stop the whole batch; fix them and "
            f"rerun:\n"
            + "\n".join(f"  {p}" for p in problems)
        )


@dataclass
class ParsedLine:
    cpt_code: str
    charge: Decimal | None  # None: SV102 is not a number
    units: int
    pointers: list[str]
    dates: list[str] = field(default_factory=list)  # DTP*472, CCYYMMDD


@dataclass
class ParsedClaim:
    claim_id: str
    total: str  # CLM02 as written
    mbi: str
    rendering_npi: str | None = None
    diagnoses: list[tuple[str, str]] = field(default_factory=list)  # (qualifier, code)
    claim_dates: list[str] = field(default_factory=list)  # DTP*472 at claim level
    lines: list[ParsedLine] = field(default_factory=list)

    @property
    def dates(self) -> list[str]:
        return self.claim_dates + [d for line in self.lines for d in line.dates]


@dataclass
class ParsedInterchange:
    billing_npi: str | None = None
    billing_zip: str | None = None
    npis: list[tuple[str, str, str | None]] = field(default_factory=list)  # (entity, npi, claim_id)
    claims: list[ParsedClaim] = field(default_factory=list)


def _decimal(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError):
        return None


def _money(value: Decimal | None) -> str:
    return f"{value:.2f}" if value is not None else "?"


def parse_837p(text: str) -> ParsedInterchange:
    """The parts of an 837P our edits look at (separators as we write them)."""
    out = ParsedInterchange()
    claim: ParsedClaim | None = None
    line: ParsedLine | None = None
    mbi = ""
    in_billing_provider = False
    for raw in text.split("~"):
        el = raw.strip().split("*")
        seg = el[0]
        el += [""] * (10 - len(el))  # absent trailing elements read as empty
        if seg == "HL":
            in_billing_provider, claim, line = False, None, None
        elif seg == "NM1":
            entity = el[1]
            if el[8] == "XX":
                out.npis.append((entity, el[9], claim.claim_id if claim else None))
            if entity == "85":
                in_billing_provider, out.billing_npi = True, el[9]
            elif entity == "IL":
                mbi = el[9]
            elif entity == "82" and claim:
                claim.rendering_npi = el[9]
        elif seg == "N4" and in_billing_provider:
            out.billing_zip = el[3]
        elif seg == "CLM":
            claim, line = ParsedClaim(el[1], el[2], mbi), None
            out.claims.append(claim)
        elif seg == "HI" and claim:
            claim.diagnoses += [tuple((c.split(":") + [""])[:2]) for c in el[1:] if c]
        elif seg == "LX" and claim:
            line = None
        elif seg == "SV1" and claim:
            code = el[1].split(":")
            units = el[4]
            line = ParsedLine(code[1] if len(code) > 1 else "", _decimal(el[2]),
                              int(units) if units.isdigit() else 0, [p for p in el[7].split(":") if p])
            claim.lines.append(line)
        elif seg == "DTP" and el[1] == "472" and claim:
            (line.dates if line else claim.claim_dates).append(el[3])
    return out


def check_interchange(text: str, file_name: str, service_months: dict[str, date] | None = None) -> list[str]:
    """Every finding for one 837P interchange; [] when it passes."""
    doc = parse_837p(text)
    problems: list[str] = []
    where = lambda claim_id: f"{file_name} claim {claim_id}" if claim_id else file_name  # noqa: E731

    for entity, npi, claim_id in doc.npis:
        if not npi_is_valid(npi):
            who = {"85": "billing provider (2010AA)", "82": "rendering provider (2310B)"}.get(entity, f"NM1*{entity}")
            problems.append(f"{where(claim_id)}: {who} NPI {npi!r} fails the NPI check digit")
    if doc.billing_zip is None or not re.fullmatch(r"\d{9}", doc.billing_zip):
        problems.append(f"{file_name}: billing provider N4 ZIP must be ZIP+4 (9 digits); "
                        "set billing_providers[].address.zip in the practice configuration")

    for claim in doc.claims:
        at = where(claim.claim_id)
        if not claim.lines:
            problems.append(f"{at}: claim has no service lines")
        total, line_sum = _decimal(claim.total), sum((ln.charge or 0 for ln in claim.lines), Decimal("0"))
        if total is None or total != line_sum:
            problems.append(f"{at}: CLM02 total {claim.total} does not equal the sum of SV102 line charges {line_sum}")
        if not MBI.fullmatch(claim.mbi or ""):
            problems.append(f"{at}: subscriber MBI (2010BA NM109) is malformed; correct the patient's mbi in the EHR")
        if not claim.diagnoses:
            problems.append(f"{at}: no diagnosis in HI")
        if len(claim.diagnoses) > MAX_DIAGNOSES:
            problems.append(f"{at}: {len(claim.diagnoses)} diagnoses in HI; at most {MAX_DIAGNOSES}")
        for i, (qualifier, code) in enumerate(claim.diagnoses, start=1):
            if qualifier != ("ABK" if i == 1 else "ABF"):
                problems.append(f"{at}: HI position {i} qualifier {qualifier!r} should be {'ABK' if i == 1 else 'ABF'}")
            if not ICD10.fullmatch(code):
                problems.append(f"{at}: HI position {i} code {code!r} is not an ICD-10-CM code without a dot")
        codes = {ln.cpt_code for ln in claim.lines}
        for n, ln in enumerate(claim.lines, start=1):
            if not ln.pointers or len(ln.pointers) > MAX_POINTERS:
                problems.append(f"{at} line {n}: SV107 needs 1 to {MAX_POINTERS} diagnosis pointers")
            for p in ln.pointers:
                if not p.isdigit() or not 1 <= int(p) <= len(claim.diagnoses):
                    problems.append(f"{at} line {n}: SV107 pointer {p} points at no diagnosis in HI")
            base = ADD_ON_BASE.get(ln.cpt_code)
            if base and base not in codes:
                problems.append(f"{at} line {n}: add-on {ln.cpt_code} billed without its base code {base}")
            if ln.charge is None or ln.charge < 0:
                problems.append(f"{at} line {n}: SV102 charge is not an amount")
            if ln.units < 1:
                problems.append(f"{at} line {n}: SV104 units must be a whole number of at least 1")
            if not ln.dates:
                problems.append(f"{at} line {n}: no DTP*472 date of service")
        months = {d[:6] for d in claim.dates}
        if len(months) > 1:
            problems.append(f"{at}: dates of service span months {sorted(months)}; a claim is one service month")
        expected = (service_months or {}).get(claim.claim_id)
        if expected and months and months != {expected.strftime("%Y%m")}:
            problems.append(f"{at}: dates of service fall outside the service month {expected:%Y-%m}")
    return problems


def check_batch(x12_files: dict[str, str], csv_rows: list[dict], service_months: dict[str, date]) -> list[str]:
    """All edits across a batch: each interchange, one claim per patient-month, CSV = 837P line for line."""
    problems: list[str] = []
    seen_claims: dict[str, str] = {}
    seen_patient_months: dict[tuple[str, str], str] = {}
    x12_lines: list[tuple] = []
    for name, text in x12_files.items():
        problems += check_interchange(text, name, service_months)
        for claim in parse_837p(text).claims:
            if claim.claim_id in seen_claims:
                problems.append(f"{name} claim {claim.claim_id}: claim id also used in {seen_claims[claim.claim_id]}")
            seen_claims[claim.claim_id] = name
            month = service_months.get(claim.claim_id)
            key = (claim.mbi, month.strftime("%Y%m") if month else min(claim.dates, default="")[:6])
            if key in seen_patient_months:
                problems.append(f"{name} claim {claim.claim_id}: the same patient-month is also claim "
                                f"{seen_patient_months[key]}; one claim per patient-month")
            seen_patient_months[key] = claim.claim_id
            x12_lines += [(claim.claim_id, ln.cpt_code, ln.units, _money(ln.charge)) for ln in claim.lines]
    csv_lines = [(r["claim_id"], r["cpt_code"], int(r["units"]), _money(_decimal(str(r["charge_amount"]))))
                 for r in csv_rows]
    csv_only, x12_only = Counter(csv_lines) - Counter(x12_lines), Counter(x12_lines) - Counter(csv_lines)
    for label, extra in (("claim_lines.csv", csv_only), ("the 837P files", x12_only)):
        for claim_id, cpt, units, charge in sorted(extra)[:5]:
            problems.append(f"claim {claim_id}: line {cpt} x{units} {charge} is only in {label}; "
                            "the CSV and the 837P must agree line for line")
    return problems


# -- pyx12 -----------------------------------------------------------------------------------------

_ELEMENT_REF = re.compile(r"^[A-Z][A-Z0-9]{1,2}\d{2}$")  # N402, DMG02: kept; values: redacted


def _redact(message: str) -> str:
    """pyx12 quotes offending values in parentheses; they may be PHI (a birth date, an MBI)."""
    return re.sub(r"\(([^)]*)\)", lambda m: m.group(0) if _ELEMENT_REF.match(m.group(1)) else "(...)", message)


@contextmanager
def _quiet_pyx12():
    """pyx12 logs every finding with the offending value; we report findings ourselves, redacted."""
    logger = logging.getLogger("pyx12")
    handler = logging.NullHandler()
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


def validate_with_pyx12(source: str | Path) -> list[str]:
    """pyx12's findings against its 837P 005010X222A1 map, one string each; [] = clean.

    `source` is a file path, or X12 text (a str starting with ISA)."""
    return [text for _, text in pyx12_findings(source)]


def pyx12_findings(source: str | Path) -> list[tuple[int | None, str]]:
    """validate_with_pyx12() with the segment each finding is on: (line, text), `line`
    counting segments from 1 (the ISA), None for a finding on no segment."""
    import pyx12.params
    import pyx12.x12n_document

    src = io.StringIO(source) if isinstance(source, str) and source.startswith("ISA") else str(source)
    report = io.StringIO()
    with _quiet_pyx12():
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(), src_file=src, fd_997=None, fd_html=None, fd_xmldoc=None, fd_json=report
        )
    problems: list[tuple[int | None, str]] = []

    def line_of(node: dict) -> int | None:
        try:
            return int(node.get("cur_line"))
        except (TypeError, ValueError):
            return None

    def collect(node: dict, level: str) -> None:
        for err in node.get("errors") or []:
            problems.append((line_of(node) if level not in ("ISA", "GS", "ST") else None,
                             f"{level} line {node.get('cur_line')}: {err.get('err_cde')} "
                             f"{_redact(err.get('err_str', ''))}"))

    text = report.getvalue()
    for isa in (json.loads(text) if text else {}).get("interchanges", []):
        collect(isa, "ISA")
        for gs in isa.get("groups", []):
            collect(gs, "GS")
            for st in gs.get("transactions", []):
                collect(st, "ST")
                for seg in st.get("segments", []):
                    collect(seg, seg.get("seg_id") or "segment")
                    for ele in seg.get("elements", []):
                        for err in ele.get("errors") or []:
                            problems.append((line_of(seg), f"{seg.get('seg_id')} line {seg.get('cur_line')} element "
                                             f"{ele.get('name')}: {err.get('err_cde')} "
                                             f"{_redact(err.get('err_str', ''))}"))
    if not ok and not problems:
        problems.append((None, "pyx12 rejected the file without a detailed finding"))
    return problems


def claim_of_segment(text: str) -> list[tuple[int, int, str]]:
    """(first segment, last segment, claim id) of every claim of an 837P as we write it: a
    claim is its subscriber HL (HL03 = 22) up to the next HL or the SE, segments counted
    from 1 (the ISA), as pyx12 counts lines."""
    spans: list[tuple[int, int, str]] = []
    start, claim_id = None, None
    for n, raw in enumerate(text.split("~"), start=1):
        el = raw.strip().split("*")
        if el[0] in ("HL", "SE") and start is not None:
            spans.append((start, n - 1, claim_id or ""))
            start, claim_id = None, None
        if el[0] == "HL" and len(el) > 3 and el[3] == "22":
            start = n
        elif el[0] == "CLM" and start is not None and len(el) > 1:
            claim_id = el[1]
    return spans


# -- the same edits, vectorised over every claim of a batch (transforms/billing/batch.py) ------------------

# X12 basic and extended character sets, minus our separators (* : ~ ^): what an element may hold.
X12_TEXT = r"^[A-Za-z0-9 !\"&'()+,\-./;?=%@\[\]_{}\\|<>#$]*$"
_CPT = r"^[0-9A-Z]{5}$"
_REQUIRED = {"x12_last_name": "NM103 subscriber last name", "x12_address_line1": "N301 subscriber address",
             "x12_city": "N401 subscriber city", "x12_state": "N402 subscriber state",
             "x12_zip": "N403 subscriber ZIP"}
_MAX_LENGTH = {"x12_last_name": ("NM103", 60), "x12_first_name": ("NM104", 35), "x12_address_line1": ("N301", 55),
               "x12_address_line2": ("N302", 55), "x12_city": ("N401", 30), "x12_rendering_last": ("NM103", 60),
               "x12_rendering_first": ("NM104", 35)}
_CHARSET = ("x12_last_name", "x12_first_name", "x12_address_line1", "x12_address_line2", "x12_city", "x12_state",
            "x12_zip", "x12_mbi", "x12_rendering_last", "x12_rendering_first", "claim_id", "billing_npi")


FINDINGS_SCHEMA = {"claim_id": pl.String, "edit": pl.String, "reason": pl.String}


def claim_line_findings(lines) -> "pl.DataFrame":
    """Every check_interchange() edit, plus element checks (character set, lengths, formats,
    codes pyx12 checks against its lists), on every claim of one chunk, vectorised over the
    element values the 837P is rendered from (x12_837p.prepare_claim_elements). One row per
    finding: claim_id, edit (a short name), reason (what is wrong and where it is fixed; a
    line's findings say which line). Never a value that is PHI (an MBI, a name, a birth date)."""
    col = pl.col
    lines = lines.with_columns(
        charge_dec=col("x12_charge").cast(pl.Decimal(18, 2), strict=False),
        total_dec=col("x12_total_charge").cast(pl.Decimal(18, 2), strict=False),
        base=col("cpt_code").replace_strict(ADD_ON_BASE, default=None, return_dtype=pl.String),
    )
    per_claim = lines.group_by("claim_ordinal", maintain_order=True).agg(
        col("billing_npi").first(), col("x12_mbi").first(), col("diagnoses").first(),
        col("x12_total_charge").first(), col("total_dec").first(), col("service_month").first(),
        *[col(c).first() for c in dict.fromkeys([*_CHARSET, *_REQUIRED, *_MAX_LENGTH])
          if c not in ("billing_npi", "x12_mbi")],
        col("x12_birth_date").first(), col("x12_sex").first(), col("birth_date").first(),
        line_sum=col("charge_dec").sum(), cpt_codes=col("cpt_code"),
        months=col("x12_date_of_service").str.slice(0, 6).unique(),
    )
    lines = lines.join(per_claim.select("claim_ordinal", "cpt_codes"), on="claim_ordinal", how="left")

    found: list = []

    def report(frame, edit: str, reason) -> None:
        """reason: a Polars expression over `frame` (or text) saying what is wrong."""
        reason = pl.lit(reason) if isinstance(reason, str) else reason
        found.append(frame.select(col("claim_id"), pl.lit(edit).alias("edit"), reason.alias("reason")))

    npis = per_claim["billing_npi"].fill_null("").unique().to_list()
    bad_npis = [n for n in npis if not npi_is_valid(n)]
    if bad_npis:
        bad = per_claim.filter(col("billing_npi").fill_null("").is_in(bad_npis))
        report(bad, "rendering_npi", pl.lit("rendering provider (2310B) NPI '") + col("billing_npi").fill_null("")
               + pl.lit("' fails the NPI check digit; correct the consent's billing_npi or the staff NPI"))
    report(per_claim.filter(~col("x12_mbi").str.contains(MBI.pattern)), "mbi",
           "subscriber MBI (2010BA NM109) is malformed; correct the patient's mbi in the EHR")
    report(per_claim.filter(col("total_dec").is_null() | (col("total_dec") != col("line_sum"))), "total_charge",
           pl.lit("CLM02 total ") + col("x12_total_charge").fill_null("") + pl.lit(
               " does not equal the sum of SV102 line charges ") + col("line_sum").cast(pl.String).fill_null("?"))
    report(per_claim.filter(col("diagnoses").list.len() == 0), "no_diagnosis", "no diagnosis in HI")
    report(per_claim.filter(col("diagnoses").list.len() > MAX_DIAGNOSES), "too_many_diagnoses",
           col("diagnoses").list.len().cast(pl.String) + pl.lit(f" diagnoses in HI; at most {MAX_DIAGNOSES}"))
    dx = (per_claim.select("claim_id", "diagnoses")
          .with_columns(position=pl.int_ranges(1, col("diagnoses").list.len() + 1))
          .explode("diagnoses", "position"))
    report(dx.filter(col("diagnoses").is_not_null() & ~col("diagnoses").str.contains(ICD10.pattern)), "icd10",
           pl.lit("HI position ") + col("position").cast(pl.String) + pl.lit(" code '") + col("diagnoses")
           + pl.lit("' is not an ICD-10-CM code without a dot; correct the condition's icd10_code in the EHR"))
    report(per_claim.filter(col("months").list.len() > 1), "month_span",
           pl.lit("dates of service span months ") + col("months").list.sort().list.join(", "))
    report(per_claim.filter((col("months").list.len() == 1)
                            & (col("months").list.first() != col("service_month").dt.strftime("%Y%m"))),
           "outside_month",
           pl.lit("dates of service fall outside the service month ") + col("service_month").dt.strftime("%Y-%m"))
    # element checks: what pyx12 would find on a claim it does not read (and some it does not check)
    for column, element in _REQUIRED.items():
        report(per_claim.filter(col(column) == ""), f"empty_{element.split()[0].lower()}",
               f"{element} ({element.split()[0]}) is empty; complete the patient's record in the EHR")
    for column, (element, max_len) in _MAX_LENGTH.items():
        report(per_claim.filter(col(column).str.len_chars() > max_len), f"too_long_{element.lower()}",
               f"{element} is longer than {max_len} characters")
    for column in _CHARSET:
        report(per_claim.filter(~col(column).fill_null("").str.contains(X12_TEXT)),
               f"charset_{column.removeprefix('x12_')}",
               f"{column.removeprefix('x12_')} holds a character outside the X12 character set or an X12 separator")
    report(per_claim.filter((col("x12_city") != "") & (col("x12_city").str.len_chars() < 2)), "city",
           "N401 subscriber city is shorter than 2 characters; correct the patient's city in the EHR")
    report(per_claim.filter((col("x12_state") != "") & ~col("x12_state").str.contains(r"^[A-Z]{2}$")), "state",
           "N402 subscriber state must be 2 letters")
    report(per_claim.filter(col("x12_state").str.contains(r"^[A-Z]{2}$")
                            & ~col("x12_state").is_in(list(pyx12_codes("states")))), "state",
           "N402 subscriber state is not a state code (USPS); correct the patient's state in the EHR")
    report(per_claim.filter((col("x12_zip") != "") & ~col("x12_zip").str.contains(r"^(\d{5}|\d{9})$")), "zip",
           "N403 subscriber ZIP must be 5 or 9 digits; correct the patient's zip in the EHR")
    report(per_claim.filter(~col("x12_birth_date").str.contains(
        r"^(19|20)\d{2}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$")), "birth_date",
        "DMG02 birth date is not a CCYYMMDD date from 1900 on; correct the patient's birth_date in the EHR")
    report(per_claim.filter(col("birth_date").is_not_null()
                            & (col("birth_date") > col("service_month").dt.month_end())), "birth_date_future",
           "DMG02 birth date is after the service month; correct the patient's birth_date in the EHR")
    report(per_claim.filter(~col("x12_sex").is_in(["M", "F", "U"])), "sex", "DMG03 sex must be M, F or U")

    at_line = pl.lit("line ") + col("lx").cast(pl.String) + pl.lit(": ")
    report(lines.filter((col("pointers").list.len() < 1) | (col("pointers").list.len() > MAX_POINTERS)), "pointers",
           at_line + pl.lit(f"SV107 needs 1 to {MAX_POINTERS} diagnosis pointers"))
    pointers = lines.select("claim_id", "lx", "pointers", n_dx=col("diagnoses").list.len()).explode("pointers")
    report(pointers.filter(col("pointers").is_not_null()
                           & ((col("pointers") < 1) | (col("pointers") > col("n_dx")))), "pointers",
           at_line + pl.lit("SV107 pointer ") + col("pointers").cast(pl.String) + pl.lit(" points at no diagnosis in HI"))
    report(lines.filter(col("base").is_not_null() & ~col("cpt_codes").list.contains(col("base"))), "add_on",
           at_line + pl.lit("add-on ") + col("cpt_code") + pl.lit(" billed without its base code ") + col("base"))
    report(lines.filter(~col("cpt_code").fill_null("").str.contains(_CPT)), "cpt",
           at_line + pl.lit("SV101 procedure code is not a 5-character CPT/HCPCS code"))
    report(lines.filter(col("charge_dec").is_null() | (col("charge_dec") < 0)), "charge",
           at_line + pl.lit("SV102 charge is not an amount"))
    report(lines.filter(col("units").is_null() | (col("units") < 1)), "units",
           at_line + pl.lit("SV104 units must be a whole number of at least 1"))
    report(lines.filter(col("x12_date_of_service").fill_null("") == ""), "date_of_service",
           at_line + pl.lit("no DTP*472 date of service"))
    return pl.concat(found) if found else pl.DataFrame(schema=FINDINGS_SCHEMA)


@functools.cache
def pyx12_codes(codeset: str) -> frozenset[str]:
    """A pyx12 external code list (its map/codes.xml: states, pos, ...), as pyx12 checks the 837P against it."""
    import xml.etree.ElementTree as ET
    from importlib.resources import files

    root = ET.fromstring(files("pyx12").joinpath("map", "codes.xml").read_bytes())
    for cs in root:
        if cs.findtext("id") == codeset:
            return frozenset(c.text for c in cs.iter("code") if c.text)
    raise KeyError(codeset)


def check_billing_provider(file_name: str, npi: str, zip_code: str) -> list[str]:
    """The 2010AA edits of check_interchange(), from the configuration the header is rendered from."""
    problems = []
    if not npi_is_valid(npi):
        problems.append(f"{file_name}: billing provider (2010AA) NPI {npi!r} fails the NPI check digit")
    if not re.fullmatch(r"\d{9}", zip_code or ""):
        problems.append(f"{file_name}: billing provider N4 ZIP must be ZIP+4 (9 digits); "
                        "set billing_providers[].address.zip in the practice configuration")
    return problems
