"""Landing plan: which drops are new, and can every one of their files be used?

Runs before the warehouse is opened for writing, so a file that cannot be read
or lacks a required column fails the run with one line naming the file and the
column, and the warehouse stays byte-for-byte as it was. Vendor file and column
names are mapped onto the contract's here (configuration `vendor:`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import polars as pl

from transforms.contract import LOAD_ORDER, TABLES
from transforms.settings import Settings, VendorMapping

FORMATS = {".csv": "csv", ".parquet": "parquet"}


class InputError(Exception):
    """Landing files the run cannot use; str() is one line per problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


@dataclass(frozen=True)
class LandingFile:
    drop: str
    table: str
    path: Path


@dataclass
class IngestPlan:
    new_drops: list[str]
    skipped_drops: list[str]
    files: list[LandingFile]
    ignored: list[str] = field(default_factory=list)  # files in a drop that name no contract table


def loaded_drops(con: duckdb.DuckDBPyConnection | None) -> set[str]:
    if con is None:
        return set()
    try:
        return {r[0] for r in con.execute("select distinct drop_name from raw.loaded_files").fetchall()}
    except duckdb.CatalogException:
        return set()


def _table_for(path: Path, vendor: VendorMapping) -> str | None:
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if stem in vendor.files:
        return vendor.files[stem]
    return stem if stem in TABLES else None


def rename_map(columns: list[str], table: str, vendor: VendorMapping) -> dict[str, str]:
    """Vendor names first, then our own names written with other case or spaces."""
    mapping = vendor.columns.get(table, {})
    renamed = {}
    for col in columns:
        target = mapping.get(col) or mapping.get(col.strip()) or col.strip().lower()
        renamed[col] = target
    return renamed


def _header(lf: LandingFile) -> list[str]:
    if lf.path.suffix == ".parquet":
        return list(pl.read_parquet_schema(lf.path).keys())
    return pl.read_csv(lf.path, n_rows=0, infer_schema=False).columns


def plan_ingest(landing: Path, already_loaded: set[str], settings: Settings) -> IngestPlan:
    """Which drops to load, and whether every one of their files is usable. Writes nothing."""
    landing = Path(landing)
    if not landing.is_dir():
        raise InputError([f"{landing}: landing folder does not exist"])
    drops = sorted(p.name for p in landing.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    plan = IngestPlan(
        new_drops=[d for d in drops if d not in already_loaded],
        skipped_drops=[d for d in drops if d in already_loaded],
        files=[],
    )
    problems: list[str] = []
    # Newest drop wins by name, and ingest stores only what changed since the
    # newest drop loaded: a drop that sorts before it would rewrite history.
    newest_loaded = max(already_loaded, default=None)
    for drop in plan.new_drops:
        if newest_loaded is not None and drop < newest_loaded:
            problems.append(f"{landing / drop}: drop sorts before {newest_loaded}, which is already loaded; "
                            f"drops must arrive in name order (rename it to sort after {newest_loaded})")
        seen: dict[str, Path] = {}
        for path in sorted((landing / drop).iterdir()):
            if path.is_dir() or path.name.startswith("."):
                continue
            table = _table_for(path, settings.vendor) if path.suffix in FORMATS else None
            if table is None or table not in TABLES:
                plan.ignored.append(str(path))
                continue
            if table in seen:
                problems.append(f"{path}: a second file for table {table} in drop {drop} (also {seen[table].name})")
                continue
            seen[table] = path
            lf = LandingFile(drop, table, path)
            try:
                header = _header(lf)
            except Exception as exc:  # polars raises several types for unreadable files
                problems.append(f"{path}: cannot be read ({str(exc).splitlines()[0][:200]})")
                continue
            present = set(rename_map(header, table, settings.vendor).values())
            for col in TABLES[table].required:
                if col not in present:
                    problems.append(f"{path}: missing required column {col}")
            plan.files.append(lf)
    if problems:
        raise InputError(problems)
    plan.files.sort(key=lambda f: (f.drop, LOAD_ORDER.index(f.table)))
    return plan
