"""Readers: a landing file as text columns named per the contract, and its checksum."""
from __future__ import annotations

import hashlib
from pathlib import Path

import polars as pl

from transforms.contract import TABLES
from transforms.ingest.plan import LandingFile, rename_map
from transforms.settings import Settings


def arrow(frame: pl.DataFrame):
    """The frame for DuckDB without copying it (string views, which DuckDB reads as they are)."""
    return frame.to_arrow(compat_level=pl.CompatLevel.newest())


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_strings(lf: LandingFile, settings: Settings) -> pl.DataFrame:
    """The file as text columns named per the contract, with 1-based row numbers.
    frame.absent lists (sorted) the table's evidence columns the file does not have."""
    if lf.path.suffix == ".parquet":
        frame = pl.read_parquet(lf.path)
        frame = frame.with_columns(pl.all().cast(pl.String))
    else:
        frame = pl.read_csv(lf.path, infer_schema=False, truncate_ragged_lines=True)
    frame = frame.rename(rename_map(frame.columns, lf.table, settings.vendor))
    spec = TABLES[lf.table]
    missing_optional = [c for c in spec.columns if c not in frame.columns]
    frame = frame.with_columns([pl.lit(None, dtype=pl.String).alias(c) for c in missing_optional])
    return frame.select(spec.columns).with_row_index("_row_number", offset=1)


def absent_evidence(lf: LandingFile, settings: Settings) -> list[str]:
    """The evidence columns (contract: optional, audit evidence) the file does not have, sorted."""
    from transforms.ingest.plan import _header

    present = set(rename_map(_header(lf), lf.table, settings.vendor).values())
    return sorted(c for c in TABLES[lf.table].evidence if c not in present)
