"""`lstm-generate RUN_DIR --prefix "time traveller" --tokens 100 --temperature 0.8 [--seed N]`:
text sampled from a trained run, the way it was trained (lstm_sweep.run.generate)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from lstm_sweep.errors import LstmSweepError
from lstm_sweep.run.generate import check_sampling, detokenize, generate, load_run, tokenize_prefix

log = logging.getLogger("lstm_sweep.run.generate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-generate", description="Text sampled from a trained run, the way it was trained."
    )
    parser.add_argument("run_dir", type=Path, help="a run folder (holding checkpoints/ and vocab.json)")
    parser.add_argument("--prefix", default="", help="text to continue")
    parser.add_argument("--tokens", type=int, default=100, help="how many tokens to sample")
    parser.add_argument("--temperature", type=float, default=1.0, help="of the softmax (default: 1)")
    parser.add_argument("--seed", type=int, default=None, help="make the sample reproducible")
    parser.add_argument("--checkpoint", default="last", help="last, best, or a checkpoint file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="lstm-generate: %(levelname)s: %(message)s")
    try:
        check_sampling(args.tokens, args.temperature, args.seed)  # before the checkpoint is loaded
        model, vocab, config = load_run(args.run_dir, args.checkpoint)
        tokenize = config["data"].get("tokenize", "word")
        prefix_ids = tokenize_prefix(args.prefix, vocab, tokenize)
        ids = generate(model, vocab, config["data"], prefix_ids, args.tokens, args.temperature, args.seed)
    except LstmSweepError as err:
        log.error("%s", err)
        return 1
    joiner = "" if tokenize == "char" or not args.prefix else " "
    print(args.prefix + joiner + detokenize(ids, vocab, tokenize))
    return 0


if __name__ == "__main__":
    sys.exit(main())
