"""Great Expectations plumbing: the suites kept as files in expectations/<table>.json,
run on pandas frames in an ephemeral GX context, Data Docs written where asked.

`great_expectations` is imported inside the functions that use it: the import
costs seconds, and most of the pipeline (and most tests) never need it.

GX only ever sees the frames built by sql/quality/suite_frames/<table>.sql,
where the note is replaced by its measures and identifying columns by their
shape, so neither the results nor Data Docs carry PHI.
"""
from __future__ import annotations

import html
import json
import logging
import os
from numbers import Integral
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from transforms.contract import TABLES
from transforms.paths import EXPECTATIONS_DIR
from transforms.privacy import mkdir_private

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

DOCS_SITE = "run"
SAMPLE_ROWS = 5  # unexpected rows GX keeps per expectation, for Data Docs and messages


class SuiteFileError(ValueError):
    """An expectations/<table>.json file is missing or not a suite."""


@dataclass(frozen=True)
class ExpectationOutcome:
    table: str
    column: str
    expectation: str  # the GX expectation type
    severity: str  # critical (structure: fails the suite) / warning / info
    success: bool
    unexpected_count: int | None
    element_count: int | None
    message: str  # one line, naming the table and column

    @property
    def fails_suite(self) -> bool:
        return not self.success and self.severity == "critical"


def suite_path(table: str) -> Path:
    return EXPECTATIONS_DIR / f"{table}.json"


def load_suite(table: str) -> dict[str, Any]:
    """The suite for one input table, as stored (the kwargs of gx.ExpectationSuite)."""
    path = suite_path(table)
    try:
        suite = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SuiteFileError(f"{path}: no expectation suite for table {table!r}") from None
    except json.JSONDecodeError as exc:
        raise SuiteFileError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(suite, dict) or suite.get("name") != table or not isinstance(suite.get("expectations"), list):
        raise SuiteFileError(f"{path}: must be an object with name {table!r} and a list of expectations")
    return suite


# Expectation types whose result a chunk can state for its own rows alone: per-row
# (map) checks, whose counts add up across chunks, and column existence. The
# row-set checks among them (uniqueness) hold across chunks only when rows that
# could repeat each other share a chunk: see partition_columns.
_CROSS_ROW = {
    "expect_column_values_to_be_unique": lambda kw: [kw.get("column")],
    "expect_compound_columns_to_be_unique": lambda kw: list(kw.get("column_list") or []),
    "expect_multicolumn_values_to_be_unique": lambda kw: list(kw.get("column_list") or []),
}
# Compare neighbouring rows: only one batch of all rows, in order, can say.
_WHOLE_SET = {"expect_column_values_to_be_increasing", "expect_column_values_to_be_decreasing"}
_PER_ROW_PREFIXES = ("expect_column_values_to_", "expect_column_pair_values_", "expect_multicolumn_sum_values_",
                     "expect_select_column_values_to_be_unique_within_record", "expect_column_to_exist")


def partition_columns(table: str) -> tuple[str, ...] | None:
    """The columns that rows must share to land in one chunk, so that validating
    a table chunk by chunk and adding up the counts gives what one batch of all
    rows gives: the columns common to every uniqueness expectation of the suite
    (rows that repeat each other agree on them); () when it has none. None when
    the suite has an expectation over the whole row set (a mean, a row count...):
    then the table is validated as one batch."""
    common: set[str] | None = None
    for expectation in load_suite(table)["expectations"]:
        kind, kwargs = expectation.get("type", ""), expectation.get("kwargs") or {}
        if kind in _WHOLE_SET:
            return None
        if kind in _CROSS_ROW:
            columns = {c for c in _CROSS_ROW[kind](kwargs) if c}
            common = columns if common is None else common & columns
            if not common:
                return None
        elif not kind.startswith(_PER_ROW_PREFIXES):
            return None
    return tuple(sorted(common)) if common else ()


def run_suites(
    batches: Mapping[str, "pd.DataFrame | Iterable[pd.DataFrame]"],
    parameters: dict[str, Any],
    run_name: str,
    data_docs_dir: Path | None = None,
) -> dict[str, SuiteResult]:
    """Validate each table's rows against its suite; build Data Docs into data_docs_dir.

    A table's rows are one frame, or an iterable of frames (chunks, fetched one at
    a time so that memory stays bounded): each chunk is one GX validation, and
    their results are merged into one result per suite, as one batch of all the
    rows would give (see partition_columns for how chunks must be cut). Data Docs
    show the merged result. `parameters` fill the suites' {"$PARAMETER": name}
    thresholds.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = _ephemeral_context(data_docs_dir)
    datasource = context.data_sources.add_pandas("warehouse")
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    results: dict[str, SuiteResult] = {}
    for table, chunks in batches.items():
        batch_definition = datasource.add_dataframe_asset(table).add_batch_definition_whole_dataframe(f"{table} rows")
        suite = context.suites.add(gx.ExpectationSuite(**load_suite(table)))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{table} suite", data=batch_definition, suite=suite)
        )
        merged: list[_MergedResult] = []
        rows = count = 0
        last = None
        for frame in ([chunks] if _is_frame(chunks) else chunks):
            last = validation.run(
                batch_parameters={"dataframe": frame},
                expectation_parameters=parameters,
                # No unexpected_index_column_names: GX would build a dict per failing
                # row (minutes on a 1M-row drop with many failures). Positions are
                # cheap; messages look the rows up in the frame.
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS},
                run_id=run_id,
            )
            if not merged:
                merged = [_MergedResult(evr) for evr in last.results]
            for m, evr in zip(merged, last.results):
                m.add(evr, frame, table, rows)
            rows += len(frame)
            count += 1
        if last is None:
            continue
        if count > 1:
            _store_merged(context, table, last, merged)
        results[table] = SuiteResult(
            outcomes=[_outcome(table, m.evr, m.result(), m.success(), m.where) for m in merged],
            rows=rows,
            chunks=count,
        )
    if data_docs_dir is not None and results:
        mkdir_private(data_docs_dir)  # Data Docs sit beside the warehouse: owner-only, like it
        context.build_data_docs(site_names=[DOCS_SITE])
        _add_offline_contents(data_docs_dir)
        _owner_only(data_docs_dir)
    return results


@dataclass(frozen=True)
class SuiteResult:
    outcomes: list[ExpectationOutcome]
    rows: int  # rows validated, over all chunks
    chunks: int  # GX validations run for the suite


def _is_frame(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "iloc")


class _MergedResult:
    """One expectation's result over all chunks: counts added up, the sample of
    unexpected values and row positions capped at SAMPLE_ROWS, success decided on
    the totals (so `mostly` is judged over all rows, not per chunk), the first
    failing row found in the chunk that held it."""

    COUNTS = ("element_count", "unexpected_count", "missing_count")

    def __init__(self, evr) -> None:
        self.evr = evr  # the first chunk's: its configuration, and the result keys it has
        self.first = dict(evr.result or {})
        self.totals: dict[str, int] | None = {k: 0 for k in self.COUNTS if k in self.first}
        self.all_succeeded = True
        self.exception: dict | None = None
        self.values: list[Any] = []
        self.positions: list[int] = []
        self.where = ""
        self.chunks = 0

    def add(self, evr, frame: "pd.DataFrame", table: str, offset: int) -> None:
        result = evr.result or {}
        self.all_succeeded &= bool(evr.success)
        info = evr.exception_info if isinstance(evr.exception_info, dict) else {}
        if info.get("raised_exception") and self.exception is None:
            self.exception = info
            self.evr = evr
        if self.totals is not None:
            if any(result.get(k) is None for k in self.totals):
                self.totals = None  # not countable in some chunk: success is then every chunk's
            else:
                for k in self.totals:
                    self.totals[k] += int(result[k])
        if result.get("unexpected_count"):
            if not self.where:
                self.where = _first_row(table, result, frame)
            room = SAMPLE_ROWS - len(self.values)
            if room > 0:
                self.values += list(result.get("partial_unexpected_list") or [])[:room]
                self.positions += [offset + p for p in (result.get("partial_unexpected_index_list") or [])
                                   if isinstance(p, Integral)][:room]
        self.chunks += 1

    def success(self) -> bool:
        if self.chunks == 1:
            return bool(self.evr.success)  # one batch: GX's own verdict
        if self.exception is not None:
            return False
        if not self.totals or "unexpected_count" not in self.totals or "element_count" not in self.totals:
            return self.all_succeeded
        total = self.totals["element_count"]
        considered = total - self.totals.get("missing_count", 0)
        if total == 0 or considered == 0:
            return True  # vacuously, as GX decides
        mostly = (self.evr.expectation_config.kwargs or {}).get("mostly", 1.0)
        if not isinstance(mostly, (int, float)):
            return self.all_succeeded
        return (considered - self.totals["unexpected_count"]) / considered >= mostly

    def result(self) -> dict:
        if self.chunks == 1 or self.exception is not None:
            return dict(self.evr.result or {})
        merged = dict(self.first)
        if not self.totals:
            return merged
        merged.update(self.totals)
        total = self.totals.get("element_count", 0)
        missing = self.totals.get("missing_count", 0)
        unexpected = self.totals.get("unexpected_count", 0)
        considered = total - missing
        for key, value in (
            ("missing_percent", 100 * missing / total if total else None),
            ("unexpected_percent", 100 * unexpected / considered if considered else None),
            ("unexpected_percent_total", 100 * unexpected / total if total else None),
            ("unexpected_percent_nonmissing", 100 * unexpected / considered if considered else None),
        ):
            if key in merged:
                merged[key] = value
        if "partial_unexpected_list" in merged:
            merged["partial_unexpected_list"] = self.values
        if "partial_unexpected_index_list" in merged:
            merged["partial_unexpected_index_list"] = self.positions
        if "partial_unexpected_counts" in merged:
            counted: dict[str, list] = {}
            for v in self.values:
                counted.setdefault(repr(v), [v, 0])[1] += 1
            merged["partial_unexpected_counts"] = [
                {"value": v, "count": c} for v, c in sorted(counted.values(), key=lambda vc: -vc[1])
            ]
        return merged


def _store_merged(context, table: str, last, merged: list[_MergedResult]) -> None:
    """Data Docs are built from the validation results store: keep one result
    per suite there, the merged one, in place of one per chunk."""
    store = context.validation_results_store
    keys = [k for k in store.list_keys() if k.expectation_suite_identifier.name == table]
    for m, evr in zip(merged, last.results):
        evr.success = m.success()
        evr.result = m.result()
        if m.exception is not None:
            evr.exception_info = m.exception
    successful = sum(1 for evr in last.results if evr.success)
    evaluated = len(last.results)
    last.success = successful == evaluated
    last.statistics.update({
        "evaluated_expectations": evaluated,
        "successful_expectations": successful,
        "unsuccessful_expectations": evaluated - successful,
        "success_percent": 100 * successful / evaluated if evaluated else None,
    })
    for key in keys[1:]:
        store.remove_key(key)
    if keys:
        store.set(keys[0], last)


def _add_offline_contents(data_docs_dir: Path) -> None:
    """GX's index lists its pages with scripts from public CDNs; a practice
    server without internet would show an empty index. Append a plain list of
    links so the run's Data Docs are browsable offline too."""
    index = data_docs_dir / "index.html"
    if not index.exists():
        return
    pages = sorted(p.relative_to(data_docs_dir).as_posix()
                   for sub in ("validations", "expectations") for p in (data_docs_dir / sub).rglob("*.html"))
    items = "".join(f'<li><a href="{html.escape(p)}">{html.escape(p)}</a></li>' for p in pages)
    section = f'<section id="offline-contents"><h2>All pages (works offline)</h2><ul>{items}</ul></section>'
    text = index.read_text(encoding="utf-8")
    index.write_text(text.replace("</body>", section + "</body>", 1) if "</body>" in text else text + section,
                     encoding="utf-8")


def _ephemeral_context(data_docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if data_docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(data_docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=sites,
        analytics_enabled=False,  # a PHI pipeline sends nothing anywhere
        progress_bars=ProgressBarsConfig(globally=False),  # no tqdm bars in the nightly log
    )
    return gx.get_context(project_config=config, mode="ephemeral")


def _owner_only(folder: Path) -> None:
    """Data Docs sit beside the warehouse: readable by its owner only, like it."""
    os.chmod(folder, 0o700)
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            os.chmod(os.path.join(root, f), 0o600)


# ---------------------------------------------------------------- messages

def _outcome(table: str, evr, result: dict, success: bool, where: str) -> ExpectationOutcome:
    cfg = evr.expectation_config
    kwargs = cfg.kwargs or {}
    meta = cfg.meta or {}
    column = meta.get("column") or kwargs.get("column") or "+".join(
        c for c in kwargs.get("column_list", []) if not c.startswith("_")
    )
    severity = getattr(cfg.severity, "value", str(cfg.severity))
    exception = (evr.exception_info or {}) if isinstance(evr.exception_info, dict) else {}
    if exception.get("raised_exception"):
        reason = str(exception.get("exception_message") or "error").splitlines()[0]
        message = f"{table}.{column}: could not be checked ({reason})"
    else:
        message = _message(table, column, cfg.type, kwargs, meta, result, where)
    return ExpectationOutcome(
        table=table,
        column=column,
        expectation=cfg.type,
        severity=severity,
        success=success,
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        message=message,
    )


def _message(table: str, column: str, kind: str, kwargs: dict, meta: dict, result: dict, where: str) -> str:
    what = meta.get("message") or _default_problem(kind, kwargs)
    line = f"{table}.{column}: {what}"
    count, total = result.get("unexpected_count"), result.get("element_count")
    if count is not None and total:
        line += f" in {count} of {total} rows ({100 * count / total:.1f}%"
        mostly = kwargs.get("mostly")
        line += f", at most {100 * (1 - mostly):g}% allowed)" if mostly is not None and mostly < 1 else ")"
    found = _found_values(kind, result)
    if found:
        line += f", found {found}"
    if where:
        line += f"; first at {where}"
    return line


def _default_problem(kind: str, kwargs: dict) -> str:
    if kind == "expect_column_values_to_not_be_null":
        return "is empty"
    if kind == "expect_column_values_to_be_in_set":
        return "is not one of " + ", ".join(str(v) for v in kwargs.get("value_set", []))
    if kind == "expect_column_values_to_match_regex":
        return f"does not match {kwargs.get('regex')}"
    if kind == "expect_column_values_to_be_between":
        return f"is outside {kwargs.get('min_value', '')}..{kwargs.get('max_value', '')}"
    if kind == "expect_compound_columns_to_be_unique":
        return "repeats within one drop"
    return kind.removeprefix("expect_").replace("_", " ")


def _found_values(kind: str, result: dict) -> str:
    """A few offending values (never PHI: GX sees shapes and measures only)."""
    import numpy as np

    if kind in ("expect_column_values_to_not_be_null", "expect_compound_columns_to_be_unique"):
        return ""
    values: list[str] = []
    for v in result.get("partial_unexpected_list") or []:
        if isinstance(v, (bool, np.bool_)):  # a computed yes/no column: the message says it all
            return ""
        text = repr(v)
        if text not in values:
            values.append(text)
    return ", ".join(values[:3])


def _first_row(table: str, result: dict, frame: "pd.DataFrame") -> str:
    """'drop 2026-02-03 row 4 (activity_id A1)' for the first failing row."""
    positions = result.get("partial_unexpected_index_list") or []
    if not positions or not isinstance(positions[0], Integral) or not 0 <= positions[0] < len(frame):
        return ""
    row = frame.iloc[positions[0]]
    parts = []
    if "_drop" in frame.columns and _present(row["_drop"]):
        parts.append(f"drop {row['_drop']}")
    if "_row_number" in frame.columns and _present(row["_row_number"]):
        parts.append(f"row {int(row['_row_number'])}")
    keys = [f"{k} {row[k]}" for k in TABLES[table].key if k in frame.columns and _present(row[k])]
    text = " ".join(parts)
    if keys:
        text += f" ({', '.join(keys)})" if text else ", ".join(keys)
    return text


def _present(value: Any) -> bool:
    if value is None or value == "":
        return False
    try:
        return bool(value == value)  # NaN is not equal to itself
    except TypeError:  # pandas NA has no truth value
        return False
