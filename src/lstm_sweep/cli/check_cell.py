"""`lstm-check-cell CELL [--oracle module.function] [--shape B,T,E,H]`: a cell checked before a
sweep spends hours on it (lstm_sweep.model.check) — a table of checks passed and failed and
its speed against torch.nn.LSTM; exit status 1 if any check fails or the cell cannot be found.

CELL is anything `model.cell` takes: a built-in or registered name, or a dotted path to a
class (`mypkg.cells.MyCell`)."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from lstm_sweep.errors import ConfigError, log_user_error
from lstm_sweep.model.check import check_cell
from lstm_sweep.model.registry import resolve_cell

log = logging.getLogger("lstm_sweep.model.check")
PTB_SMALL = (20, 35, 200, 200)


def shape(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected B,T,E,H (four integers >= 1)")
    return values


def oracle(path: str):
    """A function (cell, x, state) -> next state, by its dotted path."""
    module_name, _, name = path.replace(":", ".").rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"--oracle {path}: cannot import it ({type(err).__name__}: {err})") from None
    if not callable(function):
        raise ConfigError(f"--oracle {path}: not a function (cell, x, state) -> state")
    return function


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-check-cell", description="A cell checked before a sweep: its contract, gradients, fast path, speed."
    )
    parser.add_argument("cell", help="what model.cell takes: one, cifg, a registered name, or mypkg.cells.MyCell")
    parser.add_argument(
        "--oracle",
        metavar="MODULE.FUNCTION",
        help="a reference step (cell, x, state) -> next state, compared in float64",
    )
    parser.add_argument(
        "--shape",
        type=shape,
        default=PTB_SMALL,
        metavar="B,T,E,H",
        help="the speed measurement's shape (default: PTB small, 20,35,200,200)",
    )
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats of the speed measurement")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="lstm-check-cell: %(message)s")
    try:
        cell = resolve_cell(args.cell)
        reference = oracle(args.oracle) if args.oracle else None
    except Exception as err:
        return log_user_error(err, log)
    report = check_cell(
        cell, label=args.cell, oracle=reference, speed_shape=None if args.no_speed else args.shape, repeats=args.repeats
    )
    print(report.table())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
