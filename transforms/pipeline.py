"""The stages of one run, in order. `ccm run` calls them one after another; the
Airflow DAG calls the very same functions, one task each.

Every stage takes a RunContext, opens the warehouse itself (an Airflow task is
its own process), does its work in a transaction where it writes, and returns a
small JSON-able summary. Every stage is idempotent: a retry or a rerun of the
same night changes nothing that was already done.

The caller holds the warehouse's run lock (transforms/run_lock.py) around the
stages: run() for the whole of `ccm run`, airflow_tasks.run_lease() per task
for its DAG run, so no other run can write between two stages.
"""
from __future__ import annotations

import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import duckdb

from transforms import run_lock
from transforms.billing.ledger import fault
from transforms.errors import StorageError, WarehouseBusy, storage_error
from transforms.ingest import plan, raw, staging
from transforms.settings import ConfigError, Settings, load_settings
from transforms.warehouse import connect, ensure_schema

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunRequest:
    landing: Path
    warehouse: Path
    claims_dir: Path
    as_of: date
    config: Path | None = None
    strict: bool = False
    responses: Path | None = None  # where the clearinghouse drops TA1, 999, 277CA and 835 files
    # how long to wait for another run, or a program holding the warehouse file
    # (None: CCM_LOCK_WAIT_SECONDS, else run_lock.DEFAULT_WAIT_SECONDS)
    lock_wait_seconds: float | None = None

    def __post_init__(self) -> None:
        # Absolute paths: GX Data Docs and Airflow workers need them, and a
        # summary that names a file should name it from anywhere.
        for name in ("landing", "warehouse", "claims_dir", "config", "responses"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value).expanduser().resolve())

    @classmethod
    def from_strings(cls, landing: str, warehouse: str, claims_dir: str, as_of: str,
                     config: str | None = None, strict: bool = False, responses: str | None = None) -> "RunRequest":
        return cls(Path(landing), Path(warehouse), Path(claims_dir), date.fromisoformat(as_of),
                   Path(config) if config else None, strict, Path(responses) if responses else None)

    @property
    def run_dir(self) -> Path:
        """Per-run outputs that are not claims (Data Docs, report, worklist)."""
        return self.warehouse.parent / "runs"


@dataclass(frozen=True)
class RunContext:
    request: RunRequest
    settings: Settings
    run_id: str

    @contextmanager
    def warehouse(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.request.warehouse, self.settings.time_zone, wait_seconds=self.request.lock_wait_seconds)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        with self.warehouse() as con:
            con.begin()
            try:
                yield con
            except BaseException:
                con.rollback()
                raise
            con.commit()


# Where the crash tests kill a run (CCM_FAULT, billing.ledger.fault): before each
# stage, between two drops of ingest, and before the run is recorded as finished;
# billing.ledger.FAULT_POINTS are inside the claims stage.
RUN_FAULT_POINTS = ("before_ingest", "mid_ingest", "before_validate", "before_minutes", "before_codes",
                    "before_responses", "before_claims", "before_marts", "before_finish")

# Errors whose text is already one line per problem, naming files and folders, never row data.
ONE_LINE_ERRORS = (plan.InputError, ConfigError, WarehouseBusy, StorageError)


def new_run_id(as_of: date) -> str:
    return f"run-{as_of:%Y%m%d}-{datetime.now(timezone.utc):%Y%m%dT%H%M%S%fZ}"


# ---------------------------------------------------------------- stages

def discover(request: RunRequest, settings: Settings, read_files: bool = True) -> plan.IngestPlan:
    """Find and check the new drops before the warehouse is opened for writing,
    so a bad file leaves it byte-for-byte as it was. `read_files`: read every new
    file whole, as ingest will (False: names, headers and columns only)."""
    already: dict[str, set[str]] = {}
    if request.warehouse.exists():
        con = connect(request.warehouse, settings.time_zone, read_only=True, wait_seconds=request.lock_wait_seconds)
        try:
            already = plan.loaded_files(con)
        finally:
            con.close()
    if request.responses is not None and not request.responses.is_dir():
        raise plan.InputError([f"{request.responses}: the responses folder (--responses, CCM_RESPONSES) does not "
                               "exist or is not a folder"])
    return plan.plan_ingest(request.landing, already, settings, read_files=read_files)


def start_run(ctx: RunContext) -> dict:
    """Record the run. The caller holds the run lock (run_lock), so no other run can be
    going on: a run still `running` in raw.runs died (killed, machine down) and is
    marked failed, saying so."""
    now = datetime.now(timezone.utc)
    with ctx.warehouse() as con:
        ensure_schema(con)
        con.begin()
        died = [r[0] for r in con.execute(
            "select run_id from raw.runs where status = 'running' and run_id <> ? order by 1", [ctx.run_id]).fetchall()]
        if died:
            note = json.dumps({"interrupted": f"the run ended without finishing (its process died); found by "
                                              f"{ctx.run_id}"})
            con.execute("update raw.runs set status = 'failed', finished_at = ?, "
                        "summary = json_merge_patch(coalesce(summary, '{}'::json), ?::json) "
                        "where status = 'running' and run_id <> ?", [now, note, ctx.run_id])
        con.execute(
            "insert into raw.runs values (?, ?, ?, null, 'running', null) on conflict do nothing",
            [ctx.run_id, ctx.request.as_of, now],
        )
        con.commit()
    for run_id in died:
        log.warning("run %s ended without finishing; recorded as failed", run_id)
    return {"run_id": ctx.run_id, "interrupted_runs_marked_failed": died}


def stage_ingest(ctx: RunContext) -> dict:
    # again: a retried task sees what is loaded now. The files were read whole by the
    # run's first planning; one that changed since fails its drop, which rolls back.
    landing_plan = discover(ctx.request, ctx.settings, read_files=False)
    with ctx.warehouse() as con:
        summary = raw.load_drops(con, landing_plan, ctx.settings, ctx.run_id, strict=ctx.request.strict)
    with ctx.transaction() as con:
        summary["staging"] = staging.build_staging(con, incremental=True)
    return summary


def finish_run(ctx: RunContext, summary: dict, status: str = "succeeded") -> None:
    with ctx.warehouse() as con:
        con.execute(
            "update raw.runs set status = ?, finished_at = ?, summary = ? where run_id = ?",
            [status, datetime.now(timezone.utc), json.dumps(summary, default=str), ctx.run_id],
        )


def stage_validate(ctx: RunContext) -> dict:
    """Documentation checks on every loaded drop not validated yet (the nightly delta)."""
    from transforms.quality.checks import check_documentation

    with ctx.warehouse() as con:
        con.execute(
            "create table if not exists quality.validated_drops "
            "(drop_name varchar primary key, run_id varchar not null, validated_at timestamptz not null)"
        )
        drops = [r[0] for r in con.execute(
            "select distinct drop_name from raw.loaded_files "
            "where drop_name not in (select drop_name from quality.validated_drops) order by 1"
        ).fetchall()]
        con.begin()
        try:
            summary = check_documentation(
                con, ctx.settings, ctx.run_id, drops, ctx.request.as_of,
                ctx.request.run_dir / ctx.run_id / "data_docs",
            )
            if drops:
                con.executemany(
                    "insert into quality.validated_drops values (?, ?, ?)",
                    [[d, ctx.run_id, datetime.now(timezone.utc)] for d in drops],
                )
        except BaseException:
            con.rollback()
            raise
        con.commit()
    return summary


def stage_minutes(ctx: RunContext) -> dict:
    from transforms.core.minutes import compute_minutes

    with ctx.transaction() as con:
        return compute_minutes(con, ctx.settings)


def stage_codes(ctx: RunContext) -> dict:
    from transforms.core.codes import assign_codes

    with ctx.transaction() as con:
        return assign_codes(con, ctx.settings, ctx.request.as_of)


def stage_responses(ctx: RunContext) -> dict:
    """TA1, 999, 277CA and 835 files from the responses folder, each once, each in its own transaction;
    then overpayments. Before claims, so a rejection fixed by tonight's drop is billed again tonight."""
    from transforms.billing.responses import read_responses

    with ctx.warehouse() as con:
        return read_responses(con, ctx.settings, ctx.run_id, ctx.request.responses, ctx.request.as_of)


def stage_claims(ctx: RunContext) -> dict:
    """Orders its own commits (files, then ledger, then rename): no outer transaction."""
    from transforms.billing.batch import write_claim_batch

    with ctx.warehouse() as con:
        return write_claim_batch(con, ctx.settings, ctx.run_id, ctx.request.as_of, ctx.request.claims_dir)


def stage_marts(ctx: RunContext) -> dict:
    """Dashboard views, the open-month worklist and the HTML run report."""
    from transforms.marts.views import build_marts

    with ctx.transaction() as con:
        return build_marts(con, ctx.settings, ctx.run_id, ctx.request.as_of, ctx.request.run_dir / ctx.run_id)


# Name -> stage, in run order. The DAG wires these same functions.
STAGES: dict[str, Callable[[RunContext], dict]] = {
    "ingest": stage_ingest,
    "validate": stage_validate,
    "minutes": stage_minutes,
    "codes": stage_codes,
    "responses": stage_responses,
    "claims": stage_claims,
    "marts": stage_marts,
}


def run(request: RunRequest, settings: Settings | None = None) -> dict:
    """Everything `ccm run` does, for one as-of date, holding the warehouse's run lock
    from the first look at it to the last write (another run waits, or refuses)."""
    settings = settings or load_settings(request.config)
    ctx = RunContext(request, settings, new_run_id(request.as_of))
    summary: dict = {"run_id": ctx.run_id, "as_of": request.as_of.isoformat(), "warehouse": str(request.warehouse)}
    step, started = "planning", False
    with run_lock.hold(request.warehouse, ctx.run_id, run_lock.CCM_RUN, request.lock_wait_seconds):
        try:
            discover(request, settings)  # fail on bad files before the warehouse is touched
            step = "start_run"
            summary["start"] = start_run(ctx)
            started = True
            for name, stage in STAGES.items():
                step = f"the {name} stage"
                fault(f"before_{name}")
                summary[name] = stage(ctx)
            fault("before_finish")
        except BaseException as exc:
            if started:
                finish_quietly(ctx, summary, "failed")
            translated = as_one_line(exc, request, step)
            if translated is exc:
                raise
            raise translated from None
        finish_run(ctx, summary)
    return summary


def finish_quietly(ctx: RunContext, summary: dict, status: str) -> None:
    """finish_run, for a run that is failing anyway: a full or read-only disk may fail it
    too, and then the next run marks this one failed (start_run)."""
    try:
        finish_run(ctx, summary, status=status)
    except Exception as exc:  # noqa: BLE001 - the original failure is the one to report
        log.info("could not record run %s as %s: %s", ctx.run_id, status, type(exc).__name__)


def as_one_line(exc: BaseException, request: RunRequest, step: str) -> BaseException:
    """The error to report for `exc`: itself when it already is one line without row data,
    a StorageError naming the folder for a disk's doing, else the error unchanged."""
    if isinstance(exc, ONE_LINE_ERRORS) or not isinstance(exc, Exception):
        return exc
    folder = request.claims_dir if "claims" in step else request.warehouse.parent
    known = (request.warehouse.parent, request.run_dir, request.claims_dir)
    return storage_error(exc, folder, step, known) or exc


def format_summary(summary: dict) -> str:
    """The few lines a data engineer reads after a night's run (no PHI)."""
    ing = summary["ingest"]
    staging = ing["staging"]
    lines = [
        f"run {summary['run_id']} (as of {summary['as_of']})",
        *(f"  run {r} had ended without finishing (killed?): recorded as failed"
          for r in summary.get("start", {}).get("interrupted_runs_marked_failed", [])),
        f"  drops loaded: {len(ing['drops_loaded'])}"
        + (f" ({ing['drops_loaded'][0]} .. {ing['drops_loaded'][-1]})" if ing["drops_loaded"] else ""),
        f"  drops skipped (already loaded): {len(ing['drops_skipped'])}",
        "  rows loaded: " + ", ".join(f"{t} {n}" for t, n in ing["rows_loaded"].items()),
        f"  rows quarantined: {ing['rows_quarantined']} (raw.quarantine)",
        f"  rows waiting for an unknown patient or staff member: {staging['rejected_rows']} (staging.rejected_rows)",
    ]
    for ignored in ing["files_ignored"][:20]:
        lines.append(f"  ignored: {ignored}")
    if len(ing["files_ignored"]) > 20:
        lines.append(f"  ignored: ... and {len(ing['files_ignored']) - 20} more")
    if ing.get("drops_empty"):
        lines.append(f"  drops with no files yet (not recorded; loaded once files arrive): "
                     f"{', '.join(ing['drops_empty'])}")
    if v := summary.get("validate"):
        flags = ", ".join(f"{k} {n}" for k, n in v.get("flags", {}).items() if n) or "none"
        lines.append(f"  documentation flags: {flags}; minutes held: {v.get('held_minutes_total', 0)}")
        for failed in v.get("suites_failed", []):
            lines.append(f"  expectation suite failed: {failed}")
        if v.get("data_docs_index"):
            lines.append(f"  data docs: {v['data_docs_index']}")
    if (m := summary.get("minutes")) and (build := m.get("build")):
        how = f"full rebuild ({build['reason']})" if build["mode"] == "full" else "incremental"
        lines.append(f"  minutes and codes: {how}, {build['patient_months']} patient-months recomputed")
    if c := summary.get("codes"):
        lines.append(f"  patient-months: {c['patient_months']}, eligible {c['eligible']}, "
                     f"billable in closed months {c['billed_closed']}")
        if fees := c.get("fee_schedule"):
            lines.append("  fee schedule: " + ", ".join(f"{year} {how}" for year, how in sorted(fees.items())))
        if (past := (c.get("timely_filing") or {}).get("past")):
            lines.append(f"  past the 12-month filing limit, never billed: {past} patient-months")
    if (r := summary.get("responses")) and r.get("responses_dir"):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(r["by_kind"].items())) or "none"
        lines.append(f"  responses: {r['files_read']} files read ({kinds}), {r['files_already_read']} read before "
                     "(same SHA-256), "
                     f"{r['files_quarantined']} quarantined (billing.response_files)")
        for q in r["quarantined"]:
            lines.append(f"  response file quarantined: {q}")
        if r.get("claims_now"):
            now = ", ".join(f"{k} {n}" for k, n in sorted(r["claims_now"].items()))
            lines.append(f"  claims they spoke about, now: {now}; paid tonight {r['paid_amount']} "
                         "(marts.claim_status)")
        if r["claims_unmatched"]:
            lines.append(f"  claims in responses that are not ours (unmatched, never attached by guess): "
                         f"{r['claims_unmatched']}")
        for u in r["unreconciled_payments"]:
            lines.append(f"  remittance does not reconcile: {u}")
        for c in r["live_conflicts"]:
            lines.append(f"  for review: {c}")
    if (r := summary.get("responses")) and r.get("overpayment_rows_added"):
        lines.append(f"  paid claims that would now bill less (overpayments, marts.overpayments): "
                     f"{r['overpayment_rows_added']} new")
    if cl := summary.get("claims"):
        if cl.get("batch_id"):
            rebills = cl.get("rebilled_changed", 0) + cl.get("rebilled_released", 0)
            lines.append(f"  claim batch: {cl['path']} ({cl['claims']} claims, {cl['lines']} lines, "
                         f"charges {cl['charges']:.2f}, expected from Medicare {cl['expected_payment']:.2f}"
                         + (f"; {rebills} rejected claims billed again" if rebills else "")
                         + f"; usage {cl.get('usage_indicator', '?')})")
        else:
            lines.append("  claim batch: none (nothing new to claim)")
        if cl.get("rejected_unchanged_waiting"):
            lines.append(f"  rejected claims waiting for a fix or `ccm resubmit`: {cl['rejected_unchanged_waiting']} "
                         "(marts.rejections_to_fix)")
        if cl.get("review_rows_added"):
            lines.append(f"  billed months with new minutes, for review: {cl['review_rows_added']} (billing.review)")
        for b in cl.get("recovered_batches", []):
            lines.append(f"  recovered an interrupted batch: {b}")
        for b in cl.get("abandoned_temp_folders", []):
            lines.append(f"  removed the temp folder of an interrupted batch that never reached the ledger: {b} "
                         f"(its claims are claimed again)")
        if cl.get("claims_withheld"):
            edits = ", ".join(f"{edit} {n}" for edit, n in cl.get("withheld_by_edit", {}).items())
            lines.append(f"  claims withheld (the data cannot make them; the rest went out): {cl['claims_withheld']} "
                         f"({edits}; reasons in billing.withheld_claims and the worklist)")
    if m := summary.get("marts"):
        lines.append(f"  worklist ({m['worklist_rows']} patients short this month): {m['worklist_csv']}")
        if m.get("timely_filing_due"):
            lines.append(f"  months near the 12-month filing limit, not billed: {m['timely_filing_due']} "
                         "(first on the worklist)")
        lines.append(f"  report: {m['report_html']}")
    lines.append(f"  warehouse: {summary['warehouse']}")
    return "\n".join(lines)
