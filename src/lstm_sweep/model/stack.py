"""A stack of recurrent layers run over time and depth, for any registered cell.

Input is time-major (T, B, E). Layer k's h sequence is layer k+1's input; dropout, when
set, applies between layers and on the top output, never along time. States are one
tuple per layer — (h, c) for the LSTM cells, (h,) for GRU and RNN — each tensor (B, H).
"""

from __future__ import annotations

import logging
from typing import cast

import torch
from torch import Tensor, nn

from lstm_sweep.model.cells import RecurrentCell, State, init_gate_parameters
from lstm_sweep.model.registry import BASELINE, resolve_cell

log = logging.getLogger(__name__)


_warned: set[type] = set()


def warn_step_by_step(cell: type) -> None:
    """Once per cell class: model.impl=fast asked for, but the cell has no fast path."""
    if cell not in _warned:
        _warned.add(cell)
        log.warning(
            "%s has no sequence-level fast path: it runs step by step, a Python loop of small ops per time "
            "step, typically several times slower than a fast cell (lstm-bench measures it)",
            cell.__qualname__,
        )


def run_cell(cell: nn.Module, x: Tensor, state: State) -> tuple[Tensor, State]:
    """Run one cell step by step over x (T, B, E); return its outputs (T, B, H) and last state."""
    outputs = []
    for x_t in x:
        state = cell(x_t, state)
        outputs.append(state[0])
    return torch.stack(outputs), state


class CellStack(nn.Module):
    """N layers of a cell, run step by step (`reference`, the definition) or a whole sequence
    at a time (`fast`: the cell's forward_sequence, where it has one — the LSTM cells and the
    variants; others run step by step, after one warning that says what it costs)."""

    def __init__(
        self,
        cell: str | type[RecurrentCell],
        input_size: int,
        hidden_size: int,
        num_layers: int,
        dropout: float = 0.0,
        init: str = "linear",
        impl: str = "fast",
    ):
        super().__init__()
        cell_class = resolve_cell(cell) if isinstance(cell, str) else cell  # a name or path, or the class
        if impl == "fast" and not cell_class.has_fast_path:
            warn_step_by_step(cell_class)
        self.impl = impl
        self.layers = nn.ModuleList(
            cell_class(input_size if k == 0 else hidden_size, hidden_size, init) for k in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)

    @property
    def cells(self) -> list[RecurrentCell]:
        """The layers' cells, bottom first."""
        return [cast(RecurrentCell, layer) for layer in self.layers]

    def forward(self, x: Tensor, state: list[State] | None = None) -> tuple[Tensor, list[State]]:
        final = []
        for k, layer in enumerate(self.cells):
            if k > 0:
                x = self.dropout(x)
            layer_state = state[k] if state is not None else layer.zero_state(x.shape[1], x)
            if self.impl == "fast" and layer.has_fast_path:
                x, layer_state = layer.forward_sequence(x, layer_state)
            else:
                x, layer_state = run_cell(layer, x, layer_state)
            final.append(layer_state)
        return self.dropout(x), final


class TorchLSTMStack(nn.Module):
    """torch.nn.LSTM behind CellStack's interface: the speed baseline, never an experiment cell."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float = 0.0, init: str = "linear"):
        super().__init__()
        self.hidden_size = hidden_size
        # nn.LSTM's own dropout already acts between layers only, as ours does.
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        gates = []
        for k in range(num_layers):
            w_ih, w_hh = getattr(self.lstm, f"weight_ih_l{k}"), getattr(self.lstm, f"weight_hh_l{k}")
            b_ih, b_hh = getattr(self.lstm, f"bias_ih_l{k}"), getattr(self.lstm, f"bias_hh_l{k}")
            # Row blocks i, f, g, o: the same gate matrices as model two, initialised alike.
            for w, b in ((w_ih, b_ih), (w_hh, b_hh)):
                gates += [
                    (w[j * hidden_size : (j + 1) * hidden_size], b[j * hidden_size : (j + 1) * hidden_size], w.shape[1])
                    for j in range(4)
                ]
        init_gate_parameters(gates, init, hidden_size)

    def forward(self, x: Tensor, state: list[State] | None = None) -> tuple[Tensor, list[State]]:
        packed = None
        if state is not None:
            packed = (torch.stack([h for h, _ in state]), torch.stack([c for _, c in state]))
        out, (h, c) = self.lstm(x, packed)
        return self.dropout(out), list(zip(h.unbind(0), c.unbind(0)))


def build_stack(
    cell: str,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float = 0.0,
    init: str = "linear",
    impl: str = "fast",
) -> nn.Module:
    """The layer stack for `model.cell` (a cell registry.py resolves, or "torch" for the
    nn.LSTM baseline)."""
    if cell == BASELINE:
        return TorchLSTMStack(input_size, hidden_size, num_layers, dropout, init)
    return CellStack(cell, input_size, hidden_size, num_layers, dropout, init, impl)
