"""ANSI X12 837P (005010X222A1) writer: one interchange per billing provider.

Pure formatting: claims in, text out. render_interchange() writes one
interchange from Claim objects (the reference); interchange_header(),
claim_blocks() and interchange_trailer() write the same text with the claim
segments rendered by Polars over a frame of claim lines, so the claims stage
can stream a batch of any size chunk by chunk.

Everything the claim says has already been decided by the rules stage; this
module only lays it out the way the implementation guide wants (and our own
edits in claim_edits.py re-read the text, or the element values, to prove it
did).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import polars as pl

ELEMENT, COMPONENT, REPETITION, SEGMENT = "*", ":", "^", "~"
VERSION = "005010X222A1"


@dataclass(frozen=True)
class Subscriber:
    """The patient, who is the Medicare subscriber (SBR02 = 18, self)."""
    mbi: str
    last_name: str
    first_name: str
    address_line1: str
    address_line2: str | None
    city: str
    state: str
    zip: str
    birth_date: date
    sex: str


@dataclass(frozen=True)
class ClaimLine:
    cpt_code: str
    units: int
    charge: Decimal
    date_of_service: date
    pointers: tuple[int, ...]  # 1-based positions in the claim's HI


@dataclass(frozen=True)
class Claim:
    claim_id: str
    subscriber: Subscriber
    rendering_npi: str
    rendering_last_name: str
    rendering_first_name: str
    diagnoses: tuple[str, ...]  # ICD-10, no dots, principal first, at most 12
    lines: tuple[ClaimLine, ...]
    place_of_service: str
    rendering_taxonomy: str | None = None

    @property
    def total_charge(self) -> Decimal:
        return sum((line.charge for line in self.lines), Decimal("0"))


@dataclass(frozen=True)
class BillingProviderInfo:
    npi: str
    name: str
    tin: str
    taxonomy: str
    address_line1: str
    address_line2: str | None
    city: str
    state: str
    zip: str  # ZIP+4, 9 digits


@dataclass(frozen=True)
class Envelope:
    interchange_control_number: int  # ISA13
    group_control_number: int  # GS06
    transaction_set_control_number: int  # ST02
    created_at: datetime  # practice-local
    reference: str  # BHT03, the batch id
    submitter_id: str
    submitter_name: str
    submitter_contact: str
    submitter_phone: str
    receiver_id: str
    receiver_name: str
    payer_name: str
    payer_id: str
    usage_indicator: str = "T"


_DELIMITERS = re.compile(r"[*:~^\r\n]")


def clean(value: object, max_len: int | None = None) -> str:
    """Text for one element: ASCII, upper case, no delimiters, no padding (X12 basic set)."""
    text = unicodedata.normalize("NFKD", str(value or "")).encode("ascii", "ignore").decode()
    text = " ".join(_DELIMITERS.sub(" ", text).split()).upper()
    return text[:max_len].rstrip() if max_len else text


def amount(value: Decimal) -> str:
    """X12 R type: no trailing zeros after the point (66.10 -> 66.1, 60.00 -> 60)."""
    text = format(Decimal(value).quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _segment(*elements: object) -> str:
    parts = [str(e) for e in elements]
    while parts and parts[-1] == "":  # trailing empty elements are not sent
        parts.pop()
    return ELEMENT.join(parts) + SEGMENT


_CREDENTIALS = re.compile(r"(?:\s*,?\s*[A-Z][A-Z.\-]*)+")  # ", MD", ", PA-C", " M.D."


def split_name(full_name: str) -> tuple[str, str]:
    """('LAST', 'FIRST') from 'Dana Cruz', 'Dana Cruz, MD' or 'Cruz, Dana'."""
    name = full_name.strip()
    if "," in name:
        head, tail = name.split(",", 1)
        if _CREDENTIALS.fullmatch(tail):  # a credential, not a first name
            name = head
        else:
            return clean(head, 60), clean(tail, 35)
    words = name.split()
    if len(words) <= 1:
        return clean(name, 60), ""
    return clean(words[-1], 60), clean(" ".join(words[:-1]), 35)


def render_interchange(env: Envelope, provider: BillingProviderInfo, claims: list[Claim]) -> str:
    """One ISA/GS/ST envelope holding every claim of one billing provider (the reference renderer:
    the claims stage streams the same text with interchange_header + claim_blocks + interchange_trailer)."""
    head, head_segments = interchange_header(env, provider)
    body = [seg for hl, claim in enumerate(claims, start=2) for seg in _claim_segments(hl, claim, env)]
    return head + "".join(body) + interchange_trailer(env, head_segments + len(body))


# Segments from ST to the billing provider's REF: what interchange_header puts in the transaction set.
HEADER_TX_SEGMENTS = 11


def interchange_header(env: Envelope, provider: BillingProviderInfo) -> tuple[str, int]:
    """ISA, GS and the transaction set up to the billing provider loop (2000A/2010AA); returns the text
    and how many of its segments count in SE01 (ST onwards)."""
    ymd, hm = env.created_at.strftime("%Y%m%d"), env.created_at.strftime("%H%M")
    isa13 = f"{env.interchange_control_number:09d}"
    st02 = f"{env.transaction_set_control_number:04d}"
    isa = _segment(
        "ISA", "00", " " * 10, "00", " " * 10,
        "ZZ", clean(env.submitter_id, 15).ljust(15), "ZZ", clean(env.receiver_id, 15).ljust(15),
        env.created_at.strftime("%y%m%d"), hm, REPETITION, "00501", isa13, "0", env.usage_indicator, COMPONENT,
    )
    gs = _segment("GS", "HC", clean(env.submitter_id, 15), clean(env.receiver_id, 15), ymd, hm,
                  env.group_control_number, "X", VERSION)
    tx: list[str] = [
        _segment("ST", "837", st02, VERSION),
        _segment("BHT", "0019", "00", clean(env.reference, 50), ymd, hm, "CH"),
        # 1000A submitter, 1000B receiver
        _segment("NM1", "41", "2", clean(env.submitter_name, 60), "", "", "", "", "46", clean(env.submitter_id, 80)),
        _segment("PER", "IC", clean(env.submitter_contact, 60), "TE", re.sub(r"\D", "", env.submitter_phone)),
        _segment("NM1", "40", "2", clean(env.receiver_name, 60), "", "", "", "", "46", clean(env.receiver_id, 80)),
        # 2000A billing provider (the practice's group NPI)
        _segment("HL", "1", "", "20", "1"),
        _segment("PRV", "BI", "PXC", clean(provider.taxonomy)),
        _segment("NM1", "85", "2", clean(provider.name, 60), "", "", "", "", "XX", provider.npi),
        _segment("N3", clean(provider.address_line1, 55), clean(provider.address_line2, 55)),
        _segment("N4", clean(provider.city, 30), clean(provider.state, 2), provider.zip),
        _segment("REF", "EI", provider.tin),
    ]
    assert len(tx) == HEADER_TX_SEGMENTS
    return isa + gs + "".join(tx), len(tx)


def interchange_trailer(env: Envelope, tx_segments: int) -> str:
    """SE (counting itself), GE, IEA; `tx_segments` counts ST up to the last claim segment."""
    return (_segment("SE", tx_segments + 1, f"{env.transaction_set_control_number:04d}")
            + _segment("GE", "1", env.group_control_number)
            + _segment("IEA", "1", f"{env.interchange_control_number:09d}"))


# -- the same claim segments, vectorised (Polars), for the claims stage ---------------------------------

def clean_expr(column: str, max_len: int | None = None):
    """clean() as a Polars expression: NFKD, ASCII only, delimiters and runs of whitespace to one space,
    upper case, cut to max_len. Same text as clean() for every value."""
    expr = (pl.col(column).cast(pl.String).fill_null("").str.normalize("NFKD")
            .str.replace_all(r"[^\x00-\x7F]", "")
            .str.replace_all(r"[*:~^\r\n]", " ")
            .str.replace_all(r"[\s\x1c-\x1f]+", " ")  # str.split() whitespace
            .str.strip_chars(" ")
            .str.to_uppercase())
    return expr.str.slice(0, max_len).str.strip_chars_end(" ") if max_len else expr


def _segment_expr(*elements):
    """_segment() as a Polars expression; trailing empty elements are not sent."""
    parts = [e if isinstance(e, pl.Expr) else pl.lit(str(e)) for e in elements]
    return pl.concat_str(parts, separator=ELEMENT).str.strip_chars_end(ELEMENT) + pl.lit(SEGMENT)


# Segments per claim: HL SBR NM1 N3 N4 DMG NM1 CLM HI NM1, then LX SV1 DTP per line.
CLAIM_SEGMENTS, LINE_SEGMENTS = 10, 3


def prepare_claim_elements(lines):
    """The element values of each claim line, as _claim_segments() writes them. `lines` is one row per
    claim line (claim columns repeated), in claim order then line order; see transforms/billing/batch.py for the
    columns. Adds the x12_* columns the segments and our vectorised edits read."""
    names = {n: split_name(n) for n in lines["rendering_name"].fill_null("").unique().to_list()}
    return lines.with_columns(
        x12_last_name=clean_expr("last_name", 60),
        x12_first_name=clean_expr("first_name", 35),
        x12_address_line1=clean_expr("address_line1", 55),
        x12_address_line2=clean_expr("address_line2", 55),
        x12_city=clean_expr("city", 30),
        x12_state=clean_expr("state", 2),
        x12_zip=pl.col("zip").fill_null("").str.replace_all(r"\D", ""),
        x12_mbi=pl.col("mbi").fill_null(""),
        x12_birth_date=pl.col("birth_date").fill_null(date(1900, 1, 1)).dt.strftime("%Y%m%d"),
        x12_sex=pl.when(pl.col("sex").is_in(["M", "F"])).then(pl.col("sex")).otherwise(pl.lit("U")),
        x12_rendering_last=pl.col("rendering_name").fill_null("").replace_strict(
            {k: v[0] for k, v in names.items()}, return_dtype=pl.String),
        x12_rendering_first=pl.col("rendering_name").fill_null("").replace_strict(
            {k: v[1] for k, v in names.items()}, return_dtype=pl.String),
        x12_date_of_service=pl.col("date_of_service").dt.strftime("%Y%m%d"),
    )


def claim_blocks(lines, payer_name: str, payer_id: str, place_of_service: str):
    """Every claim's segments (2000B to its last 2400 loop) as one string: a frame with claim_ordinal,
    billing_provider_npi, block and segments, one row per claim in claim order. `lines` comes from
    prepare_claim_elements(); hl is the claim's HL01."""
    col = pl.col
    line_text = lines.select(
        "claim_ordinal",
        text=pl.concat_str([
            _segment_expr("LX", col("lx").cast(pl.String)),
            _segment_expr("SV1", pl.lit(f"HC{COMPONENT}") + col("cpt_code"), col("x12_charge"), "UN",
                          col("units").cast(pl.String).fill_null(""), "", "", col("x12_pointers")),
            _segment_expr("DTP", "472", "D8", col("x12_date_of_service").fill_null("")),
        ]),
    ).group_by("claim_ordinal", maintain_order=True).agg(text=col("text").str.join(""), n_lines=pl.len())
    claims = lines.unique("claim_ordinal", keep="first", maintain_order=True).join(
        line_text, on="claim_ordinal", how="left", maintain_order="left")
    payer = _segment("NM1", "PR", "2", clean(payer_name, 60), "", "", "", "", "PI", clean(payer_id, 80))
    clm05 = COMPONENT.join((place_of_service, "B", "1"))
    return claims.select(
        "claim_ordinal", "billing_provider_npi",
        block=pl.concat_str([
            _segment_expr("HL", col("hl").cast(pl.String), "1", "22", "0"),
            pl.lit(_segment("SBR", "P", "18", "", "", "", "", "", "", "MB")),
            _segment_expr("NM1", "IL", "1", col("x12_last_name"), col("x12_first_name"), "", "", "", "MI",
                          col("x12_mbi")),
            _segment_expr("N3", col("x12_address_line1"), col("x12_address_line2")),
            _segment_expr("N4", col("x12_city"), col("x12_state"), col("x12_zip")),
            _segment_expr("DMG", "D8", col("x12_birth_date"), col("x12_sex")),
            pl.lit(payer),
            _segment_expr("CLM", col("claim_id"), col("x12_total_charge"), "", "", clm05, "Y", "A", "Y", "Y"),
            _segment_expr("HI", col("x12_hi")),
            _segment_expr("NM1", "82", "1", col("x12_rendering_last"), col("x12_rendering_first"), "", "", "",
                          "XX", col("billing_npi")),
            col("text"),
        ]),
        segments=pl.lit(CLAIM_SEGMENTS) + pl.lit(LINE_SEGMENTS) * col("n_lines"),
    )


def _claim_segments(hl: int, claim: Claim, env: Envelope) -> list[str]:
    s = claim.subscriber
    segs = [
        # 2000B: the patient is the subscriber, so there is no 2000C loop
        _segment("HL", hl, "1", "22", "0"),
        _segment("SBR", "P", "18", "", "", "", "", "", "", "MB"),
        _segment("NM1", "IL", "1", clean(s.last_name, 60), clean(s.first_name, 35), "", "", "", "MI", s.mbi),
        _segment("N3", clean(s.address_line1, 55), clean(s.address_line2, 55)),
        _segment("N4", clean(s.city, 30), clean(s.state, 2), re.sub(r"\D", "", s.zip)),
        _segment("DMG", "D8", s.birth_date.strftime("%Y%m%d"), s.sex if s.sex in ("M", "F") else "U"),
        _segment("NM1", "PR", "2", clean(env.payer_name, 60), "", "", "", "", "PI", clean(env.payer_id, 80)),
        # 2300: CLM05 = place of service : B (professional) : 1 (original claim)
        _segment("CLM", claim.claim_id, amount(claim.total_charge), "", "",
                 COMPONENT.join((claim.place_of_service, "B", "1")), "Y", "A", "Y", "Y"),
        _segment("HI", *(f"{'ABK' if i == 0 else 'ABF'}{COMPONENT}{code}" for i, code in enumerate(claim.diagnoses))),
        # 2310B: the billing practitioner who directs the care; clinical staff never appear
        _segment("NM1", "82", "1", claim.rendering_last_name, claim.rendering_first_name, "", "", "", "XX",
                 claim.rendering_npi),
    ]
    if claim.rendering_taxonomy:
        segs.append(_segment("PRV", "PE", "PXC", clean(claim.rendering_taxonomy)))
    for lx, line in enumerate(claim.lines, start=1):
        segs += [
            _segment("LX", lx),
            _segment("SV1", f"HC{COMPONENT}{line.cpt_code}", amount(line.charge), "UN", line.units, "", "",
                     COMPONENT.join(str(p) for p in line.pointers)),
            _segment("DTP", "472", "D8", line.date_of_service.strftime("%Y%m%d")),
        ]
    return segs
