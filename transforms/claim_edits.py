"""Our own claim edits: what a payer rejects that pyx12's 837P map does not check.

They re-read the rendered X12 text (not the data it was rendered from), so
they prove the file says what we meant. Any finding aborts the batch before
anything is written or committed. Messages name the file, the claim and the
element, and never carry an MBI, a name or a birth date.
"""
from __future__ import annotations

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

from transforms.npi import npi_is_valid

# add-on code -> its base code (CPT: an add-on is never billed without its base)
ADD_ON_BASE = {"99439": "99490", "99489": "99487", "99437": "99491", "99425": "99424", "99427": "99426"}
ICD10 = re.compile(r"^[A-TV-Z][0-9][0-9A-Z]{0,5}$")  # ICD-10-CM, no dot
_MBI_ALPHA = "AC-HJKMNP-RT-Y"  # letters minus S, L, O, I, B, Z
MBI = re.compile(
    rf"^[1-9][{_MBI_ALPHA}][{_MBI_ALPHA}0-9][0-9][{_MBI_ALPHA}][{_MBI_ALPHA}0-9][0-9][{_MBI_ALPHA}]{{2}}[0-9]{{2}}$"
)
MAX_DIAGNOSES, MAX_POINTERS = 12, 4


class ClaimEditError(RuntimeError):
    """The batch failed an edit: nothing was written or committed. str() lists every finding."""

    def __init__(self, batch_id: str, problems: list[str]):
        self.problems = problems
        super().__init__(
            f"claim batch {batch_id} not written: {len(problems)} claim edit(s) failed; fix the data and rerun:\n"
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
    import pyx12.params
    import pyx12.x12n_document

    src = io.StringIO(source) if isinstance(source, str) and source.startswith("ISA") else str(source)
    report = io.StringIO()
    with _quiet_pyx12():
        ok = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(), src_file=src, fd_997=None, fd_html=None, fd_xmldoc=None, fd_json=report
        )
    problems: list[str] = []

    def collect(node: dict, level: str) -> None:
        for err in node.get("errors") or []:
            problems.append(f"{level} line {node.get('cur_line')}: {err.get('err_cde')} {_redact(err.get('err_str', ''))}")

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
                            problems.append(f"{seg.get('seg_id')} line {seg.get('cur_line')} element {ele.get('name')}: "
                                            f"{err.get('err_cde')} {_redact(err.get('err_str', ''))}")
    if not ok and not problems:
        problems.append("pyx12 rejected the file without a detailed finding")
    return problems
