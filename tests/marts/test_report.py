"""The HTML run report: self-contained, no PHI, the charts there, and it renders
in a real browser (headless Chromium) without a console message."""
from __future__ import annotations

import re
import subprocess
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from marts_fixtures import (AS_OF, FLAG_MESSAGE, MBI, NOTE_TEXT, PATIENT_NAMES, RUN_2, STAFF, TZ, add_edge_cases,
                            build_warehouse)
from transforms.marts.views import build_marts
from transforms.marts.report import HISTOGRAM_MAX, ReportData, collect_report_data, histogram_svg, render_report
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
        "Claims submitted, accepted, paid",
        "Denials by reason (CARC)",
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


# ---------------------------------------------------------------- each chart's data, by hand
# The fixture (marts_fixtures' docstring) at AS_OF 2026-02-10: the open month is
# Feb 2026, the closed month shown is Jan 2026.

def _bins(**at: int) -> list[int]:
    """Histogram counts: _bins(m22=1) has one patient-month at 22 minutes."""
    counts = [0] * (HISTOGRAM_MAX + 1)
    for key, n in at.items():
        counts[int(key[1:])] = n
    return counts


def test_report_data_holds_each_chart_as_computed_by_hand(tmp_path):
    con = build_warehouse(tmp_path / "w.duckdb")
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    data = collect_report_data(con, RUN_2, AS_OF)
    assert (data.open_month, data.closed_month, data.flags_since) == (date(2026, 2, 1), date(2026, 1, 1),
                                                                       date(2026, 1, 1))
    # January: P1 billed at 45, P7 billable at 22; P4 0, P6 8, P3 12, P2 19, P5 30 not billed
    assert data.histogram_closed == {"billed or billable": _bins(m22=1, m45=1),
                                     "not billed": _bins(m0=1, m8=1, m12=1, m19=1, m30=1)}
    # February so far, every patient-month whatever its outcome
    assert data.histogram_open == {"so far": _bins(m3=1, m5=1, m15=1, m18=1, m25=1, m35=1, m65=1)}
    # billed: the ledger's 66.13 + 47.50; left: four single reasons at 2026's 66.13, P6's two at 0
    assert data.revenue == [
        ("billed", "billed", 113.63, 1),
        ("billable, awaiting a batch", "billable", 66.13, 1),
        ("below_threshold (15-19 of 20 min)", "left", 66.13, 1),
        ("held_documentation (12 countable + 10 held of 20 min)", "left", 66.13, 1),
        ("no_consent", "left", 66.13, 1),                        # 25 minutes before the consent
        ("not_medicare_part_b (medicaid)", "left", 66.13, 1),
        ("multiple_reasons", "left", 0.0, 1),
    ]
    # six flags, all on January and February activities: vague x3 (warn), late x2 (A4 hold, A1 warn), missing x1
    assert data.flags_by_type == [("vague_note", 0, 3), ("late_documentation", 1, 1), ("missing_note", 1, 0)]
    assert data.flags_by_staff == [("S-MA (ma)", 2, 2), ("S-RN (rn)", 0, 2)]
    # (month, billed, billable, in progress, left): December 60.49 billed and P2's 17 minutes at
    # 2025's 60.49; February in progress: P2's 66.13 + P10's 161.13
    assert data.trend == [(date(2025, 12, 1), 60.49, 0.0, 0.0, 60.49),
                          (date(2026, 1, 1), 113.63, 66.13, 0.0, 264.52),
                          (date(2026, 2, 1), 0.0, 0.0, 227.26, 0.0)]
    # the worklist (test_marts): gaps 2 (P1), 5 (P2), 15 (P3), 17 (P9), 20 (P7, nothing yet)
    assert data.worklist == {"patients": 5, "within_5": 2, "within_10": 0, "more_than_10": 3,
                             "no_minutes_yet": 1, "toward_20": 4, "toward_40": 1, "toward_60": 0,
                             "toward_other": 0, "claims_withheld": 0, "days_left": 18}
    assert (data.patient_months, data.estimated_left_on_table, data.dq_flags) == (16, Decimal("325.01"), 6)
    assert data.run["run_id"] == RUN_2
    con.close()


def test_report_data_with_unusual_reasons_lists_groups_them_as_the_mart_does(tmp_path):
    """add_edge_cases (test_marts works each one out): January gains E8 billable (66.13), E4
    (medicaid, 66.13) beside P5, E3 (no consent, 5 minutes: 0) beside P4, E6 (24 of 30 minutes),
    E5 and E13 with several reasons, E7 and E9 at 0; E12's month is not closed, so it is in
    progress; November gains E1 (12 of 20 minutes at 60.49) and E14 billable at 55.00."""
    con = build_warehouse(tmp_path / "w.duckdb")
    add_edge_cases(con)
    build_marts(con, load_settings(), RUN_2, AS_OF, tmp_path / "runs" / RUN_2)
    data = collect_report_data(con, RUN_2, AS_OF)
    assert data.closed_month == date(2026, 1, 1)
    assert data.histogram_closed == {
        "billed or billable": _bins(m22=2, m45=1),
        "not billed": _bins(m0=1, m3=1, m5=1, m8=1, m9=1, m10=1, m12=1, m19=1, m24=1, m26=1, m30=1, m31=1)}
    assert data.revenue == [
        ("billed", "billed", 113.63, 1),
        ("billable, awaiting a batch", "billable", 132.26, 2),
        ("not_medicare_part_b (medicaid)", "left", 132.26, 2),
        ("below_threshold (15-19 of 20 min)", "left", 66.13, 1),
        ("below_threshold (20-24 of 30 min)", "left", 66.13, 1),
        ("held_documentation (12 countable + 10 held of 20 min)", "left", 66.13, 1),
        ("no_consent", "left", 66.13, 2),
        ("multiple_reasons", "left", 0.0, 3),
        ("no_care_plan", "left", 0.0, 1),
        ("unexplained", "left", 0.0, 1),
    ]
    assert data.trend == [(date(2025, 11, 1), 0.0, 55.0, 0.0, 60.49),
                          (date(2025, 12, 1), 60.49, 0.0, 0.0, 60.49),
                          (date(2026, 1, 1), 113.63, 132.26, 0.0, 396.78),
                          (date(2026, 2, 1), 0.0, 0.0, 227.26, 0.0)]
    # E-A1 (late, January, S-RN, hold), E-A3 (vague, January, S-MA, warn) and E-A9 (orphan, no month,
    # no staff: shown all the same) join the six; ties in count go by name
    assert data.flags_by_type == [("vague_note", 0, 4), ("late_documentation", 2, 1), ("missing_note", 1, 0),
                                  ("orphan", 1, 0)]
    assert data.flags_by_staff == [("S-MA (ma)", 2, 3), ("S-RN (rn)", 1, 2), ("(unknown)", 1, 0)]
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
    assert dom.stdout.count("<svg") == 8 and "Threshold worklist" in dom.stdout and "Revenue cycle" in dom.stdout

    shot = tmp_path / "report.png"
    result = chromium(["--window-size=1000,2600", f"--screenshot={shot}", report_html.as_uri()],
                      tmp_path / "profile-shot", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert int.from_bytes(png[16:20], "big") == 1000 and len(png) > 30_000   # a page with charts, not blank
