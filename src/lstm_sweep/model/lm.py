"""The language model: Embedding → layer stack → Linear decoder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import torch
from torch import Tensor, nn

from lstm_sweep.model.cells import State
from lstm_sweep.model.config import ModelConfig
from lstm_sweep.model.stack import build_stack


class LanguageModel(nn.Module):
    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int = 1,
        cell: str = "one",
        dropout: float = 0.0,
        init: str = "linear",
        tie_weights: bool = False,
        decoder_bias: bool = True,
        decoder_bias_init: float | None = None,
        impl: str = "fast",
        embedding_dropout: float = 0.0,
        init_range: float | None = None,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.rnn = build_stack(cell, embedding_size, hidden_size, num_layers, dropout, init, impl)
        self.decoder = nn.Linear(hidden_size, vocab_size, bias=decoder_bias)
        if tie_weights:
            self.decoder.weight = self.embedding.weight  # one tensor, two uses
        if init_range is not None:  # Zaremba et al.: every parameter ~ U(±init_range)
            with torch.no_grad():
                for p in self.parameters():
                    p.uniform_(-init_range, init_range)
        if decoder_bias and decoder_bias_init is not None:
            nn.init.constant_(self.decoder.bias, decoder_bias_init)  # the course used ones

    @classmethod
    def from_config(cls, model: Mapping[str, Any], vocab_size: int) -> LanguageModel:
        """The model a run's `model` config describes: its keys are this class's arguments
        (model/config.py). A key that an older run's config lacks takes its default, which is
        what that run had."""
        return cls(vocab_size, **{**asdict(ModelConfig()), **model})

    def forward(
        self, tokens: Tensor, state: list[State] | None = None, last_only: bool = False
    ) -> tuple[Tensor, list[State]]:
        """tokens (B, T) → logits (B, T, V), or (B, V) for the last position only."""
        x = self.embedding_dropout(self.embedding(tokens.T))  # time-major for the stack
        out, state = self.rnn(x, state)
        if last_only:
            return self.decoder(out[-1]), state
        return self.decoder(out).transpose(0, 1), state
