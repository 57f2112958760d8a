"""The LSTM fast path (`model.impl=fast`) against the step-wise cells, for both of its kernels
(the variants' fast path: test_zoo.py)."""

import pytest
import torch

from helpers import gradcheck_stack
from lstm_sweep.model import fast
from lstm_sweep.model.cells import LSTMCell
from lstm_sweep.model.registry import CELLS
from lstm_sweep.model.stack import CellStack

FAST_CELLS = [name for name, cell in CELLS.items() if issubclass(cell, LSTMCell)]  # the LSTM kernel's cells
T, B, E, H = 7, 3, 6, 5  # H = 5 is not a multiple of any vector width: the tails run too


@pytest.fixture(params=["compiled", "python"])
def kernels(request, monkeypatch):
    """Run the test with the compiled kernels, then with their pure-PyTorch twin."""
    if request.param == "python":
        monkeypatch.setattr(fast, "load_kernels", lambda: None)
    else:
        assert fast.load_kernels() is not None, "the C++ kernels did not compile on this machine"
    return request.param


def pair(cell, num_layers, dtype, seed=0):
    torch.manual_seed(seed)
    reference = CellStack(cell, E, H, num_layers, impl="reference").to(dtype)
    fast_stack = CellStack(cell, E, H, num_layers, impl="fast").to(dtype)
    fast_stack.load_state_dict(reference.state_dict())
    return reference, fast_stack


def run(stack, x, states, g_out, g_states):
    x = x.clone().requires_grad_()
    states = None if states is None else [(h.clone().requires_grad_(), c.clone().requires_grad_()) for h, c in states]
    out, finals = stack(x, states)
    loss = (out * g_out).sum() + sum((h * gh).sum() + (c * gc).sum() for (h, c), (gh, gc) in zip(finals, g_states))
    loss.backward()
    grads = {"x": x.grad, **{n: p.grad for n, p in stack.named_parameters()}}
    if states is not None:
        for k, (h, c) in enumerate(states):
            grads[f"h0_{k}"], grads[f"c0_{k}"] = h.grad, c.grad
    return out, finals, grads


def problem(num_layers, dtype, with_state):
    g = torch.Generator().manual_seed(1)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    states = [(rand(B, H), rand(B, H)) for _ in range(num_layers)] if with_state else None
    return rand(T, B, E), states, rand(T, B, H), [(rand(B, H), rand(B, H)) for _ in range(num_layers)]


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", FAST_CELLS)
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_fast_matches_reference(kernels, cell, num_layers, with_state, dtype, tol):
    reference, fast_stack = pair(cell, num_layers, dtype)
    args = problem(num_layers, dtype, with_state)
    out_r, finals_r, grads_r = run(reference, *args)
    out_f, finals_f, grads_f = run(fast_stack, *args)

    def close(a, b):  # absolute in float64, relative to the tensor's scale in float32
        scale = 1.0 if dtype == torch.float64 else max(1.0, b.abs().max().item())
        return (a - b).abs().max().item() <= tol * scale

    assert close(out_f, out_r)
    for (h_f, c_f), (h_r, c_r) in zip(finals_f, finals_r):
        assert close(h_f, h_r) and close(c_f, c_r)
    assert grads_f.keys() == grads_r.keys()
    for name in grads_r:
        assert close(grads_f[name], grads_r[name]), name


@pytest.mark.parametrize("cell", FAST_CELLS)
def test_evaluation_skips_the_backward_state_and_gives_the_same_numbers(kernels, cell):
    reference, fast_stack = pair(cell, 2, torch.float64)
    x, states, _, _ = problem(2, torch.float64, with_state=True)
    with torch.no_grad():
        out_r, finals_r = reference(x, states)
        out_f, finals_f = fast_stack(x, states)
    assert (out_f - out_r).abs().max() < 1e-12
    assert all((a - b).abs().max() < 1e-12 for fr, ff in zip(finals_r, finals_f) for a, b in zip(fr, ff))


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", FAST_CELLS)
def test_fast_gradcheck_through_the_cells_own_parameters(kernels, cell, num_layers):
    torch.manual_seed(3)
    assert gradcheck_stack(CellStack(cell, 3, 2, num_layers, impl="fast"), seed=3)


@pytest.mark.parametrize("cell_class", [CELLS[name] for name in FAST_CELLS])
def test_packing_keeps_the_cells_own_parameters(kernels, cell_class):
    torch.manual_seed(4)
    cell = cell_class(E, H)
    before = {name: (p, p.detach().clone()) for name, p in cell.named_parameters()}
    buffers = fast.packed_buffers(cell)
    for name, p in cell.named_parameters():
        assert p is before[name][0] and torch.equal(p, before[name][1])  # same objects, same values
    assert sum(b.numel() for b in buffers) == sum(p.numel() for group in cell.packed_groups() for p in group)
    first = cell.packed_groups()[0][0]
    expected = first.detach() + 1.0
    with torch.no_grad():  # an optimizer's in-place update is what the packed weights read
        first.add_(1.0)
    assert torch.equal(fast.packed_buffers(cell)[0][:H], expected)


def test_packing_survives_a_dtype_change(kernels):
    torch.manual_seed(5)
    stack = CellStack("one", E, H, 1, impl="fast")
    x = torch.randn(T, B, E)
    out32, _ = stack(x)
    stack.double()  # replaces every parameter's data: the buffers must follow
    out64, _ = stack(x.double())
    assert out64.dtype == torch.float64 and (out64.float() - out32).abs().max() < 1e-5
    assert fast.packed_buffers(stack.layers[0])[0].dtype == torch.float64


def test_without_a_compiler_the_fast_path_falls_back_with_one_warning(monkeypatch, caplog):
    from torch.utils import cpp_extension

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension: c++: command not found")

    monkeypatch.setattr(fast, "_kernels", None)  # as in a fresh process
    monkeypatch.setattr(cpp_extension, "load", no_compiler)
    with caplog.at_level("WARNING", logger="lstm_sweep.model.fast"):
        assert fast.load_kernels() is None
        assert fast.load_kernels() is None  # decided once
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "c++: command not found" in warnings[0].getMessage()
    assert "pure-PyTorch fast path" in warnings[0].getMessage()
    reference, fast_stack = pair("two", 1, torch.float64)
    x, states, _, _ = problem(1, torch.float64, with_state=True)
    assert (fast_stack(x, states)[0] - reference(x, states)[0]).abs().max() < 1e-12


def test_the_kernel_cache_keeps_a_build_per_environment(monkeypatch):
    """Two virtualenvs (another torch, another Python, another compiler) must not share, and
    so rebuild over, one cached build; the same environment must find its own again."""
    flags = ["-mavx2"]
    name = fast.kernel_build_name("avx2", flags)
    assert fast.kernel_build_name("avx2", flags) == name
    names = {name, fast.kernel_build_name("avx2", ["-mavx2", "-mfma"])}
    for module, attribute, other in (
        (torch, "__version__", "9.9"),
        (torch, "__file__", "/elsewhere/torch/__init__.py"),
        (fast.sys, "version", "3.99"),
    ):
        with monkeypatch.context() as patch:
            patch.setattr(module, attribute, other)
            names.add(fast.kernel_build_name("avx2", flags))
    monkeypatch.setenv("CXX", "clang++")
    names.add(fast.kernel_build_name("avx2", flags))
    assert len(names) == 6
