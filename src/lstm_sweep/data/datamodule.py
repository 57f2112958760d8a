"""Corpora on disk → vocabulary → tensors → batches, and the Lightning DataModule.

A corpus is a folder holding `train.txt`, `valid.txt`, `test.txt` (or the canonical
`ptb.train.txt` … names), one sentence per line, UTF-8 — or a single text file (or a
folder holding just one), which is split by lines, in order: the first 90% of its
non-blank lines train, the next 5% validate, the last 5% test (`data.split_fractions`).
Blank lines are skipped. Tokens are whitespace-separated words (`data.tokenize=word`) or
Unicode characters, spaces included (`char`); the line end is the <eos> token. Tokenising
happens once per run, into tensors; batches are slices of those.

Protocols (DESIGN.md):
- window: each sentence is wrapped in <sos> … <eos> and left-padded with <pad> to at
  least n_step + 1 tokens; every window of n_step tokens predicts the token after it.
- stream: the split is one token stream (<eos> at each line end) cut into batch_size
  parallel streams; each batch is bptt steps of them and every position is predicted;
  the hidden state is carried from batch to batch (lightning_module.py).
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
PROTOCOLS = ("window", "stream")
TOKENIZERS = ("word", "char")


# --------------------------------------------------------------------------- reading

def split_path(root: Path, split: str) -> Path:
    """The file of `split` in a corpus folder: `train.txt` or PTB's `ptb.train.txt`."""
    for name in (f"{split}.txt", f"ptb.{split}.txt"):
        if (root / name).is_file():
            return root / name
    raise DataError(f"corpus {root} has no {split} split: expected {root / f'{split}.txt'} "
                    f"(or ptb.{split}.txt)")


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8: byte offset {err.start} "
                        f"(0x{raw[err.start]:02x}) cannot be decoded") from None


def tokenize_lines(text: str, tokenize: str = "word") -> list[list[str]]:
    """The non-blank lines of a text as token lists: words, or characters with spaces kept."""
    if tokenize == "char":
        return [list(line) for line in text.splitlines() if line.strip()]
    return [tokens for tokens in (line.split() for line in text.splitlines()) if tokens]


def read_sentences(path: Path, tokenize: str = "word") -> list[list[str]]:
    sentences = tokenize_lines(read_text(path), tokenize)
    if not sentences:
        raise DataError(f"{path} is empty: it holds no tokens")
    return sentences


def split_single_file(path: Path, tokenize: str, fractions) -> dict[str, list[list[str]]]:
    """One file's lines, in order, cut into train / valid / test by `fractions`."""
    lines = read_sentences(path, tokenize)
    train_end = int(len(lines) * fractions[0])
    valid_end = train_end + int(len(lines) * fractions[1])
    corpus = {"train": lines[:train_end], "valid": lines[train_end:valid_end], "test": lines[valid_end:]}
    for split, part in corpus.items():
        if not part:
            raise DataError(f"{path} has {len(lines)} non-blank lines: too few for a {split} split "
                            f"with data.split_fractions={list(fractions)}")
    return corpus


def read_corpus(root: str | Path, tokenize: str = "word",
                split_fractions=(0.9, 0.05, 0.05)) -> dict[str, list[list[str]]]:
    root = Path(root).expanduser()
    if root.is_file():
        return split_single_file(root, tokenize, split_fractions)
    if not root.is_dir():
        raise DataError(f"corpus folder {root} does not exist (data.root)")
    texts = sorted(root.glob("*.txt"))
    has_splits = any((root / f"{p}{s}.txt").is_file() for s in SPLITS for p in ("", "ptb."))
    if len(texts) == 1 and not has_splits:
        return split_single_file(texts[0], tokenize, split_fractions)
    return {split: read_sentences(split_path(root, split), tokenize) for split in SPLITS}


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
    def build(cls, sentences: list[list[str]], unk: str) -> Vocab:
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
    def load(cls, path: Path) -> Vocab:
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


# --------------------------------------------------------------------------- stream protocol

def stream_tensor(sentences: list[list[str]], vocab: Vocab) -> Tensor:
    """A split as one token stream, <eos> at the end of every line."""
    eos = vocab.stoi[EOS]
    ids = []
    for sentence in sentences:
        ids.extend(vocab.encode(sentence))
        ids.append(eos)
    return torch.tensor(ids, dtype=torch.long)


def batchify(stream: Tensor, batch_size: int) -> Tensor:
    """(L, batch_size): the stream cut into batch_size contiguous columns (the tail dropped)."""
    length = len(stream) // batch_size
    return stream[:length * batch_size].view(batch_size, length).t().contiguous()


class StreamBatches(Dataset):
    """Batch i: steps [i·bptt, i·bptt + T) of every column and the tokens one step later.

    Batches are (B, T) to match the window protocol's layout; the last one may be shorter.
    """

    def __init__(self, columns: Tensor, bptt: int):
        self.columns, self.bptt = columns, bptt

    def __len__(self) -> int:
        return max(0, -(-(len(self.columns) - 1) // self.bptt))

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        start = i * self.bptt
        steps = min(self.bptt, len(self.columns) - 1 - start)
        return (self.columns[start:start + steps].t().contiguous(),
                self.columns[start + 1:start + 1 + steps].t().contiguous())


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
            from lstm_sweep.data.synthetic import MarkovSource
            return MarkovSource.from_config(self.cfg.generator).ensure_corpus(self.cfg.cache_dir)
        if self.cfg.get("root"):
            return Path(self.cfg.root).expanduser()
        from lstm_sweep.data.download import fetch_corpus
        return fetch_corpus(self.cfg.name, self.cfg.download, self.cfg.cache_dir)

    def batch_size(self, train: bool) -> int:
        return self.cfg.batch_size if train else (self.cfg.eval_batch_size or self.cfg.batch_size)

    def setup(self, stage: str | None = None) -> None:
        if self.vocab is not None:
            return
        corpus = read_corpus(self.corpus_root(), self.cfg.tokenize, tuple(self.cfg.split_fractions))
        self.vocab = Vocab.build(corpus["train"], unk=self.cfg.unk_token)
        for split, sentences in corpus.items():
            tokens = sum(map(len, sentences))
            if self.cfg.protocol == "window":
                inputs, targets = window_tensors(sentences, self.vocab, self.cfg.n_step)
                self.tensors[split] = (inputs, targets)
                self.stats[split] = SplitStats(len(sentences), tokens, len(targets))
            else:
                batch_size = self.batch_size(train=split == "train")
                columns = batchify(stream_tensor(sentences, self.vocab), batch_size)
                if len(columns) < 2:
                    raise DataError(f"the {split} split has {tokens + len(sentences)} tokens: too few for "
                                    f"{batch_size} parallel streams (data.batch_size / data.eval_batch_size)")
                self.tensors[split] = (columns,)
                self.stats[split] = SplitStats(len(sentences), tokens, (len(columns) - 1) * batch_size)
        if self.cfg.name == "synthetic" and self.cfg.protocol == "window":
            from lstm_sweep.data.synthetic import MarkovSource
            source = MarkovSource.from_config(self.cfg.generator)
            self.oracle_ppl = source.window_oracle_perplexity(corpus["test"], set(self.vocab.itos), self.cfg.n_step)

    def _loader(self, split: str, train: bool) -> DataLoader:
        if self.cfg.protocol == "stream":  # in order: the hidden state runs on from batch to batch
            return DataLoader(StreamBatches(self.tensors[split][0], self.cfg.bptt), batch_size=None)
        inputs, targets = self.tensors[split]
        batch_size = self.batch_size(train)
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
    if cfg.tokenize not in TOKENIZERS:
        raise ConfigError(f"data.tokenize={cfg.tokenize!r} is not one of {', '.join(TOKENIZERS)}")
    fractions = list(cfg.split_fractions)
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ConfigError(f"data.split_fractions={fractions} must be three numbers > 0 that sum to 1")
    for key in ("n_step", "batch_size", "bptt"):
        value = cfg[key]
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"data.{key}={value!r} must be an integer >= 1")
    if cfg.eval_batch_size is not None and (not isinstance(cfg.eval_batch_size, int) or cfg.eval_batch_size < 1):
        raise ConfigError(f"data.eval_batch_size={cfg.eval_batch_size!r} must be null or an integer >= 1")
    if cfg.name != "synthetic" and not cfg.get("root") and not cfg.get("download"):
        raise ConfigError(f"data.root is required for data={cfg.name}: the folder holding train.txt, "
                          "valid.txt and test.txt, or one text file")
    if cfg.unk_token in (PAD, SOS, EOS):
        raise ConfigError(f"data.unk_token={cfg.unk_token!r} collides with a special token")
