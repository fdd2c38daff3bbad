"""The `ccm` command line: `ccm run` (what the DAG runs, stage by stage), `ccm generate` and
`ccm resubmit`."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import date
from pathlib import Path

from transforms.ingest.plan import InputError
from transforms.settings import ConfigError, load_settings

EXIT_INPUT = 2


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccm", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log each stage (never PHI)")
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

    gen = sub.add_parser("generate", help="write realistic synthetic drops")
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--patients", type=int, default=500)
    gen.add_argument("--months", type=int, default=3)
    gen.add_argument("--seed", type=int, default=1)
    gen.add_argument("--start", default=None, help="first month, YYYY-MM")
    gen.add_argument("--format", choices=("csv", "parquet"), default="csv")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
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

    from transforms.pipeline import RunRequest, format_summary, run

    try:
        settings = load_settings(args.config)
        summary = run(RunRequest(args.landing, args.warehouse, args.claims_dir, args.as_of, args.config, args.strict,
                                 args.responses), settings)
    except (ConfigError, InputError, RulesError) as exc:   # a rules file or its GPCI file: one line each
        print(str(exc), file=sys.stderr)
        return EXIT_INPUT
    print(format_summary(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
