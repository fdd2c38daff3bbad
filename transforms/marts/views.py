"""The marts stage: the views dashboards read, the threshold worklist, the run report.

build_marts() (re)creates every view in sql/marts/ (one view per file), writes
the open month's threshold worklist to <run_dir>/worklist.csv and the HTML run
report to <run_dir>/report.html. Views hold no data of their own, so the stage
is idempotent: a rerun replaces the views and the two files.

The views read core.*, billing.*, quality.*, raw.* and staging.*; a source a
stage has not created yet (billing.* before the first batch) is created empty
first (sql/marts/_sources.sql) so every view always binds.
"""
from __future__ import annotations

import logging
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from transforms.billing.ledger import ensure_billing_schema
from transforms.billing.responses.codes import load_code_lists
from transforms.core import rules
from transforms.marts import report
from transforms.marts.worklist import write_worklist
from transforms.paths import SQL_DIR
from transforms.privacy import mkdir_private
from transforms.settings import Settings
from transforms.warehouse import run_sql

log = logging.getLogger(__name__)

# In dependency order: revenue_summary and threshold_worklist read patient_month,
# staff_scorecard reads dq_flags.
VIEWS = (
    "patient_month",
    "claim_lines",
    "dq_flags",
    "staff_scorecard",
    "pipeline_runs",
    "revenue_summary",
    "threshold_worklist",
    # the revenue cycle: responses read back (reason_codes first: the others say why in its words)
    "reason_codes",
    "claim_status",
    "rejections_to_fix",
    "denials_to_appeal",
    "overpayments",
    "remittance_summary",
    "remittance_adjustments",
    "response_files",
)

WORKLIST_FILE = "worklist.csv"
REPORT_FILE = "report.html"


def build_marts(con: duckdb.DuckDBPyConnection, settings: Settings, run_id: str, as_of: date,
                run_dir: Path) -> dict:
    """Create the marts views; write worklist.csv and report.html into run_dir."""
    run_sql(con, "raw/_schema.sql")         # schemas and raw.runs/loaded_files/quarantine
    ensure_billing_schema(con)              # the claims stage's own tables, real columns
    load_code_lists(con)                    # the code lists the revenue-cycle marts say why with
    run_sql(con, "billing/withheld_claims.sql")  # the claims it withheld (transforms/billing/batch.py)
    run_sql(con, "quality/_schema.sql")     # likewise quality.flags
    run_sql(con, "marts/_sources.sql")      # empty sources where a stage has not run yet
    fees = load_fee_reference(con, settings, as_of)
    con.execute("delete from marts.fee_reference")
    if fees:
        con.executemany("insert into marts.fee_reference values (?, ?, ?, ?)", fees)
    for view in VIEWS:
        run_sql(con, f"marts/{view}.sql")

    run_dir = mkdir_private(Path(run_dir))  # the worklist names patients
    worklist_path, worklist = write_worklist(con, as_of, run_dir / WORKLIST_FILE)
    # The report's queries also give the summary's totals (one pass over each view).
    data = report.collect_report_data(con, run_id, as_of, settings.practice_name, worklist=worklist)
    report_path = report.write_report(con, run_id, as_of, run_dir / REPORT_FILE, settings.practice_name, data=data)

    def count(sql: str) -> int:
        return int(con.execute(sql).fetchall()[0][0] or 0)

    summary = {
        "views": [f"marts.{v}" for v in VIEWS],
        "worklist_csv": str(worklist_path),
        "worklist_rows": worklist["patients"],
        "report_html": str(report_path),
        "patient_months": data.patient_months,
        "claim_lines": count("select count(*) from marts.claim_lines"),
        "dq_flags": data.dq_flags,
        "pipeline_runs": count("select count(*) from marts.pipeline_runs"),
        "estimated_left_on_table": float(data.estimated_left_on_table),
        # closed, not billed, near the filing limit: on the worklist so they are billed before they are lost
        "timely_filing_due": count("select count(*) from core.patient_month pm anti join billing.ledger l "
                                   "using (patient_id, service_month) "
                                   "where pm.timely_filing_status = 'due_soon' and pm.month_closed"),
        "fee_reference_rows": len(fees),
    }
    log.info("marts: %d patient-months, %d worklist rows", summary["patient_months"], worklist["patients"])
    return summary


# ---------------------------------------------------------------- fee reference

def load_fee_reference(con: duckdb.DuckDBPyConnection, settings: Settings,
                       as_of: date) -> list[tuple[int, str, Decimal, str]]:
    """(rules_year, cpt_code, fee, rules file) for every service year in the warehouse,
    from the yearly rules files (transforms.core.rules: the practice's rules_dir first).
    Only a fallback: marts.patient_month prefers the fee the rules engine put on
    core.code_lines. A year without a usable file is skipped, never fatal here."""
    years = {as_of.year} | {int(y) for (y,) in con.execute(
        "select distinct year(service_month) from core.patient_month where service_month is not null").fetchall()}
    rows = []
    for year in sorted(years):
        try:
            year_rules = rules.load_year(year, settings)
        except (OSError, ValueError) as exc:   # RulesError is a ValueError
            log.warning("marts: no fee reference for %s: %s", year, str(exc).splitlines()[0])
            continue
        if year_rules is None:
            continue
        rows += [(year, code, fee, year_rules.path.name) for code, fee in sorted(year_rules.fees.items())
                 if fee is not None]
    return rows


def view_sql_files() -> list[Path]:
    """The view files, in creation order (tests check that every file is listed)."""
    return [SQL_DIR / "marts" / f"{v}.sql" for v in VIEWS]
