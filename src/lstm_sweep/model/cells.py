"""The hand-written recurrent cells, one time step each, read next to their equations
(docs/concepts/cells.md).

The experiment's two LSTM cells:

Model one (gates over the concatenation z = [h, x], four matrices, one bias each):

    f = σ(W_f z + b_f)    i = σ(W_i z + b_i)    ĉ = tanh(W_c z + b_c)    o = σ(W_o z + b_o)
    c' = f ⊙ c + i ⊙ ĉ    h' = o ⊙ tanh(c')

Model two (PyTorch's form, separate input and hidden matrices, two biases per gate):

    i = σ(W_ii x + b_ii + W_hi h + b_hi)    f = σ(W_if x + b_if + W_hf h + b_hf)
    g = tanh(W_ig x + b_ig + W_hg h + b_hg) o = σ(W_io x + b_io + W_ho h + b_ho)
    c' = f ⊙ c + i ⊙ g    h' = o ⊙ tanh(c')

And, for the wider lab, PyTorch's GRU and the plain (Elman, tanh) RNN:

    GRU:  r = σ(W_ir x + b_ir + W_hr h + b_hr)    z = σ(W_iz x + b_iz + W_hz h + b_hz)
          n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))    h' = (1 − z) ⊙ n + z ⊙ h
    RNN:  h' = tanh(W_ih x + b_ih + W_hh h + b_hh)

These step functions are the definition of the cells (and the oracle for any faster
path); running them over time and depth is the layer stack's job (`stack.py`).
A state is a tuple: (h, c) for the LSTM cells, (h,) for the others.

`RecurrentCell` is the contract every cell meets — these, the LSTM variants of zoo.py and a
user's own (docs/add-your-own-cell.md); `register_cell` names one for `model.cell`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor, nn

from lstm_sweep.model.fast import lstm_layer

State = tuple[Tensor, ...]  # (h, c) or (h,), each (batch, hidden)


class RecurrentCell(nn.Module):
    """The contract of a cell: what the stack, the initialisation rules and the checks need.

    - `state_tensors`: how many tensors a state holds, each (batch, hidden); the first is
      the output h that the next layer and the decoder read;
    - `forward(x, state) -> state`: one time step, the cell's definition;
    - `gate_parameters()`: (weight, bias or None, fan_in) of every matrix, and
      `vector_parameters()`: (vector, fan_in) of every other parameter (peepholes) — what
      `model.init`'s rules draw; together they name every parameter;
    - optionally a sequence-level fast path: `has_fast_path = True` and
      `forward_sequence(x, state)`, equal to stepping `forward` over x.
    """

    state_tensors = 2  # (h, c)
    has_fast_path = False  # True: forward_sequence runs a whole sequence at once

    def __init__(self, input_size: int, hidden_size: int, init: str = "linear"):
        """A subclass makes its parameters, then calls `self.reset_parameters(init)`."""
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size

    def zero_state(self, batch_size: int, like: Tensor) -> State:
        return tuple(like.new_zeros(batch_size, self.hidden_size) for _ in range(self.state_tensors))

    def forward(self, x: Tensor, state: State) -> State:
        raise NotImplementedError

    def gate_parameters(self) -> list[tuple[Tensor, Tensor | None, int]]:
        """(weight, bias, fan_in) per gate matrix, for the initialisation rules."""
        raise NotImplementedError

    def vector_parameters(self) -> list[tuple[Tensor, int]]:
        """(vector, fan_in) of the parameters that are neither a matrix nor its bias (peepholes)."""
        return []

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (T, B, E) from `state` → (outputs (T, B, H), last state), at once: the fast path."""
        raise NotImplementedError

    # The LSTM fast path (fast.py) keeps the gate matrices as row blocks of packed buffers and
    # reads them as w_ih (4H, E) and w_hh (4H, H), gate blocks in the order i, f, g, o.

    def packed_groups(self) -> list[list[nn.Parameter]]:
        """The gate matrices, grouped by the buffer that holds them, each group in i, f, g, o order."""
        raise NotImplementedError

    def gate_weights(self, buffers: list[Tensor]) -> tuple[Tensor, Tensor]:
        """(w_ih, w_hh) as views of the packed buffers (or of gradients shaped like them)."""
        raise NotImplementedError

    def packed_bias(self) -> Tensor:
        """The one bias per gate the fast path adds, (4H,), built differentiably from ours."""
        raise NotImplementedError

    def reset_parameters(self, init: str = "linear") -> None:
        init_gate_parameters(self.gate_parameters(), init, self.hidden_size, self.vector_parameters())


class LSTMCell(RecurrentCell):
    """The two compared LSTM cells' shared fast path: their gate matrices read as one
    w_ih, w_hh and bias in the order i, f, g, o (fast.py's compiled LSTM kernel)."""

    has_fast_path = True

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return lstm_layer(self, x, state)


class ModelOneCell(LSTMCell):
    """Model one: four gate matrices of shape H×(H+E) over z = [h, x]."""

    def __init__(self, input_size: int, hidden_size: int, init: str = "linear"):
        super().__init__(input_size, hidden_size)
        H, Z = hidden_size, hidden_size + input_size
        self.W_f, self.b_f = _param(H, Z), _param(H)
        self.W_i, self.b_i = _param(H, Z), _param(H)
        self.W_c, self.b_c = _param(H, Z), _param(H)
        self.W_o, self.b_o = _param(H, Z), _param(H)
        self.reset_parameters(init)

    def forward(self, x: Tensor, state: State) -> State:
        h, c = state
        z = torch.cat([h, x], dim=1)
        f = torch.sigmoid(z @ self.W_f.T + self.b_f)
        i = torch.sigmoid(z @ self.W_i.T + self.b_i)
        c_hat = torch.tanh(z @ self.W_c.T + self.b_c)
        o = torch.sigmoid(z @ self.W_o.T + self.b_o)
        c = f * c + i * c_hat
        h = o * torch.tanh(c)
        return h, c

    def packed_groups(self):
        return [[self.W_i, self.W_f, self.W_c, self.W_o]]  # one (4H, H+E) matrix

    def gate_weights(self, buffers):
        (w,) = buffers
        return w[:, self.hidden_size :], w[:, : self.hidden_size]  # z = [h, x]: h's columns first

    def packed_bias(self):
        return torch.cat([self.b_i, self.b_f, self.b_c, self.b_o])

    def torch_lstm_weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """nn.LSTM's (w_ih, w_hh, b_ih, b_hh) computing this cell: W_g = [W_hg | W_ig] split back."""
        H = self.hidden_size
        w = torch.cat([self.W_i, self.W_f, self.W_c, self.W_o])
        return w[:, H:], w[:, :H], self.packed_bias(), torch.zeros_like(self.packed_bias())

    def gate_parameters(self):
        z_size = self.hidden_size + self.input_size
        return [(getattr(self, f"W_{g}"), getattr(self, f"b_{g}"), z_size) for g in "fico"]


class ModelTwoCell(LSTMCell):
    """Model two: W_i* (H×E) on the input and W_h* (H×H) on the state, a bias on each."""

    def __init__(self, input_size: int, hidden_size: int, init: str = "linear"):
        super().__init__(input_size, hidden_size)
        H, E = hidden_size, input_size
        self.W_ii, self.b_ii, self.W_hi, self.b_hi = _param(H, E), _param(H), _param(H, H), _param(H)
        self.W_if, self.b_if, self.W_hf, self.b_hf = _param(H, E), _param(H), _param(H, H), _param(H)
        self.W_ig, self.b_ig, self.W_hg, self.b_hg = _param(H, E), _param(H), _param(H, H), _param(H)
        self.W_io, self.b_io, self.W_ho, self.b_ho = _param(H, E), _param(H), _param(H, H), _param(H)
        self.reset_parameters(init)

    def forward(self, x: Tensor, state: State) -> State:
        h, c = state
        i = torch.sigmoid(x @ self.W_ii.T + self.b_ii + h @ self.W_hi.T + self.b_hi)
        f = torch.sigmoid(x @ self.W_if.T + self.b_if + h @ self.W_hf.T + self.b_hf)
        g = torch.tanh(x @ self.W_ig.T + self.b_ig + h @ self.W_hg.T + self.b_hg)
        o = torch.sigmoid(x @ self.W_io.T + self.b_io + h @ self.W_ho.T + self.b_ho)
        c = f * c + i * g
        h = o * torch.tanh(c)
        return h, c

    def packed_groups(self):
        return [[self.W_ii, self.W_if, self.W_ig, self.W_io], [self.W_hi, self.W_hf, self.W_hg, self.W_ho]]

    def gate_weights(self, buffers):
        w_ih, w_hh = buffers
        return w_ih, w_hh

    def packed_bias(self):
        return torch.cat([self.b_ii, self.b_if, self.b_ig, self.b_io]) + torch.cat(
            [self.b_hi, self.b_hf, self.b_hg, self.b_ho]
        )

    def torch_lstm_weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """nn.LSTM's (w_ih, w_hh, b_ih, b_hh): the same matrices, row block by row block."""
        return (
            torch.cat([self.W_ii, self.W_if, self.W_ig, self.W_io]),
            torch.cat([self.W_hi, self.W_hf, self.W_hg, self.W_ho]),
            torch.cat([self.b_ii, self.b_if, self.b_ig, self.b_io]),
            torch.cat([self.b_hi, self.b_hf, self.b_hg, self.b_ho]),
        )

    def gate_parameters(self):
        params = []
        for g in "ifgo":
            params.append((getattr(self, f"W_i{g}"), getattr(self, f"b_i{g}"), self.input_size))
            params.append((getattr(self, f"W_h{g}"), getattr(self, f"b_h{g}"), self.hidden_size))
        return params


class GRUCell(RecurrentCell):
    """PyTorch's GRU: reset, update and candidate gates, a bias on each side of each."""

    state_tensors = 1

    def __init__(self, input_size: int, hidden_size: int, init: str = "linear"):
        super().__init__(input_size, hidden_size)
        H, E = hidden_size, input_size
        self.W_ir, self.b_ir, self.W_hr, self.b_hr = _param(H, E), _param(H), _param(H, H), _param(H)
        self.W_iz, self.b_iz, self.W_hz, self.b_hz = _param(H, E), _param(H), _param(H, H), _param(H)
        self.W_in, self.b_in, self.W_hn, self.b_hn = _param(H, E), _param(H), _param(H, H), _param(H)
        self.reset_parameters(init)

    def forward(self, x: Tensor, state: State) -> State:
        (h,) = state
        r = torch.sigmoid(x @ self.W_ir.T + self.b_ir + h @ self.W_hr.T + self.b_hr)
        z = torch.sigmoid(x @ self.W_iz.T + self.b_iz + h @ self.W_hz.T + self.b_hz)
        n = torch.tanh(x @ self.W_in.T + self.b_in + r * (h @ self.W_hn.T + self.b_hn))
        return ((1 - z) * n + z * h,)

    def gate_parameters(self):
        params = []
        for g in "rzn":
            params.append((getattr(self, f"W_i{g}"), getattr(self, f"b_i{g}"), self.input_size))
            params.append((getattr(self, f"W_h{g}"), getattr(self, f"b_h{g}"), self.hidden_size))
        return params


class RNNCell(RecurrentCell):
    """The plain tanh RNN."""

    state_tensors = 1

    def __init__(self, input_size: int, hidden_size: int, init: str = "linear"):
        super().__init__(input_size, hidden_size)
        H, E = hidden_size, input_size
        self.W_ih, self.b_ih, self.W_hh, self.b_hh = _param(H, E), _param(H), _param(H, H), _param(H)
        self.reset_parameters(init)

    def forward(self, x: Tensor, state: State) -> State:
        (h,) = state
        return (torch.tanh(x @ self.W_ih.T + self.b_ih + h @ self.W_hh.T + self.b_hh),)

    def gate_parameters(self):
        return [(self.W_ih, self.b_ih, self.input_size), (self.W_hh, self.b_hh, self.hidden_size)]


def _param(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape))  # filled by reset_parameters


# model.cell's names: the cells here, zoo.py's, and any a user registers (registry.py).
REGISTERED: dict[str, type[RecurrentCell]] = {}
Cell = TypeVar("Cell", bound=type[RecurrentCell])


def register_cell(name: str) -> Callable[[Cell], Cell]:
    """A class decorator: `@register_cell("cifg")` makes the class `model.cell=cifg`."""

    def register(cell: Cell) -> Cell:
        if name in REGISTERED and REGISTERED[name] is not cell:
            raise ValueError(f"model.cell={name!r} is taken by {REGISTERED[name].__qualname__}")
        REGISTERED[name] = cell
        return cell

    return register


for _name, _cell in {"one": ModelOneCell, "two": ModelTwoCell, "gru": GRUCell, "rnn": RNNCell}.items():
    register_cell(_name)(_cell)


@torch.no_grad()
def init_gate_parameters(params, init: str, hidden_size: int, vectors=()) -> None:
    """Initialise (weight, bias, fan_in) triples, and (vector, fan_in) pairs, by one of the
    rules `model.init` allows.

    linear:  like nn.Linear with that matrix's own fan-in (the course code built its gates
             from nn.Linear): W, b ~ U(±1/√fan_in); a vector like a bias of that fan-in.
    uniform: U(±1/√H) for everything, torch.nn.LSTM's rule.
    normal:  W ~ N(0, 0.01²), b = 0 and vectors 0, the d2l rule.
    """
    if init not in ("linear", "uniform", "normal"):  # the config schema admits only these
        raise ValueError(f"unknown init rule {init!r}")
    for weight, bias, fan_in in params:
        if init == "linear":
            # nn.Linear.reset_parameters, drawn in the same order.
            nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
            bound = 1.0 / math.sqrt(fan_in)
        elif init == "uniform":
            bound = 1.0 / math.sqrt(hidden_size)
            nn.init.uniform_(weight, -bound, bound)
        else:
            nn.init.normal_(weight, 0.0, 0.01)
        if bias is not None:
            if init == "normal":
                nn.init.zeros_(bias)
            else:
                nn.init.uniform_(bias, -bound, bound)
    for vector, fan_in in vectors:
        if init == "normal":
            nn.init.zeros_(vector)
        else:
            bound = 1.0 / math.sqrt(fan_in if init == "linear" else hidden_size)
            nn.init.uniform_(vector, -bound, bound)
