"""`ccm run`: every stage in order, for one as-of date. The DAG calls the same stages."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from transforms import ingest
from transforms.settings import Settings
from transforms.warehouse import connect, ensure_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    landing: Path
    warehouse: Path
    claims_dir: Path
    as_of: date
    strict: bool = False


def new_run_id(as_of: date) -> str:
    return f"run-{as_of:%Y%m%d}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}"


def plan(request: RunRequest, settings: Settings) -> ingest.IngestPlan:
    """Find and check the new drops before the warehouse is opened for writing,
    so a bad file leaves it byte-for-byte as it was."""
    already = set()
    if request.warehouse.exists():
        con = connect(request.warehouse, settings.time_zone, read_only=True)
        try:
            already = ingest.loaded_drops(con)
        finally:
            con.close()
    return ingest.plan_ingest(request.landing, already, settings)


def run(request: RunRequest, settings: Settings) -> dict:
    ingest_plan = plan(request, settings)
    run_id = new_run_id(request.as_of)
    con = connect(request.warehouse, settings.time_zone)
    try:
        ensure_schema(con)
        con.execute(
            "insert into raw.runs values (?, ?, ?, null, 'running', null)",
            [run_id, request.as_of, datetime.now(timezone.utc)],
        )
        summary: dict = {"run_id": run_id, "as_of": request.as_of.isoformat(), "warehouse": str(request.warehouse)}
        try:
            con.begin()
            summary["ingest"] = ingest.load_drops(con, ingest_plan, settings, run_id, strict=request.strict)
            summary["staging"] = ingest.build_staging(con)
            con.commit()
        except BaseException:
            con.rollback()
            con.execute(
                "update raw.runs set status = 'failed', finished_at = ? where run_id = ?",
                [datetime.now(timezone.utc), run_id],
            )
            raise
        con.execute(
            "update raw.runs set status = 'succeeded', finished_at = ?, summary = ? where run_id = ?",
            [datetime.now(timezone.utc), json.dumps(summary, default=str), run_id],
        )
        return summary
    finally:
        con.close()


def format_summary(summary: dict) -> str:
    ing = summary["ingest"]
    lines = [
        f"run {summary['run_id']} (as of {summary['as_of']})",
        f"  drops loaded: {len(ing['drops_loaded'])} {' '.join(ing['drops_loaded'])}".rstrip(),
        f"  drops skipped (already loaded): {len(ing['drops_skipped'])}",
        "  rows loaded: " + ", ".join(f"{t} {n}" for t, n in ing["rows_loaded"].items()),
        f"  rows quarantined: {ing['rows_quarantined']} (see raw.quarantine)",
        "  current rows: " + ", ".join(f"{t} {n}" for t, n in summary["staging"].items() if t != "rejected_rows"),
        f"  rows held for an unknown patient or staff member: {summary['staging']['rejected_rows']} (see staging.rejected_rows)",
    ]
    if ing["files_ignored"]:
        lines.append(f"  files ignored (no contract table): {len(ing['files_ignored'])}")
    lines.append(f"  warehouse: {summary['warehouse']}")
    return "\n".join(lines)
