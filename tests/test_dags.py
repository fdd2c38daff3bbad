"""The Airflow DAGs: they import cleanly, are wired as documented, and really run.

The run tests go through Airflow itself (`dag.test()`, a metadata DB, the task
runner, XCom, mapped tasks, Asset events) on a small generated landing folder,
and compare what the DAG billed with what `ccm run` bills from the same drops.
"""
from __future__ import annotations

import airflow_env

airflow_env.configure()  # before anything imports airflow: it reads its settings once

import csv  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from contextlib import contextmanager, redirect_stderr, redirect_stdout  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import json  # noqa: E402
import stat  # noqa: E402
import tarfile  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import date, datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import duckdb  # noqa: E402
import pendulum  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from airflow.dag_processing.dagbag import DagBag  # noqa: E402
from airflow.sdk import CronTriggerTimetable  # noqa: E402
from airflow_env import airflow_db  # noqa: E402,F401  (session fixture)

from transforms import airflow_tasks, run_lock  # noqa: E402
from transforms.billing import delivery  # noqa: E402
from transforms import pipeline  # noqa: E402
from transforms.paths import SAMPLE_CONFIG  # noqa: E402

NIGHTLY, DELIVERY = "ccm_claims_nightly", "ccm_claims_delivery"
TZ = airflow_env.TIME_ZONE
SECOND_GROUP_NPI = "1987654328"
CATCH_UP_NIGHT = date(2026, 11, 8)  # the generator's last drop: both generated months have closed
BACKFILL_NIGHTS = [date(2026, 10, 1), date(2026, 10, 8), date(2026, 11, 8)]  # nothing / September / October
PRACTITIONER_ROLES = {"physician", "np", "pa", "cns", "cnm"}
STAGE_TASKS = ["ingest", "validate", "minutes", "codes", "responses", "claims"]


# ------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(airflow_env.DAGS_FOLDER))


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    from transforms.devtools.generate import generate

    out = tmp_path_factory.mktemp("landing")
    generate(out, patients=30, months=2, seed=3)
    return out


@pytest.fixture(scope="module")
def two_provider_config(landing, tmp_path_factory) -> Path:
    """The sample practice with a second group NPI: every other practitioner bills under it."""
    last_drop = sorted(p for p in landing.iterdir() if p.is_dir())[-1]
    with open(last_drop / "staff.csv", newline="", encoding="utf-8") as fh:
        npis = sorted({r["npi"] for r in csv.DictReader(fh) if r["role"] in PRACTITIONER_ROLES and r["npi"]})
    config = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    first = config["billing_providers"][0]
    first["practitioner_npis"] = npis[0::2]
    second = json.loads(json.dumps(first)) | {"npi": SECOND_GROUP_NPI, "name": "Riverbend Heart Group PC",
                                              "practitioner_npis": npis[1::2]}
    config["billing_providers"].append(second)
    path = tmp_path_factory.mktemp("config") / "practice.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _conf(root: Path, landing: Path, config: Path) -> dict:
    return {"landing": str(landing), "warehouse": str(root / "warehouse.duckdb"),
            "claims_dir": str(root / "claims"), "config": str(config)}


def _run(dag, night: date | None, conf: dict):
    """One DAG run through Airflow, as the scheduler would start it at 02:00 practice time.
    Retries off: a failure should fail the test now, not in a minute."""
    for task in dag.tasks:
        task.retries = 0
    logical = None if night is None else pendulum.datetime(night.year, night.month, night.day, 2, tz=TZ)
    return dag.test(logical_date=logical, run_conf=conf)


def _states(dag_run) -> dict[tuple[str, int], str]:
    return {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}


def _claim_lines(claims_dir: Path) -> list[dict]:
    rows = []
    for batch in delivery.batches(claims_dir):
        with open(batch / "claim_lines.csv", newline="", encoding="utf-8") as fh:
            rows += list(csv.DictReader(fh))
    return rows


def _billed(rows: list[dict]) -> Counter:
    """What was billed, without the names a run gives it (batch and claim ids)."""
    return Counter((r["billing_npi"], r["patient_id"], r["service_month"], r["date_of_service"], r["cpt_code"],
                    r["units"], r["charge_amount"]) for r in rows)


@pytest.fixture(scope="module")
def catch_up(airflow_db, dagbag, landing, two_provider_config, tmp_path_factory):
    """One nightly DAG run that catches up on every drop, and its delivery."""
    root = tmp_path_factory.mktemp("catch_up")
    conf = _conf(root, landing, two_provider_config)
    with _task_log(root / "task.log"):  # what the tasks log, as a worker's log file would hold it
        nightly_run = _run(dagbag.dags[NIGHTLY], CATCH_UP_NIGHT, conf)
    delivery_conf = {"claims_dir": conf["claims_dir"], "outbox": str(root / "outbox")}
    delivery_run = _run(dagbag.dags[DELIVERY], None, delivery_conf)
    return {"root": root, "conf": conf, "nightly": nightly_run, "delivery": delivery_run,
            "delivery_conf": delivery_conf, "task_log": (root / "task.log").read_text(errors="replace")}


@contextmanager
def _task_log(path: Path):
    """Everything written to this process's stdout and stderr (file descriptors 1 and 2), into `path`."""
    sys.stdout.flush(), sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "w", encoding="utf-8") as fh:
        os.dup2(fh.fileno(), 1), os.dup2(fh.fileno(), 2)
        try:
            with redirect_stdout(fh), redirect_stderr(fh):
                yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


# ------------------------------------------------------------------ integrity (no DB)

def test_dag_files_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {NIGHTLY, DELIVERY} <= set(dagbag.dags)


def test_every_pipeline_stage_has_its_own_task_in_run_order(dagbag):
    dag = dagbag.dags[NIGHTLY]
    dag.check_cycle()
    missing = set(pipeline.STAGES) - set(dag.task_dict)
    assert not missing, f"pipeline stages with no task in {NIGHTLY}: {sorted(missing)}"
    order = [t.task_id for t in dag.topological_sort()]
    wired = [t for t in order if t in pipeline.STAGES]
    assert wired == list(pipeline.STAGES), "tasks run the stages in pipeline.STAGES order"
    assert order[:2] == ["discover_drops", "start_run"] and order[-1] == "finish_run"
    for earlier, later in zip(STAGE_TASKS, STAGE_TASKS[1:]):
        assert earlier in dag.task_dict[later].upstream_task_ids


def test_every_task_calls_a_function_that_exists(dagbag):
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert callable(task.python_callable), f"{dag.dag_id}.{task.task_id}"
    nightly = dagbag.dags[NIGHTLY]
    for name, stage in pipeline.STAGES.items():  # the task runs the very function `ccm run` runs
        assert f"pipeline.{stage.__name__}" in inspect.getsource(nightly.task_dict[name].python_callable), name


def test_run_is_recorded_even_when_a_stage_fails(dagbag):
    dag = dagbag.dags[NIGHTLY]
    start, finish = dag.task_dict["start_run"], dag.task_dict["finish_run"]
    assert start.is_setup and finish.is_teardown
    assert {"claims", "marts", "publish_batch"} <= finish.upstream_task_ids


def test_owner_tags_retries_and_one_writer_at_a_time(dagbag):
    for dag in dagbag.dags.values():
        assert dag.max_active_runs == 1, dag.dag_id
        assert dag.catchup is False, dag.dag_id
        assert "ccm" in dag.tags, dag.dag_id
        for task in dag.tasks:
            assert task.owner == "ccm-data", task.task_id
            assert task.retries == 2, task.task_id
            assert task.retry_exponential_backoff, task.task_id
            assert task.retry_delay.total_seconds() == 60, task.task_id


def test_nightly_runs_at_2am_practice_time(dagbag):
    timetable = dagbag.dags[NIGHTLY].timetable
    assert isinstance(timetable, CronTriggerTimetable)
    assert timetable.expression == "0 2 * * *"
    assert str(timetable.timezone) == TZ


def test_claim_batch_asset_links_nightly_to_delivery(dagbag):
    nightly, delivery = dagbag.dags[NIGHTLY], dagbag.dags[DELIVERY]
    assert airflow_tasks.CLAIM_BATCHES in nightly.task_dict["publish_batch"].outlets
    assert airflow_tasks.WAREHOUSE_MARTS in nightly.task_dict["marts"].outlets
    assert list(delivery.timetable.asset_condition.objects) == [airflow_tasks.CLAIM_BATCHES]


def test_per_provider_interchange_checks_are_mapped(dagbag):
    dag = dagbag.dags[NIGHTLY]
    assert dag.task_dict["validate_interchange"].is_mapped
    assert dagbag.dags[DELIVERY].task_dict["deliver_batch"].is_mapped


# ------------------------------------------------------------------ helpers (no DB)

@pytest.mark.parametrize("logical, expected", [
    ("2026-11-08T07:00:00+00:00", date(2026, 11, 8)),   # 02:00 EST
    ("2026-07-08T06:00:00+00:00", date(2026, 7, 8)),    # 02:00 EDT
    ("2026-11-08T03:00:00+00:00", date(2026, 11, 7)),   # 22:00 the evening before, in New York
])
def test_as_of_is_the_logical_date_in_practice_time(logical, expected):
    assert airflow_tasks.as_of_date(datetime.fromisoformat(logical), datetime.now(timezone.utc), TZ) == expected


def test_as_of_param_overrides_and_manual_runs_without_logical_date_use_trigger_time():
    now = datetime(2026, 11, 8, 15, tzinfo=timezone.utc)
    assert airflow_tasks.as_of_date(now, now, TZ, override="2026-10-31") == date(2026, 10, 31)
    assert airflow_tasks.as_of_date(None, now, TZ) == date(2026, 11, 8)


def test_pipeline_run_id_is_stable_for_one_dag_run():
    run_after = datetime(2026, 11, 8, 7, tzinfo=timezone.utc)
    assert airflow_tasks.pipeline_run_id(date(2026, 11, 8), run_after) == "run-20261108-20261108T070000000000Z"


def _fake_batch(root: Path) -> Path:
    batch = root / "B20261108-001"
    (batch / "audit").mkdir(parents=True)
    files = {"claim_lines.csv": b"batch_id\n", "B20261108-001_1234567893.x12": b"ISA*00~", "audit/C1.json": b"{}"}
    for name, data in files.items():
        (batch / name).write_bytes(data)
    manifest = {"batch_id": batch.name, "as_of": "2026-11-08",
                "files": {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}}
    (batch / "manifest.json").write_text(json.dumps(manifest))
    return batch


def test_delivery_refuses_a_batch_changed_after_it_was_written(tmp_path):
    batch = _fake_batch(tmp_path / "claims")
    delivery.verify_manifest(batch)
    (batch / "claim_lines.csv").write_bytes(b"batch_id\nedited by hand\n")
    with pytest.raises(delivery.ManifestMismatch, match="claim_lines.csv: SHA-256 differs"):
        delivery.deliver_batch(batch, tmp_path / "outbox")
    assert not (tmp_path / "outbox" / f"{batch.name}.receipt.json").exists()


def test_delivery_refuses_a_file_slipped_into_a_batch(tmp_path):
    batch = _fake_batch(tmp_path / "claims")
    (batch / "extra.x12").write_bytes(b"ISA~")
    with pytest.raises(delivery.ManifestMismatch, match="extra.x12: not in the manifest"):
        delivery.verify_manifest(batch)


def test_delivery_packages_once_and_reproducibly(tmp_path):
    batch = _fake_batch(tmp_path / "claims")
    first = delivery.deliver_batch(batch, tmp_path / "outbox")
    assert delivery.undelivered_batches(tmp_path / "claims", tmp_path / "outbox") == []
    again = delivery.deliver_batch(batch, tmp_path / "outbox")
    assert again["already_delivered"] and again["package_sha256"] == first["package_sha256"]
    assert delivery.package_batch(batch) == Path(first["package"]).read_bytes()


# ------------------------------------------------------------------ real runs through Airflow

def test_nightly_dag_writes_a_claim_batch_for_closed_months(catch_up):
    states = _states(catch_up["nightly"])
    assert str(catch_up["nightly"].state) == "success", states
    assert all(state == "success" for state in states.values()), states
    batches = delivery.batches(catch_up["conf"]["claims_dir"])
    assert len(batches) == 1
    batch = batches[0]
    manifest = json.loads((batch / "manifest.json").read_text())
    assert manifest["as_of"] == CATCH_UP_NIGHT.isoformat()
    assert manifest["counts"]["claims"] > 0
    x12 = sorted(batch.glob("*.x12"))
    assert {p.stem.rsplit("_", 1)[-1] for p in x12} == {"1234567893", SECOND_GROUP_NPI}
    # one mapped check per billing provider's interchange
    assert sorted(k[1] for k in states if k[0] == "validate_interchange") == [0, 1]
    labels = {ti.rendered_map_index for ti in catch_up["nightly"].get_task_instances()
              if ti.task_id == "validate_interchange"}
    assert labels == {p.name for p in x12}
    # the run is recorded under the DAG run's pipeline run id, with every stage's summary
    con = duckdb.connect(catch_up["conf"]["warehouse"], read_only=True)
    try:
        run_id, status, summary = con.execute("select run_id, status, summary from raw.runs").fetchone()
    finally:
        con.close()
    assert status == "succeeded" and run_id == manifest["run_id"]
    assert set(pipeline.STAGES) <= set(json.loads(summary))


def test_checked_batch_is_published_as_an_asset_event(catch_up):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    batch = delivery.batches(catch_up["conf"]["claims_dir"])[0]
    with create_session() as session:
        extras = session.scalars(
            select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == airflow_tasks.CLAIM_BATCHES.name)).all()
    assert {"batch_id": batch.name, "as_of": CATCH_UP_NIGHT.isoformat(), "interchanges": 2} in extras


def test_interchange_check_refuses_a_file_changed_on_disk(catch_up, tmp_path):
    import shutil

    from airflow.sdk.exceptions import AirflowFailException

    batch = shutil.copytree(delivery.batches(catch_up["conf"]["claims_dir"])[0], tmp_path / "batch")
    x12 = sorted(batch.glob("*.x12"))[0]
    assert airflow_tasks.validate_interchange(x12)["valid"]
    x12.write_text(x12.read_text().replace("CLM*", "CLM*X", 1))
    with pytest.raises(AirflowFailException, match="SHA-256 differs"):
        airflow_tasks.validate_interchange(x12)


def test_delivery_dag_packages_the_batch_with_a_receipt(catch_up):
    assert str(catch_up["delivery"].state) == "success", _states(catch_up["delivery"])
    batch = delivery.batches(catch_up["conf"]["claims_dir"])[0]
    outbox = Path(catch_up["delivery_conf"]["outbox"])
    package = outbox / f"{batch.name}.tar.gz"
    receipt = json.loads((outbox / f"{batch.name}.receipt.json").read_text())
    assert stat.S_IMODE(package.stat().st_mode) == 0o600
    assert receipt["package_sha256"] == airflow_tasks.sha256_file(package)
    manifest = json.loads((batch / "manifest.json").read_text())
    with tarfile.open(package) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
    assert names == set(manifest["files"]) | {"manifest.json"}
    assert receipt["files_verified"] == len(manifest["files"])


def test_dag_bills_exactly_what_ccm_run_bills(catch_up, landing, two_provider_config, tmp_path):
    reference = pipeline.RunRequest(landing, tmp_path / "warehouse.duckdb", tmp_path / "claims", CATCH_UP_NIGHT,
                                    two_provider_config)
    pipeline.run(reference)
    assert _billed(_claim_lines(Path(catch_up["conf"]["claims_dir"]))) == _billed(_claim_lines(tmp_path / "claims"))


def test_backfill_bills_each_patient_month_once_and_matches_one_catch_up_run(
        catch_up, dagbag, landing, two_provider_config, tmp_path):
    conf = _conf(tmp_path, landing, two_provider_config)
    runs = [_run(dagbag.dags[NIGHTLY], night, conf) for night in BACKFILL_NIGHTS]
    assert [str(r.state) for r in runs] == ["success"] * len(runs), [_states(r) for r in runs]
    # 1 October: nothing has closed yet (September closes after its grace days): no batch to publish
    assert _states(runs[0])[("publish_batch", -1)] == "skipped"
    backfilled = _claim_lines(tmp_path / "claims")
    assert len({r["batch_id"] for r in backfilled}) == 2  # September, then October
    months = Counter((r["patient_id"], r["service_month"]) for r in backfilled)
    per_batch = {(r["batch_id"], r["patient_id"], r["service_month"]) for r in backfilled}
    assert len(per_batch) == len(months), "a patient-month appears in two batches"
    assert _billed(backfilled) == _billed(_claim_lines(Path(catch_up["conf"]["claims_dir"])))
    # and running the last night again bills nothing more
    again = _run(dagbag.dags[NIGHTLY], BACKFILL_NIGHTS[-1], conf)
    assert str(again.state) == "success"
    assert _states(again)[("publish_batch", -1)] == "skipped"
    assert len(_claim_lines(tmp_path / "claims")) == len(backfilled)


def test_bad_landing_file_fails_the_run_at_once_and_leaves_no_warehouse(airflow_db, dagbag, tmp_path,
                                                                       two_provider_config):
    drop = tmp_path / "landing" / "2026-11-08"
    drop.mkdir(parents=True)
    (drop / "activities.csv").write_text("activity_id,patient_id\nA1,P1\n")  # most required columns missing
    conf = _conf(tmp_path, tmp_path / "landing", two_provider_config)
    dag = dagbag.dags[NIGHTLY]
    for task in dag.tasks:
        task.retries = 2  # would retry an I/O error; bad input must not wait for them
    started = pendulum.now()
    run = dag.test(logical_date=pendulum.datetime(2026, 11, 8, 2, tz=TZ), run_conf=conf)
    states = _states(run)
    assert str(run.state) == "failed"
    assert states[("discover_drops", -1)] == "failed"
    assert states[("start_run", -1)] == "upstream_failed"
    assert (pendulum.now() - started).total_seconds() < 30, "bad input waited for retries"
    assert not (tmp_path / "warehouse.duckdb").exists()
    # discover_drops gave the warehouse's lease back (start_run never ran, nor its teardown)
    run_lock.RunLock(tmp_path / "warehouse.duckdb", "run-next", wait=0).acquire().release()


def test_a_dag_run_gives_the_warehouse_back_and_its_task_logs_hold_no_phi(catch_up, landing):
    run_lock.RunLock(Path(catch_up["conf"]["warehouse"]), "run-next", wait=0).acquire().release()
    phi = set()
    for patients in landing.glob("*/patients.csv"):
        with open(patients, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                phi |= {v for v in (r["mbi"], r["last_name"], r["birth_date"]) if v and len(v) > 3}
    text = catch_up["task_log"]
    assert "Returned value was" in text and phi  # the log holds every task's output
    assert [v for v in phi if v in text] == []


def test_params_must_be_absolute_paths_because_workers_have_no_shared_working_directory(tmp_path):
    from types import SimpleNamespace

    from transforms.settings import ConfigError

    dag_run = SimpleNamespace(run_after=datetime(2026, 11, 8, 7, tzinfo=timezone.utc), run_id="manual__x")
    params = {"landing": "demo/landing", "warehouse": str(tmp_path / "w.duckdb"), "claims_dir": str(tmp_path),
              "config": "", "as_of": None}
    with pytest.raises(ConfigError, match="params.landing.*not an absolute path"):
        airflow_tasks.nightly_run({"params": params, "dag_run": dag_run, "logical_date": dag_run.run_after})
    run = airflow_tasks.nightly_run({"params": params | {"landing": str(tmp_path)}, "dag_run": dag_run,
                            "logical_date": dag_run.run_after})
    assert run.request.as_of == date(2026, 11, 8)
    assert run.run_id == "run-20261108-20261108T070000000000Z"


def test_responses_param_reaches_the_run_request_and_the_responses_task_reads_the_responses_asset(dagbag, tmp_path):
    from types import SimpleNamespace

    dag_run = SimpleNamespace(run_after=datetime(2026, 11, 8, 7, tzinfo=timezone.utc), run_id="manual__x")
    params = {"landing": str(tmp_path), "warehouse": str(tmp_path / "w.duckdb"), "claims_dir": str(tmp_path),
              "config": "", "as_of": None}
    context = {"params": params, "dag_run": dag_run, "logical_date": dag_run.run_after}
    assert airflow_tasks.nightly_run(context).request.responses is None  # empty: nothing read
    context["params"] = params | {"responses": str(tmp_path / "inbox")}
    assert airflow_tasks.nightly_run(context).request.responses == tmp_path / "inbox"
    task = dagbag.dags[NIGHTLY].task_dict["responses"]
    assert [a.name for a in task.inlets] == ["ccm_responses"]
    assert "responses" in dagbag.dags[NIGHTLY].params
