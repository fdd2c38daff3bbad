"""The minutes stage: countable minutes per activity and per patient-month (tables in, tables out).

Reads staging.* and quality.activity_holds; builds core.month_consent,
core.activity_minutes and core.patient_month_minutes. All of it is SQL in
sql/core/: this module only sets the practice's choices and runs the models,
for every patient or only for those whose inputs changed (transforms.core.incremental).
"""
from __future__ import annotations

import duckdb

from transforms.core import incremental
from transforms.settings import Settings
from transforms.warehouse import sql_literal

MODELS = ("core/month_consent.sql", "core/activity_minutes.sql", "core/patient_month_minutes.sql")


def compute_minutes(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """Build core.activity_minutes and core.patient_month_minutes; return their totals."""
    methods = ", ".join(sql_literal(m) for m in settings.consent_methods)
    con.execute(f"set variable consent_methods = [{methods}]::varchar[]")
    fp = incremental.fingerprint((*MODELS, "core/_touched_months.sql"), sorted(settings.consent_methods))
    plan = incremental.plan_minutes(con, fp, MODELS)
    for model in MODELS:
        incremental.materialise(con, model, plan["mode"])
    incremental.finish_minutes(con, fp, plan)
    activities, patient_months, countable, excluded = con.execute(
        """
        select count(*), count(distinct (patient_id, service_month)),
               coalesce(sum(countable_minutes), 0), coalesce(sum(excluded_minutes), 0)
        from core.activity_minutes
        """
    ).fetchone()
    by_reason = dict(
        con.execute(
            """
            select exclusion_reason, sum(excluded_minutes)::bigint
            from core.activity_minutes
            where exclusion_reason is not null
            group by 1 order by 1
            """
        ).fetchall()
    )
    return {
        "build": {"mode": plan["mode"], "reason": plan["reason"], "patient_months": plan["patient_months"]},
        "activities": int(activities),
        "patient_months": int(patient_months),
        "countable_minutes": int(countable),
        "excluded_minutes": int(excluded),
        "excluded_by_reason": {k: int(v) for k, v in by_reason.items()},
    }
