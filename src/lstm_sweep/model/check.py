"""Checking a cell before a sweep spends hours on it: what `lstm-check-cell` runs, what
`model.cell` must pass before any run starts (`contract_fault`, in milliseconds), and what a
user's own test suite can call:

    from lstm_sweep.model.check import assert_cell_passes
    def test_my_cell():
        assert_cell_passes(MyCell)

Every check builds small instances (float64 where it compares numbers) and says, in one
line, what it found: the state's arity and shapes, the zero state, the first step finite,
every parameter named by `gate_parameters`/`vector_parameters` and drawn by each
initialisation rule, a gradcheck of one step and of a short sequence through a 2-layer
stack, determinism, the fast path equal to the step definition where one is claimed, and
the oracles where there are any: a function the user gives, and `torch.nn.LSTM` for a
cell that maps its weights onto it (`torch_lstm_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from lstm_sweep.model.cells import RecurrentCell, State
from lstm_sweep.model.stack import CellStack, TorchLSTMStack
from lstm_sweep.model.timing import time_stacks

E, H, B, T = 5, 4, 3, 6  # odd sizes: no vector width divides them
INIT_RULES = ("linear", "uniform", "normal")
Oracle = Callable[[RecurrentCell, Tensor, State], State]  # (cell, x, state) -> the next state


@dataclass
class CheckResult:
    name: str
    passed: bool | None  # None: not applicable (no fast path claimed, no oracle given)
    detail: str = ""


@dataclass
class CellReport:
    cell: str
    checks: list[CheckResult] = field(default_factory=list)
    speed: str = ""

    @property
    def ok(self) -> bool:
        return all(c.passed is not False for c in self.checks)

    def table(self) -> str:
        width = max(len(c.name) for c in self.checks)
        mark = {True: "pass", False: "FAIL", None: "—"}
        lines = [f"{self.cell}:"]
        lines += [f"  {mark[c.passed]:<4}  {c.name:<{width}}  {c.detail}".rstrip() for c in self.checks]
        if self.speed:
            lines.append(f"  speed {self.speed}")
        verdict = "passes" if self.ok else f"fails {sum(c.passed is False for c in self.checks)} check(s)"
        lines.append(f"{self.cell} {verdict}")
        return "\n".join(lines)


def _state(cell: RecurrentCell, generator: torch.Generator, dtype=torch.float64) -> State:
    return tuple(torch.randn(B, cell.hidden_size, generator=generator, dtype=dtype) for _ in range(cell.state_tensors))


# --------------------------------------------------------------------------- the contract


def contract_fault(cell_class: type[RecurrentCell]) -> str | None:
    """What a tiny instance of the cell gets wrong about the contract (one line), or None."""
    for check in (check_construction, check_state, check_parameters, check_first_step):
        result = check(cell_class)
        if result.passed is False:
            return f"{result.name}: {result.detail}"
    return None


def _build(cell_class: type[RecurrentCell], init: str = "linear", dtype=torch.float64) -> RecurrentCell:
    return cell_class(E, H, init).to(dtype)


def check_construction(cell_class) -> CheckResult:
    name = "builds"
    try:
        cell = cell_class(E, H, "linear")
    except Exception as err:
        return CheckResult(
            name, False, f"{cell_class.__qualname__}({E}, {H}, 'linear') raised {type(err).__name__}: {err}"
        )
    if (cell.input_size, cell.hidden_size) != (E, H):
        return CheckResult(name, False, "it must call RecurrentCell.__init__(input_size, hidden_size)")
    return CheckResult(name, True, f"({E}, {H})")


def check_state(cell_class) -> CheckResult:
    name = "zero state"
    try:
        cell = _build(cell_class)
        state = cell.zero_state(B, torch.zeros(B, E, dtype=torch.float64))
    except Exception as err:
        return CheckResult(name, False, f"zero_state raised {type(err).__name__}: {err}")
    if not isinstance(state, tuple) or len(state) != cell.state_tensors:
        return CheckResult(
            name, False, f"a tuple of state_tensors={cell.state_tensors} tensors expected, got {_shapes(state)}"
        )
    if any(t.shape != (B, H) or t.any() for t in state):
        return CheckResult(
            name, False, f"each state tensor must be zeros of (batch, hidden) = ({B}, {H}), got {_shapes(state)}"
        )
    return CheckResult(name, True, f"{cell.state_tensors} × ({B}, {H})")


def check_first_step(cell_class) -> CheckResult:
    name = "one step"
    cell = _build(cell_class)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(B, E, generator=generator, dtype=torch.float64)
    for label, state in (("the zero state", cell.zero_state(B, x)), ("a random state", _state(cell, generator))):
        try:
            after = cell(x, state)
        except Exception as err:
            return CheckResult(name, False, f"from {label}, forward raised {type(err).__name__}: {err}")
        if not isinstance(after, tuple) or len(after) != cell.state_tensors or any(t.shape != (B, H) for t in after):
            return CheckResult(
                name,
                False,
                f"from {label}: a state of {cell.state_tensors} × ({B}, {H}) expected, got {_shapes(after)}",
            )
        if not all(torch.isfinite(t).all() for t in after):
            return CheckResult(name, False, f"from {label}, the step's state holds NaN or inf")
    return CheckResult(name, True, "the next state has the state's shapes, finite")


def check_parameters(cell_class) -> CheckResult:
    name = "initialisation"
    cell = _build(cell_class)
    try:
        declared = [t for w, b, _ in cell.gate_parameters() for t in (w, b) if t is not None]
        declared += [v for v, _ in cell.vector_parameters()]
    except Exception as err:
        return CheckResult(name, False, f"gate_parameters/vector_parameters raised {type(err).__name__}: {err}")
    named = dict(cell.named_parameters())
    missing = [n for n, p in named.items() if not any(p is d for d in declared)]
    if missing:
        return CheckResult(
            name,
            False,
            f"not named by gate_parameters or vector_parameters, so no rule draws them: {', '.join(missing)}",
        )
    for init in INIT_RULES:
        with torch.no_grad():  # NaN everywhere first: whatever the rule does not draw stays NaN
            for p in named.values():
                p.fill_(math.nan)
        cell.reset_parameters(init)
        undrawn = [n for n, p in named.items() if not torch.isfinite(p).all()]
        if undrawn:
            return CheckResult(name, False, f"model.init={init} leaves {', '.join(undrawn)} undrawn")
    return CheckResult(name, True, f"{len(named)} parameters, each drawn by {', '.join(INIT_RULES)}")


def _shapes(state) -> str:
    if isinstance(state, tuple):
        return "(" + ", ".join(str(tuple(t.shape)) if isinstance(t, Tensor) else type(t).__name__ for t in state) + ")"
    return type(state).__name__


# --------------------------------------------------------------------------- numbers


def check_step_gradients(cell_class) -> CheckResult:
    """torch.autograd.gradcheck of one step over x, the state and every parameter."""
    cell = _build(cell_class)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(2, E, generator=generator, dtype=torch.float64, requires_grad=True)
    state = tuple(
        torch.randn(2, H, generator=generator, dtype=torch.float64, requires_grad=True)
        for _ in range(cell.state_tensors)
    )
    names = [n for n, _ in cell.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in cell.parameters()]
    arity = cell.state_tensors

    def step(x, *rest):
        state, values = rest[:arity], rest[arity:]
        return torch.func.functional_call(cell, dict(zip(names, values)), (x, tuple(state)))

    return _gradcheck("gradcheck, one step", step, (x, *state, *params))


def check_sequence_gradients(cell_class) -> CheckResult:
    """gradcheck of 4 steps through a 2-layer stack (the step-by-step path), over everything."""
    stack = CellStack(cell_class, 3, 2, 2, impl="reference").double()
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(4, 2, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    arities = [layer.state_tensors for layer in stack.cells]
    states = [
        torch.randn(2, 2, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(sum(arities))
    ]
    names = [n for n, _ in stack.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in stack.parameters()]

    def run(x, *rest):
        flat, values = rest[: sum(arities)], rest[sum(arities) :]
        grouped, at = [], 0
        for arity in arities:
            grouped.append(tuple(flat[at : at + arity]))
            at += arity
        out, finals = torch.func.functional_call(stack, dict(zip(names, values)), (x, grouped))
        return (out, *[t for s in finals for t in s])

    return _gradcheck("gradcheck, 2 layers × 4 steps", run, (x, *states, *params))


def _gradcheck(name: str, fn, inputs) -> CheckResult:
    try:
        torch.autograd.gradcheck(fn, inputs, raise_exception=True)
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return CheckResult(name, False, first)
    return CheckResult(name, True, "analytic gradients = numerical (float64)")


def check_determinism(cell_class) -> CheckResult:
    outputs = []
    for _ in range(2):
        torch.manual_seed(3)
        stack = CellStack(cell_class, E, H, 2, impl="reference")
        outputs.append(stack(torch.ones(T, B, E))[0])
    same = torch.equal(*outputs)
    return CheckResult(
        "determinism",
        same,
        "one seed, the same parameters and outputs"
        if same
        else "two runs from one seed differ: the cell draws random numbers outside torch's generator",
    )


def check_fast_path(cell_class) -> CheckResult:
    """forward_sequence against stepping forward: outputs, final states and every gradient."""
    name = "fast path = step definition"
    if not cell_class.has_fast_path:
        return CheckResult(name, None, "none claimed (has_fast_path is False)")
    torch.manual_seed(4)
    reference = CellStack(cell_class, E, H, 2, impl="reference").double()
    fast = CellStack(cell_class, E, H, 2, impl="fast").double()
    fast.load_state_dict(reference.state_dict())
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(T, B, E, generator=generator, dtype=torch.float64)
    states = [_state(layer, generator) for layer in reference.cells]
    results = []
    for stack in (reference, fast):
        xi = x.clone().requires_grad_()
        si = [tuple(t.clone().requires_grad_() for t in s) for s in states]
        try:
            out, finals = stack(xi, si)
        except Exception as err:
            return CheckResult(name, False, f"forward_sequence raised {type(err).__name__}: {err}")
        (out.sin().sum() + sum(t.cos().sum() for s in finals for t in s)).backward()
        grads = [xi.grad, *(t.grad for s in si for t in s), *(p.grad for p in stack.parameters())]
        results.append([out, *(t for s in finals for t in s), *grads])
    worst = max(((a - b).abs().max().item() if a is not None and b is not None else math.inf) for a, b in zip(*results))
    ok = worst <= 1e-9
    return CheckResult(name, ok, f"largest difference {worst:.1e} over outputs, states and gradients (float64)")


def check_oracle(cell_class, oracle: Oracle | None) -> CheckResult:
    name = "your oracle"
    if oracle is None:
        return CheckResult(name, None, "none given (--oracle module.function)")
    return _against(name, cell_class, oracle)


def check_torch_lstm(cell_class) -> CheckResult:
    name = "= torch.nn.LSTMCell"
    if not hasattr(cell_class, "torch_lstm_weights"):
        return CheckResult(name, None, "no mapping onto nn.LSTM (torch_lstm_weights)")

    def lstm_step(cell, x, state):
        reference = nn.LSTMCell(cell.input_size, cell.hidden_size).to(x.dtype)
        with torch.no_grad():
            for param, value in zip(
                (reference.weight_ih, reference.weight_hh, reference.bias_ih, reference.bias_hh),
                cell.torch_lstm_weights(),
            ):
                param.copy_(value)
        return reference(x, (state[0], state[1]))

    return _against(name, cell_class, lstm_step)


def _against(name: str, cell_class, oracle: Oracle) -> CheckResult:
    cell = _build(cell_class)
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(B, E, generator=generator, dtype=torch.float64)
    state = _state(cell, generator)
    try:
        expected = tuple(oracle(cell, x, state))
    except Exception as err:
        return CheckResult(name, False, f"the oracle raised {type(err).__name__}: {err}")
    with torch.no_grad():
        got = cell(x, state)
    worst = max((a - b).abs().max().item() for a, b in zip(got, expected))
    return CheckResult(name, worst <= 1e-10, f"largest difference {worst:.1e} over the next state (float64)")


# --------------------------------------------------------------------------- all of it


def check_cell(
    cell_class: type[RecurrentCell],
    label: str | None = None,
    oracle: Oracle | None = None,
    speed_shape: tuple[int, int, int, int] | None = None,
    repeats: int = 10,
) -> CellReport:
    """Every check; the numerical ones only once the contract holds. With `speed_shape`
    (B, T, E, H), also forward + backward of one layer against torch.nn.LSTM."""
    report = CellReport(label or cell_class.__qualname__)
    for check in (check_construction, check_state, check_parameters, check_first_step):
        report.checks.append(check(cell_class))
        if report.checks[-1].passed is False:
            return report
    report.checks += [
        check_step_gradients(cell_class),
        check_sequence_gradients(cell_class),
        check_determinism(cell_class),
        check_fast_path(cell_class),
        check_oracle(cell_class, oracle),
        check_torch_lstm(cell_class),
    ]
    if speed_shape is not None:
        report.speed = speed(cell_class, speed_shape, repeats)
    return report


def speed(cell_class: type[RecurrentCell], shape: tuple[int, int, int, int], repeats: int) -> str:
    B_, T_, E_, H_ = shape
    torch.manual_seed(0)
    impl = "fast" if cell_class.has_fast_path else "reference"
    stacks = {"cell": CellStack(cell_class, E_, H_, 1, impl=impl), "torch": TorchLSTMStack(E_, H_, 1)}
    medians = time_stacks(stacks, shape, repeats, warmup=2)
    return (
        f"(B, T, E, H = {B_}, {T_}, {E_}, {H_}; {impl} path; forward + backward of one layer, median of "
        f"{repeats}): {medians['cell'] * 1e3:.2f} ms, {medians['torch'] / medians['cell']:.2f}× torch.nn.LSTM "
        f"({medians['torch'] * 1e3:.2f} ms)"
    )


def assert_cell_passes(cell_class: type[RecurrentCell], oracle: Oracle | None = None) -> None:
    """For a user's test suite: AssertionError with the whole table unless every check passes."""
    report = check_cell(cell_class, oracle=oracle)
    assert report.ok, report.table()
