"""The built-in corpus: a sparse Zipfian second-order Markov source that knows its probabilities.

Every run can train offline on it, and because the source's next-token distribution is
known exactly, the best perplexity any model could reach on its test split (the oracle)
is known too and logged beside the model's.

The next token after context (a, b) — words, or <eos> — is drawn from the mixture

    p(w | a, b) = λ₁ · S₁(w | b) + λ₂ · S₂(w | a, b) + (1 − λ₁ − λ₂) · Z(w)

where Z is a Zipf law over the words (<eos> holding `eos_prob` of its mass), and S₁, S₂
are sparse: `successors` candidates per context with weights ∝ 1/rank, chosen by hashing
the context with the seed and drawing from Z (frequent words are frequent successors).
Nothing is tabulated over all V² contexts; the hash makes any context's distribution
cheap to recompute, which is what lets the oracle score any text.

Sentences start from the context (<pad>, <sos>) and end at <eos>. The three splits are
written as ordinary corpus files (one sentence per line) and read back by the same reader
as real corpora.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from functools import cached_property
from pathlib import Path

import numpy as np

from lstm_sweep.data.config import GeneratorConfig
from lstm_sweep.data.protocols import window_tensors
from lstm_sweep.data.vocab import EOS, PAD, SOS, Vocab
from lstm_sweep.errors import DataError

SYLLABLES = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
GENERATOR_VERSION = 1  # bump when the generated text changes, so caches are not reused


def word_for_rank(rank: int) -> str:
    """A pronounceable word per rank, shorter for frequent ranks (bijective base-70 syllables)."""
    n, parts = rank + 1, []
    while n > 0:
        n -= 1
        parts.append(SYLLABLES[n % len(SYLLABLES)])
        n //= len(SYLLABLES)
    return "".join(reversed(parts))


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, element-wise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class MarkovSource(GeneratorConfig):
    """The source itself; its settings (and their defaults) are data.generator's schema."""

    # Source symbols: words 0..V-1 by rank, then <eos>, <sos>, <pad>. Outcomes: 0..V.
    @property
    def EOS(self) -> int:
        return self.vocab_size

    @property
    def SOS(self) -> int:
        return self.vocab_size + 1

    @property
    def PAD(self) -> int:
        return self.vocab_size + 2

    @cached_property
    def background(self) -> np.ndarray:
        """Z: Zipf over the words by rank, with <eos> holding eos_prob."""
        zipf = np.arange(1, self.vocab_size + 1, dtype=np.float64) ** -self.zipf_exponent
        return np.append((1 - self.eos_prob) * zipf / zipf.sum(), self.eos_prob)

    @cached_property
    def _cdf(self) -> np.ndarray:
        return np.cumsum(self.background)

    @cached_property
    def _successor_weights(self) -> np.ndarray:
        weights = 1.0 / np.arange(1, self.successors + 1)
        return weights / weights.sum()

    @cached_property
    def words(self) -> list[str]:
        return [word_for_rank(r) for r in range(self.vocab_size)]

    # ------------------------------------------------------------------ the distribution

    def _successors(self, *context: np.ndarray) -> np.ndarray:
        """(N, successors) candidate outcomes of each context, drawn from Z by hashing it."""
        h = _mix(np.full(len(context[0]), self.seed, dtype=np.uint64) ^ np.uint64(len(context)))
        for part in context:
            h = _mix(h ^ part.astype(np.uint64))
        k = np.arange(self.successors, dtype=np.uint64)
        u = (_mix(h[:, None] ^ k) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        return np.minimum(np.searchsorted(self._cdf, u, side="right"), self.vocab_size)

    def next_distribution(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """p(· | a, b) over the V + 1 outcomes, one row per context (rows sum to 1)."""
        lam1, lam2 = self.first_order_weight, self.second_order_weight
        rows = np.broadcast_to((1 - lam1 - lam2) * self.background, (len(a), self.vocab_size + 1)).copy()
        index = np.arange(len(a))[:, None]
        np.add.at(rows, (index, self._successors(b)), lam1 * self._successor_weights)
        np.add.at(rows, (index, self._successors(a, b)), lam2 * self._successor_weights)
        return rows

    # ------------------------------------------------------------------ sampling

    def sample_sentences(self, n_tokens: int, rng: np.random.Generator, chunk: int = 256) -> list[list[int]]:
        """Whole sentences (word ids, <eos> excluded) until they hold at least n_tokens words."""
        sentences: list[list[int]] = []
        total = 0
        while total < n_tokens:
            batch: list[list[int]] = [[] for _ in range(chunk)]
            a = np.full(chunk, self.PAD)
            b = np.full(chunk, self.SOS)
            alive = np.arange(chunk)
            while len(alive):
                cdf = np.cumsum(self.next_distribution(a[alive], b[alive]), axis=1)
                u = rng.random(len(alive)) * cdf[:, -1]
                nxt = np.minimum((cdf <= u[:, None]).sum(axis=1), self.vocab_size)
                for j, token in zip(alive.tolist(), nxt.tolist()):
                    if token != self.EOS:
                        batch[j].append(token)
                a[alive], b[alive] = b[alive], nxt
                alive = alive[nxt != self.EOS]
            for sentence in batch:
                if total >= n_tokens:
                    break
                sentences.append(sentence)
                total += len(sentence)
        return sentences

    # ------------------------------------------------------------------ files

    def fingerprint(self) -> str:
        fields = json.dumps({"version": GENERATOR_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha1(fields.encode()).hexdigest()[:12]

    def ensure_corpus(self, cache_dir: str | Path) -> Path:
        """The corpus folder for these settings, generated into the cache on first use."""
        folder = Path(cache_dir).expanduser() / f"synthetic-{self.fingerprint()}"
        if (folder / "source.json").is_file():
            return folder
        folder.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename into place: concurrent runs never see half a corpus.
        tmp = Path(tempfile.mkdtemp(prefix=".synthetic-", dir=folder.parent))
        try:
            sizes = {"train": self.train_tokens, "valid": self.valid_tokens, "test": self.test_tokens}
            for index, (split, n_tokens) in enumerate(sizes.items()):
                rng = np.random.default_rng([self.seed, index])
                lines = (" ".join(self.words[t] for t in s) for s in self.sample_sentences(n_tokens, rng))
                (tmp / f"{split}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            (tmp / "source.json").write_text(
                json.dumps({"version": GENERATOR_VERSION, **dataclasses.asdict(self)}, indent=2)
            )
            try:
                os.rename(tmp, folder)
            except OSError:  # another process finished first; its corpus is identical
                if not (folder / "source.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder

    # ------------------------------------------------------------------ the oracle

    def window_oracle_perplexity(self, sentences: list[list[str]], vocabulary: set[str], n_step: int) -> float | None:
        """Perplexity of the true source on the window task over `sentences`.

        Targets outside `vocabulary` are scored as the model sees them, as one unknown
        class holding the mass of every out-of-vocabulary word. Contexts are the true
        tokens. None when n_step < 2: the window then hides part of the source's context.
        """
        if n_step < 2:
            return None
        # A vocabulary whose ids are the source's symbols shifted by 4, to reuse the protocol.
        unk = "<source-unk>"
        source_vocab = Vocab([PAD, unk, SOS, EOS, *self.words], unk=unk)
        inputs, targets = window_tensors(sentences, source_vocab, n_step)
        to_source = np.concatenate([[self.PAD, -1, self.SOS, self.EOS], np.arange(self.vocab_size)])
        if (targets == source_vocab.unk_id).any() or (inputs == source_vocab.unk_id).any():
            raise DataError("the oracle can only score text made of the source's own words")
        a, b = to_source[inputs[:, -2].numpy()], to_source[inputs[:, -1].numpy()]
        y = to_source[targets.numpy()]
        dist = self.next_distribution(a, b)
        in_vocab = np.array([w in vocabulary for w in self.words] + [True])
        oov_mass = dist[:, ~in_vocab].sum(axis=1)
        p = np.where(in_vocab[y], dist[np.arange(len(y)), y], oov_mass)
        return float(np.exp(-np.log(p).mean()))
