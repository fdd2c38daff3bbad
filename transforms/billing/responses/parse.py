"""What each response says, as Polars frames: TA1, 999 (005010X231A1), 277CA
(005010X214), 835 (005010X221A1). Pure: an Interchange in, frames out, no
warehouse. Every frame is built with expressions over the segment rows
(segments.py), loops found by `context`, repeated element groups (CAS
triplets, PLB pairs, STC composites) exploded, never a Python loop per segment.

No PHI is kept: the patient's name and member id (835 NM1*QC, 277CA
NM1*QC) are never selected.
"""
from __future__ import annotations

import polars as pl

from transforms.billing.responses.segments import Interchange, amount, component, context, element, x12_date

col = pl.col
seg = col("seg_id")


def _int(expr: pl.Expr) -> pl.Expr:
    return expr.str.strip_chars().cast(pl.Int64, strict=False)


def _codes(*exprs: pl.Expr, prefix: str) -> pl.Expr:
    """The non-empty values among exprs as a list of 'prefix:value' codes."""
    return (pl.concat_list([pl.when(e.is_not_null()).then(pl.lit(prefix + ":") + e) for e in exprs])
            .list.drop_nulls())


# -- TA1 ---------------------------------------------------------------------------------------------

def parse_ta1(ic: Interchange) -> pl.DataFrame:
    """One row per TA1: the interchange it answers (TA101), its date and time, A/E/R and the note code."""
    return ic.segments.filter(seg == "TA1").select(
        ordinal=pl.int_range(1, pl.len() + 1),
        interchange_control_number=_int(element(1)),
        interchange_date=element(2), interchange_time=element(3),
        code=element(4), note=element(5))


# -- 999 ---------------------------------------------------------------------------------------------

IK5_REJECTED = ("R", "M", "W", "X")  # R rejected, M authentication failed, W assurance failed, X decryption


def parse_999(ic: Interchange) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(groups, sets). groups: one row per functional group acknowledged (AK1 .. AK9): its GS06, AK901
    and the AK905-AK909 codes. sets: one row per transaction set response (AK2 .. IK5): its group, ST02,
    IK501 and the IK3/IK4/IK5 error codes as IK304:n, IK403:n, IK502:n."""
    s = ic.segments.with_columns(
        ak2=context(seg == "AK2", col("seg_no"), seg.is_in(["AK9", "SE"])))
    groups = (s.filter(seg == "AK1").select("st_no", functional_id=element(1), group_control_number=_int(element(2)),
                                           version=element(3))
              .join(s.filter(seg == "AK9").select(
                  "st_no", code=element(1), sets_included=_int(element(2)), sets_received=_int(element(3)),
                  sets_accepted=_int(element(4)),
                  reason_codes=_codes(element(5), element(6), element(7), element(8), element(9), prefix="AK905")),
                  on="st_no", how="left"))
    groups = groups.with_columns(ordinal=pl.int_range(1, pl.len() + 1))
    in_set = s.filter(col("ak2").is_not_null())
    errors = (in_set.filter(seg.is_in(["IK3", "IK4"]))
              .select("ak2", code=pl.when(seg == "IK3").then(pl.lit("IK304:") + element(4))
                      .otherwise(pl.lit("IK403:") + element(3)))
              .drop_nulls("code")
              .group_by("ak2", maintain_order=True).agg(segment_errors=col("code")))
    sets = (in_set.filter(seg == "AK2").select("ak2", "st_no", set_id=element(1), set_control_number=element(2))
            .join(in_set.filter(seg == "IK5").select(
                "ak2", code=element(1),
                ik5_codes=_codes(element(2), element(3), element(4), element(5), element(6), prefix="IK502")),
                on="ak2", how="left")
            .join(errors, on="ak2", how="left")
            .join(groups.select("st_no", "group_control_number"), on="st_no", how="left")
            .with_columns(reason_codes=pl.concat_list([
                pl.concat_list([pl.lit("IK501:") + col("code").fill_null("?")]), col("ik5_codes").fill_null([]),
                col("segment_errors").fill_null([])]))
            .select("st_no", "group_control_number", "set_id", "set_control_number", "code", "reason_codes"))
    return groups, sets


# -- 277CA -------------------------------------------------------------------------------------------

CATEGORY_REJECTED = ("A3", "A4", "A6", "A7", "A8")   # returned unprocessable, not found, rejected ...
CATEGORY_ACCEPTED = ("A0", "A1", "A2", "A5")          # forwarded, received, accepted into adjudication, split


def _stc(s: pl.DataFrame, key: str, separator: str) -> pl.DataFrame:
    """STC segments grouped by `key`: every status composite (STC01, STC10, STC11) as STC:category:status
    [:entity], the action codes (STC03: WQ accepted, U rejected), the charge (STC04)."""
    composites = [element(1), element(10), element(11)]
    return (s.filter((seg == "STC") & col(key).is_not_null())
            .select(key, action=element(3), charge=amount(element(4)),
                    codes=pl.concat_list([pl.when(c.is_not_null()).then(pl.lit("STC:") + c.str.replace_all(
                        separator, ":", literal=True)) for c in composites]).list.drop_nulls(),
                    categories=pl.concat_list([component(c, separator, 1) for c in composites]).list.drop_nulls())
            .group_by(key, maintain_order=True)
            .agg(actions=col("action").drop_nulls(), charge=col("charge").drop_nulls().first(),
                 reason_codes=col("codes").list.explode(keep_nulls=False, empty_as_null=False), categories=col("categories").list.explode(keep_nulls=False, empty_as_null=False)))


def _verdict() -> pl.Expr:
    """rejected / accepted / None from the STC action codes and categories of one loop."""
    rejected = (col("actions").list.contains("U")
                | col("categories").list.eval(pl.element().is_in(CATEGORY_REJECTED)).list.any())
    accepted = (col("actions").list.contains("WQ")
                | col("categories").list.eval(pl.element().is_in(CATEGORY_ACCEPTED)).list.any())
    return pl.when(rejected).then(pl.lit("rejected")).when(accepted).then(pl.lit("accepted")).otherwise(None)


def parse_277ca(ic: Interchange) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(claims, levels). claims: one row per 2200D claim status (TRN02 = our CLM01), its verdict, STC
    codes, charge (STC04), payer claim control number (REF*1K). levels: one row per 2200B (information
    receiver, TRN02 = our BHT03, the batch id) and 2200C (billing provider, NM109 = its NPI) status, with
    whether claims are listed under it (HL04 = 1)."""
    sep = ic.delimiters.component
    hl = ic.segments.filter(seg == "HL").select("seg_no", hl_id=element(1), parent_id=element(2),
                                               level=element(3), has_children=element(4))
    s = ic.segments.join(hl.select("seg_no", "level"), on="seg_no", how="left").with_columns(
        hl_seg=context(seg == "HL", col("seg_no"), seg == "SE"))
    s = s.drop("level").join(hl.select(hl_seg="seg_no", level="level", hl_id="hl_id", parent_id="parent_id",
                                       has_children="has_children").with_columns(col("hl_seg").cast(pl.Int64)),
                             on="hl_seg", how="left")
    s = s.with_columns(
        claim=pl.when(col("level") == "PT").then(
            context((seg == "TRN") & (col("level") == "PT"), col("seg_no"), seg.is_in(["HL", "SE"]))),
        line=context(seg == "SVC", col("seg_no"), seg.is_in(["TRN", "HL", "SE"])),
        level_loop=pl.when(col("level").is_in(["21", "19"])).then(col("hl_seg")))
    claim_rows = s.filter(col("claim").is_not_null() & col("line").is_null())
    claims = (claim_rows.filter(seg == "TRN").select("claim", "st_no", claim_id=element(2))
              .join(_stc(claim_rows, "claim", sep), on="claim", how="left")
              .join(claim_rows.filter((seg == "REF") & (element(1) == "1K"))
                    .select("claim", payer_claim_control_number=element(2)).unique("claim", keep="first"),
                    on="claim", how="left")
              .with_columns(actions=col("actions").fill_null([]), categories=col("categories").fill_null([]),
                            reason_codes=col("reason_codes").fill_null([]))
              .with_columns(verdict=_verdict())
              .with_columns(ordinal=pl.int_range(1, pl.len() + 1))
              .select("ordinal", "st_no", "claim_id", "verdict", "reason_codes", "charge",
                      "payer_claim_control_number"))
    level_rows = s.filter(col("level_loop").is_not_null())
    npi = (level_rows.filter((seg == "NM1") & (element(1) == "85"))
           .select("level_loop", billing_provider_npi=element(9)).unique("level_loop", keep="first"))
    trn = (level_rows.filter(seg == "TRN").select("level_loop", trace=element(2)).unique("level_loop", keep="first"))
    levels = (level_rows.filter(seg == "HL").select("level_loop", "st_no", "hl_id", "parent_id", "level",
                                                    "has_children")
              .join(trn, on="level_loop", how="left").join(npi, on="level_loop", how="left")
              .join(_stc(level_rows, "level_loop", sep), on="level_loop", how="left")
              .with_columns(actions=col("actions").fill_null([]), categories=col("categories").fill_null([]),
                            reason_codes=col("reason_codes").fill_null([]))
              .with_columns(verdict=_verdict()))
    # a provider loop belongs to the batch its receiver loop (HL02 = the receiver's HL01) traces
    receivers = levels.filter(col("level") == "21").select("st_no", parent_id="hl_id", batch_id="trace")
    levels = levels.join(receivers, on=["st_no", "parent_id"], how="left").with_columns(
        batch_id=pl.when(col("level") == "21").then(col("trace")).otherwise(col("batch_id")),
        level=pl.when(col("level") == "21").then(pl.lit("batch")).otherwise(pl.lit("billing_provider")))
    levels = levels.with_columns(ordinal=pl.int_range(1, pl.len() + 1)).select(
        "ordinal", "st_no", "level", "batch_id", "billing_provider_npi", "has_children", "verdict",
        "actions", "reason_codes")
    return claims, levels


# -- 835 ---------------------------------------------------------------------------------------------

CLAIM_LOOP_ENDS = ("LX", "TS3", "TS2", "PLB", "SE", "ST")


def parse_835(ic: Interchange) -> dict[str, pl.DataFrame]:
    """The remittance as frames: transactions (one per ST: BPR, TRN, payer, payee), claims (CLP),
    lines (SVC), adjustments (CAS triplets, line_ordinal 0 at the claim) and provider_adjustments
    (PLB pairs), each with transaction_ordinal (= st_no) and claim_ordinal / line_ordinal keys."""
    sep = ic.delimiters.component
    s = ic.segments.with_columns(svc_cum=(seg == "SVC").cum_sum().cast(pl.Int64),
                                 clp_cum=(seg == "CLP").cum_sum().cast(pl.Int64))
    s = s.with_columns(claim_ordinal=context(seg == "CLP", col("clp_cum"), seg.is_in(CLAIM_LOOP_ENDS)),
                       claim_svc_start=context(seg == "CLP", col("svc_cum"), seg.is_in(CLAIM_LOOP_ENDS)))
    s = s.with_columns(line_ordinal=pl.when(col("claim_ordinal").is_not_null())
                       .then(col("svc_cum") - col("claim_svc_start")).otherwise(None))
    header = s.filter(col("claim_ordinal").is_null() & (col("st_no") > 0))
    n1 = context(seg == "N1", col("seg_no"), seg.is_in(["LX", "CLP", "SE"]))
    header = header.with_columns(n1_seg=n1).join(
        header.filter(seg == "N1").select(n1_seg=col("seg_no").cast(pl.Int64), n1_code=element(1)),
        on="n1_seg", how="left")

    def first_of(df: pl.DataFrame, where: pl.Expr, **columns: pl.Expr) -> pl.DataFrame:
        return df.filter(where).select("st_no", **columns).unique("st_no", keep="first")

    transactions = (header.filter(seg == "ST").select("st_no", transaction_set_control_number=element(2))
                    .join(first_of(header, seg == "BPR", handling_code=element(1), total_payment=amount(element(2)),
                                   credit_debit=element(3), payment_method=element(4),
                                   payment_date=x12_date(element(16))), on="st_no", how="left")
                    .join(first_of(header, seg == "TRN", trace_number=element(2), payer_identifier=element(3)),
                          on="st_no", how="left")
                    .join(first_of(header, (seg == "DTM") & (element(1) == "405"), production_date=x12_date(element(2))),
                          on="st_no", how="left")
                    .join(first_of(header, (seg == "N1") & (element(1) == "PR"), payer_name=element(2),
                                   payer_n1_id=element(4)), on="st_no", how="left")
                    .join(first_of(header, (seg == "REF") & (element(1) == "2U") & (col("n1_code") == "PR"),
                                   payer_ref_id=element(2)), on="st_no", how="left")
                    .join(first_of(header, (seg == "N1") & (element(1) == "PE"), payee_name=element(2),
                                   payee_id=element(4)), on="st_no", how="left")
                    .with_columns(payer_id=pl.coalesce("payer_n1_id", "payer_ref_id"))
                    .drop("payer_n1_id", "payer_ref_id")
                    .rename({"st_no": "transaction_ordinal"}))

    in_claims = s.filter(col("claim_ordinal").is_not_null())
    claims = in_claims.filter(seg == "CLP").select(
        "claim_ordinal", transaction_ordinal="st_no",
        patient_control_number=element(1), status_code=element(2), charge_amount=amount(element(3)),
        paid_amount=amount(element(4)), patient_responsibility=amount(element(5)),
        filing_indicator=element(6), payer_claim_control_number=element(7), frequency_code=element(9))
    claim_level = in_claims.filter(col("line_ordinal") == 0)
    remarks = (claim_level.filter(seg.is_in(["MOA", "MIA"]))
               .select("claim_ordinal", codes=pl.when(seg == "MOA").then(
                   pl.concat_list([element(i) for i in (3, 4, 5, 6, 7)]))
                   .otherwise(pl.concat_list([element(i) for i in (5, 20, 21, 22, 23)])).list.drop_nulls())
               .group_by("claim_ordinal").agg(remark_codes=col("codes").list.explode(keep_nulls=False, empty_as_null=False)))

    lines_rows = in_claims.filter(col("line_ordinal") > 0)
    svc01 = element(1)
    lines = (lines_rows.filter(seg == "SVC").select(
        "claim_ordinal", "line_ordinal",
        procedure_qualifier=component(svc01, sep, 1), procedure_code=component(svc01, sep, 2),
        modifiers=svc01.str.split(sep).list.slice(2, 4).list.eval(pl.element().filter(pl.element() != "")),
        charge_amount=amount(element(2)), paid_amount=amount(element(3)),
        units_paid=element(5).cast(pl.Decimal(10, 2), strict=False))
        .join(lines_rows.filter((seg == "DTM") & element(1).is_in(["472", "150"]))
              .select("claim_ordinal", "line_ordinal", service_date=x12_date(element(2)))
              .unique(["claim_ordinal", "line_ordinal"], keep="first"), on=["claim_ordinal", "line_ordinal"],
              how="left")
        .join(lines_rows.filter((seg == "AMT") & (element(1) == "B6"))
              .select("claim_ordinal", "line_ordinal", allowed_amount=amount(element(2)))
              .unique(["claim_ordinal", "line_ordinal"], keep="first"), on=["claim_ordinal", "line_ordinal"],
              how="left")
        .join(lines_rows.filter((seg == "REF") & (element(1) == "6R"))
              .select("claim_ordinal", "line_ordinal", line_control_number=element(2))
              .unique(["claim_ordinal", "line_ordinal"], keep="first"), on=["claim_ordinal", "line_ordinal"],
              how="left")
        .join(lines_rows.filter((seg == "LQ") & (element(1) == "HE"))
              .group_by("claim_ordinal", "line_ordinal").agg(remark_codes=element(2).drop_nulls()),
              on=["claim_ordinal", "line_ordinal"], how="left")
        .with_columns(remark_codes=col("remark_codes").fill_null([])))

    # CAS: a group code, then up to six (reason, amount, quantity) triplets
    adjustments = (in_claims.filter(seg == "CAS").select(
        "claim_ordinal", "line_ordinal", "seg_no", group_code=element(1),
        reason_code=pl.concat_list([element(2 + 3 * k) for k in range(6)]),
        amount=pl.concat_list([amount(element(3 + 3 * k)) for k in range(6)]),
        quantity=pl.concat_list([element(4 + 3 * k).cast(pl.Decimal(10, 2), strict=False) for k in range(6)]))
        .explode("reason_code", "amount", "quantity")
        .filter(col("reason_code").is_not_null())
        .sort("seg_no", maintain_order=True)
        .with_columns(adjustment_ordinal=pl.int_range(1, pl.len() + 1).over("claim_ordinal", "line_ordinal"))
        .drop("seg_no"))

    # PLB: provider id, fiscal period, then up to six (reason:reference, amount) pairs
    plb = (s.filter(seg == "PLB").select(
        "seg_no", transaction_ordinal="st_no", provider_id=element(1), fiscal_period_date=x12_date(element(2)),
        reason=pl.concat_list([element(3 + 2 * k) for k in range(6)]),
        amount=pl.concat_list([amount(element(4 + 2 * k)) for k in range(6)]))
        .explode("reason", "amount").filter(col("reason").is_not_null())
        .with_columns(reason_code=component(col("reason"), sep, 1), reference=component(col("reason"), sep, 2))
        .sort("seg_no", maintain_order=True)
        .with_columns(adjustment_ordinal=pl.int_range(1, pl.len() + 1).over("transaction_ordinal"))
        .select("transaction_ordinal", "adjustment_ordinal", "provider_id", "fiscal_period_date", "reason_code",
                "reference", "amount"))

    claims = claims.join(remarks, on="claim_ordinal", how="left").with_columns(
        remark_codes=col("remark_codes").fill_null([]))
    claims, lines = _balance(claims, lines, adjustments)
    return {"transactions": transactions, "claims": claims, "lines": lines, "adjustments": adjustments,
            "provider_adjustments": plb}


ZERO = pl.lit(0).cast(pl.Decimal(18, 2))
# Adjustments that lower the allowed amount: contractual, other, payer-initiated; not the patient's share
# (PR) and not sequestration (CARC 253: a cut in what Medicare pays of an allowed amount).
_LOWERS_ALLOWED = col("group_code").is_in(["CO", "OA", "PI"]) & (col("reason_code") != "253")


def _balance(claims: pl.DataFrame, lines: pl.DataFrame, adjustments: pl.DataFrame):
    """The TR3's balancing, to the cent: a line's charge less its adjustments is its payment; a claim's
    charge less every adjustment (claim and lines) is its payment, and its lines' payments less the claim's
    own adjustments too. Also the allowed amount and our status of each claim."""
    by_line = adjustments.filter(col("line_ordinal") > 0).group_by("claim_ordinal", "line_ordinal").agg(
        line_adjustments=col("amount").sum(),
        line_lowering=col("amount").filter(_LOWERS_ALLOWED).sum(),
        line_patient=col("amount").filter(col("group_code") == "PR").sum())
    lines = (lines.join(by_line, on=["claim_ordinal", "line_ordinal"], how="left")
             .with_columns([col(c).fill_null(ZERO) for c in ("line_adjustments", "line_lowering", "line_patient")])
             .with_columns(balanced=(col("charge_amount").fill_null(ZERO) - col("line_adjustments"))
                           == col("paid_amount").fill_null(ZERO)))
    per_claim_lines = lines.group_by("claim_ordinal").agg(
        line_count=pl.len(), lines_paid=col("paid_amount").fill_null(ZERO).sum(),
        lines_allowed=pl.coalesce("allowed_amount", col("charge_amount") - col("line_lowering")).sum(),
        lines_balanced=col("balanced").all(),
        denied_lines=((col("paid_amount").fill_null(ZERO) == 0) & (col("line_patient") == 0)
                      & (col("charge_amount").fill_null(ZERO) > 0)).sum())
    claim_adj = adjustments.group_by("claim_ordinal").agg(
        adjustment_amount=col("amount").sum(),
        own_adjustments=col("amount").filter(col("line_ordinal") == 0).sum(),
        own_lowering=col("amount").filter((col("line_ordinal") == 0) & _LOWERS_ALLOWED).sum())
    claims = (claims.join(per_claim_lines, on="claim_ordinal", how="left")
              .join(claim_adj, on="claim_ordinal", how="left")
              .with_columns([col(c).fill_null(ZERO) for c in ("adjustment_amount", "own_adjustments", "own_lowering")])
              .with_columns(line_count=col("line_count").fill_null(0)))
    charge, paid = col("charge_amount").fill_null(ZERO), col("paid_amount").fill_null(ZERO)
    total_ok = (charge - col("adjustment_amount")) == paid
    lines_ok = (col("line_count") == 0) | ((col("lines_paid") - col("own_adjustments")) == paid)
    lines_each_ok = (col("line_count") == 0) | col("lines_balanced")
    claims = claims.with_columns(
        balanced=total_ok & lines_ok & lines_each_ok,
        balance_note=pl.concat_str([
            pl.when(~total_ok).then(pl.lit("CLP03 less the adjustments is not CLP04")),
            pl.when(~lines_ok).then(pl.lit("the lines' SVC03 less the claim's own adjustments is not CLP04")),
            pl.when(~lines_each_ok).then(pl.lit("a line's SVC02 less its adjustments is not its SVC03")),
        ], separator="; ", ignore_nulls=True),
        allowed_amount=pl.when(col("line_count") > 0).then(col("lines_allowed") - col("own_lowering"))
        .otherwise(charge - col("own_lowering")),
        status=pl.when(col("status_code") == "22").then(pl.lit("reversed"))
        .when(col("status_code").is_in(["4", "23", "25"])).then(pl.lit("denied"))
        .when((paid == 0) & (col("patient_responsibility").fill_null(ZERO) == 0)).then(pl.lit("denied"))
        .when(col("denied_lines") > 0).then(pl.lit("partially_paid"))
        .otherwise(pl.lit("paid")))
    claims = claims.with_columns(balance_note=pl.when(col("balance_note") == "").then(None)
                                 .otherwise(col("balance_note")))
    return claims, lines.drop("line_adjustments", "line_lowering", "line_patient")
