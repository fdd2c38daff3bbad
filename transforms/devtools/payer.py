"""A payer for demos and tests: answers a claim batch the way a clearinghouse and a Medicare
contractor would. Dev tool only: no stage imports it.

    python -m transforms.devtools.payer --batch claims/B20261108-001 --out responses/ [--seed 7]
        [--reject-share 0.1] [--deny-share 0.1] [--paid-on 2026-11-22]

For every 837P interchange of the batch it writes, into --out:

    <interchange>.999   005010X231A1: the transaction set accepted (or, asked to, rejected with IK3/IK4/IK5
                        and the group with AK9 R: the "whole functional group rejected" case)
    <interchange>.277   005010X214: each claim accepted (A2:20) or rejected for an invalid MBI
                        (A7:164:IL, action U)
    <interchange>.835   005010X221A1 for the accepted claims: denied ones with CO-16 (N290) or CO-97 (M80),
                        the rest paid at the charge as allowed amount: 20% coinsurance (PR-2) and 2%
                        sequestration of Medicare's 80% (CO-253), line by line; BPR02 = the claims' payments

Every file is clean under pyx12. Which claims are rejected or denied is chosen by --seed, or named
(answer_batch(reject=..., deny=...)). Amounts are exact decimals, rounded to the cent line by line as a
payer does, so BPR02 equals the sum of CLP04.
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from transforms.billing.responses.segments import read_interchange

CENT = Decimal("0.01")
COINSURANCE = Decimal("0.20")
SEQUESTRATION = Decimal("0.02")
# denial reason -> the remark code a Medicare contractor sends with it
DENIALS = {"CO-16": "N290", "CO-97": "M80"}
PAYER_TIN = "123456789"


@dataclass
class Line:
    cpt_code: str
    charge: Decimal
    units: str
    date_of_service: str  # CCYYMMDD


@dataclass
class Claim:
    claim_id: str
    charge: Decimal
    last_name: str
    first_name: str
    member_id: str
    lines: list[Line] = field(default_factory=list)


@dataclass
class Submitted:
    """One 837P interchange as the payer reads it."""
    file_name: str
    isa13: str
    gs06: str
    st02: str
    bht03: str
    submitter_id: str
    receiver_id: str
    usage: str
    created: date
    provider_name: str
    provider_npi: str
    claims: list[Claim]


def read_837(path: Path) -> Submitted:
    ic = read_interchange(path.read_bytes())
    sep = ic.delimiters.component
    rows = ic.segments.select("seg_id", "elements").rows()
    first = {}
    for seg_id, el in rows:  # a dev tool reading a test batch; the product path never does this
        first.setdefault(seg_id, el)
    claims: list[Claim] = []
    subscriber = None
    provider_name = provider_npi = ""
    for seg_id, el in rows:
        if seg_id == "NM1" and el[1] == "85":
            provider_name, provider_npi = el[3], el[9]
        elif seg_id == "NM1" and el[1] == "IL":
            subscriber = (el[3], el[4] if len(el) > 4 else "", el[9])
        elif seg_id == "CLM":
            claims.append(Claim(el[1], Decimal(el[2]), *subscriber))
        elif seg_id == "SV1":
            claims[-1].lines.append(Line(el[1].split(sep)[1], Decimal(el[2]), el[4], ""))
        elif seg_id == "DTP" and el[1] == "472" and claims and claims[-1].lines:
            claims[-1].lines[-1].date_of_service = el[3]
    isa = ic.isa
    return Submitted(path.name, isa[13], first["GS"][6], first["ST"][2], first["BHT"][3], isa[6].strip(),
                     isa[8].strip(), isa[15], datetime.strptime(first["GS"][4], "%Y%m%d").date(), provider_name,
                     provider_npi, claims)


# -- writing X12 ----------------------------------------------------------------------------------------

def _money(value: Decimal) -> str:
    text = format(value.quantize(CENT), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class _Writer:
    def __init__(self, sub: Submitted, control_number: int, functional_id: str, version: str, st01: str,
                 when: datetime):
        self.segments: list[str] = []
        self.tx_start = 0
        self.head = "*".join([
            "ISA", "00", " " * 10, "00", " " * 10, "ZZ", sub.receiver_id.ljust(15), "ZZ", sub.submitter_id.ljust(15),
            when.strftime("%y%m%d"), when.strftime("%H%M"), "^", "00501", f"{control_number:09d}", "0", sub.usage,
            ":"]) + "~"
        self.gs = (f"GS*{functional_id}*{sub.receiver_id}*{sub.submitter_id}*{when:%Y%m%d}*{when:%H%M}*"
                   f"{control_number}*X*{version}~")
        self.control_number = control_number
        self.add("ST", st01, "0001", "" if st01 == "835" else version)  # the 835 has no ST03

    def add(self, *elements: object) -> None:
        parts = [str(e) for e in elements]
        while parts and parts[-1] == "":
            parts.pop()
        self.segments.append("*".join(parts) + "~")

    def text(self) -> str:
        self.add("SE", len(self.segments) + 1, "0001")
        return (self.head + self.gs + "".join(self.segments) + f"GE*1*{self.control_number}~"
                + f"IEA*1*{self.control_number:09d}~")


def _control(sub: Submitted, offset: int) -> int:
    return (int(sub.isa13) + offset) % 1_000_000_000 or 1


def write_999(sub: Submitted, when: datetime, reject: bool) -> str:
    w = _Writer(sub, _control(sub, 100_000_000), "FA", "005010X231A1", "999", when)
    w.add("AK1", "HC", sub.gs06, "005010X222A1")
    w.add("AK2", "837", sub.st02, "005010X222A1")
    if reject:
        # the billing provider's N4 ZIP (segment 10 of the set) has a bad value
        w.add("IK3", "N4", "10", "2010", "8")
        w.add("IK4", "3", "116", "7")
        w.add("IK5", "R", "5")
        w.add("AK9", "R", "1", "1", "0")
    else:
        w.add("IK5", "A")
        w.add("AK9", "A", "1", "1", "1")
    return w.text()


def _payer_claim_number(claim_id: str) -> str:
    return "26" + str(int(hashlib.sha256(claim_id.encode()).hexdigest(), 16))[:12]


def write_277ca(sub: Submitted, when: datetime, rejected: set[str], payer_name: str, payer_id: str) -> str:
    w = _Writer(sub, _control(sub, 200_000_000), "HN", "005010X214", "277", when)
    day = f"{when:%Y%m%d}"
    w.add("BHT", "0085", "08", f"CA{sub.isa13}", day, f"{when:%H%M}", "TH")
    accepted = [c for c in sub.claims if c.claim_id not in rejected]
    refused = [c for c in sub.claims if c.claim_id in rejected]
    total = sum((c.charge for c in sub.claims), Decimal(0))
    ok_total = sum((c.charge for c in accepted), Decimal(0))
    bad_total = total - ok_total
    w.add("HL", "1", "", "20", "1")
    w.add("NM1", "PR", "2", payer_name, "", "", "", "", "PI", payer_id)
    w.add("TRN", "1", f"R{sub.isa13}")
    w.add("DTP", "050", "D8", f"{sub.created:%Y%m%d}")
    w.add("DTP", "009", "D8", day)
    w.add("HL", "2", "1", "21", "1")
    w.add("NM1", "41", "2", "SUBMITTER", "", "", "", "", "46", sub.submitter_id)
    w.add("TRN", "2", sub.bht03)
    w.add("STC", "A1:19:PR", day, "WQ", _money(total))
    if accepted:
        w.add("QTY", "90", len(accepted))
    if refused:
        w.add("QTY", "AA", len(refused))
    if accepted:
        w.add("AMT", "YU", _money(ok_total))
    if refused:
        w.add("AMT", "YY", _money(bad_total))
    w.add("HL", "3", "2", "19", "1")
    w.add("NM1", "85", "2", sub.provider_name, "", "", "", "", "XX", sub.provider_npi)
    w.add("TRN", "1", f"P{sub.isa13}")
    w.add("STC", "A1:19:PR", "", "WQ", _money(total))  # 2200C has no STC02
    if accepted:
        w.add("QTY", "QA", len(accepted))
    if refused:
        w.add("QTY", "QC", len(refused))
    if accepted:
        w.add("AMT", "YU", _money(ok_total))
    if refused:
        w.add("AMT", "YY", _money(bad_total))
    for n, claim in enumerate(sub.claims, start=4):
        w.add("HL", n, "3", "PT")
        w.add("NM1", "QC", "1", claim.last_name, claim.first_name, "", "", "", "MI", claim.member_id)
        w.add("TRN", "2", claim.claim_id)
        if claim.claim_id in rejected:
            w.add("STC", "A7:164:IL", day, "U", _money(claim.charge))
        else:
            w.add("STC", "A2:20:PR", day, "WQ", _money(claim.charge))
            w.add("REF", "1K", _payer_claim_number(claim.claim_id))
        dates = sorted(ln.date_of_service for ln in claim.lines)
        w.add("DTP", "472", "RD8", f"{dates[0]}-{dates[-1]}")
    return w.text()


@dataclass
class Adjudication:
    claim_id: str
    status: str          # CLP02
    charge: Decimal
    paid: Decimal
    patient: Decimal
    lines: list[tuple[Line, Decimal, list[tuple[str, str, Decimal]], Decimal]]  # line, paid, CAS, allowed
    remark: str | None = None


def adjudicate(claim: Claim, denial: str | None) -> Adjudication:
    """Pay at the charge as the allowed amount: the patient owes 20%, Medicare pays 80% less 2%."""
    lines, paid_total, patient_total = [], Decimal(0), Decimal(0)
    for line in claim.lines:
        if denial:
            group, carc = denial.split("-")
            lines.append((line, Decimal(0), [(group, carc, line.charge)], Decimal(0)))
            continue
        allowed = line.charge
        coinsurance = (allowed * COINSURANCE).quantize(CENT, ROUND_HALF_UP)
        sequestration = ((allowed - coinsurance) * SEQUESTRATION).quantize(CENT, ROUND_HALF_UP)
        paid = allowed - coinsurance - sequestration
        lines.append((line, paid, [("PR", "2", coinsurance), ("CO", "253", sequestration)], allowed))
        paid_total += paid
        patient_total += coinsurance
    return Adjudication(claim.claim_id, "4" if denial else "1", claim.charge, paid_total, patient_total, lines,
                        DENIALS.get(denial) if denial else None)


def write_835(sub: Submitted, when: datetime, paid_on: date, adjudications: list[Adjudication], payer_name: str,
              payer_id: str, trace: str, provider_adjustments: list[tuple[str, Decimal]] = ()) -> str:
    w = _Writer(sub, _control(sub, 300_000_000), "HP", "005010X221A1", "835", when)
    total = sum((a.paid for a in adjudications), Decimal(0)) - sum((amt for _, amt in provider_adjustments),
                                                                   Decimal(0))
    if total > 0:
        w.add("BPR", "I", _money(total), "C", "CHK", "", "", "", "", "", "", "", "", "", "", "", f"{paid_on:%Y%m%d}")
    else:
        w.add("BPR", "H", _money(max(total, Decimal(0))), "C", "NON", "", "", "", "", "", "", "", "", "", "", "",
              f"{paid_on:%Y%m%d}")
    w.add("TRN", "1", trace, "1" + PAYER_TIN)
    w.add("DTM", "405", f"{when:%Y%m%d}")
    w.add("N1", "PR", payer_name)
    w.add("N3", "PO BOX 1000")
    w.add("N4", "HARRISBURG", "PA", "171050000")
    w.add("REF", "2U", payer_id)
    w.add("PER", "BL", "PROVIDER SERVICES", "TE", "8005550100")
    w.add("N1", "PE", sub.provider_name, "XX", sub.provider_npi)
    w.add("REF", "TJ", "123456789")
    if adjudications:
        w.add("LX", "1")
    claims = {c.claim_id: c for c in sub.claims}
    for a in adjudications:
        claim = claims[a.claim_id]
        w.add("CLP", a.claim_id, a.status, _money(a.charge), _money(a.paid), _money(a.patient) if a.patient else "",
              "MB", _payer_claim_number(a.claim_id), "11", "1")
        w.add("NM1", "QC", "1", claim.last_name, claim.first_name, "", "", "", "MI", claim.member_id)
        if a.remark:
            w.add("MOA", "", "", "MA01")
        for line, paid, cas, allowed in a.lines:
            w.add("SVC", f"HC:{line.cpt_code}", _money(line.charge), _money(paid), "", line.units)
            w.add("DTM", "472", line.date_of_service)
            by_group: dict[str, list[str]] = {}
            for group, carc, amount in cas:
                if amount:
                    by_group.setdefault(group, []).extend([carc, _money(amount), ""])
            for group, triplets in by_group.items():
                w.add("CAS", group, *triplets)
            if allowed:
                w.add("AMT", "B6", _money(allowed))
            if a.remark:
                w.add("LQ", "HE", a.remark)
    for reason, amount in provider_adjustments:
        w.add("PLB", sub.provider_npi, f"{paid_on.year}1231", reason, _money(amount))
    return w.text()


# -- answering a batch ----------------------------------------------------------------------------------

def answer_batch(batch_dir: Path, out_dir: Path, *, seed: int = 7, reject_share: float = 0.1,
                 deny_share: float = 0.1, reject: set[str] | None = None, deny: dict[str, str] | None = None,
                 reject_interchanges: set[str] = frozenset(), paid_on: date | None = None,
                 payer_name: str = "MEDICARE PART B", payer_id: str = "12502",
                 provider_adjustments: list[tuple[str, Decimal]] = ()) -> dict:
    """Write the 999, 277CA and 835 for every interchange of a batch. `reject` (claim ids, 277CA) and
    `deny` (claim id -> 'CO-16' / 'CO-97') name the claims; else --seed picks about reject_share and
    deny_share of them. `reject_interchanges` (837 file names) get a 999 rejecting their group and nothing
    else. Returns what was decided, claim ids and amounts only."""
    batch_dir, out_dir = Path(batch_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    decided = {"files": [], "rejected": [], "denied": {}, "paid": {}, "total_paid": Decimal(0),
               "interchanges_rejected": []}
    for path in sorted(batch_dir.glob("*.x12")):
        sub = read_837(path)
        when = datetime.combine(sub.created + timedelta(days=1), datetime.min.time()).replace(hour=6)
        stem = path.stem
        if path.name in reject_interchanges:
            (out_dir / f"{stem}.999").write_text(write_999(sub, when, reject=True), encoding="ascii")
            decided["files"].append(f"{stem}.999")
            decided["interchanges_rejected"].append(path.name)
            continue
        (out_dir / f"{stem}.999").write_text(write_999(sub, when, reject=False), encoding="ascii")
        ids = [c.claim_id for c in sub.claims]
        if reject is None or deny is None:
            shuffled = sorted(ids)
            rng.shuffle(shuffled)
            n_reject = round(len(ids) * reject_share)
            n_deny = round(len(ids) * deny_share)
        rejected = set(reject) & set(ids) if reject is not None else set(shuffled[:n_reject])
        denials = ({k: v for k, v in deny.items() if k in ids} if deny is not None else
                   {c: ("CO-16" if i % 2 == 0 else "CO-97")
                    for i, c in enumerate(c for c in shuffled[n_reject:n_reject + n_deny])})
        (out_dir / f"{stem}.277").write_text(
            write_277ca(sub, when + timedelta(days=1), rejected, payer_name, payer_id), encoding="ascii")
        adjudications = [adjudicate(c, denials.get(c.claim_id)) for c in sub.claims if c.claim_id not in rejected]
        pay_day = paid_on or sub.created + timedelta(days=14)
        (out_dir / f"{stem}.835").write_text(
            write_835(sub, when + timedelta(days=13), pay_day, adjudications, payer_name, payer_id,
                      f"EFT{sub.isa13}", provider_adjustments), encoding="ascii")
        decided["files"] += [f"{stem}.999", f"{stem}.277", f"{stem}.835"]
        decided["rejected"] += sorted(rejected)
        decided["denied"].update(denials)
        for a in adjudications:
            if a.status != "4":
                decided["paid"][a.claim_id] = a.paid
        decided["total_paid"] += sum((a.paid for a in adjudications), Decimal(0)) - sum(
            (amt for _, amt in provider_adjustments), Decimal(0))
    return decided


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transforms.devtools.payer", description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=Path, required=True, help="a claim batch folder (with its *.x12 files)")
    parser.add_argument("--out", type=Path, required=True, help="where to write the responses")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reject-share", type=float, default=0.1)
    parser.add_argument("--deny-share", type=float, default=0.1)
    parser.add_argument("--paid-on", type=date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    decided = answer_batch(args.batch, args.out, seed=args.seed, reject_share=args.reject_share,
                           deny_share=args.deny_share, paid_on=args.paid_on)
    print(f"wrote {len(decided['files'])} files to {args.out}: {len(decided['rejected'])} claims rejected (277CA), "
          f"{len(decided['denied'])} denied, {len(decided['paid'])} paid, total paid {decided['total_paid']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
