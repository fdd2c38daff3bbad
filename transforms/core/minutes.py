"""The minutes stage: countable minutes per activity and per patient-month (tables in, tables out).

Reads staging.* and quality.activity_holds; builds core.month_consent,
core.activity_minutes and core.patient_month_minutes. All of it is SQL in
sql/core/: this module only sets the practice's choices and runs the models,
for every patient or only for those whose inputs changed (transforms.core.incremental).
The rules files are published first (transforms.core.rules): which visits
initiate care management and which places of service are inpatient stays
decide which minutes count.
"""
from __future__ import annotations

import duckdb

from transforms.core import incremental, rules
from transforms.settings import Settings
from transforms.warehouse import sql_literal

MODELS = ("core/month_consent.sql", "core/activity_minutes.sql", "core/patient_month_minutes.sql")


def compute_minutes(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict:
    """Build core.activity_minutes and core.patient_month_minutes; return their totals."""
    rules.publish(con, rules.service_years(con), settings)
    methods = ", ".join(sql_literal(m) for m in settings.consent_methods)
    con.execute(f"set variable consent_methods = [{methods}]::varchar[]")
    con.execute(f"set variable revocation_effective = {sql_literal(settings.revocation_effective)}")
    fp = incremental.fingerprint((*MODELS, "core/_touched_months.sql"), sorted(settings.consent_methods),
                                 settings.revocation_effective, _minutes_rules(con))
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


def _minutes_rules(con: duckdb.DuckDBPyConnection) -> list:
    """The published rules the minutes depend on: a change rebuilds every month."""
    return con.execute("""
        select (select string_agg(concat_ws(':', rules_year, purpose, cpt_code), ' '
                                  order by rules_year, purpose, cpt_code)
                from core.rules_codes where purpose in ('initiating_visit', 'inpatient_place_of_service')),
               (select string_agg(concat_ws(':', rules_year, initiating_lookback_months), ' ' order by rules_year)
                from core.rules_years)
    """).fetchall()
