"""pyx12 on a response file, its findings split by what they mean for us.

pyx12 reads the file against the map its GS08 names (999 005010X231A1,
277CA 005010X214, 835 005010X221A1; TA1 against the envelope map). A finding
on the envelope (ISA/IEA, GS/GE, ST/SE: a file cut short, a count that does
not add up) means the file is not valid X12: it is quarantined. A finding on
a segment or element inside a transaction set is a departure from the
implementation guide (a payer's missing PER*BL, say): the file is still read,
and the findings are counted and stored, redacted, with it. Real payers'
files carry such departures; refusing to post a payment over one would lose
the payment, not the error.
"""
from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass, field

from transforms.billing.edits import _quiet_pyx12
from transforms.billing.edits import _redact as _redact_values

_SEGMENT_TEXT = re.compile(r"\b([A-Z][A-Z0-9]{1,2})\*\S*")  # 'Segment NM1*QC*1*LEE*ANN not found'


def _redact(message: str) -> str:
    """pyx12 quotes values in parentheses and whole segments in some messages: both may be PHI."""
    return _SEGMENT_TEXT.sub(r"\1*...", _redact_values(message))


@dataclass
class Pyx12Result:
    envelope: list[str] = field(default_factory=list)  # the file is not valid X12
    body: list[str] = field(default_factory=list)      # implementation-guide findings, the file is read
    failed: str | None = None                           # pyx12 could not read it at all


def pyx12_check(text: str) -> Pyx12Result:
    """pyx12's findings on X12 text (it must start with ISA), values redacted (they may be PHI)."""
    import pyx12.errors
    import pyx12.params
    import pyx12.x12n_document

    report = io.StringIO()
    result = Pyx12Result()
    logged = _Collect()
    with _quiet_pyx12():
        logging.getLogger("pyx12").addHandler(logged)
        try:
            ok = pyx12.x12n_document.x12n_document(
                param=pyx12.params.params(), src_file=io.StringIO(text), fd_997=None, fd_html=None,
                fd_xmldoc=None, fd_json=report)
        except (pyx12.errors.X12Error, pyx12.errors.EngineError, KeyError, IndexError, ValueError) as exc:
            result.failed = f"pyx12 cannot read it ({type(exc).__name__}: {_redact(str(exc)).splitlines()[0][:120]})"
            return result
        finally:
            logging.getLogger("pyx12").removeHandler(logged)
    out = report.getvalue()
    for isa in (json.loads(out) if out else {}).get("interchanges", []):
        result.envelope += [f"ISA: {e.get('err_cde')} {_redact(e.get('err_str', ''))}" for e in isa.get("errors") or []]
        for gs in isa.get("groups", []):
            result.envelope += [f"GS: {e.get('err_cde')} {_redact(e.get('err_str', ''))}" for e in gs.get("errors") or []]
            for st in gs.get("transactions", []):
                result.envelope += [f"ST: {e.get('err_cde')} {_redact(e.get('err_str', ''))}"
                                    for e in st.get("errors") or []]
                for seg in st.get("segments", []):
                    where = f"{seg.get('seg_id') or 'segment'} line {seg.get('cur_line')}"
                    result.body += [f"{where}: {e.get('err_cde')} {_redact(e.get('err_str', ''))}"
                                    for e in seg.get("errors") or []]
                    for ele in seg.get("elements", []):
                        result.body += [f"{where} {ele.get('name')}: {e.get('err_cde')} "
                                        f"{_redact(e.get('err_str', ''))}" for e in ele.get("errors") or []]
    if not ok and not result.envelope and not result.body:
        # some findings (an element of ST marked "not used") reach pyx12's log but not its report
        result.body = [_redact(m) for m in logged.messages]
        if not result.body:
            result.failed = "pyx12 rejected it without a detailed finding"
    return result


class _Collect(logging.Handler):
    """pyx12's logged errors, for the findings its JSON report leaves out."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
