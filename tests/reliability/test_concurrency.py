"""Runs wait their turn: one run holds the warehouse for its whole length (across the
DAG's tasks too); another waits, bounded, or refuses in one line naming the warehouse
and the holder; a holder that died is found and recorded as failed; a program holding
the DuckDB file (a dashboard) is waited for, then refused in one line."""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from reliability_fixtures import (Place, ccm, ccm_subprocess, copy_place, sha256, write_full_drop)
from transforms import run_lock
from transforms.billing.ledger import FAULT_ENV


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> Place:
    place = Place(tmp_path_factory.mktemp("loaded"))
    write_full_drop(place.landing)
    assert ccm(place) == 0
    return place


@pytest.fixture
def fresh(tmp_path) -> Place:
    place = Place(tmp_path / "fresh")
    write_full_drop(place.landing)
    return place


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_two_concurrent_runs_bill_once_and_the_second_waits_for_the_first(fresh):
    first = ccm_subprocess(fresh, "--wait", "300", wait=False)
    second = ccm_subprocess(fresh, "--wait", "300", wait=False)
    results = [p.communicate(timeout=300) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], results
    assert fresh.query("select count(*), count(distinct claim_id) from billing.ledger") == [(2, 2)]
    assert [p.name for p in fresh.claims.iterdir()] == ["B20260210-001"]
    assert fresh.query("select status, count(*) from raw.runs group by 1") == [("succeeded", 2)]
    # the runs did not interleave: one started after the other finished
    (a_start, a_end), (b_start, b_end) = fresh.query("select started_at, finished_at from raw.runs order by 1")
    assert b_start >= a_end


def test_two_concurrent_runs_that_may_not_wait_one_refuses_in_one_line(fresh):
    runs = [ccm_subprocess(fresh, wait=False) for _ in range(2)]  # --wait 0
    results = [(p.communicate(timeout=300), p.returncode) for p in runs]
    codes = sorted(code for _, code in results)
    assert codes in ([0, 0], [0, 2]), results  # [0, 0] only if they did not overlap at all
    for (out, err), code in results:
        if code == 2:
            line = one_line(err)
            assert line.startswith(f"warehouse {fresh.warehouse} is in use by run run-20260210-")
            assert "(ccm run, pid " in line and "waited 0 s" in line
    assert fresh.query("select count(*) from billing.ledger") == [(2,)]
    assert fresh.query("select count(*) from raw.runs where status = 'running'") == [(0,)]


def test_a_run_refuses_while_another_holds_the_warehouse_and_goes_once_it_is_released(loaded, tmp_path, capsys):
    place = copy_place(loaded, tmp_path / "case")
    holder = run_lock.RunLock(place.warehouse, "run-20260210-other", run_lock.CCM_RUN, wait=0).acquire()
    before = sha256(place.warehouse)
    try:
        assert ccm(place) == 2
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"warehouse {place.warehouse} is in use by run run-20260210-other (ccm run, pid ")
        assert sha256(place.warehouse) == before
    finally:
        holder.release()
    assert ccm(place) == 0


def test_a_waiting_run_goes_as_soon_as_the_holder_is_done(loaded, tmp_path):
    place = copy_place(loaded, tmp_path / "case")
    script = ("import sys, time; from pathlib import Path; from transforms import run_lock; "
              f"lock = run_lock.RunLock(Path({str(place.warehouse)!r}), 'run-holder', wait=0).acquire(); "
              "print('held', flush=True); time.sleep(3); lock.release()")
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[2])
    assert holder.stdout.readline().strip() == "held"
    started = time.monotonic()
    assert ccm(place, "--wait", "60") == 0
    assert 1.0 < time.monotonic() - started
    holder.wait(timeout=30)


def test_a_killed_run_is_found_by_the_next_one_and_recorded_as_failed(fresh, capsys):
    killed = ccm_subprocess(fresh, env={FAULT_ENV: "before_codes", f"{FAULT_ENV}_SIGNAL": "KILL"})
    assert killed.returncode == -9
    (dead,) = fresh.query("select run_id from raw.runs where status = 'running'")[0]
    capsys.readouterr()
    assert ccm(fresh) == 0  # no wait: its lease is a dead process's
    assert f"run {dead} had ended without finishing (killed?): recorded as failed" in capsys.readouterr().out
    assert fresh.query("select status from raw.runs where run_id = ?", [dead]) == [("failed",)]
    assert fresh.query("select count(*) from raw.runs where status = 'running'") == [(0,)]


# ---------------------------------------------------------------- across the DAG's tasks

@dataclass
class _Request:
    warehouse: Path
    lock_wait_seconds: float | None = 0


@dataclass
class _NightlyRun:  # what airflow_tasks.run_lease reads of a NightlyRun
    request: _Request
    run_id: str


def test_a_dag_run_holds_the_warehouse_between_its_tasks_until_its_teardown(loaded, tmp_path, capsys):
    from transforms import airflow_tasks

    place = copy_place(loaded, tmp_path / "case")
    dag_run = _NightlyRun(_Request(place.warehouse), "run-20260210-20260210T070000000000Z")
    with airflow_tasks.run_lease(dag_run):  # the ingest task, say: its process works
        pass
    # between two tasks no process holds anything, but the lease is the DAG run's
    assert ccm(place) == 2
    assert "is in use by run run-20260210-20260210T070000000000Z (airflow, pid" in one_line(capsys.readouterr().err)
    with airflow_tasks.run_lease(dag_run):  # its next task (or a retry) takes it again
        pass
    run_lock.release_lease(place.warehouse, dag_run.run_id, wait=0)  # finish_run, the teardown
    assert ccm(place) == 0


def test_a_failing_task_before_start_run_gives_the_lease_back(loaded, tmp_path):
    """discover_drops fails on bad input: start_run never runs, so the teardown does not either."""
    from transforms import airflow_tasks

    place = copy_place(loaded, tmp_path / "case")
    dag_run = _NightlyRun(_Request(place.warehouse), "run-20260210-20260210T070000000000Z")
    with pytest.raises(ValueError):
        with airflow_tasks.run_lease(dag_run, release_on_failure=True):
            raise ValueError("bad input")
    assert ccm(place) == 0


def test_an_abandoned_dag_runs_lease_expires(loaded, tmp_path, monkeypatch):
    place = copy_place(loaded, tmp_path / "case")
    monkeypatch.setenv(run_lock.LEASE_ENV, "0.0001")  # a third of a second
    lease = run_lock.RunLock(place.warehouse, "run-abandoned", run_lock.AIRFLOW, wait=0).acquire()
    lease.release(finished=False)
    time.sleep(0.5)
    assert ccm(place) == 0


# ---------------------------------------------------------------- a dashboard holding the file

def test_a_dashboard_holding_the_warehouse_read_only_is_waited_for_then_refused_in_one_line(loaded, tmp_path,
                                                                                          capsys):
    place = copy_place(loaded, tmp_path / "case")
    script = ("import duckdb, sys, time; con = duckdb.connect(sys.argv[1], read_only=True); "
              "print('open', flush=True); time.sleep(60)")
    dashboard = subprocess.Popen([sys.executable, "-c", script, str(place.warehouse)], stdout=subprocess.PIPE,
                                 text=True)
    try:
        assert dashboard.stdout.readline().strip() == "open"
        before = sha256(place.warehouse)
        started = time.monotonic()
        assert ccm(place, "--wait", "1") == 2
        assert time.monotonic() - started >= 1.0
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"warehouse {place.warehouse} is held open by ")
        assert f"(PID {dashboard.pid})" in line and "waited 1 s" in line
        assert sha256(place.warehouse) == before
    finally:
        dashboard.kill()
        dashboard.wait()
    assert ccm(place, as_of="2026-02-11") == 0
