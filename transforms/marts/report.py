"""The HTML run report: one self-contained file per run, charts as inline SVG.

Built from the marts views only, and only from aggregates: no patient name,
MBI, note or flag message ever reaches it (patients appear as counts; staff as
staff_id and role). No script, no stylesheet or font from the network: the file
opens the same on an air-gapped workstation as in a browser with internet.

collect_report_data() queries the warehouse; render_report() is pure Python
(data in, HTML out), so the charts are tested without a warehouse.
"""
from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from html import escape
from pathlib import Path

import duckdb

from transforms.privacy import mkdir_private, write_private

THRESHOLDS = (20, 40, 60)       # 99490, +99439, +99439: the lines drawn on the histograms
HISTOGRAM_MAX = 90              # minutes; longer months are drawn in one last "90+" bar
TREND_MONTHS = 12
TOP_STAFF = 15
LABEL_MAX = 48                  # characters of a bar label shown (the full one is in the bar's tooltip)

COLORS = {
    "billed": "#2b6cb0",
    "billable": "#63b3ed",
    "in_progress": "#90a4ae",
    "not_billed": "#dd6b20",
    "left": "#dd6b20",
    "hold": "#c53030",
    "warn": "#d69e2e",
    "grid": "#e2e8f0",
    "axis": "#4a5568",
    "threshold": "#2f855a",
}


# ---------------------------------------------------------------- data

@dataclass
class ReportData:
    practice_name: str
    run_id: str
    as_of: date
    generated_at: datetime
    open_month: date
    closed_month: date | None
    run: dict | None = None
    recent_runs: list[dict] = field(default_factory=list)
    # minutes histogram: series name -> counts for 0..HISTOGRAM_MAX-1 and a last "HISTOGRAM_MAX+" bin
    histogram_closed: dict[str, list[int]] = field(default_factory=dict)
    histogram_open: dict[str, list[int]] = field(default_factory=dict)
    # billed vs left on the table, closed month: (label, kind, amount, patient_months)
    revenue: list[tuple[str, str, float, int]] = field(default_factory=list)
    # (label, hold, warn)
    flags_by_type: list[tuple[str, int, int]] = field(default_factory=list)
    flags_by_staff: list[tuple[str, int, int]] = field(default_factory=list)
    flags_since: date | None = None
    # (month, billed, billable, in_progress, left on the table)
    trend: list[tuple[date, float, float, float, float]] = field(default_factory=list)
    # threshold worklist for the open month: counts only
    worklist: dict = field(default_factory=dict)
    # the revenue cycle, from the responses read back: funnel, statuses, denials by reason, days to
    # payment, open rejections and overpayments (revenue_cycle_data)
    revenue_cycle: dict = field(default_factory=dict)
    # totals over every month and flag, for the stage's summary (not drawn)
    patient_months: int = 0
    estimated_left_on_table: Decimal = Decimal(0)
    dq_flags: int = 0


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict]:
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def worklist_counts(con: duckdb.DuckDBPyConnection, source: str = "marts.threshold_worklist") -> dict[str, int]:
    """The report's summary of the open month's worklist: marts.threshold_worklist (with
    worklist_as_of set), or a table holding its rows (the stage's copy)."""
    return _rows(con, f"""
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
        from {source}
        where worklist_status <> 'timely_filing_due'""")[0]


def month_outcomes(con: duckdb.DuckDBPyConnection) -> list[dict]:
    """marts.patient_month counted by service month, outcome, countable minute (the
    histograms' bins) and reason left on the table: whether any of them is closed, how
    many, expected payment (billed: the ledger's amount, as marts.revenue_summary
    counts it) and the estimate left on the table. One pass over the view serves the
    closed month, both histograms, billed vs left on the table, the trend and the
    stage summary's totals."""
    return _rows(con, """
        select service_month, outcome, least(countable_minutes, ?) as minute,
               left_on_table_reason as reason, left_on_table_detail as reason_detail,
               bool_or(month_closed) as any_closed,
               count(*) as n,
               sum(billed_expected_payment) as billed_expected_payment,
               sum(expected_payment) as expected_payment,
               sum(estimated_left_on_table) as estimated_left_on_table
        from marts.patient_month
        group by all""", [HISTOGRAM_MAX])


def _paid(r: dict):
    """A group's expected payment as marts.revenue_summary counts it (None: none known)."""
    if r["outcome"] == "billed":
        return r["billed_expected_payment"]
    return r["expected_payment"] if r["outcome"] in ("billable", "in_progress") else None


def _revenue(outcomes: list[dict], month: date) -> list[tuple[str, str, float, int]]:
    """Billed vs left on the table in `month`, by reason: marts.revenue_summary's rows
    for the month, with the detail of several reasons left out (valued 0; the
    combinations are in the mart)."""
    groups: dict[tuple, list] = {}
    for r in outcomes:
        if r["service_month"] != month:
            continue
        detail = None if r["reason"] in ("multiple_reasons", "unexplained") else r["reason_detail"]
        g = groups.setdefault((r["outcome"], r["reason"], detail), [0, Decimal(0), Decimal(0)])
        g[0] += int(r["n"])
        g[1] += _paid(r) or 0
        g[2] += r["estimated_left_on_table"] or 0

    def nulls_last(v):
        return (v is None, "" if v is None else v)

    revenue = []
    for (outcome, reason, detail), (n, paid, left) in sorted(
            groups.items(), key=lambda kv: (kv[0][0], -kv[1][2], nulls_last(kv[0][1]), nulls_last(kv[0][2]))):
        if outcome in ("billed", "billable"):
            label = "billed" if outcome == "billed" else "billable, awaiting a batch"
            revenue.append((label, outcome, float(paid), n))
        elif outcome == "not_billed":
            label = reason + (f" ({detail})" if detail else "")
            revenue.append((label, "left", float(left), n))
    order = {"billed": 0, "billable": 1, "left": 2}
    revenue.sort(key=lambda x: (order[x[1]], -x[2], x[0]))
    return revenue


def _month_totals(outcomes: list[dict]) -> dict[date, dict]:
    """Per service month, oldest first (a patient-month without one last, as None):
    any_closed, patient_months, and payment by outcome."""
    months: dict[date | None, dict] = {}
    for r in sorted(outcomes, key=lambda r: (r["service_month"] is None, r["service_month"] or date.min)):
        m = months.setdefault(r["service_month"], {
            "any_closed": False, "patient_months": 0, "billed": Decimal(0), "billable": Decimal(0),
            "in_progress": Decimal(0), "left": Decimal(0)})
        m["any_closed"] = m["any_closed"] or bool(r["any_closed"])
        m["patient_months"] += int(r["n"])
        if _paid(r) is not None:
            m[r["outcome"]] += _paid(r)
        m["left"] += r["estimated_left_on_table"] or 0
    return months


def _histogram(outcomes: list[dict], month: date, series_of_outcome: dict[str, str]) -> dict[str, list[int]]:
    counts = {s: [0] * (HISTOGRAM_MAX + 1) for s in dict.fromkeys(series_of_outcome.values())}
    for r in outcomes:
        if r["service_month"] != month:
            continue
        series = series_of_outcome.get(r["outcome"])
        if series is not None and r["minute"] is not None and r["minute"] >= 0:
            counts[series][int(r["minute"])] += int(r["n"])
    return counts


def _flag_counts(con, since: date) -> tuple[list[dict], int]:
    """Flags on activities of months from `since` on (or of no known month), counted by
    flag code, staff member and severity; and every flag ever raised (one query)."""
    rows = _rows(con, """
        select flag_code, staff_id, staff_role, severity = 'hold' as is_hold,
               coalesce(service_month >= ? or service_month is null, false) as shown, count(*) as n
        from marts.dq_flags
        group by all""", [since])
    return [r for r in rows if r["shown"]], sum(int(r["n"]) for r in rows)


def _top(counts: dict) -> list:
    """Keys by count descending, then by the key (nulls last), as SQL's `order by count(*) desc, key`."""
    return sorted(counts, key=lambda k: (-sum(counts[k]), k is None, "" if k is None else k))


def revenue_cycle_data(con: duckdb.DuckDBPyConnection) -> dict:
    """Counts and amounts only, from the revenue-cycle marts: claims written, how many got as far as
    accepted and paid, by status; denials by CARC (claims and denied amount, with the words); days to
    payment (weighted over the claims paid); rejections to fix; overpayments open and at risk."""
    statuses = {r["status"]: r for r in _rows(con, """
        select status, count(*) as claims, coalesce(sum(paid_amount), 0) as paid_amount
        from marts.claim_status group by all""")}
    n = {k: int(v["claims"]) for k, v in statuses.items()}
    written = sum(n.values())
    accepted = written - n.get("submitted", 0) - n.get("rejected", 0)
    paid = n.get("paid", 0) + n.get("partially_paid", 0)
    denials = _rows(con, """
        select d.carc, count(*) as claims, coalesce(sum(d.denied_amount), 0) as denied_amount, any_value(w.words) as words
        from (select unnest(string_split(carcs, ' ')) as carc, denied_amount from marts.denials_to_appeal
              where coalesce(carcs, '') <> '') d
        left join marts.reason_codes w on w.reason_code = 'CARC:' || d.carc
        group by d.carc order by claims desc, d.carc""")
    days = _rows(con, """
        select sum(avg_days_to_payment * claims_with_payment) / nullif(sum(claims_with_payment), 0) as avg_days,
               max(max_days_to_payment) as max_days, coalesce(sum(claims_with_payment), 0) as claims
        from marts.remittance_summary""")[0]
    over = _rows(con, """
        select count(*) as claims, coalesce(sum(amount_at_risk), 0) as at_risk, min(days_left) as nearest_days_left
        from marts.overpayments""")[0]
    rejections = _rows(con, "select count(*) as claims, count(*) filter (where released) as released "
                            "from marts.rejections_to_fix")[0]
    return {
        "claims_written": written,
        "funnel": [("submitted", written), ("accepted", accepted), ("paid", paid)],
        "statuses": n,
        "paid_amount": float(sum((v["paid_amount"] for v in statuses.values()), Decimal(0))),
        "denials_by_reason": [(r["carc"], int(r["claims"]), float(r["denied_amount"]), r["words"] or "")
                              for r in denials],
        "avg_days_to_payment": None if days["avg_days"] is None else round(float(days["avg_days"]), 1),
        "max_days_to_payment": days["max_days"],
        "claims_with_payment": int(days["claims"]),
        "rejections_to_fix": int(rejections["claims"]), "rejections_released": int(rejections["released"]),
        "overpayments": int(over["claims"]), "overpayment_at_risk": float(over["at_risk"]),
        "overpayment_nearest_days_left": over["nearest_days_left"],
    }


def collect_report_data(con: duckdb.DuckDBPyConnection, run_id: str, as_of: date,
                        practice_name: str = "", worklist: dict[str, int] | None = None) -> ReportData:
    """Everything the report shows, from the marts views (which must exist). `worklist`:
    worklist_counts() of the open month's worklist when the caller has them already
    (the stage, from the rows it wrote to worklist.csv), else they are counted here."""
    open_month = as_of.replace(day=1)
    outcomes = month_outcomes(con)
    months = _month_totals(outcomes)
    before_open = [m for m in months if m is not None and m < open_month]
    closed_month = (max((m for m in before_open if months[m]["any_closed"]), default=None)
                    or max(before_open, default=None))
    data = ReportData(practice_name=practice_name, run_id=run_id, as_of=as_of,
                      generated_at=datetime.now(timezone.utc), open_month=open_month, closed_month=closed_month)
    data.patient_months = sum(m["patient_months"] for m in months.values())
    data.estimated_left_on_table = sum((m["left"] for m in months.values()), Decimal(0))

    runs = _rows(con, "select * exclude (summary) from marts.pipeline_runs where run_id = ?", [run_id])
    data.run = runs[0] if runs else None
    data.recent_runs = _rows(con, """
        select run_id, as_of, status, rows_in, rows_quarantined, flags_raised, claims, charges
        from marts.pipeline_runs order by started_at desc limit 10""")

    if closed_month:
        data.histogram_closed = _histogram(outcomes, closed_month, {
            "billed": "billed or billable", "billable": "billed or billable", "not_billed": "not billed"})
        data.revenue = _revenue(outcomes, closed_month)

    data.histogram_open = _histogram(outcomes, open_month, {
        "in_progress": "so far", "billed": "so far", "billable": "so far", "not_billed": "so far"})

    data.flags_since = closed_month or open_month
    flags, data.dq_flags = _flag_counts(con, data.flags_since)
    by_type: dict = {}
    by_staff: dict = {}
    staff_role: dict = {}
    for r in flags:
        col = 0 if r["is_hold"] else 1      # severity null or anything but hold counts as a warning
        by_type.setdefault(r["flag_code"], [0, 0])[col] += int(r["n"])
        by_staff.setdefault(r["staff_id"], [0, 0])[col] += int(r["n"])
        staff_role[r["staff_id"]] = staff_role.get(r["staff_id"]) or r["staff_role"]
    data.flags_by_type = [(code or "(none)", *by_type[code]) for code in _top(by_type)]
    data.flags_by_staff = [
        (f"{staff_id or '(unknown)'}" + (f" ({staff_role[staff_id]})" if staff_role[staff_id] else ""),
         *by_staff[staff_id])
        for staff_id in _top(by_staff)[:TOP_STAFF]]

    # the trend: the TREND_MONTHS newest months up to the open month
    data.trend = [(month, float(m["billed"]), float(m["billable"]), float(m["in_progress"]), float(m["left"]))
                  for month, m in months.items() if month is not None and month <= open_month][-TREND_MONTHS:]

    if worklist is None:
        con.execute(f"set variable worklist_as_of = date '{as_of.isoformat()}'")
        try:
            worklist = worklist_counts(con)
        finally:
            con.execute("reset variable worklist_as_of")
    data.worklist = {k: (v if v is not None else 0) for k, v in worklist.items()}
    data.worklist["days_left"] = calendar.monthrange(as_of.year, as_of.month)[1] - as_of.day
    data.revenue_cycle = revenue_cycle_data(con)
    return data


# ---------------------------------------------------------------- formatting

def _money(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 1000 else f"${x:,.2f}"


def _month(d: date | None) -> str:
    return d.strftime("%b %Y") if d else "-"


def _nice_max(value: float) -> tuple[float, float]:
    """An axis maximum at or above value, and a round tick step (about 4-5 ticks)."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if step < 1 and float(value).is_integer():
        step = 1.0
    return step * math.ceil(value / step), step


def _fmt_tick(v: float, money: bool) -> str:
    if money:
        return f"${v / 1000:,.1f}k" if v >= 1000 else f"${v:,.0f}"
    return f"{v:,.0f}"


def _svg_open(width: int, height: int, title: str) -> list[str]:
    return [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>']


def _text(x: float, y: float, s: str, anchor: str = "start", size: int = 12, fill: str = "#2d3748",
          weight: str = "normal", extra: str = "") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" fill="{fill}" '
            f'font-weight="{weight}"{extra}>{escape(s)}</text>')


def _legend(parts: list[str], items: list[tuple[str, str]], x: float, y: float) -> None:
    for name, color in items:
        parts.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{color}"/>')
        parts.append(_text(x + 17, y, name))
        x += 30 + 7 * len(name)


def _empty(width: int, height: int, title: str, message: str) -> str:
    height = min(height, 90)
    parts = _svg_open(width, height, title)
    parts.append(f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="#f7fafc" '
                 f'stroke="{COLORS["grid"]}"/>')
    parts.append(_text(width / 2, height / 2, message, anchor="middle", size=14, fill="#718096"))
    parts.append("</svg>")
    return "".join(parts)


def histogram_svg(series: dict[str, list[int]], colors: dict[str, str], title: str,
                  thresholds: tuple[int, ...] = THRESHOLDS, width: int = 900, height: int = 300) -> str:
    """Patient-months by countable minute (one bar per minute, stacked by series), threshold lines."""
    if not series or not any(sum(c) for c in series.values()):
        return _empty(width, height, title, "No patient-months in this month yet")
    left, right, top, bottom = 48, 16, 48, 42
    plot_w, plot_h = width - left - right, height - top - bottom
    bins = len(next(iter(series.values())))
    totals = [sum(c[i] for c in series.values()) for i in range(bins)]
    y_max, step = _nice_max(max(totals))
    bar_w = plot_w / bins
    parts = _svg_open(width, height, title)
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = top + plot_h - plot_h * tick / y_max
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS["grid"]}"/>')
        parts.append(_text(left - 6, y + 4, _fmt_tick(tick, False), anchor="end", size=11))
        tick += step
    for i in range(bins):
        y_base = top + plot_h
        for name, counts in series.items():
            n = counts[i]
            if not n:
                continue
            h = plot_h * n / y_max
            y_base -= h
            label = f"{i}+ min" if i == bins - 1 else f"{i} min"
            parts.append(f'<rect x="{left + i * bar_w + 0.5:.1f}" y="{y_base:.1f}" width="{max(bar_w - 1, 1):.1f}" '
                         f'height="{h:.1f}" fill="{colors[name]}"><title>{escape(label)}: {n} {escape(name)}'
                         f'</title></rect>')
    for m in sorted(set(range(0, bins - 1, 10)) | {bins - 1}):   # the last bin holds every longer month
        x = left + m * bar_w + bar_w / 2
        parts.append(_text(x, top + plot_h + 16, f"{m}+" if m == bins - 1 else str(m), anchor="middle", size=11))
    parts.append(_text(left + plot_w / 2, height - 6, "countable minutes in the month", anchor="middle", size=12,
                       fill=COLORS["axis"]))
    for t in thresholds:
        if t < bins:
            x = left + t * bar_w
            parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 14}" y2="{top + plot_h}" '
                         f'stroke="{COLORS["threshold"]}" stroke-width="2" stroke-dasharray="5 3"/>')
            parts.append(_text(x + 4, top - 4, f"{t} min", size=11, fill=COLORS["threshold"], weight="bold"))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
                 f'stroke="{COLORS["axis"]}"/>')
    _legend(parts, [(name, colors[name]) for name in series], left, 16)
    parts.append("</svg>")
    return "".join(parts)


def hbar_svg(rows: list[tuple[str, list[float]]], series: list[tuple[str, str]], title: str, money: bool = False,
             notes: list[str] | None = None, width: int = 900, empty_message: str = "Nothing to show") -> str:
    """Horizontal bars, one per row, stacked by series; the total printed at the bar's end."""
    bar_h, gap, top = 22, 8, 34
    height = top + len(rows) * (bar_h + gap) + 30
    if not rows or not any(sum(v) for _, v in rows):
        return _empty(width, 120, title, empty_message)
    label_w = min(max(len(label) for label, _ in rows), LABEL_MAX) * 7 + 16
    left, right = label_w, 110
    plot_w = width - left - right
    x_max, step = _nice_max(max(sum(v) for _, v in rows))
    parts = _svg_open(width, height, title)
    tick = 0.0
    while tick <= x_max + 1e-9:
        x = left + plot_w * tick / x_max
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top - 6}" y2="{height - 24}" stroke="{COLORS["grid"]}"/>')
        parts.append(_text(x, height - 8, _fmt_tick(tick, money), anchor="middle", size=11))
        tick += step
    for i, (label, values) in enumerate(rows):
        y = top + i * (bar_h + gap)
        shown_label = label if len(label) <= LABEL_MAX else label[:LABEL_MAX - 1] + "…"
        parts.append(_text(left - 8, y + bar_h / 2 + 4, shown_label, anchor="end"))
        x = float(left)
        for (name, color), v in zip(series, values):
            if v <= 0:
                continue
            w = plot_w * v / x_max
            shown = _money(v) if money else f"{v:,.0f}"
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
                         f'<title>{escape(label)}: {escape(shown)} {escape(name)}</title></rect>')
            x += w
        total = sum(values)
        note = f"  {notes[i]}" if notes and notes[i] else ""
        parts.append(_text(x + 6, y + bar_h / 2 + 4, (_money(total) if money else f"{total:,.0f}") + note, size=11))
    if len(series) > 1:
        _legend(parts, series, left, 16)
    parts.append("</svg>")
    return "".join(parts)


def month_trend_svg(trend: list[tuple[date, float, float, float, float]], title: str, width: int = 900,
                    height: int = 320) -> str:
    """Per month: one stacked bar of payment (billed, billable, in progress) beside one of left on the table."""
    if not trend or not any(sum(t[1:]) for t in trend):
        return _empty(width, height, title, "No months with minutes yet")
    left, right, top, bottom = 64, 16, 36, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    y_max, step = _nice_max(max(max(b + bl + ip, lf) for _, b, bl, ip, lf in trend))
    slot = plot_w / len(trend)
    bar_w = min(slot * 0.36, 46)
    parts = _svg_open(width, height, title)
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = top + plot_h - plot_h * tick / y_max
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{COLORS["grid"]}"/>')
        parts.append(_text(left - 6, y + 4, _fmt_tick(tick, True), anchor="end", size=11))
        tick += step
    stack = [("billed", "billed"), ("billable", "billable, awaiting a batch"), ("in_progress", "month not closed yet")]
    for i, (month, billed, billable, in_progress, left_amount) in enumerate(trend):
        cx = left + slot * i + slot / 2
        y_base = top + plot_h
        for (key, name), v in zip(stack, (billed, billable, in_progress)):
            if v <= 0:
                continue
            h = plot_h * v / y_max
            y_base -= h
            parts.append(f'<rect x="{cx - bar_w - 1:.1f}" y="{y_base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{COLORS[key]}"><title>{_month(month)}: {escape(_money(v))} {escape(name)}'
                         f'</title></rect>')
        if left_amount > 0:
            h = plot_h * left_amount / y_max
            parts.append(f'<rect x="{cx + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{COLORS["left"]}" fill-opacity="0.85"><title>{_month(month)}: '
                         f'{escape(_money(left_amount))} left on the table (estimate)</title></rect>')
        parts.append(_text(cx, top + plot_h + 16, month.strftime("%b %y"), anchor="middle", size=11))
        total = billed + billable + in_progress
        if total > 0:
            parts.append(_text(cx - bar_w / 2 - 1, y_base - 4, _fmt_tick(total, True), anchor="middle", size=10))
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
                 f'stroke="{COLORS["axis"]}"/>')
    _legend(parts, [(name, COLORS[key]) for key, name in stack] + [("left on the table (est.)", COLORS["left"])],
            left, 16)
    parts.append("</svg>")
    return "".join(parts)


# ---------------------------------------------------------------- page

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#1a202c;
     margin:0;background:#f4f6f8}
main{max-width:960px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 6px}h3{font-size:14px;margin:14px 0 4px}
p.sub,p.note{color:#4a5568;margin:2px 0 10px;font-size:13px}
section{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:12px 16px 16px;margin:14px 0}
.kpis{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin-top:12px}
.kpi{background:#fff;border:1px solid #e2e8f0;border-radius:6px;padding:10px 12px}
.kpi b{display:block;font-size:20px}.kpi span{font-size:12px;color:#4a5568}
table{border-collapse:collapse;font-size:12px;width:100%}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #edf2f7}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
svg{max-width:100%;height:auto;display:block}
.status-failed{color:#c53030;font-weight:bold}
"""


def _kpi(value: str, label: str) -> str:
    return f'<div class="kpi"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def render_report(data: ReportData) -> str:
    run = data.run or {}
    left_total = sum(a for _, kind, a, _ in data.revenue if kind == "left")
    billed_total = sum(a for _, kind, a, _ in data.revenue if kind != "left")
    kpis = [
        _kpi(str(run.get("status", "-")), "run status when reported"),
        _kpi(f"{run.get('rows_in', 0):,}", "rows read this run"),
        _kpi(f"{run.get('rows_quarantined', 0):,}", "rows quarantined"),
        _kpi(f"{run.get('flags_raised', 0):,}", "flags raised this run"),
        _kpi(f"{run.get('claims', 0):,}", "claims in this run's batch"),
        _kpi(_money(float(run.get("charges") or 0)), "charges in this run's batch"),
        _kpi(_money(billed_total), f"expected payment, {_month(data.closed_month)}"),
        _kpi(_money(left_total), f"left on the table (est.), {_month(data.closed_month)}"),
    ]

    hist_closed = histogram_svg(
        data.histogram_closed, {"billed or billable": COLORS["billed"], "not billed": COLORS["not_billed"]},
        f"Countable minutes per patient-month, {_month(data.closed_month)}")
    hist_open = histogram_svg(
        data.histogram_open, {"so far": COLORS["in_progress"]},
        f"Countable minutes so far, {_month(data.open_month)} (open month)", height=240)
    revenue_chart = hbar_svg(
        [(label, [amount if kind == "billed" else 0, amount if kind == "billable" else 0,
                  amount if kind == "left" else 0]) for label, kind, amount, _ in data.revenue],
        [("billed", COLORS["billed"]), ("billable, awaiting a batch", COLORS["billable"]),
         ("left on the table (est.)", COLORS["left"])],
        f"Billed vs left on the table by reason, {_month(data.closed_month)}", money=True,
        notes=[f"({n} patient-month{'s' if n != 1 else ''})" for _, _, _, n in data.revenue],
        empty_message="No closed month yet")
    flag_series = [("hold", COLORS["hold"]), ("warn", COLORS["warn"])]
    flags_type = hbar_svg([(c, [h, w]) for c, h, w in data.flags_by_type], flag_series,
                          "Flags by type", empty_message="No flags on these months")
    flags_staff = hbar_svg([(s, [h, w]) for s, h, w in data.flags_by_staff], flag_series,
                           "Flags by staff member", empty_message="No flags on these months")
    trend = month_trend_svg(data.trend, "Expected payment and left on the table, by service month")
    revenue_cycle_html = _revenue_cycle_html(data.revenue_cycle)

    w = data.worklist
    worklist_html = (
        f"<p class='note'>{w.get('patients', 0)} patients to work in {_month(data.open_month)}, "
        f"{w.get('days_left', 0)} days left after {data.as_of.isoformat()}. Names are in the run's "
        f"<code>worklist.csv</code> and in <code>marts.threshold_worklist</code>, never in this report.</p>"
        "<table><tr><th>minutes to the next threshold</th><th class='n'>patients</th>"
        "<th>next threshold</th><th class='n'>patients</th></tr>"
        f"<tr><td>1-5</td><td class='n'>{w.get('within_5', 0)}</td><td>20 min</td>"
        f"<td class='n'>{w.get('toward_20', 0)}</td></tr>"
        f"<tr><td>6-10</td><td class='n'>{w.get('within_10', 0)}</td><td>40 min</td>"
        f"<td class='n'>{w.get('toward_40', 0)}</td></tr>"
        f"<tr><td>more than 10</td><td class='n'>{w.get('more_than_10', 0)}</td><td>60 min</td>"
        f"<td class='n'>{w.get('toward_60', 0)}</td></tr>"
        f"<tr><td>of which no minutes yet</td><td class='n'>{w.get('no_minutes_yet', 0)}</td>"
        f"<td>other (30, 90 …)</td><td class='n'>{w.get('toward_other', 0)}</td></tr>"
        "</table>"
        + (f"<p class='note'>{w['claims_withheld']} claims of closed months withheld by a claim edit: the data "
           f"to fix is in <code>worklist.csv</code> (<code>withheld_reasons</code>), listed first.</p>"
           if w.get("claims_withheld") else ""))

    run_rows = "".join(
        "<tr>" + "".join([
            f"<td>{escape(str(r['run_id']))}</td>",
            f"<td>{escape(str(r['as_of'] or ''))}</td>",
            f"<td class='status-{escape(str(r['status']))}'>{escape(str(r['status']))}</td>",
            f"<td class='n'>{r['rows_in']:,}</td>",
            f"<td class='n'>{r['rows_quarantined']:,}</td>",
            f"<td class='n'>{r['flags_raised']:,}</td>",
            f"<td class='n'>{r['claims']:,}</td>",
            f"<td class='n'>{escape(_money(float(r['charges'] or 0)))}</td>",
        ]) + "</tr>" for r in data.recent_runs)

    title = f"CCM run report {data.run_id}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # nothing may load from anywhere: no script, no remote image, font or stylesheet
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{escape(data.practice_name or 'Chronic Care Management')}: run report</h1>",
        f"<p class='sub'>Run <code>{escape(data.run_id)}</code>, as of {data.as_of.isoformat()}; "
        f"last closed month {_month(data.closed_month)}, open month {_month(data.open_month)}. "
        f"Generated {data.generated_at:%Y-%m-%d %H:%M} UTC. Aggregates only: no patient is named here.</p>",
        f"<div class='kpis'>{''.join(kpis)}</div>",
        "<section><h2>Minutes around the thresholds</h2>"
        "<p class='note'>Patient-months by countable minutes; dashed lines at 20 (99490), 40 and 60 "
        "(each 99439). Bars just left of a line are months that missed a code by a few minutes.</p>"
        f"{hist_closed}{hist_open}</section>",
        "<section><h2>Billed vs left on the table</h2>"
        "<p class='note'>Left on the table is an estimate: the base code's (99490) fee for the month's rules "
        "year, for each closed patient-month that one fixable reason kept from being billed "
        "(see sql/marts/DATA_DICTIONARY.md, marts.patient_month).</p>"
        f"{revenue_chart}</section>",
        "<section><h2>Documentation flags</h2>"
        f"<p class='note'>Flags on activities from {_month(data.flags_since)} on. A hold keeps the minutes out "
        "of billing until the note is amended; a warning does not.</p>"
        f"<h3>By flag type</h3>{flags_type}<h3>By staff member (staff_id and role)</h3>{flags_staff}</section>",
        f"<section><h2>Month trends</h2>{trend}</section>",
        revenue_cycle_html,
        f"<section><h2>Threshold worklist, {_month(data.open_month)}</h2>{worklist_html}</section>",
        "<section><h2>Recent runs</h2><table><tr><th>run</th><th>as of</th><th>status</th>"
        "<th class='n'>rows in</th><th class='n'>quarantined</th><th class='n'>flags</th><th class='n'>claims</th>"
        f"<th class='n'>charges</th></tr>{run_rows}</table></section>",
        "</main></body></html>",
    ])


def _revenue_cycle_html(rc: dict) -> str:
    """Submitted -> accepted -> paid, statuses, denials by reason, days to payment, money at risk."""
    if not rc:
        return ""
    s = rc.get("statuses", {})
    days = rc.get("avg_days_to_payment")
    nearest = rc.get("overpayment_nearest_days_left")
    kpis = "".join([
        _kpi(f"{rc['claims_written']:,}", "claims written, ever"),
        _kpi(_money(rc["paid_amount"]), "paid by the payer (835s read)"),
        _kpi("-" if days is None else f"{days:.1f} days", "from batch to payment, on average"),
        _kpi(f"{rc['rejections_to_fix']:,}", "rejections to fix (marts.rejections_to_fix)"),
        _kpi(f"{s.get('denied', 0) + s.get('partially_paid', 0):,}", "denials to appeal (marts.denials_to_appeal)"),
        _kpi(_money(rc["overpayment_at_risk"]), f"at risk in {rc['overpayments']} overpayment"
             f"{'s' if rc['overpayments'] != 1 else ''}" + (f", {nearest} days to the first deadline"
                                                           if nearest is not None else "")),
    ])
    funnel = hbar_svg([(label, [float(n)]) for label, n in rc["funnel"]], [("claims", COLORS["billed"])],
                      "Claims submitted, accepted, paid", empty_message="No claim written yet")
    denials = hbar_svg([(f"{carc} {words}", [float(n)]) for carc, n, _, words in rc["denials_by_reason"]],
                       [("claims", COLORS["not_billed"])], "Denials by reason (CARC)",
                       notes=[_money(amount) for _, _, amount, _ in rc["denials_by_reason"]],
                       empty_message="No denial")
    status_rows = "".join(f"<tr><td>{escape(k)}</td><td class='n'>{v:,}</td></tr>" for k, v in sorted(s.items()))
    return ("<section><h2>Revenue cycle</h2>"
            "<p class='note'>What came back from the clearinghouse and the payer (999, 277CA, 835). A rejected "
            "claim is billed again, under a new claim id, once it is fixed or released (ccm resubmit); a denial "
            "is appealed within 120 days of the remittance; an overpayment is refunded within 60 days of being "
            "identified (42 CFR 401.305).</p>"
            f"<div class='kpis'>{kpis}</div>{funnel}<h3>Claims by status</h3>"
            f"<table><tr><th>status</th><th class='n'>claims</th></tr>{status_rows}</table>"
            f"<h3>Denials</h3>{denials}</section>")


def write_report(con: duckdb.DuckDBPyConnection, run_id: str, as_of: date, path: Path,
                 practice_name: str = "", data: ReportData | None = None) -> Path:
    """Write the report atomically (a half-written file never replaces a good one).
    `data`: collect_report_data()'s result when the caller has it already."""
    html = render_report(data or collect_report_data(con, run_id, as_of, practice_name))
    mkdir_private(path.parent)
    write_private(path, html)  # owner-only, like the warehouse it summarises
    return path
