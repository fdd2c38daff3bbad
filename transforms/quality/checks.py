"""The quality stage: flag and hold the documentation of this run's drops, and
validate their tables against the GX suites kept in expectations/.

`check_documentation` is the stage function (the CLI and the Airflow DAG call it
alike). It looks only at the drops of this run (the nightly delta) plus, for
overlaps, the current activities of the same staff members those drops touch.

Tables in: raw.* (rows of the drops checked), staging.activity_versions,
staging.activities, staging.staff. Tables out:
  quality.flags           one row per finding per activity version (history, never deleted)
  quality.activity_holds  minutes held per activity, from its current version's holds
  quality.staff_scorecard per staff member and service month: entries, flagged shares, held minutes
  quality.validated_rows  a hash of every distinct row the suites have validated, per table

Flags are SQL (transforms.quality.flags); the suites run in GX on pandas frames
(transforms.quality.validation, transforms.quality.suites) and write Data Docs.
"""
from __future__ import annotations

import logging
import os
from datetime import date
from pathlib import Path

import duckdb

from transforms.contract import LOAD_ORDER
from transforms.quality.flags import flag_documentation, prepare, transaction
from transforms.quality.validation import (CHUNK_ROWS, CHUNK_ROWS_ENV, ValidationReport, import_gx_in_background,
                                           select_rows_to_validate, suite_chunks, validate_frames)
from transforms.settings import Settings
from transforms.warehouse import run_sql

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the stage

def check_documentation(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    run_id: str,
    drops: list[str],
    as_of: date,
    data_docs_dir: Path,
    chunk_rows: int | None = None,
) -> dict:
    """Flag and hold the activities of `drops`, validate their tables, write Data Docs.

    Runs after ingest and staging. Writes inside the caller's transaction when
    one is open, else in its own. Idempotent: rerunning the same drops restates
    the same flags, never duplicates them.

    The suites see only rows not validated before (quality.validated_rows): a
    reference snapshot repeated by every drop is validated once, then only its
    new and changed rows. A table's rows go to GX in chunks of at most
    `chunk_rows` (default CHUNK_ROWS, or CCM_VALIDATE_CHUNK_ROWS), one result
    per suite. With nothing to validate, GX is not even imported.
    """
    drops = sorted(set(drops))
    data_docs_dir = Path(data_docs_dir)
    # The GX import takes seconds of one core: start it now, to run while DuckDB
    # selects the rows and raises the flags; waited for only if anything is new.
    gx_import = import_gx_in_background() if drops else None
    chunk_rows = max(1, int(chunk_rows or os.environ.get(CHUNK_ROWS_ENV) or CHUNK_ROWS))
    prepare(con, settings, run_id=run_id, drops=drops, as_of=as_of)
    run_sql(con, "quality/_schema.sql")
    with transaction(con):
        rows_in_drops, new_rows = select_rows_to_validate(con, drops)
        findings = flag_documentation(con, settings, run_id, drops, as_of)
        reports: dict[str, ValidationReport] = {}
        if any(new_rows.values()):
            if gx_import is not None:
                gx_import.join()
            batches = {t: suite_chunks(con, t, chunk_rows) for t, n in new_rows.items() if n}
            reports = validate_frames(batches, settings, run_id, data_docs_dir)
        for table in LOAD_ORDER:
            con.execute(f"drop table if exists quality_validation_keys_{table}")
    rows_validated = {t: reports[t].rows if t in reports else 0 for t in LOAD_ORDER}
    for report in reports.values():
        for line in report.errors:
            log.warning("%s", line)
        for line in report.warnings:
            log.info("%s", line)

    return {
        "run_id": run_id,
        "drops": drops,
        "rows_validated": rows_validated,
        # rows of these drops the suites had validated already (repeats of snapshots)
        "rows_already_validated": {t: rows_in_drops[t] - rows_validated[t] for t in LOAD_ORDER},
        **findings,
        "gx_batches": {t: r.chunks for t, r in reports.items()},
        "suites_failed": [
            {"suite": t, "reason": r.errors[0], "failed_expectations": len(r.errors)}
            for t, r in reports.items() if not r.success
        ],
        "suite_warnings": [m for r in reports.values() for m in r.warnings],
        "data_docs_index": str(data_docs_dir / "index.html") if reports else None,
    }
