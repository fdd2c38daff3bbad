"""The `ccm` command line: `ccm run` (what the DAG runs, stage by stage), `ccm generate` and
`ccm resubmit`."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from datetime import date
from pathlib import Path

from transforms.errors import StorageError, WarehouseBusy, unexpected_error_line
from transforms.ingest.plan import InputError
from transforms.privacy import private_umask
from transforms.settings import ConfigError, load_settings

EXIT_INPUT = 2  # bad input or configuration, a busy warehouse, a folder that cannot be written: one line each
EXIT_FAILED = 1  # anything else (one line; -v adds where in the code)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccm", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage and every warning (never PHI)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="load new drops and produce claims for closed months")
    run.add_argument("--landing", type=Path, required=True, help="folder of drop folders")
    run.add_argument("--warehouse", type=Path, required=True, help="DuckDB file (created if missing)")
    run.add_argument("--claims-dir", type=Path, required=True, help="where claim batches are written")
    run.add_argument("--as-of", type=_date, required=True, help="tonight's date, YYYY-MM-DD")
    run.add_argument("--config", type=Path, default=None, help="practice configuration (default: the shipped sample)")
    run.add_argument("--strict", action="store_true", help="a bad row fails the run instead of being quarantined")
    run.add_argument("--responses", type=Path, default=os.environ.get("CCM_RESPONSES") or None,
                     help="folder of TA1, 999, 277CA and 835 files from the clearinghouse (default: CCM_RESPONSES)")

    resubmit = sub.add_parser("resubmit", help="release rejected claims so the next run bills them again")
    resubmit.add_argument("--warehouse", type=Path, required=True, help="DuckDB file")
    which = resubmit.add_mutually_exclusive_group(required=True)
    which.add_argument("--claim", nargs="+", metavar="CLAIM_ID", help="the rejected claims to release")
    which.add_argument("--rejected", action="store_true", help="every rejected claim not billed again yet")
    run.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                     help="how long to wait for another run (or a program holding the warehouse) before refusing; "
                          "default CCM_LOCK_WAIT_SECONDS, else 60")

    gen = sub.add_parser("generate", help="write realistic synthetic drops")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--patients", type=int, default=500)
    gen.add_argument("--months", type=int, default=3)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--start", default=None, help="first month, YYYY-MM")
    gen.add_argument("--format", choices=("csv", "parquet"), default="csv")
    return parser


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever sys.stderr is now (not the one there was when logging was set up)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _log_to_stderr(level: int) -> None:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    handler.setLevel(level)
    root.setLevel(min(root.level or logging.WARNING, level))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    private_umask()  # every file this process (and DuckDB in it) creates is owner-only: PHI
    # stderr holds the errors, one line each; what a warning says is in the run's summary
    # on stdout (suites failed, batches recovered, claims withheld, runs that died)
    _log_to_stderr(logging.INFO if args.verbose else logging.ERROR)
    if args.command == "generate":
        from transforms.devtools.generate import generate

        result = generate(args.out, patients=args.patients, months=args.months, seed=args.seed,
                          start=args.start, fmt=args.format)
        print(f"wrote {len(result.drops)} drops, {result.activities_total} activity rows to {result.out}")
        return 0

    from transforms.core.rules import RulesError
    if args.command == "resubmit":
        from transforms.billing.resubmit import resubmit

        return resubmit(args.warehouse, args.claim, args.rejected)

    from transforms.billing.edits import ClaimEditError
    from transforms.pipeline import RunRequest, format_summary, run

    try:
        settings = load_settings(args.config)
        summary = run(RunRequest(args.landing, args.warehouse, args.claims_dir, args.as_of, args.config, args.strict,
                                 args.responses, lock_wait_seconds=args.wait), settings)
    except (ConfigError, InputError, RulesError, WarehouseBusy, StorageError, ClaimEditError) as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INPUT
    except Exception as exc:  # noqa: BLE001 - one line, never the row a library's message may quote
        if args.verbose:
            print("".join(traceback.format_tb(exc.__traceback__)).rstrip(), file=sys.stderr)
        print(unexpected_error_line(exc, "the run") + " (the run is recorded as failed; -v shows where)",
              file=sys.stderr)
        return EXIT_FAILED
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
