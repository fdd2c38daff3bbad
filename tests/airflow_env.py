"""A throw-away Airflow installation for tests: its own AIRFLOW_HOME and SQLite
metadata DB, the repo's dags/ as the DAG folder, no example DAGs.

Airflow reads its configuration once, when first imported, so `configure()` must
run before anything imports airflow (test_dags.py calls it at its top). The
`airflow_db` fixture then creates the metadata tables once per session, in
about two seconds (`airflow db migrate` does the same from the command line).
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DAGS_FOLDER = REPO / "dags"
TIME_ZONE = "America/New_York"  # the sample practice's; dates given on the CLI are read in it

_home: Path | None = None


def configure() -> Path:
    """Point Airflow at a fresh temporary home. Idempotent within a session."""
    global _home
    if _home is not None:
        return _home
    if "airflow" in sys.modules and os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") != str(DAGS_FOLDER):
        raise RuntimeError("airflow was imported before tests/airflow_env.configure(): "
                           "its configuration (AIRFLOW_HOME, dags folder) is already fixed")
    _home = Path(tempfile.mkdtemp(prefix="ccm-airflow-"))
    os.environ.update({
        "AIRFLOW_HOME": str(_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": TIME_ZONE,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_home / 'airflow.db'}",
        "CCM_TIME_ZONE": TIME_ZONE,
    })
    # DAG param defaults come from these; point them somewhere harmless, tests pass their own.
    for var, sub in (("CCM_LANDING", "landing"), ("CCM_WAREHOUSE", "warehouse.duckdb"),
                     ("CCM_CLAIMS_DIR", "claims"), ("CCM_OUTBOX", "outbox")):
        os.environ[var] = str(_home / "ccm" / sub)
    for var in ("CCM_CONFIG", "CCM_TASK_RETRIES"):  # the shipped sample practice; the DAG's own retries
        os.environ.pop(var, None)
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
    return _home


@pytest.fixture(scope="session")
def airflow_db():
    """Create the metadata DB once per session (the home is removed when Python exits)."""
    home = configure()
    from airflow.utils import db

    db.initdb()
    return home
