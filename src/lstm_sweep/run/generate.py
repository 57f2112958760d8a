"""`lstm-generate RUN_DIR --prefix "time traveller" --tokens 100 --temperature 0.8 [--seed N]`.

Loads a run's checkpoint (tensors and plain values only: `torch.load(weights_only=True)`)
and its vocabulary, feeds the prefix and samples tokens one at a time from the softmax
at the given temperature, the way the run was trained. A stream model carries its hidden
state, and <eos> is a line end. A window model sees the last n_step tokens of the current
sentence (from <sos>); the window protocol never teaches what follows a sentence's end,
so after an <eos> it starts another continuation of the prefix on a new line (and an
empty sentence cannot end). <pad> and <sos> are never sampled. Prefix words the
vocabulary lacks become its unknown token, with a warning. With --seed the text is
reproducible.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch

from lstm_sweep.data.protocols import protocol_for
from lstm_sweep.data.vocab import EOS, PAD, SOS, Vocab
from lstm_sweep.errors import ConfigError, DataError, LstmSweepError
from lstm_sweep.model.lm import LanguageModel

log = logging.getLogger("lstm_sweep.run.generate")


def load_run(run_dir: Path, checkpoint: str = "last") -> tuple[LanguageModel, Vocab, dict]:
    """The trained model (eval mode), its vocabulary and the run's config."""
    if not run_dir.is_dir():
        raise DataError(f"run folder {run_dir} does not exist")
    folder = run_dir / "checkpoints"
    if checkpoint == "last":
        path = folder / "last.ckpt"
    elif checkpoint == "best":
        path = next(iter(sorted(folder.glob("best-*.ckpt"))), folder / "best-*.ckpt")
    else:
        path = Path(checkpoint)
    if not path.is_file():
        raise DataError(f"no checkpoint at {path}")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    hparams = saved["hyper_parameters"]
    config = dict(hparams["config"])
    model = LanguageModel.from_config(config["model"], hparams["vocab_size"])
    model.load_state_dict({k[len("model."):]: v for k, v in saved["state_dict"].items() if k.startswith("model.")})
    vocab = Vocab.load(run_dir / "vocab.json")
    if len(vocab) != hparams["vocab_size"]:
        raise DataError(f"{run_dir / 'vocab.json'} has {len(vocab)} tokens, the checkpoint {hparams['vocab_size']}")
    return model.eval(), vocab, config


def tokenize_prefix(prefix: str, vocab: Vocab, tokenize: str) -> list[int]:
    tokens = list(prefix) if tokenize == "char" else prefix.split()
    unknown = sorted({t for t in tokens if t not in vocab.stoi})
    if unknown:
        log.warning("not in the vocabulary, read as %s: %s", vocab.unk, ", ".join(map(repr, unknown)))
    return vocab.encode(tokens)


@torch.no_grad()
def generate(model: LanguageModel, vocab: Vocab, data_config: dict, prefix_ids: list[int], tokens: int,
             temperature: float = 1.0, seed: int | None = None) -> list[int]:
    """`tokens` sampled token ids following `prefix_ids`, the way the run's protocol reads text."""
    if temperature <= 0:
        raise ConfigError(f"--temperature={temperature} must be > 0")
    generator = torch.Generator()
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    banned = torch.tensor([vocab.stoi[PAD], vocab.stoi[SOS]])
    eos = vocab.stoi[EOS]

    def pick(logits: torch.Tensor, may_end: bool) -> int:
        logits = logits / temperature
        logits[banned] = -torch.inf
        if not may_end:
            logits[eos] = -torch.inf
        return int(torch.multinomial(torch.softmax(logits.double(), dim=-1), 1, generator=generator))

    return protocol_for(data_config).continue_text(model, vocab, prefix_ids, tokens, pick)


def detokenize(ids: list[int], vocab: Vocab, tokenize: str) -> str:
    pieces = ["\n" if vocab.itos[i] == EOS else vocab.itos[i] for i in ids]
    if tokenize == "char":
        return "".join(pieces)
    return " ".join(pieces).replace(" \n ", "\n").replace(" \n", "\n").replace("\n ", "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lstm-generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a run folder (holding checkpoints/ and vocab.json)")
    parser.add_argument("--prefix", default="", help="text to continue")
    parser.add_argument("--tokens", type=int, default=100, help="how many tokens to sample")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None, help="make the sample reproducible")
    parser.add_argument("--checkpoint", default="last", help="last, best, or a checkpoint file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="lstm-generate: %(levelname)s: %(message)s")
    if args.tokens < 0:
        parser.error("--tokens must be >= 0")
    try:
        model, vocab, config = load_run(args.run_dir, args.checkpoint)
        tokenize = config["data"].get("tokenize", "word")
        prefix_ids = tokenize_prefix(args.prefix, vocab, tokenize)
        ids = generate(model, vocab, config["data"], prefix_ids, args.tokens, args.temperature, args.seed)
    except LstmSweepError as err:
        log.error("%s", err)
        return 2
    joiner = "" if tokenize == "char" or not args.prefix else " "
    print(args.prefix + joiner + detokenize(ids, vocab, tokenize))
    return 0


if __name__ == "__main__":
    sys.exit(main())
