"""The sweep's fast job composition (sweep/compose.py) against its oracle, Hydra's own
load_sweep_config, key for key, over a grid that mixes every kind of override."""

from __future__ import annotations

import itertools

import pytest
from hydra import initialize
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from lstm_sweep.sweep.compose import GridComposer

MASTER = ["+hydra.job.env_set.LSTM_SWEEP_TEST=1"]  # the command line's Hydra overrides: not the jobs'
FIXED = [
    "trainer.max_epochs=3",
    "+trainer.extra_setting=1",  # an addition: part of the template
    "hydra.job.config.override_dirname.exclude_keys=[trainer.max_epochs,data.root]",  # a list: the same
]


@pytest.fixture
def hydra_loader():
    with initialize(version_base="1.3", config_path=None):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=MASTER, run_mode=RunMode.MULTIRUN)
        yield master, loader


def grid() -> list[list[str]]:
    """Group choices alternating fastest, so each template is left by another job's values."""
    jobs = [
        [*FIXED, f"seed={seed}", f"model.cell={cell}", f"model.hidden_size={size}", f"optim={optim}"]
        for seed, cell, size, optim in itertools.product((0, 7), ("one", "two"), (16, 24), ("adam", "sgd"))
    ]
    jobs.append([*FIXED, "seed=1", "model.cell=one", "model.hidden_size=16", "optim=adam", "data.root='a/b'"])
    jobs.append([*FIXED, "seed=2", "model.cell=two", "model.hidden_size=16", "optim=sgd", "data.root='c'"])
    # a folder name given by the sweeper (naming.unique_name), a Hydra value override
    jobs.append(
        [*FIXED, "seed=3", "model.cell=one", "model.hidden_size=16", "optim=adam", "hydra.sweep.subdir='x~1a2b3c4d'"]
    )
    jobs.append(
        [*FIXED, "seed=4", "model.cell=two", "model.hidden_size=24", "optim=adam", "hydra.sweep.subdir='y~5e6f7a8b'"]
    )
    # a mapping set before a plain value under it: the order matters, so Hydra composes it
    jobs.append([*FIXED, "++trainer={max_epochs: 4}", "trainer.max_epochs=5", "seed=5"])
    jobs.append([*FIXED, "schedule=plateau", "seed=6", "model.cell=two", "model.hidden_size=16", "optim=adam"])
    # a key and its parent, both plain: the parent's value, set after, holds (Hydra composes it)
    jobs += [
        [*FIXED, "experiment=report2021", f"reference.source={s}", "reference=null", f"seed={n}"]
        for n, s in enumerate("ab")
    ]
    return jobs


def test_each_job_is_composed_as_hydra_composes_it(hydra_loader):
    master, loader = hydra_loader
    composer = GridComposer(master, loader)
    hydra_calls = 0
    compose_with_hydra = composer._hydra

    def counted(job):
        nonlocal hydra_calls
        hydra_calls += 1
        return compose_with_hydra(job)

    composer._hydra = counted  # type: ignore[method-assign]
    jobs = grid()
    for job in jobs:
        fast = composer.compose(job)
        oracle = loader.load_sweep_config(master, job)
        assert OmegaConf.to_container(fast) == OmegaConf.to_container(oracle), job
        assert OmegaConf.select(fast, "hydra.sweep.subdir") == OmegaConf.select(oracle, "hydra.sweep.subdir"), job
        assert OmegaConf.select(fast, "hydra.job.override_dirname") == oracle.hydra.job.override_dirname
    # Hydra composed once per optim of the 16-run product, once per optim with data.root beside
    # it, once for both given folders (one optim), once for the entangled mapping, once for
    # the schedule, once for each job that sets a key and its parent
    assert hydra_calls == 2 + 2 + 1 + 1 + 1 + 2


def test_a_bad_value_is_refused_as_hydra_refuses_it(hydra_loader):
    master, loader = hydra_loader
    composer = GridComposer(master, loader)
    composer.compose([*FIXED, "seed=1", "model.hidden_size=16"])
    with pytest.raises(Exception, match=r"model\.hidden_size") as fast:
        composer.compose([*FIXED, "seed=2", "model.hidden_size=big"])
    with pytest.raises(Exception) as oracle:
        loader.load_sweep_config(master, [*FIXED, "seed=2", "model.hidden_size=big"])
    assert type(fast.value) is type(oracle.value)
