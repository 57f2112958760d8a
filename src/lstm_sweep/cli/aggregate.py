"""`lstm-aggregate SWEEP_DIR [--out DIR]`: a sweep's tables, statistics, figures and REPORT.md
(lstm_sweep.analysis.report), written whether or not every run finished; the exit status
is 1 if a run was found damaged."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lstm_sweep.analysis.report import write_report
from lstm_sweep.analysis.stats import CORRECTIONS
from lstm_sweep.errors import log_user_error
from lstm_sweep.files import cannot_write

log = logging.getLogger("lstm_sweep.analysis.report")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-aggregate", description="A sweep's tables, statistics, figures and REPORT.md."
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep folder (lstm-sweep's or lstm-train -m's)")
    parser.add_argument("--out", type=Path, help="the report folder (default: reports/<sweep name>)")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="another sweep of the same grid with one thing changed, e.g. 'without shuffling=multirun/x' (repeatable)",
    )
    parser.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="holm",
        help="over the report's one-factor comparisons (default: holm)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    variations = []
    for item in args.compare:
        label, sep, folder = item.rpartition("=")
        if not sep or not label:
            parser.error(f"--compare {item!r}: expected LABEL=DIR")
        variations.append((label, Path(folder)))
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    problem = cannot_write(args.out or "reports")  # found before the sweep is read, not after
    if problem:
        log.error("the report's folder%s: %s", f" (--out {args.out})" if args.out else "", problem)
        return 1
    try:
        sweep, out = write_report(args.sweep_dir, args.out, variations, args.correction)
    except Exception as err:
        return log_user_error(err, log)
    log.info("%d runs (%d finished) -> %s", len(sweep.runs), len(sweep.finished), out / "REPORT.md")
    for _, run in sweep.damaged.iterrows():
        log.error("damaged run %s, kept out of every mean: %s", run["path"], run["error"])
    return 1 if len(sweep.damaged) else 0


if __name__ == "__main__":
    sys.exit(main())
