"""Fixtures: configs composed exactly as lstm-train composes them, on tiny data; a fake run
folder (its records, without training); and a real finished sweep of tiny runs."""

from pathlib import Path

import pytest

from helpers import TINY, TINY_CORPUS, TINY_RUN, compose_run
from helpers import fake_run as write_fake_run


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def make_cfg(cache_dir):
    """compose(overrides) → the run config lstm-train would see, on the tiny corpus."""

    def make(*overrides: str, tiny: bool = True):
        other_corpus = any(o.startswith(("data=", "experiment=")) for o in overrides)
        base = [f"data.cache_dir={cache_dir}", *(TINY_RUN if tiny else [])]
        if tiny and not other_corpus:
            base += TINY_CORPUS
        return compose_run(*base, *overrides)

    return make


@pytest.fixture
def fake_run():
    """fake_run(folder, config=…, overrides=…, status=…, scalars=…): a run folder holding the
    records a run leaves, written without training (helpers.fake_run)."""
    return write_fake_run


TINY_SWEEP_GRID = {"model.cell": ["one", "two"], "seed": [0, 1]}


@pytest.fixture(scope="session")
def tiny_sweep(tmp_path_factory, cache_dir) -> Path:
    """A finished sweep of cell (one, two) × seed (0, 1) on the tiny corpus, trained for real
    in this process, laid out as the grid sweeper lays it out: sweep.json and a folder per run
    named by its swept values, each with its .hydra/ records. Read only: copy it to damage it."""
    from omegaconf import OmegaConf

    from lstm_sweep.naming import run_name
    from lstm_sweep.run.train import record_run
    from lstm_sweep.sweep.grid import plan_grid, record_start

    folder = tmp_path_factory.mktemp("tiny_sweep") / "sweep"
    grid = [f"{key}={','.join(map(str, values))}" for key, values in TINY_SWEEP_GRID.items()]
    record_start(folder, "tiny", plan_grid({}, grid), [])
    for cell in TINY_SWEEP_GRID["model.cell"]:
        for seed in TINY_SWEEP_GRID["seed"]:
            overrides = [f"model.cell={cell}", f"seed={seed}"]
            cfg = compose_run(*TINY, f"data.cache_dir={cache_dir}", *overrides)
            run_dir = folder / run_name(",".join(overrides))
            record_run(cfg, run_dir)
            write_fake_run(run_dir, config=OmegaConf.to_container(cfg), overrides=overrides, status=None)
    return folder
