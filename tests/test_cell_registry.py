"""Every cell of the registry (`CELLS`), checked the same way without a name being listed:
its state, its initialisation, determinism, gradients through a stack, a language-model step,
and its fast path where it claims one. (Each cell's own oracle — nn.LSTM, numpy BPTT, nn.GRU,
the variants' numpy step — is in test_cells.py and test_zoo.py; a user's cell is checked in
test_user_cells.py.)"""

import pytest
import torch

from helpers import gradcheck_stack
from lstm_sweep.model.lm import LanguageModel
from lstm_sweep.model.registry import CELLS, resolve_cell
from lstm_sweep.model.stack import CellStack

E, H, B, T = 5, 4, 3, 6
FAST = [name for name, cell in CELLS.items() if cell.has_fast_path]


def check_state(cell_class) -> None:
    cell = cell_class(E, H)
    x = torch.randn(B, E)
    state = cell.zero_state(B, x)
    assert isinstance(state, tuple) and len(state) == cell.state_tensors
    assert all(t.shape == (B, H) and not t.any() for t in state)
    after = cell(x, state)
    assert isinstance(after, tuple) and len(after) == cell.state_tensors
    assert all(t.shape == (B, H) and torch.isfinite(t).all() for t in after)


def check_initialisation(cell_class) -> None:
    """Every parameter is a gate weight or bias, or a vector, that `model.init`'s rules draw, and each rule
    draws it anew (nothing is left as torch.empty left it)."""
    cell = cell_class(E, H)
    declared = {id(t) for w, b, _ in cell.gate_parameters() for t in (w, b) if t is not None}
    declared |= {id(v) for v, _ in cell.vector_parameters()}
    assert declared == {id(p) for p in cell.parameters()}
    for init in ("linear", "uniform", "normal"):
        torch.manual_seed(0)
        drawn = cell_class(E, H, init=init)
        for name, p in drawn.named_parameters():
            assert torch.isfinite(p).all() and p.abs().max() < 1, (init, name)


def check_determinism(cell_class) -> None:
    outputs = []
    for _ in range(2):
        torch.manual_seed(3)
        stack = CellStack(cell_class, E, H, 2, impl="reference")
        outputs.append(stack(torch.ones(T, B, E))[0])
    assert torch.equal(*outputs)


def check_gradients(cell_class) -> None:
    assert gradcheck_stack(CellStack(cell_class, 3, 2, 2, impl="reference"), seed=5)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_registered_cell_has_a_zero_state_and_steps_to_a_state_of_its_shape(name):
    check_state(CELLS[name])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_registered_cell_initialises_every_parameter_by_the_rules(name):
    check_initialisation(CELLS[name])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_registered_cell_is_deterministic(name):
    check_determinism(CELLS[name])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_registered_cell_passes_gradcheck_through_a_two_layer_stack(name):
    check_gradients(CELLS[name])


@pytest.mark.parametrize("name", sorted(CELLS))
def test_every_registered_cell_is_a_model_cell_name_and_trains_a_language_model_step(name):
    assert resolve_cell(name) is CELLS[name]
    torch.manual_seed(0)
    model = LanguageModel(20, 8, 8, 2, cell=name)
    logits, _ = model(torch.randint(0, 20, (B, T)))
    torch.nn.functional.cross_entropy(logits.reshape(-1, 20), torch.randint(0, 20, (B * T,))).backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("name", FAST)
def test_a_cell_that_claims_a_fast_path_equals_its_step_definition(name):
    torch.manual_seed(1)
    reference = CellStack(name, E, H, 2, impl="reference").double()
    fast = CellStack(name, E, H, 2, impl="fast").double()
    fast.load_state_dict(reference.state_dict())
    x = torch.randn(T, B, E, dtype=torch.float64)
    (out_r, _), (out_f, _) = reference(x), fast(x)
    assert (out_r - out_f).abs().max() < 1e-10
