"""The codes stage: eligibility and CCM/PCM code choice per patient-month (tables in, tables out).

Reads core.patient_month_minutes and core.activity_minutes (transforms.core.minutes)
plus staging.*; publishes the rules of every service year present
(transforms.core.rules) and builds core.eligibility, core.code_choice,
core.patient_month and core.code_lines. The decisions are SQL in sql/core/.
"""
from __future__ import annotations

from datetime import date

import duckdb

from transforms.core import incremental, rules
from transforms.settings import Settings
from transforms.warehouse import run_sql, sql_literal

MODELS = ("core/eligibility.sql", "core/code_choice.sql", "core/patient_month.sql", "core/code_lines.sql")


def assign_codes(con: duckdb.DuckDBPyConnection, settings: Settings, as_of: date) -> dict:
    """Choose the codes of every patient-month under its year's rules; `as_of` decides which months are closed."""
    years = [y for (y,) in con.execute("select distinct year(service_month) from core.patient_month_minutes").fetchall()]
    published = rules.publish(con, years, settings)
    _publish_billing_providers(con, settings)
    con.execute(f"set variable as_of = date {sql_literal(as_of.isoformat())}")
    con.execute(f"set variable claim_grace_days = {int(settings.claim_grace_days)}")
    con.execute(f"set variable date_of_service_rule = {sql_literal(settings.date_of_service)}")
    con.execute(f"set variable timely_filing_warn_months = {int(settings.timely_filing_warn_months)}")
    holds = sorted(rule for rule, policy in settings.evidence.items() if policy == "hold")
    con.execute("set variable evidence_holds = ?::varchar[]", [holds])
    fp = incremental.fingerprint(MODELS, _rules_fingerprint(con), int(settings.claim_grace_days),
                                 settings.date_of_service, int(settings.timely_filing_warn_months), holds)
    plan = incremental.plan_codes(con, fp, MODELS)
    if plan["mode"] == "incremental":
        plan["patient_months"] += incremental.scope_timely_filing_changes(con)
    for model in MODELS:
        incremental.materialise(con, model, plan["mode"])
    if plan["mode"] == "incremental":
        run_sql(con, "core/as_of_refresh.sql")
    incremental.finish_codes(con, fp)
    months, eligible, billed, closed_billed, payment, past, due = con.execute(
        """
        select count(*), count(*) filter (where eligible), count(code_set),
               count(code_set) filter (where month_closed), coalesce(sum(expected_payment), 0),
               count(*) filter (where timely_filing_status = 'past'),
               count(*) filter (where timely_filing_status = 'due_soon')
        from core.patient_month
        """
    ).fetchone()
    lines = con.execute("select count(*) from core.code_lines").fetchone()[0]
    return {
        "build": {"mode": plan["mode"], "reason": plan["reason"], "patient_months": plan["patient_months"]},
        "patient_months": int(months),
        "eligible": int(eligible),
        "billed": int(billed),
        "billed_closed": int(closed_billed),
        "code_lines": int(lines),
        "expected_payment": float(payment),
        "timely_filing": {"past": int(past), "due_soon": int(due)},
        **published,
    }


def _rules_fingerprint(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The published rules and provider map, as text: a change in any of them rebuilds every month."""
    tables = [t for (t,) in con.execute(
        "select table_name from information_schema.tables where table_schema = 'core' "
        "and (starts_with(table_name, 'rules_') or table_name = 'billing_provider_map') order by 1").fetchall()]
    return [con.execute(f"select coalesce(string_agg(t::varchar, '|' order by t::varchar), '') from core.{t} t"
                        ).fetchone()[0] for t in tables]


def _publish_billing_providers(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Which group NPI (2010AA) each named practitioner bills under: a configuration lookup, one per NPI."""
    npis = [n for (n,) in con.execute(
        "select distinct billing_npi from core.month_consent where billing_npi is not null order by 1"
    ).fetchall()]
    rules.insert_rows(
        con, "insert into core.billing_provider_map values (?, ?)",
        [[npi, settings.billing_provider_for(npi).npi] for npi in npis],
    )
