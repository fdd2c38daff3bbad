"""The marts: stable documented views, the threshold worklist, the stage itself."""
from __future__ import annotations

import csv
import re
import stat
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from marts_fixtures import AS_OF, DEC, FEB, JAN, RUN_1, RUN_2, TZ, add_edge_cases, build_warehouse
from transforms.marts.views import VIEWS, build_marts, view_sql_files
from transforms.paths import SQL_DIR
from transforms.settings import load_settings
from transforms.warehouse import connect

DICTIONARY = SQL_DIR / "marts" / "DATA_DICTIONARY.md"

# The contract with dashboards: every view's columns and types, in order. A change
# here is a change for every dashboard: update sql/marts/DATA_DICTIONARY.md with it.
EXPECTED_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "patient_month": [
        ("patient_id", "VARCHAR"), ("service_month", "DATE"), ("rules_year", "INTEGER"),
        ("month_closed", "BOOLEAN"), ("billing_npi", "VARCHAR"), ("billing_provider_npi", "VARCHAR"),
        ("billing_staff_id", "VARCHAR"), ("billing_practitioner_name", "VARCHAR"),
        ("clinical_staff_minutes", "INTEGER"), ("practitioner_minutes", "INTEGER"), ("countable_minutes", "INTEGER"),
        ("excluded_face_to_face", "INTEGER"), ("excluded_non_clinical_role", "INTEGER"),
        ("excluded_before_consent", "INTEGER"), ("excluded_after_revocation", "INTEGER"),
        ("excluded_held_documentation", "INTEGER"), ("excluded_voided", "INTEGER"), ("excluded_duplicate", "INTEGER"),
        ("excluded_inpatient_stay", "INTEGER"), ("excluded_before_initiating_visit", "INTEGER"),
        ("excluded_minutes", "INTEGER"), ("chronic_condition_count", "INTEGER"), ("qualifying_icd10", "VARCHAR[]"),
        ("initiating_visit_date", "DATE"), ("eligible", "BOOLEAN"), ("evidence_gaps", "VARCHAR[]"),
        ("code_set", "VARCHAR"), ("codes", "VARCHAR"), ("fee_schedule_amount", "DECIMAL(10,2)"),
        ("charge_amount", "DECIMAL(10,2)"), ("allowed_amount", "DECIMAL(10,2)"),
        ("expected_payment", "DECIMAL(10,2)"), ("patient_responsibility", "DECIMAL(10,2)"),
        ("date_of_service", "DATE"), ("timely_filing_deadline", "DATE"), ("timely_filing_status", "VARCHAR"),
        ("reasons_not_billed", "VARCHAR[]"),
        ("reason_codes", "VARCHAR[]"), ("next_threshold_minutes", "INTEGER"), ("minutes_to_next_threshold", "INTEGER"),
        ("outcome", "VARCHAR"), ("billed", "BOOLEAN"), ("batch_id", "VARCHAR"), ("claim_id", "VARCHAR"),
        ("billed_run_id", "VARCHAR"), ("billed_at", "TIMESTAMP WITH TIME ZONE"), ("billed_codes", "VARCHAR"),
        ("billed_charge_amount", "DECIMAL(10,2)"), ("billed_allowed_amount", "DECIMAL(10,2)"),
        ("billed_expected_payment", "DECIMAL(10,2)"), ("billed_patient_responsibility", "DECIMAL(10,2)"),
        ("needs_review", "BOOLEAN"), ("left_on_table_reason", "VARCHAR"), ("left_on_table_detail", "VARCHAR"),
        ("minutes_short", "INTEGER"), ("base_code", "VARCHAR"), ("base_code_fee", "DECIMAL(10,2)"),
        ("estimated_left_on_table", "DECIMAL(10,2)"), ("withheld", "BOOLEAN"), ("withheld_reasons", "VARCHAR[]"),
    ],
    "claim_lines": [
        ("batch_id", "VARCHAR"), ("run_id", "VARCHAR"), ("batch_as_of", "DATE"), ("batch_status", "VARCHAR"),
        ("committed_at", "TIMESTAMP WITH TIME ZONE"), ("claim_id", "VARCHAR"), ("patient_id", "VARCHAR"),
        ("service_month", "DATE"), ("billing_npi", "VARCHAR"), ("billing_provider_npi", "VARCHAR"),
        ("line_number", "INTEGER"), ("cpt_code", "VARCHAR"), ("units", "INTEGER"), ("minutes", "INTEGER"),
        ("charge_amount", "DECIMAL(10,2)"), ("allowed_amount", "DECIMAL(10,2)"),
        ("expected_payment", "DECIMAL(10,2)"), ("patient_responsibility", "DECIMAL(10,2)"),
        ("date_of_service", "DATE"), ("icd10_codes", "VARCHAR[]"), ("needs_review", "BOOLEAN"),
    ],
    "dq_flags": [
        ("run_id", "VARCHAR"), ("raised_at", "TIMESTAMP WITH TIME ZONE"), ("drop_name", "VARCHAR"),
        ("activity_id", "VARCHAR"), ("flag_code", "VARCHAR"), ("severity", "VARCHAR"), ("message", "VARCHAR"),
        ("threshold", "VARCHAR"), ("held_minutes", "INTEGER"), ("patient_id", "VARCHAR"), ("staff_id", "VARCHAR"),
        ("staff_name", "VARCHAR"), ("staff_role", "VARCHAR"), ("role_class", "VARCHAR"), ("service_month", "DATE"),
        ("activity_date", "DATE"), ("duration_minutes", "INTEGER"), ("resolved_at", "TIMESTAMP WITH TIME ZONE"),
    ],
    "staff_scorecard": [
        ("staff_id", "VARCHAR"), ("staff_name", "VARCHAR"), ("staff_role", "VARCHAR"), ("role_class", "VARCHAR"),
        ("service_month", "DATE"), ("entries", "BIGINT"), ("minutes", "BIGINT"), ("flagged_entries", "BIGINT"),
        ("flagged_share", "DOUBLE"), ("hold_flags", "BIGINT"), ("warn_flags", "BIGINT"), ("top_flag_code", "VARCHAR"),
        ("top_flag_count", "BIGINT"), ("held_minutes", "BIGINT"),
    ],
    "pipeline_runs": [
        ("run_id", "VARCHAR"), ("as_of", "DATE"), ("started_at", "TIMESTAMP WITH TIME ZONE"),
        ("finished_at", "TIMESTAMP WITH TIME ZONE"), ("duration_seconds", "DOUBLE"), ("status", "VARCHAR"),
        ("drops_loaded", "BIGINT"), ("files_loaded", "BIGINT"), ("rows_in", "BIGINT"), ("rows_loaded", "BIGINT"),
        ("rows_quarantined", "BIGINT"), ("flags_raised", "BIGINT"), ("hold_flags", "BIGINT"),
        ("held_minutes", "BIGINT"), ("batch_id", "VARCHAR"), ("batch_status", "VARCHAR"), ("claims", "BIGINT"),
        ("claim_lines", "BIGINT"), ("charges", "DECIMAL(12,2)"), ("expected_payment", "DECIMAL(12,2)"),
        ("summary", "JSON"),
    ],
    "revenue_summary": [
        ("service_month", "DATE"), ("rules_year", "INTEGER"), ("month_closed", "BOOLEAN"), ("outcome", "VARCHAR"),
        ("reason", "VARCHAR"), ("reason_detail", "VARCHAR"), ("patient_months", "BIGINT"),
        ("countable_minutes", "BIGINT"), ("charge_amount", "DECIMAL(12,2)"), ("allowed_amount", "DECIMAL(12,2)"),
        ("expected_payment", "DECIMAL(12,2)"), ("patient_responsibility", "DECIMAL(12,2)"),
        ("estimated_left_on_table", "DECIMAL(12,2)"), ("base_code_fee", "DECIMAL(10,2)"),
    ],
    "threshold_worklist": [
        ("as_of", "DATE"), ("service_month", "DATE"), ("days_left_in_month", "INTEGER"), ("priority", "INTEGER"),
        ("patient_id", "VARCHAR"), ("patient_name", "VARCHAR"), ("worklist_status", "VARCHAR"),
        ("billing_staff_id", "VARCHAR"), ("billing_practitioner_name", "VARCHAR"),
        ("billing_practitioner_npi", "VARCHAR"), ("billing_provider_npi", "VARCHAR"),
        ("countable_minutes", "INTEGER"), ("clinical_staff_minutes", "INTEGER"), ("practitioner_minutes", "INTEGER"),
        ("held_minutes", "INTEGER"), ("next_threshold_minutes", "INTEGER"), ("minutes_to_next_threshold", "INTEGER"),
        ("codes_so_far", "VARCHAR"), ("expected_payment_so_far", "DECIMAL(10,2)"), ("last_contact_date", "DATE"),
        ("days_since_last_contact", "INTEGER"), ("timely_filing_deadline", "DATE"),
        ("reasons_not_billed", "VARCHAR[]"), ("withheld_reasons", "VARCHAR"),
    ],
    "reason_codes": [
        ("reason_code", "VARCHAR"), ("code_list", "VARCHAR"), ("words", "VARCHAR"),
    ],
    # the export contract's columns, word for word
    "claim_status": [
        ("claim_id", "VARCHAR"), ("batch_id", "VARCHAR"), ("patient_id", "VARCHAR"), ("service_month", "DATE"),
        ("status", "VARCHAR"), ("charge_amount", "DECIMAL(10,2)"), ("paid_amount", "DECIMAL(12,2)"),
        ("patient_responsibility", "DECIMAL(12,2)"), ("adjustment_reason_codes", "VARCHAR"),
        ("payer_claim_control_number", "VARCHAR"), ("status_at", "TIMESTAMP WITH TIME ZONE"),
        ("replaced_by_claim_id", "VARCHAR"),
    ],
    "rejections_to_fix": [
        ("claim_id", "VARCHAR"), ("batch_id", "VARCHAR"), ("patient_id", "VARCHAR"), ("service_month", "DATE"),
        ("usage_indicator", "VARCHAR"), ("rejected_by", "VARCHAR"), ("rejected_at", "TIMESTAMP WITH TIME ZONE"),
        ("reason_codes", "VARCHAR"), ("reason", "VARCHAR"), ("released", "BOOLEAN"),
        ("released_at", "TIMESTAMP WITH TIME ZONE"), ("next_step", "VARCHAR"),
    ],
    "denials_to_appeal": [
        ("claim_id", "VARCHAR"), ("batch_id", "VARCHAR"), ("patient_id", "VARCHAR"), ("service_month", "DATE"),
        ("status", "VARCHAR"), ("payer_claim_control_number", "VARCHAR"), ("remittance_date", "DATE"),
        ("appeal_deadline", "DATE"), ("days_left", "INTEGER"), ("charge_amount", "DECIMAL(10,2)"),
        ("paid_amount", "DECIMAL(12,2)"), ("denied_amount", "DECIMAL(12,2)"), ("carcs", "VARCHAR"),
        ("carc_reason", "VARCHAR"), ("rarcs", "VARCHAR"), ("rarc_reason", "VARCHAR"),
    ],
    "overpayments": [
        ("claim_id", "VARCHAR"), ("batch_id", "VARCHAR"), ("patient_id", "VARCHAR"), ("service_month", "DATE"),
        ("paid_amount", "DECIMAL(12,2)"), ("billed_codes", "VARCHAR"), ("current_codes", "VARCHAR"),
        ("eligible_now", "BOOLEAN"), ("amount_at_risk", "DECIMAL(12,2)"), ("reason", "VARCHAR"),
        ("identified_at", "TIMESTAMP WITH TIME ZONE"), ("refund_deadline", "DATE"), ("days_left", "INTEGER"),
    ],
    "remittance_summary": [
        ("batch_id", "VARCHAR"), ("service_month", "DATE"), ("claims", "BIGINT"), ("submitted", "BIGINT"),
        ("accepted", "BIGINT"), ("rejected", "BIGINT"), ("paid", "BIGINT"), ("partially_paid", "BIGINT"),
        ("denied", "BIGINT"), ("reversed", "BIGINT"), ("billed_amount", "DECIMAL(12,2)"),
        ("allowed_amount", "DECIMAL(12,2)"), ("paid_amount", "DECIMAL(12,2)"),
        ("patient_responsibility", "DECIMAL(12,2)"), ("adjustment_amount", "DECIMAL(12,2)"),
        ("claims_with_payment", "BIGINT"), ("avg_days_to_payment", "DOUBLE"), ("max_days_to_payment", "INTEGER"),
    ],
    "remittance_adjustments": [
        ("batch_id", "VARCHAR"), ("service_month", "DATE"), ("group_code", "VARCHAR"), ("reason_code", "VARCHAR"),
        ("claims", "BIGINT"), ("amount", "DECIMAL(12,2)"), ("reason", "VARCHAR"),
    ],
    "response_files": [
        ("file_name", "VARCHAR"), ("sha256", "VARCHAR"), ("kind", "VARCHAR"), ("status", "VARCHAR"),
        ("reason", "VARCHAR"), ("read_at", "TIMESTAMP WITH TIME ZONE"), ("run_id", "VARCHAR"),
        ("interchange_control_number", "VARCHAR"), ("usage_indicator", "VARCHAR"), ("claims_matched", "INTEGER"),
        ("claims_unmatched", "INTEGER"), ("pyx12_findings", "INTEGER"), ("pyx12_first_finding", "VARCHAR"),
        ("payments", "BIGINT"), ("total_payment", "DECIMAL(14,2)"), ("reconciled", "BOOLEAN"),
        ("unreconciled_amount", "DECIMAL(14,2)"),
    ],
}
REFERENCE_TABLES = {"fee_reference": [("rules_year", "INTEGER"), ("cpt_code", "VARCHAR"), ("fee", "DECIMAL(10,2)"),
                                      ("source", "VARCHAR")]}


@pytest.fixture
def con(tmp_path):
    c = build_warehouse(tmp_path / "w.duckdb")
    yield c
    c.close()


@pytest.fixture
def built(con, tmp_path):
    summary = build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    return con, summary


def columns(con, name: str) -> list[tuple[str, str]]:
    return [tuple(r) for r in con.execute(
        "select column_name, data_type from information_schema.columns "
        "where table_schema = 'marts' and table_name = ? order by ordinal_position", [name]).fetchall()]


def rows(con, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def one(con, sql: str, params: list | None = None) -> dict:
    found = rows(con, sql, params)
    assert len(found) == 1, found
    return found[0]


def dictionary_sections() -> dict[str, dict]:
    """`## marts.<name>` -> {'grain': bool, 'columns': [names in table order]}."""
    sections: dict[str, dict] = {}
    current = None
    for line in DICTIONARY.read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^## marts\.(\w+)\s*$", line):
            current = sections.setdefault(m.group(1), {"grain": False, "columns": []})
        elif current is not None and line.startswith("Grain:"):
            current["grain"] = True
        elif current is not None and (m := re.match(r"^\| `(\w+)` \|", line)):
            current["columns"].append(m.group(1))
    return sections


# ---------------------------------------------------------------- schema stability

def test_every_marts_view_has_exactly_its_agreed_columns(built):
    con, _ = built
    views = {r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' and table_type = 'VIEW'"
    ).fetchall()}
    assert views == set(EXPECTED_COLUMNS)
    for name, expected in EXPECTED_COLUMNS.items():
        assert columns(con, name) == expected, f"marts.{name} changed: update EXPECTED_COLUMNS and the dictionary"
    assert columns(con, "fee_reference") == REFERENCE_TABLES["fee_reference"]


def test_data_dictionary_documents_every_column_of_every_view_with_its_grain():
    sections = dictionary_sections()
    assert set(sections) == set(EXPECTED_COLUMNS) | set(REFERENCE_TABLES)
    for name, expected in (EXPECTED_COLUMNS | REFERENCE_TABLES).items():
        assert sections[name]["grain"], f"marts.{name}: no 'Grain:' line in DATA_DICTIONARY.md"
        assert sections[name]["columns"] == [c for c, _ in expected], f"marts.{name}: dictionary out of step"


def test_dictionary_types_match_the_views():
    def norm(t: str) -> str:
        return t.lower().replace("timestamp with time zone", "timestamptz").replace(" ", "")

    text = DICTIONARY.read_text(encoding="utf-8")
    for name, expected in (EXPECTED_COLUMNS | REFERENCE_TABLES).items():
        section = text.split(f"## marts.{name}\n", 1)[1].split("\n## ", 1)[0]
        documented = dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section, flags=re.M))
        assert {c: norm(documented[c]) for c, _ in expected} == {c: norm(t) for c, t in expected}, name


def test_each_view_file_creates_exactly_its_own_view():
    files = sorted(p.name for p in (SQL_DIR / "marts").glob("*.sql") if not p.name.startswith("_"))
    assert files == sorted(f"{v}.sql" for v in VIEWS)
    for path in view_sql_files():
        creates = re.findall(r"create\s+or\s+replace\s+(\w+)\s+([\w.]+)", path.read_text(), flags=re.I)
        assert creates == [("view", f"marts.{path.stem}")], path.name


def test_extra_upstream_columns_change_no_mart(tmp_path):
    con = build_warehouse(tmp_path / "w.duckdb", extra_columns=True)
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    for name, expected in EXPECTED_COLUMNS.items():
        assert columns(con, name) == expected


def test_views_bind_and_files_are_written_on_a_warehouse_with_no_stage_output_yet(tmp_path):
    con = connect(tmp_path / "empty.duckdb", TZ)
    summary = build_marts(con, load_settings(), "run-first", AS_OF, tmp_path / "runs" / "run-first")
    for name in VIEWS:
        assert con.execute(f"select count(*) from marts.{name}").fetchall() == [(0,)]
    assert summary["worklist_rows"] == 0
    with open(summary["worklist_csv"], newline="") as fh:
        assert list(csv.reader(fh)) == [[c for c, _ in EXPECTED_COLUMNS["threshold_worklist"]]]
    assert Path(summary["report_html"]).stat().st_size > 0


def test_build_marts_twice_gives_the_same_views_and_files(built, tmp_path):
    con, first = built
    csv_before = Path(first["worklist_csv"]).read_text()
    pm_before = con.execute("select * from marts.patient_month order by all").fetchall()
    second = build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    assert {k: v for k, v in second.items()} == first
    assert Path(second["worklist_csv"]).read_text() == csv_before
    assert con.execute("select * from marts.patient_month order by all").fetchall() == pm_before


def test_stage_summary_names_its_files_and_counts(built, tmp_path):
    _, summary = built
    run_dir = tmp_path / "runs" / RUN_2
    assert summary["worklist_csv"] == str(run_dir / "worklist.csv")
    assert summary["report_html"] == str(run_dir / "report.html")
    assert summary["views"] == [f"marts.{v}" for v in VIEWS]
    assert (summary["patient_months"], summary["claim_lines"], summary["dq_flags"], summary["pipeline_runs"]) \
        == (16, 3, 6, 2)
    assert summary["worklist_rows"] == 5


# ---------------------------------------------------------------- patient_month

def test_billed_patient_month_carries_its_batch_claim_and_ledger_codes(built):
    con, _ = built
    r = one(con, "select * from marts.patient_month where patient_id = 'P1' and service_month = ?", [JAN])
    assert (r["outcome"], r["billed"], r["batch_id"], r["claim_id"], r["billed_run_id"]) \
        == ("billed", True, "B-JAN", "C-JAN-P1", RUN_2)
    assert r["billed_codes"] == "99490 99439"   # base code first
    assert r["billed_expected_payment"] == Decimal("113.63")
    assert r["estimated_left_on_table"] is None and r["left_on_table_reason"] is None


def test_minutes_arriving_after_billing_mark_the_month_for_review(built):
    con, _ = built
    assert one(con, "select needs_review from marts.patient_month where patient_id = 'P1' and service_month = ?",
               [DEC]) == {"needs_review": True}


def test_19_minutes_is_left_on_the_table_in_the_15_19_bucket_at_the_base_fee(built):
    con, _ = built
    r = one(con, "select * from marts.patient_month where patient_id = 'P2' and service_month = ?", [JAN])
    assert (r["outcome"], r["left_on_table_reason"], r["left_on_table_detail"], r["minutes_short"]) \
        == ("not_billed", "below_threshold", "15-19 of 20 min", 1)
    assert (r["base_code"], r["estimated_left_on_table"]) == ("99490", Decimal("66.13"))


def test_left_on_the_table_is_priced_at_the_fee_of_the_months_rules_year(built):
    con, _ = built
    r = one(con, "select * from marts.patient_month where patient_id = 'P2' and service_month = ?", [DEC])
    assert (r["rules_year"], r["base_code_fee"], r["estimated_left_on_table"]) == (2025, Decimal("60.49"),
                                                                                  Decimal("60.49"))


def test_base_fee_falls_back_to_the_rules_file_for_a_year_nothing_was_coded_in(con, tmp_path):
    con.execute("delete from core.code_lines where service_month = ?", [DEC])
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    reference = one(con, "select fee, source from marts.fee_reference where rules_year = 2025 and cpt_code = '99490'")
    assert reference["source"] == "2025.yaml"
    r = one(con, "select base_code_fee from marts.patient_month where patient_id = 'P2' and service_month = ?", [DEC])
    assert r["base_code_fee"] == reference["fee"]


def test_short_minutes_fall_in_five_minute_buckets(con, tmp_path):
    con.execute("update core.patient_month set countable_minutes = 3, clinical_staff_minutes = 3, "
                "reasons_not_billed = ['below_threshold: 3 of 20 minutes'] where patient_id = 'P2' and service_month = ?",
                [JAN])
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    r = one(con, "select * from marts.patient_month where patient_id = 'P2' and service_month = ?", [JAN])
    assert (r["left_on_table_detail"], r["minutes_short"]) == ("0-4 of 20 min", 17)


def test_held_notes_that_would_reach_the_threshold_count_as_held_documentation(built):
    con, _ = built
    r = one(con, "select * from marts.patient_month where patient_id = 'P3' and service_month = ?", [JAN])
    assert (r["left_on_table_reason"], r["left_on_table_detail"], r["estimated_left_on_table"]) \
        == ("held_documentation", "12 countable + 10 held of 20 min", Decimal("66.13"))


def test_one_blocking_reason_is_valued_several_are_counted_not_valued(built):
    con, _ = built
    got = {r["patient_id"]: (r["left_on_table_reason"], r["left_on_table_detail"], r["estimated_left_on_table"])
           for r in rows(con, "select * from marts.patient_month where service_month = ? and outcome = 'not_billed'",
                         [JAN])}
    assert got["P4"] == ("no_consent", None, Decimal("66.13"))   # 25 minutes before consent: otherwise billable
    assert got["P5"] == ("not_medicare_part_b", "medicaid", Decimal("66.13"))
    assert got["P6"] == ("multiple_reasons", "below_threshold + no_care_plan", Decimal("0.00"))


def test_a_single_reason_without_enough_minutes_is_not_valued(con, tmp_path):
    con.execute("update core.patient_month set countable_minutes = 5 where patient_id = 'P5' and service_month = ?",
                [JAN])
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    r = one(con, "select * from marts.patient_month where patient_id = 'P5' and service_month = ?", [JAN])
    assert (r["left_on_table_reason"], r["estimated_left_on_table"]) == ("not_medicare_part_b", Decimal("0.00"))


def test_open_month_is_in_progress_never_left_on_the_table(built):
    con, _ = built
    got = rows(con, "select distinct outcome, left_on_table_reason, estimated_left_on_table "
                    "from marts.patient_month where service_month = ?", [FEB])
    assert got == [{"outcome": "in_progress", "left_on_table_reason": None, "estimated_left_on_table": None}]


def test_closed_month_with_codes_not_in_a_batch_is_billable(built):
    con, _ = built
    r = one(con, "select outcome, billed, codes from marts.patient_month where patient_id = 'P7' and service_month = ?",
            [JAN])
    assert r == {"outcome": "billable", "billed": False, "codes": "99490"}


def test_excluded_minutes_add_up_the_reasons(built):
    con, _ = built
    r = one(con, "select excluded_minutes, excluded_held_documentation from marts.patient_month "
                 "where patient_id = 'P3' and service_month = ?", [JAN])
    assert r == {"excluded_minutes": 10, "excluded_held_documentation": 10}


# ---------------------------------------------------------------- revenue_summary

def test_revenue_summary_agrees_with_the_ledger_and_the_patient_months(built):
    con, _ = built
    jan = rows(con, "select * from marts.revenue_summary where service_month = ?", [JAN])
    billed = sum(r["expected_payment"] for r in jan if r["outcome"] == "billed")
    assert billed == con.execute("select sum(expected_payment) from billing.ledger_lines where service_month = ?",
                                 [JAN]).fetchall()[0][0]
    left = {(r["reason"], r["reason_detail"]): r["estimated_left_on_table"] for r in jan if r["outcome"] == "not_billed"}
    assert left == {
        ("below_threshold", "15-19 of 20 min"): Decimal("66.13"),
        ("held_documentation", "12 countable + 10 held of 20 min"): Decimal("66.13"),
        ("no_consent", None): Decimal("66.13"),
        ("not_medicare_part_b", "medicaid"): Decimal("66.13"),
        ("multiple_reasons", "below_threshold + no_care_plan"): Decimal("0.00"),
    }
    assert sum(r["patient_months"] for r in jan) == 7
    total = con.execute("select sum(estimated_left_on_table) from marts.revenue_summary").fetchall()[0][0]
    assert total == con.execute("select sum(estimated_left_on_table) from marts.patient_month").fetchall()[0][0]


# ---------------------------------------------------------------- claim_lines, flags, scorecard, runs

def test_claim_lines_one_row_per_ledger_line_with_its_batch(built):
    con, _ = built
    got = rows(con, "select batch_id, run_id, claim_id, line_number, cpt_code, units, expected_payment, minutes, "
                    "needs_review from marts.claim_lines order by service_month, line_number")
    assert got == [
        dict(batch_id="B-DEC", run_id=RUN_1, claim_id="C-DEC-P1", line_number=1, cpt_code="99490", units=1,
             expected_payment=Decimal("60.49"), minutes=25, needs_review=True),
        dict(batch_id="B-JAN", run_id=RUN_2, claim_id="C-JAN-P1", line_number=1, cpt_code="99490", units=1,
             expected_payment=Decimal("66.13"), minutes=20, needs_review=False),
        dict(batch_id="B-JAN", run_id=RUN_2, claim_id="C-JAN-P1", line_number=2, cpt_code="99439", units=1,
             expected_payment=Decimal("47.50"), minutes=25, needs_review=False),
    ]


def test_dq_flags_one_row_per_flag_with_staff_and_month(built):
    con, _ = built
    assert con.execute("select count(*) from marts.dq_flags").fetchall() == [(6,)]
    r = one(con, "select * from marts.dq_flags where activity_id = 'A4'")
    assert (r["flag_code"], r["severity"], r["held_minutes"], r["patient_id"], r["staff_id"], r["staff_name"],
            r["staff_role"], r["service_month"], r["activity_date"]) \
        == ("late_documentation", "hold", 10, "P3", "S-MA", "Lee Ortega", "ma", JAN, date(2026, 1, 22))


def test_dq_flags_fall_back_to_staging_for_an_activity_without_minutes(con, tmp_path):
    con.execute("delete from core.activity_minutes where activity_id = 'A4'")
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    r = one(con, "select patient_id, staff_id, service_month, activity_date from marts.dq_flags where activity_id = 'A4'")
    assert r == dict(patient_id="P3", staff_id="S-MA", service_month=JAN, activity_date=date(2026, 1, 22))


def test_dq_flags_show_when_a_flag_was_resolved(con, tmp_path):
    con.execute("update quality.flags set resolved_at = ? where activity_id = 'A4'",
                [datetime(2026, 2, 10, 12, tzinfo=timezone.utc)])
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    resolved = con.execute("select activity_id from marts.dq_flags where resolved_at is not null").fetchall()
    assert resolved == [("A4",)]


def test_staff_scorecard_adds_names_shares_and_flag_counts(built):
    con, _ = built
    r = one(con, "select * from marts.staff_scorecard where staff_id = 'S-MA' and service_month = ?", [JAN])
    assert (r["staff_name"], r["staff_role"], r["entries"], r["flagged_entries"], r["flagged_share"]) \
        == ("Lee Ortega", "ma", 2, 2, 1.0)
    assert (r["hold_flags"], r["warn_flags"], r["held_minutes"]) == (1, 1, 10)
    assert (r["top_flag_code"], r["top_flag_count"]) == ("late_documentation", 1)   # tie: alphabetical


def test_pipeline_runs_one_row_per_run_with_its_counts(built):
    con, _ = built
    got = {r["run_id"]: r for r in rows(con, "select * from marts.pipeline_runs")}
    assert set(got) == {RUN_1, RUN_2}
    tonight = got[RUN_2]
    assert (tonight["as_of"], tonight["status"], tonight["finished_at"]) == (AS_OF, "running", None)
    assert (tonight["drops_loaded"], tonight["files_loaded"], tonight["rows_in"], tonight["rows_loaded"]) == (1, 2, 70, 69)
    assert (tonight["rows_quarantined"], tonight["flags_raised"], tonight["hold_flags"], tonight["held_minutes"]) \
        == (1, 5, 2, 13)
    assert (tonight["batch_id"], tonight["claims"], tonight["claim_lines"], tonight["charges"],
            tonight["expected_payment"]) == ("B-JAN", 1, 2, Decimal("113.63"), Decimal("113.63"))
    earlier = got[RUN_1]
    assert (earlier["status"], earlier["duration_seconds"]) == ("succeeded", 3600.0)
    assert earlier["rows_quarantined"] == 2   # no raw.quarantine rows: the run summary's count


def test_a_run_that_claimed_nothing_shows_zero_claims(con, tmp_path):
    con.execute("insert into raw.runs values ('run-idle', date '2026-02-11', now(), now(), 'succeeded', null)")
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    r = one(con, "select batch_id, claims, charges, rows_in from marts.pipeline_runs where run_id = 'run-idle'")
    assert r == dict(batch_id=None, claims=0, charges=0, rows_in=0)


# ---------------------------------------------------------------- threshold worklist

def worklist(con, as_of: date | None = None) -> list[dict]:
    if as_of:
        con.execute(f"set variable worklist_as_of = date '{as_of.isoformat()}'")
    try:
        return rows(con, "select * from marts.threshold_worklist order by priority")
    finally:
        con.execute("reset variable worklist_as_of")


def test_worklist_puts_the_smallest_gap_first(built):
    con, _ = built
    got = [(r["priority"], r["patient_id"], r["countable_minutes"], r["next_threshold_minutes"],
            r["minutes_to_next_threshold"], r["worklist_status"]) for r in worklist(con)]
    assert got == [
        (1, "P1", 18, 20, 2, "eligible"),
        (2, "P2", 35, 40, 5, "eligible"),
        (3, "P3", 5, 20, 15, "eligible"),
        (4, "P9", 3, 20, 17, "eligible_but_for_minutes"),
        (5, "P7", 0, 20, 20, "no_minutes_yet"),   # eligible in January, nothing logged in February yet
    ]


def test_worklist_leaves_out_ineligible_patients_and_months_with_nothing_left_to_reach(built):
    con, _ = built
    listed = {r["patient_id"] for r in worklist(con)}
    assert not listed & {"P5", "P8", "P10"}   # Medicaid, no consent, 65 minutes (every unit reached)


def test_worklist_shows_days_left_last_contact_and_the_billing_practitioner(built):
    con, _ = built
    p2 = next(r for r in worklist(con) if r["patient_id"] == "P2")
    assert (p2["as_of"], p2["service_month"], p2["days_left_in_month"]) == (AS_OF, FEB, 18)
    assert (p2["last_contact_date"], p2["days_since_last_contact"]) == (date(2026, 2, 9), 1)  # Feb 12 is after as-of
    assert (p2["billing_staff_id"], p2["billing_practitioner_name"], p2["billing_practitioner_npi"]) \
        == ("S-MD", "Dana Cruz", "1345678902")
    assert p2["patient_name"] == "Firstname2 Zebulon2"
    assert (p2["codes_so_far"], p2["expected_payment_so_far"]) == ("99490", Decimal("66.13"))


def test_last_contact_ignores_voided_activities(con, tmp_path):
    con.execute("insert into core.activity_minutes values ('A-void', 'P3', 'S-MA', 'clinical_staff', ?, "
                "date '2026-02-09', 30, 0, null, 30, 'voided')", [FEB])
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    p3 = next(r for r in worklist(con) if r["patient_id"] == "P3")
    assert p3["last_contact_date"] == date(2026, 2, 2)


def test_days_left_count_the_days_after_as_of(built):
    con, _ = built
    assert {r["days_left_in_month"] for r in worklist(con, date(2026, 2, 27))} == {1}
    assert {r["days_left_in_month"] for r in worklist(con, date(2026, 2, 28))} == {0}


def test_worklist_view_follows_the_newest_run_that_did_not_fail(built):
    con, _ = built
    assert {r["as_of"] for r in worklist(con)} == {AS_OF}
    later = datetime(2026, 3, 6, 2, tzinfo=timezone.utc)
    con.execute("insert into raw.runs values ('run-failed', date '2026-03-05', ?, ?, 'failed', null)", [later, later])
    assert {r["as_of"] for r in worklist(con)} == {AS_OF}
    con.execute("insert into raw.runs values ('run-march', date '2026-03-05', ?, null, 'running', null)",
                [later.replace(hour=3)])
    march = worklist(con)
    assert {r["service_month"] for r in march} == {date(2026, 3, 1)}
    # February's eligible patients carry forward, nothing logged in March yet; with equal
    # gaps and days, the longest since the last contact comes first
    assert [(r["patient_id"], r["worklist_status"], r["last_contact_date"]) for r in march] == [
        ("P3", "no_minutes_yet", date(2026, 2, 2)), ("P1", "no_minutes_yet", date(2026, 2, 3)),
        ("P10", "no_minutes_yet", date(2026, 2, 4)), ("P2", "no_minutes_yet", date(2026, 2, 12))]


def test_worklist_csv_is_the_view_in_priority_order_readable_by_its_owner_only(built):
    con, summary = built
    path = Path(summary["worklist_csv"])
    with open(path, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[0] == [c for c, _ in EXPECTED_COLUMNS["threshold_worklist"]]
    assert [r[table[0].index("patient_id")] for r in table[1:]] == ["P1", "P2", "P3", "P9", "P7"]
    assert table[1][table[0].index("as_of")] == "2026-02-10"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600   # it names patients
    assert not list(path.parent.glob("*.tmp"))


def test_worklist_csv_uses_the_stage_as_of_not_the_newest_run(con, tmp_path):
    summary = build_marts(con, load_settings(), RUN_2, date(2026, 2, 20), tmp_path / "runs" / RUN_2)
    with open(summary["worklist_csv"], newline="") as fh:
        first = next(csv.DictReader(fh))
    assert (first["as_of"], first["days_left_in_month"]) == ("2026-02-20", "8")
    # and the variable does not leak into the connection afterwards
    assert {r["as_of"] for r in worklist(con)} == {AS_OF}


# ---------------------------------------------------------------- unusual reasons lists, by hand
# add_edge_cases' patient-months, worked out from the view's rules (DATA_DICTIONARY.md):
# a reason code is the text before ':', trimmed; NULL entries drop out; the detail
# of one reason is what follows its first colon; below_threshold's 5-minute bucket
# is ceil((threshold - countable) / 5); one reason is valued at the base code's fee
# when the minutes (countable + held + before consent) reach the threshold, several
# reasons or none at 0. Fees: 2025's 99490 as observed on core.code_lines (P1 Dec,
# 60.49), 2026's (66.13), 2024's only from E14's own line (55.00).
NOV = date(2025, 11, 1)
EDGE_PATIENT_MONTHS = [
    # patient, month, outcome, reason, detail, minutes_short, estimated, base fee
    ("E1", NOV, "not_billed", "below_threshold", "10-14 of 20 min", 8, "60.49", "60.49"),   # ceil(8/5) = 2
    ("E2", NOV, "not_billed", "unexplained", None, None, "0.00", "60.49"),                # no list at all
    ("E3", JAN, "not_billed", "no_consent", None, None, "0.00", "66.13"),                 # 5 min < 20
    ("E4", JAN, "not_billed", "not_medicare_part_b", "medicaid", None, "66.13", "66.13"),  # first detail
    ("E5", JAN, "not_billed", "multiple_reasons", "below_threshold + one_chronic_condition", None, "0.00", "66.13"),
    ("E6", JAN, "not_billed", "below_threshold", "20-24 of 30 min", 6, "66.13", "66.13"),  # its own threshold
    ("E7", JAN, "not_billed", "no_care_plan", None, None, "0.00", "66.13"),               # repeated, no detail
    ("E8", JAN, "billable", None, None, None, None, "66.13"),                             # [NULL] = no reason
    ("E9", JAN, "not_billed", "unexplained", None, None, "0.00", "66.13"),                # an empty list
    ("E10", FEB, "in_progress", None, None, None, None, "66.13"),
    ("E11", FEB, "in_progress", None, None, None, None, "66.13"),
    ("E12", JAN, "in_progress", None, None, None, None, "66.13"),   # month_closed NULL: not closed
    ("E13", FEB, "in_progress", None, None, None, None, "66.13"),
    ("E13", JAN, "not_billed", "multiple_reasons", "below_threshold + no_consent", None, "0.00", "66.13"),  # trimmed
    ("E14", NOV, "billable", None, None, None, None, "55.00"),      # judged under 2024 rules
]


@pytest.fixture
def edge_marts(con, tmp_path):
    add_edge_cases(con)
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    return con


@pytest.mark.parametrize("patient, month, outcome, reason, detail, short, left, fee", EDGE_PATIENT_MONTHS,
                         ids=[f"{e[0]}-{e[1]:%Y%m}" for e in EDGE_PATIENT_MONTHS])
def test_unusual_reasons_list_is_classified_and_valued_as_the_dictionary_says(
        edge_marts, patient, month, outcome, reason, detail, short, left, fee):
    r = one(edge_marts, "select * from marts.patient_month where patient_id = ? and service_month = ?",
            [patient, month])
    assert (r["outcome"], r["left_on_table_reason"], r["left_on_table_detail"], r["minutes_short"]) \
        == (outcome, reason, detail, short)
    assert r["estimated_left_on_table"] == (Decimal(left) if left else None)
    assert r["base_code_fee"] == Decimal(fee)


def test_reason_codes_are_trimmed_deduplicated_and_sorted_without_nulls(edge_marts):
    codes = {(r["patient_id"], r["service_month"]): r["reason_codes"] for r in rows(
        edge_marts, "select patient_id, service_month, reason_codes, reasons_not_billed, rules_year "
                    "from marts.patient_month where starts_with(patient_id, 'E')")}
    assert len(codes) == len(EDGE_PATIENT_MONTHS)
    assert codes[("E13", JAN)] == ["below_threshold", "no_consent"]
    assert codes[("E3", JAN)] == ["no_consent"] and codes[("E7", JAN)] == ["no_care_plan"]
    assert codes[("E8", JAN)] == [] and codes[("E2", NOV)] == []
    e12 = one(edge_marts, "select rules_year, month_closed from marts.patient_month where patient_id = 'E12'")
    assert (e12["rules_year"], e12["month_closed"]) == (2026, False)   # NULLs: the calendar year, not closed


def test_flags_on_activities_the_minutes_stage_has_not_seen_take_staging_or_nothing(edge_marts):
    con = edge_marts
    got = {r["activity_id"]: (r["patient_id"], r["staff_id"], r["staff_name"], r["role_class"], r["service_month"],
                              r["activity_date"], r["duration_minutes"], r["held_minutes"])
           for r in rows(con, "select * from marts.dq_flags where starts_with(activity_id, 'E-')")}
    assert got == {
        "E-A1": ("E12", "S-RN", "Joy Parkhurst", "clinical_staff", JAN, date(2026, 1, 9), 14, 14),  # core
        "E-A3": ("E3", "S-MA", "Lee Ortega", "clinical_staff", JAN, date(2026, 1, 7), None, 0),      # staging
        "E-A9": (None, None, None, None, None, None, None, 0),                                         # nobody
    }


def test_worklist_with_unusual_reasons_lists_orders_by_gap_then_last_contact(edge_marts):
    """Feb 10: E10's NULL reason does not disqualify it (13 to go), E13's ' below_threshold ' is
    trimmed (16 to go), E11 has no consent; E6, E8, E9 and E12 were eligible in January with
    nothing in February (20 to go), E12 last seen on 9 January (its February activity is voided),
    the others never: never-contacted first. E8's January claim was withheld by its claim
    edits (add_edge_cases): a closed month to fix, listed before the open month."""
    con = edge_marts
    edge = [(r["patient_id"], r["worklist_status"], r["minutes_to_next_threshold"], r["last_contact_date"])
            for r in worklist(con) if r["patient_id"].startswith("E")]
    assert edge == [
        ("E8", "claim_withheld", None, None),
        ("E10", "eligible_but_for_minutes", 13, None),
        ("E13", "eligible_but_for_minutes", 16, None),
        ("E6", "no_minutes_yet", 20, None),
        ("E8", "no_minutes_yet", 20, None),
        ("E9", "no_minutes_yet", 20, None),
        ("E12", "no_minutes_yet", 20, date(2026, 1, 9)),
    ]
    # March 5, nothing logged yet: February's eligible patient-months carry forward (E8's
    # withheld January claim is still to fix)
    march = [(r["patient_id"], r["worklist_status"], r["minutes_to_next_threshold"])
             for r in worklist(con, date(2026, 3, 5))]
    assert sorted(march) == [("E8", "claim_withheld", None), ("P1", "no_minutes_yet", 20), ("P10", "no_minutes_yet", 20),
                             ("P2", "no_minutes_yet", 20), ("P3", "no_minutes_yet", 20)]


def test_a_closed_unbilled_month_near_its_filing_limit_heads_the_worklist(con, tmp_path):
    # February 2025 (date of service 2025-02-28): the limit is 2026-02-28; on 2026-02-10 the month is
    # older than 11 months (after 2026-01-28), so the codes stage marks it due_soon
    from marts_fixtures import patient_month
    feb_2025 = date(2025, 2, 1)
    due = patient_month("P3", feb_2025, 12, held=10, reasons=["below_threshold: 12 of 20 minutes"],
                        filing=(date(2026, 2, 28), "due_soon"))
    billed = patient_month("P1", feb_2025, 25, codes="99490", payment="60.49", filing=(date(2026, 2, 28), "due_soon"))
    for pm in (due, billed):
        con.execute(f"insert into core.patient_month ({', '.join(pm)}) values ({', '.join('?' * len(pm))})",
                    list(pm.values()))
    con.execute("insert into billing.ledger (patient_id, service_month, batch_id, claim_id, billing_npi, "
                "billing_provider_npi, billed_codes, units, charge_amount, date_of_service, run_id, committed_at) "
                "values ('P1', ?, 'B-FEB25', 'C-FEB25-P1', 'x', 'y', '99490', 1, 60.49, ?, 'r', now())",
                [feb_2025, date(2025, 2, 28)])
    con.execute("insert into billing.live_claims values ('P', 'P1', ?, 'C-FEB25-P1', now())", [feb_2025])
    summary = build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    first = worklist(con, AS_OF)[0]
    assert {k: first[k] for k in ("priority", "patient_id", "service_month", "worklist_status",
                                  "timely_filing_deadline", "reasons_not_billed", "days_left_in_month",
                                  "held_minutes")} == {
        "priority": 1, "patient_id": "P3", "service_month": feb_2025, "worklist_status": "timely_filing_due",
        "timely_filing_deadline": date(2026, 2, 28), "reasons_not_billed": ["below_threshold: 12 of 20 minutes"],
        "days_left_in_month": None, "held_minutes": 10}
    # the billed one (a live claim) is not listed; the open month's patients follow, counted as before
    assert [r["patient_id"] for r in worklist(con, AS_OF)] == ["P3", "P1", "P2", "P3", "P9", "P7"]
    assert summary["worklist_rows"] == 5 and summary["timely_filing_due"] == 1
    with open(summary["worklist_csv"], newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    assert table[1][table[0].index("reasons_not_billed")] == "below_threshold: 12 of 20 minutes"


def test_a_withheld_claim_shows_in_the_patient_month_and_first_in_the_worklist(con, tmp_path):
    add_edge_cases(con)
    summary = build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    assert one(con, "select outcome, withheld, withheld_reasons from marts.patient_month "
                    "where patient_id = 'E8' and service_month = ?", [JAN]) == {
        "outcome": "billable", "withheld": True,
        "withheld_reasons": ["icd10: HI position 1 code 'E11.9' is not an ICD-10-CM code",
                             "mbi: subscriber MBI (2010BA NM109) is malformed"]}
    assert con.execute("select count(*) from marts.patient_month where withheld").fetchone()[0] == 1
    with open(summary["worklist_csv"], newline="") as fh:
        first = next(csv.DictReader(fh))
    assert (first["priority"], first["patient_id"], first["worklist_status"], first["service_month"]) == (
        "1", "E8", "claim_withheld", "2026-01-01")
    assert first["withheld_reasons"].startswith("icd10: ") and "; mbi: " in first["withheld_reasons"]
    assert first["minutes_to_next_threshold"] == ""
