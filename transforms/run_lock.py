"""Runs wait their turn: one run at a time holds a warehouse, for the run's whole length.

A run holds a *lease* on the warehouse: a small JSON record (run id, who holds
it, until when) in `<warehouse>.private/run.lock`, and, while one of its
processes actually works, an OS lock (flock) on that same file. The kernel drops
the flock when its process ends, however it ends, so a crashed holder is seen at
once:

- `ccm run` is one process: it takes the flock and the lease at the start and
  gives both back at the end. A lease of kind `ccm run` whose flock is free
  belongs to a run that died.
- an Airflow DAG run is many processes, one per task: each task takes the flock
  for the run's id, renews the lease (kind `airflow`, valid for
  CCM_RUN_LEASE_HOURS, default 6, the DAG run's timeout) and releases the flock
  when its task ends, keeping the lease, so no other run can slip in between two
  stages. The `finish_run` teardown gives the lease back. A task of the same DAG
  run (a retry, the next stage) takes it again; a lease that expired belongs to
  a DAG run that was abandoned.

Another run waits, polling, up to `wait_seconds` (`ccm run --wait`,
CCM_LOCK_WAIT_SECONDS, default 60), then refuses with WarehouseBusy: one line
naming the warehouse and the holder. A run that takes over a dead holder's lease
reports it; pipeline.start_run then marks every run still `running` in raw.runs
as failed (only the lease holder can be running).
"""
from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from transforms.errors import StorageError, WarehouseBusy, why
from transforms.privacy import mkdir_private

log = logging.getLogger(__name__)

WAIT_ENV = "CCM_LOCK_WAIT_SECONDS"
LEASE_ENV = "CCM_RUN_LEASE_HOURS"
DEFAULT_WAIT_SECONDS = 60.0
DEFAULT_LEASE_HOURS = 6.0
POLL_SECONDS = 0.25
CCM_RUN, AIRFLOW = "ccm run", "airflow"


def private_dir(warehouse: Path) -> Path:
    """The owner-only folder beside the warehouse: the run lock, DuckDB's spill files."""
    warehouse = Path(warehouse)
    return warehouse.with_name(warehouse.name + ".private")


def lock_path(warehouse: Path) -> Path:
    return private_dir(warehouse) / "run.lock"


def wait_seconds(explicit: float | None = None) -> float:
    if explicit is not None:
        return max(0.0, float(explicit))
    value = os.environ.get(WAIT_ENV, "").strip()
    return max(0.0, float(value)) if value else DEFAULT_WAIT_SECONDS


def _lease_hours() -> float:
    value = os.environ.get(LEASE_ENV, "").strip()
    return float(value) if value else DEFAULT_LEASE_HOURS


@dataclass
class Lease:
    run_id: str
    kind: str
    pid: int
    host: str
    since: str
    expires_at: str | None = None

    def describe(self) -> str:
        return f"run {self.run_id} ({self.kind}, pid {self.pid} on {self.host}, since {self.since})"

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) < now


class RunLock:
    """The warehouse's lease for one run, and the flock while this process works."""

    def __init__(self, warehouse: Path, run_id: str, kind: str = CCM_RUN, wait: float | None = None):
        self.warehouse = Path(warehouse)
        self.run_id = run_id
        self.kind = kind
        self.wait = wait_seconds(wait)
        self.fd: int | None = None
        self.taken_over: Lease | None = None  # a dead holder's lease this run took over

    def acquire(self) -> "RunLock":
        path = lock_path(self.warehouse)
        try:
            mkdir_private(path.parent)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        except OSError as exc:
            raise StorageError(f"{self.warehouse.parent}: cannot create the run lock beside the warehouse "
                               f"({why(exc)}); nothing was stored: fix the folder, then rerun") from None
        deadline = time.monotonic() + self.wait
        holder: Lease | None = None
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    holder = _read(fd)  # working right now
                else:
                    lease = _read(fd)
                    now = datetime.now(timezone.utc)
                    if lease is None or lease.run_id == self.run_id:
                        break
                    if lease.kind != AIRFLOW or lease.expired(now):
                        self.taken_over = lease  # its process died (or its DAG run was abandoned)
                        log.warning("run lock: %s ended without finishing; %s takes over", lease.describe(),
                                    self.run_id)
                        break
                    holder = lease  # a DAG run between two of its tasks
                    fcntl.flock(fd, fcntl.LOCK_UN)
                if time.monotonic() >= deadline:
                    who = holder.describe() if holder else "another run"
                    raise WarehouseBusy(f"warehouse {self.warehouse} is in use by {who}; waited "
                                        f"{self.wait:.0f} s: run again later, or wait longer with --wait "
                                        f"(or {WAIT_ENV})")
                time.sleep(POLL_SECONDS)
            self._write(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def _write(self, fd: int) -> None:
        now = datetime.now(timezone.utc)
        expires = (now + timedelta(hours=_lease_hours())).isoformat() if self.kind == AIRFLOW else None
        lease = Lease(self.run_id, self.kind, os.getpid(), socket.gethostname(), now.isoformat(timespec="seconds"),
                      expires)
        data = json.dumps(lease.__dict__).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)

    def release(self, finished: bool = True) -> None:
        """Give the flock back; the lease too when the run is over (or is one process)."""
        if self.fd is None:
            return
        try:
            if finished or self.kind == CCM_RUN:
                lease = _read(self.fd)
                if lease is not None and lease.run_id == self.run_id:
                    os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = None


def _read(fd: int) -> Lease | None:
    try:
        data = os.pread(fd, 4096, 0)
        return Lease(**json.loads(data)) if data.strip() else None
    except (ValueError, TypeError, OSError):
        return None  # half-written by its holder: unknown, try again


@contextmanager
def hold(warehouse: Path, run_id: str, kind: str = CCM_RUN, wait: float | None = None,
         finished_on_exit: bool = True) -> Iterator[RunLock]:
    lock = RunLock(warehouse, run_id, kind, wait).acquire()
    try:
        yield lock
    finally:
        lock.release(finished=finished_on_exit)


def release_lease(warehouse: Path, run_id: str, wait: float | None = None) -> None:
    """End a DAG run's lease (its teardown), whichever process holds nothing now."""
    if not lock_path(warehouse).exists():
        return
    lock = RunLock(warehouse, run_id, AIRFLOW, wait)
    try:
        lock.acquire()
    except WarehouseBusy:
        return  # another run holds it: ours is gone already
    lock.release(finished=True)
