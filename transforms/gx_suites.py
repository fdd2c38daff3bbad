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
from typing import TYPE_CHECKING, Any

from transforms.contract import TABLES
from transforms.paths import EXPECTATIONS_DIR

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


def run_suites(
    frames: dict[str, "pd.DataFrame"],
    parameters: dict[str, Any],
    run_name: str,
    data_docs_dir: Path | None = None,
) -> dict[str, list[ExpectationOutcome]]:
    """Validate each frame against its table's suite; build Data Docs into data_docs_dir.

    `parameters` fill the suites' {"$PARAMETER": name} thresholds.
    """
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = _ephemeral_context(data_docs_dir)
    datasource = context.data_sources.add_pandas("warehouse")
    run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(timezone.utc))
    outcomes: dict[str, list[ExpectationOutcome]] = {}
    for table, frame in frames.items():
        batch_definition = datasource.add_dataframe_asset(table).add_batch_definition_whole_dataframe(f"{table} rows")
        suite = context.suites.add(gx.ExpectationSuite(**load_suite(table)))
        validation = context.validation_definitions.add(
            gx.ValidationDefinition(name=f"{table} suite", data=batch_definition, suite=suite)
        )
        result = validation.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            # No unexpected_index_column_names: GX would build a dict per failing
            # row (minutes on a 1M-row drop with many failures). Positions are
            # cheap; messages look the rows up in the frame.
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_ROWS},
            run_id=run_id,
        )
        outcomes[table] = [_outcome(table, r, frame) for r in result.results]
    if data_docs_dir is not None:
        data_docs_dir.mkdir(parents=True, exist_ok=True)
        context.build_data_docs(site_names=[DOCS_SITE])
        _add_offline_contents(data_docs_dir)
        _owner_only(data_docs_dir)
    return outcomes


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

def _outcome(table: str, evr, frame: "pd.DataFrame") -> ExpectationOutcome:
    cfg = evr.expectation_config
    kwargs = cfg.kwargs or {}
    meta = cfg.meta or {}
    column = meta.get("column") or kwargs.get("column") or "+".join(
        c for c in kwargs.get("column_list", []) if not c.startswith("_")
    )
    severity = getattr(cfg.severity, "value", str(cfg.severity))
    result = evr.result or {}
    exception = (evr.exception_info or {}) if isinstance(evr.exception_info, dict) else {}
    if exception.get("raised_exception"):
        reason = str(exception.get("exception_message") or "error").splitlines()[0]
        message = f"{table}.{column}: could not be checked ({reason})"
    else:
        message = _message(table, column, cfg.type, kwargs, meta, result, frame)
    return ExpectationOutcome(
        table=table,
        column=column,
        expectation=cfg.type,
        severity=severity,
        success=bool(evr.success),
        unexpected_count=result.get("unexpected_count"),
        element_count=result.get("element_count"),
        message=message,
    )


def _message(table: str, column: str, kind: str, kwargs: dict, meta: dict, result: dict,
             frame: "pd.DataFrame") -> str:
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
    where = _first_row(table, result, frame)
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
