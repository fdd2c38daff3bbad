"""Errors a run reports in one line (exit 2 from `ccm`), besides bad input
(ingest.plan.InputError) and configuration (settings.ConfigError).

- WarehouseBusy: another run holds the warehouse (run_lock), or another program
  holds the DuckDB file (a dashboard opened it read-only); the run waited as long
  as it was allowed to, and refuses.
- StorageError: a folder the run writes to is read-only, full or not ours; the
  step that failed stored nothing (DuckDB rolls back; a claim batch is written to
  a temp folder first), what earlier steps stored is kept, no claim is half-billed.

storage_error() turns an OSError or a DuckDB I/O error into a StorageError naming
the folder, or returns None for anything else. Neither ever quotes row data.
"""
from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from transforms.privacy import safe_error_text


class WarehouseBusy(Exception):
    """The warehouse is in use; str() is one line naming it and its holder."""


class StorageError(Exception):
    """A folder cannot be written; str() is one line naming it."""


_WHY = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted",
    errno.ENOENT: "it does not exist",
}
_DUCKDB_WHY = (
    ("no space left", errno.ENOSPC),
    ("disk quota", errno.EDQUOT),
    ("read-only file system", errno.EROFS),
    ("permission denied", errno.EACCES),
    ("failed to offload data block", errno.ENOSPC),  # DuckDB's spill files (beside the warehouse) ran out of room
)
_QUOTED_PATH = re.compile(r"""["'](/[^"']+)["']""")


def why(exc: OSError) -> str:
    """An OSError's cause in words."""
    return _WHY.get(exc.errno) or (os.strerror(exc.errno).lower() if exc.errno else type(exc).__name__)


def storage_error(exc: BaseException, default_folder: Path, step: str,
                  folders: tuple[Path, ...] = ()) -> StorageError | None:
    """A StorageError for `exc` when it is the disk's doing, else None. The folder named is
    the innermost of `folders` (those a user configured) holding the file that failed, else
    that file's own folder, else `default_folder`."""
    code, path = None, None
    if isinstance(exc, OSError) and exc.errno in _WHY and exc.errno != errno.ENOENT:
        code, path = exc.errno, exc.filename
    else:
        try:
            import duckdb
        except ImportError:  # pragma: no cover
            return None
        if not isinstance(exc, duckdb.Error):
            return None
        text = str(exc).lower()
        code = next((c for needle, c in _DUCKDB_WHY if needle in text), None)
        if code is None:
            return None
        match = _QUOTED_PATH.search(str(exc))
        path = match.group(1) if match else None
    folder = Path(path).parent if path else Path(default_folder)
    if path:
        holding = [Path(f) for f in folders if Path(path).is_relative_to(f)]
        if holding:
            folder = max(holding, key=lambda f: len(f.parts))
    return StorageError(
        f"{folder}: cannot write there ({_WHY[code]}) during {step}; that step stored nothing (what earlier "
        f"steps stored is kept, no claim was half-billed): free space or fix the folder, then rerun")


def unexpected_error_line(exc: BaseException, step: str) -> str:
    """One line for an error nobody foresaw, without the data its message may quote."""
    return f"ccm run failed during {step}: {type(exc).__name__}: {safe_error_text(exc)}"
