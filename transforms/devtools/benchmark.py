"""Benchmark (issue 8): the whole nightly pipeline on ~N generated activity rows,
next to the floor (one bare DuckDB query) and a pandas baseline, then one
nightly ~50k-row drop onto the warehouse that already holds them.

    python -m transforms.devtools.benchmark [--n N] [--workdir DIR] [--format csv|parquet]
    make bench                    # N=10000000; `N=1000000 make bench` for a quick run

What runs, in one invocation, on the same files:

  landing   `transforms.devtools.generate` with `--months` (12) and the patient count that
            yields ~N activity rows (measured on a small calibration sample, so
            it follows the generator). The actual row count is reported. A
            landing already in the workdir with the same parameters is reused.
  floor     one DuckDB query: read every drop's activities file, keep the newest
            drop's row per activity_id, drop voided and face-to-face rows and
            negative minutes, sum minutes per patient and practice-local month,
            store the result in a DuckDB file.
  pandas    the same in pandas (read, concat, drop_duplicates, to_datetime,
            groupby), result to Parquet. Both baselines must agree on the
            number of patient-months and the minutes; the benchmark says so.
  load floor  not a contender but a yardstick for the ingest stage: DuckDB
            copying every file of every drop (all seven tables, as text) into
            one table per contract table. The pipeline must read all of that;
            the floor reads only the activities.
  full run  `ccm run` on a fresh warehouse, stage by stage (setup = discover +
            start_run, the six pipeline.STAGES, finish = finish_run), each
            stage in a fresh Python process, as the Airflow DAG runs it.
  nightly   one more drop, dated the day after the last one: ~50k activity rows
            (new activities in the open month, plus re-exported rows, voids and
            amendments of the previous drop, as overlapping exports carry) and
            the same full reference snapshots every generated drop carries;
            then `ccm run` for that night as one process (the headline number)
            and, on a copy of the warehouse taken before it, stage by stage.

How it measures: every measured piece (the generator too) runs as its own
child process. Wall time is taken around the child (interpreter start and
imports included: what a DAG task pays); "in stage" is the time of the stage
function alone, measured inside the child. Peak RSS is the child's VmHWM from
/proc/self/status, read by the child as it finishes: the kernel's high-water
mark of resident memory of that process image since exec (DuckDB's buffers
included). Not ru_maxrss: Linux folds the parent's RSS at fork time into the
child's ru_maxrss (a 10 MiB child of a 500 MiB parent reports 511 MiB), and
RUSAGE_CHILDREN is the maximum over all children so far. For a child killed
before it could report, the peak is the largest VmRSS sampled every 0.25 s.
CPU s is the child's user + system time from wait4() (DuckDB uses both cores,
so it can exceed wall; on a busy machine it moves less than wall does).
All files are in the page cache for every contender (the generator has just
written them, or they were read by the previous contender). The run totals
are the sums of the stage processes; the peak is the largest stage peak.

A shared machine must not go out of memory: a child resident above
--rss-limit-mib (default 60% of physical memory) is killed and reported as
such; --keep-going then runs the later stages anyway (a failed stage rolls
back; later stages create what they need empty), so one run still measures
them. Figures after a killed stage are lower bounds, and the report says so.

Targets (2 cores): full run within 3x the floor (aim 2x), every stage under
2 GiB peak RSS, the nightly drop under 10 s.

`--profile DIR` wraps each stage function in pyinstrument (if installed) and
writes DIR/<scenario>-<stage>.txt/.html; its timings are then not the
benchmark's. Results also go to <workdir>/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

DEFAULT_N = 10_000_000
DEFAULT_MONTHS = 12
DEFAULT_SEED = 8
CALIBRATION_PATIENTS = 3_000
NIGHTLY_ROWS = 50_000
# Shares of a nightly drop's activity rows that are not new activities.
NIGHTLY_REPEAT_SHARE, NIGHTLY_VOID_SHARE, NIGHTLY_AMEND_SHARE = 0.10, 0.005, 0.005
NIGHTLY_FIRST_ID = 900_000_001  # new activity ids, far above any the generator writes

TARGET_FLOOR_RATIO, AIM_FLOOR_RATIO = 3.0, 2.0
TARGET_PEAK_RSS_MIB = 2048
TARGET_NIGHTLY_S = 10.0

SETUP, FINISH = "setup", "finish"
ACTIVITY_COLUMNS = ("activity_id", "patient_id", "started_at", "duration_minutes", "face_to_face", "status")


# ---------------------------------------------------------------- measuring a child process

@dataclass
class Measured:
    name: str
    wall_s: float                  # around the child process
    peak_rss_mib: float            # the child's own ru_maxrss
    inner_s: float | None = None   # the measured function alone, inside the child
    cpu_s: float | None = None     # the child's user + system CPU time (robust to a busy machine)
    ok: bool = True
    error: str | None = None
    result: dict = field(default_factory=dict)


def _rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _measure(name: str, argv: list[str], log: Path, result_file: Path | None = None,
             timeout: float | None = None, rss_limit_mib: float | None = None) -> Measured:
    """Run argv as a child: wall time around it, CPU time from wait4(), peak RSS as the child
    reports it (VmHWM). A child over `timeout` seconds or `rss_limit_mib` resident is killed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    if result_file is not None and result_file.exists():
        result_file.unlink()
    with open(log, "w", encoding="utf-8") as out:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        status, usage, killed_for, polls, sampled_peak = None, None, None, 0, 0.0
        try:
            while True:
                pid, status, usage = os.wait4(child.pid, os.WNOHANG)
                if pid:
                    break
                polls += 1
                if polls % 50 == 0:  # every ~0.25 s: the memory guard (a shared machine must not OOM)
                    sampled_peak = max(sampled_peak, _rss_mib(child.pid))
                    if rss_limit_mib and sampled_peak > rss_limit_mib:
                        killed_for = f"killed at {sampled_peak:,.0f} MiB resident (limit {rss_limit_mib:,.0f} MiB)"
                if timeout is not None and time.perf_counter() - started > timeout:
                    killed_for = f"timed out after {timeout:.0f} s"
                if killed_for:
                    os.killpg(child.pid, signal.SIGKILL)
                    _, status, usage = os.wait4(child.pid, 0)
                    break
                time.sleep(0.005)
        except BaseException:  # Ctrl-C: do not leave a stage running behind us
            os.killpg(child.pid, signal.SIGKILL)
            os.wait4(child.pid, 0)
            raise
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    # fallback when the child cannot report: the sampled peak (wait4's ru_maxrss includes the parent at fork)
    measured = Measured(name, wall, sampled_peak, cpu_s=usage.ru_utime + usage.ru_stime)
    if result_file is not None and result_file.exists():
        payload = json.loads(result_file.read_text(encoding="utf-8"))
        measured.inner_s = payload.get("inner_s")
        measured.result = payload.get("result") or {}
        if payload.get("peak_rss_mib"):
            measured.peak_rss_mib = payload["peak_rss_mib"]
    if killed_for or child.returncode != 0:
        measured.ok = False
        tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:] or [""]
        measured.error = (killed_for or f"exit {child.returncode}: {tail[0][:200]}") + f" (log: {log})"
    return measured


def _vm_hwm_mib() -> float | None:
    """This process's peak RSS since exec (Linux), in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _child_argv(kind: str, spec: dict, spec_file: Path) -> list[str]:
    spec_file.write_text(json.dumps(spec, default=str), encoding="utf-8")
    return [sys.executable, "-m", "transforms.devtools.benchmark", "--child", kind, str(spec_file)]


# ---------------------------------------------------------------- the landing

def _landing_files(landing: Path, fmt: str) -> list[Path]:
    return sorted(landing.glob(f"*/activities.{fmt}"))


def choose_patients(n: int, months: int, seed: int, fmt: str, scratch: Path) -> tuple[int, float]:
    """Patients giving ~n activity rows over `months`: the generator's rows per patient
    measured on a small sample with the same months and seed."""
    from transforms.devtools.generate import generate

    sample = scratch / "calibration"
    shutil.rmtree(sample, ignore_errors=True)
    result = generate(sample, patients=CALIBRATION_PATIENTS, months=months, seed=seed, fmt=fmt)
    shutil.rmtree(sample, ignore_errors=True)
    per_patient = result.activities_total / CALIBRATION_PATIENTS
    return max(1, round(n / per_patient)), per_patient


def prepare_landing(workdir: Path, n: int, months: int, seed: int, fmt: str, regenerate: bool,
                    logs: Path) -> dict:
    """Generate (or reuse) the landing for ~n activity rows; returns what it holds.
    The generator runs in a child so that this process stays small."""
    landing = workdir / "landing"
    meta_file = landing / ".benchmark.json"
    wanted = {"n": n, "months": months, "seed": seed, "format": fmt}
    if not regenerate and meta_file.exists():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if {k: meta.get(k) for k in wanted} == wanted and all(
                (landing / d / f"activities.{fmt}").exists() for d in meta["drops"]):
            meta["reused"] = True
            return meta
    shutil.rmtree(landing, ignore_errors=True)
    result_file = logs / "generate.result.json"
    argv = _child_argv("generate", {**wanted, "workdir": str(workdir), "result_file": str(result_file)},
                       logs / "generate.spec.json")
    m = _measure("generate", argv, logs / "generate.log", result_file)
    if not m.ok:
        raise SystemExit(f"benchmark: generating the landing failed: {m.error}")
    meta = {**m.result, "generate_s": round(m.wall_s, 1), "generate_peak_rss_mib": round(m.peak_rss_mib)}
    meta_file.write_text(json.dumps(meta, indent=2), encoding="utf-8")
    meta["reused"] = False
    return meta


def _child_generate(spec: dict) -> dict:
    from transforms.devtools.generate import generate

    workdir, fmt, months, seed = Path(spec["workdir"]), spec["format"], spec["months"], spec["seed"]
    landing = workdir / "landing"
    started = time.perf_counter()
    patients, per_patient = choose_patients(spec["n"], months, seed, fmt, workdir)
    result = generate(landing, patients=patients, months=months, seed=seed, fmt=fmt)
    meta = {k: spec[k] for k in ("n", "months", "seed", "format")}
    meta.update({"patients": patients, "rows_per_patient": round(per_patient, 2),
                 "activity_rows": result.activities_total, "unique_activities": result.unique_activities,
                 "drops": result.drops, "last_drop": result.last_drop_date.isoformat(),
                 "bytes": sum(f.stat().st_size for f in landing.rglob("*") if f.is_file()),
                 "activity_bytes": sum(f.stat().st_size for f in _landing_files(landing, fmt))})
    return {"inner_s": time.perf_counter() - started, "result": meta}


def _read_table(path: Path):
    import polars as pl

    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)  # text, as the pipeline reads it
    return pl.read_parquet(path)


def write_nightly_drop(landing: Path, nightly: Path, rows: int, seed: int, fmt: str) -> dict:
    """`nightly/` = every drop of `landing` (symlinked) plus one new drop, the day after the
    last, holding ~`rows` activity rows and the last drop's reference snapshots."""
    import numpy as np
    import polars as pl

    from transforms.devtools import generate as g

    drops = sorted(p.name for p in landing.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    last = landing / drops[-1]
    day = date.fromisoformat(drops[-1]) + timedelta(days=1)
    shutil.rmtree(nightly, ignore_errors=True)
    nightly.mkdir(parents=True)
    for d in drops:
        (nightly / d).symlink_to((landing / d).resolve(), target_is_directory=True)
    new = nightly / day.isoformat()
    new.mkdir()
    for table in g.TABLES[:-1]:  # full snapshots, as every generated drop carries them
        shutil.copyfile(last / f"{table}.{fmt}", new / f"{table}.{fmt}")

    rng = np.random.default_rng([seed, 8])
    previous = _read_table(last / f"activities.{fmt}")
    staff = _read_table(last / f"staff.{fmt}")
    patients = _read_table(last / f"patients.{fmt}")["patient_id"]
    consents = _read_table(last / f"consents.{fmt}")

    # the export overlap: rows of the previous drop again, some voided or amended since
    # (as many as the previous drop holds; new activities make up the rest)
    candidates = np.flatnonzero((previous["status"].fill_null("active") != "voided").to_numpy())
    n_void = min(int(rows * NIGHTLY_VOID_SHARE), len(candidates) // 3)
    n_amend = min(int(rows * NIGHTLY_AMEND_SHARE), len(candidates) // 3)
    n_repeat = min(int(rows * NIGHTLY_REPEAT_SHARE), len(candidates) - n_void - n_amend)
    n_new = rows - n_repeat - n_void - n_amend

    # new activities: a patient's own care team, on the open month's business days so far
    roles = len(g.TEAM_ROLES)
    n_teams = max(1, staff.height // roles)
    pick = rng.choice(patients.len(), n_new, replace=n_new > patients.len())
    patient_idx = np.array([int(p[1:]) - 1 for p in patients.gather(pick).to_list()])
    slot = g.ACTIVITY_STAFF_SLOTS[rng.choice(len(g.ACTIVITY_STAFF_SLOTS), n_new, p=g.ACTIVITY_STAFF_WEIGHTS)]
    staff_no = (patient_idx % n_teams) * roles + np.where(slot < 0, 0, slot)
    own = dict(zip(consents["patient_id"].to_list(), consents["billing_npi"].to_list()))
    by_npi = {npi: sid for sid, npi in zip(staff["staff_id"].to_list(), staff["npi"].to_list()) if npi}
    staff_ids = staff["staff_id"].gather(np.minimum(staff_no, staff.height - 1)).to_list()
    patient_ids = patients.gather(pick).to_list()
    for i in np.flatnonzero(slot < 0):  # the consent's billing practitioner, where there is one
        staff_ids[i] = by_npi.get(own.get(patient_ids[i]), staff_ids[i])
    month_start = day.replace(day=1)
    days = [month_start + timedelta(k) for k in range((day - month_start).days + 1)]
    days = [d for d in days if d.weekday() < 5] or [day]
    on_day = np.array([(d - date(1970, 1, 1)).days for d in days])[rng.integers(0, len(days), n_new)]
    minutes = np.maximum(2, rng.gamma(2.0, 6.0, n_new).astype(np.int64))
    types = rng.choice(len(g.ACTIVITY_TYPES), n_new, p=g.ACTIVITY_TYPE_WEIGHTS)
    # each staff member's day laid out back to back from 8:00, so no overlaps are planted
    staff_arr = np.array(staff_ids)
    order = np.lexsort((on_day, staff_arr))
    slot_min = (minutes + rng.integers(3, 20, n_new))[order]
    first = np.r_[True, (staff_arr[order][1:] != staff_arr[order][:-1]) | (on_day[order][1:] != on_day[order][:-1])]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n_new), 0))
    cum = np.cumsum(slot_min)
    start_min = np.empty(n_new, np.int64)
    start_min[order] = 480 + cum - slot_min - (cum[group_start] - slot_min[group_start])
    start_s = on_day * 86_400 + start_min * 60
    doc_s = start_s + minutes * 60 + rng.integers(600, 7_200, n_new)
    fmt_ts = "%Y-%m-%dT%H:%M:%S"
    fresh = pl.DataFrame({
        "activity_id": [f"A{NIGHTLY_FIRST_ID + i:09d}" for i in range(n_new)],
        "patient_id": patient_ids,
        "staff_id": staff_ids,
        "started_at": pl.from_epoch(pl.Series(start_s), time_unit="s").dt.strftime(fmt_ts),
        "duration_minutes": minutes,
        "activity_type": [g.ACTIVITY_TYPES[t] for t in types],
        "face_to_face": np.zeros(n_new, bool),
        "note": g._notes(rng, types, minutes),
        "documented_at": pl.from_epoch(pl.Series(doc_s), time_unit="s").dt.strftime(fmt_ts),
        "status": pl.Series([None] * n_new, dtype=pl.String),
    })

    chosen = rng.choice(candidates, n_void + n_amend + n_repeat, replace=False)
    void, amend, repeat = np.split(chosen, [n_void, n_void + n_amend])
    stamp = f"{day.isoformat()}T12:00:00"
    voided = previous[void].with_columns(status=pl.lit("voided"))
    amended = previous[amend].with_columns(
        note=pl.concat_str(pl.lit(f"Amended {day.isoformat()}: "), pl.col("note")), documented_at=pl.lit(stamp))
    frame = pl.concat([previous[repeat], voided, amended,
                       fresh.select(previous.columns).cast(previous.schema)], how="vertical")
    frame = frame.sort("activity_id", maintain_order=True)
    path = new / f"activities.{fmt}"
    if fmt == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    reference_rows = sum(_read_table(new / f"{t}.{fmt}").height for t in g.TABLES[:-1])
    return {"drop": day.isoformat(), "activity_rows": frame.height, "new": n_new, "repeated": len(repeat),
            "voided": len(void), "amended": len(amend), "reference_rows": reference_rows}


# ---------------------------------------------------------------- contenders

def run_pipeline(scenario: str, landing: Path, base: Path, as_of: str, logs: Path, profile: Path | None,
                 timeout: float | None, rss_limit: float | None, keep_going: bool) -> tuple[list[Measured], dict]:
    """setup, the six stages, finish: each in a fresh process, with one run_id. A failed stage
    stops the run unless keep_going (a stage's transaction is rolled back when it fails, and
    later stages create what they need empty, so the rest still measures something)."""
    from transforms.pipeline import STAGES, new_run_id

    run_id = new_run_id(date.fromisoformat(as_of))
    spec = {"landing": str(landing), "warehouse": str(base / "warehouse.duckdb"),
            "claims_dir": str(base / "claims"), "as_of": as_of, "run_id": run_id,
            "profile": str(profile / f"{scenario}-{{stage}}") if profile else None}
    summary: dict[str, Any] = {"run_id": run_id, "as_of": as_of, "warehouse": spec["warehouse"]}
    measured: list[Measured] = []
    for name in (SETUP, *STAGES, FINISH):
        print(f"  {scenario}: {name} ...", end="", flush=True)
        result_file = logs / f"{scenario}-{name}.result.json"
        argv = _child_argv("stage", {**spec, "stage": name, "summary": summary, "result_file": str(result_file)},
                           logs / f"{scenario}-{name}.spec.json")
        m = _measure(name, argv, logs / f"{scenario}-{name}.log", result_file, timeout, rss_limit)
        measured.append(m)
        print(f" {m.wall_s:.1f} s, {m.peak_rss_mib:.0f} MiB" + ("" if m.ok else f"  FAILED: {m.error}"), flush=True)
        if not m.ok and not (keep_going and name not in (SETUP, "ingest")):
            break
        if name in STAGES:
            summary[name] = m.result
    return measured, summary


def run_baseline(kind: str, landing: Path, fmt: str, time_zone: str, workdir: Path, logs: Path,
                 rss_limit: float | None) -> Measured:
    print(f"  {kind} ...", end="", flush=True)
    result_file = logs / f"{kind}.result.json"
    out = workdir / {"floor": "floor.duckdb", "load_floor": "load_floor.duckdb",
                     "pandas": "pandas_patient_month.parquet"}[kind]
    for f in (out, out.with_name(out.name + ".wal")):
        f.unlink(missing_ok=True)
    argv = _child_argv(kind, {"landing": str(landing), "format": fmt, "time_zone": time_zone, "out": str(out),
                              "result_file": str(result_file)}, logs / f"{kind}.spec.json")
    m = _measure(kind, argv, logs / f"{kind}.log", result_file, rss_limit_mib=rss_limit)
    print(f" {m.wall_s:.1f} s, {m.peak_rss_mib:.0f} MiB" + ("" if m.ok else f"  FAILED: {m.error}"), flush=True)
    return m


def run_cli(landing: Path, base: Path, as_of: str, logs: Path, timeout: float | None,
            rss_limit: float | None) -> Measured:
    """`ccm run` as the command line runs it (transforms.cli.main), in one process."""
    print("  nightly: ccm run ...", end="", flush=True)
    cli_args = ["run", "--landing", str(landing), "--warehouse", str(base / "warehouse.duckdb"),
                "--claims-dir", str(base / "claims"), "--as-of", as_of]
    result_file = logs / "nightly-ccm-run.result.json"
    argv = _child_argv("cli", {"argv": cli_args, "result_file": str(result_file)}, logs / "nightly-ccm-run.spec.json")
    m = _measure("ccm run", argv, logs / "nightly-ccm-run.log", result_file, timeout, rss_limit)
    if m.ok and m.result.get("exit_code"):
        m.ok, m.error = False, f"ccm run exited {m.result['exit_code']} (log: {logs / 'nightly-ccm-run.log'})"
    print(f" {m.wall_s:.1f} s, {m.peak_rss_mib:.0f} MiB" + ("" if m.ok else f"  FAILED: {m.error}"), flush=True)
    return m


# ---------------------------------------------------------------- child processes

def _child_stage(spec: dict) -> dict:
    from transforms import pipeline
    from transforms.settings import load_settings

    request = pipeline.RunRequest.from_strings(spec["landing"], spec["warehouse"], spec["claims_dir"], spec["as_of"])
    settings = load_settings(None)
    ctx = pipeline.RunContext(request, settings, spec["run_id"])
    name = spec["stage"]
    profiler = None
    if spec.get("profile"):
        try:
            from pyinstrument import Profiler
            profiler = Profiler(interval=0.005)
        except ImportError:
            print("benchmark: --profile needs pyinstrument (pip install pyinstrument); not profiling", file=sys.stderr)
    if profiler:
        profiler.start()
    started = time.perf_counter()
    if name == SETUP:
        pipeline.discover(request, settings)  # fail on bad files before the warehouse is touched
        result = pipeline.start_run(ctx)
    elif name == FINISH:
        pipeline.finish_run(ctx, spec["summary"])
        result = {}
    else:
        result = pipeline.STAGES[name](ctx)
    inner = time.perf_counter() - started
    if profiler:
        profiler.stop()
        stem = Path(spec["profile"].format(stage=name))
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".txt").write_text(profiler.output_text(unicode=False, color=False, show_all=False),
                                            encoding="utf-8")
        stem.with_suffix(".html").write_text(profiler.output_html(), encoding="utf-8")
    return {"inner_s": inner, "result": result}


FLOOR_SQL = """
create table patient_month_minutes as
with activity_rows as (
    select activity_id, patient_id, started_at, duration_minutes, face_to_face, status, filename
    from {reader}
),
current_version as (   -- the newest drop wins
    select * from activity_rows
    qualify row_number() over (partition by activity_id order by filename desc) = 1
),
counted as (
    select patient_id,
           date_trunc('month', timezone('{tz}', try_cast(started_at as timestamptz)))::date as service_month,
           try_cast(duration_minutes as integer) as minutes
    from current_version
    where coalesce(status, '') <> 'voided' and try_cast(face_to_face as boolean) = false
)
select patient_id, service_month, sum(minutes) as minutes
from counted
where service_month is not null and minutes >= 0
group by all
"""


def _child_floor(spec: dict) -> dict:
    import duckdb

    landing, fmt, tz = Path(spec["landing"]), spec["format"], spec["time_zone"]
    glob = str(landing / "*" / f"activities.{fmt}")
    reader = (f"read_csv('{glob}', header = true, all_varchar = true, filename = true)" if fmt == "csv"
              else f"read_parquet('{glob}', filename = true)")
    started = time.perf_counter()
    con = duckdb.connect(spec["out"])
    con.execute(f"set TimeZone = '{tz}'")
    con.execute(FLOOR_SQL.format(reader=reader, tz=tz))
    groups, minutes = con.execute("select count(*), sum(minutes) from patient_month_minutes").fetchone()
    con.close()
    return {"inner_s": time.perf_counter() - started,
            "result": {"patient_months": int(groups), "minutes": int(minutes)}}


def _child_load_floor(spec: dict) -> dict:
    import duckdb

    from transforms.contract import LOAD_ORDER

    landing, fmt = Path(spec["landing"]), spec["format"]
    started = time.perf_counter()
    con = duckdb.connect(spec["out"])
    rows = {}
    for table in LOAD_ORDER:
        glob = str(landing / "*" / f"{table}.{fmt}")
        reader = (f"read_csv('{glob}', header = true, all_varchar = true, filename = true)" if fmt == "csv"
                  else f"read_parquet('{glob}', filename = true)")
        con.execute(f"create table {table} as select * from {reader}")
        rows[table] = con.execute(f"select count(*) from {table}").fetchall()[0][0]
    con.close()
    return {"inner_s": time.perf_counter() - started, "result": {"rows": sum(rows.values()), "by_table": rows}}


def _child_pandas(spec: dict) -> dict:
    import pandas as pd

    landing, fmt, tz = Path(spec["landing"]), spec["format"], spec["time_zone"]
    started = time.perf_counter()
    frames = []
    for path in _landing_files(landing, fmt):
        if fmt == "csv":
            frames.append(pd.read_csv(path, usecols=list(ACTIVITY_COLUMNS), dtype=str, keep_default_na=False))
        else:
            frames.append(pd.read_parquet(path, columns=list(ACTIVITY_COLUMNS)))
    rows = pd.concat(frames, ignore_index=True)
    del frames
    # files were read in drop order: the last row of an id is the newest drop's
    rows = rows.drop_duplicates("activity_id", keep="last")
    face_to_face = rows["face_to_face"].astype(str).str.lower()
    rows = rows[(rows["status"].fillna("") != "voided") & (face_to_face == "false")]
    minutes = pd.to_numeric(rows["duration_minutes"], errors="coerce")
    text = rows["started_at"].astype(str)
    naive = text.str.len() == 19  # no offset, no Z: practice-local time
    local = pd.Series(pd.NaT, index=rows.index, dtype=f"datetime64[ns, {tz}]")
    local[naive] = (pd.to_datetime(text[naive], format="%Y-%m-%dT%H:%M:%S", errors="coerce")
                    .dt.tz_localize(tz, ambiguous="NaT", nonexistent="NaT"))
    local[~naive] = pd.to_datetime(text[~naive], format="ISO8601", utc=True, errors="coerce").dt.tz_convert(tz)
    counted = pd.DataFrame({"patient_id": rows["patient_id"], "minutes": minutes,
                            "service_month": local.dt.year * 100 + local.dt.month})
    counted = counted[counted["service_month"].notna() & (counted["minutes"] >= 0)]
    result = counted.groupby(["patient_id", "service_month"], sort=False, as_index=False)["minutes"].sum()
    result.to_parquet(spec["out"])
    return {"inner_s": time.perf_counter() - started,
            "result": {"patient_months": int(len(result)), "minutes": int(result["minutes"].sum())}}


def _child_cli(spec: dict) -> dict:
    from transforms import cli

    started = time.perf_counter()
    code = cli.main(spec["argv"])
    return {"inner_s": time.perf_counter() - started, "result": {"exit_code": code}}


def _child_main(kind: str, spec_file: str) -> int:
    import logging

    # progress in the child's log (the stages log counts and names of files, never PHI)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("transforms").setLevel(logging.INFO)
    spec = json.loads(Path(spec_file).read_text(encoding="utf-8"))
    run = {"stage": _child_stage, "floor": _child_floor, "pandas": _child_pandas, "cli": _child_cli,
           "generate": _child_generate, "load_floor": _child_load_floor}[kind]
    payload = run(spec)
    payload["peak_rss_mib"] = _vm_hwm_mib()
    Path(spec["result_file"]).write_text(json.dumps(payload, default=str), encoding="utf-8")
    return 0


# ---------------------------------------------------------------- report

def machine() -> dict:
    from importlib.metadata import version

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"date": date.today().isoformat(), "cpus": len(os.sched_getaffinity(0)), "cpu": cpu,
            "memory_gib": round(mem, 1), "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "duckdb": version("duckdb"), "polars": version("polars"),
            "pandas": version("pandas")}


def _mib(x: float) -> str:
    return f"{x:,.0f}"


def _stage_table(rows: list[Measured]) -> list[str]:
    out = [f"  {'stage':<10} {'wall s':>9} {'in stage s':>11} {'CPU s':>8} {'peak RSS MiB':>13}"]
    for m in rows:
        inner = f"{m.inner_s:.1f}" if m.inner_s is not None else "-"
        flag = "" if m.ok else "   FAILED" if "timed out" not in (m.error or "") else "   TIMEOUT"
        out.append(f"  {m.name:<10} {m.wall_s:>9.1f} {inner:>11} {m.cpu_s or 0:>8.1f} {_mib(m.peak_rss_mib):>13}{flag}")
    total_inner = sum(m.inner_s or 0 for m in rows)
    out.append(f"  {'total':<10} {sum(m.wall_s for m in rows):>9.1f} {total_inner:>11.1f} "
               f"{sum(m.cpu_s or 0 for m in rows):>8.1f} {_mib(max(m.peak_rss_mib for m in rows)):>13}"
               "  (peak = largest stage)")
    return out


def report(res: dict) -> str:
    mc, ld = res["machine"], res["landing"]
    lines = [
        f"ccm-claims benchmark, {mc['date']}: {mc['cpus']} cores ({mc['cpu']}), {mc['memory_gib']} GiB, "
        f"{mc['os']}; Python {mc['python']}, DuckDB {mc['duckdb']}, Polars {mc['polars']}, pandas {mc['pandas']}",
        f"landing: N={ld['n']:,} requested -> {ld['patients']:,} patients x {ld['months']} months, seed {ld['seed']}: "
        f"{ld['activity_rows']:,} activity rows ({ld['unique_activities']:,} activities) in {len(ld['drops'])} drops, "
        f"{ld['format']}, {ld['bytes'] / 2**20:,.0f} MiB ({ld['activity_bytes'] / 2**20:,.0f} MiB activities); "
        + ("reused" if ld["reused"] else f"generated in {ld['generate_s']:.0f} s, "
           f"{ld.get('generate_peak_rss_mib', 0):,} MiB peak"),
        f"load average (1 min) at start {res['load_start']:.2f}, at end {res['load_end']:.2f}"
        + ("  -- other work was running: prefer the CPU columns" if max(res["load_start"], res["load_end"]) > 0.5
           else ""),
        "",
    ]
    if res.get("profiled"):
        lines += ["PROFILED (pyinstrument): the timings below are inflated and are not benchmark figures", ""]
    full = [Measured(**m) for m in res["full"]]
    if full:
        lines += ["full run (ccm run on a fresh warehouse; each stage a fresh process, as the DAG runs it)"]
        lines += _stage_table(full)
        if s := res.get("full_summary", {}).get("ingest"):
            lines.append("  rows loaded: " + ", ".join(f"{t} {n:,}" for t, n in s["rows_loaded"].items()))
        if s := res.get("full_summary", {}).get("claims"):
            lines.append(f"  claims: {s.get('claims', 0):,} claims, {s.get('lines', 0):,} lines, "
                         f"{s.get('files', 0):,} files in the batch")
        if res.get("warehouse_mib"):
            lines.append(f"  warehouse after the run: {res['warehouse_mib']:,.0f} MiB")
        lines.append("")
    base = {k: Measured(**res[k]) for k in ("floor", "pandas") if res.get(k)}
    for k, m in base.items():
        what = "floor (one bare DuckDB query)" if k == "floor" else "pandas baseline (same logic)"
        got = m.result
        lines.append(f"{what:<32} {m.wall_s:>7.1f} s wall ({m.inner_s or 0:.1f} s in query, {m.cpu_s or 0:.1f} s CPU), "
                     f"{_mib(m.peak_rss_mib)} MiB peak; {got.get('patient_months', 0):,} patient-months, "
                     f"{got.get('minutes', 0):,} minutes" + ("" if m.ok else f"  FAILED: {m.error}"))
    if res.get("load_floor"):
        m = Measured(**res["load_floor"])
        ingest = next((x for x in full if x.name == "ingest"), None)
        lines.append(f"{'load floor (all 7 tables as text)':<32} {m.wall_s:>7.1f} s wall ({m.cpu_s or 0:.1f} s CPU), "
                     f"{_mib(m.peak_rss_mib)} MiB peak; {m.result.get('rows', 0):,} rows"
                     + (f"; ingest stage / load floor: {ingest.wall_s / m.wall_s:.1f}x"
                        if ingest and ingest.ok else "") + ("" if m.ok else f"  FAILED: {m.error}"))
    if len(base) == 2 and base["floor"].ok and base["pandas"].ok:
        same = base["floor"].result == base["pandas"].result
        lines.append(f"  floor and pandas {'agree' if same else 'DISAGREE'} on patient-months and minutes")
    if full:
        complete = all(m.ok for m in full)
        at_least = "" if complete else ">= "
        if not complete:
            lines += ["", "(some stages failed or were killed: full-run figures below are lower bounds)"]
        total = sum(m.wall_s for m in full)
        inner = sum(m.inner_s or 0 for m in full)
        peak = max(m.peak_rss_mib for m in full)
        lines.append("")
        for k, m in base.items():
            if m.ok:
                cpu = sum(x.cpu_s or 0 for x in full)
                in_stage = f"in-stage sum / in-query: {inner / (m.inner_s or m.wall_s):.1f}x; " if complete else ""
                lines.append(f"full run / {k:<6}: {at_least}{total / m.wall_s:5.1f}x wall  ({in_stage}"
                             f"CPU: {at_least}{cpu / (m.cpu_s or 1):.1f}x)")
        if "floor" in base and base["floor"].ok:
            ratio = total / base["floor"].wall_s
            verdict = ("meets the aim" if ratio <= AIM_FLOOR_RATIO else "meets the target" if ratio <= TARGET_FLOOR_RATIO
                       else "MISSES the target")
            lines.append(f"  target: full run within {TARGET_FLOOR_RATIO:.0f}x the floor (aim {AIM_FLOOR_RATIO:.0f}x): "
                         f"{verdict}")
        lines.append(f"  target: peak RSS under {TARGET_PEAK_RSS_MIB} MiB: "
                     + ("met" if peak < TARGET_PEAK_RSS_MIB else f"MISSED ({peak:,.0f} MiB)"))
    if nd := res.get("nightly_drop"):
        lines += ["", f"nightly drop {nd['drop']} onto the loaded warehouse: {nd['activity_rows']:,} activity rows "
                      f"({nd['new']:,} new, {nd['repeated']:,} repeated, {nd['voided']:,} voided, "
                      f"{nd['amended']:,} amended) + {nd['reference_rows']:,} reference-snapshot rows"]
        if cli := res.get("nightly_cli"):
            m = Measured(**cli)
            ok = m.ok and m.wall_s < TARGET_NIGHTLY_S
            lines.append(f"  ccm run (one process): {m.wall_s:.1f} s wall, {_mib(m.peak_rss_mib)} MiB peak  "
                         f"target < {TARGET_NIGHTLY_S:.0f} s: " + ("met" if ok else "MISSED")
                         + ("" if m.ok else f"  FAILED: {m.error}"))
        if stages := res.get("nightly_stages"):
            lines.append("  the same night, stage by stage (on a copy of the warehouse taken before it):")
            lines += ["  " + line for line in _stage_table([Measured(**m) for m in stages])]
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transforms.devtools.benchmark", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="activity rows to generate (default 10,000,000)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "ccm-bench",
                        help="landing, warehouses, logs, results.json (default: $TMPDIR/ccm-bench)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--months", type=int, default=DEFAULT_MONTHS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--nightly-rows", type=int, default=NIGHTLY_ROWS, help="activity rows of the nightly drop")
    parser.add_argument("--regenerate", action="store_true", help="regenerate the landing even if it matches")
    parser.add_argument("--skip-baselines", action="store_true")
    parser.add_argument("--skip-nightly", action="store_true")
    parser.add_argument("--stage-timeout", type=float, default=None, metavar="S",
                        help="kill a stage after S seconds (the run stops there unless --keep-going)")
    parser.add_argument("--rss-limit-mib", type=float, default=None, metavar="MIB",
                        help="kill a child resident above MIB (default: 60%% of physical memory)")
    parser.add_argument("--keep-going", action="store_true",
                        help="after a failed or killed stage, run the later stages anyway")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="pyinstrument each stage into DIR (timings are then not the benchmark's)")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child_main(*args.child)
    if args.n < 1000:
        parser.error("--n must be at least 1000")

    from transforms.pipeline import STAGES
    from transforms.settings import load_settings

    workdir = args.workdir.resolve()  # the run writes Data Docs under the warehouse: absolute paths
    workdir.mkdir(parents=True, exist_ok=True)
    logs = workdir / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir()
    profile = args.profile.resolve() if args.profile else None
    res_profiled = profile is not None
    time_zone = load_settings(None).time_zone
    rss_limit = args.rss_limit_mib or 0.6 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    res: dict[str, Any] = {"machine": machine(), "rss_limit_mib": round(rss_limit), "profiled": res_profiled, "load_start": os.getloadavg()[0], "command": " ".join([Path(sys.executable).name, "-m",
                                                                     "transforms.devtools.benchmark", *sys.argv[1:]])}

    print(f"landing: ~{args.n:,} activity rows ({args.format}) in {workdir / 'landing'} ...", flush=True)
    res["landing"] = landing = prepare_landing(workdir, args.n, args.months, args.seed, args.format, args.regenerate,
                                               logs)
    print(f"  {landing['activity_rows']:,} rows, {landing['patients']:,} patients, {len(landing['drops'])} drops"
          + (" (reused)" if landing["reused"] else f", generated in {landing['generate_s']:.0f} s"), flush=True)
    landing_dir = workdir / "landing"

    if not args.skip_baselines:
        res["floor"] = asdict(run_baseline("floor", landing_dir, args.format, time_zone, workdir, logs, rss_limit))
        res["pandas"] = asdict(run_baseline("pandas", landing_dir, args.format, time_zone, workdir, logs, rss_limit))
        res["load_floor"] = asdict(run_baseline("load_floor", landing_dir, args.format, time_zone, workdir, logs,
                                                rss_limit))

    full_dir = workdir / "full"
    shutil.rmtree(full_dir, ignore_errors=True)
    full_dir.mkdir()
    full, summary = run_pipeline("full", landing_dir, full_dir, landing["last_drop"], logs, profile,
                                 args.stage_timeout, rss_limit, args.keep_going)
    res["full"], res["full_summary"] = [asdict(m) for m in full], summary
    warehouse = full_dir / "warehouse.duckdb"
    if warehouse.exists():
        res["warehouse_mib"] = warehouse.stat().st_size / 2**20

    claims_ok = any(m.name == "claims" and m.ok for m in full)  # else the night would bill the whole year
    if not args.skip_nightly and claims_ok and (all(m.ok for m in full) or args.keep_going):
        nightly_landing = workdir / "landing-nightly"
        res["nightly_drop"] = drop = write_nightly_drop(landing_dir, nightly_landing, args.nightly_rows, args.seed,
                                                        args.format)
        copy_dir = workdir / "nightly-stages"
        shutil.rmtree(copy_dir, ignore_errors=True)
        copy_dir.mkdir()
        shutil.copyfile(warehouse, copy_dir / "warehouse.duckdb")  # claims dir starts empty: batch ids are per night
        res["nightly_cli"] = asdict(run_cli(nightly_landing, full_dir, drop["drop"], logs, args.stage_timeout,
                                            rss_limit))
        stages, _ = run_pipeline("nightly", nightly_landing, copy_dir, drop["drop"], logs, profile,
                                 args.stage_timeout, rss_limit, args.keep_going)
        res["nightly_stages"] = [asdict(m) for m in stages]
        shutil.rmtree(copy_dir, ignore_errors=True)

    res["load_end"] = os.getloadavg()[0]
    res["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    (workdir / "results.json").write_text(json.dumps(res, indent=2, default=str), encoding="utf-8")
    print()
    print(report(res))
    print(f"\nresults: {workdir / 'results.json'}; logs: {logs}")
    ok = bool(full) and all(m.ok for m in full)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
