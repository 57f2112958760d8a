"""The sequence-level fast path of the LSTM variants (zoo.py), one kernel for all nine.

It is the LSTM fast path's design (fast.py) with the variant's structure as switches: the
input projection for all T steps is one GEMM; each step is one recurrent GEMM (two for
FGR: the previous gate activations through G) and one fused pass over the gates; the
backward pass is the hand-derived BPTT below, its weight gradients single GEMMs over all
T·B rows. Gate blocks come in the order i, f, o, z (those present), so FGR's three
receiving gates are one contiguous (B, 3H) block. The cells' parameters stay their own:
W and R (and G) live as row blocks of packed buffers, as for the LSTM cells.

Forward, per step (· absent parts drop out):

    a_g = x W_gᵀ + y R_gᵀ + b_g [+ a_{t-1} G_gᵀ]          g ∈ i, f, o, z
    z = g(a_z)   i = σ(a_i + p_i ⊙ c)   f = σ(a_f + p_f ⊙ c) | 1 − i | 1
    c' = z ⊙ i + c ⊙ f   o = σ(a_o + p_o ⊙ c')   y' = h(c') ⊙ o

Backward, from dy (from above and from step t+1) and dc (from step t+1):

    dc += dy ⊙ o ⊙ h'(c')                 da_o = (dy ⊙ h(c') [+ dact_o]) ⊙ o(1−o);  dc += da_o ⊙ p_o
    da_z = dc ⊙ i ⊙ g'(a_z)               da_i = (dc ⊙ z [− dc ⊙ c if coupled] [+ dact_i]) ⊙ i(1−i)
    da_f = (dc ⊙ c [+ dact_f]) ⊙ f(1−f)   dc_prev = dc ⊙ f + da_i ⊙ p_i + da_f ⊙ p_f
    dy_prev = da R   [dact_prev = da_{ifo} G]

The time loops run in the compiled extension (csrc/lstm_kernels.cpp's variant_forward and
variant_backward); the pure-PyTorch twin below is the fallback where no compiler is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lstm_sweep.model.fast import load_kernels, packed_buffers
from lstm_sweep.model.timing import layer_flops

FORGET_MODES = {"own": 0, "none": 1, "coupled": 2}


@dataclass(frozen=True)
class VariantStructure:
    """What a variant has: its gate blocks in order (of i, f, o, z), how it forgets, its two
    activations (False: linear), the gates that peep at the cell, and FGR."""

    gates: tuple[str, ...]
    forget_gate: str = "own"
    input_activation: bool = True
    output_activation: bool = True
    peepholes: tuple[str, ...] = ()
    full_gate_recurrence: bool = False

    def __post_init__(self):
        if self.full_gate_recurrence and self.gates[:3] != ("i", "f", "o"):
            raise ValueError("full gate recurrence needs the input, forget and output gates")

    def layer_flops(self, B: int, T: int, E: int, H: int) -> int:
        """GEMM FLOPs of forward + backward of one layer: its gate blocks' projections and
        recurrence (as layer_flops), and FGR's recurrence from the previous gates."""
        extra = 3 * 2 * T * B * (3 * H) * (3 * H) if self.full_gate_recurrence else 0
        return layer_flops(B, T, E, H, gates=len(self.gates)) + extra

    def index(self, gate: str) -> int:
        return self.gates.index(gate) if gate in self.gates else -1

    def flags(self) -> list[int]:
        """The structure as the compiled kernel reads it."""
        return [
            self.index("i"),
            self.index("f"),
            self.index("o"),
            self.index("z"),
            FORGET_MODES[self.forget_gate],
            int(not self.input_activation),
            int(not self.output_activation),
            *(int(g in self.peepholes) for g in "ifo"),
            int(self.full_gate_recurrence),
        ]


# --------------------------------------------------------------------------- pure PyTorch twin


def _blocks(t: Tensor, s: VariantStructure, H: int) -> dict[str, Tensor]:
    return {g: t[:, k * H : (k + 1) * H] for k, g in enumerate(s.gates)}


def forward_python(x, h0, c0, a0, w_ih, w_hh, w_gg, bias, p_i, p_f, p_o, s: VariantStructure, store: bool):
    """The kernel's forward in PyTorch ops: [out, y_T, c_T, a_T, activations, cells]."""
    T, B, E = x.shape
    H = h0.shape[1]
    gates = torch.addmm(bias, x.reshape(T * B, E), w_ih.t()).view(T, B, -1)
    out, cells = x.new_empty(T, B, H), x.new_empty(T, B, H)
    y, c, a_prev = h0, c0, a0
    for t in range(T):
        g = gates[t].addmm_(y, w_hh.t())
        if s.full_gate_recurrence:
            g[:, : 3 * H].addmm_(a_prev, w_gg.t())
        a = _blocks(g, s, H)
        if s.input_activation:
            a["z"].tanh_()
        i: Tensor | float = 1.0
        if "i" in a:
            i = a["i"].copy_(torch.sigmoid(a["i"] + (p_i * c if "i" in s.peepholes else 0)))
        if s.forget_gate == "own":
            f: Tensor | float = a["f"].copy_(torch.sigmoid(a["f"] + (p_f * c if "f" in s.peepholes else 0)))
        else:
            f = 1 - i if s.forget_gate == "coupled" else 1.0
        c = torch.add(a["z"] * i, c * f, out=cells[t])
        o = a["o"].copy_(torch.sigmoid(a["o"] + (p_o * c if "o" in s.peepholes else 0))) if "o" in a else 1.0
        y = torch.mul(c.tanh() if s.output_activation else c, o, out=out[t])
        if s.full_gate_recurrence:
            a_prev = g[:, : 3 * H]
    a_T = a_prev.clone() if s.full_gate_recurrence else x.new_empty(0)
    return [out, y.clone(), c.clone(), a_T, gates, cells]


def backward_python(
    d_out,
    d_yT,
    d_cT,
    d_aT,
    x,
    h0,
    c0,
    a0,
    w_ih,
    w_hh,
    w_gg,
    p_i,
    p_f,
    p_o,
    out,
    gates,
    cells,
    s: VariantStructure,
    dw_ih,
    dw_hh,
    dw_gg,
):
    """The kernel's BPTT in PyTorch ops: fills dw_ih, dw_hh (and dw_gg); returns
    [dx, dy0, dc0, da0, dbias, dp_i, dp_f, dp_o] (empty where a part is absent)."""
    T, B, E = x.shape
    H = h0.shape[1]
    dgates = torch.zeros_like(gates)
    dy, dc = d_yT.clone(), d_cT.clone()
    dact = d_aT.clone() if s.full_gate_recurrence else None
    for t in reversed(range(T)):
        a, d = _blocks(gates[t], s, H), _blocks(dgates[t], s, H)
        c, c_prev = cells[t], cells[t - 1] if t > 0 else c0
        one = torch.ones_like(c)
        i = a.get("i", one)
        f = a["f"] if s.forget_gate == "own" else (1 - i if s.forget_gate == "coupled" else one)
        o = a.get("o", one)
        hc = c.tanh() if s.output_activation else c
        dy = dy + d_out[t]
        dc = dc + dy * o * ((1 - hc * hc) if s.output_activation else 1)
        if "o" in a:
            do = dy * hc + (dact[:, 2 * H :] if dact is not None else 0)
            d["o"].copy_(do * o * (1 - o))
            if "o" in s.peepholes:
                dc = dc + d["o"] * p_o
        z = a["z"]
        d["z"].copy_(dc * i * ((1 - z * z) if s.input_activation else 1))
        if "i" in a:
            di = dc * z - (dc * c_prev if s.forget_gate == "coupled" else 0)
            d["i"].copy_((di + (dact[:, :H] if dact is not None else 0)) * i * (1 - i))
        if "f" in a:
            d["f"].copy_((dc * c_prev + (dact[:, H : 2 * H] if dact is not None else 0)) * f * (1 - f))
        dc = dc * f + (d["i"] * p_i if "i" in s.peepholes else 0) + (d["f"] * p_f if "f" in s.peepholes else 0)
        dy = dgates[t] @ w_hh
        if dact is not None:
            dact = dgates[t][:, : 3 * H] @ w_gg
    dg = dgates.view(T * B, -1)
    dx = (dg @ w_ih).view(T, B, E)
    dw_ih.copy_(dg.t() @ x.reshape(T * B, E))
    dw_hh.copy_(dg.t() @ torch.cat([h0.unsqueeze(0), out[:-1]]).view(T * B, H))
    c_prevs = torch.cat([c0.unsqueeze(0), cells[:-1]])
    if s.full_gate_recurrence:
        a_prevs = torch.cat([a0.unsqueeze(0), gates[:-1, :, : 3 * H]]).reshape(T * B, 3 * H)
        dw_gg.copy_(dg[:, : 3 * H].t() @ a_prevs)

    def peephole(gate: str, with_: Tensor) -> Tensor:
        if gate not in s.peepholes:
            return x.new_empty(0)
        k = s.index(gate)
        return (dgates[:, :, k * H : (k + 1) * H] * with_).sum((0, 1))

    empty = x.new_empty(0)
    return [
        dx,
        dy,
        dc,
        dact if dact is not None else empty,
        dg.sum(0),
        peephole("i", c_prevs),
        peephole("f", c_prevs),
        peephole("o", cells),
    ]


# --------------------------------------------------------------------------- dispatch


def _ops_for(x: Tensor):
    kernels = load_kernels() if x.device.type == "cpu" else None
    if kernels is None:
        return forward_python, backward_python

    def forward(x, h0, c0, a0, w_ih, w_hh, w_gg, bias, p_i, p_f, p_o, s, store):
        return kernels.variant_forward(x, h0, c0, a0, w_ih, w_hh, w_gg, bias, p_i, p_f, p_o, s.flags(), store)

    def backward(
        d_out,
        d_yT,
        d_cT,
        d_aT,
        x,
        h0,
        c0,
        a0,
        w_ih,
        w_hh,
        w_gg,
        p_i,
        p_f,
        p_o,
        out,
        gates,
        cells,
        s,
        dw_ih,
        dw_hh,
        dw_gg,
    ):
        return kernels.variant_backward(
            d_out,
            d_yT,
            d_cT,
            d_aT,
            x,
            h0,
            c0,
            a0,
            w_ih,
            w_hh,
            w_gg,
            p_i,
            p_f,
            p_o,
            out,
            gates,
            cells,
            s.flags(),
            dw_ih,
            dw_hh,
            dw_gg,
        )

    return forward, backward


# --------------------------------------------------------------------------- autograd


class VariantLayerFunction(torch.autograd.Function):
    """One variant layer over a sequence. Inputs: x, y0, c0, a0 (FGR's previous gates, else
    empty), bias, the three peephole vectors (empty where absent), the cell, its packed
    buffers, then its matrices (row blocks of the buffers). Outputs: out, y_T, c_T, a_T."""

    @staticmethod
    def forward(ctx, x, y0, c0, a0, bias, p_i, p_f, p_o, cell, buffers, *weights):
        s = cell.structure()
        w_ih, w_hh, w_gg = (*buffers, x.new_empty(0))[:3]
        forward, backward = _ops_for(x)
        out, y_T, c_T, a_T, gates, cells = forward(x, y0, c0, a0, w_ih, w_hh, w_gg, bias, p_i, p_f, p_o, s, True)
        ctx.structure, ctx.buffers, ctx.backward_op = s, buffers, backward
        ctx.block_rows = [[w.shape[0] for w in group] for group in cell.packed_groups()]
        ctx.save_for_backward(x, y0, c0, a0, w_ih, w_hh, w_gg, p_i, p_f, p_o, out, gates, cells)
        return out, y_T, c_T, a_T

    @staticmethod
    def backward(ctx, d_out, d_yT, d_cT, d_aT):
        x, y0, c0, a0, w_ih, w_hh, w_gg, p_i, p_f, p_o, out, gates, cells = ctx.saved_tensors
        grads = [torch.empty_like(b) for b in ctx.buffers]
        dw_ih, dw_hh, dw_gg = (*grads, x.new_empty(0))[:3]
        s = ctx.structure
        d_aT = d_aT.contiguous() if s.full_gate_recurrence else x.new_empty(0)
        dx, dy0, dc0, da0, dbias, dp_i, dp_f, dp_o = ctx.backward_op(
            d_out.contiguous(),
            d_yT.contiguous(),
            d_cT.contiguous(),
            d_aT,
            x,
            y0,
            c0,
            a0,
            w_ih,
            w_hh,
            w_gg,
            p_i,
            p_f,
            p_o,
            out,
            gates,
            cells,
            s,
            dw_ih,
            dw_hh,
            dw_gg,
        )
        weight_grads = [g for grad, rows in zip(grads, ctx.block_rows) for g in grad.split(rows)]
        present = [dp if p.numel() else None for dp, p in ((dp_i, p_i), (dp_f, p_f), (dp_o, p_o))]
        return (dx, dy0, dc0, da0 if s.full_gate_recurrence else None, dbias, *present, None, None, *weight_grads)


def variant_layer(cell, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Run a zoo cell over x (T, B, E) from `state`: (out (T, B, H), its last state)."""
    s = cell.structure()
    buffers = packed_buffers(cell)
    bias = cell.packed_bias()
    H = cell.hidden_size
    x, y0, c0 = x.contiguous(), state[0].contiguous(), state[1].contiguous()
    a0 = torch.cat(state[2:5], dim=1) if s.full_gate_recurrence else x.new_empty(0)
    peeps = {g: getattr(cell, f"p_{g}") if g in s.peepholes else x.new_empty(0) for g in "ifo"}
    weights = [w for group in cell.packed_groups() for w in group]
    inputs = (x, y0, c0, a0, bias, *peeps.values(), *weights)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        out, y, c, a = VariantLayerFunction.apply(x, y0, c0, a0, bias, *peeps.values(), cell, buffers, *weights)
    else:  # evaluation: nothing is stored for a backward pass
        forward, _ = _ops_for(x)
        w_ih, w_hh, w_gg = (*buffers, x.new_empty(0))[:3]
        out, y, c, a, _, _ = forward(x, y0, c0, a0, w_ih, w_hh, w_gg, bias, *peeps.values(), s, False)
    if s.full_gate_recurrence:
        return out, (y, c, a[:, :H], a[:, H : 2 * H], a[:, 2 * H :])
    return out, (y, c)
