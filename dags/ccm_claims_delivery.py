"""
### CCM claims, delivery

Runs whenever the nightly DAG publishes a checked claim batch (the
`ccm_claim_batches` Asset). For every batch without a receipt: check each file
against the SHA-256 in the batch's manifest, package the batch as a .tar.gz
(owner-only, 0600) in the outbox, and write a receipt JSON beside it.

A template for a practice's own hand-off: replace the outbox with the
clearinghouse upload (SFTP, API) and keep the receipt. The receipt is written
last, so a delivery that failed half-way is simply done again, and a batch
with a receipt is never packaged twice. It reads claim files only, never the
warehouse, so it can run while the nightly DAG writes.
"""
from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import Param, dag, task

from transforms import airflow_tasks
from transforms.billing import delivery

DEFAULT_ARGS = {
    "owner": "ccm-data",
    "retries": airflow_tasks.task_retries(2),
    "retry_delay": pendulum.duration(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": pendulum.duration(minutes=10),
}

PARAMS = {
    "claims_dir": Param(airflow_tasks.default_location("claims_dir"), type="string",
                        description="Where the nightly DAG writes claim batches (CCM_CLAIMS_DIR)."),
    "outbox": Param(airflow_tasks.default_location("outbox"), type="string",
                    description="Where packages and receipts go (CCM_OUTBOX)."),
}


@dag(
    dag_id="ccm_claims_delivery",
    schedule=[airflow_tasks.CLAIM_BATCHES],
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    params=PARAMS,
    tags=["ccm", "claims", "delivery"],
    doc_md=__doc__,
)
def ccm_claims_delivery():

    @task
    def undelivered_batches(params: dict | None = None) -> list[str]:
        return delivery.undelivered_batches(params["claims_dir"], params["outbox"])

    @task(map_index_template="{{ batch_id }}")
    def deliver_batch(batch: str, params: dict | None = None) -> dict:
        """Verify against the manifest, package, write the receipt: one batch."""
        from airflow.sdk import get_current_context

        get_current_context()["batch_id"] = Path(batch).name
        with airflow_tasks.bad_input_fails_fast():
            return delivery.deliver_batch(batch, params["outbox"])

    deliver_batch.expand(batch=undelivered_batches())


ccm_claims_delivery()
