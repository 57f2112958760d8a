"""Corpora on disk → vocabulary → tensors → batches, and the Lightning DataModule.

A corpus is a folder holding `train.txt`, `valid.txt`, `test.txt` (or the canonical
`ptb.train.txt` … names): one sentence per line, whitespace-tokenised, UTF-8. Blank lines
are skipped. Tokenising happens once per run, into tensors; batches are slices of those.

Protocols (DESIGN.md):
- window: each sentence is wrapped in <sos> … <eos> and left-padded with <pad> to at
  least n_step + 1 tokens; every window of n_step tokens predicts the token after it.
  (`stream`, the truncated-BPTT protocol, plugs in beside it.)
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from lstm_sweep.errors import ConfigError, DataError

SPLITS = ("train", "valid", "test")
PAD, SOS, EOS = "<pad>", "<sos>", "<eos>"
PROTOCOLS = ("window",)


# --------------------------------------------------------------------------- reading

def split_path(root: Path, split: str) -> Path:
    """The file of `split` in a corpus folder: `train.txt` or PTB's `ptb.train.txt`."""
    for name in (f"{split}.txt", f"ptb.{split}.txt"):
        if (root / name).is_file():
            return root / name
    raise DataError(f"corpus {root} has no {split} split: expected {root / f'{split}.txt'} "
                    f"(or ptb.{split}.txt)")


def read_sentences(path: Path) -> list[list[str]]:
    """The non-blank lines of a UTF-8 file as lists of whitespace-separated tokens."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8: byte offset {err.start} "
                        f"(0x{raw[err.start]:02x}) cannot be decoded") from None
    sentences = [tokens for tokens in (line.split() for line in text.splitlines()) if tokens]
    if not sentences:
        raise DataError(f"{path} is empty: it holds no tokens")
    return sentences


def read_corpus(root: str | Path) -> dict[str, list[list[str]]]:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"corpus folder {root} does not exist (data.root)")
    return {split: read_sentences(split_path(root, split)) for split in SPLITS}


# --------------------------------------------------------------------------- vocabulary

class Vocab:
    """Token ↔ id. Specials first (pad = 0), then training words by frequency, ties by first use."""

    def __init__(self, tokens: list[str], unk: str):
        self.itos = list(tokens)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise DataError("vocabulary has duplicate tokens")
        self.unk = unk
        self.unk_id = self.stoi[unk]
        self.pad_id = self.stoi[PAD]

    @classmethod
    def build(cls, sentences: list[list[str]], unk: str) -> "Vocab":
        counts = Counter(token for sentence in sentences for token in sentence)
        specials = [PAD, unk, SOS, EOS]
        # Counter keeps first-seen order, and sorted() is stable: ties stay in that order.
        words = [w for w, _ in sorted(counts.items(), key=lambda kv: -kv[1]) if w not in specials]
        return cls(specials + words, unk)

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens: list[str]) -> list[int]:
        get, unk_id = self.stoi.get, self.unk_id
        return [get(t, unk_id) for t in tokens]

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"unk": self.unk, "itos": self.itos}, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "Vocab":
        data = json.loads(Path(path).read_text())
        return cls(data["itos"], data["unk"])


# --------------------------------------------------------------------------- window protocol

def window_tensors(sentences: list[list[str]], vocab: Vocab, n_step: int) -> tuple[Tensor, Tensor]:
    """All windows of a split: inputs (N, n_step) and next-token targets (N,)."""
    pad, sos, eos = vocab.pad_id, vocab.stoi[SOS], vocab.stoi[EOS]
    flat, lengths = [], []
    for sentence in sentences:
        ids = [sos, *vocab.encode(sentence), eos]
        ids = [pad] * (n_step + 1 - len(ids)) + ids  # left-pad to at least n_step + 1
        flat.extend(ids)
        lengths.append(len(ids))
    flat_t = torch.tensor(flat, dtype=torch.long)
    lengths_t = torch.tensor(lengths)
    # Position p (the k-th token of a sentence of length L) starts a window iff k < L - n_step.
    sentence_start = torch.repeat_interleave(torch.cumsum(lengths_t, 0) - lengths_t, lengths_t)
    k = torch.arange(len(flat_t)) - sentence_start
    starts = torch.nonzero(k < torch.repeat_interleave(lengths_t - n_step, lengths_t)).squeeze(1)
    inputs = flat_t[starts[:, None] + torch.arange(n_step)]
    return inputs, flat_t[starts + n_step]


class TensorPairs(Dataset):
    """(inputs, targets) indexed by a whole batch of indices at once."""

    def __init__(self, inputs: Tensor, targets: Tensor):
        self.inputs, self.targets = inputs, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: Tensor) -> tuple[Tensor, Tensor]:
        return self.inputs[index], self.targets[index]


class BatchIndices(Sampler):
    """Yields one index tensor per batch; shuffles by (seed, epoch) so every epoch is reproducible."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, drop_last: bool, seed: int):
        self.n, self.batch_size, self.shuffle, self.drop_last, self.seed = n, batch_size, shuffle, drop_last, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:  # called by Lightning at each epoch start
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self):
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=generator)
        else:
            order = torch.arange(self.n)
        for k in range(len(self)):
            yield order[k * self.batch_size:(k + 1) * self.batch_size]


# --------------------------------------------------------------------------- DataModule

@dataclass
class SplitStats:
    sentences: int
    tokens: int
    examples: int


class LMDataModule(pl.LightningDataModule):
    """Reads a corpus (or generates the built-in one), builds the vocabulary, serves batches."""

    def __init__(self, cfg, seed: int):
        super().__init__()
        self.cfg, self.seed = cfg, seed
        self.vocab: Vocab | None = None
        self.tensors: dict[str, tuple[Tensor, Tensor]] = {}
        self.stats: dict[str, SplitStats] = {}
        self.oracle_ppl: float | None = None
        check_data_config(cfg)

    def corpus_root(self) -> Path:
        if self.cfg.name == "synthetic":
            from lstm_sweep.synthetic import MarkovSource
            return MarkovSource.from_config(self.cfg.generator).ensure_corpus(self.cfg.cache_dir)
        return Path(self.cfg.root).expanduser()

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        corpus = read_corpus(self.corpus_root())
        self.vocab = Vocab.build(corpus["train"], unk=self.cfg.unk_token)
        for split, sentences in corpus.items():
            inputs, targets = window_tensors(sentences, self.vocab, self.cfg.n_step)
            self.tensors[split] = (inputs, targets)
            self.stats[split] = SplitStats(len(sentences), sum(map(len, sentences)), len(targets))
        if self.cfg.name == "synthetic":
            from lstm_sweep.synthetic import MarkovSource
            source = MarkovSource.from_config(self.cfg.generator)
            self.oracle_ppl = source.window_oracle_perplexity(corpus["test"], set(self.vocab.itos), self.cfg.n_step)

    def _loader(self, split: str, train: bool) -> DataLoader:
        inputs, targets = self.tensors[split]
        batch_size = self.cfg.batch_size if train else (self.cfg.eval_batch_size or self.cfg.batch_size)
        sampler = BatchIndices(len(targets), batch_size, shuffle=train and self.cfg.shuffle,
                               drop_last=train and self.cfg.drop_last, seed=self.seed)
        if len(sampler) == 0:
            raise DataError(f"the {split} split has {len(targets)} windows, fewer than one batch "
                            f"of data.batch_size={batch_size} with data.drop_last=true")
        return DataLoader(TensorPairs(inputs, targets), sampler=sampler, batch_size=None)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)


def check_data_config(cfg) -> None:
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(f"data.protocol={cfg.protocol!r} is not one of {', '.join(PROTOCOLS)}")
    for key in ("n_step", "batch_size"):
        value = cfg[key]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key}={value!r} must be an integer >= 1")
    if cfg.eval_batch_size is not None and (not isinstance(cfg.eval_batch_size, int) or cfg.eval_batch_size < 1):
        raise ConfigError(f"data.eval_batch_size={cfg.eval_batch_size!r} must be null or an integer >= 1")
    if cfg.name != "synthetic" and not cfg.get("root"):
        raise ConfigError(f"data.root is required for data={cfg.name}: the folder holding train.txt, "
                          "valid.txt and test.txt")
    if cfg.unk_token in (PAD, SOS, EOS):
        raise ConfigError(f"data.unk_token={cfg.unk_token!r} collides with a special token")
