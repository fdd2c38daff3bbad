"""The open month's threshold worklist (marts.threshold_worklist) as a CSV a care team works from."""
from __future__ import annotations

import os
import shutil
import tempfile
from datetime import date
from pathlib import Path

import duckdb

from transforms.marts import report


def write_worklist(con: duckdb.DuckDBPyConnection, as_of: date, path: Path) -> tuple[Path, dict[str, int]]:
    """The open month's worklist as of `as_of`, in priority order, and the report's counts
    of it (report.worklist_counts). The view is read once, into a temporary table that
    DuckDB writes out itself. It names patients (care teams call them): written readable
    by its owner only, like the warehouse, and never visible half-written."""
    con.execute(f"set variable worklist_as_of = date '{as_of.isoformat()}'")
    try:
        con.execute("create or replace temp table worklist_rows as select * from marts.threshold_worklist")
    finally:
        con.execute("reset variable worklist_as_of")
    try:
        columns = con.execute("select * from worklist_rows limit 0").description
        # as Python's csv module writes them: an empty string as an empty field; a list
        # (reasons_not_billed) as one field, '; '-separated; a text a spreadsheet would run
        # as a formula (=, +, -, @ ...) with an apostrophe before it (csv_cell,
        # transforms/privacy.py): care teams open this file in a spreadsheet
        select = ", ".join(f'nullif(csv_cell("{name}"), \'\') as "{name}"' if str(kind) == "VARCHAR"
                           else f'nullif(csv_cell(array_to_string("{name}", \'; \')), \'\') as "{name}"'
                           if str(kind).endswith("[]") else f'"{name}"'
                           for name, kind, *_ in columns)
        # COPY makes a new file with the default mode: make it in a directory only
        # the owner can enter, then tighten it and move it into place
        private = Path(tempfile.mkdtemp(prefix=".worklist-", dir=path.parent))
        try:
            tmp = private / path.name
            con.execute(f"copy (select {select} from worklist_rows order by priority) "
                        f"to '{_quote(str(tmp))}' (header, delimiter ',', quote '\"', new_line '\\r\\n')")
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(private, ignore_errors=True)
        counts = report.worklist_counts(con, "worklist_rows")
    finally:
        con.execute("drop table if exists worklist_rows")
    return path, counts


def _quote(value: str) -> str:
    return value.replace("'", "''")
