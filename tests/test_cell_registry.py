"""Every cell of the registry (`CELLS`), checked the same way without a name being listed:
its state, its initialisation, determinism, gradients through a stack, a language-model step,
and its fast path where it claims one. The example cell of docs/add-your-own-cell.md passes
the same checks. (Each cell's own oracle — nn.LSTM, numpy BPTT, nn.GRU — is in test_cells.py.)"""

import re
from pathlib import Path

import pytest
import torch

from helpers import gradcheck_stack
from lstm_sweep.model import cells
from lstm_sweep.model.cells import CELLS
from lstm_sweep.model.config import ModelConfig
from lstm_sweep.model.lm import LanguageModel
from lstm_sweep.model.stack import CellStack

E, H, B, T = 5, 4, 3, 6
ROOT = Path(__file__).resolve().parents[1]
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
    """Every parameter is a gate weight or bias that `model.init`'s rules draw, and each rule
    draws it anew (nothing is left as torch.empty left it)."""
    cell = cell_class(E, H)
    declared = {id(t) for w, b, _ in cell.gate_parameters() for t in (w, b) if t is not None}
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
def test_every_registered_cell_is_a_model_cell_choice_and_trains_a_language_model_step(name):
    assert name in dict(ModelConfig.__dataclass_fields__)["cell"].metadata["choices"]
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


def documented_cell():
    """The example class of docs/add-your-own-cell.md, defined as a user would, in cells.py's terms."""
    page = (ROOT / "docs" / "add-your-own-cell.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", page, re.S)
    namespace = dict(vars(cells))
    exec(code, namespace)
    return namespace["CoupledCell"]


def test_the_documented_example_cell_passes_the_registry_checks():
    coupled = documented_cell()
    for check in (check_state, check_initialisation, check_determinism, check_gradients):
        check(coupled)
    torch.manual_seed(0)  # and it is the coupled LSTM it says: model two with f = 1 − i
    ours, two = coupled(E, H), cells.ModelTwoCell(E, H)
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(two, name).copy_(p)
        for side in "ih":  # a forget gate that always outputs 1 − i: -(the input gate's pre-activation)
            getattr(two, f"W_{side}f").copy_(-getattr(ours, f"W_{side}i"))
            getattr(two, f"b_{side}f").copy_(-getattr(ours, f"b_{side}i"))
    x, state = torch.randn(B, E), (torch.randn(B, H), torch.randn(B, H))
    for a, b in zip(ours(x, state), two(x, state)):
        assert torch.allclose(a, b, atol=1e-6)
