"""lstm-sweep from Python — a notebook's way in, beside the command line.

    from lstm_sweep.api import load_sweep

    sweep = load_sweep("multirun/report2021/2026-12-05_10-00-00_4242")
    sweep.runs        # one row a run: its factors, seed, status, final loss and perplexity
    sweep.epochs      # one row a run and epoch: val/loss, val/ppl, train/ppl
    sweep.damaged     # the runs kept out of every mean, with the reason in `error`
    sweep.scalars("train/loss")  # every logged point of a tag, one row a run and step

Everything here is the command-line tools' own code: a sweep is read and verified exactly
as `lstm-aggregate` reads it, a config is composed exactly as `lstm-train` composes it, and
a run trained here is recorded (status.json, lock, resume) exactly as `lstm-train` records
it. Nothing is cached: call again after the folder changes.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from lstm_sweep.analysis.read import Sweep, read_sweep
from lstm_sweep.analysis.report import write_report
from lstm_sweep.data.vocab import Vocab
from lstm_sweep.model.lm import LanguageModel
from lstm_sweep.run.config import compose
from lstm_sweep.run.generate import load_run
from lstm_sweep.run.train import record_run

__all__ = ["Sweep", "compose", "load_model", "load_sweep", "train", "write_report"]


def load_sweep(folder: str | Path) -> Sweep:
    """A sweep folder's runs as pandas DataFrames (`runs`, `epochs`, `finished`, `damaged`,
    `scalars(tag)`), each run verified as it is read: a run whose files are missing or
    disagree is `damaged`, with its reason. ConfigError if the folder holds no run."""
    return read_sweep(folder)


def train(cfg: DictConfig, run_dir: str | Path) -> dict:
    """Train one run (a config from `compose`) in `run_dir` and return its final metrics (also
    its metrics.json). An unfinished run there resumes; a finished one is refused (RunFinished)."""
    return record_run(cfg, Path(run_dir))


def load_model(run_dir: str | Path, checkpoint: str = "last") -> tuple[LanguageModel, Vocab, dict]:
    """A trained run's model (in eval mode), its vocabulary and its config; `checkpoint` is
    "last", "best" or a checkpoint file."""
    return load_run(Path(run_dir), checkpoint)
