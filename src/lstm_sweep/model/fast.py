"""The sequence-level fast path for both hand-written cells (`model.impl=fast`).

Each cell keeps its own parameters, names and initialisation; the fast path only stores
its gate matrices as row blocks of packed buffers (as nn.LSTM's `flatten_parameters` does
for cuDNN) and reads them as w_ih (4H, E) and w_hh (4H, H), gate blocks i, f, g, o — model
one's as the two column blocks of one (4H, H+E) matrix. Nothing is copied per step, and
the backward pass hands each parameter its row block of the packed gradient.
`LSTMLayerFunction` runs the whole sequence with a hand-derived BPTT backward:

- the input projection for all T steps is one GEMM;
- each step is one recurrent GEMM and one fused pass over the gates;
- the weight gradients are single GEMMs over all T·B rows.

The time loops run in a small C++ extension (csrc/lstm_kernels.cpp), compiled on first use
with torch's cpp_extension and cached; per step a Python loop costs ~30 small dispatches
where the compiled loop costs two, and at PTB shapes that overhead, not arithmetic, is
what separates a Python loop from nn.LSTM (README, "Speed"). Where no compiler is
available the same algorithm runs as the pure-PyTorch twin below, after one warning.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from pathlib import Path

import torch
from torch import Tensor

log = logging.getLogger(__name__)

KERNEL_SOURCE = Path(__file__).with_name("csrc") / "lstm_kernels.cpp"
_kernels = None
_kernels_lock = threading.Lock()


# --------------------------------------------------------------------------- pure PyTorch twin


def forward_python(
    x: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor, w_hh: Tensor, bias: Tensor, store: bool
) -> list[Tensor | None]:
    """The kernel's forward in PyTorch ops: {out, h_T, c_T, activations, cells}."""
    T, B, E = x.shape
    H = h0.shape[1]
    gates = torch.addmm(bias, x.reshape(T * B, E), w_ih.t()).view(T, B, 4 * H)
    out = x.new_empty(T, B, H)
    cells = x.new_empty(T, B, H) if store else None
    h, c = h0, c0
    for t in range(T):
        g = gates[t].addmm_(h, w_hh.t())
        g[:, : 2 * H].sigmoid_()
        g[:, 2 * H : 3 * H].tanh_()
        g[:, 3 * H :].sigmoid_()
        i, f, gg, o = g.chunk(4, dim=1)
        c = torch.addcmul(f * c, i, gg, out=cells[t]) if cells is not None else torch.addcmul(f * c, i, gg)
        h = torch.mul(o, torch.tanh(c), out=out[t])
    if cells is None:
        return [out, h.clone(), c.clone(), None, None]
    return [out, h.clone(), c.clone(), gates, cells]


def backward_python(d_out, d_hT, d_cT, x, h0, c0, w_ih, w_hh, out, gates, cells, dw_ih, dw_hh) -> list[Tensor]:
    """The kernel's BPTT backward in PyTorch ops: fills dw_ih, dw_hh; returns {dx, dh0, dc0, dbias}."""
    T, B, E = x.shape
    H = h0.shape[1]
    dgates = torch.empty_like(gates)
    dh, dc = d_hT.clone(), d_cT.clone()
    for t in reversed(range(T)):
        i, f, g, o = gates[t].chunk(4, dim=1)
        c_prev = cells[t - 1] if t > 0 else c0
        tc = torch.tanh(cells[t])
        dh = dh + d_out[t]
        dc = dc + dh * o * (1 - tc * tc)
        di, df, dg, do = dgates[t].chunk(4, dim=1)
        torch.mul(dc * g, i * (1 - i), out=di)
        torch.mul(dc * c_prev, f * (1 - f), out=df)
        torch.mul(dc * i, 1 - g * g, out=dg)
        torch.mul(dh * tc, o * (1 - o), out=do)
        dc = dc * f
        dh = dgates[t] @ w_hh
    dg_flat = dgates.view(T * B, 4 * H)
    dx = (dg_flat @ w_ih).view(T, B, E)
    dw_ih.copy_(dg_flat.t() @ x.reshape(T * B, E))
    h_prev = torch.cat([h0.unsqueeze(0), out[:-1]]).view(T * B, H)
    dw_hh.copy_(dg_flat.t() @ h_prev)
    return [dx, dh, dc, dg_flat.sum(0)]


# --------------------------------------------------------------------------- compiled kernels


def _compile_flags() -> tuple[str, list[str]]:
    """ATen's vector code for the best instruction set this CPU and torch build share."""
    capability = torch.backends.cpu.get_cpu_capability()
    if capability.startswith("AVX512"):
        return "avx512", [
            "-mavx512f",
            "-mavx512bw",
            "-mavx512vl",
            "-mavx512dq",
            "-mfma",
            "-DCPU_CAPABILITY=AVX512",
            "-DCPU_CAPABILITY_AVX512",
        ]
    if capability == "AVX2":
        return "avx2", ["-mavx2", "-mfma", "-DCPU_CAPABILITY=AVX2", "-DCPU_CAPABILITY_AVX2"]
    return "default", ["-DCPU_CAPABILITY=DEFAULT"]


def load_kernels():
    """The compiled ops (built on first use, then cached), or None where none can be built."""
    global _kernels
    with _kernels_lock:
        if _kernels is None:
            _kernels = _build_kernels() or False
        return _kernels or None


def kernel_build_name(isa: str, flags: list[str]) -> str:
    """The build's name in torch's extension cache, from everything that makes two builds
    differ: the source, the flags, the compiler, torch (its version and where it is, whose
    headers the build includes) and Python. Two environments on one machine thus keep a
    build each instead of rebuilding over each other's on every switch."""
    key = "\n".join(
        [
            KERNEL_SOURCE.read_text(),
            " ".join(flags),
            os.environ.get("CXX", "c++"),
            torch.__version__,
            os.path.dirname(torch.__file__),
            sys.version,
        ]
    )
    return f"lstm_sweep_kernels_{isa}_{hashlib.sha1(key.encode()).hexdigest()[:12]}"


def _build_kernels():
    try:
        from torch.utils import cpp_extension
    except ImportError as err:  # pragma: no cover - part of every torch build
        log.warning("fast LSTM kernels unavailable (%s); using the pure-PyTorch fast path", err)
        return None
    isa, flags = _compile_flags()
    name = kernel_build_name(isa, flags)
    try:
        start = time.perf_counter()
        cpp_extension.load(
            name=name, sources=[str(KERNEL_SOURCE)], is_python_module=False, extra_cflags=["-O3", *flags], verbose=False
        )
        if time.perf_counter() - start > 2:  # not just loaded from the cache
            log.info(
                "compiled the fast LSTM kernels (%s) in %.0f s; cached for later runs", isa, time.perf_counter() - start
            )
        return torch.ops.lstm_sweep
    except Exception as err:  # no compiler, no ninja, a read-only cache …
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        log.warning(
            "could not compile the fast LSTM kernels (%s); using the pure-PyTorch fast "
            "path, which is slower (set TORCH_EXTENSIONS_DIR to a writable folder, and "
            "install a C++ compiler and ninja, to get them)",
            first_line,
        )
        return None


def _ops_for(x: Tensor):
    kernels = load_kernels() if x.device.type == "cpu" else None
    if kernels is None:
        return forward_python, backward_python
    return kernels.lstm_forward, kernels.lstm_backward


# --------------------------------------------------------------------------- packed weights


def packed_buffers(cell) -> list[Tensor]:
    """The buffers holding `cell`'s gate matrices as row blocks, (re)built when needed.

    The parameters stay the cell's own nn.Parameters; only their storage moves into the
    buffers. Anything that replaces a parameter's data (`.to(dtype)`, unpickling) is
    noticed here and the buffers are rebuilt from the parameters' current values.
    """
    groups = cell.packed_groups()
    buffers = cell.__dict__.get("_packed_buffers")
    if buffers is None or not _still_packed(buffers, groups):
        buffers = []
        with torch.no_grad():
            for group in groups:
                buffer = torch.cat([p.detach() for p in group])
                for p, block in zip(group, buffer.split([q.shape[0] for q in group])):
                    p.data = block
                buffers.append(buffer)
        cell.__dict__["_packed_buffers"] = buffers  # not a module buffer: no second copy in state_dict
    return buffers


def _still_packed(buffers: list[Tensor], groups) -> bool:
    for buffer, group in zip(buffers, groups):
        row = 0
        for p in group:
            block = buffer[row : row + p.shape[0]]
            if (
                p.data_ptr() != block.data_ptr()
                or p.dtype != buffer.dtype
                or p.device != buffer.device
                or p.shape != block.shape
                or not p.is_contiguous()
            ):
                return False
            row += p.shape[0]
    return True


# --------------------------------------------------------------------------- autograd


class LSTMLayerFunction(torch.autograd.Function):
    """One LSTM layer over a sequence.

    Inputs: x (T, B, E), h0, c0, bias (4H), the cell, its packed buffers, then the gate
    matrices themselves (row blocks of the buffers) so that autograd hands them their
    gradients. Outputs: out (T, B, H), h_T, c_T.
    """

    @staticmethod
    def forward(ctx, x, h0, c0, bias, cell, buffers, *weights):
        w_ih, w_hh = cell.gate_weights(buffers)
        forward, backward = _ops_for(x)
        out, h_T, c_T, gates, cells = forward(x, h0, c0, w_ih, w_hh, bias, True)
        ctx.cell, ctx.buffers, ctx.backward_op = cell, buffers, backward
        ctx.block_rows = [[w.shape[0] for w in group] for group in cell.packed_groups()]
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, out, gates, cells)
        return out, h_T, c_T

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        x, h0, c0, w_ih, w_hh, out, gates, cells = ctx.saved_tensors
        grad_buffers = [torch.empty_like(b) for b in ctx.buffers]
        dw_ih, dw_hh = ctx.cell.gate_weights(grad_buffers)
        dx, dh0, dc0, dbias = ctx.backward_op(
            d_out.contiguous(),
            d_hT.contiguous(),
            d_cT.contiguous(),
            x,
            h0,
            c0,
            w_ih,
            w_hh,
            out,
            gates,
            cells,
            dw_ih,
            dw_hh,
        )
        weight_grads = [g for grad, rows in zip(grad_buffers, ctx.block_rows) for g in grad.split(rows)]
        return (dx, dh0, dc0, dbias, None, None, *weight_grads)


def lstm_layer(cell, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Run `cell` over x (T, B, E) from `state`; returns (out (T, B, H), (h_T, c_T))."""
    buffers = packed_buffers(cell)
    bias = cell.packed_bias()
    x, h0, c0 = x.contiguous(), state[0].contiguous(), state[1].contiguous()
    weights = [w for group in cell.packed_groups() for w in group]
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, h0, c0, bias, *weights)):
        out, h, c = LSTMLayerFunction.apply(x, h0, c0, bias, cell, buffers, *weights)
    else:  # evaluation: nothing is stored for a backward pass
        forward, _ = _ops_for(x)
        out, h, c, _, _ = forward(x, h0, c0, *cell.gate_weights(buffers), bias, False)
    return out, (h, c)
