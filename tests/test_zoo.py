"""The LSTM variants of Greff et al.: each step against an independent numpy oracle, NP equal
to model two, and the variants' fast path (compiled and pure-PyTorch) equal to their step
definition, gradients included."""

import numpy as np
import pytest
import torch

from helpers import gradcheck_stack
from lstm_sweep.model import fast
from lstm_sweep.model.cells import ModelTwoCell
from lstm_sweep.model.check import check_cell
from lstm_sweep.model.registry import CELLS
from lstm_sweep.model.stack import CellStack
from lstm_sweep.model.zoo import GreffCell
from numpy_greff import CHANGES, greff_step

ZOO = sorted(CHANGES)
T, B, E, H = 7, 3, 6, 5  # H = 5: the vector loops' tails run too


def test_the_zoo_is_the_nine_cells_of_the_study():
    assert {name for name, cell in CELLS.items() if issubclass(cell, GreffCell)} == set(ZOO)


@pytest.mark.parametrize("variant", ZOO)
def test_each_variant_steps_as_the_papers_equations_say(variant):
    torch.manual_seed(0)
    cell = CELLS[variant](E, H).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(B, E, generator=g, dtype=torch.float64)
    state = tuple(torch.randn(B, H, generator=g, dtype=torch.float64) for _ in range(cell.state_tensors))
    params = {name: p.detach().numpy() for name, p in cell.named_parameters()}
    expected = greff_step(variant, params, x.numpy(), tuple(s.numpy() for s in state))
    with torch.no_grad():
        got = cell(x, state)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert np.abs(a.numpy() - b).max() < 1e-12


@pytest.mark.parametrize("variant", ZOO)
def test_a_removed_part_has_no_parameters(variant):
    names = set(dict(CELLS[variant](E, H).named_parameters()))
    changes = CHANGES[variant]
    gates = {"z", "i", "f", "o"} - {"i" if "NIG" in changes else "", "o" if "NOG" in changes else ""}
    if changes & {"NFG", "CIFG"}:
        gates.discard("f")
    expected = {f"{kind}_{g}" for g in gates for kind in "WRb"}
    if "NP" not in changes:
        expected |= {f"p_{g}" for g in gates - {"z"}}
    if "FGR" in changes:
        expected |= {"G_i", "G_f", "G_o"}
    assert names == expected


def test_np_is_model_two_under_the_parameter_mapping():
    """NP: W_g, R_g ↔ model two's W_ig, W_hg (z ↔ g), and one bias b_g = b_ig + b_hg."""
    torch.manual_seed(2)
    two, no_peepholes = ModelTwoCell(E, H).double(), CELLS["np"](E, H).double()
    with torch.no_grad():
        for ours, theirs in zip("ifoz", "ifog"):
            getattr(no_peepholes, f"W_{ours}").copy_(getattr(two, f"W_i{theirs}"))
            getattr(no_peepholes, f"R_{ours}").copy_(getattr(two, f"W_h{theirs}"))
            getattr(no_peepholes, f"b_{ours}").copy_(getattr(two, f"b_i{theirs}") + getattr(two, f"b_h{theirs}"))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(T, B, E, generator=g, dtype=torch.float64)
    state = (torch.randn(B, H, generator=g, dtype=torch.float64), torch.randn(B, H, generator=g, dtype=torch.float64))
    out_two, out_np = state, state
    for x_t in x:
        out_two, out_np = two(x_t, out_two), no_peepholes(x_t, out_np)
    assert all((a - b).abs().max() < 1e-12 for a, b in zip(out_two, out_np))


@pytest.fixture(params=["compiled", "python"])
def kernels(request, monkeypatch):
    """The variants' fast path with the compiled kernel, then with its pure-PyTorch twin."""
    if request.param == "python":
        monkeypatch.setattr(fast, "load_kernels", lambda: None)
        monkeypatch.setattr("lstm_sweep.model.fast_variants.load_kernels", lambda: None)
    else:
        assert fast.load_kernels() is not None, "the C++ kernels did not compile on this machine"
    return request.param


def run(stack, x, states, seed=9):
    """Outputs, final states and every gradient of a random loss over all of them."""
    x = x.clone().requires_grad_()
    states = None if states is None else [tuple(t.clone().requires_grad_() for t in s) for s in states]
    out, finals = stack(x, states)
    g = torch.Generator().manual_seed(seed)
    loss = (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum()
    loss = loss + sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for s in finals for t in s)
    loss.backward()
    grads = [x.grad, *(p.grad for p in stack.parameters())]
    if states is not None:
        grads += [t.grad for s in states for t in s]
    return [out, *(t for s in finals for t in s), *grads]


@pytest.mark.parametrize("with_state", [True, False])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("variant", ZOO)
def test_the_fast_path_equals_the_step_definition(kernels, variant, num_layers, with_state):
    torch.manual_seed(4)
    reference = CellStack(variant, E, H, num_layers, impl="reference").double()
    fast_stack = CellStack(variant, E, H, num_layers, impl="fast").double()
    fast_stack.load_state_dict(reference.state_dict())
    g = torch.Generator().manual_seed(5)
    x = torch.randn(T, B, E, generator=g, dtype=torch.float64)
    states = None
    if with_state:
        states = [
            tuple(torch.randn(B, H, generator=g, dtype=torch.float64) for _ in range(layer.state_tensors))
            for layer in reference.layers
        ]
    for a, b in zip(run(reference, x, states), run(fast_stack, x, states)):
        assert (a - b).abs().max() < 1e-10


@pytest.mark.parametrize("variant", ZOO)
def test_the_fast_path_in_float32_stays_within_rounding(kernels, variant):
    torch.manual_seed(6)
    reference = CellStack(variant, E, H, 2, impl="reference")
    fast_stack = CellStack(variant, E, H, 2, impl="fast")
    fast_stack.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, E, generator=torch.Generator().manual_seed(7))
    for a, b in zip(run(reference, x, None), run(fast_stack, x, None)):
        assert (a - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item())


@pytest.mark.parametrize("variant", ZOO)
def test_gradcheck_through_the_fast_path(kernels, variant):
    assert gradcheck_stack(CellStack(variant, 3, 2, 2, impl="fast"), seed=8)


@pytest.mark.parametrize("variant", ZOO)
def test_evaluation_runs_the_fast_path_without_storing_and_gives_the_same_numbers(kernels, variant):
    torch.manual_seed(10)
    reference = CellStack(variant, E, H, 2, impl="reference").double()
    fast_stack = CellStack(variant, E, H, 2, impl="fast").double()
    fast_stack.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, E, dtype=torch.float64)
    with torch.no_grad():
        (out_r, finals_r), (out_f, finals_f) = reference(x), fast_stack(x)
    assert (out_r - out_f).abs().max() < 1e-12
    assert all((a - b).abs().max() < 1e-12 for r, f in zip(finals_r, finals_f) for a, b in zip(r, f))


@pytest.mark.parametrize("variant", ZOO)
def test_each_variant_passes_lstm_check_cell(variant):
    report = check_cell(CELLS[variant], label=variant)
    assert report.ok, report.table()
    mapped = next(c for c in report.checks if c.name == "= torch.nn.LSTMCell")
    assert mapped.passed is (True if variant == "np" else None)  # NP maps onto nn.LSTM, the others cannot
