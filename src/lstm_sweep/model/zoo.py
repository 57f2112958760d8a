"""The LSTM variants of Greff, Srivastava, Koutník, Steunebrink and Schmidhuber, "LSTM: A
Search Space Odyssey" (IEEE TNNLS 2017), one time step each, as `model.cell` options.

The study's vanilla LSTM (V) has peepholes (p_* are vectors, ⊙ element-wise); y is the
block output, the h the stack passes on; g = h = tanh:

    z_t = g(W_z x_t + R_z y_{t-1} + b_z)                        block input
    i_t = σ(W_i x_t + R_i y_{t-1} + p_i ⊙ c_{t-1} + b_i)        input gate
    f_t = σ(W_f x_t + R_f y_{t-1} + p_f ⊙ c_{t-1} + b_f)        forget gate
    c_t = z_t ⊙ i_t + c_{t-1} ⊙ f_t                             cell
    o_t = σ(W_o x_t + R_o y_{t-1} + p_o ⊙ c_t + b_o)            output gate (peeps at c_t)
    y_t = h(c_t) ⊙ o_t                                          block output

Each variant is one change to V:

    NIG   no input gate            i_t = 1
    NFG   no forget gate           f_t = 1
    NOG   no output gate           o_t = 1
    NIAF  no input activation      g(x) = x
    NOAF  no output activation     h(x) = x
    NP    no peepholes             p_i = p_f = p_o = 0 (no peephole parameters): model two's function
    CIFG  coupled input-forget     f_t = 1 − i_t (no forget-gate parameters)
    FGR   full gate recurrence     each gate's pre-activation adds R_{·i} i_{t-1} + R_{·f} f_{t-1}
                                   + R_{·o} o_{t-1} (nine more H×H matrices)

A gate that is removed has no parameters: NIG has no W_i, R_i, b_i, p_i. FGR's nine
matrices are held as three, one per receiving gate: G_i = [R_ii | R_if | R_io] (H × 3H), and
its state carries the previous step's gate activations, (y, c, i, f, o).

`GreffCell` is the study's LSTM with one switch per change; the nine classes below set them.
Their fast path is fast.py's variant kernel, parameterised by the same switches.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor

from lstm_sweep.model.cells import RecurrentCell, State, _param, register_cell
from lstm_sweep.model.fast_variants import VariantStructure, variant_layer

FORGET_GATES = ("own", "none", "coupled")


class GreffCell(RecurrentCell):
    """The study's LSTM, its changes as switches (V: all on, peepholes, tanh, no FGR)."""

    input_gate = True  # False: i = 1
    forget_gate = "own"  # "none": f = 1; "coupled": f = 1 − i
    output_gate = True  # False: o = 1
    input_activation = True  # False: g(x) = x
    output_activation = True  # False: h(x) = x
    peepholes = True  # False: no p_i, p_f, p_o
    full_gate_recurrence = False  # True: G_i, G_f, G_o from the previous step's i, f, o
    has_fast_path = True

    def __init__(self, input_size: int, hidden_size: int, init: str = "linear"):
        super().__init__(input_size, hidden_size)
        H, E = hidden_size, input_size
        for gate in self.gates():
            self.register_parameter(f"W_{gate}", _param(H, E))
            self.register_parameter(f"R_{gate}", _param(H, H))
            self.register_parameter(f"b_{gate}", _param(H))
        for gate in self.peeping():
            self.register_parameter(f"p_{gate}", _param(H))
        for gate in self.recurrent_gates():
            self.register_parameter(f"G_{gate}", _param(H, 3 * H))
        self.reset_parameters(init)

    def param(self, kind: str, gate: str) -> Tensor:
        """W_z, R_i, b_f, p_o, G_i … by kind and gate (a plain tensor under torch.func)."""
        return cast(Tensor, getattr(self, f"{kind}_{gate}"))

    # ------------------------------------------------------------------ structure

    @classmethod
    def gates(cls) -> tuple[str, ...]:
        """The pre-activations the cell computes, in the fast path's order: i, f, o, z."""
        present = {"i": cls.input_gate, "f": cls.forget_gate == "own", "o": cls.output_gate, "z": True}
        return tuple(gate for gate, on in present.items() if on)

    @classmethod
    def peeping(cls) -> tuple[str, ...]:
        return tuple(g for g in cls.gates() if g != "z") if cls.peepholes else ()

    @classmethod
    def recurrent_gates(cls) -> tuple[str, ...]:
        return ("i", "f", "o") if cls.full_gate_recurrence else ()

    @classmethod
    def structure(cls) -> VariantStructure:
        return VariantStructure(
            gates=cls.gates(),
            forget_gate=cls.forget_gate,
            input_activation=cls.input_activation,
            output_activation=cls.output_activation,
            peepholes=cls.peeping(),
            full_gate_recurrence=cls.full_gate_recurrence,
        )

    # ------------------------------------------------------------------ one step

    def forward(self, x: Tensor, state: State) -> State:
        y, c = state[0], state[1]
        previous = torch.cat(state[2:], dim=1) if self.full_gate_recurrence else None

        def pre(gate: str) -> Tensor:
            a = x @ self.param("W", gate).T + y @ self.param("R", gate).T + self.param("b", gate)
            if previous is not None and gate in self.recurrent_gates():
                a = a + previous @ self.param("G", gate).T
            return a

        def peep(gate: str, cell: Tensor) -> Tensor | float:
            return self.param("p", gate) * cell if gate in self.peeping() else 0.0

        z = torch.tanh(pre("z")) if self.input_activation else pre("z")
        i = torch.sigmoid(pre("i") + peep("i", c)) if self.input_gate else torch.ones_like(z)
        if self.forget_gate == "own":
            f = torch.sigmoid(pre("f") + peep("f", c))
        else:
            f = 1 - i if self.forget_gate == "coupled" else torch.ones_like(z)
        c = z * i + c * f
        o = torch.sigmoid(pre("o") + peep("o", c)) if self.output_gate else torch.ones_like(z)
        y = (torch.tanh(c) if self.output_activation else c) * o
        return (y, c, i, f, o) if self.full_gate_recurrence else (y, c)

    # ------------------------------------------------------------------ initialisation

    def gate_parameters(self):
        E, H = self.input_size, self.hidden_size
        matrices: list[tuple[Tensor, Tensor | None, int]] = []
        for gate in self.gates():
            matrices.append((self.param("W", gate), self.param("b", gate), E))
            matrices.append((self.param("R", gate), None, H))
        matrices += [(self.param("G", gate), None, 3 * H) for gate in self.recurrent_gates()]
        return matrices

    def vector_parameters(self):
        return [(self.param("p", gate), self.hidden_size) for gate in self.peeping()]

    # ------------------------------------------------------------------ the fast path

    def packed_groups(self):
        groups = [
            [self.param("W", g) for g in self.gates()],
            [self.param("R", g) for g in self.gates()],
        ]
        if self.full_gate_recurrence:
            groups.append([self.param("G", g) for g in self.recurrent_gates()])
        return groups

    def packed_bias(self) -> Tensor:
        return torch.cat([self.param("b", g) for g in self.gates()])

    def peephole_vectors(self) -> list[Tensor]:
        return [self.param("p", g) for g in self.peeping()]

    def forward_sequence(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return variant_layer(self, x, state)


@register_cell("vanilla")
class Vanilla(GreffCell):
    """V, the study's vanilla LSTM: input, forget and output gates, peepholes, g = h = tanh.

    z = tanh(W_z x + R_z y + b_z)        i = σ(W_i x + R_i y + p_i ⊙ c + b_i)
    f = σ(W_f x + R_f y + p_f ⊙ c + b_f) c' = z ⊙ i + c ⊙ f
    o = σ(W_o x + R_o y + p_o ⊙ c' + b_o)    y' = tanh(c') ⊙ o
    """


@register_cell("nig")
class NoInputGate(GreffCell):
    """NIG: V without the input gate.

    z = tanh(W_z x + R_z y + b_z)        f = σ(W_f x + R_f y + p_f ⊙ c + b_f)
    c' = z + c ⊙ f                       o = σ(W_o x + R_o y + p_o ⊙ c' + b_o)    y' = tanh(c') ⊙ o
    """

    input_gate = False


@register_cell("nfg")
class NoForgetGate(GreffCell):
    """NFG: V without the forget gate: the cell never forgets.

    z = tanh(W_z x + R_z y + b_z)        i = σ(W_i x + R_i y + p_i ⊙ c + b_i)
    c' = z ⊙ i + c                       o = σ(W_o x + R_o y + p_o ⊙ c' + b_o)    y' = tanh(c') ⊙ o
    """

    forget_gate = "none"


@register_cell("nog")
class NoOutputGate(GreffCell):
    """NOG: V without the output gate.

    z = tanh(W_z x + R_z y + b_z)        i = σ(W_i x + R_i y + p_i ⊙ c + b_i)
    f = σ(W_f x + R_f y + p_f ⊙ c + b_f) c' = z ⊙ i + c ⊙ f                    y' = tanh(c')
    """

    output_gate = False


@register_cell("niaf")
class NoInputActivation(GreffCell):
    """NIAF: V with a linear block input, g(x) = x.

    z = W_z x + R_z y + b_z              i = σ(W_i x + R_i y + p_i ⊙ c + b_i)
    f = σ(W_f x + R_f y + p_f ⊙ c + b_f) c' = z ⊙ i + c ⊙ f
    o = σ(W_o x + R_o y + p_o ⊙ c' + b_o)    y' = tanh(c') ⊙ o
    """

    input_activation = False


@register_cell("noaf")
class NoOutputActivation(GreffCell):
    """NOAF: V with a linear block output, h(x) = x.

    z = tanh(W_z x + R_z y + b_z)        i = σ(W_i x + R_i y + p_i ⊙ c + b_i)
    f = σ(W_f x + R_f y + p_f ⊙ c + b_f) c' = z ⊙ i + c ⊙ f
    o = σ(W_o x + R_o y + p_o ⊙ c' + b_o)    y' = c' ⊙ o
    """

    output_activation = False


@register_cell("np")
class NoPeepholes(GreffCell):
    """NP: V without peepholes — model two's function, with one bias per gate.

    z = tanh(W_z x + R_z y + b_z)        i = σ(W_i x + R_i y + b_i)
    f = σ(W_f x + R_f y + b_f)           c' = z ⊙ i + c ⊙ f
    o = σ(W_o x + R_o y + b_o)           y' = tanh(c') ⊙ o
    """

    peepholes = False

    def torch_lstm_weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """nn.LSTM's (w_ih, w_hh, b_ih, b_hh), its gates i, f, g, o: z is nn.LSTM's g."""
        order = ("i", "f", "z", "o")
        bias = torch.cat([self.param("b", g) for g in order])
        return (
            torch.cat([self.param("W", g) for g in order]),
            torch.cat([self.param("R", g) for g in order]),
            bias,
            torch.zeros_like(bias),
        )


@register_cell("cifg")
class CoupledInputForget(GreffCell):
    """CIFG: V with the forget gate coupled to the input gate, f = 1 − i (as in the GRU).

    z = tanh(W_z x + R_z y + b_z)        i = σ(W_i x + R_i y + p_i ⊙ c + b_i)
    c' = z ⊙ i + c ⊙ (1 − i)             o = σ(W_o x + R_o y + p_o ⊙ c' + b_o)    y' = tanh(c') ⊙ o
    """

    forget_gate = "coupled"


@register_cell("fgr")
class FullGateRecurrence(GreffCell):
    """FGR: V whose gates also see every gate's previous activation, a = [i, f, o]_{t-1}.

    z = tanh(W_z x + R_z y + b_z)
    i = σ(W_i x + R_i y + G_i a + p_i ⊙ c + b_i)     f = σ(W_f x + R_f y + G_f a + p_f ⊙ c + b_f)
    c' = z ⊙ i + c ⊙ f                               o = σ(W_o x + R_o y + G_o a + p_o ⊙ c' + b_o)
    y' = tanh(c') ⊙ o;  the state is (y, c, i, f, o)
    """

    full_gate_recurrence = True
    state_tensors = 5  # (y, c, i, f, o)
