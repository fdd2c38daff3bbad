"""What the Airflow DAGs need besides the stages: Airflow's context in, a RunContext out.

`dags/` only wires tasks together. Everything a task *does* is either a stage in
`transforms.pipeline` (the very functions `ccm run` calls) or a helper here:
resolving a DAG run's params and logical date to a RunRequest, naming the run,
listing a batch's per-provider interchanges, checking a batch against its
manifest and packaging it for hand-off. All of it runs, and is tested, without a
scheduler.

Every helper is idempotent, like the stages: a retried or cleared task finds the
work done and does not do it twice.
"""
from __future__ import annotations

import json
import logging
import os
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping
from zoneinfo import ZoneInfo

from airflow.sdk import Asset

from transforms import run_lock
from transforms.billing.delivery import MANIFEST, ManifestMismatch, manifest_files
from transforms.errors import unexpected_error_line
from transforms.privacy import private_umask
from transforms.ingest.readers import sha256_file
from transforms.paths import REPO_ROOT
from transforms.settings import ConfigError, Settings, load_settings

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- assets
# The contract between the nightly DAG and whoever consumes its output. The URIs
# are logical names, not paths, so they stay the same on every machine.

CLAIM_BATCHES = Asset(name="ccm_claim_batches", uri="ccm://claims/batches", group="ccm")
# What the clearinghouse drops for us (TA1, 999, 277CA, 835): read by the responses task. A DAG that
# fetches the files (SFTP, API) can update this Asset; the nightly DAG reads the folder either way.
RESPONSES = Asset(name="ccm_responses", uri="ccm://responses/inbox", group="ccm")
WAREHOUSE_MARTS = Asset(name="ccm_warehouse_marts", uri="ccm://warehouse/marts", group="ccm")

# ---------------------------------------------------------------- where things are

DEMO_DIR = REPO_ROOT / "demo"

#: param name -> (environment variable, fallback under the demo folder; None = no fallback)
LOCATIONS: dict[str, tuple[str, str | None]] = {
    "landing": ("CCM_LANDING", "landing"),
    "warehouse": ("CCM_WAREHOUSE", "warehouse.duckdb"),
    "claims_dir": ("CCM_CLAIMS_DIR", "claims"),
    "config": ("CCM_CONFIG", None),  # empty = the shipped sample configuration
    "responses": ("CCM_RESPONSES", None),  # empty = no responses folder: nothing is read
    "outbox": ("CCM_OUTBOX", "outbox"),
}


def default_location(name: str) -> str:
    """A param's default: its environment variable, else a path under `<repo>/demo/`
    (what `make demo` uses), so the DAG runs out of the box and a deployment only
    sets environment variables. Read when the DAG file is parsed."""
    env, fallback = LOCATIONS[name]
    value = os.environ.get(env, "").strip()
    if value:
        return value
    return str(DEMO_DIR / fallback) if fallback else ""


def task_retries(default: int = 2) -> int:
    """Retries per task (for I/O trouble): CCM_TASK_RETRIES, else `default`. The demo
    and tests set 0, so a failure shows at once instead of after the backoff."""
    value = os.environ.get("CCM_TASK_RETRIES", "").strip()
    return int(value) if value else default


def practice_time_zone() -> str:
    """The time zone the nightly schedule runs in: CCM_TIME_ZONE, else the practice
    configuration's (the zone service months are taken in), so "02:00" means 02:00
    at the practice, through daylight-saving changes."""
    explicit = os.environ.get("CCM_TIME_ZONE", "").strip()
    if explicit:
        ZoneInfo(explicit)  # an unknown zone fails the DAG import, with its name
        return explicit
    return load_settings(default_location("config") or None).time_zone


# ---------------------------------------------------------------- from a DAG run to a RunRequest

def as_of_date(logical_date: datetime | None, run_after: datetime, time_zone: str,
               override: str | None = None) -> date:
    """Tonight, for this DAG run: the `as_of` param when given, else the calendar date
    of the logical date in practice time (a manual run without a logical date: the
    moment it was triggered). A 02:00 run on 8 November is as of 8 November."""
    if override:
        try:
            return date.fromisoformat(str(override))
        except ValueError:
            raise ConfigError(Path("params.as_of"), [f"{override!r} is not a date (YYYY-MM-DD)"]) from None
    moment = logical_date or run_after
    return moment.astimezone(ZoneInfo(time_zone)).date()


def pipeline_run_id(as_of: date, run_after: datetime) -> str:
    """The pipeline's run id for one DAG run, in the same shape as `ccm run`'s
    (`run-<as-of>-<UTC instant>`), but derived from the DAG run rather than the
    clock, so a retried or cleared task belongs to the same pipeline run."""
    instant = run_after.astimezone(timezone.utc)
    return f"run-{as_of:%Y%m%d}-{instant:%Y%m%dT%H%M%S%fZ}"


@dataclass(frozen=True)
class NightlyRun:
    """One DAG run seen from the pipeline: its request, settings and run id."""
    request: Any  # pipeline.RunRequest (imported lazily: DAG parsing stays light)
    settings: Settings
    run_id: str
    airflow_run_id: str

    def context(self, run_id: str | None = None):
        from transforms.pipeline import RunContext

        return RunContext(self.request, self.settings, run_id or self.run_id)


def nightly_run(context: Mapping[str, Any]) -> NightlyRun:
    """Resolve an Airflow task context (params, logical date, DAG run) to a NightlyRun."""
    from transforms.pipeline import RunRequest

    params = context["params"]
    dag_run = context["dag_run"]
    config = str(params.get("config") or "").strip() or None
    settings = load_settings(config)
    as_of = as_of_date(context.get("logical_date"), dag_run.run_after, settings.time_zone, params.get("as_of"))
    request = RunRequest(
        landing=_absolute(params, "landing"),
        warehouse=_absolute(params, "warehouse"),
        claims_dir=_absolute(params, "claims_dir"),
        as_of=as_of,
        config=Path(config) if config else None,
        strict=bool(params.get("strict", False)),
        responses=_absolute(params, "responses") if str(params.get("responses") or "").strip() else None,
    )
    return NightlyRun(request, settings, pipeline_run_id(as_of, dag_run.run_after), dag_run.run_id)


def _absolute(params: Mapping[str, Any], name: str) -> Path:
    """Tasks may run on any worker, in any working directory: paths must be absolute."""
    path = Path(str(params.get(name) or "")).expanduser()
    if not path.is_absolute():
        raise ConfigError(Path(f"params.{name}"), [f"{str(path)!r} is not an absolute path "
                                                   f"(set {LOCATIONS[name][0]} or the param to a full path)"])
    return path


@contextmanager
def bad_input_fails_fast() -> Iterator[None]:
    """A bad landing file, a bad configuration, a claim batch that fails its edits or
    one that no longer matches its manifest will be just as bad in a minute: fail
    the task without its retries (retries are for I/O), keeping the
    one-line-per-problem message."""
    from airflow.sdk.exceptions import AirflowFailException

    from transforms.billing.edits import ClaimEditError
    from transforms.ingest.plan import InputError

    try:
        yield
    except (InputError, ConfigError, ClaimEditError, ManifestMismatch) as exc:
        raise AirflowFailException(str(exc)) from exc


def current_run() -> NightlyRun:
    from airflow.sdk import get_current_context

    private_umask()  # every file this task (and DuckDB in it) creates is owner-only: PHI
    with bad_input_fails_fast():
        return nightly_run(get_current_context())


@contextmanager
def run_lease(run: NightlyRun, run_id: str | None = None, release_on_failure: bool = False) -> Iterator[None]:
    """Hold the warehouse for this DAG run while the task works (run_lock: the flock
    for the task, the lease across tasks until finish_run). Another run holding it:
    wait, then fail with one line (WarehouseBusy; Airflow retries the task).
    `release_on_failure`: for the tasks before start_run, whose failure means the
    finish_run teardown never runs."""
    lock = run_lock.RunLock(run.request.warehouse, run_id or run.run_id, run_lock.AIRFLOW,
                            run.request.lock_wait_seconds).acquire()
    failed = False
    try:
        yield
    except BaseException:
        failed = True
        raise
    finally:
        lock.release(finished=failed and release_on_failure)


@contextmanager
def one_line_errors(run: NightlyRun, step: str) -> Iterator[None]:
    """Errors as the task log shows them: a disk's as one line naming the folder (still
    retried), anything unforeseen as one line without the data a library's message may
    quote (the code's frames, which hold no data, are logged)."""
    from transforms.pipeline import ONE_LINE_ERRORS, as_one_line

    try:
        yield
    except ONE_LINE_ERRORS:
        raise
    except Exception as exc:
        translated = as_one_line(exc, run.request, step)
        if translated is not exc:
            raise translated from None
        if exc.__class__.__module__.startswith("airflow"):
            raise
        log.error("%s failed at:\n%s", step, "".join(traceback.format_tb(exc.__traceback__)).rstrip())
        raise RuntimeError(unexpected_error_line(exc, step)) from None


def discover(run: NightlyRun) -> dict:
    """The discover_drops task: the landing checked before anything is written."""
    from transforms import pipeline

    with run_lease(run, release_on_failure=True), bad_input_fails_fast(), one_line_errors(run, "planning"):
        return describe_plan(pipeline.discover(run.request, run.settings))


def start(run: NightlyRun) -> str:
    """The start_run task: the run recorded (and any run that died marked failed)."""
    from transforms import pipeline

    with run_lease(run, release_on_failure=True), one_line_errors(run, "start_run"):
        pipeline.start_run(run.context())
    return run.run_id


def run_stage(stage: Callable, run_id: str) -> dict:
    """Run one pipeline stage for this DAG run, exactly as `ccm run` would."""
    run = current_run()
    name = getattr(stage, "__name__", str(stage)).removeprefix("stage_")
    log.info("stage %s, pipeline run %s, as of %s", name, run_id, run.request.as_of)
    with run_lease(run, run_id), bad_input_fails_fast(), one_line_errors(run, f"the {name} stage"):
        return stage(run.context(run_id))


def finish(run: NightlyRun, run_id: str, summary: dict, status: str) -> str:
    """The finish_run teardown: the run's end recorded, the warehouse's lease given back."""
    from transforms import pipeline

    try:
        with run_lease(run, run_id), one_line_errors(run, "finish_run"):
            pipeline.finish_run(run.context(run_id), summary, status)
    finally:
        run_lock.release_lease(run.request.warehouse, run_id, wait=0)
    return status


def describe_plan(plan) -> dict:
    """The discovery result as a small XCom: names and counts, never row data."""
    return {
        "new_drops": list(plan.new_drops),
        "drops_already_loaded": len(plan.skipped_drops),
        "files": len(plan.files),
        "files_ignored": len(plan.ignored),
    }


def run_summary(run: NightlyRun, run_id: str, results: Mapping[str, Any], published: Any = None) -> tuple[dict, str]:
    """The summary `finish_run` records, shaped like `ccm run`'s, and the run's status.
    A stage with no result failed (or never ran because an upstream one failed); so
    did the batch checks when a batch was written but never published."""
    summary: dict[str, Any] = {
        "run_id": run_id,
        "as_of": run.request.as_of.isoformat(),
        "warehouse": str(run.request.warehouse),
        "airflow_run_id": run.airflow_run_id,
    }
    missing = [name for name, result in results.items() if result is None]
    summary.update({name: result for name, result in results.items() if result is not None})
    if batch_dir(results.get("claims"), run.request.claims_dir) is not None:
        summary["published"] = published
        if published is None:
            missing.append("publish_batch")
    if missing:
        summary["stages_not_completed"] = missing
    return summary, ("failed" if missing else "succeeded")


# ---------------------------------------------------------------- the claim batch



def batch_dir(claims_summary: Mapping[str, Any] | None, claims_dir: str | Path) -> Path | None:
    """The batch the claims stage wrote this run, or None when nothing was claimed."""
    if not claims_summary:
        return None
    for key in ("path", "batch_dir"):
        if claims_summary.get(key):
            return Path(claims_summary[key])
    batch_id = claims_summary.get("batch_id")
    return Path(claims_dir) / str(batch_id) if batch_id else None


def list_interchanges(batch: str | Path | None) -> list[str]:
    """The batch's 837P files, one per billing provider: the unit of parallel work."""
    if batch is None:
        return []
    return sorted(str(p) for p in Path(batch).glob("*.x12"))


def validate_interchange(path: str | Path) -> dict:
    """Re-check one billing provider's 837P as it lies on disk: its SHA-256 against the
    batch manifest, and pyx12's 005010X222A1 validation (the claims stage's own edit,
    `billing.edits.validate_with_pyx12`, run on the file this time). Reads only, so the
    providers of a batch can be checked in parallel on workers."""
    from airflow.sdk.exceptions import AirflowFailException

    from transforms.billing.edits import validate_with_pyx12

    path = Path(path)
    digest = sha256_file(path)
    expected = manifest_files(json.loads((path.parent / MANIFEST).read_text(encoding="utf-8"))).get(path.name)
    problems = [] if expected == digest else [f"{path}: SHA-256 differs from {path.parent / MANIFEST}"]
    problems += [f"{path}: {p}" for p in validate_with_pyx12(path)]
    if problems:
        raise AirflowFailException("\n".join(problems[:50]))
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": digest, "valid": True}




