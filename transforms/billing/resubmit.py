"""`ccm resubmit`: release rejected claims so the next run bills their patient-months again.

A rejected claim whose content changed (a corrected MBI arrived in a drop) is
billed again without this. One whose content did not change (the payer's
system was down; a clearinghouse set-up error fixed on their side) waits for a
person to say so: that is a release (billing.releases), and nothing else ever
makes a billed patient-month billable again. Only a claim that is rejected
now, and not billed again yet, can be released; any other claim named makes
the command release nothing and say why, one line per claim.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from transforms import run_lock
from transforms.billing.ledger import ensure_billing_schema
from transforms.errors import StorageError, WarehouseBusy
from transforms.warehouse import connect

EXIT_PROBLEM = 2

# Every claim with its current status (as marts.claim_status ranks responses), whether it is live and
# whether it was billed again or released already.
_CLAIMS = """
    with current_status as (
        select e.claim_id, e.status
        from billing.claim_events e join billing.response_files f on f.sha256 = e.response_sha256
        qualify row_number() over (partition by e.claim_id
                                   order by billing.event_rank(e.source) desc, f.file_seq desc, e.ordinal desc) = 1
    )
    select l.claim_id, coalesce(s.status, 'submitted') as status, lc.claim_id is not null as live,
           r.claim_id as replaced_by, rel.claim_id is not null as released
    from billing.ledger l
    left join current_status s using (claim_id)
    left join billing.live_claims lc on lc.claim_id = l.claim_id
    left join billing.ledger r on r.replaces_claim_id = l.claim_id
    left join billing.releases rel on rel.claim_id = l.claim_id
"""


def release(con: duckdb.DuckDBPyConnection, claim_ids: list[str] | None, all_rejected: bool,
            ) -> tuple[list[str], list[str], list[str]]:
    """(released, already released, problems). With problems nothing is released."""
    rows = {r[0]: r[1:] for r in con.execute(_CLAIMS).fetchall()}
    releasable = sorted(c for c, (status, live, replaced_by, _) in rows.items()
                        if status == "rejected" and not live and replaced_by is None)
    problems, already = [], []
    if all_rejected:
        wanted = releasable
    else:
        wanted = list(dict.fromkeys(claim_ids or []))
        for claim_id in wanted:
            if claim_id not in rows:
                problems.append(f"claim {claim_id}: no such claim in billing.ledger")
                continue
            status, live, replaced_by, _ = rows[claim_id]
            if replaced_by:
                problems.append(f"claim {claim_id}: already billed again as claim {replaced_by}")
            elif status != "rejected" or live:
                problems.append(f"claim {claim_id} is {status}: only a rejected claim can be released "
                                "(a paid or denied claim is appealed or corrected, never billed again by us)")
    if problems:
        return [], [], problems
    already = [c for c in wanted if rows[c][3]]
    new = [c for c in wanted if not rows[c][3]]
    how = "ccm resubmit --rejected" if all_rejected else "ccm resubmit --claim"
    if new:
        now = datetime.now(timezone.utc)
        con.executemany("insert into billing.releases values (?, ?, ?)", [(c, now, how) for c in new])
    return new, already, []


def resubmit(warehouse: Path, claim_ids: list[str] | None, all_rejected: bool) -> int:
    """The command: prints what it released (claim ids only), returns the exit code."""
    warehouse = Path(warehouse)
    if not warehouse.is_file():
        print(f"{warehouse}: no such warehouse", file=sys.stderr)
        return EXIT_PROBLEM
    # a release is a write like a run's: it waits its turn for the warehouse (transforms/run_lock.py)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    try:
        with run_lock.hold(warehouse, f"resubmit-{stamp}", "ccm resubmit"):
            con = connect(warehouse, "UTC")
            try:
                ensure_billing_schema(con)
                released, already, problems = release(con, claim_ids, all_rejected)
            finally:
                con.close()
    except (WarehouseBusy, StorageError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_PROBLEM
    except duckdb.IOException as exc:
        print(f"{warehouse}: cannot open the warehouse for writing ({str(exc).splitlines()[0]}); "
              "is a program holding it?", file=sys.stderr)
        return EXIT_PROBLEM
    if problems:
        print("\n".join(problems + ["nothing was released"]), file=sys.stderr)
        return EXIT_PROBLEM
    for claim_id in already:
        print(f"claim {claim_id}: already released")
    if released:
        print(f"released {len(released)} rejected claim{'s' if len(released) != 1 else ''}: {' '.join(released)}")
        print("the next `ccm run` bills their patient-months again, under new claim ids")
    elif not already:
        print("no rejected claim to release")
    return 0
