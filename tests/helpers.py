"""What several test files share: tiny settings, corpora written on the spot, the real
corpora (or a skip that says where to put them), and small functions."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from lstm_sweep.records import recorded_status
from lstm_sweep.run.config import compose

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

# A small built-in corpus and a small model: a run takes a few seconds.
TINY_CORPUS = [
    "data.generator.vocab_size=200",
    "data.generator.train_tokens=3000",
    "data.generator.valid_tokens=600",
    "data.generator.test_tokens=600",
    "data.batch_size=32",
]
TINY_RUN = ["model.embedding_size=16", "model.hidden_size=16", "trainer.max_epochs=2", "trainer.progress_bar=false"]
TINY = TINY_CORPUS + TINY_RUN
STREAM = ["data.protocol=stream", "data.bptt=6", "data.batch_size=8", "data.eval_batch_size=4"]


def extra(module: str, name: str | None = None):
    """An optional extra's module, or a skip naming the install; under
    LSTM_SWEEP_REQUIRE_EXTRAS=1 (.ci/run installs them all) a missing one fails."""
    if os.environ.get("LSTM_SWEEP_REQUIRE_EXTRAS") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module, reason=f'an optional extra: pip install "lstm-sweep[{name or module}]"')


def shared_corpus(name: str) -> Path:
    """A real corpus from ../shared/data, or a skip naming what to put where."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"needs the real corpus {name}: put the project's shared/ folder beside the "
            f"repository, so that {path} exists"
        )
    return path


def compose_run(*overrides: str, hydra: bool = False):
    """The run config lstm-train would compose from these overrides (with its `hydra` node)."""
    return compose(*overrides, hydra=hydra)


def write_corpus(root: Path, train: str, valid: str = "a b\n", test: str = "b a\n", names=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    names = names or {"train": "train.txt", "valid": "valid.txt", "test": "test.txt"}
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        (root / names[split]).write_text(text, encoding="utf-8")
    return root


def fake_run(
    run_dir: Path,
    *,
    config: dict | None = None,
    overrides: list[str] | None = None,
    status: str | dict | None = "finished",
    scalars: dict[str, float] | None = None,
) -> Path:
    """A run folder holding the records a run leaves, written without training: .hydra/'s
    config.yaml and overrides.yaml (when given), status.json (a status, or a whole record)
    and one TensorBoard point per scalar — with metrics.json and the HPARAMS records, as a
    finished run holds them, when the status is "finished"."""
    from torch.utils.tensorboard import SummaryWriter

    from lstm_sweep.files import write_json

    run_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (run_dir / ".hydra").mkdir(exist_ok=True)
        OmegaConf.save(config, run_dir / ".hydra" / "config.yaml")
    if overrides is not None:
        (run_dir / ".hydra").mkdir(exist_ok=True)
        OmegaConf.save(list(overrides), run_dir / ".hydra" / "overrides.yaml")
    if status is not None:
        write_json(run_dir / "status.json", status if isinstance(status, dict) else {"status": status})
    if scalars:
        with SummaryWriter(str(run_dir)) as writer:
            for tag, value in scalars.items():
                writer.add_scalar(tag, value, 0)
            if status == "finished":  # all a finished run holds: its metrics.json, its HPARAMS records last
                write_json(run_dir / "metrics.json", {**scalars, "epochs": int("val/ppl" in scalars)})
                writer.add_hparams({"seed": 0}, {}, run_name=".")
    return run_dir


def logged(run_dir: Path, tag: str) -> list[float]:
    """Every value of a scalar in a run's TensorBoard event files."""
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in events.Scalars(tag)]


def as_dict(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True)


def gradcheck_stack(stack, seed: int) -> bool:
    """torch.autograd.gradcheck of a float64 stack (input size 3, hidden 2) over its input,
    initial states and every parameter, for cells of any state arity."""
    torch.manual_seed(seed)
    fn, params = functional(stack.double())
    x = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    arity = sum(layer.state_tensors for layer in stack.layers)
    states = [torch.randn(2, 2, dtype=torch.float64, requires_grad=True) for _ in range(arity)]
    return torch.autograd.gradcheck(fn, (x, *states, *params))


def functional(stack):
    """stack as a function of (x, each layer's initial state tensors, *parameters), for
    gradcheck over the weights too."""
    names = [name for name, _ in stack.named_parameters()]
    arities = [layer.state_tensors for layer in stack.layers]

    def fn(x, *rest):
        flat_states, params = rest[: sum(arities)], rest[sum(arities) :]
        states, at = [], 0
        for arity in arities:
            states.append(tuple(flat_states[at : at + arity]))
            at += arity
        out, finals = torch.func.functional_call(stack, dict(zip(names, params)), (x, states))
        return (out, *[t for state in finals for t in state])

    return fn, [p.detach().clone().requires_grad_() for p in stack.parameters()]


TIMINGS = ("wall_time_sec", "train/tokens_per_sec")


def outcome(run_dir: Path) -> tuple[dict, dict]:
    """metrics.json without its timings, and every logged scalar as TensorBoard reads it."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    scalars = {
        tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"] if tag not in TIMINGS
    }
    return {k: v for k, v in metrics.items() if k not in TIMINGS}, scalars


# Kills its own process with SIGKILL right after training step `step` (argv: run dir, step,
# overrides as JSON): a real, abrupt death at a chosen point, with no test hook in the product.
KILLER = f"""
import json, os, signal, sys
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
from helpers import compose_run
from lstm_sweep.run.callbacks import Throughput
from lstm_sweep.records import recorded_status
from lstm_sweep.run.train import record_run

run_dir, step, overrides = Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
original = Throughput.on_train_batch_end

def then_die(self, trainer, pl_module, outputs, batch, batch_idx):
    original(self, trainer, pl_module, outputs, batch, batch_idx)
    if trainer.global_step == step:
        os.kill(os.getpid(), signal.SIGKILL)

Throughput.on_train_batch_end = then_die
record_run(compose_run(*overrides), run_dir)
"""


def run_until_killed(run_dir: Path, step: int, overrides: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", KILLER, str(run_dir), str(step), json.dumps(overrides)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-3000:]  # it did die, by SIGKILL
    assert not (run_dir / "metrics.json").exists()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "running"  # as the process left it; read, it is interrupted:
    assert recorded_status(status)[0] == "interrupted"
