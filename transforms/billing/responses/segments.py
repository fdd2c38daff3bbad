"""X12 text -> one Polars row per segment, without a Python loop over segments.

The delimiters come from the ISA segment, which is fixed-width (106
characters): the element separator is its 4th character, the repetition
separator ISA11, the component separator ISA16 and the segment terminator the
character after it. The text is split on the terminator and exploded, each
segment split on the element separator; loops are numbered by cumulative
counts of the segments that open them (`context`). An 835 for a 50,000-claim
month (about a million segments) is a handful of Polars expressions.

envelope_problems() checks what makes a file X12 at all: ISA/IEA, GS/GE and
ST/SE pairs, their control numbers and counts. A file failing them is not
read (the intake quarantines it).
"""
from __future__ import annotations

from dataclasses import dataclass

import polars as pl

ISA_LENGTH = 106
# Element separator positions of the fixed-width ISA (0-based), as the X12 envelope standard lays it out.
ISA_SEPARATORS = (3, 6, 17, 20, 31, 34, 50, 53, 69, 76, 81, 83, 89, 99, 101, 103)


class NotX12(ValueError):
    """The bytes are not an X12 interchange; str() says why, in one line, with no content quoted."""


@dataclass(frozen=True)
class Delimiters:
    element: str
    component: str
    repetition: str
    segment: str


@dataclass
class Interchange:
    """A parsed file: its delimiters, its ISA elements and one row per segment.

    segments: seg_no (0-based, file order), seg_id, elements (list: [seg_id, e01, e02, ...]),
    isa_no / gs_no / st_no (1-based counts of the envelopes the segment is in; 0 before the first)."""
    delimiters: Delimiters
    isa: list[str]
    segments: pl.DataFrame

    @property
    def control_number(self) -> str:
        return self.isa[13]

    @property
    def sender_id(self) -> str:
        return self.isa[6].strip()

    @property
    def usage_indicator(self) -> str:
        return self.isa[15]

    @property
    def date(self) -> str:  # YYMMDD
        return self.isa[9]

    def functional_ids(self) -> list[str]:
        """GS01 of every group (HC 837, FA 999, HN 277, HP 835)."""
        return self.segments.filter(pl.col("seg_id") == "GS")["elements"].list.get(1, null_on_oob=True).to_list()

    def versions(self) -> list[str]:
        """GS08 of every group (e.g. 005010X221A1)."""
        return self.segments.filter(pl.col("seg_id") == "GS")["elements"].list.get(8, null_on_oob=True).to_list()


def read_interchange(data: bytes) -> Interchange:
    """Split X12 bytes into segments; NotX12 when the bytes cannot be an interchange."""
    text = data.decode("latin-1").lstrip("\ufeff\r\n\t ")
    if not text.startswith("ISA"):
        raise NotX12("does not start with an ISA segment")
    if len(text) < ISA_LENGTH:
        raise NotX12("shorter than an ISA segment")
    element = text[3]
    if any(text[i] != element for i in ISA_SEPARATORS):
        raise NotX12("the ISA segment is not 106 characters with its separators in place")
    component, terminator = text[104], text[105]
    isa = text[:105].split(element)
    repetition = isa[11]
    if terminator.isalnum() or terminator in (element, component) or len({element, component, terminator}) < 3:
        raise NotX12("the ISA segment does not define distinct separators")
    lines = (pl.DataFrame({"raw": [text]})
             .select(pl.col("raw").str.split(terminator)).explode("raw")
             .select(pl.col("raw").str.strip_chars("\r\n\t "))
             .filter(pl.col("raw") != ""))
    segments = (lines.with_row_index("seg_no")
                .with_columns(elements=pl.col("raw").str.split(element))
                .with_columns(seg_id=pl.col("elements").list.first())
                .with_columns(isa_no=(pl.col("seg_id") == "ISA").cum_sum().cast(pl.Int32),
                              gs_no=(pl.col("seg_id") == "GS").cum_sum().cast(pl.Int32),
                              st_no=(pl.col("seg_id") == "ST").cum_sum().cast(pl.Int32))
                .select("seg_no", "seg_id", "elements", "isa_no", "gs_no", "st_no"))
    return Interchange(Delimiters(element, component, repetition, terminator), isa, segments)


def element(i: int) -> pl.Expr:
    """Element i of the segment (ISA01 = 1), null when absent, '' kept as null."""
    value = pl.col("elements").list.get(i, null_on_oob=True)
    return pl.when(value == "").then(None).otherwise(value)


def component(expr: pl.Expr, separator: str, i: int) -> pl.Expr:
    """Component i (1-based) of a composite element."""
    value = expr.str.split(separator).list.get(i - 1, null_on_oob=True)
    return pl.when(value == "").then(None).otherwise(value)


def amount(expr: pl.Expr) -> pl.Expr:
    """An X12 R (decimal) element as an exact decimal of cents; null when empty or not a number."""
    return expr.str.strip_chars().cast(pl.Decimal(18, 2), strict=False)


def x12_date(expr: pl.Expr) -> pl.Expr:
    """A CCYYMMDD element as a date (null when not one)."""
    return expr.str.strptime(pl.Date, "%Y%m%d", strict=False)


def context(opens: pl.Expr, value: pl.Expr, closes: pl.Expr) -> pl.Expr:
    """For every segment, `value` of the last segment that `opens` a loop, unless a segment that `closes`
    it came in between (then null): which claim, line or transaction set a segment belongs to."""
    marked = pl.when(opens).then(value.cast(pl.Int64)).when(closes).then(pl.lit(-1, pl.Int64)).otherwise(None)
    filled = marked.forward_fill()
    return pl.when(filled < 0).then(None).otherwise(filled)


def envelope_problems(ic: Interchange) -> list[str]:
    """The interchange's envelopes as the X12 control structure requires them: every ISA closed by an IEA
    with its control number and group count, every GS by a GE with its number and transaction count,
    every ST by an SE with its number and segment count. One line each, at most 10."""
    s = ic.segments
    problems: list[str] = []
    ids = s["seg_id"]
    if ids.is_in(["ISA", "IEA", "GS", "GE", "ST", "SE"]).sum() == 0:
        return ["no envelope segments"]
    pairs = (("ISA", "IEA", "isa_no"), ("GS", "GE", "gs_no"), ("ST", "SE", "st_no"))
    for head, tail, key in pairs:
        n_head, n_tail = int((ids == head).sum()), int((ids == tail).sum())
        if n_head != n_tail:
            problems.append(f"{n_head} {head} segments but {n_tail} {tail}: the file is cut short or damaged")
    if problems:
        return problems
    # SE01 counts ST to SE; SE02 = ST02; GE01 counts ST; GE02 = GS06; IEA01 counts GS; IEA02 = ISA13
    st = (s.filter(pl.col("st_no") > 0)
          .group_by("st_no").agg(
              st02=pl.col("elements").filter(pl.col("seg_id") == "ST").first().list.get(2, null_on_oob=True),
              se01=pl.col("elements").filter(pl.col("seg_id") == "SE").first().list.get(1, null_on_oob=True),
              se02=pl.col("elements").filter(pl.col("seg_id") == "SE").first().list.get(2, null_on_oob=True)))
    # segments after SE of one set and before the next ST belong to no set: count only ST .. SE
    within = (s.with_columns(in_set=context(pl.col("seg_id") == "ST", pl.col("st_no"),
                                            pl.col("seg_id").shift(1) == "SE"))
              .filter(pl.col("in_set").is_not_null())
              .group_by("in_set").agg(n=pl.len()).rename({"in_set": "st_no"}))
    st = st.join(within.with_columns(pl.col("st_no").cast(pl.Int32)), on="st_no", how="left")
    for r in st.sort("st_no").iter_rows(named=True):  # one row per transaction set, not per segment
        if str(r["se01"]) != str(r["n"]):
            problems.append(f"transaction set {r['st02']}: SE01 says {r['se01']} segments, it has {r['n']}")
        if r["se02"] != r["st02"]:
            problems.append(f"transaction set {r['st02']}: SE02 {r['se02']} does not repeat ST02")
    groups = (s.filter(pl.col("gs_no") > 0).group_by("gs_no").agg(
        sets=(pl.col("seg_id") == "ST").sum(),
        gs06=pl.col("elements").filter(pl.col("seg_id") == "GS").first().list.get(6, null_on_oob=True),
        ge01=pl.col("elements").filter(pl.col("seg_id") == "GE").first().list.get(1, null_on_oob=True),
        ge02=pl.col("elements").filter(pl.col("seg_id") == "GE").first().list.get(2, null_on_oob=True)))
    for r in groups.sort("gs_no").iter_rows(named=True):
        if str(r["ge01"]) != str(r["sets"]):
            problems.append(f"group {r['gs06']}: GE01 says {r['ge01']} transaction sets, it has {r['sets']}")
        if r["ge02"] != r["gs06"]:
            problems.append(f"group {r['gs06']}: GE02 {r['ge02']} does not repeat GS06")
    isas = (s.group_by("isa_no").agg(
        groups=(pl.col("seg_id") == "GS").sum(),
        isa13=pl.col("elements").filter(pl.col("seg_id") == "ISA").first().list.get(13, null_on_oob=True),
        iea01=pl.col("elements").filter(pl.col("seg_id") == "IEA").first().list.get(1, null_on_oob=True),
        iea02=pl.col("elements").filter(pl.col("seg_id") == "IEA").first().list.get(2, null_on_oob=True)))
    for r in isas.sort("isa_no").iter_rows(named=True):
        if str(r["iea01"]) != str(r["groups"]):
            problems.append(f"interchange {r['isa13']}: IEA01 says {r['iea01']} groups, it has {r['groups']}")
        if r["iea02"] != r["isa13"]:
            problems.append(f"interchange {r['isa13']}: IEA02 {r['iea02']} does not repeat ISA13")
    if ids.head(1).item() != "ISA" or ids.tail(1).item() != "IEA":
        problems.append("the file does not begin with ISA and end with IEA")
    return problems[:10]
