"""Stage: eligibility and CCM/PCM code choice per patient-month (tables in, tables out).

Reads core.patient_month_minutes and core.activity_minutes (transforms.minutes)
plus staging.*; publishes the rules of every service year present
(transforms.rules) and builds core.eligibility, core.code_choice,
core.patient_month and core.code_lines. The decisions are SQL in sql/core/.
"""
from __future__ import annotations

from datetime import date

import duckdb

from transforms import rules
from transforms.minutes import sql_literal
from transforms.settings import Settings
from transforms.warehouse import run_sql

MODELS = ("core/eligibility.sql", "core/code_choice.sql", "core/patient_month.sql", "core/code_lines.sql")


def assign_codes(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date) -> dict:
    """Choose the codes of every patient-month under its year's rules; `as_of` decides which months are closed."""
    years = [y for (y,) in con.execute("select distinct year(service_month) from core.patient_month_minutes").fetchall()]
    published = rules.publish(con, years, settings)
    _publish_billing_providers(con, settings)
    con.execute(f"set variable as_of = date {sql_literal(as_of.isoformat())}")
    con.execute(f"set variable claim_grace_days = {int(settings.claim_grace_days)}")
    con.execute(f"set variable date_of_service_rule = {sql_literal(settings.date_of_service)}")
    for model in MODELS:
        run_sql(con, model)
    months, eligible, billed, closed_billed, payment = con.execute(
        """
        select count(*), count(*) filter (where eligible), count(code_set),
               count(code_set) filter (where month_closed), coalesce(sum(expected_payment), 0)
        from core.patient_month
        """
    ).fetchone()
    lines = con.execute("select count(*) from core.code_lines").fetchone()[0]
    return {
        "patient_months": int(months),
        "eligible": int(eligible),
        "billed": int(billed),
        "billed_closed": int(closed_billed),
        "code_lines": int(lines),
        "expected_payment": float(payment),
        **published,
    }


def _publish_billing_providers(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Which group NPI (2010AA) each named practitioner bills under: a configuration lookup, one per NPI."""
    npis = [n for (n,) in con.execute(
        "select distinct billing_npi from core.month_consent where billing_npi is not null order by 1"
    ).fetchall()]
    rules.insert_rows(
        con, "insert into core.billing_provider_map values (?, ?)",
        [[npi, settings.billing_provider_for(npi).npi] for npi in npis],
    )
