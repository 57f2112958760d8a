"""The hand-written cells are right: torch.nn.LSTM with mapped weights, gradcheck, numpy BPTT."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from helpers import gradcheck_stack
from lstm_sweep.model.cells import ModelOneCell, ModelTwoCell
from lstm_sweep.model.registry import CELLS
from lstm_sweep.model.stack import CellStack, TorchLSTMStack, build_stack
from numpy_lstm import stack_forward_backward

T, B, E, H = 6, 3, 5, 4
TORCH_GATES = "ifgo"  # nn.LSTM's row blocks
ONE_FOR_TORCH = {"i": "i", "f": "f", "g": "c", "o": "o"}  # model one calls the g gate ĉ


def blocks(tensor, gate):
    j = TORCH_GATES.index(gate)
    return tensor[j * H : (j + 1) * H]


@torch.no_grad()
def copy_torch_weights(stack: CellStack, lstm: nn.LSTM) -> None:
    """Set our cells to compute exactly what `lstm` computes."""
    for k, cell in enumerate(stack.layers):
        w_ih, w_hh = getattr(lstm, f"weight_ih_l{k}"), getattr(lstm, f"weight_hh_l{k}")
        b_ih, b_hh = getattr(lstm, f"bias_ih_l{k}"), getattr(lstm, f"bias_hh_l{k}")
        for g in TORCH_GATES:
            if isinstance(cell, ModelTwoCell):
                getattr(cell, f"W_i{g}").copy_(blocks(w_ih, g))
                getattr(cell, f"W_h{g}").copy_(blocks(w_hh, g))
                getattr(cell, f"b_i{g}").copy_(blocks(b_ih, g))
                getattr(cell, f"b_h{g}").copy_(blocks(b_hh, g))
            else:  # W_g = [W_hg | W_ig], b_g = b_ig + b_hg
                one = ONE_FOR_TORCH[g]
                getattr(cell, f"W_{one}").copy_(torch.cat([blocks(w_hh, g), blocks(w_ih, g)], dim=1))
                getattr(cell, f"b_{one}").copy_(blocks(b_ih, g) + blocks(b_hh, g))


def torch_grads_as_ours(cell, lstm: nn.LSTM, k: int) -> dict:
    """nn.LSTM's parameter gradients, rearranged into our cell's parameter names."""
    gw_ih, gw_hh = getattr(lstm, f"weight_ih_l{k}").grad, getattr(lstm, f"weight_hh_l{k}").grad
    gb_ih, gb_hh = getattr(lstm, f"bias_ih_l{k}").grad, getattr(lstm, f"bias_hh_l{k}").grad
    out = {}
    for g in TORCH_GATES:
        if isinstance(cell, ModelTwoCell):
            out[f"W_i{g}"], out[f"W_h{g}"] = blocks(gw_ih, g), blocks(gw_hh, g)
            out[f"b_i{g}"], out[f"b_h{g}"] = blocks(gb_ih, g), blocks(gb_hh, g)
        else:
            one = ONE_FOR_TORCH[g]
            out[f"W_{one}"] = torch.cat([blocks(gw_hh, g), blocks(gw_ih, g)], dim=1)
            out[f"b_{one}"] = blocks(gb_ih, g)  # the same as blocks(gb_hh, g)
    return out


def random_problem(num_layers, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, E, generator=g, dtype=torch.float64)
    states = [
        (torch.randn(B, H, generator=g, dtype=torch.float64), torch.randn(B, H, generator=g, dtype=torch.float64))
        for _ in range(num_layers)
    ]
    # Random weights on every output make every gradient path matter.
    g_out = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    g_states = [
        (torch.randn(B, H, generator=g, dtype=torch.float64), torch.randn(B, H, generator=g, dtype=torch.float64))
        for _ in range(num_layers)
    ]
    return x, states, g_out, g_states


def loss_of(out, finals, g_out, g_states):
    return (out * g_out).sum() + sum((h * gh).sum() + (c * gc).sum() for (h, c), (gh, gc) in zip(finals, g_states))


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["one", "two"])
def test_matches_torch_lstm_with_mapped_weights(cell, num_layers):
    torch.manual_seed(1)
    lstm = nn.LSTM(E, H, num_layers).double()
    stack = CellStack(cell, E, H, num_layers, impl="reference").double()
    copy_torch_weights(stack, lstm)
    x, states, g_out, g_states = random_problem(num_layers)

    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours_states = [(h.clone().requires_grad_(), c.clone().requires_grad_()) for h, c in states]
    out, finals = stack(x_ours, ours_states)
    loss_of(out, finals, g_out, g_states).backward()

    h0 = torch.stack([h for h, _ in states]).requires_grad_()
    c0 = torch.stack([c for _, c in states]).requires_grad_()
    ref_out, (ref_h, ref_c) = lstm(x_ref, (h0, c0))
    loss_of(ref_out, list(zip(ref_h, ref_c)), g_out, g_states).backward()

    tol = 1e-10
    assert (out - ref_out).abs().max() < tol
    for k, (h, c) in enumerate(finals):
        assert (h - ref_h[k]).abs().max() < tol and (c - ref_c[k]).abs().max() < tol
    assert (x_ours.grad - x_ref.grad).abs().max() < tol
    for k, cell_k in enumerate(stack.layers):
        assert (ours_states[k][0].grad - h0.grad[k]).abs().max() < tol
        assert (ours_states[k][1].grad - c0.grad[k]).abs().max() < tol
        expected = torch_grads_as_ours(cell_k, lstm, k)
        assert set(expected) == {name for name, _ in cell_k.named_parameters()}
        for name, param in cell_k.named_parameters():
            assert (param.grad - expected[name]).abs().max() < tol, name


def test_zero_initial_state_is_the_default():
    torch.manual_seed(0)
    stack = CellStack("one", E, H, 2, impl="reference").double()
    x = torch.randn(T, B, E, dtype=torch.float64)
    zeros = [(torch.zeros(B, H, dtype=torch.float64), torch.zeros(B, H, dtype=torch.float64))] * 2
    out_default, _ = stack(x)
    out_zero, _ = stack(x, zeros)
    assert torch.equal(out_default, out_zero)


@pytest.mark.parametrize("cell,num_layers", [("one", 1), ("two", 1), ("one", 2), ("two", 2)])
def test_gradcheck(cell, num_layers):
    torch.manual_seed(2)
    assert gradcheck_stack(CellStack(cell, 3, 2, num_layers, impl="reference"), seed=2)


def numpy_layers_from(stack):
    """Our cells' weights in the numpy reference's model-one form."""
    layers = []
    for cell in stack.layers:
        if isinstance(cell, ModelOneCell):
            W = {g: getattr(cell, f"W_{g}").detach().numpy() for g in "fico"}
            b = {g: getattr(cell, f"b_{g}").detach().numpy() for g in "fico"}
        else:
            two = {"f": "f", "i": "i", "c": "g", "o": "o"}
            W = {
                g: np.concatenate(
                    [getattr(cell, f"W_h{t}").detach().numpy(), getattr(cell, f"W_i{t}").detach().numpy()], axis=1
                )
                for g, t in two.items()
            }
            b = {g: (getattr(cell, f"b_i{t}") + getattr(cell, f"b_h{t}")).detach().numpy() for g, t in two.items()}
        layers.append({"W": W, "b": b})
    return layers


def numpy_grads_as_ours(cell, dW, db, H_):
    if isinstance(cell, ModelOneCell):
        return {**{f"W_{g}": dW[g] for g in "fico"}, **{f"b_{g}": db[g] for g in "fico"}}
    out = {}
    for g, t in {"f": "f", "i": "i", "c": "g", "o": "o"}.items():
        out[f"W_h{t}"], out[f"W_i{t}"] = dW[g][:, :H_], dW[g][:, H_:]
        out[f"b_i{t}"] = out[f"b_h{t}"] = db[g]
    return out


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["one", "two"])
def test_matches_numpy_bptt(cell, num_layers):
    torch.manual_seed(3)
    stack = CellStack(cell, E, H, num_layers, impl="reference").double()
    x, states, g_out, g_states = random_problem(num_layers, seed=4)
    x = x.requires_grad_()
    states = [(h.requires_grad_(), c.requires_grad_()) for h, c in states]
    out, finals = stack(x, states)
    loss_of(out, finals, g_out, g_states).backward()

    np_out, np_finals, np_grads, np_dx = stack_forward_backward(
        x.detach().numpy(),
        [(h.detach().numpy(), c.detach().numpy()) for h, c in states],
        numpy_layers_from(stack),
        g_out.numpy(),
        [(gh.numpy(), gc.numpy()) for gh, gc in g_states],
    )

    tol = 1e-10
    assert np.abs(out.detach().numpy() - np_out).max() < tol
    assert np.abs(x.grad.numpy() - np_dx).max() < tol
    for k, cell_k in enumerate(stack.layers):
        (h, c), (nh, nc) = finals[k], np_finals[k]
        assert np.abs(h.detach().numpy() - nh).max() < tol and np.abs(c.detach().numpy() - nc).max() < tol
        dW, db, dh0, dc0 = np_grads[k]
        assert np.abs(states[k][0].grad.numpy() - dh0).max() < tol
        assert np.abs(states[k][1].grad.numpy() - dc0).max() < tol
        expected = numpy_grads_as_ours(cell_k, dW, db, H)
        for name, param in cell_k.named_parameters():
            assert np.abs(param.grad.numpy() - expected[name]).max() < tol, name


# ----------------------------------------------------------------------------- parameters, init


def test_parameter_names_and_shapes_follow_the_equations():
    one = dict(ModelOneCell(E, H).named_parameters())
    assert {n: tuple(p.shape) for n, p in one.items()} == {
        **{f"W_{g}": (H, H + E) for g in "fico"},
        **{f"b_{g}": (H,) for g in "fico"},
    }
    two = dict(ModelTwoCell(E, H).named_parameters())
    assert {n: tuple(p.shape) for n, p in two.items()} == {
        **{f"W_i{g}": (H, E) for g in "ifgo"},
        **{f"W_h{g}": (H, H) for g in "ifgo"},
        **{f"b_i{g}": (H,) for g in "ifgo"},
        **{f"b_h{g}": (H,) for g in "ifgo"},
    }


def test_linear_init_uses_each_matrix_fan_in():
    torch.manual_seed(0)
    E_, H_ = 100, 9  # fan-ins far apart: 1/√109 for model one, 1/√100 and 1/√9 for model two
    one = ModelOneCell(E_, H_, init="linear")
    for g in "fico":
        bound = 1 / math.sqrt(E_ + H_)
        for p in (getattr(one, f"W_{g}"), getattr(one, f"b_{g}")):
            assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound
    two = ModelTwoCell(E_, H_, init="linear")
    for g in "ifgo":
        for side, fan_in in (("i", E_), ("h", H_)):
            bound = 1 / math.sqrt(fan_in)
            W = getattr(two, f"W_{side}{g}")
            assert W.abs().max() <= bound and W.abs().max() > 0.8 * bound
            assert getattr(two, f"b_{side}{g}").abs().max() <= bound


def test_linear_init_draws_like_nn_linear():
    torch.manual_seed(5)
    cell = ModelOneCell(E, H, init="linear")
    torch.manual_seed(5)
    reference = nn.Linear(H + E, H)  # the course built its forget gate like this
    assert torch.equal(cell.W_f, reference.weight) and torch.equal(cell.b_f, reference.bias)


def test_uniform_and_normal_inits():
    torch.manual_seed(0)
    cell = ModelTwoCell(50, 25, init="uniform")
    for p in cell.parameters():
        assert p.abs().max() <= 1 / math.sqrt(25)
    cell = ModelOneCell(200, 200, init="normal")
    for g in "fico":
        assert torch.count_nonzero(getattr(cell, f"b_{g}")) == 0
        assert abs(getattr(cell, f"W_{g}").std().item() - 0.01) < 0.001


def test_torch_baseline_follows_the_same_init_rule():
    torch.manual_seed(0)
    stack = TorchLSTMStack(100, 9, 1, init="linear")
    assert stack.lstm.weight_ih_l0.abs().max() <= 1 / math.sqrt(100)
    assert stack.lstm.weight_hh_l0.abs().max() > 1 / math.sqrt(100)  # fan-in 9: wider
    assert stack.lstm.weight_hh_l0.abs().max() <= 1 / math.sqrt(9)


def test_torch_baseline_has_the_stack_interface():
    torch.manual_seed(0)
    ours = CellStack("two", E, H, 2, impl="reference").double()
    base = TorchLSTMStack(E, H, 2).double()
    copy_torch_weights(ours, base.lstm)
    x, states, _, _ = random_problem(2)
    out_a, finals_a = ours(x, states)
    out_b, finals_b = base(x, states)
    assert (out_a - out_b).abs().max() < 1e-12
    for (ha, ca), (hb, cb) in zip(finals_a, finals_b):
        assert (ha - hb).abs().max() < 1e-12 and (ca - cb).abs().max() < 1e-12


# ----------------------------------------------------------------------------- dropout, errors


@pytest.mark.parametrize("cell", [*sorted(CELLS), "torch"])
def test_dropout_acts_between_layers_and_on_top_only(cell):
    torch.manual_seed(0)
    stack = build_stack(cell, E, H, 2, dropout=0.5).double()
    x = torch.randn(T, B, E, dtype=torch.float64)
    stack.eval()
    _, clean = stack(x)
    stack.train()
    out, noisy = stack(x)
    # Layer 1 sees undropped input and nothing is dropped along time: its final state is exact.
    assert all(torch.allclose(a, b) for a, b in zip(noisy[0], clean[0]))
    assert not torch.allclose(noisy[1][0], clean[1][0])  # layer 2's input was dropped
    assert (out == 0).float().mean() > 0.3  # and so is the top output


# ----------------------------------------------------------------------------- GRU and RNN

GRU_GATES, RNN_GATES = "rzn", ""


@torch.no_grad()
def copy_torch_rnn_weights(stack: CellStack, reference: nn.Module, gates: str) -> None:
    """Our GRU/RNN cells from nn.GRU / nn.RNN: the same matrices, row block by row block."""
    for k, cell in enumerate(stack.layers):
        for side, kind in (("i", "ih"), ("h", "hh")):
            weight, bias = getattr(reference, f"weight_{kind}_l{k}"), getattr(reference, f"bias_{kind}_l{k}")
            if not gates:
                getattr(cell, f"W_{kind}").copy_(weight)
                getattr(cell, f"b_{kind}").copy_(bias)
            for j, g in enumerate(gates):
                getattr(cell, f"W_{side}{g}").copy_(weight[j * H : (j + 1) * H])
                getattr(cell, f"b_{side}{g}").copy_(bias[j * H : (j + 1) * H])


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell,torch_class,gates", [("gru", nn.GRU, GRU_GATES), ("rnn", nn.RNN, RNN_GATES)])
def test_gru_and_rnn_match_torch_with_mapped_weights(cell, torch_class, gates, num_layers):
    torch.manual_seed(6)
    reference = torch_class(E, H, num_layers).double()
    stack = CellStack(cell, E, H, num_layers).double()
    copy_torch_rnn_weights(stack, reference, gates)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(T, B, E, generator=g, dtype=torch.float64)
    h0 = torch.randn(num_layers, B, H, generator=g, dtype=torch.float64)
    g_out = torch.randn(T, B, H, generator=g, dtype=torch.float64)
    g_h = torch.randn(num_layers, B, H, generator=g, dtype=torch.float64)

    x_ours, x_ref = x.clone().requires_grad_(), x.clone().requires_grad_()
    h_ours, h_ref = h0.clone().requires_grad_(), h0.clone().requires_grad_()
    out, finals = stack(x_ours, [(h_ours[k],) for k in range(num_layers)])
    ((out * g_out).sum() + sum((h * g_h[k]).sum() for k, (h,) in enumerate(finals))).backward()
    ref_out, ref_h = reference(x_ref, h_ref)
    ((ref_out * g_out).sum() + (ref_h * g_h).sum()).backward()

    tol = 1e-10
    assert (out - ref_out).abs().max() < tol
    assert all((h - ref_h[k]).abs().max() < tol for k, (h,) in enumerate(finals))
    assert (x_ours.grad - x_ref.grad).abs().max() < tol and (h_ours.grad - h_ref.grad).abs().max() < tol
    for k, layer in enumerate(stack.layers):
        for side, kind in (("i", "ih"), ("h", "hh")):
            w_grad = getattr(reference, f"weight_{kind}_l{k}").grad
            b_grad = getattr(reference, f"bias_{kind}_l{k}").grad
            names = (
                [(f"W_{kind}", f"b_{kind}", slice(None))]
                if not gates
                else [(f"W_{side}{g}", f"b_{side}{g}", slice(j * H, (j + 1) * H)) for j, g in enumerate(gates)]
            )
            for w_name, b_name, rows in names:
                assert (getattr(layer, w_name).grad - w_grad[rows]).abs().max() < tol, w_name
                assert (getattr(layer, b_name).grad - b_grad[rows]).abs().max() < tol, b_name


@pytest.mark.parametrize("cell", ["gru", "rnn"])
def test_gru_and_rnn_gradcheck(cell):
    torch.manual_seed(8)
    stack = CellStack(cell, 3, 2, 2).double()
    names = [name for name, _ in stack.named_parameters()]

    def fn(x, h1, h2, *params):
        out, finals = torch.func.functional_call(stack, dict(zip(names, params)), (x, [(h1,), (h2,)]))
        return (out, finals[0][0], finals[1][0])

    params = [p.detach().clone().requires_grad_() for p in stack.parameters()]
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    h = [torch.randn(2, 2, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    assert torch.autograd.gradcheck(fn, (x, *h, *params))
