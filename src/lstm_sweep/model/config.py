"""The `model` keys: the cell, its implementation and the language model's sizes.

`LanguageModel` (lm.py) takes exactly these keys as its arguments (`LanguageModel(vocab_size,
**model)`), so a key added here is one argument added there, never a list kept by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from lstm_sweep.errors import ConfigError
from lstm_sweep.fields import Check, at_least, one_of, setting, within


@dataclass
class ModelConfig:
    cell: str = setting(
        "one",
        "one, two: the compared hand-written LSTM cells; gru, rnn: hand-written too; vanilla, nig, nfg, nog, "
        "niaf, noaf, np, cifg, fgr: the LSTM variants of Greff et al.; a registered name or a dotted path "
        "to your own cell class (docs: your own cell); torch: torch.nn.LSTM, a speed baseline only",
    )
    impl: str = one_of(
        "fast",
        "reference",
        default="fast",
        doc="fast: whole-sequence kernels (LSTM cells); reference: the cells step by step",
    )
    num_layers: int = at_least(1, 1, doc="stacked layers; layer k's h sequence feeds layer k+1")
    embedding_size: int = at_least(1, 64, doc="E")
    hidden_size: int = at_least(1, 64, doc="H")
    dropout: float = within(0, 1, 0.0, high_open=True, doc="between layers and before the decoder, never along time")
    embedding_dropout: float = within(0, 1, 0.0, high_open=True, doc="on the embeddings")
    init: str = one_of(
        "linear",
        "uniform",
        "normal",
        default="linear",
        doc="linear: each gate matrix like nn.Linear with its own fan-in (the course's); "
        "uniform: U(±1/√H), nn.LSTM's rule; normal: N(0, 0.01²) weights, zero biases (d2l's)",
    )
    init_range: Optional[float] = at_least(
        0, None, strict=True, doc="r: every parameter, embedding and decoder included, ~ U(±r) (Zaremba et al.)"
    )
    tie_weights: bool = setting(False, "decoder weight = embedding weight, one tensor (needs E = H)")
    decoder_bias: bool = setting(True, "the decoder has a bias")
    decoder_bias_init: Optional[float] = setting(None, "null: nn.Linear's initialisation; a number: that constant")


_PASSED: set[type] = set()  # cell classes that kept the contract in this process


def cell_fault(name: str) -> str | None:
    """Why `model.cell=name` names no usable cell (one line), or None: it must resolve, and a
    tiny instance of it keep the contract (check.py). A pass is remembered for the process (a
    grid of 2,000 runs checks each of its few cells once); a fault is not, so a cell
    registered, re-registered or mended later in a notebook is checked again."""
    from lstm_sweep.model.check import contract_fault
    from lstm_sweep.model.registry import BASELINE, resolve_cell

    if name == BASELINE:
        return None
    try:
        cell = resolve_cell(name)
    except ConfigError as err:
        return str(err)
    if cell in _PASSED:
        return None
    fault = contract_fault(cell)
    if fault:
        return f"model.cell={name!r}: {fault}"
    _PASSED.add(cell)
    return None


def _cell(cfg: Any) -> str | None:
    return cell_fault(cfg.model.cell)


def _tied_sizes(cfg: Any) -> str | None:
    m = cfg.model
    if m.tie_weights and m.embedding_size != m.hidden_size:
        return (
            f"model.tie_weights=true needs model.embedding_size == model.hidden_size "
            f"(got {m.embedding_size} and {m.hidden_size})"
        )
    return None


CHECKS: tuple[Check, ...] = (_cell, _tied_sizes)
