"""Sampling text from a trained run (lstm-generate's work).

`load_run` loads a run's checkpoint (tensors and plain values only: `torch.load(weights_only=True)`)
and its vocabulary; `generate` feeds the prefix and samples tokens one at a time from the softmax
at the given temperature, the way the run was trained. A stream model carries its hidden
state, and <eos> is a line end. A window model sees the last n_step tokens of the current
sentence (from <sos>); the window protocol never teaches what follows a sentence's end,
so after an <eos> it starts another continuation of the prefix on a new line (and an
empty sentence cannot end). <pad> and <sos> are never sampled. Prefix words the
vocabulary lacks become its unknown token, with a warning. With --seed the text is
reproducible.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch

from lstm_sweep.data.protocols import protocol_for
from lstm_sweep.data.vocab import EOS, PAD, SOS, Vocab
from lstm_sweep.errors import ConfigError, DataError, one_line
from lstm_sweep.model.lm import LanguageModel

log = logging.getLogger("lstm_sweep.run.generate")


def checkpoint_file(run_dir: Path, checkpoint: str) -> Path:
    """The file `--checkpoint` names: the run's last.ckpt, its one best-*.ckpt, or a path."""
    folder = run_dir / "checkpoints"
    if checkpoint == "last":
        path = folder / "last.ckpt"
    elif checkpoint == "best":
        best = sorted(folder.glob("best-*.ckpt"))
        if len(best) > 1:  # one is stale, from an earlier attempt, and nothing says which
            raise DataError(
                f"--checkpoint best: {folder} holds {len(best)} best checkpoints "
                f"({', '.join(p.name for p in best)}); name one as --checkpoint FILE"
            )
        path = best[0] if best else folder / "best-*.ckpt"
    else:
        path = Path(checkpoint)
    if path.is_dir():
        raise DataError(f"checkpoint {path} is a folder, not a checkpoint file")
    if not path.is_file():
        raise DataError(f"no checkpoint at {path}")
    return path


def load_run(run_dir: Path, checkpoint: str = "last") -> tuple[LanguageModel, Vocab, dict]:
    """The trained model (eval mode), its vocabulary and the run's config."""
    if not run_dir.is_dir():
        raise DataError(f"run folder {run_dir} does not exist")
    path = checkpoint_file(run_dir, checkpoint)
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many kinds, and its text can mislead (it suggests weights_only=False)
        raise DataError(
            f"checkpoint {path} cannot be read: cut short, or not a checkpoint ({type(err).__name__} in torch.load)"
        ) from None
    try:
        hparams = saved["hyper_parameters"]
        config = dict(hparams["config"])
        model = LanguageModel.from_config(config["model"], hparams["vocab_size"])
        model.load_state_dict({k[len("model.") :]: v for k, v in saved["state_dict"].items() if k.startswith("model.")})
    except Exception as err:  # another program's checkpoint: any key or shape may be missing
        raise DataError(f"checkpoint {path} is not an lstm-sweep run's: {one_line(err)}") from None
    vocab_file = run_dir / "vocab.json"
    if not vocab_file.is_file():
        raise DataError(f"no vocabulary at {vocab_file}")
    try:
        vocab = Vocab.load(vocab_file)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"vocabulary {vocab_file} cannot be read: {one_line(err)}") from None
    if len(vocab) != hparams["vocab_size"]:
        raise DataError(f"{vocab_file} has {len(vocab)} tokens, the checkpoint {hparams['vocab_size']}")
    return model.eval(), vocab, config


SEED_MAX = 2**32 - 1  # as a run's seed


def check_sampling(tokens: int, temperature: float, seed: int | None = None) -> None:
    """Refuse a sample length, temperature or seed that cannot give text."""
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"--seed={seed} must be in [0, {SEED_MAX}]")
    if tokens < 0:
        raise ConfigError(f"--tokens={tokens} must be >= 0")
    if not (math.isfinite(temperature) and temperature > 0):  # inf samples uniformly; nan breaks sampling
        raise ConfigError(f"--temperature={temperature} must be a finite number > 0")


def tokenize_prefix(prefix: str, vocab: Vocab, tokenize: str) -> list[int]:
    tokens = list(prefix) if tokenize == "char" else prefix.split()
    unknown = sorted({t for t in tokens if t not in vocab.stoi})
    if unknown:
        log.warning("not in the vocabulary, read as %s: %s", vocab.unk, ", ".join(map(repr, unknown)))
    return vocab.encode(tokens)


@torch.no_grad()
def generate(
    model: LanguageModel,
    vocab: Vocab,
    data_config: dict,
    prefix_ids: list[int],
    tokens: int,
    temperature: float = 1.0,
    seed: int | None = None,
) -> list[int]:
    """`tokens` sampled token ids following `prefix_ids`, the way the run's protocol reads text."""
    check_sampling(tokens, temperature)
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
