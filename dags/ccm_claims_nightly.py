"""
### CCM claims, nightly

Each night at 02:00 practice time, after the EHR's export has landed: load the
new drops, check the documentation, count minutes per patient-month, choose
codes, read what the clearinghouse and the payer sent back (TA1, 999, 277CA,
835), and write one claim batch for every month that has closed (with its
grace days) by tonight, rejected claims that were fixed or released included.
Tonight is the run's logical date, in practice time.

Every task calls one stage of `transforms.pipeline`, the same function `ccm run`
calls, so the DAG and the command line can never disagree. Each stage is
idempotent: retrying or clearing a task is safe, a response file is read once,
and a patient-month has at most one live claim (the claims ledger), which is
also what makes a backfill safe:

    airflow backfill create --dag-id ccm_claims_nightly \\
        --from-date 2026-10-01 --to-date 2026-11-08T02:00

The per-billing-provider 837P checks are mapped tasks (one per interchange), so
on Celery or Kubernetes workers the providers are checked in parallel; the
warehouse writers stay single tasks, one run at a time (DuckDB has one writer).
A checked batch updates the `ccm_claim_batches` Asset, which schedules
`ccm_claims_delivery`.
"""
from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import CronTriggerTimetable, Param, chain, dag, task

from transforms import airflow_tasks
from transforms import pipeline

PRACTICE_TZ = airflow_tasks.practice_time_zone()
# A trigger timetable: the run for 8 November fires at 02:00 on 8 November and
# its logical date *is* that night, so as-of = logical date (no data interval
# to offset by a day, as CronDataIntervalTimetable would).
NIGHTLY_AT_2AM = CronTriggerTimetable("0 2 * * *", timezone=PRACTICE_TZ)

DEFAULT_ARGS = {
    "owner": "ccm-data",
    "retries": airflow_tasks.task_retries(2),  # for I/O: a busy disk, a locked file. Bad input fails at once.
    "retry_delay": pendulum.duration(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": pendulum.duration(minutes=10),
    "execution_timeout": pendulum.duration(hours=2),
}

PARAMS = {
    "landing": Param(airflow_tasks.default_location("landing"), type="string",
                     description="Folder of nightly drop folders (CCM_LANDING)."),
    "warehouse": Param(airflow_tasks.default_location("warehouse"), type="string",
                       description="The DuckDB warehouse file (CCM_WAREHOUSE)."),
    "claims_dir": Param(airflow_tasks.default_location("claims_dir"), type="string",
                        description="Where claim batches are written (CCM_CLAIMS_DIR)."),
    "config": Param(airflow_tasks.default_location("config"), type="string",
                    description="Practice configuration, YAML or TOML (CCM_CONFIG); empty = the shipped sample."),
    "as_of": Param(None, type=["null", "string"],
                   description="Override tonight's date, YYYY-MM-DD; empty = the logical date in practice time."),
    "strict": Param(False, type="boolean",
                    description="A bad row fails the run instead of being quarantined."),
    "responses": Param(airflow_tasks.default_location("responses"), type="string",
                       description="Folder of TA1, 999, 277CA and 835 files from the clearinghouse (CCM_RESPONSES); "
                                   "empty = none read."),
}


@dag(
    dag_id="ccm_claims_nightly",
    schedule=NIGHTLY_AT_2AM,
    start_date=pendulum.datetime(2025, 1, 1, tz=PRACTICE_TZ),
    catchup=False,  # a missed night is caught up by the next one; backfill on purpose
    max_active_runs=1,  # the warehouse has one writer
    dagrun_timeout=pendulum.duration(hours=6),
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["ccm", "claims", "nightly"],
    doc_md=__doc__,
)
def ccm_claims_nightly():

    @task
    def discover_drops() -> dict:
        """Which drops are new, and is every file readable with its columns? Before
        anything is written, so a bad file leaves the warehouse as it was."""
        return airflow_tasks.discover(airflow_tasks.current_run())

    @task
    def start_run() -> str:
        """Record the run; its id goes to every other task."""
        return airflow_tasks.start(airflow_tasks.current_run())

    @task
    def ingest(ccm_run: str) -> dict:
        return airflow_tasks.run_stage(pipeline.stage_ingest, ccm_run)

    @task
    def validate(ccm_run: str) -> dict:
        return airflow_tasks.run_stage(pipeline.stage_validate, ccm_run)

    @task
    def minutes(ccm_run: str) -> dict:
        return airflow_tasks.run_stage(pipeline.stage_minutes, ccm_run)

    @task
    def codes(ccm_run: str) -> dict:
        return airflow_tasks.run_stage(pipeline.stage_codes, ccm_run)

    @task(inlets=[airflow_tasks.RESPONSES])
    def responses(ccm_run: str) -> dict:
        """Acknowledgments and remittances, each file once; before claims, so a fixed rejection is billed tonight."""
        return airflow_tasks.run_stage(pipeline.stage_responses, ccm_run)

    @task
    def claims(ccm_run: str) -> dict:
        """One batch for the patient-months of every closed month not yet billed."""
        return airflow_tasks.run_stage(pipeline.stage_claims, ccm_run)

    @task
    def list_interchanges(claimed: dict) -> list[str]:
        run = airflow_tasks.current_run()
        return airflow_tasks.list_interchanges(airflow_tasks.batch_dir(claimed, run.request.claims_dir))

    @task(map_index_template="{{ interchange }}")
    def validate_interchange(path: str) -> dict:
        """One billing provider's 837P, read-only: mapped, so providers run in parallel."""
        from airflow.sdk import get_current_context

        get_current_context()["interchange"] = Path(path).name
        return airflow_tasks.validate_interchange(path)

    @task(trigger_rule="none_failed", outlets=[airflow_tasks.CLAIM_BATCHES])
    def publish_batch(claimed: dict, checked: list[dict]) -> dict:
        """Announce a checked batch to the delivery DAG; skipped when nothing was claimed."""
        from airflow.sdk import Metadata
        from airflow.sdk.exceptions import AirflowSkipException

        run = airflow_tasks.current_run()
        batch = airflow_tasks.batch_dir(claimed, run.request.claims_dir)
        if batch is None:
            raise AirflowSkipException("no claim batch tonight")
        event = {"batch_id": batch.name, "as_of": run.request.as_of.isoformat(), "interchanges": len(list(checked))}
        yield Metadata(airflow_tasks.CLAIM_BATCHES, event)
        return event

    @task(outlets=[airflow_tasks.WAREHOUSE_MARTS])
    def marts(ccm_run: str) -> dict:
        """Dashboards' views and the run report; the last warehouse writer."""
        return airflow_tasks.run_stage(pipeline.stage_marts, ccm_run)

    @task
    def finish_run(ccm_run: str, discovered, ingested, validated, counted, coded, answered, claimed, published,
                   reported) -> str:
        """Record how the run ended, whatever happened above (a teardown)."""
        run = airflow_tasks.current_run()
        summary, status = airflow_tasks.run_summary(run, ccm_run, {
            "discover": discovered, "ingest": ingested, "validate": validated, "minutes": counted,
            "codes": coded, "responses": answered, "claims": claimed, "marts": reported,
        }, published)
        return airflow_tasks.finish(run, ccm_run, summary, status)

    discovered = discover_drops()
    ccm_run = start_run()
    ingested = ingest(ccm_run)
    validated = validate(ccm_run)
    counted = minutes(ccm_run)
    coded = codes(ccm_run)
    answered = responses(ccm_run)
    claimed = claims(ccm_run)
    chain(discovered, ccm_run, ingested, validated, counted, coded, answered, claimed)

    # per billing provider, in parallel: read-only checks of the batch's 837P files
    checked = validate_interchange.expand(path=list_interchanges(claimed))
    published = publish_batch(claimed, checked)
    # the warehouse's last writer, after the claims ledger
    reported = marts(ccm_run)
    claimed >> reported

    finish_run(ccm_run, discovered, ingested, validated, counted, coded, answered, claimed, published,
               reported).as_teardown(setups=ccm_run)


ccm_claims_nightly()
