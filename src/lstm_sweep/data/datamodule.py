"""The Lightning DataModule: a corpus (read, downloaded or generated) → vocabulary → batches.

Tokenising happens once per run, into tensors; batches are slices of those, made by the
run's protocol (protocols.py). The vocabulary comes from the training split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
from torch import Tensor
from torch.utils.data import DataLoader

from lstm_sweep.data.corpus import read_corpus
from lstm_sweep.data.protocols import protocol_for
from lstm_sweep.data.synthetic import MarkovSource
from lstm_sweep.data.vocab import Vocab


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
        self.protocol = protocol_for(cfg)
        self.vocab: Vocab | None = None
        self.tensors: dict[str, tuple[Tensor, ...]] = {}
        self.stats: dict[str, SplitStats] = {}
        self.oracle_ppl: float | None = None  # the built-in corpus's exact test perplexity (window)
        self.resume_skip = 0  # training batches of the first epoch a resumed run already ran

    def corpus_root(self) -> Path:
        if self.cfg.generator is not None:
            return MarkovSource(**self.cfg.generator).ensure_corpus(self.cfg.cache_dir)
        if self.cfg.root:
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
            tensors, examples = self.protocol.examples(
                split, sentences, self.vocab, self.batch_size(train=split == "train")
            )
            self.tensors[split] = tensors
            self.stats[split] = SplitStats(len(sentences), sum(map(len, sentences)), examples)
        if self.cfg.generator is not None:
            source = MarkovSource(**self.cfg.generator)
            self.oracle_ppl = self.protocol.oracle_perplexity(source, corpus["test"], self.vocab)

    def resume_after(self, batches: int) -> None:
        """The run resumes mid-epoch: its first epoch's first `batches` batches already ran."""
        self.resume_skip = batches

    def _loader(self, split: str, train: bool, skip: int = 0) -> DataLoader:
        return self.protocol.loader(split, self.tensors[split], self.batch_size(train), train, self.seed, skip)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True, skip=self.resume_skip)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)
