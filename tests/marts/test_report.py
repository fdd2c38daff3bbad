"""The HTML run report: self-contained, no PHI, the charts there, and it renders
in a real browser (headless Chromium) without a console message."""
from __future__ import annotations

import calendar
import dataclasses
import re
import shutil
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import pytest

from marts_fixtures import (AS_OF, FLAG_MESSAGE, MBI, NOTE_TEXT, PATIENT_NAMES, RUN_2, STAFF, TZ, add_edge_cases,
                            build_warehouse)
from transforms.marts.views import build_marts
from transforms.marts.report import (HISTOGRAM_MAX, TOP_STAFF, TREND_MONTHS, ReportData, _rows, collect_report_data,
                               histogram_svg, render_report)
from transforms.settings import load_settings
from transforms.warehouse import connect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


@pytest.fixture
def report_html(tmp_path) -> Path:
    con = build_warehouse(tmp_path / "w.duckdb")
    try:
        summary = build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    finally:
        con.close()
    return Path(summary["report_html"])


def test_report_has_no_patient_name_mbi_note_or_flag_message(report_html):
    html = report_html.read_text(encoding="utf-8")
    for first, last in PATIENT_NAMES.values():
        assert first not in html and last not in html
    for mbi in MBI.values():
        assert mbi not in html
    assert NOTE_TEXT not in html and FLAG_MESSAGE not in html and "Ramona" not in html
    for _, full_name, *_ in STAFF:   # staff appear as staff_id and role
        assert full_name not in html


def test_report_is_one_self_contained_file(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert not re.search(r"<script|<link|<iframe|<img|@import|url\(", html, flags=re.I)
    # the only URL is the SVG namespace, which is never fetched
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}
    assert "default-src 'none'" in html   # and the browser is told to load nothing


def test_report_draws_every_chart(report_html):
    html = report_html.read_text(encoding="utf-8")
    titles = re.findall(r"<svg[^>]*aria-label=\"([^\"]+)\"", html)
    assert titles == [
        "Countable minutes per patient-month, Jan 2026",
        "Countable minutes so far, Feb 2026 (open month)",
        "Billed vs left on the table by reason, Jan 2026",
        "Flags by type",
        "Flags by staff member",
        "Expected payment and left on the table, by service month",
    ]
    for label in ("20 min", "40 min", "60 min"):   # threshold lines on the histograms
        assert html.count(f">{label}</text>") == 2
    for reason in ("below_threshold (15-19 of 20 min)", "held_documentation", "no_consent",
                   "not_medicare_part_b (medicaid)", "multiple_reasons"):
        assert reason in html
    for flag in ("vague_note", "late_documentation", "missing_note", "S-MA (ma)", "S-RN (rn)"):
        assert flag in html
    for month in ("Dec 25", "Jan 26", "Feb 26"):
        assert f">{month}</text>" in html


def test_report_states_the_runs_counts(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert RUN_2 in html and "as of 2026-02-10" in html
    assert "<b>70</b><span>rows read this run</span>" in html
    assert "<b>$113.63</b><span>charges in this run&#x27;s batch</span>" in html
    # Jan 2026: billed 113.63 + billable 66.13; left: four valued months at 66.13
    assert "<b>$179.76</b>" in html and "<b>$264.52</b>" in html


def test_histogram_counts_patient_months_at_their_minute():
    counts = [0] * 91
    counts[19] = 3
    counts[90] = 2   # 90 minutes or more
    svg = histogram_svg({"not billed": counts}, {"not billed": "#dd6b20"}, "t")
    assert "<title>19 min: 3 not billed</title>" in svg
    assert "<title>90+ min: 2 not billed</title>" in svg
    assert svg.count("<rect") == 2 + 1   # two bars and the legend swatch


def test_report_on_a_warehouse_with_no_data_yet_says_so(tmp_path):
    con = connect(tmp_path / "empty.duckdb", TZ)
    summary = build_marts(con, load_settings(), "run-first", AS_OF, tmp_path / "runs" / "run-first")
    html = Path(summary["report_html"]).read_text(encoding="utf-8")
    assert "No patient-months in this month yet" in html and "No closed month yet" in html
    assert "No flags on these months" in html and "No months with minutes yet" in html


def test_render_report_escapes_what_it_is_given():
    data = ReportData(practice_name="<b>Clinic & Co</b>", run_id="r", as_of=date(2026, 2, 10),
                      generated_at=datetime(2026, 2, 11), open_month=date(2026, 2, 1),
                      closed_month=None, flags_by_type=[("<script>alert(1)</script>", 1, 0)])
    html = render_report(data)
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;Clinic &amp; Co" in html


# ---------------------------------------------------------------- the same data as one query per chart

def _reference_histogram(con, month: date, series_of_outcome: dict[str, str]) -> dict[str, list[int]]:
    counts = {s: [0] * (HISTOGRAM_MAX + 1) for s in dict.fromkeys(series_of_outcome.values())}
    for r in _rows(con, """
            select outcome, least(countable_minutes, ?) as minute, count(*) as n
            from marts.patient_month where service_month = ?
            group by all""", [HISTOGRAM_MAX, month]):
        series = series_of_outcome.get(r["outcome"])
        if series is not None and r["minute"] is not None and r["minute"] >= 0:
            counts[series][int(r["minute"])] += int(r["n"])
    return counts


def reference_report_data(con: duckdb.DuckDBPyConnection, run_id: str, as_of: date,
                        practice_name: str = "") -> ReportData:
    """collect_report_data as first written: one query per chart, straight from the views."""
    open_month = as_of.replace(day=1)
    closed_month = con.execute(
        "select max(service_month) from marts.patient_month where month_closed and service_month < ?",
        [open_month]).fetchall()[0][0] or con.execute(
        "select max(service_month) from marts.patient_month where service_month < ?", [open_month]).fetchall()[0][0]
    data = ReportData(practice_name=practice_name, run_id=run_id, as_of=as_of,
                      generated_at=datetime.now(timezone.utc), open_month=open_month, closed_month=closed_month)

    runs = _rows(con, "select * exclude (summary) from marts.pipeline_runs where run_id = ?", [run_id])
    data.run = runs[0] if runs else None
    data.recent_runs = _rows(con, """
        select run_id, as_of, status, rows_in, rows_quarantined, flags_raised, claims, charges
        from marts.pipeline_runs order by started_at desc limit 10""")

    if closed_month:
        data.histogram_closed = _reference_histogram(con, closed_month, {
            "billed": "billed or billable", "billable": "billed or billable", "not_billed": "not billed"})
        for r in _rows(con, """
                select outcome, reason,
                       -- several reasons: one row (valued 0); the combinations are in the mart
                       case when reason in ('multiple_reasons', 'unexplained') then null
                            else reason_detail end as reason_detail,
                       sum(patient_months) as n,
                       sum(expected_payment) as paid, sum(estimated_left_on_table) as left_amount
                from marts.revenue_summary where service_month = ?
                group by all order by outcome, left_amount desc nulls last, reason, reason_detail""",
                [closed_month]):
            if r["outcome"] in ("billed", "billable"):
                label = "billed" if r["outcome"] == "billed" else "billable, awaiting a batch"
                data.revenue.append((label, r["outcome"], float(r["paid"] or 0), int(r["n"])))
            elif r["outcome"] == "not_billed":
                label = r["reason"] + (f" ({r['reason_detail']})" if r["reason_detail"] else "")
                data.revenue.append((label, "left", float(r["left_amount"] or 0), int(r["n"])))
        order = {"billed": 0, "billable": 1, "left": 2}
        data.revenue.sort(key=lambda x: (order[x[1]], -x[2], x[0]))
    data.histogram_open = _reference_histogram(con, open_month, {
        "in_progress": "so far", "billed": "so far", "billable": "so far", "not_billed": "so far"})

    data.flags_since = closed_month or open_month
    data.flags_by_type = [(r["flag_code"] or "(none)", int(r["hold"]), int(r["warn"])) for r in _rows(con, """
        select flag_code, count(*) filter (where severity = 'hold') as hold,
               count(*) filter (where severity is distinct from 'hold') as warn
        from marts.dq_flags where service_month >= ? or service_month is null
        group by flag_code order by count(*) desc, flag_code""", [data.flags_since])]
    data.flags_by_staff = [
        (f"{r['staff_id'] or '(unknown)'}" + (f" ({r['staff_role']})" if r["staff_role"] else ""),
         int(r["hold"]), int(r["warn"]))
        for r in _rows(con, """
        select staff_id, any_value(staff_role) as staff_role,
               count(*) filter (where severity = 'hold') as hold,
               count(*) filter (where severity is distinct from 'hold') as warn
        from marts.dq_flags where service_month >= ? or service_month is null
        group by staff_id order by count(*) desc, staff_id limit ?""", [data.flags_since, TOP_STAFF])]

    data.trend = [
        (r["service_month"], float(r["billed"]), float(r["billable"]), float(r["in_progress"]), float(r["left"]))
        for r in _rows(con, """
        select service_month,
               coalesce(sum(expected_payment) filter (where outcome = 'billed'), 0) as billed,
               coalesce(sum(expected_payment) filter (where outcome = 'billable'), 0) as billable,
               coalesce(sum(expected_payment) filter (where outcome = 'in_progress'), 0) as in_progress,
               coalesce(sum(estimated_left_on_table), 0) as "left"
        from marts.revenue_summary
        where service_month <= ?
        group by service_month order by service_month desc limit ?""", [open_month, TREND_MONTHS])][::-1]

    con.execute(f"set variable worklist_as_of = date '{as_of.isoformat()}'")
    try:
        w = _rows(con, """
            select count(*) filter (where worklist_status <> 'claim_withheld') as patients,
                   count(*) filter (where minutes_to_next_threshold <= 5) as within_5,
                   count(*) filter (where minutes_to_next_threshold between 6 and 10) as within_10,
                   count(*) filter (where minutes_to_next_threshold > 10) as more_than_10,
                   count(*) filter (where worklist_status = 'no_minutes_yet') as no_minutes_yet,
                   count(*) filter (where next_threshold_minutes = 20) as toward_20,
                   count(*) filter (where next_threshold_minutes = 40) as toward_40,
                   count(*) filter (where next_threshold_minutes = 60) as toward_60,
                   count(*) filter (where next_threshold_minutes not in (20, 40, 60)) as toward_other,
                   count(*) filter (where worklist_status = 'claim_withheld') as claims_withheld
            from marts.threshold_worklist""")[0]
    finally:
        con.execute("reset variable worklist_as_of")
    data.worklist = {k: (v if v is not None else 0) for k, v in w.items()}
    data.worklist["days_left"] = calendar.monthrange(as_of.year, as_of.month)[1] - as_of.day
    return data


@pytest.mark.parametrize("as_of", [AS_OF, date(2026, 1, 20), date(2026, 3, 5), date(2025, 12, 3)],
                         ids=["feb", "jan", "march", "first-month-open"])
@pytest.mark.parametrize("edge_cases", [False, True], ids=["fixture", "edge-cases"])
def test_report_data_is_what_one_query_per_chart_gives(tmp_path, as_of, edge_cases):
    """The report reads marts.patient_month once (by month, outcome, minute and reason)
    and folds it in Python; each chart must hold what querying the views for it gives."""
    con = build_warehouse(tmp_path / "w.duckdb")
    if edge_cases:
        add_edge_cases(con)
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    mine = dataclasses.asdict(collect_report_data(con, RUN_2, as_of))
    expected = dataclasses.asdict(reference_report_data(con, RUN_2, as_of))
    for d in (mine, expected):
        d.pop("generated_at")
    for new in ("patient_months", "estimated_left_on_table", "dq_flags"):   # totals for the stage summary
        mine.pop(new), expected.pop(new)
    assert mine == expected
    con.close()


# ---------------------------------------------------------------- in a browser

def chromium(args: list[str], profile: Path, cwd: Path) -> subprocess.CompletedProcess:
    profile.mkdir(parents=True, exist_ok=True)
    return subprocess.run([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Anything the page wrote to its console (Chromium logs it as `:CONSOLE`), and uncaught errors.
    The report has no script, so any console line at all (a CSP refusal included) is a failure."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


needs_chromium = pytest.mark.skipif(not CHROMIUM.exists(), reason="headless check needs /usr/bin/chromium "
                                    "(apt-get install chromium)")


@needs_chromium
def test_console_check_catches_a_broken_page(tmp_path):
    """The detector itself: a page with a script error must be caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction()</script></body></html>")
    result = chromium(["--dump-dom", page.as_uri()], tmp_path / "profile", tmp_path)
    assert any("Uncaught ReferenceError" in m for m in console_messages(result.stderr))


@needs_chromium
def test_report_renders_in_headless_chromium_without_console_messages(report_html, tmp_path):
    dom = chromium(["--dump-dom", report_html.as_uri()], tmp_path / "profile-dom", tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_messages(dom.stderr) == []
    assert dom.stdout.count("<svg") == 6 and "Threshold worklist" in dom.stdout

    shot = tmp_path / "report.png"
    result = chromium(["--window-size=1000,2600", f"--screenshot={shot}", report_html.as_uri()],
                      tmp_path / "profile-shot", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 1000 and len(png) > 30_000   # a page with charts, not blank
