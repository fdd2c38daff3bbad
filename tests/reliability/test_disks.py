"""A full or read-only claims or warehouse folder: the run fails with one line naming the
folder; nothing stored is lost or changed, nothing is half-billed; once the folder can be
written again, a rerun bills exactly what it would have.

The folders are small tmpfs mounts (we run as root here, and so does CI); where mounting
is not allowed the tests are skipped, saying so."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reliability_fixtures import NOTES, Place, activity, ccm, ccm_subprocess, write_csv, write_full_drop
from transforms.contract import TABLES


def _mount(point: Path, size: str) -> None:
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)], check=True,
                   capture_output=True)


def _remount(point: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(point)], check=True, capture_output=True)


@pytest.fixture
def mounts(tmp_path):
    """mount(folder, size): a tmpfs there, unmounted after the test."""
    probe = tmp_path / "probe"
    try:
        _mount(probe, "64k")
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here ({exc}); the disk tests need root and CAP_SYS_ADMIN")
    subprocess.run(["umount", str(probe)], check=True)
    mounted: list[Path] = []

    def mount(point: Path, size: str) -> Path:
        _mount(point, size)
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def nothing_billed(place: Place) -> None:
    assert place.query("select count(*) from billing.ledger") == [(0,)]
    assert place.query("select count(*) from billing.batches where status <> 'abandoned'") == [(0,)]
    assert [p for p in place.claims.iterdir()] == [] if place.claims.exists() else True


def billed_once(place: Place) -> None:
    assert place.query("select patient_id, billed_codes from billing.ledger order by 1") == [
        ("P1", "99490"), ("P2", "99490")]
    assert [p.name for p in place.claims.iterdir()] == ["B20260210-001"]


def test_a_full_claims_folder_fails_in_one_line_and_bills_nothing(tmp_path, mounts):
    place = Place(tmp_path / "p", claims_dir=tmp_path / "claims")
    write_full_drop(place.landing)
    mounts(place.claims, "12k")
    done = ccm_subprocess(place)
    assert done.returncode == 2, done.stderr
    assert one_line(done.stderr) == (
        f"{place.claims}: cannot write there (no space left on the device) during the claims stage; that step "
        f"stored nothing (what earlier steps stored is kept, no claim was half-billed): free space or fix the "
        f"folder, then rerun")
    nothing_billed(place)
    assert place.query("select status from raw.runs") == [("failed",)]
    _remount(place.claims, "size=8m")
    assert ccm_subprocess(place).returncode == 0
    billed_once(place)


def test_a_read_only_claims_folder_fails_in_one_line_and_bills_nothing(tmp_path, mounts):
    place = Place(tmp_path / "p", claims_dir=tmp_path / "claims")
    write_full_drop(place.landing)
    mounts(place.claims, "8m")
    _remount(place.claims, "ro")
    done = ccm_subprocess(place)
    assert done.returncode == 2, done.stderr
    assert one_line(done.stderr).startswith(
        f"{place.claims}: cannot write there (the file system is read-only) during the claims stage")
    nothing_billed(place)
    _remount(place.claims, "rw")
    assert ccm_subprocess(place).returncode == 0
    billed_once(place)


def _second_night(place: Place, n: int = 3000) -> None:
    rows = [activity(f"N{i}", "P1" if i % 2 else "P2", 2 + i % 28, "1", NOTES[i % 2],
                     started_at=f"2026-01-{2 + i % 28:02d}T{6 + i // 28 // 60 % 12:02d}:{i // 28 % 60:02d}:00",
                     documented_at=f"2026-01-{2 + i % 28:02d}T23:00:00") for i in range(n)]
    write_csv(place.landing / "2026-01-20" / "activities.csv", rows, list(TABLES["activities"].columns))


def test_a_full_warehouse_folder_fails_in_one_line_and_loses_nothing(tmp_path, mounts):
    place = Place(tmp_path / "p", warehouse_dir=tmp_path / "wh")
    write_full_drop(place.landing)
    mounts(place.warehouse_dir, "64m")
    assert ccm_subprocess(place).returncode == 0
    billed = place.query("select * from billing.ledger order by all")
    raw = place.query("select * from raw.activities order by all")
    _second_night(place)
    used = shutil.disk_usage(place.warehouse_dir).used
    _remount(place.warehouse_dir, f"size={used + (256 << 10)}")  # a quarter of a megabyte to spare
    done = ccm_subprocess(place, as_of="2026-02-11")
    assert done.returncode == 2, done.stderr
    line = one_line(done.stderr)
    assert line.startswith(f"{place.warehouse_dir}: cannot write there (no space left on the device)"), line
    # what was stored before is all there, nothing of the failed step is
    _remount(place.warehouse_dir, "size=64m")
    assert place.query("select * from billing.ledger order by all") == billed
    assert place.query("select * from raw.activities where _drop = '2026-01-13' order by all") == raw
    assert ccm_subprocess(place, as_of="2026-02-11").returncode == 0
    assert place.query("select count(*) from raw.activities where _drop = '2026-01-20'") == [(3000,)]
    assert place.query("select count(*) from billing.ledger") == [(2,)]
    assert place.query("select count(*) from raw.runs where status = 'running'") == [(0,)]


def test_a_read_only_warehouse_folder_fails_in_one_line_and_changes_nothing(tmp_path, mounts):
    place = Place(tmp_path / "p", warehouse_dir=tmp_path / "wh")
    write_full_drop(place.landing)
    mounts(place.warehouse_dir, "64m")
    assert ccm(place) == 0
    _second_night(place, 10)
    before = place.warehouse.read_bytes()
    _remount(place.warehouse_dir, "ro")
    done = ccm_subprocess(place, as_of="2026-02-11")
    assert done.returncode == 2, done.stderr
    assert "(the file system is read-only)" in one_line(done.stderr)
    assert str(place.warehouse_dir) in done.stderr
    assert place.warehouse.read_bytes() == before
    _remount(place.warehouse_dir, "rw")
    assert ccm_subprocess(place, as_of="2026-02-11").returncode == 0
