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
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

State = tuple[Tensor, ...]  # (h, c) or (h,), each (batch, hidden)


class RecurrentCell(nn.Module):
    """What the stack needs from a cell: sizes, a zero state, one step, gate parameters."""

    state_tensors = 2  # (h, c)
    has_fast_path = False  # True: it also runs as whole sequences (fast.py), as the LSTM cells do

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

    # The fast path (fast.py) keeps the gate matrices as row blocks of packed buffers and
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
        init_gate_parameters(self.gate_parameters(), init, self.hidden_size)


class ModelOneCell(RecurrentCell):
    """Model one: four gate matrices of shape H×(H+E) over z = [h, x]."""

    has_fast_path = True

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

    def gate_parameters(self):
        z_size = self.hidden_size + self.input_size
        return [(getattr(self, f"W_{g}"), getattr(self, f"b_{g}"), z_size) for g in "fico"]


class ModelTwoCell(RecurrentCell):
    """Model two: W_i* (H×E) on the input and W_h* (H×H) on the state, a bias on each."""

    has_fast_path = True

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


CELLS: dict[str, type[RecurrentCell]] = {"one": ModelOneCell, "two": ModelTwoCell, "gru": GRUCell, "rnn": RNNCell}


@torch.no_grad()
def init_gate_parameters(params, init: str, hidden_size: int) -> None:
    """Initialise (weight, bias, fan_in) triples by one of the rules `model.init` allows.

    linear:  like nn.Linear with that matrix's own fan-in (the course code built its gates
             from nn.Linear): W, b ~ U(±1/√fan_in).
    uniform: U(±1/√H) for everything, torch.nn.LSTM's rule.
    normal:  W ~ N(0, 0.01²), b = 0, the d2l rule.
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
