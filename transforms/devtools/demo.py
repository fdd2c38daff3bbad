"""`make demo`: sample drops, the nightly DAG run through Airflow, and where everything is.

    python -m transforms.devtools.demo [--dir demo] [--patients 200] [--months 3] [--seed 7]

Everything lives under the demo folder (git-ignored):

    demo/landing/           generated nightly drops (what an EHR export would leave)
    demo/warehouse.duckdb   the warehouse
    demo/claims/<batch>/    claim batches: 837P files, claim_lines.csv, audit/, manifest.json
    demo/runs/<run>/        Data Docs, run report, threshold worklist
    demo/outbox/            packaged batches and delivery receipts
    demo/airflow/           AIRFLOW_HOME: airflow.cfg, SQLite metadata DB, task logs

The DAGs run with `airflow dags test`, which executes a real DAG run (metadata
DB, task runner, XCom, mapped tasks, Asset events) in one process, without a
scheduler. Run it again and nothing is billed twice.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from transforms.paths import REPO_ROOT

NIGHTLY, DELIVERY = "ccm_claims_nightly", "ccm_claims_delivery"


def _airflow_cfg(home: Path, time_zone: str) -> str:
    return (
        "# Written by `python -m transforms.devtools.demo`: a one-machine Airflow for the demo.\n"
        "[core]\n"
        f"dags_folder = {REPO_ROOT / 'dags'}\n"
        "load_examples = False\n"
        f"default_timezone = {time_zone}\n"
        "[database]\n"
        f"sql_alchemy_conn = sqlite:///{home / 'airflow.db'}\n"
    )


def _environment(demo: Path, home: Path, time_zone: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # dates typed on the command line (dags test, backfill) are practice-local dates
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": time_zone,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "CCM_LANDING": str(demo / "landing"),
        "CCM_WAREHOUSE": str(demo / "warehouse.duckdb"),
        "CCM_CLAIMS_DIR": str(demo / "claims"),
        "CCM_OUTBOX": str(demo / "outbox"),
        "CCM_TIME_ZONE": time_zone,
        "CCM_TASK_RETRIES": "0",  # a demo shows a failure at once rather than after the retry backoff
    })
    env.pop("CCM_CONFIG", None)  # the shipped sample practice
    return env


def _airflow(args: list[str], env: dict[str, str], log: Path, label: str) -> float:
    """Run one `airflow ...` command, its chatter to a log file; stop the demo on failure."""
    print(f"  {label} ...", end="", flush=True)
    started = time.monotonic()
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n$ airflow {' '.join(args)}\n")
        fh.flush()
        done = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, stdout=fh, stderr=subprocess.STDOUT,
                              cwd=REPO_ROOT)
    took = time.monotonic() - started
    if done.returncode != 0:
        print(f" failed after {took:.0f} s")
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        print("\n".join(f"    | {line}" for line in tail), file=sys.stderr)
        raise SystemExit(f"`airflow {' '.join(args)}` failed; full log: {log}")
    print(f" done in {took:.0f} s")
    return took


def _latest_run(warehouse: Path) -> tuple[str, dict]:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        row = con.execute("select run_id, status, summary from raw.runs order by started_at desc limit 1").fetchone()
    finally:
        con.close()
    run_id, status, summary = row
    return run_id, json.loads(summary or "{}") | {"status": status}


def _rel(path: str | Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m transforms.devtools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / "demo", help="demo folder (default: <repo>/demo)")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from transforms.billing import delivery
    from transforms.devtools.generate import generate, suggest_as_of
    from transforms.settings import load_settings

    demo = args.dir.resolve()
    home = demo / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    log = home / "demo.log"
    time_zone = load_settings(None).time_zone
    env = _environment(demo, home, time_zone)
    (home / "airflow.cfg").write_text(_airflow_cfg(home, time_zone), encoding="utf-8")
    started = time.monotonic()

    print(f"CCM claims demo, everything under {_rel(demo)}/ (Airflow output: {_rel(log)})")
    result = generate(demo / "landing", patients=args.patients, months=args.months, seed=args.seed)
    print(f"  sample drops: {len(result.drops)} drops ({result.drops[0]} .. {result.drops[-1]}), "
          f"{result.patients} patients, {result.activities_total} activity rows")
    as_of = suggest_as_of(demo / "landing")  # the last drop: every generated month has closed

    _airflow(["db", "migrate"], env, log, f"Airflow metadata DB ({_rel(home / 'airflow.db')})")
    nightly_took = _airflow(["dags", "test", NIGHTLY, f"{as_of}T02:00:00"], env, log,
                            f"nightly DAG for the night of {as_of} (airflow dags test {NIGHTLY} {as_of}T02:00:00)")
    _airflow(["dags", "test", DELIVERY], env, log, f"delivery DAG (airflow dags test {DELIVERY})")

    run_id, summary = _latest_run(demo / "warehouse.duckdb")
    claims = summary.get("claims") or {}
    total = time.monotonic() - started
    print(f"\nRun {run_id} {summary['status']} (nightly DAG {nightly_took:.0f} s, demo {total:.0f} s)")
    print("Where things are:")
    if claims.get("batch_id"):
        batch = Path(claims["path"])
        print(f"  claim batch   {_rel(batch)}/  {claims['claims']} claims, {claims['lines']} lines, "
              f"{claims['units']} units, charges ${claims['charges']:,.2f}")
        print(f"                837P per billing provider: {', '.join(claims.get('x12_files') or [])}")
        print("                claim_lines.csv, audit/ (the activity log behind each claim), manifest.json")
    else:
        print(f"  claim batch   none new tonight (every closed month was billed before); "
              f"all batches: {_rel(demo / 'claims')}/")
    docs = (summary.get("validate") or {}).get("data_docs_index")
    if docs and Path(docs).exists():
        print(f"  Data Docs     {_rel(docs)}")
    report = (summary.get("marts") or {}).get("report_html")
    if report and Path(report).exists():
        print(f"  run report    {_rel(report)}")
    worklist = (summary.get("marts") or {}).get("worklist_csv")
    if worklist and Path(worklist).exists():
        print(f"  worklist      {_rel(worklist)}  (open month: minutes to the next threshold)")
    print(f"  warehouse     {_rel(demo / 'warehouse.duckdb')}  (marts.* views for dashboards)")
    receipts = sorted((demo / "outbox").glob(f"*{delivery.RECEIPT_SUFFIX}"))
    if receipts:
        print(f"  delivered     {_rel(demo / 'outbox')}/  {len(receipts)} package(s) with receipts, "
              f"e.g. {receipts[-1].name}")
    bin_dir = _rel(Path(sys.executable).parent)
    print(f"  Airflow       AIRFLOW_HOME={_rel(home)} (airflow.cfg, metadata DB); the DAG runs' output: {_rel(log)}")
    print(f"                browse the runs: PATH={bin_dir}:$PATH AIRFLOW_HOME={_rel(home)} airflow standalone"
          "  (then http://localhost:8080, user admin, password printed at start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
