"""A user's own cell: named by its dotted path, a decorator or an entry point; checked in
one command; refused in one line when it breaks the contract; swept beside the built-ins.
The cell is the worked example of docs/add-your-own-cell.md, written out as a user would."""

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers import TINY, compose_run
from lstm_sweep.cli import check_cell as check_cell_cli
from lstm_sweep.errors import ConfigError
from lstm_sweep.model import stack as stack_module
from lstm_sweep.model.cells import REGISTERED, ModelTwoCell, RecurrentCell, register_cell
from lstm_sweep.model.check import assert_cell_passes
from lstm_sweep.model.registry import names, resolve_cell
from lstm_sweep.model.stack import CellStack
from lstm_sweep.run.config import check_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

BROKEN = """
import math
import torch
from lstm_sweep.model.cells import RecurrentCell, _param


class WrongShape(RecurrentCell):
    def __init__(self, input_size, hidden_size, init="linear"):
        super().__init__(input_size, hidden_size)
        self.W = _param(hidden_size, input_size)
        self.reset_parameters(init)

    def forward(self, x, state):
        return (x @ self.W.T,)  # one tensor, where the state has two

    def gate_parameters(self):
        return [(self.W, None, self.input_size)]


class NotANumber(WrongShape):
    def forward(self, x, state):
        h = x @ self.W.T * math.nan
        return h, h


class Undrawn(WrongShape):
    def __init__(self, input_size, hidden_size, init="linear"):
        super().__init__(input_size, hidden_size, init)
        self.extra = _param(hidden_size)  # made, never named: no rule draws it

    def forward(self, x, state):
        return x @ self.W.T + self.extra, state[1]


def not_a_cell():
    pass
"""


def documented_module() -> str:
    """The `mycells.py` of docs/add-your-own-cell.md, as the page shows it."""
    page = (ROOT / "docs" / "add-your-own-cell.md").read_text()
    return re.findall(r"```python\n(.*?)```", page, re.S)[0]


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """mycells (the docs' example) and broken (cells that break the contract) on sys.path."""
    (tmp_path / "mycells.py").write_text(documented_module())
    (tmp_path / "broken.py").write_text(BROKEN)
    (tmp_path / "explodes.py").write_text("raise RuntimeError('the user module fails as it loads')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("mycells", "broken", "explodes"):
        sys.modules.pop(name, None)


def test_the_documented_cell_is_found_by_its_path_and_passes_every_check(user_modules):
    coupled = resolve_cell("mycells.Coupled")
    assert resolve_cell("mycells:Coupled") is coupled and issubclass(coupled, RecurrentCell)
    assert_cell_passes(coupled)


def test_the_documented_cell_is_the_coupled_lstm_it_says(user_modules):
    """Model two with W_f = −W_i (both sides, and the biases): then f = σ(−a_i) = 1 − i."""
    torch.manual_seed(0)
    ours, two = resolve_cell("mycells.Coupled")(5, 4).double(), ModelTwoCell(5, 4).double()
    with torch.no_grad():
        for name, p in ours.named_parameters():
            getattr(two, name).copy_(p)
        for side in "ih":
            getattr(two, f"W_{side}f").copy_(-getattr(ours, f"W_{side}i"))
            getattr(two, f"b_{side}f").copy_(-getattr(ours, f"b_{side}i"))
    x, state = torch.randn(3, 5, dtype=torch.float64), (torch.randn(3, 4, dtype=torch.float64),) * 2
    assert all((a - b).abs().max() < 1e-12 for a, b in zip(ours(x, state), two(x, state)))


def test_a_users_cell_configures_and_trains_a_step_by_its_path(user_modules, cache_dir):
    cfg = compose_run(*TINY, f"data.cache_dir={cache_dir}", "model.cell=mycells.Coupled")
    check_config(cfg)
    from lstm_sweep.model.lm import LanguageModel

    model = LanguageModel(20, 8, 8, 2, cell=cfg.model.cell)
    logits, _ = model(torch.randint(0, 20, (2, 5)))
    logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_a_decorated_cell_is_a_model_cell_name(user_modules):
    coupled = resolve_cell("mycells.Coupled")
    try:
        register_cell("coupled-by-decorator")(coupled)
        assert resolve_cell("coupled-by-decorator") is coupled and "coupled-by-decorator" in names()
        with pytest.raises(ValueError, match="is taken by"):
            register_cell("coupled-by-decorator")(ModelTwoCell)
    finally:
        REGISTERED.pop("coupled-by-decorator", None)


def test_an_installed_packages_entry_point_names_a_cell(user_modules):
    dist = user_modules / "mycells_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mycells-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[lstm_sweep.cells]\nfrom-entry-point = mycells:Coupled\n")
    assert "from-entry-point" in names()
    assert resolve_cell("from-entry-point").__name__ == "Coupled"
    check_config(compose_run(*TINY, "model.cell=from-entry-point"))


@pytest.mark.parametrize(
    "spec, says",
    [
        (
            "three",
            r"^model\.cell='three' is not a cell: neither a built-in or registered one \(one, two, gru, rnn, "
            r"vanilla, .*, fgr, or torch\) nor a dotted path to a class \(mypkg\.cells\.MyCell\)$",
        ),
        (
            "nosuchmodule.Cell",
            r"^model\.cell='nosuchmodule\.Cell': cannot import nosuchmodule "
            r"\(ModuleNotFoundError: No module named 'nosuchmodule'\)$",
        ),
        (
            "explodes.Cell",
            r"^model\.cell='explodes\.Cell': loading explodes\.Cell failed "
            r"\(RuntimeError: the user module fails as it loads\)$",
        ),
        ("mycells.Missing", r"^model\.cell='mycells\.Missing': mycells\.Missing does not exist \("),
        (
            "broken.not_a_cell",
            r"^model\.cell='broken\.not_a_cell': broken\.not_a_cell is not a cell: a cell is a "
            r"subclass of lstm_sweep\.model\.cells\.RecurrentCell",
        ),
        (
            "broken.WrongShape",
            r"^model\.cell='broken\.WrongShape': one step: from the zero state: a state of "
            r"2 × \(3, 4\) expected, got \(\(3, 4\)\)$",
        ),
        (
            "broken.NotANumber",
            r"^model\.cell='broken\.NotANumber': one step: from the zero state, the step's state "
            r"holds NaN or inf$",
        ),
        (
            "broken.Undrawn",
            r"^model\.cell='broken\.Undrawn': initialisation: not named by gate_parameters or "
            r"vector_parameters, so no rule draws them: extra$",
        ),
    ],
)
def test_a_bad_cell_is_refused_in_one_line_before_any_run(user_modules, spec, says):
    with pytest.raises(ConfigError) as refused:
        check_config(compose_run(*TINY, f"model.cell={spec}"))
    assert re.match(says, str(refused.value)) and "\n" not in str(refused.value), str(refused.value)


def run_check_cell(capsys, *argv: str) -> tuple[int, str, str]:
    status = check_cell_cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def test_lstm_check_cell_prints_a_table_and_exits_0_for_a_good_cell(user_modules, capsys):
    status, out, _ = run_check_cell(capsys, "mycells.Coupled", "--no-speed")
    assert status == 0 and out.splitlines()[-1] == "mycells.Coupled passes"
    assert re.search(r"^  pass  gradcheck, one step +analytic gradients = numerical \(float64\)$", out, re.M)
    assert re.search(r"^  —     fast path = step definition +none claimed", out, re.M)


def test_lstm_check_cell_compares_with_an_oracle_it_is_given(user_modules, capsys):
    (user_modules / "oracles.py").write_text(
        "import torch\n"
        "def coupled(cell, x, state):\n"
        "    h, c = state\n"
        "    net = lambda g: x @ getattr(cell, f'W_i{g}').T + getattr(cell, f'b_i{g}') + h @ getattr(cell, "
        "f'W_h{g}').T + getattr(cell, f'b_h{g}')\n"
        "    i, g, o = torch.sigmoid(net('i')), torch.tanh(net('g')), torch.sigmoid(net('o'))\n"
        "    c = (1 - i) * c + i * g\n"
        "    return o * torch.tanh(c), c\n"
        "def wrong(cell, x, state):\n"
        "    return tuple(t + 1 for t in coupled(cell, x, state))\n"
    )
    status, out, _ = run_check_cell(capsys, "mycells.Coupled", "--no-speed", "--oracle", "oracles.coupled")
    assert status == 0 and re.search(r"^  pass  your oracle +largest difference", out, re.M)
    status, out, _ = run_check_cell(capsys, "mycells.Coupled", "--no-speed", "--oracle", "oracles.wrong")
    assert status == 1 and re.search(r"^  FAIL  your oracle +largest difference 1\.0e\+00", out, re.M)
    assert out.splitlines()[-1] == "mycells.Coupled fails 1 check(s)"


@pytest.mark.parametrize(
    "spec, line",
    [
        ("broken.WrongShape", r"^  FAIL  one step +from the zero state: a state of 2 × \(3, 4\) expected"),
        ("broken.Undrawn", r"^  FAIL  initialisation +not named by gate_parameters or vector_parameters"),
    ],
)
def test_lstm_check_cell_exits_1_naming_the_failed_check(user_modules, capsys, spec, line):
    status, out, _ = run_check_cell(capsys, spec, "--no-speed")
    assert status == 1 and re.search(line, out, re.M), out


def test_lstm_check_cell_refuses_what_is_no_cell_in_one_line(user_modules, capsys, caplog):
    with caplog.at_level(logging.ERROR):
        status, out, _ = run_check_cell(capsys, "nosuchmodule.Cell")
    assert status == 1 and out == ""
    assert [r.getMessage() for r in caplog.records] == [
        "model.cell='nosuchmodule.Cell': cannot import nosuchmodule (ModuleNotFoundError: No module named "
        "'nosuchmodule')"
    ]


def test_a_cell_without_a_fast_path_warns_once_what_it_costs(user_modules, caplog, monkeypatch):
    monkeypatch.setattr(stack_module, "_warned", set())
    coupled = resolve_cell("mycells.Coupled")
    with caplog.at_level(logging.WARNING, logger="lstm_sweep.model.stack"):
        CellStack(coupled, 5, 4, 2, impl="fast")
        CellStack(coupled, 5, 4, 2, impl="fast")
        CellStack(coupled, 5, 4, 2, impl="reference")
    assert [r.getMessage() for r in caplog.records] == [
        "Coupled has no sequence-level fast path: it runs step by step, a Python loop of small ops per time step, "
        "typically several times slower than a fast cell (lstm-bench measures it)"
    ]


@pytest.mark.slow
def test_lstm_check_cell_measures_the_speed_against_nn_lstm(user_modules):
    proc = subprocess.run(
        [str(BIN / "lstm-check-cell"), "cifg", "--shape", "8,10,16,16", "--repeats", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=user_modules,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"^  speed \(B, T, E, H = 8, 10, 16, 16; fast path; .*× torch\.nn\.LSTM", proc.stdout, re.M)
    bad = subprocess.run(
        [str(BIN / "lstm-check-cell"), "broken.Undrawn", "--no-speed"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=user_modules,
        env={"PYTHONPATH": str(user_modules)},
    )
    assert bad.returncode == 1 and "FAIL  initialisation" in bad.stdout and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_a_users_cell_is_swept_beside_the_built_ins_and_reported_by_its_name(user_modules, cache_dir):
    grid = [*TINY, "trainer.max_epochs=1", "model.num_layers=1", "model.cell=one,mycells.Coupled", "seed=0,1"]
    proc = subprocess.run(
        [str(BIN / "lstm-sweep"), "--dir", "sweep", *grid, f"data.cache_dir={cache_dir}"],
        cwd=user_modules,
        capture_output=True,
        text=True,
        timeout=600,
        env={"PYTHONPATH": str(user_modules), "PATH": str(BIN)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = sorted(p.name for p in (user_modules / "sweep").glob("cell=*"))
    assert names == ["cell=mycells.Coupled,seed=0", "cell=mycells.Coupled,seed=1", "cell=one,seed=0", "cell=one,seed=1"]
    report = (user_modules / "reports" / "default" / "REPORT.md").read_text()
    assert re.search(r"^- (model one vs cell Coupled|cell Coupled (vs|better than|worse than) model one)", report, re.M)
    summary = (user_modules / "reports" / "default" / "summary_test_perplexity.md").read_text()
    assert "| cell Coupled |" in summary


@pytest.mark.slow
def test_the_variant_comparison_is_a_grid_of_the_nine_cells_that_dry_runs(tmp_path):
    proc = subprocess.run(
        [str(BIN / "lstm-sweep"), "--dry-run", "experiment=lstm_variants", "data.root=penn_small"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("45 runs in multirun/lstm_variants/") and lines[-1].endswith(
        ": 45 start; dry run, nothing started"
    )
    cells = {line.split()[-1].split(",")[0] for line in lines if line.startswith("start ")}
    assert cells == {f"cell={c}" for c in ("vanilla", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")}


@pytest.mark.slow
def test_a_sweeps_bad_cell_fails_its_runs_in_one_line_before_they_train_and_the_others_finish(user_modules, cache_dir):
    grid = [*TINY, "trainer.max_epochs=1", "model.num_layers=1", "seed=0", "model.cell=one,broken.NotANumber"]
    proc = subprocess.run(
        [str(BIN / "lstm-sweep"), "--dir", "sweep", "--no-report", *grid, f"data.cache_dir={cache_dir}"],
        cwd=user_modules,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(user_modules), "PATH": str(BIN)},
    )
    assert proc.returncode == 1
    bad, good = user_modules / "sweep" / "cell=broken.NotANumber", user_modules / "sweep" / "cell=one"
    assert json.loads((good / "status.json").read_text())["status"] == "finished"
    assert json.loads((bad / "status.json").read_text()) == {
        "status": "failed",
        "error": "ConfigError: model.cell='broken.NotANumber': one step: from the zero state, the step's state "
        "holds NaN or inf",
    }
    assert not (bad / "checkpoints").exists() and not list(bad.glob("events.out.tfevents.*"))  # it never trained
    assert "run cell=broken.NotANumber failed: model.cell='broken.NotANumber': one step:" in proc.stderr
