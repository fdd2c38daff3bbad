"""`make demo`: sample drops, two nights of the nightly DAG through Airflow, the payer's answers in
between, and where everything is.

    python -m transforms.devtools.demo [--dir demo] [--patients 200] [--months 3] [--seed 7]

Night 1 bills every closed month. The payer simulator (transforms/devtools/payer.py) then answers the
batch with a 999, a 277CA (some claims rejected for an invalid MBI) and an 835 (some denied with CO-16
or CO-97, the rest paid less coinsurance and sequestration). The practice fixes one rejected patient's
MBI in the EHR, and the next drop carries it. Night 2 reads the responses, bills that fixed claim
again under a new claim id (the other rejections wait for a fix or `ccm resubmit`), and the marts show
what was paid, denied and rejected.

Everything lives under the demo folder (git-ignored):

    demo/landing/           generated nightly drops (what an EHR export would leave), and the fix drop
    demo/responses/         what the clearinghouse and the payer sent back (999, 277CA, 835)
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
import csv
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
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
        "CCM_RESPONSES": str(demo / "responses"),
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


def _fix_a_rejected_mbi(demo: Path, warehouse: Path, rejected: list[str], night: date) -> tuple[str, str] | None:
    """The practice corrects one rejected claim's MBI in the EHR: a new drop (named for `night`) with
    that patient's row, the MBI's last digit changed (still a well-formed MBI). Returns (claim, patient)."""
    import duckdb

    if not rejected:
        return None
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        claim_id, patient_id = con.execute("select claim_id, patient_id from billing.ledger where claim_id = ?",
                                           [sorted(rejected)[0]]).fetchone()
    finally:
        con.close()
    for export in sorted((demo / "landing").glob("*/patients.csv"), reverse=True):  # the newest row of the patient
        with open(export, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            fields, row = reader.fieldnames, next((r for r in reader if r["patient_id"] == patient_id), None)
        if row is not None:
            break
    else:
        return None
    row["mbi"] = row["mbi"][:-1] + str((int(row["mbi"][-1]) + 1) % 10)
    drop = demo / "landing" / night.isoformat()
    drop.mkdir(parents=True, exist_ok=True)
    with open(drop / "patients.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerow(row)
    return claim_id, patient_id


def _revenue_cycle(warehouse: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        statuses = dict(con.execute("select status, count(*) from marts.claim_status group by all").fetchall())
        paid = con.execute("select coalesce(sum(paid_amount), 0) from marts.claim_status").fetchone()[0]
        remitted = con.execute("select coalesce(sum(total_payment), 0), bool_and(reconciled) "
                               "from billing.remittances").fetchone()
        rebilled = con.execute("select claim_id, replaced_by_claim_id from marts.claim_status "
                               "where replaced_by_claim_id is not null order by 1").fetchall()
        waiting = con.execute("select count(*) from marts.rejections_to_fix").fetchone()[0]
        denials = con.execute("select count(*), min(appeal_deadline) from marts.denials_to_appeal").fetchone()
        two_live = con.execute("select count(*) from (select usage_indicator, patient_id, service_month "
                               "from billing.live_claims group by all having count(*) > 1)").fetchone()[0]
    finally:
        con.close()
    return {"statuses": statuses, "paid": paid, "remitted": remitted[0], "reconciled": remitted[1],
            "rebilled": rebilled, "waiting": waiting, "denials": denials, "two_live": two_live}


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
    from transforms.devtools import payer
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
    (demo / "responses").mkdir(parents=True, exist_ok=True)
    nightly_took = _airflow(["dags", "test", NIGHTLY, f"{as_of}T02:00:00"], env, log,
                            f"night 1, {as_of}: bill the closed months (airflow dags test {NIGHTLY} {as_of}T02:00:00)")
    _airflow(["dags", "test", DELIVERY], env, log, f"delivery DAG (airflow dags test {DELIVERY})")

    # the clearinghouse and the payer answer night 1's batch
    _, first = _latest_run(demo / "warehouse.duckdb")
    first_batch = Path((first.get("claims") or {}).get("path") or "")
    decided = payer.answer_batch(first_batch, demo / "responses", seed=args.seed) if first_batch.is_dir() else None
    if decided:
        print(f"  the payer answered batch {first_batch.name}: {len(decided['rejected'])} claims rejected (277CA), "
              f"{len(decided['denied'])} denied, {len(decided['paid'])} paid, ${decided['total_paid']:,.2f} "
              f"(999, 277CA, 835 in {_rel(demo / 'responses')}/)")
    night2 = date.fromisoformat(as_of) + timedelta(days=7)
    fixed = _fix_a_rejected_mbi(demo, demo / "warehouse.duckdb", decided["rejected"] if decided else [], night2)
    if fixed:
        print(f"  the practice corrects the MBI of patient {fixed[1]} (claim {fixed[0]} was rejected): "
              f"drop {_rel(demo / 'landing' / night2.isoformat())}/")
    _airflow(["dags", "test", NIGHTLY, f"{night2}T02:00:00"], env, log,
             f"night 2, {night2}: read the responses, bill the fixed claim again")
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
    rc = _revenue_cycle(demo / "warehouse.duckdb")
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(rc["statuses"].items()))
    print(f"  claims        marts.claim_status: {statuses}")
    print(f"                paid ${rc['paid']:,.2f} = the 835s' BPR02 total ${rc['remitted']:,.2f}"
          f" ({'reconciled to the cent' if rc['reconciled'] else 'NOT reconciled: see marts.response_files'})")
    for old_claim, new_claim in rc["rebilled"]:
        print(f"                rejected claim {old_claim} billed again as {new_claim}")
    print(f"                {rc['waiting']} rejections to fix (marts.rejections_to_fix), {rc['denials'][0]} denials "
          f"to appeal (marts.denials_to_appeal, first deadline {rc['denials'][1]}); patient-months with two live "
          f"claims: {rc['two_live']}")
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
