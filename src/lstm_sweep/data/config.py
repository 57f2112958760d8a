"""The `data` keys: which corpus, how it is read, batched and (for the built-in one) generated.

The corpora themselves are YAML options of the `data` group (conf/data/*.yaml) on top of
`DataConfig`; `CHECKS` are the rules that link data keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING

from lstm_sweep.fields import Check, at_least, one_of, setting, within

SPECIAL_TOKENS = ("<pad>", "<sos>", "<eos>")  # every vocabulary's first tokens (vocab.py)


@dataclass
class GeneratorConfig:
    """The built-in corpus's source (synthetic.py); the run's `seed` does not change it."""

    seed: int = setting(1234, "the source's own seed: the same seed, the same corpus")
    vocab_size: int = at_least(1, 1000, doc="word types")
    zipf_exponent: float = at_least(0, 1.1, strict=True, doc="of the background Zipf law over words")
    successors: int = at_least(1, 4, doc="sparse candidate next words per context")
    first_order_weight: float = within(0, 1, 0.5, doc="mixture weight of the first-order successors")
    second_order_weight: float = within(0, 1, 0.25, doc="mixture weight of the second-order successors")
    eos_prob: float = within(0, 1, 0.06, low_open=True, high_open=True, doc="background probability of <eos>")
    train_tokens: int = at_least(1, 50_000, doc="words in the training split")
    valid_tokens: int = at_least(1, 5_000, doc="words in the validation split")
    test_tokens: int = at_least(1, 5_000, doc="words in the test split")


@dataclass
class DownloadConfig:
    """A public corpus fetched once into data.cache_dir (download.py)."""

    url: str = setting(MISSING, "base URL the files are fetched from")
    files: dict[str, str] = setting(MISSING, "file name → its md5 sum, checked after the download")
    retries: int = at_least(1, 4, doc="attempts, with growing pauses, before giving up")
    timeout: float = at_least(0, 30.0, strict=True, doc="seconds a stalled connection is waited for")


@dataclass
class DataConfig:
    name: str = setting("synthetic", "the corpus's name (its folder in data.cache_dir)")
    root: Optional[str] = setting(None, "corpus folder (train.txt, valid.txt, test.txt) or one text file")
    protocol: str = one_of(
        "window",
        "stream",
        default="window",
        doc="window: n_step tokens of a sentence predict the next (the course's); stream: "
        "truncated BPTT over one token stream (the PTB literature's)",
    )
    n_step: int = at_least(1, 5, doc="window length (window protocol)")
    bptt: int = at_least(1, 35, doc="steps per batch (stream protocol)")
    tokenize: str = one_of("word", "char", default="word", doc="whitespace-separated words, or characters")
    split_fractions: list[float] = setting(
        doc="how a single-file corpus's lines are split into train / valid / test, in order",
        factory=lambda: [0.9, 0.05, 0.05],
    )
    batch_size: int = at_least(1, 128, doc="training batch")
    eval_batch_size: Optional[int] = at_least(
        1, 1024, doc="validation and test batch (null: batch_size); evaluation sums losses, so it changes only speed"
    )
    shuffle: bool = setting(True, "reshuffle the training examples every epoch, from the seed")
    drop_last: bool = setting(True, "drop the last partial training batch (evaluation sees every example)")
    unk_token: str = setting("<unk>", "what validation and test words the training split lacks become")
    cache_dir: str = setting("~/.cache/lstm_sweep", "where generated and downloaded corpora are kept")
    download: Optional[DownloadConfig] = setting(None, "fetch the corpus when root is not set (data=ptb, timemachine)")
    generator: Optional[GeneratorConfig] = setting(None, "set: the corpus is generated (data=synthetic)")


def _split_fractions(cfg: Any) -> str | None:
    fractions = list(cfg.data.split_fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        return f"data.split_fractions={fractions} must be three numbers > 0 that sum to 1"
    return None


def _corpus_source(cfg: Any) -> str | None:
    d = cfg.data
    if d.generator is None and not d.root and d.download is None:
        return (
            f"data.root is required for data={d.name}: the folder holding train.txt, valid.txt "
            "and test.txt, or one text file"
        )
    return None


def _unk_token(cfg: Any) -> str | None:
    if cfg.data.unk_token in SPECIAL_TOKENS:
        return f"data.unk_token={cfg.data.unk_token!r} collides with a special token"
    return None


def _generator_weights(cfg: Any) -> str | None:
    g = cfg.data.generator
    if g is not None and g.first_order_weight + g.second_order_weight > 1:
        return (
            "data.generator.first_order_weight and second_order_weight must sum to at most 1 "
            f"(got {g.first_order_weight} and {g.second_order_weight})"
        )
    return None


CHECKS: tuple[Check, ...] = (_split_fractions, _corpus_source, _unk_token, _generator_weights)
