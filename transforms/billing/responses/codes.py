"""The code lists responses use, as data (transforms/billing/codes/: lists.yaml names each list's file
and source), loaded into billing.code_descriptions on every run so a CSV edited by the practice shows
in the marts the next night."""
from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import yaml

CODES_DIR = Path(__file__).resolve().parents[1] / "codes"


def code_lists() -> pl.DataFrame:
    """code_list, code, description, source: every code of every list in lists.yaml."""
    lists = yaml.safe_load((CODES_DIR / "lists.yaml").read_text(encoding="utf-8"))
    frames = []
    for name, spec in lists.items():
        frame = pl.read_csv(CODES_DIR / spec["file"], schema={"code": pl.String, "description": pl.String})
        frames.append(frame.select(code_list=pl.lit(name), code=pl.col("code").str.strip_chars(),
                                   description=pl.col("description").str.strip_chars(),
                                   source=pl.lit(spec["source"])))
    return pl.concat(frames)


def load_code_lists(con: duckdb.DuckDBPyConnection) -> int:
    """Replace billing.code_descriptions with the shipped lists; returns the number of codes."""
    frame = code_lists()
    con.register("shipped_codes", frame.to_arrow())
    try:
        con.execute("delete from billing.code_descriptions")
        con.execute("insert into billing.code_descriptions select code_list, code, description, source "
                    "from shipped_codes")
    finally:
        con.unregister("shipped_codes")
    return frame.height
