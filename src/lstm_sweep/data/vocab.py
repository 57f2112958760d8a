"""Token ↔ id: specials first (<pad> = 0), then the training words by frequency."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from lstm_sweep.data.config import SPECIAL_TOKENS
from lstm_sweep.errors import DataError
from lstm_sweep.files import write_text

PAD, SOS, EOS = SPECIAL_TOKENS  # the unknown token (data.unk_token) joins them in every vocabulary


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
        write_text(path, json.dumps({"unk": self.unk, "itos": self.itos}, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> Vocab:
        data = json.loads(Path(path).read_text())
        return cls(data["itos"], data["unk"])
